//! `--input-shape name=d0,d1,...` values.

use anyhow::{Context, bail};
use whittle_ir::Dim;

/// Parses `name=1,3,224,224` (dims may be symbols: `name=batch,128`).
pub fn parse_input_shape(s: &str) -> anyhow::Result<(String, Vec<Dim>)> {
    let (name, dims) = s
        .rsplit_once('=')
        .with_context(|| format!("--input-shape '{s}': expected NAME=D0,D1,..."))?;
    if name.is_empty() {
        bail!("--input-shape '{s}': the input name is empty");
    }
    let dims = if dims.trim().is_empty() {
        Vec::new()
    } else {
        dims.split(',')
            .map(|d| {
                let d = d.trim();
                match d.parse::<i64>() {
                    Ok(n) if n >= 0 => Ok(Dim::Known(n)),
                    Ok(n) => bail!("--input-shape '{s}': dim {n} is negative"),
                    Err(_) if d == "?" => Ok(Dim::Unknown),
                    Err(_) if !d.is_empty() => Ok(Dim::Param(d.to_string())),
                    Err(_) => bail!("--input-shape '{s}': empty dim"),
                }
            })
            .collect::<anyhow::Result<Vec<_>>>()?
    };
    Ok((name.to_string(), dims))
}

/// All `--input-shape` values.
pub fn parse_all(v: &[String]) -> anyhow::Result<Vec<(String, Vec<Dim>)>> {
    v.iter().map(|s| parse_input_shape(s)).collect()
}

//! Building test input sets from the command line: real tensors (`--inputs`) or seeded
//! random ones shaped by `--input-shape` and ranged by `--input-range`.

use crate::cli::{InputArgs, ToleranceArgs};
use crate::shapes;
use anyhow::{Context, bail};
use whittle_eval::{InputSpec, Tolerance, random_inputs, read_input_sets};
use whittle_ir::infer::{InferOptions, infer};
use whittle_ir::{Model, Tensor};

/// Sizes for symbols nobody fixed: 1 for batch-like names, 16 for sequence-like, 4 else.
fn default_dims(m: &Model) -> Vec<(String, i64)> {
    let g = &m.graph;
    let mut out = Vec::new();
    for v in g.inputs() {
        for d in g
            .value(*v)
            .info
            .ty
            .as_ref()
            .and_then(whittle_ir::Type::dims)
            .unwrap_or_default()
        {
            if let whittle_ir::Dim::Param(p) = d {
                let l = p.to_lowercase();
                let size = if l.contains("batch") || l == "n" || l == "s0" {
                    1
                } else if l.contains("seq")
                    || l.contains("len")
                    || l.contains("token")
                    || l.starts_with('s')
                {
                    16
                } else {
                    4
                };
                out.push((p, size));
            }
        }
    }
    out
}

/// `name=lo,hi` ranges.
fn ranges(v: &[String]) -> anyhow::Result<Vec<(String, i64, i64)>> {
    v.iter()
        .map(|s| {
            let (name, r) = s
                .rsplit_once('=')
                .with_context(|| format!("--input-range '{s}': expected NAME=LO,HI"))?;
            let (lo, hi) = r
                .split_once(',')
                .with_context(|| format!("--input-range '{s}': expected NAME=LO,HI"))?;
            let (lo, hi): (i64, i64) = (lo.trim().parse()?, hi.trim().parse()?);
            if hi <= lo {
                bail!("--input-range '{s}': empty range");
            }
            Ok((name.to_string(), lo, hi))
        })
        .collect()
}

/// The input sets for `model` and a sentence saying what they are.
pub fn input_sets(model: &Model, args: &InputArgs) -> anyhow::Result<(Vec<Vec<Tensor>>, String)> {
    let mut m = model.clone();
    let opts = InferOptions {
        input_shapes: shapes::parse_all(&args.input_shape)?,
    };
    infer(&mut m, &opts)?;
    let g = &m.graph;
    let names: Vec<String> = g
        .inputs()
        .iter()
        .filter(|v| g.value(**v).initializer().is_none())
        .map(|v| g.value(*v).name().to_string())
        .collect();
    if let Some(path) = &args.inputs {
        let sets = read_input_sets(path, &names).map_err(anyhow::Error::msg)?;
        let what = format!("{} input set(s) from {}", sets.len(), path.display());
        return Ok((sets, what));
    }
    let ranges = ranges(&args.input_range)?;
    let sets = (0..args.runs.max(1))
        .map(|i| {
            let spec = InputSpec {
                dims: default_dims(&m),
                default_dim: 4,
                batch_dim: None,
                int_high: 100,
                seed: args.seed.wrapping_add(i as u64),
                ranges: ranges.clone(),
            };
            random_inputs(g, &spec).map_err(anyhow::Error::msg)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let shapes: Vec<String> = sets
        .first()
        .map(|s| {
            s.iter()
                .map(|t| format!("{}{:?}", t.name(), t.dims))
                .collect()
        })
        .unwrap_or_default();
    let what = format!(
        "{} random input set(s), seed {} ({})",
        sets.len(),
        args.seed,
        shapes.join(", ")
    );
    Ok((sets, what))
}

/// The tolerance the flags ask for.
pub fn tolerance(t: &ToleranceArgs) -> Tolerance {
    Tolerance {
        rtol: t.rtol,
        atol: t.atol,
        min_cosine: t.min_cosine,
    }
}

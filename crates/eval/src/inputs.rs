//! Seeded random inputs for a graph's inputs: the same seed gives the same tensors.

use std::collections::HashMap;
use whittle_ir::{DataType, Dim, Graph, Tensor, ValueId};

/// How to fill symbolic dims and integer inputs.
#[derive(Clone, Debug)]
pub struct InputSpec {
    /// Size for a symbolic or unknown dim (by symbol name, else `default_dim`).
    pub dims: Vec<(String, i64)>,
    pub default_dim: i64,
    /// Size of an unnamed unknown dim on an input's first axis (the batch), when it
    /// should differ from `default_dim`.
    pub batch_dim: Option<i64>,
    /// Integer inputs draw from `[0, int_high)`; inputs whose name contains "mask" are ones;
    /// indices into an embedding table stay below its row count.
    pub int_high: i64,
    pub seed: u64,
    /// Explicit integer ranges `[lo, hi)` by input name (`--input-range name=lo,hi`).
    pub ranges: Vec<(String, i64, i64)>,
}

impl Default for InputSpec {
    fn default() -> Self {
        InputSpec {
            dims: Vec::new(),
            default_dim: 1,
            batch_dim: None,
            int_high: 100,
            seed: 0,
            ranges: Vec::new(),
        }
    }
}

/// A small, fast, seedable generator (SplitMix64); test inputs need reproducibility, not
/// statistical quality.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// One tensor per graph input that is not also an initializer, in order. Errors name the
/// input whose type is not known or not supported.
pub fn random_inputs(g: &Graph, spec: &InputSpec) -> Result<Vec<Tensor>, String> {
    let mut rng = Rng(spec.seed);
    let tables = table_rows(g);
    let mut out = Vec::new();
    for v in g.inputs() {
        let val = g.value(*v);
        if val.initializer().is_some() {
            continue;
        }
        let name = val.name();
        let ty = val
            .info
            .ty
            .as_ref()
            .ok_or_else(|| format!("input '{name}' has no declared type"))?;
        let dims = ty
            .dims()
            .ok_or_else(|| format!("input '{name}' has no declared shape"))?;
        let dims: Vec<i64> = dims
            .iter()
            .enumerate()
            .map(|(axis, d)| match d {
                Dim::Known(n) => *n,
                Dim::Param(p) => spec
                    .dims
                    .iter()
                    .find(|(s, _)| s == p)
                    .map_or(spec.default_dim, |x| x.1),
                Dim::Unknown if axis == 0 => spec.batch_dim.unwrap_or(spec.default_dim),
                Dim::Unknown => spec.default_dim,
            })
            .collect();
        let count = dims.iter().product::<i64>().max(0) as usize;
        let mut t = match ty.elem() {
            Some(DataType::Float) => {
                let v: Vec<f32> = (0..count).map(|_| rng.unit()).collect();
                Tensor::from_f32(dims, &v)
            }
            Some(dt @ (DataType::Int64 | DataType::Int32)) => {
                let (lo, hi) = int_range(name, *v, spec, &tables);
                let span = (hi - lo).max(1) as u64;
                let v: Vec<i64> = (0..count)
                    .map(|_| lo + (rng.next() % span) as i64)
                    .collect();
                if dt == DataType::Int64 {
                    Tensor::from_i64(dims, &v)
                } else {
                    let raw: Vec<u8> = v.iter().flat_map(|x| (*x as i32).to_le_bytes()).collect();
                    Tensor::from_raw(DataType::Int32, dims, raw.into())
                }
            }
            Some(DataType::Bool) => {
                let v: Vec<u8> = (0..count).map(|_| (rng.next() & 1) as u8).collect();
                Tensor::from_raw(DataType::Bool, dims, v.into())
            }
            other => return Err(format!("input '{name}': no random generator for {other:?}")),
        };
        t.name = Some(name.to_string());
        out.push(t);
    }
    Ok(out)
}

/// The range `[lo, hi)` for integer input `name`: explicit, ones for masks, below the
/// embedding table's row count for token ids, else `[0, int_high)`.
fn int_range(
    name: &str,
    v: ValueId,
    spec: &InputSpec,
    tables: &HashMap<ValueId, i64>,
) -> (i64, i64) {
    if let Some((_, lo, hi)) = spec.ranges.iter().find(|r| r.0 == name) {
        return (*lo, *hi);
    }
    if name.to_lowercase().contains("mask") {
        return (1, 2);
    }
    let hi = tables
        .get(&v)
        .map_or(spec.int_high, |rows| spec.int_high.min(*rows));
    (0, hi.max(1))
}

/// Graph inputs used (directly or through a Cast) as indices of a Gather from a constant
/// table along axis 0, with the table's row count (the vocabulary size for token ids).
fn table_rows(g: &Graph) -> HashMap<ValueId, i64> {
    let mut out: HashMap<ValueId, i64> = HashMap::new();
    for n in g.node_ids() {
        let node = g.node(n);
        if node.op() != "Gather" || node.attr("axis").and_then(|a| a.i).unwrap_or(0) != 0 {
            continue;
        }
        let (Some(table), Some(mut idx)) =
            (node.input(0).and_then(|v| g.constant(v)), node.input(1))
        else {
            continue;
        };
        if let Some((p, _)) = g.value(idx).producer()
            && g.node(p).op() == "Cast"
            && let Some(src) = g.node(p).input(0)
        {
            idx = src;
        }
        if let (true, Some(rows)) = (g.inputs().contains(&idx), table.dims.first()) {
            let e = out.entry(idx).or_insert(*rows);
            *e = (*e).min(*rows);
        }
    }
    out
}

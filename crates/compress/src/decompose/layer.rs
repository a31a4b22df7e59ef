//! The layers a decomposition may rewrite: which nodes qualify (the guards), their
//! geometry, and what each candidate rank would cost.

use super::Kind;
use crate::weighted::{private_weight_of_rank, weight_slot};
use whittle_ir::{DataType, Graph, NodeId, ValueId};
use whittle_passes::pass::{PassCx, anchor};

/// A Conv (2-D, constant weight) as the factorizations see it.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvShape {
    pub cout: usize,
    /// Input channels of the whole conv (weight dim 1 × group).
    pub cin: usize,
    pub group: usize,
    pub kernel: [usize; 2],
    pub strides: [usize; 2],
    pub dilations: [usize; 2],
    /// Explicit pads [top, left, bottom, right] (auto_pad resolved once input dims are known).
    pub pads: [usize; 4],
    pub auto_pad: String,
    /// Input spatial size [H, W] per sample (from the data the model was run on).
    pub input: [usize; 2],
}

impl ConvShape {
    /// Outputs per group.
    pub fn mg(&self) -> usize {
        self.cout / self.group
    }

    /// Kernel taps K = kh·kw.
    pub fn taps(&self) -> usize {
        self.kernel[0] * self.kernel[1]
    }

    /// Output size along axis `i` (explicit pads).
    pub fn out(&self, i: usize) -> usize {
        let span = self.input[i] + self.pads[i] + self.pads[i + 2];
        let ext = self.dilations[i] * (self.kernel[i] - 1) + 1;
        if span < ext {
            0
        } else {
            (span - ext) / self.strides[i] + 1
        }
    }

    /// Output positions per sample.
    pub fn positions(&self) -> u64 {
        (self.out(0) * self.out(1)) as u64
    }

    /// Resolves `auto_pad` SAME_UPPER/SAME_LOWER/VALID into explicit pads.
    pub fn resolve_pads(&mut self) {
        for i in 0..2 {
            let (k, s, d) = (self.kernel[i], self.strides[i], self.dilations[i]);
            let total = match self.auto_pad.as_str() {
                "SAME_UPPER" | "SAME_LOWER" => {
                    let out = self.input[i].div_ceil(s);
                    ((out - 1) * s + d * (k - 1) + 1).saturating_sub(self.input[i])
                }
                "VALID" => 0,
                _ => continue,
            };
            let small = total / 2;
            let (begin, end) = if self.auto_pad == "SAME_LOWER" {
                (total - small, small)
            } else {
                (small, total - small)
            };
            self.pads[i] = begin;
            self.pads[i + 2] = end;
        }
    }
}

/// A MatMul or Gemm with a constant 2-D weight, as `y = x·W` with W of k × n.
#[derive(Clone, Debug, PartialEq)]
pub struct DenseShape {
    pub k: usize,
    pub n: usize,
    /// The stored weight is n × k (Gemm transB=1).
    pub trans_b: bool,
    /// Gemm (else MatMul).
    pub gemm: bool,
    /// Rows of x per sample (product of its leading dims).
    pub rows: u64,
}

/// The geometry of a layer.
#[derive(Clone, Debug, PartialEq)]
pub enum Shape {
    Conv(ConvShape),
    Dense(DenseShape),
}

/// A node that one of the requested decompositions may rewrite.
#[derive(Clone, Debug)]
pub struct Layer {
    pub node: NodeId,
    pub site: String,
    /// The activation the layer reads.
    pub x: ValueId,
    pub w: ValueId,
    pub shape: Shape,
}

impl Layer {
    /// MACs per sample of the layer as it is.
    pub fn macs(&self) -> u64 {
        match &self.shape {
            Shape::Conv(c) => (c.cout * (c.cin / c.group) * c.taps()) as u64 * c.positions(),
            Shape::Dense(d) => (d.k * d.n) as u64 * d.rows,
        }
    }

    /// Weight elements of the layer as it is.
    pub fn params(&self) -> u64 {
        match &self.shape {
            Shape::Conv(c) => (c.cout * (c.cin / c.group) * c.taps()) as u64,
            Shape::Dense(d) => (d.k * d.n) as u64,
        }
    }

    /// (MACs per sample, weight elements) after decomposing by `kind` at `rank`.
    pub fn cost(&self, kind: Kind, rank: usize) -> (u64, u64) {
        let r = rank as u64;
        match (&self.shape, kind) {
            (Shape::Conv(c), Kind::Conv) => {
                let dw = c.cin as u64 * r * c.taps() as u64;
                let pw = c.cout as u64 * (c.cin / c.group) as u64 * r;
                ((dw + pw) * c.positions(), dw + pw)
            }
            (Shape::Conv(c), Kind::Spatial) => {
                let v = r * (c.cin * c.kernel[0]) as u64;
                let h = r * (c.cout * c.kernel[1]) as u64;
                // The first conv keeps the input width (kernel 1, stride 1 along W).
                let p1 = (c.out(0) * c.input[1]) as u64;
                (v * p1 + h * c.positions(), v + h)
            }
            (Shape::Dense(d), Kind::Gemm) => {
                let p = r * (d.k + d.n) as u64;
                (p * d.rows, p)
            }
            _ => (self.macs(), self.params()),
        }
    }

    /// The largest rank `kind` can use on this layer (exact at that rank).
    pub fn full_rank(&self, kind: Kind) -> usize {
        match (&self.shape, kind) {
            (Shape::Conv(c), Kind::Conv) => c.mg().min(c.taps()),
            (Shape::Conv(c), Kind::Spatial) => (c.cin * c.kernel[0]).min(c.cout * c.kernel[1]),
            (Shape::Dense(d), Kind::Gemm) => d.k.min(d.n),
            _ => 0,
        }
    }

    /// The kinds that apply to this layer, among `wanted`.
    pub fn kinds(&self, wanted: &[Kind]) -> Vec<Kind> {
        wanted
            .iter()
            .copied()
            .filter(|k| match (&self.shape, k) {
                (Shape::Conv(c), Kind::Conv) => c.cin / c.group >= 2,
                (Shape::Conv(c), Kind::Spatial) => {
                    c.group == 1 && c.kernel[0] >= 2 && c.kernel[1] >= 2
                }
                (Shape::Dense(_), Kind::Gemm) => true,
                _ => false,
            })
            .collect()
    }
}

/// An f32 initializer of `rank` dims read by its node alone ([`private_weight_of_rank`]).
fn private_weight(g: &Graph, v: ValueId, rank: usize) -> bool {
    private_weight_of_rank(g, v, rank)
}

/// A Conv bias the rewrites can replace: a float vector constant. It may be shared
/// (deduplication merges the zero biases of freshly initialised models): rewrites give
/// the layer a new bias and leave the shared one to its other readers.
fn constant_bias(g: &Graph, b: ValueId) -> bool {
    let val = g.value(b);
    val.initializer()
        .is_some_and(|t| t.dtype() == whittle_ir::DataType::Float && t.dims.len() == 1)
        && !g.inputs().contains(&b)
        && !g.is_output(b)
}

fn ints(g: &Graph, n: NodeId, name: &str) -> Option<Vec<i64>> {
    g.node(n).attr(name).map(|a| a.ints.to_vec())
}

fn pair(v: Option<Vec<i64>>, default: usize) -> Option<[usize; 2]> {
    match v {
        None => Some([default; 2]),
        Some(v) if v.is_empty() => Some([default; 2]),
        Some(v) if v.len() == 2 && v.iter().all(|x| *x >= 0 && *x < 1 << 20) => {
            Some([v[0] as usize, v[1] as usize])
        }
        _ => None,
    }
}

/// The Conv at `n` as a layer, if the guards hold: 2-D, constant private f32 weight,
/// constant private f32 bias (or none), sane attributes.
fn conv(g: &Graph, n: NodeId) -> Option<Layer> {
    let node = g.node(n);
    let (x, w) = (node.input(0)?, node.input(weight_slot(g, n)?.slot)?);
    if !private_weight(g, w, 4) {
        return None;
    }
    if let Some(b) = node.input(2)
        && !constant_bias(g, b)
    {
        return None;
    }
    let dims = &g.value(w).initializer()?.dims;
    let group = node.attr("group").and_then(|a| a.i).unwrap_or(1);
    if group < 1 || dims.iter().any(|d| *d < 1) || dims[0] % group != 0 {
        return None;
    }
    let kernel = [dims[2] as usize, dims[3] as usize];
    if let Some(k) = ints(g, n, "kernel_shape")
        && !k.is_empty()
        && k != [dims[2], dims[3]]
    {
        return None;
    }
    let pads = ints(g, n, "pads").unwrap_or_default();
    let pads = match pads.len() {
        0 => [0; 4],
        4 if pads.iter().all(|p| *p >= 0 && *p < 1 << 20) => [
            pads[0] as usize,
            pads[1] as usize,
            pads[2] as usize,
            pads[3] as usize,
        ],
        _ => return None,
    };
    let auto_pad = node
        .attr("auto_pad")
        .and_then(|a| a.s.as_ref())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .unwrap_or_else(|| "NOTSET".into());
    let shape = ConvShape {
        cout: dims[0] as usize,
        cin: (dims[1] * group) as usize,
        group: group as usize,
        kernel,
        strides: pair(ints(g, n, "strides"), 1)?,
        dilations: pair(ints(g, n, "dilations"), 1)?,
        pads,
        auto_pad,
        input: [0, 0],
    };
    if shape.strides.contains(&0) || shape.dilations.contains(&0) {
        return None;
    }
    Some(Layer {
        node: n,
        site: anchor(g, n),
        x,
        w,
        shape: Shape::Conv(shape),
    })
}

/// The MatMul/Gemm at `n` as a layer, if the guards hold: constant private 2-D f32 weight
/// in slot 1, Gemm with transA = 0 and a private constant C (or none).
fn dense(g: &Graph, n: NodeId) -> Option<Layer> {
    let node = g.node(n);
    let (x, w) = (node.input(0)?, node.input(weight_slot(g, n)?.slot)?);
    if !private_weight(g, w, 2) {
        return None;
    }
    let gemm = node.op() == "Gemm";
    let int = |name: &str| node.attr(name).and_then(|a| a.i).unwrap_or(0);
    if gemm && int("transA") != 0 {
        return None;
    }
    if gemm && let Some(c) = node.input(2) {
        let t = g.value(c).initializer()?;
        if t.dtype() != DataType::Float || g.value(c).uses().len() != 1 || g.is_output(c) {
            return None;
        }
    }
    let dims = &g.value(w).initializer()?.dims;
    let trans_b = gemm && int("transB") == 1;
    let (k, n_out) = if trans_b {
        (dims[1], dims[0])
    } else {
        (dims[0], dims[1])
    };
    if k < 1 || n_out < 1 {
        return None;
    }
    Some(Layer {
        node: n,
        site: anchor(g, n),
        x,
        w,
        shape: Shape::Dense(DenseShape {
            k: k as usize,
            n: n_out as usize,
            trans_b,
            gemm,
            rows: 0,
        }),
    })
}

/// Every Conv/MatMul/Gemm of `g` whose weight the guards accept, in graph order (those no
/// requested kind applies to stay in the list: they count in the MAC totals), skipping
/// op types the user excluded (`--exclude op:`).
pub fn find(g: &Graph, cx: &PassCx) -> Vec<Layer> {
    let order = g.nodes_in_order().unwrap_or_default();
    order
        .into_iter()
        .filter(|n| {
            let node = g.node(*n);
            node.domain().is_empty() && !cx.settings.deny_ops.iter().any(|o| o == node.op())
        })
        .filter_map(|n| match g.node(n).op() {
            "Conv" => conv(g, n),
            "MatMul" | "Gemm" => dense(g, n),
            _ => None,
        })
        .collect()
}

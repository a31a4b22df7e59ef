//! How each op between an attention's projections and its output projection treats the
//! heads: the walk gives every value in between an [`At`] (where the heads are), checks
//! that each op works on every head alone, and records what a pruning must rewrite
//! besides the weights — per-head constants, declared dims, and head counts spelled out in
//! Reshape targets.
//!
//! Per op (dims are concrete, from inference under the data's input shapes):
//! - element-wise ops (activations, scale, mask `Add`, `Where`, `IsNaN`): every other
//!   input broadcasts over the head axis (dim 1 or absent) or is a constant with one
//!   entry per head, which is sliced; a tensor from elsewhere that differs per head
//!   (a per-head mask, a KV cache) stops the walk;
//! - `Softmax`/`LogSoftmax` over an axis other than the heads;
//! - `Transpose` moves the head axis;
//! - `MatMul` of two head tensors with the heads on the same batch axis;
//! - `Reshape` that splits the packed last axis into `[heads, D]`, merges `[heads, D]`
//!   back into the last axis, or leaves the shape as it is. The target must spell the
//!   head entry as -1 or as the count (rewritten); one computed at run time stops the
//!   walk, since the pruned model would still compute the old count.

use super::region::{self, Layout, Region};
use std::collections::{HashMap, HashSet};
use whittle_ir::infer::Inference;
use whittle_ir::{Graph, NodeId, ValueId};
use whittle_passes::guard::{const_ints, is_op};

/// Where the heads are in a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum At {
    /// The axis holds the heads' entries side by side: head h is h·D … h·D+D−1.
    Packed(usize),
    /// The axis indexes the heads.
    Split(usize),
    /// The axis is an outer axis of this size merged with the heads (heads inner): what
    /// exporters make to run attention as rank-3 batched products.
    Inner(usize, usize),
}

impl At {
    pub(super) fn axis(self) -> usize {
        match self {
            At::Packed(a) | At::Split(a) | At::Inner(a, _) => a,
        }
    }

    fn moved(self, axis: usize) -> At {
        match self {
            At::Packed(_) => At::Packed(axis),
            At::Split(_) => At::Split(axis),
            At::Inner(_, outer) => At::Inner(axis, outer),
        }
    }

    /// Entries per head along the axis; 0 stands for the head size until it is known.
    fn unit(self) -> usize {
        match self {
            At::Packed(_) => 0,
            At::Split(_) => 1,
            At::Inner(_, outer) => outer,
        }
    }
}

/// Element-wise ops other than those [`region`] lists.
const ELEMENTWISE: &[&str] = &["Where", "IsNaN", "Not", "Cast"];

/// The walk over one attention.
pub(super) struct Walk<'a> {
    g: &'a Graph,
    facts: &'a Inference,
    opset: i64,
    /// Entries of each projection's output (heads × D).
    width: usize,
    /// Nodes of the attention (shape vectors rewritten must feed only these).
    inside: &'a HashSet<NodeId>,
    /// Integers read at run time from the shapes of head tensors.
    read: &'a HashSet<ValueId>,
    pub at: HashMap<ValueId, At>,
    /// The head size, once a Reshape split the heads out.
    pub d: Option<usize>,
    pub region: Region,
}

/// One entry of a Reshape target.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Entry {
    /// A constant, and where it is written (node, input slot, index in the constant).
    Const(i64, (NodeId, usize, usize)),
    /// Read at run time from the shape of a head tensor: it follows a pruning.
    Read,
    /// Computed at run time from anything else.
    Computed,
}

impl Entry {
    fn is(self, v: i64) -> bool {
        matches!(self, Entry::Const(x, _) if x == v)
    }
}

impl<'a> Walk<'a> {
    pub(super) fn new(
        g: &'a Graph,
        facts: &'a Inference,
        opset: i64,
        width: usize,
        (inside, read): (&'a HashSet<NodeId>, &'a HashSet<ValueId>),
        end: ValueId,
    ) -> Walk<'a> {
        Walk {
            g,
            facts,
            opset,
            width,
            inside,
            read,
            at: HashMap::new(),
            d: None,
            region: Region {
                nodes: Vec::new(),
                values: Vec::new(),
                slices: Vec::new(),
                dims: Vec::new(),
                counts: Vec::new(),
                end,
                flatten: None,
                concat: None,
                readers: Vec::new(),
            },
        }
    }

    /// A projection's output: the heads packed on its last axis.
    pub(super) fn start(&mut self, y: ValueId) -> Result<(), String> {
        let rank = self.dims(y)?.len();
        self.set(y, At::Packed(rank - 1));
        Ok(())
    }

    /// Walks `order` (the attention's nodes, in graph order).
    pub(super) fn run(&mut self, order: &[NodeId]) -> Result<(), String> {
        for &n in order {
            let at = self.step(n)?;
            let node = self.g.node(n);
            let y = node
                .output(0)
                .ok_or_else(|| format!("'{}' has no output", node.label()))?;
            if node
                .outputs()
                .iter()
                .skip(1)
                .flatten()
                .any(|o| !self.g.value(*o).uses().is_empty() || self.g.is_output(*o))
            {
                return Err(format!(
                    "'{}' has more than one output in use",
                    node.label()
                ));
            }
            self.region.nodes.push(n);
            self.set(y, at);
        }
        Ok(())
    }

    /// The region with the head size `d` filled in where it stood as 0.
    pub(super) fn finish(mut self, d: usize) -> Region {
        let fix = |u: &mut usize| {
            if *u == 0 {
                *u = d;
            }
        };
        self.region.slices.iter_mut().for_each(|s| fix(&mut s.3));
        self.region.dims.iter_mut().for_each(|s| fix(&mut s.2));
        self.region.counts.iter_mut().for_each(|s| fix(&mut s.3));
        self.region.counts.sort_unstable();
        self.region.counts.dedup();
        self.region
    }

    fn set(&mut self, y: ValueId, at: At) {
        self.at.insert(y, at);
        self.region.dims.push((y, at.axis(), at.unit()));
    }

    /// Concrete dims of `v`.
    pub(super) fn dims(&self, v: ValueId) -> Result<Vec<i64>, String> {
        let name = || self.g.value(v).name().to_string();
        let dims = self
            .facts
            .fact(v)
            .and_then(|f| f.dims.clone())
            .ok_or_else(|| format!("the shape of '{}' is not known", name()))?;
        dims.iter()
            .map(|d| match d {
                whittle_ir::Dim::Known(n) => Some(*n),
                _ => None,
            })
            .collect::<Option<Vec<i64>>>()
            .ok_or_else(|| format!("the shape of '{}' is not known", name()))
    }

    fn step(&mut self, n: NodeId) -> Result<At, String> {
        let node = self.g.node(n);
        let op = node.op();
        if !node.domain().is_empty() {
            return Err(format!("'{}' ({op}) mixes the heads", node.label()));
        }
        if region::UNARY.contains(&op) || region::BINARY.contains(&op) || ELEMENTWISE.contains(&op)
        {
            self.elementwise(n)
        } else {
            match op {
                "Softmax" | "LogSoftmax" => self.softmax(n),
                "Transpose" => self.transpose(n),
                "MatMul" => self.matmul(n),
                "Reshape" => self.reshape(n),
                _ => Err(format!("'{}' ({op}) mixes the heads", node.label())),
            }
        }
    }

    /// The head layout of input `slot` of `n`, which must be a head tensor.
    fn input_at(&self, n: NodeId, slot: usize) -> Result<(ValueId, At), String> {
        let node = self.g.node(n);
        node.input(slot)
            .and_then(|v| self.at.get(&v).map(|a| (v, *a)))
            .ok_or_else(|| {
                format!(
                    "'{}' combines the heads with a tensor from outside the attention",
                    node.label()
                )
            })
    }

    fn output_rank(&self, n: NodeId) -> Result<usize, String> {
        let y = self
            .g
            .node(n)
            .output(0)
            .ok_or_else(|| "no output".to_string())?;
        Ok(self.dims(y)?.len())
    }

    fn elementwise(&mut self, n: NodeId) -> Result<At, String> {
        let node = self.g.node(n);
        let rank = self.output_rank(n)?;
        let mut found: Option<At> = None;
        for x in node.inputs().iter().flatten() {
            if let Some(a) = self.at.get(x) {
                let shift = rank
                    .checked_sub(self.dims(*x)?.len())
                    .ok_or_else(|| format!("'{}' has an input above its rank", node.label()))?;
                let a = a.moved(a.axis() + shift);
                if found.is_some_and(|f| f != a) {
                    return Err(format!("'{}' meets heads laid out twice", node.label()));
                }
                found = Some(a);
            }
        }
        let at = found.ok_or_else(|| format!("'{}' reads no head tensor", node.label()))?;
        for (slot, x) in node.inputs().iter().enumerate() {
            let Some(x) = *x else { continue };
            if !self.at.contains_key(&x) {
                self.other_input(n, slot, x, at, rank)?;
            }
        }
        Ok(at)
    }

    /// An input of an element-wise op from outside the heads: it must broadcast over the
    /// head axis, or be a constant with one entry per head (sliced).
    fn other_input(
        &mut self,
        n: NodeId,
        slot: usize,
        x: ValueId,
        at: At,
        rank: usize,
    ) -> Result<(), String> {
        let xd = self.dims(x)?;
        let shift = rank.saturating_sub(xd.len());
        let Some(i) = at.axis().checked_sub(shift) else {
            return Ok(());
        };
        if xd[i] == 1 {
            return Ok(());
        }
        let name = self.g.value(x).name();
        if self.g.constant(x).is_none() {
            return Err(format!("'{name}' differs per head"));
        }
        let per_head = match at {
            At::Packed(_) => self.width,
            At::Split(_) => self.width / self.d.unwrap_or(self.width).max(1),
            At::Inner(..) => return Err(format!("'{name}' differs per head")),
        };
        let layout = Layout {
            rank: xd.len(),
            axis: i,
            channels: per_head,
        };
        match region::per_unit_inputs(
            self.g,
            n,
            slot..slot + 1,
            usize::MAX,
            layout,
            at.unit(),
            &mut self.region,
        ) {
            Ok(true) => Ok(()),
            Ok(false) => Err(format!("'{name}' does not broadcast over the heads")),
            Err(e) => Err(e),
        }
    }

    fn softmax(&mut self, n: NodeId) -> Result<At, String> {
        let node = self.g.node(n);
        let (x, at) = self.input_at(n, 0)?;
        let rank = self.dims(x)?.len() as i64;
        let default = if self.opset < 13 { 1 } else { -1 };
        let axis = node.attr("axis").and_then(|a| a.i).unwrap_or(default);
        let axis = if axis < 0 { axis + rank } else { axis } as usize;
        let head = at.axis();
        let per_head = match at {
            At::Split(_) | At::Inner(..) if self.opset < 13 => axis > head,
            At::Split(_) | At::Inner(..) => axis != head,
            At::Packed(_) => false,
        };
        if !per_head {
            return Err(format!("'{}' normalizes across the heads", node.label()));
        }
        Ok(at)
    }

    fn transpose(&mut self, n: NodeId) -> Result<At, String> {
        let node = self.g.node(n);
        let (x, at) = self.input_at(n, 0)?;
        let rank = self.dims(x)?.len();
        let perm: Vec<usize> = match node.attr("perm") {
            Some(a) => a.ints.iter().map(|p| *p as usize).collect(),
            None => (0..rank).rev().collect(),
        };
        let to = perm
            .iter()
            .position(|p| *p == at.axis())
            .ok_or_else(|| format!("'{}' has a bad perm", node.label()))?;
        Ok(at.moved(to))
    }

    fn matmul(&mut self, n: NodeId) -> Result<At, String> {
        let node = self.g.node(n);
        let (a, at_a) = self.input_at(n, 0)?;
        let (b, at_b) = self.input_at(n, 1)?;
        let (ra, rb) = (self.dims(a)?.len(), self.dims(b)?.len());
        match (at_a, at_b) {
            (At::Split(i), At::Split(j)) if i == j && ra == rb && i + 2 < ra => Ok(at_a),
            (At::Inner(i, p), At::Inner(j, q)) if i == j && p == q && ra == rb && i + 2 < ra => {
                Ok(at_a)
            }
            _ => Err(format!(
                "'{}' multiplies across the heads (they are not on one batch axis)",
                node.label()
            )),
        }
    }

    fn reshape(&mut self, n: NodeId) -> Result<At, String> {
        let node = self.g.node(n);
        let label = node.label();
        let (x, at) = self.input_at(n, 0)?;
        let y = node.output(0).ok_or_else(|| "no output".to_string())?;
        let (ind, outd) = (self.dims(x)?, self.dims(y)?);
        let e = self.entries(n, outd.len())?;
        if e.len() != outd.len() {
            return Err(format!(
                "'{label}' has a target of another rank than its output"
            ));
        }
        let allowzero = node.attr("allowzero").and_then(|a| a.i).unwrap_or(0) != 0;
        let w = self.width as i64;
        let heads = self.d.map(|d| w / d as i64);
        // Dims before `a` kept, `ind[a]` cut in two or `ind[a..a + 2]` joined, the rest kept.
        let split_at = |a: usize| {
            outd.len() == ind.len() + 1
                && outd[..a] == ind[..a]
                && outd[a] * outd[a + 1] == ind[a]
                && outd[a + 2..] == ind[a + 1..]
        };
        let join_at = |a: usize| {
            outd.len() + 1 == ind.len()
                && outd[..a] == ind[..a]
                && outd[a] == ind[a] * ind[a + 1]
                && outd[a + 1..] == ind[a + 2..]
        };
        match at {
            At::Packed(a) if a + 1 == ind.len() && ind[a] == w && split_at(a) => {
                let d = outd[a + 1];
                if self.d.is_some_and(|k| k as i64 != d) {
                    return Err(format!("'{label}' splits heads of another size"));
                }
                self.d = Some(d as usize);
                let h = w / d;
                let ok = |e: Entry, v: i64| e == Entry::Read || e.is(v) || e.is(-1);
                if !ok(e[a], h) || !ok(e[a + 1], d) || (e[a].is(-1) && e[a + 1].is(-1)) {
                    return Err(format!("'{label}' does not spell out the head split"));
                }
                self.head_entry(e[a], h, 1, &label)?;
                Ok(At::Split(a))
            }
            At::Split(a)
                if a + 2 == ind.len() && self.d == Some(ind[a + 1] as usize) && join_at(a) =>
            {
                self.head_entry(e[a], w, 0, &label)?;
                Ok(At::Packed(a))
            }
            At::Split(a) if a >= 1 && join_at(a - 1) => {
                if !(e[a - 1].is(-1) || e[a - 1] == Entry::Read) {
                    return Err(format!("'{label}' spells out a batch × heads size"));
                }
                Ok(At::Inner(a - 1, ind[a - 1] as usize))
            }
            At::Inner(a, outer)
                if split_at(a) && heads == Some(outd[a + 1]) && outd[a] == outer as i64 =>
            {
                self.head_entry(e[a + 1], outd[a + 1], 1, &label)?;
                Ok(At::Split(a + 1))
            }
            _ if outd == ind => {
                let a = at.axis();
                if !allowzero && e[a].is(0) {
                    return Ok(at);
                }
                match at {
                    At::Packed(_) => self.head_entry(e[a], w, 0, &label)?,
                    At::Split(_) => self.head_entry(e[a], outd[a], 1, &label)?,
                    At::Inner(..) if e[a].is(-1) || e[a] == Entry::Read => {}
                    At::Inner(..) => {
                        return Err(format!("'{label}' spells out a batch × heads size"));
                    }
                }
                Ok(at)
            }
            _ => Err(format!("'{label}' regroups the heads")),
        }
    }

    /// A head entry of a Reshape target: -1 (inferred), read at run time, or the count `c`
    /// = heads × `unit` (rewritten).
    fn head_entry(&mut self, e: Entry, c: i64, unit: usize, label: &str) -> Result<(), String> {
        match e {
            Entry::Read => Ok(()),
            Entry::Const(-1, _) => Ok(()),
            Entry::Const(x, at) if x == c => self.count(at, unit),
            _ => Err(format!("'{label}' computes the head count at run time")),
        }
    }

    /// Records the constant entry at `(node, slot, index)` for rewriting.
    fn count(
        &mut self,
        (node, slot, index): (NodeId, usize, usize),
        unit: usize,
    ) -> Result<(), String> {
        let Some(y) = self.g.node(node).output(0) else {
            return Ok(());
        };
        // A Concat's result is rewritten for all its readers: they must be ours.
        if is_op(self.g.node(node), "Concat")
            && (self.g.is_output(y)
                || self
                    .g
                    .value(y)
                    .uses()
                    .iter()
                    .any(|u| !self.inside.contains(&u.node)))
        {
            return Err(format!(
                "the head count in '{}' is shared with nodes outside the attention",
                self.g.node(node).label()
            ));
        }
        self.region.counts.push((node, slot, index, unit));
        Ok(())
    }

    /// The entries of Reshape `n`'s target (`len` of them): from a constant, or from a
    /// Concat of pieces (constants known, the rest read or computed at run time).
    fn entries(&self, n: NodeId, len: usize) -> Result<Vec<Entry>, String> {
        let node = self.g.node(n);
        let shape = node.input(1).ok_or_else(|| "no shape".to_string())?;
        let runtime = |v: ValueId| match self.read.contains(&v) {
            true => Entry::Read,
            false => Entry::Computed,
        };
        if let Some(ints) = const_ints(self.g, Some(shape)) {
            return Ok(ints
                .iter()
                .enumerate()
                .map(|(i, x)| Entry::Const(*x, (n, 1, i)))
                .collect());
        }
        let concat = self
            .g
            .value(shape)
            .producer()
            .map(|p| p.0)
            .filter(|p| is_op(self.g.node(*p), "Concat"));
        let Some(c) = concat else {
            return Ok(vec![runtime(shape); len]);
        };
        let mut out = Vec::new();
        for (slot, piece) in self.g.node(c).inputs().iter().enumerate() {
            let Some(piece) = *piece else { continue };
            match const_ints(self.g, Some(piece)) {
                Some(ints) => out.extend(
                    ints.iter()
                        .enumerate()
                        .map(|(i, x)| Entry::Const(*x, (c, slot, i))),
                ),
                None => {
                    let k = self.dims(piece)?.iter().product::<i64>().max(0) as usize;
                    out.extend(std::iter::repeat_n(runtime(piece), k));
                }
            }
        }
        if out.len() != len {
            return Ok(vec![Entry::Computed; len]);
        }
        Ok(out)
    }
}

//! What a rule sees of the node it infers: input facts, attributes, opset.

use super::fact::Fact;
use crate::attr::Attribute;
use crate::dtype::DataType;
use crate::node::Node;
use crate::tensor::Tensor;
use crate::types::Dim;

/// The inputs of one node as facts, with attribute helpers. Rules return `Err(reason)`
/// for contradictions; the driver turns it into a warning naming the node.
pub struct Ctx<'a> {
    pub node: &'a Node,
    ins: Vec<Option<Fact>>,
    consts: Vec<Option<Tensor>>,
    /// The default-domain opset the model imports.
    pub opset: i64,
    fresh: &'a mut u64,
}

/// The result type of a rule: one fact per output (missing ones stay unknown).
pub type RuleResult = Result<Vec<Fact>, String>;

impl<'a> Ctx<'a> {
    /// A context for `node` with the facts of its inputs.
    pub fn new(
        node: &'a Node,
        ins: Vec<Option<Fact>>,
        consts: Vec<Option<Tensor>>,
        opset: i64,
        fresh: &'a mut u64,
    ) -> Self {
        Ctx {
            node,
            ins,
            consts,
            opset,
            fresh,
        }
    }

    /// Number of input slots (omitted ones included).
    pub fn n_inputs(&self) -> usize {
        self.ins.len()
    }

    /// Number of outputs the node declares.
    pub fn n_outputs(&self) -> usize {
        self.node.outputs().len()
    }

    /// The fact of input `i`, if the input is present and anything is known.
    pub fn fact(&self, i: usize) -> Option<&Fact> {
        self.ins.get(i).and_then(Option::as_ref)
    }

    /// The constant tensor of input `i` (initializer or `Constant` output), if it is one.
    pub fn tensor(&self, i: usize) -> Option<&Tensor> {
        self.consts.get(i).and_then(Option::as_ref)
    }

    /// True when input `i` is given (not omitted).
    pub fn has_input(&self, i: usize) -> bool {
        self.node.input(i).is_some()
    }

    /// The element type of input `i`.
    pub fn elem(&self, i: usize) -> Option<DataType> {
        self.fact(i)?.elem
    }

    /// The dims of input `i`.
    pub fn dims(&self, i: usize) -> Option<&[Dim]> {
        self.fact(i)?.dims.as_deref()
    }

    /// The tracked values of input `i`.
    pub fn value(&self, i: usize) -> Option<&[Dim]> {
        self.fact(i)?.value.as_deref()
    }

    /// The values of input `i` when all are known integers.
    pub fn ints(&self, i: usize) -> Option<Vec<i64>> {
        self.fact(i)?.ints()
    }

    /// Attribute `name`.
    pub fn attr(&self, name: &str) -> Option<&Attribute> {
        self.node.attr(name)
    }

    /// Integer attribute `name`, or `default`.
    pub fn int(&self, name: &str, default: i64) -> i64 {
        self.attr(name).and_then(|a| a.i).unwrap_or(default)
    }

    /// Integer-list attribute `name`, if present.
    pub fn ints_attr(&self, name: &str) -> Option<Vec<i64>> {
        self.attr(name).map(|a| a.ints.to_vec())
    }

    /// Float-list attribute `name`, if present.
    pub fn floats_attr(&self, name: &str) -> Option<Vec<f32>> {
        self.attr(name).map(|a| a.floats.to_vec())
    }

    /// String attribute `name`, or `default`.
    pub fn string(&self, name: &str, default: &str) -> String {
        self.attr(name).and_then(|a| a.s.as_ref()).map_or_else(
            || default.to_string(),
            |s| String::from_utf8_lossy(s).into_owned(),
        )
    }

    /// A new symbol for a size only known at run time (`NonZero`, `Unique`, ...).
    pub fn fresh(&mut self, hint: &str) -> Dim {
        *self.fresh += 1;
        Dim::Param(format!("{hint}_{}", *self.fresh))
    }

    /// `axis` normalised against `rank` (negative counts from the end).
    pub fn axis(&self, axis: i64, rank: usize) -> Result<usize, String> {
        let r = rank as i64;
        let a = if axis < 0 { axis + r } else { axis };
        if (0..r).contains(&a) {
            Ok(a as usize)
        } else {
            Err(format!("axis {axis} is out of range for rank {rank}"))
        }
    }

    /// The same type as input `i` (element type and dims).
    pub fn same_as(&self, i: usize) -> Fact {
        Fact {
            elem: self.elem(i),
            dims: self.dims(i).map(<[Dim]>::to_vec),
            value: None,
        }
    }
}

//! The printer: a model or graph as text (see the module docs of [`crate::text`]).

use super::values::{format_values, quote};
use crate::attr::{Attribute, kind};
use crate::graph::{Graph, ValueId};
use crate::model::Model;
use crate::types::{Dim, Type, TypeKind};
use std::fmt::Write;

/// How to print.
#[derive(Clone, Debug, Default)]
pub struct PrintOptions {
    /// Print at most this many elements of each constant (None: all, so the text parses
    /// back to the same tensors).
    pub max_values: Option<usize>,
    /// ANSI colour (for terminals).
    pub color: bool,
}

/// Words the grammar reserves; value names spelled like them are quoted.
pub(super) const KEYWORDS: &[&str] = &[
    "graph",
    "input",
    "output",
    "init",
    "ir_version",
    "opset",
    "producer",
    "model_version",
    "tensor",
    "type",
    "random",
    "true",
    "false",
    "inf",
    "NaN",
    "ints",
    "floats",
    "strings",
    "tensors",
    "graphs",
];

/// The text of `m`: header lines, then the main graph.
pub fn print_model(m: &Model, o: &PrintOptions) -> String {
    let mut out = String::new();
    if let Some(v) = m.ir_version {
        let _ = writeln!(out, "ir_version {v}");
    }
    for op in &m.opset_imports {
        let d = if op.domain().is_empty() {
            "ai.onnx"
        } else {
            op.domain()
        };
        let _ = writeln!(out, "opset {} {}", name(d), op.version.unwrap_or(0));
    }
    if m.producer_name.is_some() || m.producer_version.is_some() {
        let _ = writeln!(
            out,
            "producer {} {}",
            quote(m.producer_name.as_deref().unwrap_or("").as_bytes()),
            quote(m.producer_version.as_deref().unwrap_or("").as_bytes())
        );
    }
    if !m.functions.is_empty() {
        let _ = writeln!(
            out,
            "# {} model-local functions (not shown)",
            m.functions.len()
        );
    }
    Printer { o, out: &mut out }.graph(&m.graph, 0);
    out
}

/// The text of one graph.
pub fn print_graph(g: &Graph, o: &PrintOptions) -> String {
    let mut out = String::new();
    Printer { o, out: &mut out }.graph(g, 0);
    out
}

/// A value name: bare when it is a plain identifier-like word, quoted otherwise.
pub fn name(s: &str) -> String {
    let mut ch = s.chars();
    let bare = ch
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || matches!(c, '_' | '/' | '.'))
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '/' | '.' | '-'))
        && !KEYWORDS.contains(&s)
        && !s.ends_with('.');
    if bare {
        s.to_string()
    } else {
        quote(s.as_bytes())
    }
}

/// `f32[batch,3,224,224]`; `f32` when the rank is unknown; `?` when nothing is known.
pub fn type_text(t: Option<&Type>) -> String {
    let Some(t) = t else { return "?".into() };
    match &t.kind {
        TypeKind::Tensor { elem, shape } => tensor_text(
            *elem,
            shape
                .as_ref()
                .map(|s| s.iter().map(|d| d.dim.clone()).collect::<Vec<_>>()),
        ),
        TypeKind::SparseTensor { elem, shape } => format!(
            "sparse({})",
            tensor_text(
                *elem,
                shape
                    .as_ref()
                    .map(|s| s.iter().map(|d| d.dim.clone()).collect::<Vec<_>>())
            )
        ),
        TypeKind::Sequence(inner) => format!("seq({})", type_text(inner.as_deref())),
        TypeKind::Optional(inner) => format!("opt({})", type_text(inner.as_deref())),
        TypeKind::Map { key, value } => format!(
            "map({}, {})",
            key.map_or_else(|| "?".into(), |k| k.short_name()),
            type_text(value.as_deref())
        ),
        TypeKind::Opaque { .. } | TypeKind::Unset => "?".into(),
    }
}

fn tensor_text(elem: Option<crate::DataType>, dims: Option<Vec<Dim>>) -> String {
    let e = elem.map_or_else(|| "?".into(), |e| e.short_name());
    match dims {
        None => e,
        Some(d) => {
            let d: Vec<String> = d.iter().map(dim_text).collect();
            format!("{e}[{}]", d.join(","))
        }
    }
}

/// A dim: its size, `?`, or its symbol (quoted when not a plain identifier).
pub fn dim_text(d: &Dim) -> String {
    match d {
        Dim::Known(n) => n.to_string(),
        Dim::Unknown => "?".into(),
        Dim::Param(p) => {
            let plain = p
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !KEYWORDS.contains(&p.as_str());
            if plain {
                p.clone()
            } else {
                quote(p.as_bytes())
            }
        }
    }
}

struct Printer<'a> {
    o: &'a PrintOptions,
    out: &'a mut String,
}

impl Printer<'_> {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.o.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    fn ty(&self, g: &Graph, v: ValueId) -> String {
        self.paint("2", &type_text(g.value(v).info.ty.as_ref()))
    }

    fn graph(&mut self, g: &Graph, depth: usize) {
        let pad = "  ".repeat(depth + 1);
        let gname = g
            .name
            .as_deref()
            .map(|n| format!(" {}", name(n)))
            .unwrap_or_default();
        let _ = writeln!(self.out, "graph{gname} {{");
        for v in g.inputs() {
            let val = g.value(*v);
            let init = val
                .initializer()
                .map(|t| format!(" = {}", format_values(t, self.o.max_values)))
                .unwrap_or_default();
            // An input with a default value and no declared type shows the tensor's type
            // (the parser needs one before '=').
            let ty = match (&val.info.ty, val.initializer()) {
                (None, Some(t)) => self.paint(
                    "2",
                    &type_text(Some(&Type::tensor(
                        t.dtype(),
                        t.dims.iter().map(|d| Dim::Known(*d)),
                    ))),
                ),
                _ => self.ty(g, *v),
            };
            let _ = writeln!(self.out, "{pad}input {}: {ty}{init}", name(val.name()));
        }
        for v in g.outputs() {
            let _ = writeln!(
                self.out,
                "{pad}output {}: {}",
                name(g.value(*v).name()),
                self.ty(g, *v)
            );
        }
        for v in g.initializers().iter().filter(|v| !g.inputs().contains(v)) {
            let val = g.value(*v);
            let t = val
                .initializer()
                .map(|t| format_values(t, self.o.max_values))
                .unwrap_or_default();
            let ty = val
                .initializer()
                .map(|t| Type::tensor(t.dtype(), t.dims.iter().map(|d| Dim::Known(*d))));
            let _ = writeln!(
                self.out,
                "{pad}init {}: {} = {t}",
                name(val.name()),
                self.paint("2", &type_text(ty.as_ref()))
            );
        }
        if !g.sparse_initializers.is_empty() {
            let _ = writeln!(
                self.out,
                "{pad}# {} sparse initializers (not shown)",
                g.sparse_initializers.len()
            );
        }
        let order = match g.nodes_in_order() {
            Ok(o) => o,
            Err(e) => {
                let _ = writeln!(self.out, "{pad}# {e}");
                g.node_ids().collect()
            }
        };
        for n in order {
            self.node(g, n, depth);
        }
        let _ = write!(self.out, "{}}}", "  ".repeat(depth));
        if depth == 0 {
            self.out.push('\n');
        }
    }

    fn node(&mut self, g: &Graph, n: crate::NodeId, depth: usize) {
        let pad = "  ".repeat(depth + 1);
        let node = g.node(n);
        let outs: Vec<String> = node
            .outputs()
            .iter()
            .map(|v| match v {
                None => "\"\"".into(),
                Some(v) => match &g.value(*v).info.ty {
                    Some(_) => format!("{}: {}", name(g.value(*v).name()), self.ty(g, *v)),
                    None => name(g.value(*v).name()),
                },
            })
            .collect();
        let ins: Vec<String> = node
            .inputs()
            .iter()
            .map(|v| v.map_or_else(|| "\"\"".into(), |v| name(g.value(v).name())))
            .collect();
        let op = if node.domain().is_empty() {
            node.op().to_string()
        } else {
            format!("{}.{}", node.domain(), node.op())
        };
        let lhs = if outs.is_empty() {
            String::new()
        } else {
            format!("{} = ", outs.join(", "))
        };
        let _ = write!(
            self.out,
            "{pad}{lhs}{}({})",
            self.paint("1", &op),
            ins.join(", ")
        );
        if !node.attributes.is_empty() {
            self.out.push_str(" {");
            for (i, a) in node.attributes.iter().enumerate() {
                if i > 0 {
                    self.out.push_str(", ");
                }
                let _ = write!(self.out, "{}=", name(a.name()));
                self.attr(a, depth + 1);
            }
            self.out.push('}');
        }
        if let Some(nm) = &node.name {
            let _ = write!(self.out, " {}", self.paint("2", &format!("@{}", name(nm))));
        }
        self.out.push('\n');
    }

    fn attr(&mut self, a: &Attribute, depth: usize) {
        if let Some(r) = &a.ref_attr_name {
            let _ = write!(self.out, "@{}", name(r));
            return;
        }
        let list = |items: Vec<String>, kind: &str| {
            if items.is_empty() {
                format!("{kind}[]")
            } else {
                format!("[{}]", items.join(", "))
            }
        };
        let text = match a.kind.unwrap_or(0) {
            kind::FLOAT => format!("{:?}", a.f.unwrap_or(0.0)),
            kind::INT => a.i.unwrap_or(0).to_string(),
            kind::STRING => quote(a.s.as_deref().unwrap_or(&[])),
            kind::FLOATS => list(
                a.floats.iter().map(|f| format!("{f:?}")).collect(),
                "floats",
            ),
            kind::INTS => list(a.ints.iter().map(ToString::to_string).collect(), "ints"),
            kind::STRINGS => list(a.strings.iter().map(|s| quote(s)).collect(), "strings"),
            kind::TENSOR => {
                a.t.as_deref()
                    .map_or_else(|| "?".into(), |t| self.tensor_lit(t))
            }
            kind::TENSORS => list(
                a.tensors.iter().map(|t| self.tensor_lit(t)).collect(),
                "tensors",
            ),
            kind::TYPE_PROTO => format!("type {}", type_text(a.tp.as_ref())),
            kind::GRAPH => {
                if let Some(g) = a.g.as_deref() {
                    self.graph(g, depth);
                }
                return;
            }
            kind::GRAPHS => {
                if a.graphs.is_empty() {
                    self.out.push_str("graphs[]");
                    return;
                }
                self.out.push('[');
                for (i, g) in a.graphs.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    self.graph(g, depth);
                }
                self.out.push(']');
                return;
            }
            _ => "<no text form>".into(),
        };
        self.out.push_str(&text);
    }

    fn tensor_lit(&self, t: &crate::Tensor) -> String {
        let ty = Type::tensor(t.dtype(), t.dims.iter().map(|d| Dim::Known(*d)));
        format!(
            "tensor {} {}",
            type_text(Some(&ty)),
            format_values(t, self.o.max_values)
        )
    }
}

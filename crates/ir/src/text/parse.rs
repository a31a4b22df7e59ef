//! The parser: text back into a [`Model`] or [`Graph`].

use super::lex::{Tok, lex};
use super::values::{Lit, build_tensor};
use crate::attr::{Attribute, kind};
use crate::dtype::DataType;
use crate::error::IrError;
use crate::graph::{Graph, ValueId};
use crate::meta::OpsetImport;
use crate::model::Model;
use crate::node::Node;
use crate::tensor::Tensor;
use crate::types::{Dim, ShapeDim, Type, TypeKind};
use bytes::Bytes;

/// Parses a whole model. Without `ir_version` / `opset` lines the model gets IR version
/// 8 and opset 18 of the default domain, so tests can write just a graph.
pub fn parse_model(src: &str) -> Result<Model, IrError> {
    let mut p = Parser::new(src)?;
    let mut m = Model::default();
    loop {
        match p.peek_word().as_deref() {
            Some("ir_version") => {
                p.next();
                m.ir_version = Some(p.int()?);
            }
            Some("opset") => {
                p.next();
                let d = p.name()?;
                let v = p.int()?;
                m.opset_imports.push(OpsetImport {
                    domain: Some(if d == "ai.onnx" { String::new() } else { d }),
                    version: Some(v),
                });
            }
            Some("producer") => {
                p.next();
                m.producer_name = Some(p.utf8_str()?);
                m.producer_version = Some(p.utf8_str()?);
            }
            Some("model_version") => {
                p.next();
                m.model_version = Some(p.int()?);
            }
            _ => break,
        }
    }
    m.ir_version.get_or_insert(8);
    if m.opset_imports.is_empty() {
        m.opset_imports.push(OpsetImport {
            domain: Some(String::new()),
            version: Some(18),
        });
    }
    m.graph = p.graph(false)?;
    m.has_graph = true;
    p.end()?;
    Ok(m)
}

/// Parses a single graph (the main graph of a model).
pub fn parse_graph(src: &str) -> Result<Graph, IrError> {
    let mut p = Parser::new(src)?;
    let g = p.graph(false)?;
    p.end()?;
    Ok(g)
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    at: usize,
}

fn describe(t: Option<&Tok>) -> String {
    match t {
        None => "the end".into(),
        Some(Tok::Word(w)) => format!("'{w}'"),
        Some(Tok::Str(s)) => format!("\"{}\"", String::from_utf8_lossy(s)),
        Some(Tok::Int(i)) => i.to_string(),
        Some(Tok::Float(f)) => f.clone(),
        Some(Tok::Punct('.')) => "'...'".into(),
        Some(Tok::Punct(c)) => format!("'{c}'"),
    }
}

impl Parser {
    fn new(src: &str) -> Result<Parser, IrError> {
        let toks = lex(src).map_err(IrError::Parse)?;
        Ok(Parser { toks, at: 0 })
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|t| &t.0)
    }

    fn peek2(&self) -> Option<&Tok> {
        self.toks.get(self.at + 1).map(|t| &t.0)
    }

    fn peek_word(&self) -> Option<String> {
        match self.peek() {
            Some(Tok::Word(w)) => Some(w.clone()),
            _ => None,
        }
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.at).map(|t| t.0.clone());
        self.at += 1;
        t
    }

    fn err(&self, what: &str) -> IrError {
        let line = self
            .toks
            .get(self.at)
            .or(self.toks.last())
            .map_or(1, |t| t.1);
        IrError::Parse(format!(
            "line {line}: expected {what}, found {}",
            describe(self.peek())
        ))
    }

    fn punct(&mut self, c: char) -> Result<(), IrError> {
        if self.peek() == Some(&Tok::Punct(c)) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.err(&format!("'{c}'")))
        }
    }

    fn eat(&mut self, c: char) -> bool {
        let hit = self.peek() == Some(&Tok::Punct(c));
        if hit {
            self.at += 1;
        }
        hit
    }

    fn end(&self) -> Result<(), IrError> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.err("the end of the text")),
        }
    }

    fn int(&mut self) -> Result<i64, IrError> {
        match self.peek() {
            Some(Tok::Int(i)) => {
                let i = *i;
                self.at += 1;
                Ok(i)
            }
            _ => Err(self.err("an integer")),
        }
    }

    fn utf8_str(&mut self) -> Result<String, IrError> {
        match self.peek().cloned() {
            Some(Tok::Str(s)) => {
                self.at += 1;
                String::from_utf8(s).map_err(|_| self.err("UTF-8 text"))
            }
            _ => Err(self.err("a string")),
        }
    }

    /// A value, graph, op or attribute name: a bare word or a quoted string.
    fn name(&mut self) -> Result<String, IrError> {
        match self.peek().cloned() {
            Some(Tok::Word(w)) => {
                self.at += 1;
                Ok(w)
            }
            Some(Tok::Str(_)) => self.utf8_str(),
            _ => Err(self.err("a name")),
        }
    }

    fn graph(&mut self, nested: bool) -> Result<Graph, IrError> {
        if self.peek_word().as_deref() != Some("graph") {
            return Err(self.err("'graph'"));
        }
        self.next();
        let mut g = Graph::new();
        if !matches!(self.peek(), Some(Tok::Punct('{'))) {
            g.name = Some(self.name()?);
        }
        self.punct('{')?;
        while !self.eat('}') {
            if self.peek().is_none() {
                return Err(self.err("'}'"));
            }
            self.item(&mut g)?;
        }
        g.resolve_scope(nested)?;
        if !nested {
            g.verify(false)?;
        }
        Ok(g)
    }

    fn item(&mut self, g: &mut Graph) -> Result<(), IrError> {
        let kw = self.peek_word();
        let declares = matches!(self.peek2(), Some(Tok::Word(_) | Tok::Str(_)));
        match kw.as_deref() {
            Some("input") if declares => {
                self.next();
                let (v, ty) = self.decl(g)?;
                g.push_input(v);
                if self.eat('=') {
                    let t = self.tensor_values(g.value(v).name(), ty.as_ref())?;
                    g.set_initializer(v, t);
                }
                Ok(())
            }
            Some("output") if declares => {
                self.next();
                let (v, _) = self.decl(g)?;
                g.push_output(v);
                Ok(())
            }
            Some("init") if declares => {
                self.next();
                let taken =
                    |g: &Graph, v| g.inputs().contains(&v) || g.value(v).initializer().is_some();
                let was = self.peek_word().and_then(|n| g.find(&n));
                if let Some(v) = was.filter(|v| taken(g, *v)) {
                    return Err(self.err(&format!(
                        "a new name ('{}' is already an input or initializer; an input's \
                         values go on its line: `input x: T = ...`)",
                        g.value(v).name()
                    )));
                }
                let (v, ty) = self.decl(g)?;
                self.punct('=')?;
                let t = self.tensor_values(g.value(v).name(), ty.as_ref())?;
                g.value_mut(v).info.ty = None;
                g.set_initializer(v, t);
                Ok(())
            }
            _ => self.node(g),
        }
    }

    /// `name: type` (the type is optional).
    fn decl(&mut self, g: &mut Graph) -> Result<(ValueId, Option<Type>), IrError> {
        let n = self.name()?;
        let v = g.intern(&n);
        let ty = if self.eat(':') {
            Some(self.ty()?)
        } else {
            None
        };
        if ty.is_some() {
            g.value_mut(v).info.ty = ty.clone();
        }
        Ok((v, ty))
    }

    fn ty(&mut self) -> Result<Type, IrError> {
        let wrap = |kind| Type {
            kind,
            denotation: None,
        };
        if self.eat('?') {
            let shape = self.dims_opt()?;
            return Ok(wrap(TypeKind::Tensor { elem: None, shape }));
        }
        let w = self.peek_word().ok_or_else(|| self.err("a type"))?;
        self.next();
        let inner = |p: &mut Parser| -> Result<Box<Type>, IrError> {
            p.punct('(')?;
            let t = p.ty()?;
            p.punct(')')?;
            Ok(Box::new(t))
        };
        Ok(match w.as_str() {
            "seq" => wrap(TypeKind::Sequence(Some(inner(self)?))),
            "opt" => wrap(TypeKind::Optional(Some(inner(self)?))),
            "sparse" => {
                let t = inner(self)?;
                let TypeKind::Tensor { elem, shape } = t.kind else {
                    return Err(self.err("a tensor type inside sparse(...)"));
                };
                wrap(TypeKind::SparseTensor { elem, shape })
            }
            "map" => {
                self.punct('(')?;
                let k = self.peek_word().and_then(|w| DataType::from_short_name(&w));
                self.next();
                self.punct(',')?;
                let v = self.ty()?;
                self.punct(')')?;
                wrap(TypeKind::Map {
                    key: k,
                    value: Some(Box::new(v)),
                })
            }
            _ => {
                let elem = DataType::from_short_name(&w).ok_or_else(|| {
                    self.at -= 1;
                    self.err("an element type (f32, i64, ...)")
                })?;
                let shape = self.dims_opt()?;
                wrap(TypeKind::Tensor {
                    elem: Some(elem),
                    shape,
                })
            }
        })
    }

    fn dims_opt(&mut self) -> Result<Option<Vec<ShapeDim>>, IrError> {
        if !self.eat('[') {
            return Ok(None);
        }
        let mut dims = Vec::new();
        while !self.eat(']') {
            if !dims.is_empty() {
                self.punct(',')?;
            }
            let d = match self.peek().cloned() {
                Some(Tok::Int(i)) => Dim::Known(i),
                Some(Tok::Punct('?')) => Dim::Unknown,
                Some(Tok::Word(_) | Tok::Str(_)) => {
                    let n = self.name()?;
                    self.at -= 1;
                    Dim::Param(n)
                }
                _ => return Err(self.err("a dim")),
            };
            self.at += 1;
            dims.push(ShapeDim::from(d));
        }
        Ok(Some(dims))
    }

    /// `[1.0, 2.0]`, `[1, 2, ...]` (elided, filled pseudo-randomly) or `random`.
    fn tensor_values(&mut self, name: &str, ty: Option<&Type>) -> Result<Tensor, IrError> {
        let (elem, dims) = match ty.map(|t| (t.elem(), t.dims())) {
            Some((Some(e), Some(d))) => (e, d),
            _ => return Err(self.err("a tensor type with known element type and dims before '='")),
        };
        let dims: Vec<i64> = dims
            .iter()
            .map(|d| match d {
                Dim::Known(n) => Ok(*n),
                _ => Err(IrError::Parse(format!(
                    "constant '{name}' needs known dims"
                ))),
            })
            .collect::<Result<_, _>>()?;
        let (lits, elided) = self.values()?;
        build_tensor(name, elem, dims, &lits, elided).map_err(IrError::Parse)
    }

    fn values(&mut self) -> Result<(Vec<Lit>, bool), IrError> {
        if self.peek_word().as_deref() == Some("random") {
            self.next();
            return Ok((Vec::new(), true));
        }
        self.punct('[')?;
        let mut lits = Vec::new();
        let mut elided = false;
        while !self.eat(']') {
            if !lits.is_empty() || elided {
                self.punct(',')?;
            }
            if self.eat('.') {
                elided = true;
                continue;
            }
            lits.push(self.lit()?);
        }
        Ok((lits, elided))
    }

    fn lit(&mut self) -> Result<Lit, IrError> {
        let t = self.peek().cloned();
        let l = match t {
            Some(Tok::Int(i)) => Lit::Int(i),
            Some(Tok::Float(f)) => Lit::Float(f),
            Some(Tok::Str(s)) => Lit::Str(s),
            Some(Tok::Word(w)) if w == "true" || w == "false" => Lit::Bool(w == "true"),
            Some(Tok::Word(w)) if w == "inf" || w == "NaN" => Lit::Float(w),
            _ => return Err(self.err("a value")),
        };
        self.at += 1;
        Ok(l)
    }

    fn node(&mut self, g: &mut Graph) -> Result<(), IrError> {
        let mut outs: Vec<Option<ValueId>> = Vec::new();
        let calls_now = matches!(self.peek2(), Some(Tok::Punct('(')));
        if !calls_now {
            loop {
                if self.peek() == Some(&Tok::Str(Vec::new())) {
                    self.next();
                    outs.push(None);
                } else {
                    outs.push(Some(self.decl(g)?.0));
                }
                if !self.eat(',') {
                    break;
                }
            }
            self.punct('=')?;
        }
        let full = self.name()?;
        let (domain, op) = match full.rsplit_once('.') {
            Some((d, o)) => (Some(d.to_string()), o.to_string()),
            None => (None, full),
        };
        if op.is_empty() {
            return Err(self.err("an op name after the domain (`domain.Op(...)`)"));
        }
        let mut node = Node::new(&op);
        node.domain = domain;
        self.punct('(')?;
        let mut ins = Vec::new();
        while !self.eat(')') {
            if !ins.is_empty() {
                self.punct(',')?;
            }
            if self.peek() == Some(&Tok::Str(Vec::new())) {
                self.next();
                ins.push(None);
            } else {
                let n = self.name()?;
                ins.push(Some(g.intern(&n)));
            }
        }
        if self.eat('{') {
            while !self.eat('}') {
                if !node.attributes.is_empty() {
                    self.punct(',')?;
                }
                node.attributes.push(self.attribute()?);
            }
        }
        if self.eat('@') {
            node.name = Some(self.name()?);
        }
        let id = g.add_node(node, ins, outs)?;
        g.capture_outer(id);
        Ok(())
    }

    fn attribute(&mut self) -> Result<Attribute, IrError> {
        let name = self.name()?;
        self.punct('=')?;
        let mut a = Attribute {
            name: Some(name),
            ..Attribute::default()
        };
        let set = |a: &mut Attribute, k: i32| a.kind = Some(k);
        match self.peek().cloned() {
            Some(Tok::Punct('@')) => {
                self.next();
                a.ref_attr_name = Some(self.name()?);
            }
            Some(Tok::Int(i)) => {
                self.next();
                a.i = Some(i);
                set(&mut a, kind::INT);
            }
            Some(Tok::Float(_)) => {
                a.f = Some(self.float()?);
                set(&mut a, kind::FLOAT);
            }
            Some(Tok::Word(w)) if w == "inf" || w == "NaN" => {
                a.f = Some(self.float()?);
                set(&mut a, kind::FLOAT);
            }
            Some(Tok::Str(s)) => {
                self.next();
                a.s = Some(Bytes::from(s));
                set(&mut a, kind::STRING);
            }
            Some(Tok::Word(w)) if w == "tensor" => {
                self.next();
                a.t = Some(Box::new(self.tensor_lit()?));
                set(&mut a, kind::TENSOR);
            }
            Some(Tok::Word(w)) if w == "graph" => {
                a.g = Some(Box::new(self.graph(true)?));
                set(&mut a, kind::GRAPH);
            }
            Some(Tok::Word(w)) if w == "type" => {
                self.next();
                a.tp = Some(self.ty()?);
                set(&mut a, kind::TYPE_PROTO);
            }
            Some(Tok::Word(w)) => {
                let k = match w.as_str() {
                    "ints" => kind::INTS,
                    "floats" => kind::FLOATS,
                    "strings" => kind::STRINGS,
                    "tensors" => kind::TENSORS,
                    "graphs" => kind::GRAPHS,
                    _ => return Err(self.err("an attribute value")),
                };
                self.next();
                self.punct('[')?;
                self.punct(']')?;
                set(&mut a, k);
            }
            Some(Tok::Punct('[')) => self.attr_list(&mut a)?,
            _ => return Err(self.err("an attribute value")),
        }
        Ok(a)
    }

    fn float(&mut self) -> Result<f32, IrError> {
        let text = match self.next() {
            Some(Tok::Float(f)) | Some(Tok::Word(f)) => f,
            Some(Tok::Int(i)) => i.to_string(),
            _ => {
                self.at -= 1;
                return Err(self.err("a number"));
            }
        };
        text.parse::<f32>().map_err(|_| self.err("a number"))
    }

    fn tensor_lit(&mut self) -> Result<Tensor, IrError> {
        let ty = self.ty()?;
        let mut t = self.tensor_values("", Some(&ty))?;
        t.name = None;
        Ok(t)
    }

    fn attr_list(&mut self, a: &mut Attribute) -> Result<(), IrError> {
        self.punct('[')?;
        let first = self.peek().cloned();
        let k = match first {
            Some(Tok::Str(_)) => kind::STRINGS,
            Some(Tok::Word(w)) if w == "tensor" => kind::TENSORS,
            Some(Tok::Word(w)) if w == "graph" => kind::GRAPHS,
            Some(Tok::Int(_) | Tok::Float(_) | Tok::Word(_)) => kind::INTS,
            _ => return Err(self.err("a list element")),
        };
        let mut nums: Vec<Tok> = Vec::new();
        let mut count = 0;
        while !self.eat(']') {
            if count > 0 {
                self.punct(',')?;
            }
            count += 1;
            match k {
                kind::STRINGS => match self.next() {
                    Some(Tok::Str(s)) => a.strings.push(Bytes::from(s)),
                    _ => {
                        self.at -= 1;
                        return Err(self.err("a string"));
                    }
                },
                kind::TENSORS => {
                    if self.peek_word().as_deref() != Some("tensor") {
                        return Err(self.err("'tensor'"));
                    }
                    self.next();
                    a.tensors.push(self.tensor_lit()?);
                }
                kind::GRAPHS => a.graphs.push(self.graph(true)?),
                _ => match self.next() {
                    Some(t @ (Tok::Int(_) | Tok::Float(_))) => nums.push(t),
                    Some(Tok::Word(w)) if w == "inf" || w == "NaN" => nums.push(Tok::Float(w)),
                    _ => {
                        self.at -= 1;
                        return Err(self.err("a number"));
                    }
                },
            }
        }
        let floats = nums.iter().any(|t| matches!(t, Tok::Float(_)));
        a.kind = Some(if k == kind::INTS && floats {
            kind::FLOATS
        } else {
            k
        });
        for t in nums {
            match (t, floats) {
                (Tok::Int(i), false) => a.ints.push(i),
                (Tok::Int(i), true) => a.floats.push(i as f32),
                (Tok::Float(f), _) => a.floats.push(f.parse().map_err(|_| self.err("a number"))?),
                _ => {}
            }
        }
        Ok(())
    }
}

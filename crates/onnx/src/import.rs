//! proto → IR. Every field is carried over; names are resolved to values, subgraph
//! references to enclosing scopes become captures of the node that owns the subgraph.

use crate::convert::{opaque_in, opsets_in, pairs_in, type_in};
use crate::error::OnnxError;
use crate::external::ExternalLoader;
use crate::proto;
use whittle_ir::{
    Attribute, Function, Graph, IoList, Model, Node, ShadowInfo, Tensor, TensorAnnotation,
    TensorData, ValueId, ValueInfo,
};

/// Converts one decoded tensor (a `.pb` file of a test data set), loading external data
/// through `ext`.
pub fn import_tensor(t: proto::TensorProto, ext: &mut ExternalLoader) -> Result<Tensor, OnnxError> {
    Cx { ext }.tensor(t)
}

/// Converts a decoded model to the IR, loading external tensor data through `ext`.
pub fn import_model(m: proto::ModelProto, ext: &mut ExternalLoader) -> Result<Model, OnnxError> {
    let mut cx = Cx { ext };
    let has_graph = m.graph.is_some();
    let graph = match m.graph {
        Some(g) => cx.graph(g, Scope::Main)?,
        None => Graph::new(),
    };
    let functions = m
        .functions
        .into_iter()
        .map(|f| cx.function(f))
        .collect::<Result<_, _>>()?;
    Ok(Model {
        ir_version: m.ir_version,
        opset_imports: opsets_in(m.opset_import),
        producer_name: m.producer_name,
        producer_version: m.producer_version,
        domain: m.domain,
        model_version: m.model_version,
        doc_string: m.doc_string,
        graph,
        has_graph,
        metadata_props: pairs_in(m.metadata_props),
        training_info: m.training_info.iter().map(opaque_in).collect(),
        functions,
        configuration: m.configuration.iter().map(opaque_in).collect(),
        phase: whittle_ir::Phase::default(),
    })
}

/// What kind of graph is being imported: it decides what an undefined name means.
#[derive(Clone, Copy, PartialEq)]
enum Scope {
    /// The main graph: an undefined name is an error.
    Main,
    /// A subgraph or function body: undefined names come from the enclosing scope.
    Nested,
}

struct Cx<'a> {
    ext: &'a mut ExternalLoader,
}

fn value_info_in(vi: proto::ValueInfoProto) -> (String, ValueInfo) {
    let info = ValueInfo {
        ty: vi.r#type.map(type_in),
        doc_string: vi.doc_string,
        metadata_props: pairs_in(vi.metadata_props),
    };
    (vi.name.unwrap_or_default(), info)
}

impl Cx<'_> {
    fn graph(&mut self, g: proto::GraphProto, scope: Scope) -> Result<Graph, OnnxError> {
        let gname = g.name.clone().unwrap_or_default();
        let mut graph = Graph::new();
        graph.name = g.name;
        graph.doc_string = g.doc_string;
        graph.metadata_props = pairs_in(g.metadata_props);
        let mut declared = std::collections::HashSet::new();
        for (i, vi) in g.input.into_iter().enumerate() {
            let v = declare(&mut graph, &mut declared, IoList::Input, i, vi);
            graph.push_input(v);
        }
        for t in g.initializer {
            let tensor = self.tensor(t)?;
            let v = graph.intern(tensor.name());
            if graph.value(v).initializer().is_some() {
                return Err(OnnxError::Invalid(format!(
                    "graph '{gname}': initializer '{}' appears twice",
                    tensor.name()
                )));
            }
            graph.set_initializer(v, tensor);
        }
        for s in g.sparse_initializer {
            let name = s
                .values
                .as_ref()
                .and_then(|t| t.name.clone())
                .unwrap_or_default();
            let v = graph.intern(&name);
            graph.mark_sparse(v);
            graph.sparse_initializers.push(opaque_in(&s));
        }
        for n in g.node {
            self.node(&mut graph, n)?;
        }
        for (i, vi) in g.output.into_iter().enumerate() {
            let v = declare(&mut graph, &mut declared, IoList::Output, i, vi);
            graph.push_output(v);
        }
        for (i, vi) in g.value_info.into_iter().enumerate() {
            let v = declare(&mut graph, &mut declared, IoList::ValueInfo, i, vi);
            graph.push_value_info(v);
        }
        graph.quantization_annotation = g
            .quantization_annotation
            .into_iter()
            .map(|a| TensorAnnotation {
                tensor_name: a.tensor_name,
                quant_parameter_tensor_names: pairs_in(a.quant_parameter_tensor_names),
            })
            .collect();
        resolve_undefined(&mut graph, scope, &gname)?;
        Ok(graph)
    }

    fn node(&mut self, graph: &mut Graph, n: proto::NodeProto) -> Result<(), OnnxError> {
        let io = |graph: &mut Graph, names: &[String]| -> Vec<Option<ValueId>> {
            names
                .iter()
                .map(|s| {
                    if s.is_empty() {
                        None
                    } else {
                        Some(graph.intern(s))
                    }
                })
                .collect()
        };
        let inputs = io(graph, &n.input);
        let outputs = io(graph, &n.output);
        let attributes = n
            .attribute
            .into_iter()
            .map(|a| self.attribute(a))
            .collect::<Result<Vec<_>, _>>()?;
        let mut node = Node::default();
        node.name = n.name;
        node.op_type = n.op_type;
        node.domain = n.domain;
        node.overload = n.overload;
        node.doc_string = n.doc_string;
        node.attributes = attributes.into();
        node.metadata_props = pairs_in(n.metadata_props);
        node.device_configurations = n.device_configurations.iter().map(opaque_in).collect();
        let label = node.label();
        let id = graph
            .add_node(node, inputs, outputs)
            .map_err(|e| OnnxError::ir(format!("node '{label}'"), e))?;
        graph.capture_outer(id);
        Ok(())
    }

    fn attribute(&mut self, a: proto::AttributeProto) -> Result<Attribute, OnnxError> {
        let (head, tail) = (a.head, a.tail);
        let t = match head.t {
            Some(t) => Some(Box::new(self.tensor(t)?)),
            None => None,
        };
        let g = match head.g {
            Some(g) => Some(Box::new(self.graph(g, Scope::Nested)?)),
            None => None,
        };
        let tensors = tail
            .tensors
            .into_iter()
            .map(|t| self.tensor(t))
            .collect::<Result<_, _>>()?;
        let graphs = tail
            .graphs
            .into_iter()
            .map(|g| self.graph(g, Scope::Nested))
            .collect::<Result<_, _>>()?;
        Ok(Attribute {
            name: head.name,
            ref_attr_name: tail.ref_attr_name,
            doc_string: tail.doc_string,
            kind: tail.r#type,
            f: head.f,
            i: head.i,
            s: head.s,
            t,
            g,
            sparse_tensor: tail.sparse_tensor.as_ref().map(opaque_in),
            tp: tail.tp.map(type_in),
            floats: a.floats.into_list(),
            ints: a.ints.into_list(),
            strings: a.strings.into_list(),
            tensors,
            graphs,
            sparse_tensors: tail.sparse_tensors.iter().map(opaque_in).collect(),
            type_protos: tail.type_protos.into_iter().map(type_in).collect(),
        })
    }

    fn tensor(&mut self, t: proto::TensorProto) -> Result<Tensor, OnnxError> {
        let mut tensor = Tensor {
            name: t.name,
            dims: t.dims,
            data_type: t.data_type,
            segment: t.segment.map(|s| whittle_ir::Segment {
                begin: s.begin,
                end: s.end,
            }),
            data: TensorData {
                raw: t.raw_data,
                floats: t.float_data,
                int32s: t.int32_data,
                strings: t.string_data,
                int64s: t.int64_data,
                doubles: t.double_data,
                uint64s: t.uint64_data,
                deferred: None,
            },
            doc_string: t.doc_string,
            external_data: pairs_in(t.external_data),
            data_location: t.data_location,
            metadata_props: pairs_in(t.metadata_props),
            external_bytes: None,
        };
        if tensor.is_external() {
            let name = tensor.name().to_string();
            let location =
                tensor
                    .external_entry("location")
                    .ok_or_else(|| OnnxError::External {
                        tensor: name.clone(),
                        reason: "no 'location' entry".into(),
                    })?;
            let bytes = self.ext.load(
                &name,
                location,
                tensor.external_entry("offset"),
                tensor.external_entry("length"),
            )?;
            tensor.external_bytes = Some(bytes);
        }
        tensor
            .check_size()
            .map_err(|e| OnnxError::ir("reading tensors", e))?;
        Ok(tensor)
    }

    fn function(&mut self, f: proto::FunctionProto) -> Result<Function, OnnxError> {
        let fname = f.name.clone().unwrap_or_default();
        let mut body = Graph::new();
        for name in &f.input {
            let v = body.intern(name);
            body.push_input(v);
        }
        for n in f.node {
            self.node(&mut body, n)?;
        }
        for name in &f.output {
            let v = body.intern(name);
            body.push_output(v);
        }
        let mut declared = std::collections::HashSet::new();
        for (i, vi) in f.value_info.into_iter().enumerate() {
            let v = declare(&mut body, &mut declared, IoList::ValueInfo, i, vi);
            body.push_value_info(v);
        }
        resolve_undefined(&mut body, Scope::Nested, &fname)?;
        let attribute_proto = f
            .attribute_proto
            .into_iter()
            .map(|a| self.attribute(a))
            .collect::<Result<_, _>>()?;
        Ok(Function {
            name: f.name,
            domain: f.domain,
            overload: f.overload,
            attribute: f.attribute,
            attribute_proto,
            body,
            doc_string: f.doc_string,
            opset_import: opsets_in(f.opset_import),
            metadata_props: pairs_in(f.metadata_props),
        })
    }
}

/// Interns a declared value; the first declaration gives the value its info, a later one
/// that says something else is kept as a shadow so export reproduces it.
fn declare(
    graph: &mut Graph,
    declared: &mut std::collections::HashSet<ValueId>,
    list: IoList,
    position: usize,
    vi: proto::ValueInfoProto,
) -> ValueId {
    let (name, info) = value_info_in(vi);
    let v = graph.intern(&name);
    if declared.insert(v) {
        graph.value_mut(v).info = info;
    } else if graph.value(v).info != info {
        graph.shadow_infos.push(ShadowInfo {
            list,
            position,
            info,
        });
    }
    v
}

/// Values read but defined nowhere: in the main graph an error naming the first reader;
/// in a nested graph, references to the enclosing scope.
fn resolve_undefined(graph: &mut Graph, scope: Scope, gname: &str) -> Result<(), OnnxError> {
    graph
        .resolve_scope(scope == Scope::Nested)
        .map_err(|e| OnnxError::ir(format!("graph '{gname}'"), e))
}

//! IR → proto. Nodes are written in topological order (file order when untouched);
//! tensors keep their encoding; external tensors keep their location and offsets, and
//! tensors over the size threshold move to external data.

use crate::convert::{opaque_out, opsets_out, pairs_out, type_out};
use crate::error::OnnxError;
use crate::external::{ExternalLayout, Piece};
use crate::proto;
use crate::targets::InputFiles;
use crate::wire_list::WireList;
use whittle_ir::{
    Attribute, Function, Graph, IoList, Model, Node, StringPair, Tensor, ValueId,
    tensor::DATA_LOCATION_EXTERNAL,
};

/// How tensors are stored on export.
#[derive(Clone, Debug, Default)]
pub struct ExportOptions {
    /// Move tensors of at least this many bytes to external data (None: only tensors that
    /// were external already).
    pub external_threshold: Option<u64>,
    /// The one data file (a file name beside the model) that external tensors go to;
    /// None: `<model file name>.data` when saving to a file (`model.onnx.data` in memory).
    /// Tensors that were external in other files move there too: an output's data is
    /// never written under a name taken from its input.
    pub external_location: Option<String>,
    /// The files the model was read from, which a save must not write over (see
    /// [`crate::targets::check_targets`]).
    pub input: Option<InputFiles>,
    /// Embed the bytes of external tensors in the model instead (one self-contained
    /// buffer; takes precedence over the settings above).
    pub inline_external: bool,
}

impl ExportOptions {
    /// The data file name for a model written to `path` (None: in memory).
    pub fn data_name(&self, path: Option<&std::path::Path>) -> String {
        crate::targets::data_name_for(
            path.unwrap_or(std::path::Path::new("model.onnx")),
            self.external_location.as_deref(),
        )
    }
}

/// Alignment of newly placed external tensors (lets runtimes map them directly).
const EXTERNAL_ALIGN: u64 = 64;

/// Converts a model to its proto; external bytes to write are collected in `layout`
/// (deferred tensors that go to external data are placed there uncomputed; those kept
/// inline are computed now).
pub fn export_model(
    m: &Model,
    opts: &ExportOptions,
    layout: &mut ExternalLayout,
) -> Result<proto::ModelProto, OnnxError> {
    export_model_sized(m, opts, layout, true).map(|(p, _)| p)
}

/// [`export_model`]; with `fill` false, deferred tensors that would be inline are left
/// empty and only counted: the second value is their bytes, so a caller can tell whether
/// the model passes protobuf's limit before computing any of them.
pub(crate) fn export_model_sized(
    m: &Model,
    opts: &ExportOptions,
    layout: &mut ExternalLayout,
    fill: bool,
) -> Result<(proto::ModelProto, u64), OnnxError> {
    let location = opts.data_name(None);
    let keep = match kept_end(m, &location) {
        Some(end) => {
            layout.reserve(&location, end);
            true
        }
        None => false,
    };
    let mut cx = Cx {
        opts,
        location,
        keep,
        layout,
        fill,
        unfilled: 0,
    };
    let graph = if m.has_graph {
        Some(cx.graph(&m.graph)?)
    } else {
        None
    };
    let mut p = proto::ModelProto {
        ir_version: m.ir_version,
        opset_import: opsets_out(&m.opset_imports),
        producer_name: m.producer_name.clone(),
        producer_version: m.producer_version.clone(),
        domain: m.domain.clone(),
        model_version: m.model_version,
        doc_string: m.doc_string.clone(),
        graph,
        metadata_props: pairs_out(&m.metadata_props),
        training_info: m
            .training_info
            .iter()
            .map(opaque_out)
            .collect::<Result<_, _>>()
            .map_err(corrupt)?,
        functions: m
            .functions
            .iter()
            .map(|f| cx.function(f))
            .collect::<Result<_, _>>()?,
        configuration: m
            .configuration
            .iter()
            .map(opaque_out)
            .collect::<Result<_, _>>()
            .map_err(corrupt)?,
    };
    // Tensors a rewrite dropped or replaced leave holes in the data files they kept.
    crate::compact::compact(&mut p, cx.layout, EXTERNAL_ALIGN);
    Ok((p, cx.unfilled))
}

fn corrupt(e: prost::DecodeError) -> OnnxError {
    OnnxError::Invalid(format!(
        "an opaque message kept from the input no longer decodes: {e}"
    ))
}

/// When every external tensor of `m` already lives in `location`, they keep their offsets
/// (an unchanged model round-trips byte for byte) and newly external tensors go after the
/// last of them: returns that end. None: some live in another file, and all of them move.
fn kept_end(m: &Model, location: &str) -> Option<u64> {
    let mut end = 0u64;
    let mut all = true;
    crate::targets::each_tensor(m, &mut |t| {
        if !t.is_external() {
            return;
        }
        match (t.external_entry("location"), &t.external_bytes) {
            (Some(l), Some(b)) if l == location => {
                let offset = t
                    .external_entry("offset")
                    .and_then(|o| o.trim().parse::<u64>().ok())
                    .unwrap_or(0);
                end = end.max(offset.saturating_add(b.len() as u64));
            }
            _ => all = false,
        }
    });
    all.then_some(end)
}

struct Cx<'a> {
    opts: &'a ExportOptions,
    /// The data file external tensors are written to.
    location: String,
    /// External tensors keep their offsets in `location` (all of them are there).
    keep: bool,
    layout: &'a mut ExternalLayout,
    /// Compute deferred tensors that stay inline (false: count them in `unfilled`).
    fill: bool,
    unfilled: u64,
}

fn names(g: &Graph, slots: &[Option<ValueId>]) -> Vec<String> {
    slots
        .iter()
        .map(|v| v.map_or_else(String::new, |v| g.value(v).name().to_string()))
        .collect()
}

fn value_info_out(g: &Graph, list: IoList, position: usize, v: ValueId) -> proto::ValueInfoProto {
    let val = g.value(v);
    let info = g
        .shadow_infos
        .iter()
        .find(|s| s.list == list && s.position == position)
        .map_or(&val.info, |s| &s.info);
    proto::ValueInfoProto {
        name: Some(val.name().to_string()),
        r#type: info.ty.as_ref().map(type_out),
        doc_string: info.doc_string.clone(),
        metadata_props: pairs_out(&info.metadata_props),
    }
}

impl Cx<'_> {
    fn graph(&mut self, g: &Graph) -> Result<proto::GraphProto, OnnxError> {
        let gname = g.name.clone().unwrap_or_default();
        let order = g
            .nodes_in_order()
            .map_err(|e| OnnxError::ir(format!("graph '{gname}'"), e))?;
        let node = order
            .iter()
            .map(|n| self.node(g, g.node(*n)))
            .collect::<Result<_, _>>()?;
        let initializer = g
            .initializers()
            .iter()
            .filter_map(|v| g.value(*v).initializer())
            .map(|t| self.tensor(t))
            .collect::<Result<_, _>>()?;
        let io = |list: IoList, ids: &[ValueId]| -> Vec<proto::ValueInfoProto> {
            ids.iter()
                .enumerate()
                .map(|(i, v)| value_info_out(g, list, i, *v))
                .collect()
        };
        Ok(proto::GraphProto {
            node,
            name: g.name.clone(),
            initializer,
            sparse_initializer: g
                .sparse_initializers
                .iter()
                .map(opaque_out)
                .collect::<Result<_, _>>()
                .map_err(corrupt)?,
            doc_string: g.doc_string.clone(),
            input: io(IoList::Input, g.inputs()),
            output: io(IoList::Output, g.outputs()),
            value_info: io(IoList::ValueInfo, g.value_info()),
            quantization_annotation: g
                .quantization_annotation
                .iter()
                .map(|a| proto::TensorAnnotation {
                    tensor_name: a.tensor_name.clone(),
                    quant_parameter_tensor_names: pairs_out(&a.quant_parameter_tensor_names),
                })
                .collect(),
            metadata_props: pairs_out(&g.metadata_props),
        })
    }

    fn node(&mut self, g: &Graph, n: &Node) -> Result<proto::NodeProto, OnnxError> {
        Ok(proto::NodeProto {
            input: names(g, n.inputs()),
            output: names(g, n.outputs()),
            name: n.name.clone(),
            op_type: n.op_type.clone(),
            domain: n.domain.clone(),
            overload: n.overload.clone(),
            attribute: n
                .attributes
                .iter()
                .map(|a| self.attribute(a))
                .collect::<Result<_, _>>()?,
            doc_string: n.doc_string.clone(),
            metadata_props: pairs_out(&n.metadata_props),
            device_configurations: n
                .device_configurations
                .iter()
                .map(opaque_out)
                .collect::<Result<_, _>>()
                .map_err(corrupt)?,
        })
    }

    fn attribute(&mut self, a: &Attribute) -> Result<proto::AttributeProto, OnnxError> {
        let head = proto::AttributeProtoHead {
            name: a.name.clone(),
            f: a.f,
            i: a.i,
            s: a.s.clone(),
            t: a.t.as_deref().map(|t| self.tensor(t)).transpose()?,
            g: a.g.as_deref().map(|g| self.graph(g)).transpose()?,
        };
        let tail = proto::AttributeProtoTail {
            tensors: a
                .tensors
                .iter()
                .map(|t| self.tensor(t))
                .collect::<Result<_, _>>()?,
            graphs: a
                .graphs
                .iter()
                .map(|g| self.graph(g))
                .collect::<Result<_, _>>()?,
            doc_string: a.doc_string.clone(),
            tp: a.tp.as_ref().map(type_out),
            type_protos: a.type_protos.iter().map(type_out).collect(),
            r#type: a.kind,
            ref_attr_name: a.ref_attr_name.clone(),
            sparse_tensor: a
                .sparse_tensor
                .as_ref()
                .map(opaque_out)
                .transpose()
                .map_err(corrupt)?,
            sparse_tensors: a
                .sparse_tensors
                .iter()
                .map(opaque_out)
                .collect::<Result<_, _>>()
                .map_err(corrupt)?,
        };
        Ok(proto::AttributeProto {
            head,
            floats: WireList::from_list(&a.floats),
            ints: WireList::from_list(&a.ints),
            strings: WireList::from_list(&a.strings),
            tail,
        })
    }

    fn tensor(&mut self, t: &Tensor) -> Result<proto::TensorProto, OnnxError> {
        let mut p = proto::TensorProto {
            dims: t.dims.clone(),
            data_type: t.data_type,
            segment: t.segment.as_ref().map(|s| proto::tensor_proto::Segment {
                begin: s.begin,
                end: s.end,
            }),
            float_data: t.data.floats.clone(),
            int32_data: t.data.int32s.clone(),
            string_data: t.data.strings.clone(),
            int64_data: t.data.int64s.clone(),
            name: t.name.clone(),
            doc_string: t.doc_string.clone(),
            raw_data: t.data.raw.clone(),
            external_data: pairs_out(&t.external_data),
            data_location: t.data_location,
            double_data: t.data.doubles.clone(),
            uint64_data: t.data.uint64s.clone(),
            metadata_props: pairs_out(&t.metadata_props),
        };
        if t.deferred().is_some() && !self.should_externalize(t) {
            self.inline_deferred(t, &mut p)?;
        } else if t.is_external() && self.opts.inline_external {
            Self::inline(t, &mut p)?;
        } else if t.is_external() && self.keep {
            self.keep_external(t)?;
        } else if t.is_external() || self.should_externalize(t) {
            self.externalize(t, &mut p)?;
        }
        Ok(p)
    }

    /// A deferred tensor that stays in the model: computed now (or only counted).
    fn inline_deferred(&mut self, t: &Tensor, p: &mut proto::TensorProto) -> Result<(), OnnxError> {
        if self.fill {
            p.raw_data = Some(t.le_bytes().map_err(|e| OnnxError::ir("export", e))?);
        } else {
            self.unfilled += t.stored_bytes();
            p.raw_data = Some(bytes::Bytes::new());
        }
        Ok(())
    }

    /// An external tensor's bytes written into the tensor itself.
    fn inline(t: &Tensor, p: &mut proto::TensorProto) -> Result<(), OnnxError> {
        let bytes = t
            .external_bytes
            .clone()
            .ok_or_else(|| OnnxError::External {
                tensor: t.name().to_string(),
                reason: "its data was not loaded".into(),
            })?;
        p.raw_data = Some(bytes);
        p.external_data.clear();
        p.data_location = None;
        Ok(())
    }

    /// An external tensor keeps its entries; its bytes go back to the same place.
    fn keep_external(&mut self, t: &Tensor) -> Result<(), OnnxError> {
        let err = |reason: &str| OnnxError::External {
            tensor: t.name().to_string(),
            reason: reason.to_string(),
        };
        let bytes = t
            .external_bytes
            .clone()
            .ok_or_else(|| err("its data was not loaded"))?;
        let location = t
            .external_entry("location")
            .ok_or_else(|| err("no 'location' entry"))?;
        let offset = match t.external_entry("offset") {
            Some(s) => s
                .trim()
                .parse::<u64>()
                .map_err(|_| err("offset is not a number"))?,
            None => 0,
        };
        self.layout.place(location, offset, bytes);
        Ok(())
    }

    fn should_externalize(&self, t: &Tensor) -> bool {
        let Some(threshold) = self.opts.external_threshold else {
            return false;
        };
        t.dtype().bit_width().is_some() && t.stored_bytes() >= threshold && t.stored_bytes() > 0
    }

    /// Moves a tensor's data to the external file (raw little-endian, aligned).
    fn externalize(&mut self, t: &Tensor, p: &mut proto::TensorProto) -> Result<(), OnnxError> {
        let piece = match t.deferred() {
            Some(d) => Piece::Deferred {
                tensor: t.name().to_string(),
                data: d.clone(),
            },
            None => Piece::Ready(t.le_bytes().map_err(|e| OnnxError::ir("export", e))?),
        };
        let location = self.location.clone();
        let offset = self.layout.end_of(&location, EXTERNAL_ALIGN);
        let len = piece.len();
        self.layout.place(&location, offset, piece);
        p.raw_data = None;
        p.float_data.clear();
        p.int32_data.clear();
        p.int64_data.clear();
        p.double_data.clear();
        p.uint64_data.clear();
        p.data_location = Some(DATA_LOCATION_EXTERNAL);
        p.external_data = pairs_out(&[
            StringPair::new("location", location),
            StringPair::new("offset", offset.to_string()),
            StringPair::new("length", len.to_string()),
        ]);
        Ok(())
    }

    fn function(&mut self, f: &Function) -> Result<proto::FunctionProto, OnnxError> {
        let g = &f.body;
        let fname = f.name.clone().unwrap_or_default();
        let order = g
            .nodes_in_order()
            .map_err(|e| OnnxError::ir(format!("function '{fname}'"), e))?;
        let all = |ids: &[ValueId]| ids.iter().map(|v| g.value(*v).name().to_string()).collect();
        Ok(proto::FunctionProto {
            name: f.name.clone(),
            input: all(g.inputs()),
            output: all(g.outputs()),
            attribute: f.attribute.clone(),
            attribute_proto: f
                .attribute_proto
                .iter()
                .map(|a| self.attribute(a))
                .collect::<Result<_, _>>()?,
            node: order
                .iter()
                .map(|n| self.node(g, g.node(*n)))
                .collect::<Result<_, _>>()?,
            doc_string: f.doc_string.clone(),
            opset_import: opsets_out(&f.opset_import),
            domain: f.domain.clone(),
            overload: f.overload.clone(),
            value_info: g
                .value_info()
                .iter()
                .enumerate()
                .map(|(i, v)| value_info_out(g, IoList::ValueInfo, i, *v))
                .collect(),
            metadata_props: pairs_out(&f.metadata_props),
        })
    }
}

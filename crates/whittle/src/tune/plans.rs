//! The candidate plans `whittle tune` weighs for one model: settings of the one driver,
//! chosen from what the model has (dense layers, convolutions, attention, a KV cache),
//! what the data allows (structural steps need real data) and what the runtime runs.
//! Each is ordered and pruned by a cheap estimate, the share of weight bytes it can
//! touch, before anything is measured.

use crate::config::Settings;
use whittle_eval::Runtime;
use whittle_ir::{Graph, Model};

/// A plan: a name for the table and the settings it adds to the user's.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub name: String,
    /// Only the keys this plan sets (lossy plans also set `budget`).
    pub settings: Settings,
    /// Estimated initializer bytes after it, over before (orders the search).
    pub estimate: f64,
}

/// Plans not tried, with why.
pub type Skipped = Vec<(String, String)>;

/// What the model has that decides which plans apply.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Features {
    /// Initializer bytes of all weights, and of those dense layers and convs read.
    pub(crate) bytes: u64,
    pub(crate) dense_bytes: u64,
    pub(crate) conv_bytes: u64,
    pub(crate) attention: bool,
    /// Inputs named like a KV cache (`past…`): a decoder step.
    pub(crate) decoder: bool,
    /// Multiply-adds of the dense layers per weight element, for one sample: how many
    /// rows each weight meets. Reading a weight costs the same once or 128 times, so 4-bit
    /// weights pay in latency only where this is small (a decode step: 1).
    pub(crate) reuse: Option<f64>,
}

/// Dense layers whose weights meet at least this many rows per sample are compute-bound:
/// int4 is not tried for latency (tried for `--objective size`).
pub(crate) const COMPUTE_BOUND: f64 = 32.0;

impl Features {
    pub(crate) fn of(model: &Model) -> Features {
        let g = &model.graph;
        let mut f = Features {
            bytes: stored(g, g.initializers().iter().copied()),
            ..Features::default()
        };
        for n in g.node_ids() {
            let node = g.node(n);
            let weight = |slot: usize| node.input(slot).and_then(|v| g.value(v).initializer());
            let big = |t: &whittle_ir::Tensor| t.dims.iter().product::<i64>() >= 1024;
            match node.op() {
                "MatMul" | "Gemm" => {
                    if let Some(t) = weight(1).filter(|t| big(t)) {
                        f.dense_bytes += t.stored_bytes();
                    }
                }
                "Conv" => {
                    if let Some(t) = weight(1).filter(|t| big(t)) {
                        f.conv_bytes += t.stored_bytes();
                    }
                }
                "Softmax" | "Attention" => f.attention = true,
                _ => {}
            }
        }
        f.decoder = g
            .inputs()
            .iter()
            .any(|v| g.value(*v).name().to_ascii_lowercase().starts_with("past"));
        f
    }

    /// [`Features::reuse`] with the inputs shaped as `sample` (one sample of the data).
    pub(crate) fn with_reuse(mut self, model: &Model, sample: &[whittle_ir::Tensor]) -> Features {
        self.reuse = dense_reuse(model, sample);
        self
    }

    /// The share of weight bytes in dense layers and convs.
    fn share(&self, bytes: u64) -> f64 {
        if self.bytes == 0 {
            0.0
        } else {
            bytes as f64 / self.bytes as f64
        }
    }
}

/// MACs of the dense layers with big constant weights over their weight elements, with
/// the graph inputs shaped as `sample`; None when a cost is not a number.
fn dense_reuse(model: &Model, sample: &[whittle_ir::Tensor]) -> Option<f64> {
    let mut m = model.clone();
    let g = &m.graph;
    let inputs = g
        .inputs()
        .iter()
        .filter(|v| g.value(**v).initializer().is_none());
    let input_shapes = inputs
        .zip(sample)
        .map(|(v, t)| {
            let dims = t.dims.iter().map(|d| whittle_ir::Dim::Known(*d)).collect();
            (g.value(*v).name().to_string(), dims)
        })
        .collect();
    whittle_ir::infer::infer(&mut m, &whittle_ir::infer::InferOptions { input_shapes }).ok()?;
    let g = &m.graph;
    let (mut macs, mut weights) = (0f64, 0f64);
    for c in whittle_ir::cost::graph_costs(g) {
        let node = g.node(c.node);
        let w = node.input(1).and_then(|v| g.value(v).initializer());
        let Some(w) = w.filter(|_| matches!(node.op(), "MatMul" | "Gemm")) else {
            continue;
        };
        macs += c.macs.as_ref()?.as_const()? as f64;
        weights += w.dims.iter().product::<i64>() as f64;
    }
    (weights > 0.0).then(|| macs / weights)
}

fn stored(g: &Graph, values: impl Iterator<Item = whittle_ir::ValueId>) -> u64 {
    values
        .filter_map(|v| g.value(v).initializer().map(|t| t.stored_bytes()))
        .sum()
}

/// A plan below this estimated saving is not worth a measurement.
const MIN_SAVING: f64 = 0.05;

/// The plans for a model with `f`, judged against `budget`; `data`: real calibration
/// data was given. Lossless `-O2` first, then the rest by estimated size.
pub(crate) fn plans(
    f: &Features,
    data: bool,
    runtime: &Runtime,
    (budget, size): (&str, bool),
) -> (Vec<Plan>, Skipped) {
    let mut skipped = Skipped::new();
    let mut out = vec![Plan {
        name: "-O2".into(),
        settings: Settings {
            level: Some(2),
            ..Settings::default()
        },
        estimate: 1.0,
    }];
    let lossy = |name: &str, s: Settings, estimate: f64| Plan {
        name: name.into(),
        settings: Settings {
            budget: Some(budget.to_string()),
            ..s
        },
        estimate,
    };
    let mut candidates = quantizations(f, (data, size), runtime, &lossy, &mut skipped);
    structural(f, data, &lossy, &mut candidates, &mut skipped);
    for p in candidates {
        if 1.0 - p.estimate < MIN_SAVING {
            let why = format!(
                "touches under {:.0}% of the weight bytes",
                MIN_SAVING * 100.0
            );
            skipped.push((p.name, why));
        } else {
            out.push(p);
        }
    }
    out[1..].sort_by(|a, b| a.estimate.total_cmp(&b.estimate));
    (out, skipped)
}

/// The quantization mode `mode`'s settings.
fn q(mode: &str) -> Settings {
    Settings {
        quantize: Some(mode.into()),
        ..Settings::default()
    }
}

/// The quantizations that apply to dense layers and convs, with their size estimates
/// (the share of weight bytes each one stores smaller).
fn quantizations(
    f: &Features,
    (data, size): (bool, bool),
    runtime: &Runtime,
    lossy: &dyn Fn(&str, Settings, f64) -> Plan,
    skipped: &mut Skipped,
) -> Vec<Plan> {
    let (dense, conv) = (f.share(f.dense_bytes), f.share(f.conv_bytes));
    let mut out = Vec::new();
    if dense > 0.0 {
        // tract runs MatMulNBits but not blocked DequantizeLinear.
        let format = if runtime.any_shape() {
            "dq"
        } else {
            "matmulnbits"
        };
        let auto = Settings {
            act_scale: Some("auto".into()),
            ..q("int8-dynamic")
        };
        let int4 = Settings {
            int4_format: Some(format.into()),
            ..q("int4")
        };
        out.push(lossy("int8-dynamic", auto, 1.0 - 0.75 * dense));
        out.push(lossy("int8-weights", q("int8-weights"), 1.0 - 0.75 * dense));
        match f.reuse {
            Some(r) if r >= COMPUTE_BOUND && !size => skipped.push((
                "int4".into(),
                format!(
                    "the dense layers are compute-bound here (each weight meets {r:.0} rows per \
                     sample): 4-bit weights save reads, not multiplies (--objective size tries it)"
                ),
            )),
            _ => out.push(lossy("int4", int4, 1.0 - 0.84 * dense)),
        }
    }
    if dense + conv > 0.0 {
        out.push(lossy(
            "fp16-weights",
            q("fp16-weights"),
            1.0 - 0.5 * (dense + conv),
        ));
    }
    if conv > 0.0 {
        let convs = Settings {
            ops: Some(vec!["MatMul".into(), "Gemm".into(), "Conv".into()]),
            act_scale: Some("tensor".into()),
            ..q("int8-dynamic")
        };
        out.push(lossy(
            "int8-dynamic (with Conv)",
            convs,
            1.0 - 0.75 * (dense + conv),
        ));
        match data {
            true => out.push(lossy(
                "int8-static",
                q("int8-static"),
                1.0 - 0.73 * (dense + conv),
            )),
            false => skipped.push(("int8-static".into(), "needs --calibrate".into())),
        }
    }
    out
}

/// Pruning and decomposition, which fit to real data only.
fn structural(
    f: &Features,
    data: bool,
    lossy: &dyn Fn(&str, Settings, f64) -> Plan,
    out: &mut Vec<Plan>,
    skipped: &mut Skipped,
) {
    let mut wanted = Vec::new();
    if f.conv_bytes > 0 {
        wanted.push((
            "prune conv,dense",
            Settings {
                prune: Some(vec!["conv".into(), "dense".into()]),
                ..Settings::default()
            },
        ));
        wanted.push((
            "decompose conv",
            Settings {
                decompose: Some(vec!["conv".into()]),
                ..Settings::default()
            },
        ));
    }
    if f.attention && !f.decoder && f.dense_bytes > 0 {
        wanted.push((
            "prune ffn,heads",
            Settings {
                prune: Some(vec!["ffn".into(), "heads".into()]),
                ..Settings::default()
            },
        ));
    }
    for (name, s) in wanted {
        if data {
            out.push(lossy(name, s, 0.8));
        } else {
            skipped.push((name.into(), "fits to real data: needs --calibrate".into()));
        }
    }
}

/// `a` and `b` in one plan (a structural step, then a quantization).
pub(crate) fn combined(a: &Plan, b: &Plan) -> Plan {
    Plan {
        name: format!("{} + {}", a.name, b.name),
        settings: a.settings.overlay(&b.settings),
        estimate: a.estimate * b.estimate,
    }
}

/// True for plans that change the model's structure (pruning, decomposition).
pub(crate) fn is_structural(p: &Plan) -> bool {
    p.settings.prune.is_some() || p.settings.decompose.is_some()
}

/// True for plans that quantize.
pub(crate) fn is_quantizing(p: &Plan) -> bool {
    p.settings.quantize.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use whittle_ir::text::parse_model;

    /// A CNN: a conv and a dense head (`big`: weights worth quantizing), optionally
    /// with attention's Softmax and a KV-cache input.
    fn model(big: bool, softmax: bool, past: bool) -> Model {
        let (c, d) = if big { (64, 4096) } else { (2, 8) };
        let mut src = format!(
            "ir_version 8\nopset ai.onnx 17\ngraph {{\n  input x: f32[1,3,8,8]\n{}  output y: f32[1,{d}]\n  \
             init w: f32[{c},3,3,3] = random\n  init m: f32[{},{d}] = random\n  \
             h = Conv(x, w)\n  f = Flatten(h)\n  y0 = MatMul(f, m)\n",
            if past {
                "  input past_key: f32[1,4]\n"
            } else {
                ""
            },
            c * 36
        );
        src += if softmax {
            "  y = Softmax(y0)\n}\n"
        } else {
            "  y = Identity(y0)\n}\n"
        };
        parse_model(&src).unwrap()
    }

    fn names(p: &[Plan]) -> Vec<&str> {
        p.iter().map(|p| p.name.as_str()).collect()
    }

    #[test]
    fn a_cnn_gets_quantizations_and_with_data_static_and_structural_plans() {
        let f = Features::of(&model(true, false, false));
        assert!(f.conv_bytes > 0 && f.dense_bytes > 0 && !f.attention);
        let (with, _) = plans(&f, true, &Runtime::Tract, ("top1=0.99", false));
        for p in [
            "-O2",
            "int8-static",
            "int8-weights",
            "int4",
            "prune conv,dense",
            "decompose conv",
        ] {
            assert!(names(&with).contains(&p), "{p}: {:?}", names(&with));
        }
        assert!(
            with[1..]
                .iter()
                .all(|p| p.settings.budget.as_deref() == Some("top1=0.99"))
        );
        assert!(
            with[1..].windows(2).all(|w| w[0].estimate <= w[1].estimate),
            "ordered by estimate"
        );
        let int4 = with.iter().find(|p| p.name == "int4").unwrap();
        assert_eq!(
            int4.settings.int4_format.as_deref(),
            Some("matmulnbits"),
            "tract runs MatMulNBits, not blocked DQ"
        );
        let (without, skipped) = plans(&f, false, &Runtime::Tract, ("top1=0.99", false));
        for p in ["int8-static", "prune conv,dense", "decompose conv"] {
            assert!(!names(&without).contains(&p));
            assert!(
                skipped
                    .iter()
                    .any(|(n, why)| n == p && why.contains("--calibrate")),
                "{skipped:?}"
            );
        }
    }

    #[test]
    fn a_model_whose_weights_are_mostly_a_table_is_only_cleaned_up() {
        // The dense layer holds 0.6% of the weight bytes: quantizing it cannot pay.
        let m = parse_model(
            "ir_version 8\nopset ai.onnx 17\ngraph {\n  input ids: i64[1,4]\n  output y: f32[1,4,48]\n  \
             init table: f32[4096,64] = random\n  init w: f32[64,48] = random\n  \
             e = Gather(table, ids)\n  y = MatMul(e, w)\n}\n",
        )
        .unwrap();
        let (p, skipped) = plans(
            &Features::of(&m),
            true,
            &Runtime::Tract,
            ("cosine=0.99", false),
        );
        assert_eq!(names(&p), ["-O2"]);
        assert!(
            skipped
                .iter()
                .any(|(n, why)| n == "int4" && why.contains("under 5%")),
            "{skipped:?}"
        );
        let tiny = Features::of(&model(false, false, false));
        assert_eq!(
            names(&plans(&tiny, true, &Runtime::Tract, ("cosine=0.99", false)).0),
            ["-O2"]
        );
    }

    /// A dense layer over `rows` tokens: each weight meets `rows` rows per sample.
    #[test]
    fn int4_is_tried_for_latency_only_where_weights_are_read_more_than_used() {
        let m = parse_model(
            "ir_version 8\nopset ai.onnx 17\ngraph {\n  input x: f32[1,S,64]\n  output y: f32[1,S,48]\n  \
             init w: f32[64,48] = random\n  y = MatMul(x, w)\n}\n",
        )
        .unwrap();
        let sample = |rows: i64| {
            vec![whittle_ir::Tensor::from_f32(
                vec![1, rows, 64],
                &vec![0.0; rows as usize * 64],
            )]
        };
        let has_int4 = |rows: i64, size: bool| {
            let f = Features::of(&m).with_reuse(&m, &sample(rows));
            assert_eq!(f.reuse, Some(rows as f64));
            names(&plans(&f, false, &Runtime::Tract, ("cosine=0.99", size)).0).contains(&"int4")
        };
        assert!(
            has_int4(1, false),
            "a decode step reads each weight for one row"
        );
        assert!(!has_int4(128, false), "128 rows per weight: compute-bound");
        assert!(has_int4(128, true), "--objective size still tries it");
    }

    #[test]
    fn heads_are_pruned_in_encoders_not_in_decoder_steps() {
        let enc = Features::of(&model(true, true, false));
        assert!(
            names(&plans(&enc, true, &Runtime::Tract, ("cosine=0.99", false)).0)
                .contains(&"prune ffn,heads")
        );
        let dec = Features::of(&model(true, true, true));
        assert!(dec.decoder);
        assert!(
            !names(&plans(&dec, true, &Runtime::Tract, ("cosine=0.99", false)).0)
                .contains(&"prune ffn,heads")
        );
    }
}

//! The library API: determinism, bytes in/out, and the build-script cache.

use std::path::Path;
use whittle::{Level, Optimizer, build};
use whittle_testkit::{fixture, fixtures};

#[test]
fn output_is_byte_identical_across_runs() {
    for path in fixtures() {
        if path.to_string_lossy().contains(".ext.") {
            continue; // external data: covered through optimize_file below
        }
        let bytes = std::fs::read(&path).unwrap();
        let (a, mut ra) = Optimizer::new().optimize_bytes(&bytes).unwrap();
        let (b, mut rb) = Optimizer::new().optimize_bytes(&bytes).unwrap();
        assert_eq!(a, b, "{}", path.display());
        // Pass times are measurements; everything else in the report is what was done.
        for p in ra.passes.iter_mut().chain(rb.passes.iter_mut()) {
            p.time = std::time::Duration::ZERO;
        }
        assert_eq!(ra, rb);
    }
    // Same file name in two folders: the data file's name, written in the model, follows it.
    let (dx, dy) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (x, y) = (dx.path().join("m.onnx"), dy.path().join("m.onnx"));
    let ext = fixture("cnn_bn.ts.ext.onnx");
    Optimizer::new().optimize_file(&ext, &x).unwrap();
    Optimizer::new().optimize_file(&ext, &y).unwrap();
    assert_eq!(std::fs::read(&x).unwrap(), std::fs::read(&y).unwrap());
}

#[test]
fn settings_are_checked_and_reported() {
    let bytes = std::fs::read(fixture("bert_tiny.ts.onnx")).unwrap();
    let (_, r) = Optimizer::new()
        .level(Level::O1)
        .optimize_bytes(&bytes)
        .unwrap();
    assert!(r.nodes_after < r.nodes_before);
    assert!(
        r.passes.iter().all(|p| p.name != "fuse"),
        "fuse is -O2 only"
    );
    assert_eq!(
        r.rewrites.len(),
        r.passes.iter().map(|p| p.rewrites).sum::<usize>()
    );
    let err = Optimizer::new()
        .passes(&["nope"])
        .optimize_bytes(&bytes)
        .unwrap_err();
    assert!(err.to_string().contains("dead-code"), "{err}");
    let (_, none) = Optimizer::new()
        .level(Level::O0)
        .optimize_bytes(&bytes)
        .unwrap();
    assert_eq!(none.nodes_after, none.nodes_before);
}

fn modified(p: &Path) -> std::time::SystemTime {
    std::fs::metadata(p).unwrap().modified().unwrap()
}

#[test]
fn build_step_watches_files_and_skips_unchanged_work() {
    let dir = tempfile::tempdir().unwrap();
    let model = fixture("cnn_bn.ts.ext.onnx");
    let mut said = Vec::new();
    let out =
        build::optimize_into(&model, &Optimizer::new(), dir.path(), &mut |l| said.push(l)).unwrap();
    assert!(
        said.iter().any(|l| l.ends_with("cnn_bn.ts.ext.onnx")),
        "{said:?}"
    );
    assert!(
        said.iter().any(|l| l.ends_with("cnn_bn.ts.ext.onnx.data")),
        "external data is watched: {said:?}"
    );
    let first = modified(&out);
    std::thread::sleep(std::time::Duration::from_millis(20));
    build::optimize_into(&model, &Optimizer::new(), dir.path(), &mut |_| {}).unwrap();
    assert_eq!(
        modified(&out),
        first,
        "unchanged inputs and settings: no work"
    );
    build::optimize_into(
        &model,
        &Optimizer::new().level(Level::O1),
        dir.path(),
        &mut |_| {},
    )
    .unwrap();
    assert_ne!(modified(&out), first, "other settings: optimized again");
    let err = build::optimize(&model, &Optimizer::new())
        .map(|_| ())
        .unwrap_err()
        .to_string();
    if std::env::var_os("OUT_DIR").is_none() {
        assert!(err.contains("OUT_DIR"), "{err}");
    }
}

/// Settings for the given keys (TOML), as a config file would give them.
fn settings(toml: &str) -> whittle::Settings {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("whittle.toml");
    std::fs::write(&path, toml).unwrap();
    whittle::config::Config::load(&path)
        .unwrap()
        .settings_for(Path::new("model.onnx"))
}

#[test]
fn calibrated_quantization_settings_are_checked() {
    let calib = fixture("../data/vgg_digits/calib.npy");
    let bad = [
        ("quantize = \"int8-static\"\n", "needs calibration data"),
        (
            "quantize = \"int8-weights\"\nbudget = \"tol=0.1\"\n",
            "cosine=X or top1=X",
        ),
        ("budget = \"cosine=0.99\"\n", "none is set"),
        (
            "quantize = \"int8-weights\"\ncalibration = \"entropy\"\n",
            "unknown field `calibration`",
        ),
        (
            "quantize = \"int8-weights\"\nfull-range = true\n",
            "full-range",
        ),
        (
            "quantize = \"int8-static\"\ncalibration = \"kl\"\n",
            "minmax, percentile",
        ),
        ("opset = 13\n", "does not lower opsets"),
        ("opset = 25\n", "upgrades opsets 13 to 24 only"),
        ("quantize = \"int4\"\nblock-size = 24\n", "power of two"),
        (
            "quantize = \"int4\"\nint4-format = \"q4\"\n",
            "dq or matmulnbits",
        ),
        (
            "quantize = \"int8-weights\"\nblock-size = 32\n",
            "unknown field `block-size`",
        ),
        (
            "quantize = \"int8-weights\"\nact-scale = \"row\"\n",
            "unknown field `act-scale`",
        ),
        (
            "quantize = \"int8-dynamic\"\nact-scale = \"token\"\n",
            "expected row, tensor or auto",
        ),
    ];
    let model = std::fs::read(fixture("vgg_digits.ts.onnx")).unwrap();
    for (toml, want) in bad {
        let err = whittle::Optimizer::from_settings(&settings(toml))
            .and_then(|o| o.optimize_bytes(&model).map(|_| ()))
            .expect_err(toml);
        assert!(err.to_string().contains(want), "{toml}: {err}");
    }
    // int8-static with a budget: every layer quantized meets a loose one.
    let s = whittle::Settings {
        quantize: Some("int8-static".into()),
        budget: Some("cosine=0.99".into()),
        calibrate: Some(calib),
        ..whittle::Settings::default()
    };
    let (_, report) = Optimizer::from_settings(&s)
        .unwrap()
        .optimize_bytes(&model)
        .unwrap();
    let quantized = report
        .passes
        .iter()
        .find(|p| p.name == "quantize-int8-static")
        .map_or(0, |p| p.rewrites);
    assert_eq!(quantized, 7, "5 convs and 2 gemms: {:?}", report.passes);
    let summary = report.notes.iter().find(|(site, _)| site == "graph");
    assert!(
        summary.is_some_and(
            |(_, n)| n.contains("all 7 layers quantized") && n.contains("0 kept float")
        ),
        "{:?}",
        report.notes
    );
}

#[test]
fn fp16_takes_a_budget_and_keeps_the_costliest_nodes_float() {
    // bert_tiny all in float16 misses cosine 0.9999999 on the random inputs, so the
    // budget has to keep something float; 68 nodes are measured in groups.
    let s = whittle::Settings {
        quantize: Some("fp16".into()),
        budget: Some("cosine=0.9999999".into()),
        ..whittle::Settings::default()
    };
    let model = std::fs::read(fixture("bert_tiny.ts.onnx")).unwrap();
    let (_, report) = Optimizer::from_settings(&s)
        .unwrap()
        .optimize_bytes(&model)
        .unwrap();
    let kept: Vec<_> = report
        .notes
        .iter()
        .filter(|(_, n)| n.starts_with("kept float for --budget cosine=0.9999999"))
        .collect();
    assert!(!kept.is_empty(), "{:?}", report.notes);
    assert!(
        report.notes.iter().any(|(site, n)| site == "graph"
            && n.contains("layers quantized gives cosine")
            && n.contains("kept float gives cosine")),
        "{:?}",
        report.notes
    );
}

#[test]
fn int4_upgrades_an_older_export_to_opset_21_for_blocked_dequantize_linear() {
    let s = whittle::Settings {
        quantize: Some("int4".into()),
        ..whittle::Settings::default()
    };
    let model = std::fs::read(fixture("vgg_digits.ts.onnx")).unwrap();
    let (bytes, report) = Optimizer::from_settings(&s)
        .unwrap()
        .optimize_bytes(&model)
        .unwrap();
    assert!(
        report
            .notes
            .iter()
            .any(|(_, n)| n.starts_with("opset 17 -> 21 for blocked DequantizeLinear")),
        "{:?}",
        report.notes
    );
    let out = whittle_onnx::read_model_bytes(bytes.into(), Path::new("int4.onnx"), None).unwrap();
    assert_eq!(out.opset(""), Some(21));
    assert_eq!(out.ir_version, Some(10));
}

#[test]
fn prune_then_quantize_share_one_budget() {
    // Quantization runs alone first; pruning gets what it leaves of the allowance (at
    // least a quarter): both do something, and the split is in the report.
    let calib = fixture("../data/vgg_digits/calib.npy");
    let model = std::fs::read(fixture("vgg_digits.ts.onnx")).unwrap();
    let s = whittle::Settings {
        prune: Some(vec!["conv".into(), "dense".into()]),
        quantize: Some("int8-static".into()),
        budget: Some("cosine=0.99".into()),
        calibrate: Some(calib),
        ..whittle::Settings::default()
    };
    let (_, report) = Optimizer::from_settings(&s)
        .unwrap()
        .optimize_bytes(&model)
        .unwrap();
    let pruned = report.prune.as_ref().expect("prune ran");
    let share = pruned.budget.allowance().unwrap_or(f64::NAN);
    assert!((0.0025..0.01).contains(&share), "{}", pruned.budget);
    assert!(
        report
            .notes
            .iter()
            .any(|(_, n)| n.contains("shared with quantization")
                && n.contains(&format!("pruning is held to {}", pruned.budget))),
        "{:?}",
        report.notes
    );
    assert!(pruned.groups.iter().any(|g| g.kept < g.total), "{pruned:?}");
    let quantized = report
        .passes
        .iter()
        .find(|p| p.name == "quantize-int8-static")
        .map_or(0, |p| p.rewrites);
    assert!(quantized > 0, "{:?}", report.passes);
}

/// Two dense layers: `a` reads activations whose first row is 300 times the others (one
/// scale per tensor leaves the other rows a few levels), `b` plain ones.
const OUTLIER_ROWS: &str = "
ir_version 8
opset ai.onnx 17
graph {
  input x: f32[8,64]
  input z: f32[8,64]
  output y1: f32[8,32]
  output y2: f32[8,32]
  init rows: f32[8,1] = [300.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
  init w1: f32[64,32] = random
  init w2: f32[64,32] = random
  xs = Mul(x, rows)
  y1 = MatMul(xs, w1) @a
  y2 = MatMul(z, w2) @b
}
";

#[test]
fn act_scale_auto_scales_per_row_only_the_layer_that_needs_it() {
    let settings = |scale: &str, budget: Option<&str>| whittle::Settings {
        quantize: Some("int8-dynamic".into()),
        act_scale: Some(scale.into()),
        min_elements: Some(1),
        budget: budget.map(str::to_string),
        ..whittle::Settings::default()
    };
    let cosine = |scale: &str| {
        let mut m = whittle_ir::text::parse_model(OUTLIER_ROWS).unwrap();
        let report = Optimizer::from_settings(&settings(scale, Some("cosine=0.5")))
            .unwrap()
            .optimize_model(&mut m)
            .unwrap();
        let graph = report.notes.iter().find(|(s, _)| s == "graph").unwrap();
        let n = &graph.1;
        let at = n.find("gives cosine ").unwrap() + "gives cosine ".len();
        n[at..at + 9].parse::<f64>().unwrap()
    };
    // Between what per tensor and per row reach everywhere: auto must find it by rows.
    let (tensor, row) = (cosine("tensor"), cosine("row"));
    assert!(tensor < row, "{tensor} {row}");
    let budget = format!("cosine={:.7}", (tensor + row) / 2.0);
    let mut m = whittle_ir::text::parse_model(OUTLIER_ROWS).unwrap();
    let report = Optimizer::from_settings(&settings("auto", Some(&budget)))
        .unwrap()
        .optimize_model(&mut m)
        .unwrap();
    let note = |site: &str, text: &str| {
        report
            .notes
            .iter()
            .any(|(s, n)| s == site && n.contains(text))
    };
    assert!(
        note("a", "activations scaled per row"),
        "{:?}",
        report.notes
    );
    assert!(
        note("a", "scaled per row for --budget"),
        "{:?}",
        report.notes
    );
    assert!(
        note("b", "activations scaled per tensor"),
        "{:?}",
        report.notes
    );
    let g = &m.graph;
    let ops = |op: &str| g.node_ids().filter(|n| g.node(*n).op() == op).count();
    assert_eq!(ops("MatMulInteger"), 2);
    assert_eq!(ops("ReduceMax"), 1, "one activation scaled per row");
    // Without a budget there is nothing to choose by.
    let err = Optimizer::from_settings(&settings("auto", None)).unwrap_err();
    assert!(err.to_string().contains("--budget"), "{err}");
}

/// (key, `whittle.toml` line) per setting the base config of
/// `every_setting_changes_the_build_cache_key` can take.
fn setting_rows() -> Vec<(&'static str, &'static str)> {
    vec![
        ("level", "level = 1"),
        ("passes", "passes = [\"fold-constants\"]"),
        ("disable", "disable = [\"cse\"]"),
        ("input-shapes", "input-shapes = { x = [1, 3] }"),
        ("fold-limit", "fold-limit = 64"),
        ("external-data-threshold", "external-data-threshold = 1024"),
        ("external-data-name", "external-data-name = \"w.bin\""),
        ("exclude", "exclude = [\"rule:gelu\"]"),
        ("enable", "enable = [\"rule:attention\"]"),
        ("decompose", "decompose = [\"conv\"]"),
        ("prune", "prune = [\"conv\", \"dense\"]"),
        ("budget", "budget = \"cosine=0.99\""),
        ("holdout", "holdout = 0.25"),
        ("runtime", "runtime = \"ort\""),
        ("ort-lib", "ort-lib = \"/opt/ort/libonnxruntime.so\""),
        ("threads", "threads = 2"),
        ("min-gain", "min-gain = 1.5"),
        ("measure", "measure = true"),
        ("calibrate", "calibrate = \"calib.npy\""),
        ("opset", "opset = 18"),
        ("quantize", "quantize = \"int8-weights\""),
        ("min-elements", "min-elements = 7"),
        ("ops", "ops = [\"MatMul\"]"),
        ("act-scale", "act-scale = \"tensor\""),
    ]
}

/// (key, base config of that mode, line) per setting of another quantize mode.
fn other_mode_rows() -> Vec<(&'static str, &'static str, &'static str)> {
    vec![
        (
            "calibration",
            "quantize = \"int8-static\"\ncalibrate = \"c.npy\"\n",
            "calibration = \"entropy\"",
        ),
        (
            "full-range",
            "quantize = \"int8-static\"\ncalibrate = \"c.npy\"\n",
            "full-range = true",
        ),
        ("block-size", "quantize = \"int4\"\n", "block-size = 64"),
        (
            "int4-format",
            "quantize = \"int4\"\n",
            "int4-format = \"matmulnbits\"",
        ),
        (
            "accuracy-level",
            "quantize = \"int4\"\nint4-format = \"matmulnbits\"\n",
            "accuracy-level = \"4\"",
        ),
        (
            "int8-form",
            "quantize = \"int8-weights\"\n",
            "int8-form = \"dq\"",
        ),
        (
            "per-tensor",
            "quantize = \"int8-weights\"\n",
            "per-tensor = true",
        ),
    ]
}

/// The build step reuses a cached output while `Optimizer::fingerprint` is unchanged, so
/// every setting must change it: one left out hands back an output made with other
/// settings. A row per key; a key without a row fails the test.
#[test]
fn every_setting_changes_the_build_cache_key() {
    let base = "quantize = \"int8-dynamic\"\nprune = [\"conv\"]\n";
    let rows = setting_rows();
    // Keys that belong to another quantize mode: each with its own base.
    let other_modes = other_mode_rows();
    let fingerprint = |toml: &str| {
        let s = settings(toml);
        whittle::Optimizer::from_settings(&s)
            .unwrap_or_else(|e| panic!("{toml}: {e}"))
            .fingerprint()
    };
    let mut covered: Vec<&str> = Vec::new();
    let all = rows.iter().map(|(k, row)| (*k, base, *row));
    for (key, base, row) in all.chain(other_modes.iter().copied()) {
        // A key already in the base is replaced, not repeated.
        let kept: String = base
            .lines()
            .filter(|l| !l.starts_with(&format!("{key} =")))
            .map(|l| format!("{l}\n"))
            .collect();
        let changed = format!("{kept}{row}\n");
        assert_ne!(
            fingerprint(base),
            fingerprint(&changed),
            "`{row}` left the key unchanged"
        );
        covered.push(key);
    }
    for key in whittle::config::keys() {
        assert!(covered.contains(&key), "no row for setting `{key}`");
    }
}

#[test]
fn a_holdout_outside_zero_to_one_is_a_settings_error() {
    for bad in ["1.0", "-0.1", "2"] {
        let s = settings(&format!("holdout = {bad}\n"));
        let err = whittle::Optimizer::from_settings(&s)
            .unwrap_err()
            .to_string();
        assert!(err.contains("holdout"), "{bad}: {err}");
    }
    let ok = settings("holdout = 0.25\n");
    assert!(whittle::Optimizer::from_settings(&ok).is_ok());
}

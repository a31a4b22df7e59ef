//! `--runtime`: ONNX Runtime in process for `optimize --verify`, budgets, `whittle verify`
//! and `whittle bench`. These tests need ONNX Runtime's library (scripts/test points
//! ORT_DYLIB_PATH at the conformance venv's); without it they fail, never pass.

mod common;
use common::{s, whittle};

use whittle_onnx::{ExportOptions, save_model};
use whittle_testkit::fixture;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A model tract cannot load (ai.onnx.ml Scaler) with a clean-up for -O2 to do
/// (Identity), saved to `dir`.
fn scaler_model(dir: &std::path::Path) -> std::path::PathBuf {
    let src = "ir_version 8
opset ai.onnx 17
opset ai.onnx.ml 3
graph {
  input x: f32[2,3]
  output y: f32[2,3]
  i = Identity(x)
  y = ai.onnx.ml.Scaler(i) {offset=[1.0, 2.0, 3.0], scale=[2.0, 0.5, -1.0]}
}
";
    let model = whittle_ir::text::parse_model(src).unwrap();
    let path = dir.join("scaler.onnx");
    save_model(&model, &path, &ExportOptions::default()).unwrap();
    path
}

#[test]
fn optimize_verify_in_ort_names_the_runtime_in_text_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let (out, report) = (dir.path().join("o.onnx"), dir.path().join("r.json"));
    let o = whittle(&[
        "optimize",
        s(&fixture("bert_tiny.ts.onnx")),
        "-o",
        s(&out),
        "--verify",
        "--runtime",
        "ort",
        "--threads",
        "1",
        "--report",
        s(&report),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("runtime: ONNX Runtime 1.") && stdout(&o).contains("1 intra-op thread"),
        "{}",
        stdout(&o)
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let rt = r["verify"]["runtime"].as_str().unwrap();
    assert!(rt.starts_with("ONNX Runtime"), "{rt}");
}

#[test]
fn a_model_tract_cannot_load_verifies_in_ort_and_auto() {
    let dir = tempfile::tempdir().unwrap();
    let m = scaler_model(dir.path());
    let out = dir.path().join("o.onnx");
    let tract = whittle(&["optimize", s(&m), "-o", s(&out), "--verify"]);
    assert_eq!(tract.status.code(), Some(1));
    assert!(
        stderr(&tract).contains("tract cannot load"),
        "{}",
        stderr(&tract)
    );
    assert!(!out.exists(), "a failed run writes nothing");
    for rt in ["ort", "auto"] {
        let o = whittle(&[
            "optimize",
            s(&m),
            "-o",
            s(&out),
            "--verify",
            "--runtime",
            rt,
        ]);
        assert_eq!(o.status.code(), Some(0), "{rt}: {}", stderr(&o));
        assert!(stdout(&o).contains("max abs 0.000e0"), "{}", stdout(&o));
        let v = whittle(&["verify", s(&m), s(&out), "--runtime", rt]);
        assert_eq!(v.status.code(), Some(0), "{rt}: {}", stderr(&v));
    }
}

#[test]
fn a_missing_library_is_an_error_naming_where_whittle_looked() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.onnx");
    let nowhere = dir.path().join("no-such-lib");
    let o = whittle(&[
        "optimize",
        s(&fixture("cnn_bn.ts.onnx")),
        "-o",
        s(&out),
        "--verify",
        "--runtime",
        "ort",
        "--ort-lib",
        s(&nowhere),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("ONNX Runtime library not found") && err.contains("no-such-lib"),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn a_quantization_budget_is_judged_in_ort() {
    let dir = tempfile::tempdir().unwrap();
    let (out, report) = (dir.path().join("o.onnx"), dir.path().join("r.json"));
    let o = whittle(&[
        "optimize",
        s(&fixture("bert_tiny.ts.onnx")),
        "-o",
        s(&out),
        "--quantize",
        "int8-dynamic",
        "--act-scale",
        "auto",
        "--budget",
        "cosine=0.99",
        "--verify",
        "--runtime",
        "ort",
        "--report",
        s(&report),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let lossy = &r["verify"]["lossy"];
    assert_eq!(lossy["held"], true, "{r}");
    assert!(lossy["cosine"].as_f64().unwrap() >= 0.99, "{lossy}");
    assert!(
        r["verify"]["runtime"]
            .as_str()
            .unwrap()
            .starts_with("ONNX Runtime")
    );
}

#[test]
fn bench_in_ort_says_so() {
    let o = whittle(&[
        "bench",
        s(&fixture("cnn_bn.ts.onnx")),
        "--runs",
        "2",
        "--warmup",
        "1",
        "--runtime",
        "ort",
        "--threads",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("runtime: ONNX Runtime"),
        "{}",
        stdout(&o)
    );
}

/// The `attr` attributes of the MatMulNBits nodes of the model at `path`.
fn nbits_attr(path: &std::path::Path, attr: &str) -> Vec<Option<i64>> {
    let m = whittle_onnx::read_model(path).unwrap();
    let g = &m.graph;
    g.node_ids()
        .filter(|n| g.node(*n).op() == "MatMulNBits")
        .map(|n| {
            g.node(n)
                .attributes
                .iter()
                .find(|a| a.name() == attr)
                .and_then(|a| a.i)
        })
        .collect()
}

/// The `accuracy_level` attributes of the MatMulNBits nodes of the model at `path`.
fn levels(path: &std::path::Path) -> Vec<Option<i64>> {
    nbits_attr(path, "accuracy_level")
}

#[test]
fn int4_block_size_is_given_or_measured_in_ort() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.onnx");
    let m = fixture("bert_tiny.ts.onnx");
    let run = |extra: &[&str]| {
        let base = ["optimize", s(&m), "-o", s(&out), "--quantize", "int4"];
        let o = whittle(&[&base[..], &["--int4-format", "matmulnbits"], extra].concat());
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        (nbits_attr(&out, "block_size"), stdout(&o))
    };
    let all =
        |sizes: &[Option<i64>], n: i64| !sizes.is_empty() && sizes.iter().all(|b| *b == Some(n));
    let (given, said) = run(&["--block-size", "64", "--runtime", "ort", "--threads", "1"]);
    assert!(
        all(&given, 64) && !said.contains("int4 block size"),
        "{given:?} {said}"
    );
    let (tract, said) = run(&[]);
    assert!(
        all(&tract, 32) && !said.contains("int4 block size"),
        "{tract:?} {said}"
    );
    let (ort, said) = run(&["--runtime", "ort", "--threads", "1"]);
    let note = said
        .lines()
        .find(|l| l.starts_with("int4 block size "))
        .unwrap_or_else(|| panic!("no block size note: {said}"));
    assert!(
        ["32 rows", "64 rows", "128 rows", "measured in ONNX Runtime"]
            .iter()
            .all(|w| note.contains(w)),
        "{note}"
    );
    let chosen: i64 = note["int4 block size ".len()..]
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{note}"));
    assert!(all(&ort, chosen), "{note}: {ort:?}");
    let bad = whittle(&[
        "optimize",
        s(&m),
        "-o",
        s(&out),
        "--quantize",
        "int4",
        "--block-size",
        "24",
    ]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("block-size 24"), "{}", stderr(&bad));
}

#[test]
fn int4_accuracy_level_is_set_asked_or_measured_in_ort() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.onnx");
    let m = fixture("bert_tiny.ts.onnx");
    let base = [
        s(&m),
        "-o",
        s(&out),
        "--quantize",
        "int4",
        "--int4-format",
        "matmulnbits",
    ];
    let run = |extra: &[&str]| {
        let o = whittle(&[&["optimize"], &base[..], extra].concat());
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        (levels(&out), stdout(&o))
    };
    let (asked, _) = run(&["--accuracy-level", "4"]);
    assert!(
        !asked.is_empty() && asked.iter().all(|l| *l == Some(4)),
        "{asked:?}"
    );
    let (tract, said) = run(&[]);
    assert!(tract.iter().all(Option::is_none), "{tract:?}");
    assert!(said.contains("accuracy_level left unset"), "{said}");
    let (ort, said) = run(&["--runtime", "ort", "--threads", "1"]);
    let note = said
        .lines()
        .find(|l| l.starts_with("int4 accuracy_level "))
        .unwrap_or_else(|| panic!("no accuracy_level note: {said}"));
    assert!(
        note.contains("measured in ONNX Runtime") && note.contains("level 0"),
        "{note}"
    );
    let chosen = if note.starts_with("int4 accuracy_level 4") {
        Some(4)
    } else {
        None
    };
    assert!(ort.iter().all(|l| *l == chosen), "{note}: {ort:?}");
}

/// `--int8-form matmulnbits` writes 8-bit MatMulNBits whose outputs ONNX Runtime keeps
/// close to float; `auto` (the default) is the cast form in tract, and in ONNX Runtime
/// times and judges both forms and writes the one its note names.
#[test]
fn int8_weights_as_mat_mul_nbits_are_asked_or_measured_in_ort() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.onnx");
    let m = fixture("bert_tiny.ts.onnx");
    let run = |extra: &[&str]| {
        let base = [
            "optimize",
            s(&m),
            "-o",
            s(&out),
            "--quantize",
            "int8-weights",
        ];
        let o = whittle(&[&base[..], extra].concat());
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        (nbits_attr(&out, "bits"), stdout(&o))
    };
    let (asked, _) = run(&["--int8-form", "matmulnbits", "--accuracy-level", "4"]);
    assert!(
        !asked.is_empty() && asked.iter().all(|b| *b == Some(8)),
        "{asked:?}"
    );
    let close = whittle(&[
        "verify",
        s(&m),
        s(&out),
        "--runtime",
        "ort",
        "--rtol",
        "1",
        "--atol",
        "1",
        "--min-cosine",
        "0.999",
    ]);
    assert_eq!(close.status.code(), Some(0), "{}", stdout(&close));
    let (tract, said) = run(&[]);
    assert!(
        tract.is_empty() && !said.contains("int8 form"),
        "{tract:?} {said}"
    );
    let (ort, said) = run(&["--runtime", "ort", "--threads", "1"]);
    let note = said
        .lines()
        .find(|l| l.starts_with("int8 form "))
        .unwrap_or_else(|| panic!("no int8 form note: {said}"));
    assert!(
        note.contains("measured in ONNX Runtime: cast ")
            && note.contains("matmulnbits at accuracy level 4 "),
        "{note}"
    );
    if note.starts_with("int8 form matmulnbits") {
        assert!(
            !ort.is_empty() && ort.iter().all(|b| *b == Some(8)),
            "{note}: {ort:?}"
        );
    } else {
        assert!(
            note.starts_with("int8 form cast") && ort.is_empty(),
            "{note}: {ort:?}"
        );
    }
    let bad = whittle(&[
        "optimize",
        s(&m),
        "-o",
        s(&out),
        "--quantize",
        "int8-weights",
        "--int8-form",
        "matmulnbits",
        "--per-tensor",
    ]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("per-tensor"), "{}", stderr(&bad));
}

#[test]
fn bench_all_times_both_models_in_both_runtimes() {
    let (a, b) = (fixture("cnn_bn.ts.onnx"), fixture("cnn_bn.dyn.onnx"));
    let o = whittle(&[
        "bench",
        s(&a),
        s(&b),
        "--runs",
        "2",
        "--warmup",
        "1",
        "--runtime",
        "all",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let blocks: Vec<&str> = out.split("runtime: ").filter(|b| !b.is_empty()).collect();
    assert_eq!(blocks.len(), 2, "{out}");
    assert!(
        blocks[0].starts_with("tract") && blocks[1].starts_with("ONNX Runtime"),
        "{out}"
    );
    assert!(
        blocks.iter().all(|b| b.contains("ratio (second / first)")),
        "{out}"
    );
    let v = whittle(&["verify", s(&a), s(&b), "--runtime", "all"]);
    assert_eq!(v.status.code(), Some(1));
    assert!(
        stderr(&v).contains("--runtime all is for `whittle bench`"),
        "{}",
        stderr(&v)
    );
}

#[test]
fn gptq_calibrated_in_ort_writes_what_tract_calibration_writes() {
    // The dynamo export of the trained byte decoder (positions by CumSum over a symbolic
    // sequence): GPTQ's statistics gathered in either runtime give the same int4 codes
    // (at one block size: ONNX Runtime would otherwise measure the block size).
    let dir = tempfile::tempdir().unwrap();
    let m = fixture("char_decoder.dyn.onnx");
    let calib = whittle_testkit::fixtures_dir().join("../data/char_decoder/calib.npy");
    let mut outs = Vec::new();
    for rt in ["tract", "ort"] {
        let out = dir.path().join(format!("{rt}.onnx"));
        let o = whittle(&[
            "optimize",
            s(&m),
            "-o",
            s(&out),
            "--quantize",
            "int4",
            "--calibrate",
            s(&calib),
            "--block-size",
            "32",
            "--runtime",
            rt,
        ]);
        assert_eq!(o.status.code(), Some(0), "{rt}: {}", stderr(&o));
        assert!(stdout(&o).contains("GPTQ"), "{rt}: {}", stdout(&o));
        outs.push(std::fs::read(&out).unwrap());
    }
    // The runtimes' activations differ in the last bits, so a few rounding decisions may
    // differ; the files are the same size and all but a sliver of their bytes agree.
    assert_eq!(outs[0].len(), outs[1].len());
    let differ = outs[0].iter().zip(&outs[1]).filter(|(a, b)| a != b).count();
    assert!(
        differ * 100 < outs[0].len(),
        "{differ} of {} bytes differ",
        outs[0].len()
    );
}

/// Token ids [4, 16] for the decoder fixtures (vocabulary of at least 64), as .npy.
fn tokens_npy(path: &std::path::Path) {
    use npyz::WriterBuilder;
    let ids: Vec<i64> = (0..64).map(|i| (i * 37 + 5) % 64).collect();
    let mut file = std::fs::File::create(path).unwrap();
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&[4, 16])
        .writer(&mut file)
        .begin_nd()
        .unwrap();
    w.extend(ids).unwrap();
    w.finish().unwrap();
}

#[test]
fn gptq_runs_in_ort_on_a_decoder_tract_cannot_load() {
    // The dynamo export of the Llama-shaped fixture counts positions with a CumSum over
    // the symbolic sequence, which tract cannot evaluate: calibrated int4 fails in tract
    // with a clear error and runs with --runtime ort.
    let dir = tempfile::tempdir().unwrap();
    let (out, calib) = (dir.path().join("o.onnx"), dir.path().join("ids.npy"));
    tokens_npy(&calib);
    let m = fixture("llama_prompt.dyn.onnx");
    let run = |rt: &str| {
        whittle(&[
            "optimize",
            s(&m),
            "-o",
            s(&out),
            "--quantize",
            "int4",
            "--calibrate",
            s(&calib),
            "--runtime",
            rt,
        ])
    };
    let t = run("tract");
    assert_eq!(t.status.code(), Some(1));
    assert!(
        stderr(&t).contains("tract cannot load the model"),
        "{}",
        stderr(&t)
    );
    assert!(!out.exists());
    let o = run("ort");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let gptq = stdout(&o)
        .lines()
        .filter(|l| l.contains(": GPTQ, output error"))
        .count();
    assert!(gptq >= 8, "{}", stdout(&o));
}

/// A library older than 1.20 is refused with its version, before anything is run or
/// written. scripts/test fetches onnxruntime 1.19.2's library (scripts/old-ort) and
/// names it in WHITTLE_OLD_ORT_LIB; without it this test fails, never passes.
#[test]
fn a_too_old_onnx_runtime_is_refused_with_its_version() {
    let lib = std::env::var("WHITTLE_OLD_ORT_LIB")
        .expect("WHITTLE_OLD_ORT_LIB names an ONNX Runtime older than 1.20 (scripts/old-ort)");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.onnx");
    let model = fixture("vgg_digits.ts.onnx");
    for args in [
        vec!["verify", s(&model), s(&model)],
        vec!["optimize", s(&model), "-o", s(&out), "--verify"],
    ] {
        let mut args = args;
        args.extend(["--runtime", "ort", "--ort-lib", &lib]);
        let o = whittle(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.contains("1.19.2") && e.contains("1.20") && e.contains(&lib),
            "{args:?}: {e}"
        );
        assert!(!out.exists(), "{args:?}: nothing is written");
    }
}

//! The `whittle` binary: exit codes, messages, and that failures never leave or clobber files.

mod common;
use common::{s, whittle};

use std::path::Path;
use std::process::Command;
use whittle_testkit::fixture;

#[test]
fn optimize_writes_a_faithful_copy_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.onnx");
    let o = whittle(&[
        "optimize",
        "-O0",
        s(&fixture("cnn_bn.ts.onnx")),
        "-o",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("Conv") && text.contains("nodes"), "{text}");
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(fixture("cnn_bn.ts.onnx")).unwrap()
    );
}

#[test]
fn external_data_follows_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ext.onnx");
    let o = whittle(&["optimize", s(&fixture("cnn_bn.ts.ext.onnx")), "-o", s(&out)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        dir.path().join("ext.onnx.data").exists(),
        "named after the output"
    );
    assert!(!dir.path().join("cnn_bn.ts.ext.onnx.data").exists());
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(whittle(&["optimize"]).status.code(), Some(2));
    assert_eq!(whittle(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(
        whittle(&["optimize", "a.onnx", "-o", "b.onnx", "-O", "7"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn bad_input_exits_1_names_the_file_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.onnx");
    std::fs::write(&bad, b"\x0a\xff\xff\xff\xff\x0f garbage").unwrap();
    let out = dir.path().join("out.onnx");
    let o = whittle(&["optimize", s(&bad), "-o", s(&out)]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.onnx") && err.lines().count() == 1,
        "{err}"
    );
    assert!(!out.exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "temp files left behind");
}

#[test]
fn existing_output_survives_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.onnx");
    std::fs::write(&out, b"precious").unwrap();
    let missing = dir.path().join("missing.onnx");
    let o = whittle(&["optimize", s(&missing), "-o", s(&out)]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");
}

#[test]
fn refuses_to_overwrite_the_input_without_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m.onnx");
    std::fs::copy(fixture("if_gate.ts.onnx"), &m).unwrap();
    let o = whittle(&["optimize", s(&m), "-o", s(&m)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--in-place"));
    let o = whittle(&["optimize", s(&m), "--in-place"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn passes_can_be_listed_chosen_and_disabled() {
    let o = whittle(&["optimize", "--list-passes"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("dead-code"));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.onnx");
    let o = whittle(&[
        "optimize",
        s(&fixture("cnn_bn.ts.onnx")),
        "-o",
        s(&out),
        "--passes",
        "bogus",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("valid passes: "),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = whittle(&[
        "optimize",
        s(&fixture("bert_tiny.ts.onnx")),
        "-o",
        s(&out),
        "--disable",
        "dead-code",
    ]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("pass identity") && !text.contains("pass dead-code"),
        "{text}"
    );
}

#[test]
fn output_beside_the_input_never_rewrites_the_inputs_data_file() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["cnn_bn.ts.ext.onnx", "cnn_bn.ts.ext.onnx.data"] {
        std::fs::copy(fixture(f), dir.path().join(f)).unwrap();
    }
    let input = dir.path().join("cnn_bn.ts.ext.onnx");
    let data = dir.path().join("cnn_bn.ts.ext.onnx.data");
    let before = std::fs::read(&data).unwrap();
    let out = dir.path().join("small.onnx");
    let o = whittle(&["optimize", s(&input), "-o", s(&out)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read(&data).unwrap(),
        before,
        "the input's data file changed"
    );
    assert!(dir.path().join("small.onnx.data").exists());
    let a = whittle_onnx::read_model(&input).unwrap();
    let b = whittle_onnx::read_model(&out).unwrap();
    for v in a.graph.initializers() {
        let name = a.graph.value(*v).name();
        let ta = a.graph.value(*v).initializer().unwrap();
        let tb = b
            .graph
            .value(b.graph.find(name).unwrap())
            .initializer()
            .unwrap();
        assert_eq!(ta.le_bytes().unwrap(), tb.le_bytes().unwrap(), "{name}");
    }
}

#[test]
fn report_print_after_and_static_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.onnx");
    let report = dir.path().join("r.json");
    let model = fixture("bert_tiny.ts.onnx");
    let o = whittle(&[
        "optimize",
        s(&model),
        "-o",
        s(&out),
        "--report",
        s(&report),
        "--print-after",
        "fuse",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stderr);
    let listing = text
        .split("# after fuse\n")
        .nth(1)
        .expect("listing after fuse");
    whittle_ir::text::parse_model(listing.split("# after").next().unwrap()).unwrap();
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["schema_version"], 1);
    let (before, after) = (
        r["before"]["nodes"].as_u64().unwrap(),
        r["after"]["nodes"].as_u64().unwrap(),
    );
    assert!(after < before, "{before} -> {after}");
    let rewrites = r["rewrites"].as_array().unwrap();
    assert!(
        rewrites.iter().any(|w| w["rule"] == "fold-shape-values"),
        "{rewrites:?}"
    );
    assert!(
        r["passes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["ms"].is_number())
    );

    // Fixing the input dims makes every shape computation constant.
    let fixed = dir.path().join("static.onnx");
    let o = whittle(&[
        "optimize",
        s(&model),
        "-o",
        s(&fixed),
        "--input-shape",
        "input_ids=1,16",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m = whittle_onnx::read_model(&fixed).unwrap();
    let ops: Vec<&str> = m.graph.node_ids().map(|n| m.graph.node(n).op()).collect();
    assert!(!ops.contains(&"Shape"), "{ops:?}");
    assert!(
        ops.len() < after as usize,
        "{} nodes static vs {after} dynamic",
        ops.len()
    );

    let o = whittle(&[
        "optimize",
        s(&model),
        "-o",
        s(&out),
        "--print-after",
        "nope",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("fold-constants"));
}

#[test]
fn check_exit_codes_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.onnx");
    let model = fixture("bert_tiny.ts.onnx");
    let o = whittle(&["optimize", s(&model), "-o", s(&out), "--check"]);
    assert_eq!(o.status.code(), Some(1), "missing output: would be created");
    assert!(!out.exists(), "--check writes nothing");
    assert!(
        whittle(&["optimize", s(&model), "-o", s(&out)])
            .status
            .success()
    );
    let o = whittle(&["optimize", s(&model), "-o", s(&out), "--check"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let o = whittle(&["optimize", s(&model), "-o", s(&out), "--check", "-O1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("would change"));
    let o = whittle(&["optimize", "/no/such.onnx", "-o", s(&out), "--check"]);
    assert_eq!(o.status.code(), Some(2));
    // The same input and flags give the same bytes, run after run.
    let again = dir.path().join("again.onnx");
    assert!(
        whittle(&["optimize", s(&model), "-o", s(&again)])
            .status
            .success()
    );
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&again).unwrap());
}

#[test]
fn check_covers_external_data_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.onnx");
    let data = dir.path().join("o.onnx.data"); // the output's data file, named after it
    let model = fixture("cnn_bn.ts.ext.onnx");
    let check = || whittle(&["optimize", s(&model), "-o", s(&out), "--check"]);
    assert!(
        whittle(&["optimize", s(&model), "-o", s(&out)])
            .status
            .success()
    );
    assert!(data.exists());
    let o = check();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut bytes = std::fs::read(&data).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&data, &bytes).unwrap();
    let o = check();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("o.onnx.data: would change"));
    bytes[last] ^= 1;
    bytes.push(0);
    std::fs::write(&data, &bytes).unwrap();
    assert_eq!(check().status.code(), Some(1), "a longer data file differs");
    std::fs::remove_file(&data).unwrap();
    let o = check();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("would be created"));
    assert!(!data.exists(), "--check writes nothing");
}

#[test]
fn completions_and_version() {
    for shell in ["bash", "zsh", "fish"] {
        let o = whittle(&["completions", shell]);
        assert!(o.status.success() && o.stdout.len() > 100, "{shell}");
    }
    let o = whittle(&["--version"]);
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("whittle "));
}

#[test]
fn a_closed_pipe_ends_quietly() {
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_whittle"))
        .args(["dump", "--full", s(&fixture("bert_tiny.ts.onnx"))])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away at once
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn many_models_in_parallel_keep_paths_and_match_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let (par, seq) = (dir.path().join("par"), dir.path().join("seq"));
    let models = whittle_testkit::fixtures_dir();
    let run = |out: &Path, threads: &str| {
        Command::new(env!("CARGO_BIN_EXE_whittle"))
            .env("RAYON_NUM_THREADS", threads)
            .args(["optimize", s(&models), "-o", s(out)])
            .output()
            .unwrap()
    };
    let o = run(&par, "8");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("optimized, 0 failed"), "{text}");
    assert!(run(&seq, "1").status.success());
    let mut n = 0;
    for f in whittle_testkit::fixtures() {
        let name = f.file_name().unwrap();
        let (a, b) = (
            std::fs::read(par.join(name)).unwrap(),
            std::fs::read(seq.join(name)).unwrap(),
        );
        assert_eq!(a, b, "{}: 8 threads vs 1", name.to_string_lossy());
        // ...and the same bytes as optimizing it alone (under the same name, which the
        // name of its data file follows).
        let alone = dir.path().join("alone").join(name);
        std::fs::create_dir_all(alone.parent().unwrap()).unwrap();
        assert!(
            whittle(&["optimize", s(&f), "-o", s(&alone)])
                .status
                .success()
        );
        assert_eq!(
            std::fs::read(&alone).unwrap(),
            a,
            "{}",
            name.to_string_lossy()
        );
        n += 1;
    }
    assert!(n >= 10);
    // One bad model fails alone; the others are still written, the exit status is 1.
    let bad = dir.path().join("bad.onnx");
    std::fs::write(&bad, b"not a model").unwrap();
    let out = dir.path().join("mixed");
    let o = whittle(&[
        "optimize",
        s(&bad),
        s(&fixture("cnn_bn.ts.onnx")),
        "-o",
        s(&out),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(out.join("cnn_bn.ts.onnx").exists() && !out.join("bad.onnx").exists());
    assert!(String::from_utf8_lossy(&o.stdout).contains("1 failed"));
}

/// `-q` means errors only: nothing on stdout or stderr for a run that succeeds (the JSON
/// report is still written when asked), the one-line error when it fails.
#[test]
fn quiet_prints_nothing_but_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (out, rep) = (dir.path().join("o.onnx"), dir.path().join("r.json"));
    let model = whittle_testkit::fixture("cnn_bn.ts.onnx");
    for extra in [&[][..], &["--quantize", "int8-weights", "--verify"]] {
        let mut args = vec![
            "-q",
            "optimize",
            s(&model),
            "-o",
            s(&out),
            "--report",
            s(&rep),
        ];
        args.extend_from_slice(extra);
        let o = whittle(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(
            o.stdout.is_empty(),
            "{}",
            String::from_utf8_lossy(&o.stdout)
        );
        assert!(
            o.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(rep.is_file());
    }
    let batch = dir.path().join("batch");
    let o = whittle(&["-q", "optimize", s(&model), s(&model), "-o", s(&batch)]);
    assert!(o.status.success() && o.stdout.is_empty() && o.stderr.is_empty());
    let o = whittle(&[
        "-q",
        "optimize",
        s(&dir.path().join("missing.onnx")),
        "-o",
        s(&out),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing.onnx"));
}

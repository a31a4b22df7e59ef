//! Where `whittle optimize` writes external data: one file named after the output,
//! wherever the output goes, and never over a file that is not the output's own.

mod common;
use common::{s, whittle};
use std::path::{Path, PathBuf};
use whittle_onnx::{ExportOptions, read_model, save_model};
use whittle_testkit::fixture;

/// The external-data fixture (a TorchScript export, weights in `<name>.data`).
const EXT: &str = "cnn_bn.ts.ext.onnx";

/// Copies the external-data fixture and its data file into `dir`.
fn copy_fixture(dir: &Path) -> PathBuf {
    for f in [EXT.to_string(), format!("{EXT}.data")] {
        std::fs::copy(fixture(&f), dir.join(&f)).unwrap();
    }
    dir.join(EXT)
}

/// Writes the fixture as `dir/name` with its weights in `dir/data`.
fn fixture_as(dir: &Path, name: &str, data: &str) -> PathBuf {
    let m = read_model(&fixture(EXT)).unwrap();
    let out = dir.join(name);
    let opts = ExportOptions {
        external_location: Some(data.into()),
        ..ExportOptions::default()
    };
    save_model(&m, &out, &opts).unwrap();
    out
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(snapshot(&p));
        } else {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
    out.sort();
    out
}

/// The names of the data files `model`'s tensors point at.
fn locations(model: &Path) -> Vec<String> {
    let m = read_model(model).unwrap();
    whittle_onnx::targets::locations(&m).into_iter().collect()
}

fn ok(o: &std::process::Output) {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// `whittle verify A B` (tract): the two models agree on random inputs.
fn agree(a: &Path, b: &Path) {
    ok(&whittle(&["verify", s(a), s(b)]));
}

/// The report of issue 30: the output in a folder that holds a copy of the input (model
/// and data file) must leave that copy byte for byte alone.
#[test]
fn output_in_another_folder_leaves_a_copy_of_the_input_alone() {
    let dir = tempfile::tempdir().unwrap();
    let deploy = dir.path().join("deploy");
    std::fs::create_dir(&deploy).unwrap();
    let copy = copy_fixture(&deploy);
    let before = snapshot(&deploy);
    let out = deploy.join("q.onnx");
    ok(&whittle(&[
        "optimize",
        s(&fixture(EXT)),
        "-o",
        s(&out),
        "--quantize",
        "int8-weights",
        "--external-data-threshold",
        "1024",
    ]));
    let after = snapshot(&deploy);
    for (path, bytes) in &before {
        let now = after.iter().find(|(p, _)| p == path).expect("still there");
        assert!(&now.1 == bytes, "{} changed", path.display());
    }
    assert_eq!(locations(&out), ["q.onnx.data"]);
    agree(&fixture(EXT), &copy);
    let names: Vec<_> = after.iter().map(|(p, _)| p.file_name().unwrap()).collect();
    assert_eq!(
        names.len(),
        4,
        "the copy, its data, q.onnx and q.onnx.data: {names:?}"
    );
}

#[test]
fn output_beside_the_input_and_elsewhere_is_named_after_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = copy_fixture(dir.path());
    let before = snapshot(dir.path());
    let beside = dir.path().join("small.onnx");
    ok(&whittle(&["optimize", s(&input), "-o", s(&beside)]));
    assert_eq!(locations(&beside), ["small.onnx.data"]);
    let other = tempfile::tempdir().unwrap();
    let away = other.path().join("away.onnx");
    ok(&whittle(&["optimize", s(&input), "-o", s(&away)]));
    assert_eq!(locations(&away), ["away.onnx.data"]);
    assert_eq!(snapshot(other.path()).len(), 2);
    let named = other.path().join("named.onnx");
    let flag = ["--external-data-name", "weights.bin"];
    ok(&whittle(
        &[&["optimize", s(&input), "-o", s(&named)][..], &flag].concat(),
    ));
    assert_eq!(locations(&named), ["weights.bin"]);
    for out in [&beside, &away, &named] {
        agree(&input, out);
    }
    let now = snapshot(dir.path());
    for (path, bytes) in &before {
        assert!(
            now.contains(&(path.clone(), bytes.clone())),
            "{}",
            path.display()
        );
    }
    // A name with folders in it is refused before anything is read.
    let o = whittle(&[
        "optimize",
        s(&input),
        "-o",
        s(&other.path().join("x.onnx")),
        "--external-data-name",
        "../up.bin",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("without folders"));
}

/// A file that already has the data file's name, and is not the current output's own
/// data, is never written over: the run fails naming both and writes nothing. The
/// output's own data file from an earlier run is replaced as the output is.
#[test]
fn a_taken_data_file_name_is_refused_and_an_earlier_output_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture(EXT);
    let out = dir.path().join("q.onnx");
    let squatter = dir.path().join("q.onnx.data");
    std::fs::write(&squatter, b"someone else's weights").unwrap();
    let o = whittle(&["optimize", s(&input), "-o", s(&out)]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("q.onnx.data") && err.contains("already exists") && err.contains("q.onnx:"),
        "{err}"
    );
    assert!(!out.exists(), "nothing written");
    assert_eq!(std::fs::read(&squatter).unwrap(), b"someone else's weights");
    let leftovers: Vec<_> = snapshot(dir.path());
    assert_eq!(leftovers.len(), 1, "no temporary files left: {leftovers:?}");
    // Another name works; running again replaces that output and its own data file.
    let flag = ["--external-data-name", "q.weights"];
    let int8 = [
        "--quantize",
        "int8-weights",
        "--external-data-threshold",
        "1024",
    ];
    let first = [&["optimize", s(&input), "-o", s(&out)][..], &flag, &int8].concat();
    ok(&whittle(&first));
    let data = dir.path().join("q.weights");
    let int8_data = std::fs::read(&data).unwrap();
    ok(&whittle(
        &[&["optimize", s(&input), "-o", s(&out)][..], &flag].concat(),
    ));
    assert_ne!(
        std::fs::read(&data).unwrap(),
        int8_data,
        "float weights now"
    );
    assert_eq!(locations(&out), ["q.weights"]);
    agree(&input, &out);
    assert_eq!(std::fs::read(&squatter).unwrap(), b"someone else's weights");
}

/// An output whose data file would be a file the input reads is refused (unless the
/// output is the input itself).
#[test]
fn the_inputs_data_file_is_never_an_outputs_data_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture_as(dir.path(), "m.onnx", "shared.data");
    let before = snapshot(dir.path());
    let o = whittle(&["optimize", s(&input), "-o", s(&dir.path().join("shared"))]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("reads"));
    let o = whittle(&[
        "optimize",
        s(&input),
        "-o",
        s(&dir.path().join("shared.data")),
    ]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "the output is the input's data file"
    );
    assert_eq!(snapshot(dir.path()), before, "nothing written");
}

/// `--in-place` replaces the model and writes its data to `<model>.data`; a data file the
/// old model read under another name is left alone.
#[test]
fn in_place_with_external_data() {
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("original");
    std::fs::create_dir(&original).unwrap();
    let reference = copy_fixture(&original);
    // Data already named after the model: rewritten in place, offsets kept at -O0.
    let own = tempfile::tempdir().unwrap();
    let m = copy_fixture(own.path());
    ok(&whittle(&["optimize", s(&m), "--in-place", "-O0"]));
    let names = |dir: &Path| -> Vec<(std::ffi::OsString, Vec<u8>)> {
        let files = snapshot(dir).into_iter();
        files
            .map(|(p, b)| (p.file_name().unwrap().to_owned(), b))
            .collect()
    };
    assert_eq!(
        names(own.path()),
        names(&original),
        "-O0 in place: same bytes"
    );
    ok(&whittle(&["optimize", s(&m), "--in-place"]));
    assert_eq!(locations(&m), [format!("{EXT}.data")]);
    agree(&reference, &m);
    // Data under another name: the model moves to its own data file; the old one stays.
    let other = tempfile::tempdir().unwrap();
    let m = fixture_as(other.path(), "m.onnx", "weights.bin");
    let old = std::fs::read(other.path().join("weights.bin")).unwrap();
    ok(&whittle(&["optimize", s(&m), "--in-place"]));
    assert_eq!(locations(&m), ["m.onnx.data"]);
    assert_eq!(
        std::fs::read(other.path().join("weights.bin")).unwrap(),
        old
    );
    agree(&reference, &m);
}

/// Two inputs from different folders whose data files share a name go to one output
/// folder, each with its own data file; a name that would make two outputs share one
/// is refused before anything is written.
#[test]
fn a_batch_gives_every_output_its_own_data_file() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir(&a).unwrap();
    std::fs::create_dir(&b).unwrap();
    let one = fixture_as(&a, "one.onnx", "w.bin");
    let two = fixture_as(&b, "two.onnx", "w.bin");
    let inputs = [snapshot(&a), snapshot(&b)];
    let out = dir.path().join("out");
    ok(&whittle(&["optimize", s(&one), s(&two), "-o", s(&out)]));
    assert_eq!(locations(&out.join("one.onnx")), ["one.onnx.data"]);
    assert_eq!(locations(&out.join("two.onnx")), ["two.onnx.data"]);
    assert!(!out.join("w.bin").exists());
    agree(&one, &out.join("one.onnx"));
    agree(&two, &out.join("two.onnx"));
    assert_eq!([snapshot(&a), snapshot(&b)], inputs);
    let shared = dir.path().join("shared");
    let o = whittle(&[
        "optimize",
        s(&one),
        s(&two),
        "-o",
        s(&shared),
        "--external-data-name",
        "w.bin",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("written twice") && err.contains("w.bin"),
        "{err}"
    );
    assert!(!shared.exists(), "nothing written");
    // The output folder is an input's folder: refused up front, nothing written.
    let o = whittle(&["optimize", s(&one), s(&two), "-o", s(&a)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("reads it"));
    assert_eq!(snapshot(&a), inputs[0]);
    // A folder holding another model whose data file has an output's data name: that
    // model fails, and the other model's files are untouched.
    let d = dir.path().join("d");
    std::fs::create_dir(&d).unwrap();
    fixture_as(&d, "keep.onnx", "two.onnx.data");
    let before = snapshot(&d);
    let o = whittle(&["optimize", s(&b), "-o", s(&d)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("already exists"));
    assert_eq!(snapshot(&d), before);
}

//! The library's writers (`Optimizer::optimize_file`, the build step) name external data
//! after the output and never write over a file that is not the output's own.

use std::path::Path;
use whittle::{Optimizer, build};
use whittle_testkit::fixture;

const EXT: &str = "cnn_bn.ts.ext.onnx";

fn copy_fixture(dir: &Path) {
    for f in [EXT.to_string(), format!("{EXT}.data")] {
        std::fs::copy(fixture(&f), dir.join(&f)).unwrap();
    }
}

fn bytes_of(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn optimize_file_into_a_folder_holding_a_copy_of_the_input() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixture(dir.path());
    let before = bytes_of(dir.path());
    let out = dir.path().join("q.onnx");
    Optimizer::new().optimize_file(&fixture(EXT), &out).unwrap();
    let after = bytes_of(dir.path());
    for f in &before {
        assert!(after.contains(f), "{} changed", f.0);
    }
    let names: Vec<&str> = after.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(
        names,
        [EXT, &format!("{EXT}.data"), "q.onnx", "q.onnx.data"]
    );
    // A file with the data file's name that is not q.onnx's own: refused, nothing written.
    let taken = dir.path().join("r.onnx.data");
    std::fs::write(&taken, b"x").unwrap();
    let err = Optimizer::new()
        .optimize_file(&fixture(EXT), &dir.path().join("r.onnx"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("r.onnx.data") && err.contains("already exists"),
        "{err}"
    );
    assert!(!dir.path().join("r.onnx").exists());
    assert_eq!(std::fs::read(&taken).unwrap(), b"x");
}

#[test]
fn the_build_step_writes_its_own_data_file() {
    let src = tempfile::tempdir().unwrap();
    copy_fixture(src.path());
    let out_dir = tempfile::tempdir().unwrap();
    // OUT_DIR already holds a file of the input's data name (say, another build's copy).
    let stray = out_dir.path().join(format!("{EXT}.data"));
    std::fs::write(&stray, b"another build's weights").unwrap();
    let opt = Optimizer::new();
    let out =
        build::optimize_into(&src.path().join(EXT), &opt, out_dir.path(), &mut |_| {}).unwrap();
    assert_eq!(std::fs::read(&stray).unwrap(), b"another build's weights");
    let m = whittle_onnx::read_model(&out).unwrap();
    let locations: Vec<String> = whittle_onnx::targets::locations(&m).into_iter().collect();
    assert_eq!(locations, ["cnn_bn.ts.ext.opt.onnx.data"]);
}

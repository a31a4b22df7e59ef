//! Every input that ever crashed a fuzz target (`fuzz/regressions/<target>/`), and the
//! seed corpora (fixtures, rule tests), run through the targets as ordinary tests.

use std::path::{Path, PathBuf};
use whittle_fuzz_targets as t;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    out.retain(|p| {
        p.is_file()
            && !p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
    });
    out.sort();
    out
}

fn run(target: &str, f: fn(&[u8])) -> usize {
    let dir = root().join("fuzz/regressions").join(target);
    let cases = files(&dir);
    for case in &cases {
        eprintln!("{target}: {}", case.display());
        f(&std::fs::read(case).unwrap());
    }
    cases.len()
}

#[test]
fn decode_import_regressions() {
    run("decode_import", t::decode_import);
}

#[test]
fn infer_shapes_regressions() {
    run("infer_shapes", t::infer_shapes);
}

#[test]
fn optimize_roundtrip_regressions() {
    run("optimize_roundtrip", t::optimize_roundtrip);
}

#[test]
fn text_roundtrip_regressions() {
    run("text_roundtrip", t::text_roundtrip);
}

#[test]
fn seeds_pass_every_target() {
    let models = whittle_testkit::fixtures();
    assert!(models.len() >= 10);
    for m in &models {
        let bytes = std::fs::read(m).unwrap();
        t::decode_import(&bytes);
        t::infer_shapes(&bytes);
        t::optimize_roundtrip(&bytes);
        for mode in 0..t::LOSSY_MODES.len() as u8 {
            let mut seeded = vec![mode];
            seeded.extend_from_slice(&bytes);
            t::lossy_plan(&seeded);
        }
    }
    let rules = files(&root().join("crates/passes/tests/rules"));
    assert!(rules.len() >= 20);
    for r in &rules {
        t::text_roundtrip(&std::fs::read(r).unwrap());
    }
}

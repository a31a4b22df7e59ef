//! Config files: layering, per-model sections, Cargo.toml metadata, and errors.

use std::path::Path;
use whittle::config::DimSetting;
use whittle::{Config, Optimizer, Settings, build};

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn sections_override_the_top_level_in_file_order() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "whittle.toml",
        r#"
level = 1
fold-limit = 4096
[model."bert_*.onnx"]
level = 2
input-shapes = { input_ids = [1, "seq"] }
[model."sub/*.onnx"]
disable = ["cse"]
[model."bert_tiny.onnx"]
fold-limit = 10
"#,
    );
    let c = Config::load(&cfg).unwrap();
    let bert = c.settings_for(&dir.path().join("bert_tiny.onnx"));
    assert_eq!(bert.level, Some(2));
    assert_eq!(bert.fold_limit, Some(10), "later sections win");
    let shapes = bert.input_shapes.clone().unwrap();
    assert_eq!(
        shapes["input_ids"],
        vec![DimSetting::Size(1), DimSetting::Symbol("seq".into())]
    );
    let other = c.settings_for(&dir.path().join("cnn.onnx"));
    assert_eq!((other.level, other.fold_limit), (Some(1), Some(4096)));
    assert_eq!(other.disable, None);
    let nested = c.settings_for(&dir.path().join("sub").join("cnn.onnx"));
    assert_eq!(nested.disable, Some(vec!["cse".to_string()]));
    // Flags (an overlay) beat both.
    let flags = Settings {
        level: Some(0),
        ..Settings::default()
    };
    assert_eq!(bert.overlay(&flags).level, Some(0));
    assert_eq!(bert.overlay(&flags).fold_limit, Some(10));
}

#[test]
fn unknown_keys_are_errors_that_list_the_valid_ones() {
    let dir = tempfile::tempdir().unwrap();
    let top = write(dir.path(), "a.toml", "levle = 2\n");
    let e = Config::load(&top).unwrap_err().to_string();
    assert!(e.contains("a.toml") && e.contains("`levle`"), "{e}");
    assert!(
        e.contains("level, passes, disable") && e.contains("[model."),
        "{e}"
    );
    let sect = write(dir.path(), "b.toml", "[model.\"x.onnx\"]\nquantise = 1\n");
    let e = Config::load(&sect).unwrap_err().to_string();
    assert!(
        e.contains("[model.\"x.onnx\"]") && e.contains("`quantise`"),
        "{e}"
    );
    let ty = write(dir.path(), "c.toml", "level = \"high\"\n");
    let e = Config::load(&ty).unwrap_err().to_string();
    assert!(e.contains("c.toml"), "{e}");
    let range = write(dir.path(), "d.toml", "level = 7\n");
    let e = Config::load(&range).unwrap_err().to_string();
    assert!(e.contains("level 7"), "{e}");
    let syntax = write(dir.path(), "e.toml", "level = \n");
    assert!(
        Config::load(&syntax)
            .unwrap_err()
            .to_string()
            .contains("e.toml")
    );
    let pass = Settings {
        passes: Some(vec!["no-such-pass".into()]),
        ..Settings::default()
    };
    let e = Optimizer::from_settings(&pass).unwrap_err().to_string();
    assert!(e.contains("no-such-pass") && e.contains("dead-code"), "{e}");
    let excl = Settings {
        exclude: Some(vec!["Conv_3".into()]),
        ..Settings::default()
    };
    let e = Optimizer::from_settings(&excl).unwrap_err().to_string();
    assert!(e.contains("node:NAME"), "{e}");
}

#[test]
fn cargo_metadata_is_read_and_whittle_toml_beside_the_model_wins() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(
        dir.path(),
        "Cargo.toml",
        "[package]\nname = \"x\"\n[package.metadata.whittle]\nlevel = 1\n\
         [package.metadata.whittle.model.\"m.onnx\"]\nlevel = 0\n",
    );
    let model = dir.path().join("models").join("m.onnx");
    std::fs::create_dir_all(model.parent().unwrap()).unwrap();
    let c = build::project_config(&model, Some(&manifest))
        .unwrap()
        .unwrap();
    assert_eq!(c.settings_for(&model).level, Some(0));
    assert_eq!(c.settings_for(&dir.path().join("n.onnx")).level, Some(1));
    write(model.parent().unwrap(), "whittle.toml", "level = 2\n");
    let c = build::project_config(&model, Some(&manifest))
        .unwrap()
        .unwrap();
    assert_eq!(c.settings_for(&model).level, Some(2));
    let bad = write(
        dir.path(),
        "Bad.toml",
        "[package.metadata.whittle]\nfold_limit = 3\n",
    );
    let e = Config::from_cargo_manifest(&bad).unwrap_err().to_string();
    assert!(
        e.contains("[package.metadata.whittle]") && e.contains("fold-limit"),
        "{e}"
    );
    let none = write(dir.path(), "None.toml", "[package]\nname = \"y\"\n");
    assert!(Config::from_cargo_manifest(&none).unwrap().is_none());
}

#[test]
fn settings_change_the_fingerprint_and_exclusions_stop_rewrites() {
    let bytes = std::fs::read(whittle_testkit::fixture("bert_tiny.ts.onnx")).unwrap();
    let plain = Optimizer::new();
    let (_, r) = plain.optimize_bytes(&bytes).unwrap();
    let fused = r
        .rewrites
        .iter()
        .find(|w| w.rule == "unsqueeze-chain")
        .expect("the fixture has an Unsqueeze chain")
        .node
        .clone();
    let by_node = Optimizer::new()
        .try_exclude(&format!("node:{fused}"))
        .unwrap();
    assert_ne!(by_node.fingerprint(), plain.fingerprint());
    let (_, r2) = by_node.optimize_bytes(&bytes).unwrap();
    assert!(
        r2.rewrites.iter().all(|w| w.node != fused),
        "{:?}",
        r2.rewrites
    );
    let by_rule = Optimizer::new()
        .try_exclude("rule:unsqueeze-chain")
        .unwrap();
    let (_, r3) = by_rule.optimize_bytes(&bytes).unwrap();
    assert!(r3.rewrites.iter().all(|w| w.rule != "unsqueeze-chain"));
    assert!(r3.nodes_after > r.nodes_after);
}

//! The no-clobber rule over random folder layouts: whatever files already exist (other
//! models, their data files, stray bytes), wherever the input and output go, with or
//! without `--in-place` and `--external-data-name`, a save changes no file that existed
//! before except the output and its own data file; a refused save changes nothing; and
//! a save that had a clean place to write succeeds and holds the input's weights.

use proptest::prelude::*;
use std::path::{Path, PathBuf};
use whittle::Settings;
use whittle_cli::job::{self, ConfigChoice, Request, Source};
use whittle_onnx::{ExportOptions, read_model, save_model};
use whittle_testkit::fixture;

const NAMES: &[&str] = &["m.onnx", "q.onnx", "m.onnx.data", "q.onnx.data", "w.bin"];

/// What sits at one name of a folder before the run.
#[derive(Clone, Debug)]
enum Existing {
    Absent,
    Junk,
    /// A model with its weights in the file of this name.
    Model(&'static str),
}

#[derive(Clone, Debug)]
struct Layout {
    /// The input model's name and its data file's name (in folder `a`).
    input: (&'static str, &'static str),
    /// What else is in folders `a` and `b`, per name of [`NAMES`].
    a: Vec<Existing>,
    b: Vec<Existing>,
    /// The output: in `b` (else beside the input), its name; or the input (`--in-place`).
    to_b: bool,
    output: &'static str,
    in_place: bool,
    data_name: Option<&'static str>,
    threshold: bool,
}

fn existing() -> impl Strategy<Value = Existing> {
    prop_oneof![
        3 => Just(Existing::Absent),
        1 => Just(Existing::Junk),
        1 => prop::sample::select(NAMES).prop_map(Existing::Model),
    ]
}

fn layout() -> impl Strategy<Value = Layout> {
    let input = prop_oneof![
        Just(("m.onnx", "m.onnx.data")),
        Just(("m.onnx", "w.bin")),
        Just(("q.onnx", "m.onnx.data")),
    ];
    (
        input,
        prop::collection::vec(existing(), NAMES.len()),
        prop::collection::vec(existing(), NAMES.len()),
        any::<bool>(),
        prop::sample::select(vec!["m.onnx", "q.onnx", "w.bin", "q.onnx.data"]),
        prop::bool::weighted(0.2),
        prop::option::weighted(0.3, prop::sample::select(vec!["w.bin", "q.onnx.data"])),
        any::<bool>(),
    )
        .prop_map(
            |(input, a, b, to_b, output, in_place, data_name, threshold)| Layout {
                input,
                a,
                b,
                to_b,
                output,
                in_place,
                data_name,
                threshold,
            },
        )
}

/// Writes the external-data fixture as `dir/name`, weights in `dir/data`.
fn model_at(dir: &Path, name: &str, data: &str) {
    let m = read_model(&fixture("cnn_bn.ts.ext.onnx")).expect("fixture");
    let opts = ExportOptions {
        external_location: Some(data.into()),
        ..ExportOptions::default()
    };
    save_model(&m, &dir.join(name), &opts).expect("setup");
}

/// Fills `dir` as `what` says, skipping names already taken.
fn fill(dir: &Path, what: &[Existing]) {
    for (name, e) in NAMES.iter().zip(what) {
        let path = dir.join(name);
        if path.exists() {
            continue;
        }
        match e {
            Existing::Absent => {}
            Existing::Junk => std::fs::write(&path, format!("junk {name}")).expect("write"),
            Existing::Model(data) if *data != *name && !dir.join(data).exists() => {
                model_at(dir, name, data)
            }
            Existing::Model(_) => {}
        }
    }
}

fn snapshot(dirs: &[&Path]) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out: Vec<_> = dirs
        .iter()
        .flat_map(|d| std::fs::read_dir(d).expect("dir"))
        .map(|e| e.expect("entry").path())
        .map(|p| (p.clone(), std::fs::read(&p).expect("read")))
        .collect();
    out.sort();
    out
}

/// Runs the layout; returns whether the save succeeded.
fn run(l: &Layout, a: &Path, b: &Path) -> Result<(), String> {
    let input = a.join(l.input.0);
    let output = match (l.in_place, l.to_b) {
        (true, _) => input.clone(),
        (false, true) => b.join(l.output),
        (false, false) => a.join(l.output),
    };
    let req = Request {
        flags: Settings {
            level: Some(0),
            external_data_name: l.data_name.map(String::from),
            external_data_threshold: l.threshold.then_some(1024),
            ..Settings::default()
        },
        config: ConfigChoice::Off,
        ..Request::default()
    };
    let outcome = job::run(&Source::File(input), &req, None).map_err(|e| e.to_string())?;
    let saved = match l.in_place {
        true => outcome.save(&output),
        false => outcome.save_new(&output),
    };
    saved.map(|_| ()).map_err(|e| format!("{e:#}"))
}

/// True when the file at `model` is a model with external tensors in `location`.
fn keeps_data_in(model: &Path, location: &str) -> bool {
    let Ok(bytes) = std::fs::read(model) else {
        return false;
    };
    let Ok(p) = whittle_onnx::decode(bytes.into(), model) else {
        return false;
    };
    p.graph.iter().flat_map(|g| &g.initializer).any(|t| {
        t.external_data
            .iter()
            .any(|e| e.key.as_deref() == Some("location") && e.value.as_deref() == Some(location))
    })
}

/// The weights of `model` by name.
fn weights(model: &Path) -> Vec<(String, Vec<u8>)> {
    let m = read_model(model).expect("reads back");
    let mut out: Vec<_> = m
        .graph
        .initializers()
        .iter()
        .map(|v| {
            let val = m.graph.value(*v);
            let t = val.initializer().expect("initializer");
            (
                val.name().to_string(),
                t.le_bytes().expect("bytes").to_vec(),
            )
        })
        .collect();
    out.sort();
    out
}

fn check(l: &Layout) -> Result<(), TestCaseError> {
    let root = tempfile::tempdir().expect("tempdir");
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    std::fs::create_dir(&a).expect("a");
    std::fs::create_dir(&b).expect("b");
    model_at(&a, l.input.0, l.input.1);
    fill(&a, &l.a);
    fill(&b, &l.b);
    let before = snapshot(&[&a, &b]);
    let input = a.join(l.input.0);
    let out_dir = if l.to_b && !l.in_place { &b } else { &a };
    let output = if l.in_place {
        input.clone()
    } else {
        out_dir.join(l.output)
    };
    let data_name = l.data_name.map_or_else(
        || format!("{}.data", output.file_name().unwrap().to_string_lossy()),
        String::from,
    );
    let data = out_dir.join(&data_name);
    // The output's own data file (the model now at the output keeps tensors there) may be
    // replaced with it; any other file of that name may not.
    let own_data = keeps_data_in(&output, &data_name);
    let result = run(l, &a, &b);
    let after = snapshot(&[&a, &b]);
    match &result {
        Err(_) => prop_assert_eq!(
            &after,
            &before,
            "a refused save changed files: {:?}",
            result
        ),
        Ok(()) => {
            for (path, bytes) in &before {
                if *path == output || (*path == data && own_data) {
                    continue;
                }
                let now = after.iter().find(|(p, _)| p == path);
                prop_assert!(
                    now.is_some_and(|n| &n.1 == bytes),
                    "{} changed",
                    path.display()
                );
            }
            prop_assert_eq!(weights(&output), weights(&fixture("cnn_bn.ts.ext.onnx")));
        }
    }
    // Where nothing stood in the way, the save must not have been refused.
    let data_existed = before.iter().any(|(p, _)| *p == data);
    let output_is_an_input = !l.in_place && (output == input || output == a.join(l.input.1));
    let clean =
        !data_existed && output.file_name() != Some(data_name.as_ref()) && !output_is_an_input;
    if clean {
        prop_assert!(result.is_ok(), "refused a clean layout: {:?}", result);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_pre_existing_file_but_the_output_changes(l in layout()) {
        check(&l)?;
    }
}

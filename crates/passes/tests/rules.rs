//! Rule tests, text in / text out (cranelift-style filetests) plus a numeric check.
//!
//! Each `tests/rules/*.wt` file holds a model in the IR text form, header comments
//! `# passes: a,b` (the passes to run), `# rewrites: N` (how many rewrites must happen; 0
//! for guard cases that must not fire), `# rules: r1,r2` (rules that must have fired) and
//! `# enable: r1` (rules that are off by default to switch on), `# runtime: ort` (the
//! numeric check in ONNX Runtime, for models tract cannot load),
//! then either a line `# expect:` and the text the rewritten model must print as, or
//! `# check: TEXT` lines, each a piece of the printed result (partial output). `WHITTLE_BLESS=1 cargo test -p whittle-passes --test
//! rules` rewrites the expected parts (review the diff). Every case also runs the model
//! before and after in tract (or ONNX Runtime) on random inputs: the outputs must agree
//! (rtol 1e-5).

mod common;
use common::settings;
use std::path::{Path, PathBuf};
use whittle_eval::{InputSpec, Runner, Runtime, RuntimeChoice, random_inputs};
use whittle_ir::text::{PrintOptions, parse_model, print_model};
use whittle_passes::{PassCx, PassSettings, Pipeline};

const MARK: &str = "# expect:";

fn header<'a>(src: &'a str, key: &str) -> Option<&'a str> {
    src.lines()
        .find_map(|l| l.trim().strip_prefix(&format!("# {key}:")).map(str::trim))
}

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rules");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/rules exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wt"))
        .collect();
    v.sort();
    v
}

fn close(a: &whittle_ir::Tensor, b: &whittle_ir::Tensor) -> bool {
    if a.dims != b.dims || a.dtype() != b.dtype() {
        return false;
    }
    match (a.to_f32_vec(), b.to_f32_vec()) {
        (Ok(x), Ok(y)) => x
            .iter()
            .zip(&y)
            .all(|(p, q)| (p - q).abs() <= 1e-5 + 1e-5 * q.abs() || (p.is_nan() && q.is_nan())),
        _ => a == b,
    }
}

fn run_case(path: &Path) -> Result<(), String> {
    let file = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let checks: Vec<&str> = file
        .lines()
        .filter_map(|l| l.trim().strip_prefix("# check:").map(str::trim))
        .collect();
    let (input, expected) = match file.split_once(MARK) {
        Some(split) => split,
        None if !checks.is_empty() => (file.as_str(), ""),
        None => return Err("no '# expect:' or '# check:' line".into()),
    };
    let passes: Vec<String> = header(input, "passes")
        .ok_or("no '# passes:' header")?
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    let original = parse_model(input).map_err(|e| e.to_string())?;
    let mut model = original.clone();
    // `# enable: r1,r2`: rules that are off by default, switched on for this case.
    let enable = header(input, "enable").map_or_else(Vec::new, |e| {
        e.split(',').map(|s| s.trim().to_string()).collect()
    });
    let mut cx = PassCx::new(PassSettings {
        enable,
        ..settings()
    });
    Pipeline::with_passes(&passes)?
        .run(&mut model, &mut cx)
        .map_err(|e| e.to_string())?;
    model
        .graph
        .verify(false)
        .map_err(|e| format!("rewritten graph is invalid: {e}"))?;
    let got = print_model(&model, &PrintOptions::default());
    if let Some(n) = header(input, "rewrites") {
        let want: usize = n.parse().map_err(|_| "bad '# rewrites:'")?;
        if cx.journal.log.len() != want {
            return Err(format!(
                "{} rewrites, expected {want}: {:?}",
                cx.journal.log.len(),
                cx.journal.log
            ));
        }
    }
    for rule in header(input, "rules")
        .into_iter()
        .flat_map(|r| r.split(','))
    {
        if !cx.journal.log.iter().any(|(_, r, _)| *r == rule.trim()) {
            return Err(format!(
                "rule '{}' did not fire: {:?}",
                rule.trim(),
                cx.journal.log
            ));
        }
    }
    if let Some(missing) = checks.iter().find(|c| !got.contains(*c)) {
        return Err(format!("'# check: {missing}' not in the output:\n{got}"));
    }
    if expected.is_empty() {
        // Partial output only.
    } else if std::env::var_os("WHITTLE_BLESS").is_some() {
        std::fs::write(path, format!("{input}{MARK}\n{got}")).map_err(|e| e.to_string())?;
    } else if expected.trim() != got.trim() {
        return Err(format!(
            "output differs.\n--- expected\n{}\n--- got\n{}",
            expected.trim(),
            got.trim()
        ));
    }
    same_outputs(input, &original, &model)
}

/// The numeric check: `original` and `model` on the same random inputs, in tract or, with
/// `# runtime: ort`, ONNX Runtime; the outputs must agree.
fn same_outputs(
    input: &str,
    original: &whittle_ir::Model,
    model: &whittle_ir::Model,
) -> Result<(), String> {
    let spec = InputSpec::default();
    let inputs = random_inputs(&original.graph, &spec)?;
    let rt = match header(input, "runtime") {
        Some("ort") => Runtime::choose(RuntimeChoice::Ort, None, Some(1))
            .map_err(|e| format!("{e} (scripts/test sets ORT_DYLIB_PATH)"))?,
        _ => Runtime::Tract,
    };
    let run = |m: &whittle_ir::Model, label: &str| {
        Runner::exact(&rt, m, label, &inputs)
            .and_then(|r| r.run(&inputs))
            .map_err(|e| e.to_string())
    };
    let (a, b) = (run(original, "before")?, run(model, "after")?);
    if a.len() != b.len() || !a.iter().zip(&b).all(|(x, y)| close(x, y)) {
        return Err(format!("outputs changed:\nbefore {a:?}\nafter {b:?}"));
    }
    Ok(())
}

#[test]
fn rules_rewrite_as_written_and_keep_outputs() {
    let cases = cases();
    assert!(cases.len() >= 10, "rule cases missing");
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|p| run_case(p).err().map(|e| format!("{}: {e}", p.display())))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

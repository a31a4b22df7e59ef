//! `whittle dump`: the text listing, `--summary`, `--cost`, `--format json|dot`,
//! `--compare`.

mod compare;
mod cost_table;
mod dot;
mod json;
mod summary;

use crate::cli::{DumpArgs, Format};
use crate::shapes;
use anyhow::{Context, bail};
use std::io::IsTerminal;
use std::path::Path;
use whittle_ir::Model;
use whittle_ir::infer::{InferOptions, infer};
use whittle_ir::text::{PrintOptions, print_model};
use whittle_onnx::read_model_lazy;

/// A model read and annotated with inferred types.
pub struct Loaded {
    pub model: Model,
    pub file_size: u64,
}

/// Reads `path` and runs shape inference with the user's input shapes; inference
/// warnings go to stderr.
pub fn load(path: &Path, input_shapes: &[String]) -> anyhow::Result<Loaded> {
    let mut model = read_model_lazy(path)?;
    let opts = InferOptions {
        input_shapes: shapes::parse_all(input_shapes)?,
    };
    let inf = infer(&mut model, &opts).with_context(|| format!("{}", path.display()))?;
    for w in &inf.warnings {
        tracing::warn!("{}: {w}", path.display());
    }
    let file_size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    Ok(Loaded { model, file_size })
}

/// The model's inputs and outputs with their types, as `--summary` lists them.
pub fn io_text(g: &whittle_ir::Graph) -> String {
    format!(
        "inputs:\n{}outputs:\n{}",
        summary::io_lines(g, g.inputs()),
        summary::io_lines(g, g.outputs())
    )
}

pub fn run(args: DumpArgs) -> anyhow::Result<u8> {
    if let Some(path) = &args.html {
        let [input] = &args.inputs[..] else {
            bail!("--html describes one model");
        };
        let l = load(input, &args.input_shape)?;
        let page = crate::html::dump_page(input, &l.model);
        std::fs::write(path, page).with_context(|| format!("writing {}", path.display()))?;
        return Ok(0);
    }
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let out = render(&args, color)?;
    print!("{out}");
    if !out.ends_with('\n') {
        println!();
    }
    Ok(0)
}

/// What `whittle dump` prints for `args` (`color`: ANSI colors in the text listing).
pub fn render(args: &DumpArgs, color: bool) -> anyhow::Result<String> {
    if args.compare != (args.inputs.len() == 2) {
        bail!("give two models with --compare, and one without");
    }
    let loaded: Vec<Loaded> = args
        .inputs
        .iter()
        .map(|p| load(p, &args.input_shape))
        .collect::<anyhow::Result<_>>()?;
    Ok(if args.compare {
        compare::render(args, &loaded[0], &loaded[1])?
    } else {
        let l = &loaded[0];
        match (args.format, args.summary, args.cost) {
            (Format::Json, true, _) => json::summary(l)?,
            (Format::Json, false, true) => json::costs(l)?,
            (Format::Json, false, false) => json::graph(l)?,
            (Format::Dot, _, _) => dot::render(&l.model),
            (Format::Text, true, _) => summary::render(l),
            (Format::Text, false, true) => cost_table::render(&l.model, args.sort),
            (Format::Text, false, false) => {
                let o = PrintOptions {
                    max_values: if args.full {
                        None
                    } else {
                        Some(args.max_values)
                    },
                    color,
                };
                print_model(&l.model, &o)
            }
        }
    })
}

//! The runtime that loads, runs and times models for whittle's checks and searches:
//! tract (embedded, the default) or ONNX Runtime (loaded at run time, see
//! [`crate::load_ort`]). [`Runner`] is the one way to run a whole model in either.

use crate::ort_lib::{OrtLib, OrtLibError, load_ort};
use crate::ort_run::OrtRunner;
use crate::run::{EvalError, TractRunner};
use std::path::Path;
use whittle_ir::{Model, Tensor};

/// A runtime ready to load models.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Runtime {
    /// tract, linked into whittle.
    #[default]
    Tract,
    /// ONNX Runtime from the loaded library, with `threads` intra-op threads (None: its
    /// default).
    Ort { lib: OrtLib, threads: Option<usize> },
}

/// What the user asked for (`--runtime`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RuntimeChoice {
    #[default]
    Tract,
    Ort,
    /// ONNX Runtime when its library is found, else tract.
    Auto,
}

impl std::str::FromStr for RuntimeChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "tract" => Ok(RuntimeChoice::Tract),
            "ort" | "onnxruntime" => Ok(RuntimeChoice::Ort),
            "auto" => Ok(RuntimeChoice::Auto),
            other => Err(format!(
                "unknown runtime '{other}' (expected tract, ort or auto)"
            )),
        }
    }
}

impl Runtime {
    /// The runtime `choice` names. `ort_lib` is `--ort-lib`; `threads` applies to ONNX
    /// Runtime (tract runs on one thread). With `auto`, a library that is not found
    /// means tract; one that is found but cannot be loaded is still an error.
    pub fn choose(
        choice: RuntimeChoice,
        ort_lib: Option<&Path>,
        threads: Option<usize>,
    ) -> Result<Runtime, OrtLibError> {
        let ort = |lib| Runtime::Ort { lib, threads };
        match choice {
            RuntimeChoice::Tract => Ok(Runtime::Tract),
            RuntimeChoice::Ort => load_ort(ort_lib).map(ort),
            RuntimeChoice::Auto => match load_ort(ort_lib) {
                Ok(lib) => Ok(ort(lib)),
                Err(OrtLibError::NotFound { looked }) => {
                    tracing::info!(
                        "runtime auto: tract (ONNX Runtime not found; looked at {looked})"
                    );
                    Ok(Runtime::Tract)
                }
                Err(e) => Err(e),
            },
        }
    }

    /// `tract` or `ONNX Runtime`.
    pub fn name(&self) -> &'static str {
        match self {
            Runtime::Tract => crate::run::TRACT,
            Runtime::Ort { .. } => "ONNX Runtime",
        }
    }

    /// The runtime as a report states it: name, version, library and threads.
    pub fn describe(&self) -> String {
        match self {
            Runtime::Tract => "tract (embedded, one thread)".to_string(),
            Runtime::Ort { lib, threads } => format!(
                "ONNX Runtime {} ({} from {}), {}",
                lib.version,
                lib.path.display(),
                lib.source,
                match threads {
                    Some(n) => format!("{n} intra-op thread{}", if *n == 1 { "" } else { "s" }),
                    None => "its default threads".to_string(),
                }
            ),
        }
    }

    /// True for ONNX Runtime, whose sessions take any input shape the model admits.
    pub fn any_shape(&self) -> bool {
        matches!(self, Runtime::Ort { .. })
    }
}

/// A model loaded in a runtime, ready to run many times.
pub struct Runner {
    engine: Engine,
}

enum Engine {
    Tract(TractRunner),
    Ort(OrtRunner),
}

impl Runner {
    /// Loads `model` in `rt` as a deployment runs it (ONNX Runtime with its graph
    /// optimizations), for inputs like `example` (tract pins its inputs to their shapes
    /// and types; ONNX Runtime takes any shape). For timing and judging lossy steps.
    pub fn new(
        rt: &Runtime,
        model: &Model,
        label: &str,
        example: &[Tensor],
    ) -> Result<Runner, EvalError> {
        Runner::load(rt, model, label, example, true)
    }

    /// Loads `model` in `rt` to run its graph as written: ONNX Runtime's own fusions and
    /// folding are off, so comparing two models compares what their graphs compute, not
    /// how ONNX Runtime happened to rewrite each (its Conv+BatchNorm fusion of an original
    /// rounds differently from whittle's). For lossless checks.
    pub fn exact(
        rt: &Runtime,
        model: &Model,
        label: &str,
        example: &[Tensor],
    ) -> Result<Runner, EvalError> {
        Runner::load(rt, model, label, example, false)
    }

    fn load(
        rt: &Runtime,
        model: &Model,
        label: &str,
        example: &[Tensor],
        optimized: bool,
    ) -> Result<Runner, EvalError> {
        let engine = match rt {
            Runtime::Tract => Engine::Tract(TractRunner::new(model, label, example)?),
            Runtime::Ort { lib, threads } => {
                Engine::Ort(OrtRunner::new(lib, model, label, (*threads, optimized))?)
            }
        };
        Ok(Runner { engine })
    }

    /// Loads `model` once for every set of `sets`: tract with the dims that differ
    /// between sets symbolic, ONNX Runtime as it is.
    pub fn for_sets(
        rt: &Runtime,
        model: &Model,
        label: &str,
        sets: &[Vec<Tensor>],
    ) -> Result<Runner, EvalError> {
        match rt {
            Runtime::Tract => Ok(Runner {
                engine: Engine::Tract(TractRunner::for_sets(model, label, sets)?),
            }),
            Runtime::Ort { .. } => Runner::new(rt, model, label, &[]),
        }
    }

    /// Runs on `inputs` (one per graph input, in order) and returns the outputs in order.
    pub fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, EvalError> {
        match &self.engine {
            Engine::Tract(r) => r.run(inputs),
            Engine::Ort(r) => r.run(inputs),
        }
    }

    /// The name of the runtime this runner runs in.
    pub fn runtime_name(&self) -> &'static str {
        match &self.engine {
            Engine::Tract(_) => crate::run::TRACT,
            Engine::Ort(_) => "ONNX Runtime",
        }
    }
}

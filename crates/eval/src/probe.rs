//! Runs a model over many input sets with chosen inner values exposed, for the statistics
//! lossy passes need (activation ranges for quantization, layer-input moments for
//! decomposition).

use crate::run::EvalError;
use crate::runtime::Runtime;
use crate::sets::SetRunner;
use whittle_ir::{Model, Tensor, ValueId};

/// Runs `model` on every set of `sets` with `values` as extra outputs and calls `seen`
/// once per set with those values' tensors, in the order of `values`. A value that is a
/// graph input is read from the set itself. tract loads the model once per shape, or once
/// for all when the sets come in many shapes ([`SetRunner`]); ONNX Runtime once.
pub fn probe<E: From<EvalError>>(
    runtime: &Runtime,
    model: &Model,
    values: &[ValueId],
    sets: &[Vec<Tensor>],
    label: &str,
    mut seen: impl FnMut(&[&Tensor]) -> Result<(), E>,
) -> Result<(), E> {
    let mut probe = model.clone();
    let g = &mut probe.graph;
    let slots: Vec<Slot> = values
        .iter()
        .map(|v| {
            if let Some(k) = g.inputs().iter().position(|x| x == v) {
                Slot::Input(k)
            } else if let Some(k) = g.outputs().iter().position(|x| x == v) {
                Slot::Output(k)
            } else {
                g.push_output(*v);
                Slot::Output(g.outputs().len() - 1)
            }
        })
        .collect();
    let mut runner = SetRunner::new(runtime, &probe, label, sets);
    for set in sets {
        let outs = runner.run(set)?;
        let picked: Vec<&Tensor> = slots
            .iter()
            .filter_map(|s| match s {
                Slot::Input(k) => set.get(*k),
                Slot::Output(k) => outs.get(*k),
            })
            .collect();
        if picked.len() == slots.len() {
            seen(&picked)?;
        }
    }
    Ok(())
}

/// Where the probe model exposes a value.
#[derive(Clone, Copy, Debug)]
enum Slot {
    Input(usize),
    Output(usize),
}

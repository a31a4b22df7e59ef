//! Where a save may write. A model file's external data goes to one data file named after
//! the output (`<output file name>.data`, or the name the caller chose), never to a name
//! taken from the input; and a save writes over no file but the output and that output's
//! own data file. These checks run before anything is written.

use crate::error::OnnxError;
use crate::proto;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use whittle_ir::{Graph, Model, Tensor};

/// The files a model was read from: the model file and the external data files its
/// tensors point at. A save protects them: it never writes over one, except when the
/// output *is* the model file (`--in-place`), which replaces the model and its data.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InputFiles {
    pub model: PathBuf,
    pub data: Vec<PathBuf>,
}

impl InputFiles {
    /// The files of `model`, read from `path`: the locations its external tensors name,
    /// resolved against the model's folder (call it before a rewrite drops tensors).
    pub fn of(model: &Model, path: &Path) -> InputFiles {
        let dir = folder_of(path);
        InputFiles {
            model: path.to_path_buf(),
            data: locations(model).iter().map(|l| dir.join(l)).collect(),
        }
    }

    /// Every file, the model first.
    pub fn all(&self) -> impl Iterator<Item = &Path> {
        std::iter::once(self.model.as_path()).chain(self.data.iter().map(PathBuf::as_path))
    }
}

/// The folder a file is in (`.` for a bare file name).
pub fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The data file name for an output: `name` when given, else `<output file name>.data`.
pub fn data_name_for(output: &Path, name: Option<&str>) -> String {
    match name {
        Some(n) => n.to_string(),
        None => format!(
            "{}.data",
            output
                .file_name()
                .map_or_else(|| "model.onnx".into(), |n| n.to_string_lossy().into_owned())
        ),
    }
}

/// Checks a chosen data file name: a plain file name (no folders, not `.` or `..`).
pub fn check_data_name(name: &str) -> Result<(), String> {
    let p = Path::new(name);
    let plain = matches!(
        p.components().collect::<Vec<_>>()[..],
        [std::path::Component::Normal(_)]
    );
    if name.is_empty() || !plain || name.contains(['/', '\\']) {
        return Err(format!(
            "external data name '{name}': expected a file name without folders"
        ));
    }
    Ok(())
}

/// Every external data location the model's tensors name (graphs, subgraphs, functions).
pub fn locations(m: &Model) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    each_tensor(m, &mut |t| {
        if let Some(l) = t.external_entry("location").filter(|_| t.is_external()) {
            out.insert(l.to_string());
        }
    });
    out
}

/// Calls `f` on every tensor of the model: initializers and tensor attributes, in the main
/// graph, every subgraph and every function body.
pub fn each_tensor(m: &Model, f: &mut dyn FnMut(&Tensor)) {
    graph_tensors(&m.graph, f);
    for func in &m.functions {
        graph_tensors(&func.body, f);
        for a in &func.attribute_proto {
            a.t.iter().map(|t| &**t).chain(&a.tensors).for_each(&mut *f);
        }
    }
}

fn graph_tensors(g: &Graph, f: &mut dyn FnMut(&Tensor)) {
    for v in g.initializers() {
        if let Some(t) = g.value(*v).initializer() {
            f(t);
        }
    }
    for n in g.node_ids() {
        for a in &g.node(n).attributes {
            a.t.iter().map(|t| &**t).chain(&a.tensors).for_each(&mut *f);
            for sub in a.subgraphs() {
                graph_tensors(sub, f);
            }
        }
    }
}

/// Refuses a save of a model to `output` with data files `data` (locations relative to
/// the output's folder) that would write over a file it must not: a file the input reads
/// (unless the output replaces the input), or an existing file that is not the current
/// output's own data file. Errors name both files.
pub fn check_targets(
    output: &Path,
    data: &[String],
    input: Option<&InputFiles>,
) -> Result<(), OnnxError> {
    let replaces_input = input.is_some_and(|i| same_file(&i.model, output));
    if let Some(i) = input
        && i.data.iter().any(|d| same_file(d, output))
    {
        return Err(refused(format!(
            "{}: the output is a data file the input {} reads; write elsewhere",
            output.display(),
            i.model.display()
        )));
    }
    let dir = folder_of(output);
    for location in data {
        let target = dir.join(location);
        if output.file_name() == Some(std::ffi::OsStr::new(location)) {
            return Err(refused(format!(
                "{}: its external data file would be the model file itself; choose another \
                 external data name",
                output.display()
            )));
        }
        if let Some(i) = input
            && !replaces_input
            && let Some(f) = i.all().find(|f| same_file(f, &target))
        {
            return Err(refused(format!(
                "{}: its external data file {} is a file the input {} reads ({}); whittle \
                 will not write over it: choose another external data name",
                output.display(),
                target.display(),
                i.model.display(),
                f.display()
            )));
        }
        if target.exists() && !owns(output, location) {
            return Err(refused(format!(
                "{}: its external data file {} already exists and is not {}'s data file; \
                 whittle writes over no file but the output and its own data: remove it or \
                 choose another external data name",
                output.display(),
                target.display(),
                output.display()
            )));
        }
    }
    Ok(())
}

fn refused(message: String) -> OnnxError {
    OnnxError::WouldOverwrite(message)
}

/// True when the model now at `output` keeps external tensors in `location`: that file
/// is the data of the output being replaced, which the save replaces too.
fn owns(output: &Path, location: &str) -> bool {
    let Ok(bytes) = crate::external::map_file_with(output, false) else {
        return false;
    };
    let Ok(mut p) = crate::file::decode(bytes, output) else {
        return false;
    };
    let mut found = false;
    crate::compact::each_tensor_mut(&mut p, &mut |t: &mut proto::TensorProto| {
        found |= t.data_location == Some(1)
            && t.external_data.iter().any(|e| {
                e.key.as_deref() == Some("location") && e.value.as_deref() == Some(location)
            });
    });
    found
}

/// True when both paths name one existing file (or are the same path).
pub fn same_file(a: &Path, b: &Path) -> bool {
    if a == b {
        return true;
    }
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

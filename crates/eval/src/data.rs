//! Real input tensors from files: ONNX test data sets (`input_K.pb`), `.npy` and `.npz`.

use std::path::{Path, PathBuf};
use whittle_ir::{DataType, Tensor};

/// Input sets read from `path`: a `test_data_set_N` folder (one set), a folder of such
/// folders (one set each, in order), a `.npy` (one array: the model's single input) or an
/// `.npz` (arrays named after the inputs, or `arr_0`, `arr_1`, ... by position).
/// `names` are the model's input names, in order.
pub fn read_input_sets(path: &Path, names: &[String]) -> Result<Vec<Vec<Tensor>>, String> {
    let err = |e: String| format!("{}: {e}", path.display());
    if path.is_dir() {
        if has_pb_inputs(path) {
            return Ok(vec![read_pb_set(path, names).map_err(err)?]);
        }
        let mut sets: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| err(e.to_string()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir() && has_pb_inputs(p))
            .collect();
        sets.sort();
        if sets.is_empty() {
            return Err(err(
                "no input_*.pb files and no test_data_set_* folders".into()
            ));
        }
        return sets
            .iter()
            .map(|s| read_pb_set(s, names).map_err(|e| format!("{}: {e}", s.display())))
            .collect();
    }
    match path.extension().and_then(|e| e.to_str()) {
        Some("npy") => {
            if names.len() != 1 {
                return Err(err(format!(
                    "a .npy holds one array but the model has {} inputs",
                    names.len()
                )));
            }
            let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
            let npy = npyz::NpyFile::new(&bytes[..]).map_err(|e| err(e.to_string()))?;
            Ok(vec![vec![from_npy(npy, &names[0]).map_err(err)?]])
        }
        Some("npz") => Ok(vec![read_npz(path, names).map_err(err)?]),
        _ => Err(err(
            "expected a test_data_set folder, a .npy or a .npz file".into(),
        )),
    }
}

fn has_pb_inputs(dir: &Path) -> bool {
    dir.join("input_0.pb").is_file()
}

/// `input_0.pb`, `input_1.pb`, ... in index order, matched to the inputs by position.
fn read_pb_set(dir: &Path, names: &[String]) -> Result<Vec<Tensor>, String> {
    let mut out = Vec::new();
    for (k, name) in names.iter().enumerate() {
        let f = dir.join(format!("input_{k}.pb"));
        let mut t = whittle_onnx::read_tensor(&f).map_err(|e| e.to_string())?;
        t.name = Some(name.clone());
        out.push(t);
    }
    if dir.join(format!("input_{}.pb", names.len())).exists() {
        return Err(format!(
            "more input files than the model's {} inputs",
            names.len()
        ));
    }
    Ok(out)
}

fn read_npz(path: &Path, names: &[String]) -> Result<Vec<Tensor>, String> {
    let mut npz = npyz::npz::NpzArchive::open(path).map_err(|e| e.to_string())?;
    let keys: Vec<String> = npz.array_names().map(str::to_string).collect();
    names
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let key = if keys.contains(name) {
                name.clone()
            } else {
                format!("arr_{k}")
            };
            let npy = npz
                .by_name(&key)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| {
                    format!(
                        "no array '{name}' (or 'arr_{k}'); it holds {}",
                        keys.join(", ")
                    )
                })?;
            from_npy(npy, name)
        })
        .collect()
}

/// Converts a numpy array (little-endian numeric types) to a tensor named `name`.
fn from_npy<R: std::io::Read>(npy: npyz::NpyFile<R>, name: &str) -> Result<Tensor, String> {
    let dims: Vec<i64> = npy.shape().iter().map(|d| *d as i64).collect();
    let dtype = npy.dtype();
    let npyz::DType::Plain(ts) = &dtype else {
        return Err(format!(
            "array '{name}': structured arrays are not supported"
        ));
    };
    let (kind, size) = (ts.type_char(), ts.size_field());
    if npy.order() == npyz::Order::Fortran && dims.len() > 1 {
        return Err(format!(
            "array '{name}': Fortran-order arrays are not supported"
        ));
    }
    let e = |x: std::io::Error| format!("array '{name}': {x}");
    let (dt, raw): (DataType, Vec<u8>) = match (kind, size) {
        (npyz::TypeChar::Float, 4) => (
            DataType::Float,
            npy.into_vec::<f32>()
                .map_err(e)?
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
        ),
        (npyz::TypeChar::Float, 8) => (
            DataType::Double,
            npy.into_vec::<f64>()
                .map_err(e)?
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
        ),
        (npyz::TypeChar::Int, 8) => (
            DataType::Int64,
            npy.into_vec::<i64>()
                .map_err(e)?
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
        ),
        (npyz::TypeChar::Int, 4) => (
            DataType::Int32,
            npy.into_vec::<i32>()
                .map_err(e)?
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
        ),
        (npyz::TypeChar::Int, 1) => (
            DataType::Int8,
            npy.into_vec::<i8>()
                .map_err(e)?
                .iter()
                .map(|x| *x as u8)
                .collect(),
        ),
        (npyz::TypeChar::Uint, 1) => (DataType::Uint8, npy.into_vec::<u8>().map_err(e)?),
        (npyz::TypeChar::Bool, 1) => (
            DataType::Bool,
            npy.into_vec::<bool>()
                .map_err(e)?
                .iter()
                .map(|x| u8::from(*x))
                .collect(),
        ),
        _ => {
            return Err(format!(
                "array '{name}': numpy type {dtype:?} is not supported"
            ));
        }
    };
    let mut t = Tensor::from_raw(dt, dims, raw.into());
    t.name = Some(name.to_string());
    t.le_bytes().map_err(|e| e.to_string())?;
    Ok(t)
}

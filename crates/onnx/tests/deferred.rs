//! Deferred tensors (a lossy step's encodings, computed when read): export computes each
//! exactly once, whether it goes to external data or stays inline, and writes what the
//! encoding gives.

use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use whittle_ir::text::parse_model;
use whittle_ir::{DataType, Deferred, Model, Tensor};
use whittle_onnx::{ExportOptions, read_model, save_model};

/// `y = Add(x, w)` with w (n floats 0, 1, 2, ...) deferred; the counter counts encodings.
fn model(n: usize) -> (Model, Arc<AtomicUsize>) {
    let mut m = parse_model(&format!(
        "ir_version 10\nopset ai.onnx 17\ngraph {{\n  input x: f32[{n}]\n  output y: f32[{n}]\n  \
         init w: f32[{n}] = random\n  y = Add(x, w)\n}}\n"
    ))
    .unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let data = Deferred::new(4 * n as u64, move || {
        r.fetch_add(1, Ordering::SeqCst);
        Ok(Bytes::from(
            (0..n)
                .flat_map(|i| (i as f32).to_le_bytes())
                .collect::<Vec<u8>>(),
        ))
    });
    let g = &mut m.graph;
    let w = g.find("w").unwrap();
    g.remove_initializer(w);
    let t = Tensor::from_deferred(DataType::Float, vec![n as i64], data);
    let new = g.add_initializer("wq", t);
    g.replace_all_uses(w, new);
    (m, runs)
}

/// Tensors of 1 KiB and more to `m.onnx.data`.
fn external() -> ExportOptions {
    ExportOptions {
        external_threshold: Some(1024),
        external_location: Some("m.onnx.data".into()),
        ..Default::default()
    }
}

fn saved_values(path: &std::path::Path) -> (Vec<f32>, bool) {
    let back = read_model(path).unwrap();
    let only = back.graph.initializers()[0];
    let t = back.graph.value(only).initializer().unwrap().clone();
    (t.to_f32_vec().unwrap(), t.is_external())
}

#[test]
fn an_external_deferred_tensor_is_computed_once_as_it_is_written() {
    let (m, runs) = model(1000);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("m.onnx");
    let opts = external();
    save_model(&m, &out, &opts).unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let (values, external) = saved_values(&out);
    assert!(external);
    assert_eq!(values[999], 999.0);
}

#[test]
fn an_inline_deferred_tensor_is_computed_once_after_the_size_check() {
    let (m, runs) = model(10);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("m.onnx");
    save_model(&m, &out, &ExportOptions::default()).unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let (values, external) = saved_values(&out);
    assert!(!external);
    assert_eq!(values, (0..10).map(|i| i as f32).collect::<Vec<_>>());
}

#[test]
fn a_failing_encoding_fails_the_save_and_writes_nothing() {
    let (mut m, _) = model(1000);
    let g = &mut m.graph;
    let w = g.initializers()[0];
    let bad = Deferred::new(4000, || Ok(Bytes::from_static(&[0; 8])));
    g.initializer_mut(w).unwrap().data.deferred = Some(bad);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("m.onnx");
    let opts = external();
    let e = save_model(&m, &out, &opts).unwrap_err().to_string();
    assert!(
        e.contains("wq") && e.contains("8 bytes, 4000 announced"),
        "{e}"
    );
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

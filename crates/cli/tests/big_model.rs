//! A model with more than 2 GiB of weights in external data: it loads, optimizes and
//! saves with valid external data and offsets, and whittle's peak RSS stays far below the
//! model's size (weights stay memory-mapped). Ignored by default (it writes 4.5 GB):
//! `just big-model` runs it and prints the figures for docs/reliability.md.

use prost::Message;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::Command;
use whittle_onnx::proto::{
    GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorProto,
    ValueInfoProto,
};

const SIDE: i64 = 8192; // weights are SIDE×SIDE f32 = 256 MiB
const LAYERS: usize = 9; // 2.25 GiB in all

fn entry(k: &str, v: String) -> StringStringEntryProto {
    StringStringEntryProto {
        key: Some(k.into()),
        value: Some(v),
    }
}

fn node(op: &str, name: &str, inputs: &[&str], output: &str) -> NodeProto {
    NodeProto {
        op_type: Some(op.into()),
        name: Some(name.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        ..Default::default()
    }
}

fn value(name: &str) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.into()),
        ..Default::default()
    }
}

/// Writes `dir/big.onnx` + `dir/big.onnx.data`: x → Identity → MatMul × LAYERS → y.
/// Weight i is filled with a pattern that depends on i, so mixed-up offsets show.
fn write_model(dir: &Path) -> u64 {
    let bytes_per = (SIDE * SIDE * 4) as u64;
    let mut data = std::io::BufWriter::with_capacity(
        1 << 22,
        std::fs::File::create(dir.join("big.onnx.data")).unwrap(),
    );
    let mut inits = Vec::new();
    let mut nodes = vec![node("Identity", "copy", &["x"], "h0")];
    for i in 0..LAYERS {
        let chunk: Vec<u8> = (0..(1 << 20) as u32)
            .flat_map(|k| ((k % 977) as f32 * 1e-4 + i as f32).to_le_bytes())
            .collect();
        let mut left = bytes_per;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            data.write_all(&chunk[..n]).unwrap();
            left -= n as u64;
        }
        inits.push(TensorProto {
            name: Some(format!("w{i}")),
            dims: vec![SIDE, SIDE],
            data_type: Some(1),
            data_location: Some(1),
            external_data: vec![
                entry("location", "big.onnx.data".into()),
                entry("offset", (i as u64 * bytes_per).to_string()),
                entry("length", bytes_per.to_string()),
            ],
            ..Default::default()
        });
        let (a, b, w) = (format!("h{i}"), format!("h{}", i + 1), format!("w{i}"));
        let out = if i + 1 == LAYERS { "y".to_string() } else { b };
        nodes.push(node("MatMul", &format!("mm{i}"), &[&a, &w], &out));
    }
    data.flush().unwrap();
    let model = ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(17),
        }],
        graph: Some(GraphProto {
            name: Some("big".into()),
            node: nodes,
            initializer: inits,
            input: vec![value("x")],
            output: vec![value("y")],
            ..Default::default()
        }),
        ..Default::default()
    };
    std::fs::write(dir.join("big.onnx"), model.encode_to_vec()).unwrap();
    bytes_per * LAYERS as u64
}

/// Peak RSS (KiB) of the largest child process waited for so far.
fn children_peak_kib() -> i64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) };
    u.ru_maxrss
}

/// Sum of the bytes of `len` bytes at `offset` of `file`, read in pieces.
fn checksum(file: &Path, offset: u64, len: u64) -> u64 {
    let mut f = std::fs::File::open(file).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let (mut left, mut sum) = (len, 0u64);
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        f.read_exact(&mut buf[..n]).unwrap();
        sum = buf[..n]
            .iter()
            .fold(sum, |s, b| s.wrapping_mul(31).wrapping_add(u64::from(*b)));
        left -= n as u64;
    }
    sum
}

fn external(t: &TensorProto, key: &str) -> String {
    t.external_data
        .iter()
        .find(|e| e.key.as_deref() == Some(key))
        .and_then(|e| e.value.clone())
        .unwrap_or_default()
}

#[test]
#[ignore = "writes 4.5 GB; run with `just big-model`"]
fn a_model_over_2_gib_round_trips_with_low_memory() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let total = write_model(dir.path());
    let (input, output) = (
        dir.path().join("big.onnx"),
        dir.path().join("out/big.opt.onnx"),
    );
    std::fs::create_dir_all(output.parent().unwrap()).unwrap();
    let start = std::time::Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_whittle"))
        .args([
            "optimize",
            input.to_str().unwrap(),
            "-o",
            output.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let peak = children_peak_kib() as u64 * 1024;
    println!(
        "big model: {:.2} GiB of weights, optimize {secs:.1} s, peak RSS {:.0} MiB ({:.3}x the weights)",
        total as f64 / (1u64 << 30) as f64,
        peak as f64 / (1u64 << 20) as f64,
        peak as f64 / total as f64
    );
    // The result: Identity gone, every weight external, offsets inside the data file,
    // bytes identical to the input's.
    let m = ModelProto::decode(std::fs::read(&output).unwrap().as_slice()).unwrap();
    let g = m.graph.unwrap();
    assert_eq!(g.node.len(), LAYERS, "the Identity is removed");
    assert_eq!(g.initializer.len(), LAYERS);
    let out_dir = output.parent().unwrap();
    for (i, t) in g.initializer.iter().enumerate() {
        let loc = external(t, "location");
        let data_file = out_dir.join(&loc);
        let (off, len): (u64, u64) = (
            external(t, "offset").parse().unwrap(),
            external(t, "length").parse().unwrap(),
        );
        let size = std::fs::metadata(&data_file).unwrap().len();
        assert!(off + len <= size, "{loc}: {off}+{len} > {size}");
        assert_eq!(off % 64, 0, "aligned offsets");
        let want = checksum(
            &dir.path().join("big.onnx.data"),
            i as u64 * (SIDE * SIDE * 4) as u64,
            len,
        );
        let name = t.name.clone().unwrap();
        let src = name.trim_start_matches('w').parse::<u64>().unwrap();
        let want = if src == i as u64 {
            want
        } else {
            checksum(&dir.path().join("big.onnx.data"), src * len, len)
        };
        assert_eq!(checksum(&data_file, off, len), want, "{name}");
    }
    assert!(
        peak < total / 4,
        "peak RSS {peak} is not far below the model size {total}"
    );
}

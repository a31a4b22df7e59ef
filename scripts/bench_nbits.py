#!/usr/bin/env python3
"""MatMulNBits in ONNX Runtime on the ~1 GB Llama-shaped decoder: one decode step of
whittle's int8 and int4 outputs (the forms, block sizes and accuracy levels it measures)
against float and against ONNX Runtime's own MatMulNBitsQuantizer, in one run.

Each row's speed over float is benchtime.speed (alternating rounds, median of per-round
ratios, ORT one thread), every row in the same process. The step's logits are compared
with float's (cosine). ORT's profiler then splits each model's step by operator, which
shows what bounds the speed-up: the KV cache's Concat (past + new token, 67 MB each way)
costs the same in every row.

Prints Markdown; --write replaces the "MatMulNBits on a 1 GB decoder" section of
docs/benchmarks.md. Run with the venv of scripts/requirements-gen.txt (`just
bench-nbits`); models are kept in --dir (the one scripts/big_llm.py uses).
"""
import argparse
import collections
import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import benchdoc  # noqa: E402
import benchtime  # noqa: E402
import big_llm  # noqa: E402
import big_llm_model  # noqa: E402

HEAD = "## MatMulNBits on a 1 GB decoder"

ORT_QUANT = """
import sys, onnx
from onnxruntime.quantization.matmul_nbits_quantizer import (
    MatMulNBitsQuantizer, DefaultWeightOnlyQuantConfig)
bits, level = int(sys.argv[3]), int(sys.argv[4])
cfg = DefaultWeightOnlyQuantConfig(block_size=32, is_symmetric=True, accuracy_level=level,
                                   bits=bits)
q = MatMulNBitsQuantizer(onnx.load(sys.argv[1]), algo_config=cfg)
q.process()
q.model.save_model_to_file(sys.argv[2], use_external_data_format=True)
"""


def ort_lib():
    import onnxruntime
    capi = pathlib.Path(onnxruntime.__file__).parent / "capi"
    return str(next(capi.glob("libonnxruntime.so*")))


def whittle(args, src, dst, *flags):
    """Runs whittle; returns the report's lines about measured choices."""
    out = subprocess.run([args.whittle, "optimize", src, "-o", dst, *map(str, flags)],
                         capture_output=True, text=True, check=True)
    return [l for l in out.stdout.splitlines()
            if l.startswith(("int8 form", "int4 block size", "int4 accuracy_level"))]


def size_mb(path):
    data = path.with_name(path.name + ".data")
    return (path.stat().st_size + (data.stat().st_size if data.exists() else 0)) / 1e6


def by_op(path, f, runs=10, warmup=3):
    """ms per step by op type, from ORT's profiler, over the runs after `warmup` (the
    first runs page the weights in)."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    so.enable_profiling, so.log_severity_level = True, 3
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    for _ in range(warmup + runs):
        s.run(None, f)
    prof = pathlib.Path(s.end_profiling())
    events = json.loads(prof.read_text())
    starts = sorted(e["ts"] for e in events if e.get("name") == "model_run")
    agg = collections.Counter()
    for e in events:
        if (e.get("cat") == "Node" and e["name"].endswith("_kernel_time")
                and e["ts"] >= starts[warmup]):
            agg[e["args"]["op_name"]] += e["dur"] / runs / 1000
    prof.unlink()
    return agg


def rows(args, src):
    """(label, path, notes) of every row, the models written as needed."""
    d, lib = args.dir, ort_lib()
    ort = ["--runtime", "ort", "--ort-lib", lib, "--threads", 1]
    spec = [
        ("whittle `--quantize int8-weights --int8-form cast`", "w-i8cast.onnx",
         ["--quantize", "int8-weights", "--int8-form", "cast"]),
        ("whittle `--quantize int8-weights --runtime ort` (auto)", "w-i8auto.onnx",
         ["--quantize", "int8-weights", *ort]),
        ("whittle `--quantize int4 --int4-format matmulnbits --runtime ort` (auto)",
         "w-i4auto.onnx", ["--quantize", "int4", "--int4-format", "matmulnbits", *ort]),
        ("whittle `--quantize int4 --runtime ort` (dq, the default format; ORT fuses it)",
         "w-i4dq.onnx", ["--quantize", "int4", *ort]),
    ]
    out = []
    for label, name, flags in spec:
        notes = whittle(args, src, d / name, *flags)
        out.append((label, d / name, notes))
    for bits, level in ((8, 4), (4, 4)):
        name = d / f"ortq{bits}-{level}.onnx"
        if not name.exists():
            subprocess.run([sys.executable, "-c", ORT_QUANT, src, name, str(bits), str(level)],
                           check=True, capture_output=True)
        out.append((f"ORT MatMulNBitsQuantizer, {bits} bits, block 32, accuracy_level={level}",
                    name, []))
    return out


def table(src, measured):
    f = big_llm.decode_feed()
    base = benchtime.session(src)
    ref = base.run(["logits"], f)[0].ravel()
    float_ops = by_op(src, f)
    lines = ["| model | size | speed vs float | logits cosine | KV Concat | other ops |",
             "|---|---|---|---|---|---|",
             f"| float | {size_mb(src):.0f} MB | 1.00x | 1 | {float_ops['Concat']:.1f} ms "
             f"| {sum(float_ops.values()) - float_ops['Concat']:.1f} ms |"]
    notes = []
    for label, path, said in measured:
        s = benchtime.session(path)
        out = s.run(["logits"], f)[0].ravel()
        cos = float(ref @ out / (np.linalg.norm(ref) * np.linalg.norm(out)))
        speed = benchtime.speed(base, s, f, rounds=5, runs=10)
        ops = by_op(path, f)
        lines.append(f"| {label} | {size_mb(path):.0f} MB | {speed:.2f}x | {cos:.5f} "
                     f"| {ops['Concat']:.1f} ms | {sum(ops.values()) - ops['Concat']:.1f} ms |")
        notes += [f"- {label}: {n}" for n in said]
    return "\n".join(lines) + "\n", notes


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--whittle", required=True)
    ap.add_argument("--dir", type=pathlib.Path,
                    default=pathlib.Path.home() / ".cache/whittle/big-llm")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    src = args.dir / "llama-1gb.onnx"
    if not src.exists():
        big_llm_model.write(src, big_llm_model.PRESETS["1gb"])
    measured = rows(args, src)
    tab, notes = table(src, measured)
    section = (
        f"{HEAD}\n\n`just bench-nbits` (`python scripts/bench_nbits.py --whittle "
        f"{args.whittle} --write`), {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, "
        "onnxruntime from the gen venv. scripts/big_llm_model.py preset `1gb` (random "
        "weights, 16 layers, hidden 1024); one decode step with a 512-token cache, ORT one "
        "thread. Speed over float: alternating rounds, median ratio (scripts/benchtime.py). "
        "KV Concat and other ops: ms per step by ORT's profiler (the profiler's own cost "
        "included). whittle's measured choices:\n\n" + "\n".join(notes) + "\n\n" + tab)
    print(section)
    if args.write:
        benchdoc.replace(HEAD, section)


if __name__ == "__main__":
    main()

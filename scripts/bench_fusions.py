#!/usr/bin/env python3
"""Which decoder fusions pay, in which runtime: a Llama-shaped decoder (scripts/
big_llm_model.py, preset "small": 8 layers, hidden 512, 58 M parameters) raised to opset 24
by whittle, with each fusion into a standard op on and off, timed in ONNX Runtime (one
thread) and tract (`whittle bench`) on prompt processing (batch 1, 128 tokens) and one
decode step after a 512-token cache. Ratios are fused vs unfused in the same run (ORT:
median of alternating rounds, scripts/benchtime.py); outputs are compared too.

Prints Markdown; --write replaces the "Decoder fusions" section of docs/benchmarks.md.
Run with the venv of scripts/requirements-gen.txt (`just bench-fusions`).
"""
import argparse
import pathlib
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import benchdoc  # noqa: E402
import benchtime  # noqa: E402
import big_llm_model  # noqa: E402

# (fusion, the rule that makes it, the standard op it writes)
FUSIONS = [("RMSNorm", "rms-norm", "RMSNormalization"), ("SiLU", "swish", "Swish"),
           ("rotary", "rotary-embedding", "RotaryEmbedding"),
           ("attention", "attention", "Attention")]
CASES = [("prompt, 128 tokens", 128, 0), ("decode step, 512-token cache", 1, 512)]


def feeds(shape, seq, past):
    rng = np.random.default_rng(0)
    f = {"input_ids": rng.integers(0, shape.vocab, (1, seq))}
    for i in range(shape.layers):
        for kind in ("key", "value"):
            f[f"past_{kind}_{i}"] = rng.standard_normal(
                (1, shape.heads, past, shape.head_dim), dtype=np.float32)
    return f


session = benchtime.session  # one-thread ORT session


def tract_ratio(whittle, base, fused, shape, seq, past, runs=10):
    """How many times faster tract runs `fused` than `base` (`whittle bench`), or why not."""
    args = [whittle, "bench", str(base), str(fused), "--runs", str(runs), "--warmup", "2",
            "--input-shape", f"input_ids=1,{seq}",
            "--input-range", f"input_ids=0,{shape.vocab}"]
    for i in range(shape.layers):
        for kind in ("key", "value"):
            args += ["--input-shape", f"past_{kind}_{i}=1,{shape.heads},{past},{shape.head_dim}"]
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        return None, r.stderr.strip().splitlines()[-1][:100]
    # "ratio (second / first): median 0.96x": the fused model's time over the other's.
    m = re.search(r"ratio \(second / first\): median ([0-9.]+)x", r.stdout)
    if not m:
        return None, "no ratio in: " + r.stdout.strip()[-100:]
    return 1 / float(m.group(1)), None


def count(path, op):
    import onnx
    return sum(n.op_type == op for n in onnx.load(str(path), load_external_data=False).graph.node)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--whittle", required=True)
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--only", help="one fusion's rule name (no --write)")
    ap.add_argument("--rounds", type=int, default=7, help="ORT rounds (alternating)")
    ap.add_argument("--tract-runs", type=int, default=30, help="tract runs per model")
    args = ap.parse_args()
    fusions = [f for f in FUSIONS if args.only in (None, f[1])]
    shape = big_llm_model.PRESETS["small"]
    rows = []
    with tempfile.TemporaryDirectory() as d:
        d = pathlib.Path(d)
        src = d / "small.onnx"
        big_llm_model.write(src, shape)
        for name, rule, op in fusions:
            base, fused = d / f"{rule}-off.onnx", d / f"{rule}-on.onnx"
            on = ["--enable", f"rule:{rule}"]  # a fusion that is off by default too
            for out, extra in ((base, ["--exclude", f"rule:{rule}"]), (fused, on)):
                subprocess.run([args.whittle, "-q", "optimize", str(src), "-o", str(out),
                                "--opset", "24", *extra], check=True)
            n = count(fused, op)
            for label, seq, past in CASES:
                f = feeds(shape, seq, past)
                a, b = session(base), session(fused)
                diff = max(float(np.abs(x - y).max()) for x, y in zip(a.run(None, f), b.run(None, f)))
                ort = benchtime.speed(a, b, f, rounds=args.rounds, runs=5 if seq > 1 else 20)
                tract, why = tract_ratio(args.whittle, base, fused, shape, seq, past,
                                         args.tract_runs)
                rows.append((name, op, n, label, ort, tract, why, diff))
                print(rows[-1], file=sys.stderr)
    lines = ["| fusion | writes | nodes | case | ORT speed (fused vs not) | tract speed | "
             "max abs difference |", "|---|---|---|---|---|---|---|"]
    for name, op, n, label, ort, tract, why, diff in rows:
        t = f"{tract:.2f}x" if tract else f"not measured: {why}"
        lines.append(f"| {name} | {op} | {n} | {label} | {ort:.2f}x | {t} | {diff:.1e} |")
    section = (
        "## Decoder fusions\n\n"
        f"`just bench-fusions` (`python scripts/bench_fusions.py --whittle {args.whittle} "
        f"--write`), {time.strftime('%Y-%m-%d')}. A Llama-shaped decoder (scripts/"
        "big_llm_model.py preset `small`: 8 layers, hidden 512, MLP 1408, vocab 32000, "
        "58 M float32 parameters) raised to opset 24 by whittle, each fusion on and off "
        "(`--exclude rule:NAME`, `--enable rule:NAME`); tract `whittle bench` with "
        f"{args.tract_runs} timed runs per model; ORT 1.32 with one thread and its default graph "
        "optimizations; speeds above 1 mean the fused model is faster.\n\n"
        + "\n".join(lines) + "\n")
    print(section)
    if args.write and not args.only:
        benchdoc.replace("## Decoder fusions", section)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Decoder LLMs at scale: whittle on a 7B-shaped Llama decoder (26 GiB of float32) and a
~1 GB one, beside onnxsim and ONNX Runtime's int4 quantizer, in one run.

The models are written by scripts/big_llm_model.py, weights streamed tensor by tensor
(the generator never holds more than one); they are kept in --dir and reused. For each
tool: whole-process wall time and peak RSS (the child's ru_maxrss), or how it failed.
Peers run under an address-space limit (--peer-limit-gib), so that running out of
memory is a clean error, not the OOM killer, and a time limit.

On the ~1 GB decoder it also measures, in ONNX Runtime (one thread), the latency of one
decode step (batch 1, a 512-token cache) of whittle's int4 output against the float
model, and checks that output: the logits' cosine to float over that step.

Prints Markdown; --write replaces the "Decoder LLMs at scale" section of
docs/benchmarks.md. Run with the venv of scripts/requirements-gen.txt (`just big-llm`).
Not in CI: the 7B model needs 26 GiB of disk and a few minutes.
"""
import argparse
import os
import pathlib
import re
import resource
import shutil
import signal
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

GIB = 1 << 30


def model(directory, preset):
    """The preset's model in `directory`, written if missing."""
    path = directory / f"llama-{preset}.onnx"
    data = directory / f"llama-{preset}.onnx.data"
    if not (path.exists() and data.exists()):
        directory.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        size = big_llm_model.write(path, big_llm_model.PRESETS[preset])
        print(f"wrote {path} ({size / GIB:.1f} GiB) in {time.perf_counter() - t:.0f} s",
              file=sys.stderr)
    return path


def measured(cmd, limit_gib=None, timeout=None):
    """Runs `cmd`; returns (seconds, its peak RSS in MiB, None or the failure)."""
    def limit():
        if limit_gib:
            b = int(limit_gib * GIB)
            resource.setrlimit(resource.RLIMIT_AS, (b, b))
    with tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, preexec_fn=limit)
        while True:
            pid, status, usage = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if timeout and time.perf_counter() - t > timeout:
                p.kill()
                os.wait4(p.pid, 0)
                return time.perf_counter() - t, None, f"stopped after {timeout:.0f} s"
            time.sleep(0.1)
        secs = time.perf_counter() - t
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            err.seek(0)
            return secs, None, failure(err.read().decode(errors="replace"), code)
    return secs, usage.ru_maxrss / 1024, None


def failure(stderr, code):
    """How a run failed: its signal or exit code and the line of stderr that says why."""
    how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit {code}"
    lines = [l.strip() for l in stderr.splitlines() if l.strip()]
    said = [l for l in lines if re.search(r"Fatal Python error|MemoryError|bad_alloc|Error:", l)]
    why = (said or lines or [""])[0][:100]
    return f"{how}" + (f" ({why})" if why else "")


def output_size(path):
    files = [path, path.with_name(path.name + ".data")]
    return sum(f.stat().st_size for f in files if f.exists())


def remove(path):
    for f in path.parent.glob(path.name + "*"):
        f.unlink()


ORT_INT4 = """
import sys, onnx
from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
m = onnx.load(sys.argv[1])
q = MatMulNBitsQuantizer(m, block_size=32, is_symmetric=True)
q.process()
q.model.save_model_to_file(sys.argv[2], use_external_data_format=True)
"""


def runs(args, src, preset):
    """(tool, task, seconds, MiB, output bytes, failure) rows for one model."""
    rows = []
    out = src.with_name(f"out-{preset}.onnx")
    # (tool, task, command, memory limit); -O2 writes a full copy of the weights.
    jobs = [("whittle", "-O2", [args.whittle, "optimize", src, "-o", out, "-O2"], None),
            ("whittle", "--quantize int4 (MatMulNBits)",
             [args.whittle, "optimize", src, "-o", out, "--quantize", "int4",
              "--int4-format", "matmulnbits"], None)]
    if args.peers:
        py = sys.executable
        jobs += [("onnxsim 0.8.1", "--weight-only-quantize-int4 --target-opset 21",
                  [py, "-m", "onnxsim", src, out, "--weight-only-quantize-int4",
                   "--target-opset", "21", "--save-as-external-data"], args.peer_limit_gib),
                 ("ORT 1.32 MatMulNBitsQuantizer", "int4, block 32, symmetric",
                  [py, "-c", ORT_INT4, src, out], args.peer_limit_gib)]
    weights = output_size(src)
    for tool, task, cmd, limit in jobs:
        remove(out)
        need = weights if task == "-O2" else weights // 3
        free = shutil.disk_usage(out.parent).free
        if free < need + 2 * GIB:
            rows.append((tool, task, 0, None, None,
                         f"not run: its output needs {need / GIB:.0f} GiB of disk (+2 spare), "
                         f"{free / GIB:.0f} GiB free"))
            continue
        secs, rss, failed = measured([str(c) for c in cmd], limit, args.timeout)
        size = output_size(out) if not failed else None
        rows.append((tool, task, secs, rss, size, failed))
        print(f"{preset} {tool} {task}: {secs:.0f} s, {rss} MiB, {size}, {failed}",
              file=sys.stderr)
        if preset == "1gb" and tool == "whittle" and "int4" in task and not failed:
            kept = src.with_name("int4-1gb.onnx")
            remove(kept)
            for f in out.parent.glob(out.name + "*"):
                f.rename(kept.parent / f.name.replace(out.name, kept.name))
    remove(out)
    return rows


session = benchtime.session  # one-thread ORT session


def decode_feed(past=512):
    """One decode step's inputs for the `1gb` preset: a token and a `past`-token cache."""
    shape = big_llm_model.PRESETS["1gb"]
    rng = np.random.default_rng(0)
    feed = {"input_ids": rng.integers(0, shape.vocab, (1, 1))}
    for i in range(shape.layers):
        for kind in ("key", "value"):
            feed[f"past_{kind}_{i}"] = rng.standard_normal(
                (1, shape.heads, past, shape.head_dim), dtype=np.float32)
    return feed


def decode_step(src, quantized, past=512):
    """(int4 speed vs float, logits cosine) for one decode step after `past` tokens."""
    feed = decode_feed(past)
    base, q = session(src), session(quantized)
    a, b = base.run(["logits"], feed)[0].ravel(), q.run(["logits"], feed)[0].ravel()
    cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    return benchtime.speed(base, q, feed, rounds=5, runs=10), cos


def table(rows_by_model, decode):
    lines = ["| model | tool | task | wall time | peak RSS | output |",
             "|---|---|---|---|---|---|"]
    for name, rows in rows_by_model:
        for tool, task, secs, rss, size, failed in rows:
            if failed and failed.startswith("not run"):
                lines.append(f"| {name} | {tool} | {task} | | | {failed} |")
            elif failed:
                lines.append(f"| {name} | {tool} | {task} | {secs:.0f} s | | failed: {failed} |")
            else:
                lines.append(f"| {name} | {tool} | {task} | {secs:.0f} s | {rss:.0f} MiB "
                             f"| {size / GIB:.2f} GiB |")
    if decode:
        speed, cos = decode
        lines.append(f"| llama-1gb | ORT, one decode step (512-token cache, 1 thread) "
                     f"| whittle int4 vs float | {speed:.2f}x faster | | logits cosine "
                     f"{cos:.4f} |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--whittle", required=True)
    ap.add_argument("--dir", type=pathlib.Path,
                    default=pathlib.Path.home() / ".cache/whittle/big-llm")
    ap.add_argument("--presets", default="1gb,7b")
    ap.add_argument("--peers", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--peer-limit-gib", type=float, default=20.0)
    ap.add_argument("--timeout", type=float, default=1200.0)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    rows_by_model, decode = [], None
    for preset in args.presets.split(","):
        src = model(args.dir, preset)
        s = big_llm_model.PRESETS[preset]
        name = f"llama-{preset} ({s.params() / 1e9:.2f} B params, {s.layers} layers)"
        rows_by_model.append((name, runs(args, src, preset)))
        kept = src.with_name("int4-1gb.onnx")
        if preset == "1gb" and kept.exists():
            decode = decode_step(src, kept)
    cpu = os.cpu_count()
    build = ("dev profile: whittle-passes and dependencies at opt-level 3, the other "
             "whittle crates at 1" if "debug" in args.whittle else "release build")
    section = (
        "## Decoder LLMs at scale\n\n"
        f"`just big-llm` (`python scripts/big_llm.py --whittle {args.whittle} --write`; "
        f"{build}), {time.strftime('%Y-%m-%d')}, {cpu} cores, 24 GB RAM. Llama-shaped "
        "decoders written by scripts/big_llm_model.py (random float32 weights, KV-cache "
        "inputs; the 7B one has Llama-2-7B's shape). Wall time is the whole process; peak "
        "RSS is the child's ru_maxrss. Peers run under a "
        f"{args.peer_limit_gib:.0f} GiB address-space limit and a "
        f"{args.timeout / 60:.0f}-minute time limit.\n\n" + table(rows_by_model, decode))
    print(section)
    if args.write:
        benchdoc.replace("## Decoder LLMs at scale", section)


if __name__ == "__main__":
    main()

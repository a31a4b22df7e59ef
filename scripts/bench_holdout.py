"""Lossy budgets judged on held-out data: does a budget hold on images the step never saw?

Model: fixtures/models/vgg_digits.ts.onnx (trained here on scikit-learn's digits),
calibration fixtures/data/vgg_digits/calib.npy (100 training images), judged afterwards
on fixtures/data/vgg_digits/test.npz (449 held-back images, never used by whittle).

For --decompose conv and --prune conv,dense at top1=0.995: whittle with --holdout 0 (the
step is fit and judged on the same 100 images, as before the holdout existed) and with the
default --holdout 0.5 (fit on 50, judged on the other 50). Reports whittle's own figures
(MACs, agreement and its 95% lower bound on the judged images) and the held-back accuracy
in ONNX Runtime.

Usage: python scripts/bench_holdout.py --whittle target/release/whittle [--write]
(`just bench-holdout`). --write replaces the "Held-out budgets" section of
docs/benchmarks.md.
"""

import argparse
import pathlib
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnxruntime as ort

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODEL = ROOT / "fixtures/models/vgg_digits.ts.onnx"
CALIB = ROOT / "fixtures/data/vgg_digits/calib.npy"
TEST = ROOT / "fixtures/data/vgg_digits/test.npz"
BUDGET = "top1=0.995"
STEPS = [("decompose", "conv"), ("prune", "conv,dense")]
HOLDOUTS = ["0", "0.5"]


def accuracy(path, x, y):
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    pred = np.concatenate([s.run(None, {name: x[i:i + 64]})[0].argmax(-1)
                           for i in range(0, len(x), 64)])
    return float((pred == y).mean())


def run(exe, out, step, kinds, holdout):
    cmd = [exe, "optimize", str(MODEL), "-o", str(out), f"--{step}", kinds, "--calibrate",
           str(CALIB), "--budget", BUDGET, "--holdout", holdout]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed: {r.stderr}")
    total = next(l for l in r.stdout.splitlines() if l.startswith(f"budget {BUDGET}:"))
    macs = re.search(r"\(([0-9.]+)x\)", total).group(1)
    agree = re.search(r"top-1 agreement ([0-9.]+)", total).group(1)
    bound = re.search(r">= ([0-9.]+) at 95% confidence over (\d+) rows", total)
    return macs, agree, bound.group(1), bound.group(2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--whittle", required=True)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    test = np.load(TEST)
    x, y = test["image"], test["label"]
    base = accuracy(MODEL, x, y)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for step, kinds in STEPS:
            for h in HOLDOUTS:
                out = pathlib.Path(tmp) / f"{step}_{h}.onnx"
                macs, agree, bound, n = run(args.whittle, out, step, kinds, h)
                acc = accuracy(out, x, y)
                rows.append(f"| --{step} {kinds} | {h} | {macs}x | {agree} on {n} "
                            f"(>= {bound}) | {acc:.2%} | {100 * (acc - base):+.2f} |")
    head = ("| step (top1=0.995, 100 calibration images) | --holdout | conv/dense MACs "
            "fewer | agreement whittle reports (95% bound) on the judged images | "
            f"accuracy on the {len(x)} held-back images (float {base:.2%}) | points |")
    table = "\n".join([head, "|---|---|---|---|---|---|", *rows])
    print(table)
    if args.write:
        write(table, args.whittle)


def write(table, exe):
    doc = ROOT / "docs/benchmarks.md"
    text = doc.read_text()
    section = ("## Held-out budgets\n\n`just bench-holdout` (`python scripts/bench_holdout.py "
               f"--whittle {pathlib.Path(exe).name} --write`), one run. With `--holdout 0` "
               "the step is fit and judged on the same images; with the default 0.5 it is "
               "fit on half and judged on the other half. 50 or 100 judged images cannot "
               "show 99.5% agreement (it takes 598): whittle says so before searching, holds "
               "the agreement itself to the budget and reports the bound.\n\n"
               f"{table}\n")
    pattern = re.compile(r"## Held-out budgets\n.*?(?=\n## |\Z)", re.S)
    text = pattern.sub(section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    doc.write_text(text)


if __name__ == "__main__":
    main()

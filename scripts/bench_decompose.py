"""whittle --decompose on a trained CNN: accuracy against conv+gemm MACs, per budget.

Model: fixtures/models/vgg_digits.ts.onnx (VGG-style, trained on scikit-learn's digits by
fixtures/gen/make_trained.py), calibration fixtures/data/vgg_digits/calib.npy (100
training images), judged on the held-back split fixtures/data/vgg_digits/test.npz
(never seen in training or calibration).

For each budget, with calibration data (data-aware factorization, pointwise refit, bias
correction) and without (weight SVD, budget judged on random inputs): conv+gemm MACs per
image as whittle reports them, held-back accuracy in ONNX Runtime, and latency for one
image in ORT (one thread) and tract (`whittle bench`), relative to whittle's lossless
output (-O2, no decomposition).

Usage: python scripts/bench_decompose.py --whittle target/release/whittle [--write]
(`just bench-decompose`). --write replaces the "Decomposition" section of
docs/benchmarks.md.
"""

import argparse
import pathlib
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

import benchtime

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODEL = ROOT / "fixtures/models/vgg_digits.ts.onnx"
CALIB = ROOT / "fixtures/data/vgg_digits/calib.npy"
TEST = ROOT / "fixtures/data/vgg_digits/test.npz"
BUDGETS = ["top1=0.995", "top1=0.99", "cosine=0.999", "cosine=0.995", "tol=0.2", "tol=0.4"]
MEASURED = ["top1=0.995", "cosine=0.995"]  # also run with --measure (keep only what is faster)


session = benchtime.session  # one-thread ORT session


def tract_speed(exe, base, path):
    """Latency of `base` over that of `path` in tract, as `whittle bench A B` reports it
    (both timed in the same process)."""
    r = subprocess.run([exe, "-q", "bench", str(base), str(path), "--runs", "1000",
                        "--warmup", "20", "--input-shape", "image=1,1,16,16"],
                       capture_output=True, text=True)
    m = re.search(r"ratio \(second / first\): median ([0-9.]+)x", r.stdout)
    if r.returncode != 0 or not m:
        sys.exit(f"whittle bench failed on {path}: {r.stdout}{r.stderr}")
    return 1.0 / float(m.group(1))


def ort_ms(sess, x, runs=1000):
    feed = {"image": x[:1]}
    for _ in range(10):
        sess.run(None, feed)
    t = []
    for _ in range(runs):
        s = time.perf_counter()
        sess.run(None, feed)
        t.append(time.perf_counter() - s)
    return 1e3 * float(np.median(t))


def tract_ms(exe, path):
    r = subprocess.run([exe, "-q", "bench", str(path), "--runs", "1000", "--warmup", "20",
                        "--input-shape", "image=1,1,16,16"], capture_output=True, text=True)
    row = [l for l in r.stdout.splitlines() if l.startswith(str(path))]
    m = re.match(r"\S+\s+[0-9.]+\s+([0-9.]+)", row[0]) if row else None
    if r.returncode != 0 or not m:
        sys.exit(f"whittle bench failed on {path}: {r.stdout}{r.stderr}")
    return float(m.group(1))


def decompose(exe, dst, budget, calibrated, measure):
    args = [exe, "optimize", str(MODEL), "-o", str(dst), "--decompose", "conv,gemm",
            "--budget", budget]
    if calibrated:
        args += ["--calibrate", str(CALIB)]
    if measure:
        args.append("--measure")
    t = time.perf_counter()
    r = subprocess.run(args, capture_output=True, text=True)
    secs = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"whittle failed ({budget}): {r.stderr}")
    m = re.search(r"MACs per sample (\d+) -> (\d+)", r.stdout)
    if not m:
        sys.exit(f"no decompose total in whittle's output:\n{r.stdout}")
    return int(m.group(1)), int(m.group(2)), secs


def accuracy(sess, x, y):
    return float((sess.run(None, {"image": x})[0].argmax(1) == y).mean())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--whittle", required=True)
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    d = np.load(TEST)
    x, y = d["image"], d["label"]
    with tempfile.TemporaryDirectory() as tmp:
        # Speed is relative to whittle's lossless output, so that it shows what
        # decomposition itself costs or buys (the -O2 passes alone change latency too).
        plain = pathlib.Path(tmp) / "plain.onnx"
        r = subprocess.run([a.whittle, "-q", "optimize", str(MODEL), "-o", str(plain)])
        if r.returncode != 0:
            sys.exit("whittle optimize failed on the float export")
        base = session(plain)
        acc0, ort0, tract0 = accuracy(base, x, y), ort_ms(base, x), tract_ms(a.whittle, plain)
        rows = [("none (whittle -O2 only)", "-", "-", 1.0, acc0, 0.0, 1.0, 1.0)]
        runs = [(b, True, False) for b in BUDGETS] + [(b, True, True) for b in MEASURED] + \
            [(b, False, False) for b in BUDGETS]
        for budget, calibrated, measure in runs:
            out = pathlib.Path(tmp) / f"{budget}.{calibrated}.{measure}.onnx"
            before, after, secs = decompose(a.whittle, out, budget, calibrated, measure)
            sess = session(out)
            acc = accuracy(sess, x, y)
            rows.append((budget + (" --measure" if measure else ""),
                         "100 images" if calibrated else "none (random inputs)",
                         f"{secs:.1f} s", before / after, acc, (acc0 - acc) * 100,
                         benchtime.speed(base, sess, {"image": x[:1]}, runs=150),
                         tract_speed(a.whittle, plain, out)))
            print(rows[-1], flush=True)
    lines = ["| budget | calibration | whittle time | MACs reduction | held-back accuracy | "
             "points lost | ORT speed | tract speed |", "|---|---|---|---|---|---|---|---|"]
    for b, c, t, r, acc, lost, so, st in rows:
        lines.append(f"| {b} | {c} | {t} | {r:.2f}x | {acc * 100:.2f}% | {lost:.2f} | "
                     f"{so:.2f}x | {st:.2f}x |")
    table = "\n".join(lines)
    print(table)
    if a.write:
        write(table, len(y), f"ORT {ort0:.3f} ms, tract {tract0:.3f} ms per image")


def write(table, n_test, base_ms):
    import onnxruntime
    import benchdoc
    head = "## Decomposition"
    section = (f"{head}\n\n`just bench-decompose` (`python scripts/bench_decompose.py --whittle "
               f"target/release/whittle --write`), onnxruntime {onnxruntime.__version__}, one "
               f"run on this 2-core machine. Model: vgg_digits (5 conv + 2 linear layers, "
               f"trained here); accuracy on its {n_test} held-back images; MACs are conv+gemm "
               f"MACs per image as whittle reports them; speed is single-image latency "
               f"relative to whittle's lossless output of the same model (ORT one thread: "
               f"median of 7 alternating rounds of 150 runs each; tract: `whittle bench "
               f"BASE MODEL`, 1000 runs each). `--decompose conv,gemm`; `--measure` keeps "
               f"a layer only where tract runs it faster. Base latency {base_ms}; rows that change "
               f"nothing (1.00x MACs) show the noise left, up to ~20% for tract.\n\n"
               f"{table}\n")
    benchdoc.replace(head, section)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""I/O benchmark: `whittle optimize -O0` on a ~100 MB CNN export, beside `cp` and Python's
onnx.load + onnx.save on the same file in the same run (this machine is noisy: compare the
ratios, not the absolute figures). Prints a Markdown table and, with --write, replaces the
I/O section of docs/benchmarks.md.

Each command runs --runs times; the table shows the median wall time, throughput over the
model size, and peak RSS (max resident set of the child, from wait4/rusage).
"""
import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
CACHE = pathlib.Path(os.environ.get("WHITTLE_CACHE", pathlib.Path.home() / ".cache/whittle"))


def make_resnet50(path):
    import torch
    import torchvision

    torch.manual_seed(0)
    m = torchvision.models.resnet50(weights=None).eval()
    torch.onnx.export(m, (torch.randn(1, 3, 224, 224),), str(path), dynamo=False, opset_version=18,
                      input_names=["input"], output_names=["logits"])


def run(cmd):
    """Wall seconds and peak RSS (bytes) of one command, measured by GNU time (rusage of
    a fork from this process would count this process's own pages)."""
    with tempfile.NamedTemporaryFile("r") as rss:
        t0 = time.perf_counter()
        p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss.name] + cmd,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wall = time.perf_counter() - t0
        if p.returncode != 0:
            sys.exit(f"failed: {' '.join(cmd)}: {p.stderr.decode()[:500]}")
        return wall, int(rss.read().split()[-1]) * 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--whittle")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--make", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.make:
        return make_resnet50(pathlib.Path(args.make))
    model = CACHE / "bench" / "resnet50.ts.onnx"
    if not model.exists():
        model.parent.mkdir(parents=True, exist_ok=True)
        # In a child, so this process stays small.
        subprocess.run([sys.executable, __file__, "--make", str(model)], check=True)
    size = model.stat().st_size
    with tempfile.TemporaryDirectory(dir=model.parent) as d:
        out = pathlib.Path(d) / "out.onnx"
        py = (f"import onnx; m = onnx.load({str(model)!r}); onnx.save(m, {str(out)!r})")
        cmds = {
            "cp": ["cp", str(model), str(out)],
            "whittle optimize -O0": [args.whittle, "-q", "optimize", "-O0", str(model), "-o", str(out)],
            "python onnx.load + onnx.save": [sys.executable, "-c", py],
        }
        results = {}
        for name, cmd in cmds.items():
            run(cmd)  # warm the page cache
            samples = [run(cmd) for _ in range(args.runs)]
            results[name] = (statistics.median(s[0] for s in samples), max(s[1] for s in samples))
    w = results["whittle optimize -O0"][0]
    lines = [
        f"Model: torchvision ResNet-50, TorchScript export, {size / 1e6:.1f} MB "
        f"(`python scripts/bench_io.py`, median of {args.runs} runs after one warm-up).",
        "",
        "| command | median wall | throughput | peak RSS | RSS / file | time vs whittle |",
        "|---|---|---|---|---|---|",
    ]
    for name, (t, rss) in results.items():
        lines.append(f"| {name} | {t * 1e3:.0f} ms | {size / t / 1e9:.2f} GB/s | {rss / 1e6:.0f} MB | "
                     f"{rss / size:.2f}x | {t / w:.2f}x |")
    table = "\n".join(lines)
    print(table)
    if args.write:
        doc = ROOT / "docs" / "benchmarks.md"
        text = doc.read_text() if doc.exists() else "# Benchmarks\n"
        start, end = "<!-- bench_io:start -->", "<!-- bench_io:end -->"
        block = f"{start}\n{table}\n{end}"
        if start in text:
            text = text[: text.index(start)] + block + text[text.index(end) + len(end):]
        else:
            text += "\n" + block + "\n"
        doc.write_text(text)


if __name__ == "__main__":
    main()

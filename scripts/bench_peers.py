#!/usr/bin/env python3
"""whittle beside onnxsim and onnxslim on real PyTorch exports, in the same run.

Models (random weights, exported here, cached under ~/.cache/whittle/bench/peers): the
torchvision CNNs ResNet-50 and MobileNetV2 and a BERT-base encoder (transformers,
12 layers, hidden 768), each exported three ways: TorchScript exporter with defaults
(`ts`), TorchScript with `do_constant_folding=False` (`ts-nofold`), and `dynamo=True`
(`dyn`). For every export, each tool runs as its own process under GNU time (wall time,
peak RSS); the table gives node counts, output size, time and RSS, and whether the
outputs still match the original in ONNX Runtime on random inputs (cosine and max abs
difference over all outputs). Ratios are what to read: this machine is noisy.

  python scripts/bench_peers.py --whittle target/release/whittle [--write] [--models a,b]
"""
import argparse
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
CACHE = pathlib.Path(os.environ.get("WHITTLE_CACHE", pathlib.Path.home() / ".cache/whittle")) / "bench" / "peers"
MODELS = ["resnet50", "mobilenet_v2", "bert_base"]
WAYS = ["ts", "ts-nofold", "dyn"]


def export(arch, way, path):
    """Exports one model one way (run in a child process to keep this one small)."""
    import torch
    torch.manual_seed(0)
    if arch == "bert_base":
        from transformers import BertConfig, BertModel

        class Encoder(torch.nn.Module):
            """BertModel called by keyword, as the TorchScript exporter needs."""

            def __init__(self):
                super().__init__()
                self.m = BertModel(BertConfig()).eval()

            def forward(self, input_ids, attention_mask):
                out = self.m(input_ids=input_ids, attention_mask=attention_mask)
                return out.last_hidden_state, out.pooler_output

        model = Encoder().eval()
        args = (torch.randint(0, 30000, (1, 128)), torch.ones(1, 128, dtype=torch.int64))
        names, outs = ["input_ids", "attention_mask"], ["last_hidden_state", "pooler_output"]
        axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}}
        b, s = torch.export.Dim("batch", min=1, max=64), torch.export.Dim("seq", min=2, max=512)
        shapes = {"input_ids": {0: b, 1: s}, "attention_mask": {0: b, 1: s}}
    else:
        import torchvision
        model = torchvision.models.get_model(arch, weights=None).eval()
        args = (torch.randn(1, 3, 224, 224),)
        names, outs = ["input"], ["logits"]
        axes = {"input": {0: "batch"}}
        shapes = {"x": {0: torch.export.Dim("batch", min=1, max=64)}}
    kw = dict(input_names=names, output_names=outs, opset_version=18)
    if way == "dyn":
        kw.update(dynamo=True, dynamic_shapes=shapes, external_data=False)
    else:
        kw.update(dynamo=False, dynamic_axes=axes, do_constant_folding=(way == "ts"))
    with torch.no_grad():
        torch.onnx.export(model, args, str(path), **kw)


def run(cmd):
    """(wall seconds, peak RSS bytes, ok, stderr tail) of one command under GNU time."""
    with tempfile.NamedTemporaryFile("r") as rss:
        t0 = time.perf_counter()
        p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss.name] + cmd,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wall = time.perf_counter() - t0
        try:
            peak = int(rss.read().split()[-1]) * 1024
        except (ValueError, IndexError):
            peak = 0
        return wall, peak, p.returncode == 0, p.stderr.decode(errors="replace")[-300:]


def feeds(sess):
    import numpy as np
    rng = np.random.default_rng(0)
    out = {}
    for i in sess.get_inputs():
        shape = [d if isinstance(d, int) else (1 if "batch" in str(d) or i.shape.index(d) == 0 else 128) for d in i.shape]
        if "int64" in i.type:
            out[i.name] = np.ones(shape, np.int64) if "mask" in i.name else rng.integers(0, 1000, shape).astype(np.int64)
        else:
            out[i.name] = rng.standard_normal(shape).astype(np.float32)
    return out


def compare(orig, other):
    """(cosine, max abs diff) over all outputs, ORT on the same random inputs."""
    import numpy as np
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    a = ort.InferenceSession(str(orig), so, providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(str(other), so, providers=["CPUExecutionProvider"])
    f = feeds(a)
    x = np.concatenate([o.ravel().astype(np.float64) for o in a.run(None, f)])
    y = np.concatenate([o.ravel().astype(np.float64) for o in b.run(None, f)])
    cos = float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y) + 1e-30))
    return cos, float(np.max(np.abs(x - y)))


def nodes(path):
    import onnx
    return len(onnx.load(str(path), load_external_data=False).graph.node)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--whittle", required=True)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--export", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.export:
        return export(*args.export)
    bindir = pathlib.Path(sys.executable).parent
    tools = {
        "whittle": lambda i, o: [args.whittle, "-q", "optimize", str(i), "-o", str(o)],
        "onnxsim": lambda i, o: [str(bindir / "onnxsim"), str(i), str(o)],
        "onnxslim": lambda i, o: [str(bindir / "onnxslim"), str(i), str(o)],
    }
    CACHE.mkdir(parents=True, exist_ok=True)
    rows = []
    for arch in args.models.split(","):
        for way in WAYS:
            src = CACHE / f"{arch}.{way}.onnx"
            if not src.exists():
                print(f"exporting {src.name} ...", file=sys.stderr)
                subprocess.run([sys.executable, __file__, "--whittle", "-", "--export", arch, way, str(src)],
                               check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            size = src.stat().st_size
            row = {"model": f"{arch} ({way})", "size": size, "orig_nodes": nodes(src), "tools": {}}
            with tempfile.TemporaryDirectory(dir=CACHE) as d:
                for name, cmd in tools.items():
                    out = pathlib.Path(d) / f"{name}.onnx"
                    wall, peak, ok, err = run(cmd(src, out))
                    if not ok or not out.exists():
                        row["tools"][name] = {"failed": err.strip().splitlines()[-1] if err.strip() else "failed"}
                        continue
                    try:
                        cos, mad = compare(src, out)
                    except Exception as e:  # reported in the table
                        cos, mad = float("nan"), str(e).splitlines()[0][:60]
                    row["tools"][name] = {"nodes": nodes(out), "bytes": out.stat().st_size,
                                          "time": wall, "rss": peak, "cos": cos, "mad": mad}
                    print(f"{row['model']:<24} {name:<9} {row['tools'][name]}", file=sys.stderr)
            rows.append(row)
    table = render(rows)
    print(table)
    if args.write:
        doc = ROOT / "docs" / "benchmarks.md"
        text = doc.read_text()
        start, end = "<!-- bench_peers:start -->", "<!-- bench_peers:end -->"
        block = f"{start}\n{table}\n{end}"
        if start in text:
            text = text[: text.index(start)] + block + text[text.index(end) + len(end):]
        else:
            text += "\n## Against onnxsim and onnxslim\n\n" + block + "\n"
        doc.write_text(text)


def render(rows):
    import onnxsim
    import onnxslim
    lines = [
        f"`python scripts/bench_peers.py --whittle target/release/whittle --write` "
        f"(onnxsim {onnxsim.__version__}, onnxslim {onnxslim.__version__}); one run each, whole "
        "process (load, optimize, save) under GNU time. `match`: cosine / max abs difference "
        "of all outputs vs the original in ONNX Runtime on random inputs.",
        "",
        "| export | tool | nodes | file | time | peak RSS | RSS / file | time vs whittle | match |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        w = r["tools"].get("whittle", {})
        lines.append(f"| {r['model']} | original | {r['orig_nodes']} | {r['size'] / 1e6:.1f} MB | | | | | |")
        for name, t in r["tools"].items():
            if "failed" in t:
                lines.append(f"| | {name} | failed: {t['failed'][:60]} | | | | | | |")
                continue
            ratio = f"{t['time'] / w['time']:.1f}x" if "time" in w else ""
            mad = t["mad"] if isinstance(t["mad"], str) else f"{t['mad']:.1e}"
            lines.append(f"| | {name} | {t['nodes']} | {t['bytes'] / 1e6:.1f} MB | {t['time']:.2f} s | "
                         f"{t['rss'] / 1e6:.0f} MB | {t['rss'] / r['size']:.2f}x | {ratio} | "
                         f"{t['cos']:.6f} / {mad} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

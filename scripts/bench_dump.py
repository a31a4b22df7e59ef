#!/usr/bin/env python3
"""`whittle dump` on a BERT-base-sized model: the text listing beside `--summary`, JSON and
`-O0` (read, convert, write everything) in the same run, with peak RSS. The listing prints
four values per weight, so it should cost what `--summary` costs, not what reading the
weights costs. Prints a Markdown table and, with --write, replaces the "Inspecting"
section of docs/benchmarks.md.

The model is made here with onnx and numpy (no PyTorch, no download): BERT-base's weight
shapes (embeddings 30522x768, 12 layers of four 768x768 projections and a 768x3072 /
3072x768 MLP, biases, LayerNorm scales) as MatMul/Add/LayerNormalization nodes, ~440 MB.
Each command runs once with the page cache dropped (cold: what the first look at a new
model costs; needs root, else the run is warm and says so), then --runs times warm; the
table shows the cold wall time and peak RSS, and the warm median. Warm RSS is not shown:
after a run that read the whole file (-O0) the kernel keeps it in large folios, and a
single touch then maps a whole folio into the process, so a warm peak RSS counts shared
page cache the listing never read.
"""
import argparse
import os
import pathlib
import statistics
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
CACHE = pathlib.Path(os.environ.get("WHITTLE_CACHE", pathlib.Path.home() / ".cache/whittle"))
sys.path.insert(0, str(ROOT / "scripts"))
import benchdoc  # noqa: E402
from bench_io import run  # noqa: E402  (wall time and peak RSS of one command)


def make_bert_base(path):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits, nodes = [], []

    def weight(name, shape):
        inits.append(numpy_helper.from_array(
            (rng.standard_normal(shape) * 0.02).astype(np.float32), name))
        return name

    nodes.append(helper.make_node("Gather", [weight("embeddings", (30522, 768)), "ids"], ["h"],
                                  name="embed"))
    x = "h"
    for i in range(12):
        def dense(src, k, n, tag):
            mm = helper.make_node("MatMul", [src, weight(f"l{i}.{tag}.w", (k, n))],
                                  [f"l{i}.{tag}.mm"], name=f"l{i}.{tag}.MatMul")
            add = helper.make_node("Add", [f"l{i}.{tag}.mm", weight(f"l{i}.{tag}.b", (n,))],
                                   [f"l{i}.{tag}.out"], name=f"l{i}.{tag}.Add")
            nodes.extend([mm, add])
            return f"l{i}.{tag}.out"
        q, k, v = (dense(x, 768, 768, t) for t in ("q", "k", "v"))
        s = helper.make_node("Add", [q, k], [f"l{i}.qk"], name=f"l{i}.qk")
        s2 = helper.make_node("Add", [f"l{i}.qk", v], [f"l{i}.qkv"], name=f"l{i}.qkv")
        nodes.extend([s, s2])
        o = dense(f"l{i}.qkv", 768, 768, "o")
        ln = helper.make_node("LayerNormalization", [o, weight(f"l{i}.ln.g", (768,)),
                                                     weight(f"l{i}.ln.b", (768,))],
                              [f"l{i}.ln"], name=f"l{i}.LayerNorm", axis=-1)
        nodes.append(ln)
        up = dense(f"l{i}.ln", 768, 3072, "up")
        x = dense(up, 3072, 768, "down")
    g = helper.make_graph(nodes, "bert_base_shaped",
                          [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "seq"])],
                          [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["batch", "seq", 768])],
                          inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def drop_caches():
    """Empties the page cache (root only); False when it cannot."""
    try:
        os.sync()
        pathlib.Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--whittle", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    model = CACHE / "bench" / "bert_base_shaped.onnx"
    if not model.exists():
        model.parent.mkdir(parents=True, exist_ok=True)
        make_bert_base(model)
    size = model.stat().st_size
    w = args.whittle
    with tempfile.TemporaryDirectory() as d:
        out = pathlib.Path(d) / "o.onnx"
        cmds = {
            "whittle dump (text listing)": [w, "dump", str(model)],
            "whittle dump --summary": [w, "dump", str(model), "--summary"],
            "whittle dump --format json": [w, "dump", str(model), "--format", "json"],
            "whittle optimize -O0 (reads everything)": [w, "-q", "optimize", "-O0", str(model),
                                                        "-o", str(out)],
        }
        rows = []
        for name, cmd in cmds.items():
            cold = drop_caches()
            first, peak = run(cmd)
            walls = [run(cmd)[0] for _ in range(args.runs)]
            rows.append((name, first if cold else None, peak, statistics.median(walls)))
    head = "## Inspecting (`just bench-dump`)"
    lines = [head, "",
             f"A BERT-base-shaped model made by `scripts/bench_dump.py` ({size / 1e6:.0f} MB, "
             f"onnx + numpy). Cold: the page cache dropped first; warm: median of {args.runs} "
             "runs. Binary: " + pathlib.Path(w).parent.name + " build.", "",
             "| command | cold wall | cold peak RSS | warm wall |", "|---|---|---|---|"]
    ms = lambda t: "(no root: not measured)" if t is None else f"{t * 1e3:.0f} ms"  # noqa: E731
    lines += [f"| {n} | {ms(c)} | {r / 2**20:.0f} MiB | {t * 1e3:.0f} ms |"
              for n, c, r, t in rows]
    section = "\n".join(lines) + "\n"
    print(section)
    if args.write:
        benchdoc.replace(head, section)


if __name__ == "__main__":
    main()

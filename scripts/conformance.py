#!/usr/bin/env python3
"""Conformance harness: whittle's output judged by the reference Python tooling.

For every fixture model and every model of the ONNX backend test data shipped inside the
`onnx` wheel, run `whittle optimize -O0` and check that
  * the output is protobuf-equal to the input (`onnx.load(out) == onnx.load(in)`), and
  * `onnx.checker` gives the same verdict on both.
Ends with a summary line "N passed, M failed".

For every backend-test model that ships a test_data_set, it also runs `whittle optimize`
at the default level and asks ONNX Runtime to compute the stored inputs with the optimized
model: the outputs must match the stored reference outputs (rtol 1e-3, atol 1e-4) wherever
ORT can run the original, and onnx.checker must accept the optimized model whenever it
accepts the original. Models ORT cannot run are counted and listed as not judged.

For every model, whittle's shape inference is compared with onnx's
(scripts/shape_agreement.py): a model passes when every value onnx gives a shape to gets
the same element type, rank and dims from whittle; the agreement rate is printed.
"""
import argparse
import os
import pathlib
import re
import subprocess
import sys
import tempfile

import onnx
import onnx.checker

import shape_agreement

ROOT = pathlib.Path(__file__).resolve().parent.parent
BACKEND_SETS = ["simple", "pytorch-converted", "pytorch-operator", "light", "node"]  # "node" ships in some wheels only


def backend_models(sets):
    base = pathlib.Path(onnx.__file__).parent / "backend" / "test" / "data"
    for s in sets:
        yield from sorted((base / s).glob("*/model.onnx"))
        yield from sorted((base / s).glob("*.onnx"))


def fixture_models():
    # fixtures/hostile holds broken models on purpose (crates/cli/tests/hostile.rs).
    yield from sorted(p for p in (ROOT / "fixtures").rglob("*.onnx") if "hostile" not in p.parts)


def checker_verdict(path):
    try:
        onnx.checker.check_model(str(path))
        return "ok"
    except Exception as e:  # the verdict text is compared, not raised
        return "fail: " + str(e).splitlines()[0][:200]


def roundtrip(whittle, model, workdir):
    out = workdir / (model.parent.name + "__" + model.name)
    r = subprocess.run([whittle, "-q", "optimize", "-O0", str(model), "-o", str(out)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return f"whittle exited {r.returncode}: {r.stderr.strip()[:300]}"
    a = onnx.load(str(model))
    b = onnx.load(str(out))
    if a != b:
        return "output is not protobuf-equal to the input"
    va, vb = checker_verdict(model), checker_verdict(out)
    if va != vb:
        return f"checker verdict changed: {va!r} -> {vb!r}"
    return None


def load_pbs(files):
    import onnx.numpy_helper as nh
    out = []
    for f in files:
        t = onnx.TensorProto()
        t.ParseFromString(f.read_bytes())
        out.append(nh.to_array(t))
    return out


def ort_run(model_path, inputs):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(model_path), so, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    return sess.run(None, dict(zip(names, inputs)))


NODES = [0, 0]  # nodes before and after -O2 over the judged models


def ort_judge(whittle, model, workdir, extra=()):
    """None if judged equal, "not judged: ..." if ORT cannot run the original, else an error.
    `extra`: more whittle arguments (e.g. --opset 21)."""
    import numpy as np
    data = model.parent / "test_data_set_0"
    if not data.is_dir():
        return "no data"
    inputs = load_pbs(sorted(data.glob("input_*.pb"), key=lambda p: int(p.stem.split("_")[1])))
    expected = load_pbs(sorted(data.glob("output_*.pb"), key=lambda p: int(p.stem.split("_")[1])))
    try:
        ort_run(model, inputs)
    except Exception as e:
        return "not judged: ORT cannot run the original: " + str(e).splitlines()[0][:120]
    out = workdir / (model.parent.name + "__O2" + "_".join(extra) + ".onnx")
    r = subprocess.run([whittle, "-q", "optimize", str(model), "-o", str(out), *extra],
                       capture_output=True, text=True)
    if r.returncode != 0 and "cannot upgrade opset" in r.stderr:
        return "not judged: " + r.stderr.strip().splitlines()[-1][:200]
    if r.returncode != 0:
        return f"whittle -O2 {' '.join(extra)} exited {r.returncode}: {r.stderr.strip()[:300]}"
    if checker_verdict(model) == "ok" and checker_verdict(out) != "ok":
        return "onnx.checker rejects the optimized model: " + checker_verdict(out)
    if not extra:
        NODES[0] += len(onnx.load(str(model)).graph.node)
        NODES[1] += len(onnx.load(str(out)).graph.node)
    try:
        got = ort_run(out, inputs)
    except Exception as e:
        return "ORT cannot run the optimized model: " + str(e).splitlines()[0][:200]
    for i, (g, e) in enumerate(zip(got, expected)):
        numeric = np.issubdtype(e.dtype, np.number) or e.dtype == bool
        same = (np.allclose(g, e, rtol=1e-3, atol=1e-4, equal_nan=True) if numeric
                else np.array_equal(g, e))
        if g.shape != e.shape or not same:
            return f"output {i} differs from the stored reference"
    return None


QUANT = []  # (fixture, min cosine, size ratio)
DECOMPOSE = []  # (fixture, min cosine) of --budget exact
PRUNE = []  # (fixture, min ORT cosine, size ratio) of --prune ... --budget cosine=0.995
STATIC = []  # (fixture, min cosine, size ratio) of int8-static on a random calibration feed


def random_feed(sess):
    import numpy as np
    rng = np.random.default_rng(0)
    feed = {}
    for i in sess.get_inputs():
        # Unknown dims (symbols, or the -1 some converters write): 1 for the batch, else 16.
        shape = [d if isinstance(d, int) and d > 0 else (1 if k == 0 else 16)
                 for k, d in enumerate(i.shape)]
        if "int64" in i.type or "int32" in i.type:
            dt = np.int64 if "int64" in i.type else np.int32
            feed[i.name] = (np.ones(shape, dt) if "mask" in i.name
                            else rng.integers(0, 100, shape).astype(dt))
        elif "bool" in i.type:
            feed[i.name] = rng.random(shape) > 0.5
        else:
            feed[i.name] = rng.standard_normal(shape).astype(np.float32)
    return feed


def total_size(path):
    """The model file plus the external data files its tensors name."""
    m = onnx.load(str(path), load_external_data=False)
    locations = {e.value for t in m.graph.initializer for e in t.external_data
                 if e.key == "location"}
    return path.stat().st_size + sum((path.parent / loc).stat().st_size for loc in locations)


def ort_session(path):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def ort_cosine(model, out, feed=None):
    """Least cosine between the float outputs of two models in ORT on `feed` (else one
    random feed), or the reason ORT could not run the second."""
    import numpy as np
    a = ort_session(model)
    try:
        b = ort_session(out)
    except Exception as e:
        return f"ORT cannot load {out.name}: " + str(e).splitlines()[0][:200]
    feed = random_feed(a) if feed is None else feed
    worst = 1.0
    for x, y in zip(a.run(None, feed), b.run(None, feed)):
        if not np.issubdtype(x.dtype, np.floating):
            continue
        x, y = x.ravel().astype(np.float64), y.ravel().astype(np.float64)
        n = np.linalg.norm(x) * np.linalg.norm(y)
        worst = min(worst, float(x @ y / n) if n > 0 else float(np.allclose(x, y)))
    return worst


# mode: least output cosine on random weights and inputs
QUANT_MODES = {"int8-weights": 0.999, "int8-dynamic": 0.99, "fp16-weights": 0.9999, "fp16": 0.999,
               "int4 --int4-format matmulnbits": 0.98,
               "int8-dynamic --ops MatMul,Gemm,Conv": 0.99,
               "int8-dynamic --act-scale tensor": 0.99,
               "int4": 0.98,
               "int8-weights --int8-form dq": 0.999}


def default_opset(model):
    """The model's default-domain opset (0 when it imports none)."""
    m = onnx.load(str(model), load_external_data=False)
    return next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), 0)


def upgrade_judges(whittle, sets, workdir):
    """`--opset 21`: every backend model that onnx's version converter can bring to opset 13
    (the lowest whittle upgrades from) is upgraded by whittle and must still give its stored
    outputs in ORT; every fixture must give the original's outputs (cosine >= 0.999999 on
    random inputs) and pass the checker, or, below opset 13, be refused. Returns (models
    equal or rightly refused, [(model, verdict)])."""
    import onnx.version_converter
    equal, verdicts = 0, []
    for m in backend_models(sets):
        data = m.parent / "test_data_set_0"
        if not data.is_dir():
            continue
        try:
            old = onnx.version_converter.convert_version(onnx.load(str(m)), 13)
            onnx.checker.check_model(old)
        except Exception:
            continue  # onnx cannot bring it to 13: nothing for whittle to start from
        folder = workdir / "opset13" / m.parent.name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "test_data_set_0").symlink_to(data)
        onnx.save(old, str(folder / "model.onnx"))
        verdict = ort_judge(whittle, folder / "model.onnx", workdir, ("--opset", "21"))
        if verdict is None:
            equal += 1
        elif not verdict.startswith("not judged: ORT"):
            verdicts.append((folder / "model.onnx", verdict))
    for m in fixture_models():
        out = workdir / (m.stem + "__opset21.onnx")
        r = subprocess.run([whittle, "-q", "optimize", str(m), "-o", str(out), "--opset", "21"],
                           capture_output=True, text=True)
        if default_opset(m) < 13:
            # Below 13 the right answer is a refusal that says so, and no output.
            ok = r.returncode == 1 and "opsets 13 to 24 only" in r.stderr and not out.exists()
            if ok:
                equal += 1
            else:
                verdicts.append((m, f"--opset 21 from opset {default_opset(m)}: expected a "
                                    f"refusal, got exit {r.returncode}"))
            continue
        if r.returncode != 0:
            verdicts.append((m, f"whittle --opset 21 exited {r.returncode}: {r.stderr.strip()[:300]}"))
            continue
        if checker_verdict(out) != "ok":
            verdicts.append((m, "onnx.checker rejects the --opset 21 model: " + checker_verdict(out)))
            continue
        worst = ort_cosine(m, out)
        if isinstance(worst, str) or worst < 0.999999:
            verdicts.append((m, f"--opset 21 changed the outputs: {worst}"))
        else:
            equal += 1
    return equal, verdicts


def quant_judge(whittle, model, workdir, mode):
    """--quantize MODE: the checker accepts it, ORT runs it, outputs stay close."""
    out = workdir / (model.stem + f"__{mode.replace(' ', '_')}.onnx")
    r = subprocess.run([whittle, "-q", "optimize", str(model), "-o", str(out),
                        "--quantize", *mode.split()], capture_output=True, text=True)
    opset = default_opset(model)
    if mode == "int4" and opset < 13:
        # Blocked DequantizeLinear needs opset 21 and whittle upgrades from 13 only: the
        # right answer is a refusal that names the way out.
        ok = r.returncode == 1 and "matmulnbits" in r.stderr
        return None if ok else f"int4 on opset {opset}: expected a refusal, got {r.returncode}"
    if r.returncode != 0:
        return f"whittle --quantize exited {r.returncode}: {r.stderr.strip()[:300]}"
    if checker_verdict(out) != "ok":
        return f"onnx.checker rejects the {mode} model: " + checker_verdict(out)
    worst = ort_cosine(model, out)
    if isinstance(worst, str):
        return worst
    QUANT.append((mode, model.name, worst, total_size(out) / total_size(model)))
    least = QUANT_MODES[mode]
    return None if worst >= least else f"{mode} output cosine {worst:.6f} < {least}"


def static_judge(whittle, model, workdir):
    """--quantize int8-static calibrated on one random feed (saved as .npz): the checker
    accepts it, ORT runs it, and on that feed the outputs stay close (cosine >= 0.99)."""
    import numpy as np
    feed = random_feed(ort_session(model))
    calib = workdir / (model.stem + "__calib.npz")
    np.savez(calib, **feed)
    out = workdir / (model.stem + "__int8-static.onnx")
    r = optimize_in_a_runtime(whittle, model, out,
                              ["--quantize", "int8-static", "--calibrate", str(calib)])
    if r.returncode != 0:
        return failed_run(r, "--quantize int8-static")
    if checker_verdict(out) != "ok":
        return "onnx.checker rejects the int8-static model: " + checker_verdict(out)
    worst = ort_cosine(model, out, feed)
    if isinstance(worst, str):
        return worst
    STATIC.append((model.name, worst, total_size(out) / total_size(model)))
    return None if worst >= 0.99 else f"int8-static output cosine {worst:.5f} < 0.99"


def static_accuracy(whittle, workdir, export):
    """The issue-6 target in ORT: int8-static with the 100 calibration images of
    vgg_digits loses at most 0.5 accuracy point on the held-back images."""
    import numpy as np
    model = ROOT / f"fixtures/models/vgg_digits.{export}.onnx"
    data = ROOT / "fixtures/data/vgg_digits"
    out = workdir / f"vgg_digits.{export}__int8-static.onnx"
    r = subprocess.run([whittle, "-q", "optimize", str(model), "-o", str(out), "--quantize",
                        "int8-static", "--calibrate", str(data / "calib.npy")],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return failed_run(r, "--quantize int8-static")
    test = np.load(data / "test.npz")
    acc = [float((ort_session(p).run(None, {"image": test["image"]})[0].argmax(1)
                  == test["label"]).mean()) for p in (model, out)]
    print(f"int8-static vgg_digits.{export} (ORT, {len(test['label'])} held-back images): "
          f"accuracy {acc[0] * 100:.2f}% -> {acc[1] * 100:.2f}%, size "
          f"{total_size(out) / total_size(model):.2f}x")
    lost = acc[0] - acc[1]
    return None if lost <= 0.005 else f"int8-static lost {lost * 100:.2f} accuracy points"


def int4_dq_judge(whittle, workdir):
    """int4 as blocked DequantizeLinear needs opset 21: bert_tiny is converted to opset 21
    by onnx's version converter, quantized, and judged in ORT (checker, cosine >= 0.98)."""
    import onnx.version_converter
    src = workdir / "bert_tiny.opset21.onnx"
    onnx.save(onnx.version_converter.convert_version(
        onnx.load(str(ROOT / "fixtures/models/bert_tiny.ts.onnx")), 21), str(src))
    out = workdir / "bert_tiny.opset21__int4.onnx"
    r = subprocess.run([whittle, "-q", "optimize", str(src), "-o", str(out), "--quantize",
                        "int4"], capture_output=True, text=True)
    if r.returncode != 0:
        return f"whittle --quantize int4 exited {r.returncode}: {r.stderr.strip()[:300]}"
    if checker_verdict(out) != "ok":
        return "onnx.checker rejects the int4 model: " + checker_verdict(out)
    if "block_size" not in str(onnx.load(str(out)).graph.node):
        return "no blocked DequantizeLinear in the int4 model"
    worst = ort_cosine(src, out)
    if isinstance(worst, str):
        return worst
    print(f"int4 (blocked DequantizeLinear, opset 21) bert_tiny: ORT cosine {worst:.5f}, size "
          f"{total_size(out) / total_size(src):.2f}x")
    return None if worst >= 0.98 else f"int4 output cosine {worst:.5f} < 0.98"


IN_ORT = []  # (model, step) judged with --runtime ort because tract cannot load the model


def optimize_in_a_runtime(whittle, model, out, flags):
    """`whittle -q optimize model -o out flags`; when the step needs a runtime and tract
    cannot load the model, again with `--runtime ort` (issue 32: data-aware steps run in
    ONNX Runtime where tract cannot). The completed process."""
    cmd = [whittle, "-q", "optimize", str(model), "-o", str(out), *flags]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0 and "tract cannot load the model" in r.stderr and "--runtime" not in flags:
        r = subprocess.run([*cmd, "--runtime", "ort"], capture_output=True, text=True)
        if r.returncode == 0:
            IN_ORT.append((pathlib.Path(model).name, flags[0]))
    return r


def failed_run(r, what):
    """The verdict for a whittle run that exited non-zero: "not judged" when the step needs
    tract and tract cannot load the model (a tract limitation, reported, not passed)."""
    err = r.stderr.strip()
    if "tract cannot load the model" in err:
        return f"not judged: {what} needs tract, which cannot load it ({err[-120:]})"
    return f"whittle {what} exited {r.returncode}: {err[:300]}"


def lossy_cosine(whittle, model, out, flags):
    """Runs `whittle optimize model -o out flags`; the least ORT output cosine against the
    original, or what went wrong (whittle failed, onnx.checker rejects the output, ORT
    cannot run it)."""
    r = optimize_in_a_runtime(whittle, model, out, flags)
    if r.returncode != 0:
        return failed_run(r, flags[0])
    if checker_verdict(out) != "ok":
        return f"onnx.checker rejects the {flags[0]} model: " + checker_verdict(out)
    return ort_cosine(model, out)


def act_scale_auto_judge(whittle, workdir):
    """int8-dynamic --act-scale auto on the trained byte decoder, under a budget between
    what all-per-tensor (0.99995) and all-per-row (0.99999) reach on its calibration data,
    so that the search picks some layers per row: the checker accepts the mixed model, ORT
    runs it, and its outputs stay close (cosine >= 0.99)."""
    model = ROOT / "fixtures/models/char_decoder.ts.onnx"
    out = workdir / "char_decoder__act_scale_auto.onnx"
    worst = lossy_cosine(whittle, model, out, [
        "--quantize", "int8-dynamic", "--act-scale", "auto", "--budget", "cosine=0.99997",
        "--min-elements", "1", "--calibrate",
        str(ROOT / "fixtures/data/char_decoder/calib.npy")])
    if isinstance(worst, str):
        return worst
    rows = sum(n.op_type == "ReduceMax" for n in onnx.load(str(out)).graph.node)
    QUANT.append(("int8-dynamic --act-scale auto", f"{model.name} ({rows} per row)", worst,
                  total_size(out) / total_size(model)))
    if rows == 0:
        return "act-scale auto scaled no layer per row under a budget per tensor misses"
    return None if worst >= 0.99 else f"act-scale auto output cosine {worst:.6f} < 0.99"


def decompose_judge(whittle, model, workdir):
    """--decompose conv,gemm --budget exact: the checker accepts it, ORT runs it, and the
    outputs equal the original's (cosine >= 0.99999 on random inputs)."""
    out = workdir / (model.stem + "__exact.onnx")
    worst = lossy_cosine(whittle, model, out, ["--decompose", "conv,gemm", "--budget", "exact"])
    if isinstance(worst, str):
        return worst
    DECOMPOSE.append((model.name, worst))
    return None if worst >= 0.99999 else f"exact decomposition output cosine {worst:.7f}"


def prune_judge(whittle, model, workdir):
    """--prune conv,dense,ffn,heads --budget cosine=0.995 (random inputs): the checker accepts
    the smaller model, ORT runs it, and its outputs stay close to the original's on ORT's
    own random inputs (cosine >= 0.98: the budget was held on whittle's)."""
    out = workdir / (model.stem + "__pruned.onnx")
    worst = lossy_cosine(whittle, model, out,
                         ["--prune", "conv,dense,ffn,heads", "--budget", "cosine=0.995"])
    if isinstance(worst, str):
        return worst
    PRUNE.append((model.name, worst, total_size(out) / total_size(model)))
    return None if worst >= 0.98 else f"pruned output cosine {worst:.5f} < 0.98"


HEADS = []  # (export, heads kept/total, ORT cosine against the original)


def heads_judge(whittle, workdir):
    """Attention heads pruned from both exports of bert_tiny (the same weights; TorchScript
    spells the head split with -1, torch.export merges heads into the batch and reads the
    count back at run time): whittle must prune heads in both, the checker accepts them,
    ORT runs them, the two pruned models agree (max abs difference <= 1e-4: the same
    choices on the same data) and stay close to the original (cosine >= 0.9 at a 0.95
    budget)."""
    import numpy as np
    outs, feed = {}, None
    for e in ("ts", "dyn"):
        model = ROOT / f"fixtures/models/bert_tiny.{e}.onnx"
        out = workdir / f"bert_tiny.{e}__heads.onnx"
        flags = ["--prune", "heads", "--budget", "cosine=0.95"]
        r = subprocess.run([whittle, "optimize", str(model), "-o", str(out), *flags],
                           capture_output=True, text=True)
        if r.returncode != 0:
            return failed_run(r, flags[0])
        kept = re.findall(r"prune heads (\d+)/(\d+) kept", r.stdout)
        if not kept:
            return f"bert_tiny.{e}: no heads pruned at cosine=0.95"
        if checker_verdict(out) != "ok":
            return f"onnx.checker rejects bert_tiny.{e} with heads pruned: " + checker_verdict(out)
        feed = random_feed(ort_session(model)) if feed is None else feed
        worst = ort_cosine(model, out, feed)
        if isinstance(worst, str):
            return worst
        outs[e] = ort_session(out).run(None, feed)[0]
        HEADS.append((e, "+".join(f"{k}/{t}" for k, t in kept), worst))
        if worst < 0.9:
            return f"bert_tiny.{e} with heads pruned: ORT cosine {worst:.5f} < 0.9"
    diff = float(np.abs(outs["ts"] - outs["dyn"]).max())
    return None if diff <= 1e-4 else f"the two exports pruned differ by {diff:.2e} in ORT"


DECODERS = []  # (fixture, max abs difference over logits and present keys/values)


def decoder_feeds(model):
    """Feeds for a decoder fixture: a prompt of 5 tokens with an empty cache, and a step
    of 1 (and 3) tokens after a cache of 7, batch 2; None unless its inputs are input_ids
    and past_* (a prompt model gets the token counts only)."""
    import numpy as np
    rng = np.random.default_rng(0)
    m = onnx.load(str(model), load_external_data=False)
    names = [i.name for i in m.graph.input]
    if names[:1] != ["input_ids"] or not all(n.startswith("past_") for n in names[1:]):
        return None
    feeds = []
    for seq, past in ((5, 0), (1, 7), (3, 7)):
        f = {"input_ids": rng.integers(0, 256, (2, seq))}
        for i in m.graph.input[1:]:
            d = i.type.tensor_type.shape.dim
            f[i.name] = rng.standard_normal(
                (2, d[1].dim_value, past, d[3].dim_value)).astype(np.float32)
        feeds.append(f)
    return feeds


# The standard ops the decoder fusions write at opset 24 (Attention only when enabled);
# each must appear in some fixture.
DECODER_FUSED_OPS = ("RMSNormalization", "RotaryEmbedding", "Swish", "Attention")
DECODER_VARIANTS = (("", ()), ("__opset24", ("--opset", "24")),
                    ("__attention", ("--opset", "24", "--enable", "rule:attention")))


def decoder_judge(whittle, model, workdir):
    """Decoder fixtures at -O2, at -O2 --opset 24 (the fusions into RMSNormalization,
    RotaryEmbedding and Swish) and with the attention fusion enabled too, in ORT: logits
    and every present key/value equal to the original's (max abs <= 1e-5) for a prompt and
    for steps after a 7-token cache, batch 2."""
    import numpy as np
    feeds = decoder_feeds(model)
    if feeds is None:
        return None
    a = ort_session(model)
    for tag, extra in DECODER_VARIANTS:
        out = workdir / (model.stem + tag + "__decoder.onnx")
        r = subprocess.run([whittle, "-q", "optimize", str(model), "-o", str(out), *extra],
                           capture_output=True, text=True)
        if r.returncode != 0:
            return f"whittle {' '.join(extra)} exited {r.returncode}: {r.stderr.strip()[:300]}"
        b = ort_session(out)
        worst = 0.0
        for f in feeds:
            for x, y in zip(a.run(None, f), b.run(None, f)):
                if x.shape != y.shape:
                    return f"{' '.join(extra)}: output shape {y.shape} != {x.shape}"
                worst = max(worst, float(np.abs(x - y).max()))
        ops = {n.op_type for n in onnx.load(str(out), load_external_data=False).graph.node}
        DECODERS.append((" ".join((model.name,) + extra), worst,
                         sorted(ops & set(DECODER_FUSED_OPS))))
        if worst > 1e-5:
            return f"{' '.join(extra) or '-O2'}: max abs difference {worst:.3e} > 1e-5"
    return None


INT4_QUALITY = []  # (variant, held-out perplexity)


def perplexity(path, windows):
    """Per-byte perplexity of the trained byte decoder on `windows` (positions 0..126
    predicting bytes 1..127), in ORT."""
    import numpy as np
    logits = ort_session(path).run(None, {"tokens": windows})[0][:, :-1].astype(np.float64)
    peak = logits.max(-1, keepdims=True)
    logp = logits - peak - np.log(np.exp(logits - peak).sum(-1, keepdims=True))
    nll = -np.take_along_axis(logp, windows[:, 1:, None], -1).mean()
    return float(np.exp(nll))


def decoder_int4_quality(whittle, workdir, export="ts", runtime="tract"):
    """The byte decoder trained here (fixtures/gen/make_trained_decoder.py; its dynamo
    export, make_dynamo_decoder.py) on its held-out text: GPTQ int4 (`--calibrate`, block
    32, calibrated in `runtime`) must lose at most half the perplexity round-to-nearest
    int4 loses, and int8-weights stay within 0.5 % of float."""
    import numpy as np
    model = ROOT / f"fixtures/models/char_decoder.{export}.onnx"
    data = ROOT / "fixtures/data/char_decoder"
    held = np.load(data / "heldout.npy")
    variants = {
        "int4 round-to-nearest": ["--quantize", "int4", "--int4-format", "matmulnbits"],
        "int4 GPTQ": ["--quantize", "int4", "--int4-format", "matmulnbits",
                      "--calibrate", str(data / "calib.npy"), "--runtime", runtime],
        "int8-weights": ["--quantize", "int8-weights"],
    }
    ppl = {"float": perplexity(model, held)}
    for name, flags in variants.items():
        out = workdir / (f"char_decoder_{export}__" + name.replace(" ", "_") + ".onnx")
        r = subprocess.run([whittle, "-q", "optimize", str(model), "-o", str(out), *flags],
                           capture_output=True, text=True)
        if r.returncode != 0:
            return f"whittle {name} exited {r.returncode}: {r.stderr.strip()[:300]}"
        ppl[name] = perplexity(out, held)
    INT4_QUALITY.extend((f"{export} ({runtime}) {k}", v) for k, v in ppl.items())
    rtn, gptq = (ppl[k] - ppl["float"] for k in ("int4 round-to-nearest", "int4 GPTQ"))
    if gptq > 0.5 * rtn:
        return f"GPTQ loses {gptq:.4f} perplexity, more than half of round-to-nearest's {rtn:.4f}"
    if ppl["int8-weights"] > 1.005 * ppl["float"]:
        return f"int8-weights perplexity {ppl['int8-weights']:.4f} > 1.005 x {ppl['float']:.4f}"
    return None


def vgg_target(whittle, workdir, step, flags, label, name="vgg_digits", min_gain=2.0):
    """`whittle optimize vgg_digits --<step> ... --calibrate` (its 100 calibration images)
    must keep held-back accuracy within 0.5 point of the float export in ORT and cut the
    step's MACs at least `min_gain` times (2x). `name`: another model trained on the same
    images."""
    import numpy as np
    model = ROOT / f"fixtures/models/{name}.ts.onnx"
    data = ROOT / "fixtures/data/vgg_digits"
    out = workdir / f"{name}__{step}.onnx"
    r = subprocess.run([whittle, "optimize", str(model), "-o", str(out), *flags,
                        "--calibrate", str(data / "calib.npy")], capture_output=True, text=True)
    if r.returncode != 0:
        return f"whittle --{step} exited {r.returncode}: {r.stderr.strip()[:300]}"
    m = re.search(r"MACs per sample (\d+) -> (\d+)", r.stdout)
    if not m:
        return f"whittle printed no {step} total"
    test = np.load(data / "test.npz")
    acc = [float((ort_session(p).run(None, {"image": test["image"]})[0].argmax(1)
                  == test["label"]).mean()) for p in (model, out)]
    gain = int(m.group(1)) / int(m.group(2))
    print(f"{label} (ORT, {len(test['label'])} held-back images): MACs {gain:.2f}x fewer, "
          f"accuracy {acc[0] * 100:.2f}% -> {acc[1] * 100:.2f}%")
    if step == "prune" and name == "fire_digits" and not re.search(r"kept .* at '[^']*\+", r.stdout):
        return "no fire module's expand convs pruned through their Concat"
    if gain < min_gain or acc[0] - acc[1] > 0.005:
        return f"{step} target missed: {gain:.2f}x MACs, {(acc[0] - acc[1]) * 100:.2f} points lost"
    return None


def prune_accuracy(whittle, workdir):
    """Issue 19's quality target: --prune conv,dense --budget cosine=0.995."""
    return vgg_target(whittle, workdir, "prune",
                      ["--prune", "conv,dense", "--budget", "cosine=0.995"],
                      "prune conv,dense cosine=0.995")


def fire_accuracy(whittle, workdir):
    """Pruning branches on a trained model: fire_digits' expand convs (each fire module's
    two, concatenated) and squeeze convs (read by both expands) pruned at cosine=0.995
    within 0.5 point, MACs >= 1.2x fewer (1.30x, 0.22 point when this check was
    written)."""
    return vgg_target(whittle, workdir, "prune", ["--prune", "conv", "--budget", "cosine=0.995"],
                      "prune conv cosine=0.995 through Concat", name="fire_digits",
                      min_gain=1.2)


def decompose_accuracy(whittle, workdir):
    """Issue 7's target: --decompose conv,gemm --budget top1=0.995."""
    return vgg_target(whittle, workdir, "decompose",
                      ["--decompose", "conv,gemm", "--budget", "top1=0.995"],
                      "decompose conv,gemm top1=0.995")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--whittle", required=True)
    ap.add_argument("--sets", default=",".join(BACKEND_SETS))
    args = ap.parse_args()
    # `--runtime ort` runs load the ONNX Runtime this venv holds (the one the judge uses).
    import onnxruntime
    capi = pathlib.Path(onnxruntime.__file__).parent / "capi"
    libs = sorted(capi.glob("libonnxruntime.so*")) + sorted(capi.glob("onnxruntime.dll"))
    if libs:
        os.environ.setdefault("ORT_DYLIB_PATH", str(libs[0]))
    models = list(fixture_models()) + list(backend_models(args.sets.split(",")))
    passed, failed, unjudged_steps = 0, [], []
    with tempfile.TemporaryDirectory() as d:
        for m in models:
            err = roundtrip(args.whittle, m, pathlib.Path(d))
            if err:
                failed.append((m, err))
            else:
                passed += 1
        totals = {"agree": 0, "disagree": 0, "missing": 0, "more": 0}
        for m in models:
            try:
                stats, problems, _ = shape_agreement.agreement(args.whittle, m)
            except Exception as e:  # reported as a failure of this model
                failed.append((m, f"shape inference check could not run: {e}"))
                continue
            for k in totals:
                totals[k] += stats[k]
            if problems:
                name, verdict, detail = problems[0]
                failed.append((m, f"shape inference {verdict} on '{name}': {detail} "
                                  f"({len(problems)} values)"))
            else:
                passed += 1
        work = pathlib.Path(d)
        vgg = ROOT / "fixtures/models/vgg_digits.ts.onnx"
        # (model blamed on failure, verdict): None passes, text fails.
        lossy = [(m, quant_judge(args.whittle, m, work, mode))
                 for mode in QUANT_MODES for m in fixture_models()]
        lossy += [(m, decompose_judge(args.whittle, m, work)) for m in fixture_models()]
        lossy += [(m, static_judge(args.whittle, m, work)) for m in fixture_models()]
        lossy.append((ROOT / "fixtures/models/bert_tiny.ts.onnx",
                      int4_dq_judge(args.whittle, work)))
        lossy.append((ROOT / "fixtures/models/char_decoder.ts.onnx",
                      act_scale_auto_judge(args.whittle, work)))
        lossy += [(ROOT / f"fixtures/models/vgg_digits.{e}.onnx",
                   static_accuracy(args.whittle, work, e)) for e in ("ts", "dyn")]
        lossy.append((vgg, decompose_accuracy(args.whittle, work)))
        lossy += [(m, prune_judge(args.whittle, m, work)) for m in fixture_models()]
        lossy += [(m, decoder_judge(args.whittle, m, work)) for m in fixture_models()]
        lossy.append((vgg, prune_accuracy(args.whittle, work)))
        lossy.append((ROOT / "fixtures/models/fire_digits.ts.onnx",
                      fire_accuracy(args.whittle, work)))
        lossy.append((ROOT / "fixtures/models/bert_tiny.ts.onnx", heads_judge(args.whittle, work)))
        lossy.append((ROOT / "fixtures/models/char_decoder.ts.onnx",
                      decoder_int4_quality(args.whittle, work)))
        lossy.append((ROOT / "fixtures/models/char_decoder.dyn.onnx",
                      decoder_int4_quality(args.whittle, work, "dyn", "ort")))
        # Every fusion the judge names must have fired on some fixture at opset 24.
        fired = {op for _, _, ops in DECODERS for op in ops}
        missing = [op for op in DECODER_FUSED_OPS if op not in fired]
        lossy.append((ROOT / "fixtures/models/llama_step.dyn.onnx",
                      f"no decoder fixture fused into {missing} at --opset 24" if missing
                      else None))
        for m, verdict in lossy:
            if verdict is None:
                passed += 1
            elif verdict.startswith("not judged"):
                unjudged_steps.append((m, verdict))
            else:
                failed.append((m, verdict))
        judged, unjudged = 0, []
        for m in backend_models(args.sets.split(",")):
            verdict = ort_judge(args.whittle, m, pathlib.Path(d))
            if verdict == "no data":
                continue
            if verdict is None:
                judged += 1
                passed += 1
            elif verdict.startswith("not judged"):
                unjudged.append((m, verdict))
            else:
                failed.append((m, verdict))
        upgraded, refused = upgrade_judges(args.whittle, args.sets.split(","), work)
        passed += upgraded
        failed += [(m, v) for m, v in refused if not v.startswith("not judged")]
        refused = [(m, v) for m, v in refused if v.startswith("not judged")]
    for m, why in unjudged:
        print(f"NOT JUDGED {m.parent.name}: {why}")
    for m, why in unjudged_steps:
        print(f"NOT JUDGED {m.name}: {why}")
    print(f"--opset 21 (ORT; backend models at opset 13 vs their stored outputs, fixtures vs "
          f"the original): {upgraded} upgraded and equal, {len(refused)} refused by whittle: "
          + ", ".join(f"{m.parent.name} ({v.split(': ', 1)[-1][:80]})" for m, v in refused))
    print(f"ORT judge (-O2 vs stored outputs): {judged} models equal, {len(unjudged)} not judged; "
          f"checker accepts every -O2 output it accepted the input of; nodes {NODES[0]} -> {NODES[1]}")
    for mode in dict.fromkeys(q[0] for q in QUANT):
        rows = [q for q in QUANT if q[0] == mode]
        if rows:
            print(f"{mode} (ORT, random inputs; size with external data): " + ", ".join(
                f"{n} cosine {c:.6f} size {r:.2f}x" for _, n, c, r in rows))
    if STATIC:
        print("int8-static (ORT, calibrated and judged on one random feed): " + ", ".join(
            f"{n} cosine {c:.5f} size {r:.2f}x" for n, c, r in STATIC))
    if DECOMPOSE:
        print("decompose exact (ORT, random inputs): " + ", ".join(
            f"{n} cosine {c:.7f}" for n, c in DECOMPOSE))
    if PRUNE:
        print("prune cosine=0.995 (ORT, random inputs): " + ", ".join(
            f"{n} cosine {c:.5f} size {r:.2f}x" for n, c, r in PRUNE))
    if HEADS:
        print("prune heads cosine=0.95 (ORT, random inputs): " + ", ".join(
            f"bert_tiny.{e} {k} kept, cosine {c:.5f}" for e, k, c in HEADS))
    if IN_ORT:
        print("lossy steps run with --runtime ort where tract cannot load the model: " + ", ".join(
            f"{m} {step}" for m, step in IN_ORT))
    if INT4_QUALITY:
        print("trained byte decoder, held-out perplexity (ORT): " + ", ".join(
            f"{n} {p:.4f}" for n, p in INT4_QUALITY))
    if DECODERS:
        print("decoders -O2 (ORT, prompt and KV-cache steps; logits and present): " + ", ".join(
            f"{n} max abs {d:.1e}" + (f" ({'/'.join(ops)})" if ops else "")
            for n, d, ops in DECODERS))
    for m, err in failed:
        print(f"FAIL {m}: {err}")
    known = totals["agree"] + totals["disagree"] + totals["missing"]
    rate = 100.0 * totals["agree"] / known if known else 0.0
    print(f"shape inference vs onnx: {totals['agree']}/{known} values agree ({rate:.2f}%), "
          f"{totals['disagree']} disagree, {totals['missing']} less known; "
          f"{totals['more']} dims known to whittle only")
    print(f"round-trip: {len(models)} models ({len(list(fixture_models()))} fixtures)")
    print(f"{passed} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

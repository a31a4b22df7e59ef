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
import pathlib
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


def ort_judge(whittle, model, workdir):
    """None if judged equal, "not judged: ..." if ORT cannot run the original, else an error."""
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
    out = workdir / (model.parent.name + "__O2.onnx")
    r = subprocess.run([whittle, "-q", "optimize", str(model), "-o", str(out)], capture_output=True, text=True)
    if r.returncode != 0:
        return f"whittle -O2 exited {r.returncode}: {r.stderr.strip()[:300]}"
    if checker_verdict(model) == "ok" and checker_verdict(out) != "ok":
        return "onnx.checker rejects the optimized model: " + checker_verdict(out)
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


def random_feed(sess):
    import numpy as np
    rng = np.random.default_rng(0)
    feed = {}
    for i in sess.get_inputs():
        shape = [d if isinstance(d, int) else (1 if k == 0 else 16) for k, d in enumerate(i.shape)]
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


# mode: least output cosine on random weights and inputs
QUANT_MODES = {"int8-weights": 0.999, "int8-dynamic": 0.99, "fp16-weights": 0.9999}


def quant_judge(whittle, model, workdir, mode):
    """--quantize MODE: the checker accepts it, ORT runs it, outputs stay close."""
    import numpy as np
    import onnxruntime as ort
    out = workdir / (model.stem + f"__{mode}.onnx")
    r = subprocess.run([whittle, "-q", "optimize", str(model), "-o", str(out),
                        "--quantize", mode], capture_output=True, text=True)
    if r.returncode != 0:
        return f"whittle --quantize exited {r.returncode}: {r.stderr.strip()[:300]}"
    if checker_verdict(out) != "ok":
        return f"onnx.checker rejects the {mode} model: " + checker_verdict(out)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    a = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
    try:
        b = ort.InferenceSession(str(out), so, providers=["CPUExecutionProvider"])
    except Exception as e:
        return f"ORT cannot load the {mode} model: " + str(e).splitlines()[0][:200]
    feed = random_feed(a)
    worst = 1.0
    for x, y in zip(a.run(None, feed), b.run(None, feed)):
        if not np.issubdtype(x.dtype, np.floating):
            continue
        x, y = x.ravel().astype(np.float64), y.ravel().astype(np.float64)
        n = np.linalg.norm(x) * np.linalg.norm(y)
        worst = min(worst, float(x @ y / n) if n > 0 else float(np.allclose(x, y)))
    QUANT.append((mode, model.name, worst, total_size(out) / total_size(model)))
    least = QUANT_MODES[mode]
    return None if worst >= least else f"{mode} output cosine {worst:.6f} < {least}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--whittle", required=True)
    ap.add_argument("--sets", default=",".join(BACKEND_SETS))
    args = ap.parse_args()
    models = list(fixture_models()) + list(backend_models(args.sets.split(",")))
    passed, failed = 0, []
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
        for mode in QUANT_MODES:
            for m in fixture_models():
                verdict = quant_judge(args.whittle, m, pathlib.Path(d), mode)
                if verdict is None:
                    passed += 1
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
    for m, why in unjudged:
        print(f"NOT JUDGED {m.parent.name}: {why}")
    print(f"ORT judge (-O2 vs stored outputs): {judged} models equal, {len(unjudged)} not judged; "
          f"checker accepts every -O2 output it accepted the input of; nodes {NODES[0]} -> {NODES[1]}")
    for mode in QUANT_MODES:
        rows = [q for q in QUANT if q[0] == mode]
        if rows:
            print(f"{mode} (ORT, random inputs; size with external data): " + ", ".join(
                f"{n} cosine {c:.6f} size {r:.2f}x" for _, n, c, r in rows))
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

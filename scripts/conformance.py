#!/usr/bin/env python3
"""Conformance harness: whittle's output judged by the reference Python tooling.

For every fixture model and every model of the ONNX backend test data shipped inside the
`onnx` wheel, run `whittle optimize -O0` and check that
  * the output is protobuf-equal to the input (`onnx.load(out) == onnx.load(in)`), and
  * `onnx.checker` gives the same verdict on both.
Ends with a summary line "N passed, M failed".
"""
import argparse
import pathlib
import subprocess
import sys
import tempfile

import onnx
import onnx.checker

ROOT = pathlib.Path(__file__).resolve().parent.parent
BACKEND_SETS = ["simple", "pytorch-converted", "pytorch-operator", "light", "node"]  # "node" ships in some wheels only


def backend_models(sets):
    base = pathlib.Path(onnx.__file__).parent / "backend" / "test" / "data"
    for s in sets:
        yield from sorted((base / s).glob("*/model.onnx"))
        yield from sorted((base / s).glob("*.onnx"))


def fixture_models():
    yield from sorted((ROOT / "fixtures").rglob("*.onnx"))


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
    for m, err in failed:
        print(f"FAIL {m}: {err}")
    print(f"round-trip: {len(models)} models ({len(list(fixture_models()))} fixtures)")
    print(f"{passed} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

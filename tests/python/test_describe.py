"""whittle.dump, whittle.summary and whittle.verify: the CLI's output as Python data."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import whittle

from conftest import DATA, MODELS, ROOT, run_cli


@pytest.mark.parametrize("model", MODELS, ids=lambda p: p.name)
def test_dump_json_equals_the_cli(cli, model):
    r = run_cli(cli, "dump", model, "--format", "json")
    assert r.returncode == 0, r.stderr
    assert whittle.dump(model, "json") == json.loads(r.stdout)


def test_dump_text_dot_summary_and_cost_equal_the_cli(cli):
    model = ROOT / "fixtures/models/bert_tiny.dyn.onnx"
    cases = [
        ({"format": "text"}, []),
        ({"format": "text", "full": True}, ["--full"]),
        ({"format": "dot"}, ["--format", "dot"]),
        ({"format": "text", "summary": True}, ["--summary"]),
        ({"format": "text", "cost": True}, ["--cost"]),
        ({"format": "json", "cost": True}, ["--format", "json", "--cost"]),
        (
            {"format": "text", "summary": True, "input_shapes": {"input_ids": [2, 16]}},
            ["--summary", "--input-shape", "input_ids=2,16"],
        ),
    ]
    for kwargs, flags in cases:
        r = run_cli(cli, "dump", model, *flags)
        assert r.returncode == 0, r.stderr
        got = whittle.dump(model, **kwargs)
        want = json.loads(r.stdout) if kwargs["format"] == "json" else r.stdout
        assert got == want, kwargs


def test_summary_of_a_proto_is_the_summary_of_its_file(cli):
    model = ROOT / "fixtures/models/squeezenet1_1.ts.onnx"
    from_file = whittle.summary(model)
    from_proto = whittle.summary(onnx.load(str(model)))
    assert from_file["macs"] == from_proto["macs"]
    assert from_file == json.loads(run_cli(cli, "dump", model, "--summary", "--format", "json").stdout)


def test_verify_equals_the_cli(cli, tmp_path):
    a = ROOT / "fixtures/models/cnn_bn.ts.onnx"
    b = tmp_path / "b.onnx"
    whittle.optimize(a, b)
    r = run_cli(cli, "verify", a, b, "--format", "json")
    assert r.returncode == 0, r.stderr
    got = whittle.verify(a, b)
    assert got == json.loads(r.stdout)
    assert got["verified"] is True
    inputs = dict(np.load(DATA / "cnn_bn.ts/inputs.npz"))
    assert whittle.verify(a, onnx.load(str(b)), inputs)["verified"] is True


def test_verify_finds_a_changed_model(tmp_path):
    a = ROOT / "fixtures/models/vgg_digits.ts.onnx"
    b = whittle.optimize(a, quantize="int8-weights").to_bytes()
    got = whittle.verify(a, b, rtol=0.0, atol=0.0)
    assert got["verified"] is False
    assert any(not o["ok"] for o in got["outputs"])

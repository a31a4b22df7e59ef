"""whittle.tune: the CLI's search in process, returning what `whittle tune --format json`
prints, and writing the same model."""

from __future__ import annotations

import json

import pytest
import whittle

from conftest import DATA, ROOT, run_cli


def test_tune_returns_what_the_cli_prints_and_writes_the_same_model(cli, tmp_path):
    model = ROOT / "fixtures/models/vgg_digits.ts.onnx"
    calib = DATA / "vgg_digits/calib.npy"
    cache = tmp_path / "cache"
    r = run_cli(cli, "tune", model, "-o", tmp_path / "cli.onnx", "--budget", "top1=0.9",
                "--calibrate", calib, "--cache", cache, "--format", "json")
    assert r.returncode == 0, r.stderr
    want = json.loads(r.stdout)
    # With the cache the CLI filled: the same plans, read back, the same choice.
    got = whittle.tune(model, tmp_path / "py.onnx", "top1=0.9", calibrate=calib,
                       cache=cache, html=tmp_path / "r.html")
    assert all(got["cached"][1:]), "the default runtime and runtime='tract' share the cache"
    assert got["chosen"] == want["chosen"] is not None
    assert [m["plan"] for m in got["measured"]] == [m["plan"] for m in want["measured"]]
    chosen = got["measured"][got["chosen"]]
    assert chosen["held"] and chosen["error"] is None
    assert (tmp_path / "py.onnx").read_bytes() == (tmp_path / "cli.onnx").read_bytes()
    assert "<svg" in (tmp_path / "r.html").read_text()


def test_tune_errors_are_python_exceptions(tmp_path):
    model = ROOT / "fixtures/models/vgg_digits.ts.onnx"
    with pytest.raises(whittle.SettingsError, match="whole model"):
        whittle.tune(model, tmp_path / "o.onnx", "tol=0.1", cache=False)
    assert not (tmp_path / "o.onnx").exists()

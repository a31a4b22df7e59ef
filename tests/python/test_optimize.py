"""whittle.optimize: the same bytes as the CLI, from every kind of model input."""

from __future__ import annotations

import json
from pathlib import Path
import shutil

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import whittle

from conftest import DATA, MODELS, ROOT, cli_optimize, run_cli


@pytest.mark.parametrize("model", MODELS, ids=lambda p: p.name)
def test_api_writes_what_the_cli_writes(cli, tmp_path, model):
    # One file name in two folders: an external data file is named after its model.
    (tmp_path / "cli").mkdir()
    (tmp_path / "api").mkdir()
    want = cli_optimize(cli, model, tmp_path / "cli" / "m.onnx")
    out = tmp_path / "api" / "m.onnx"
    result = whittle.optimize(model, out)
    assert out.read_bytes() == want
    assert result.output == str(out)
    if not model.name.endswith(".ext.onnx"):
        assert whittle.optimize(model).to_bytes() == want


def test_external_data_is_written_as_the_cli_writes_it(cli, tmp_path):
    model = ROOT / "fixtures/models/cnn_bn.ts.ext.onnx"
    (tmp_path / "cli").mkdir()
    (tmp_path / "api").mkdir()
    flags = ["--external-data-threshold", "1024"]
    cli_optimize(cli, model, tmp_path / "cli/m.onnx", *flags)
    whittle.optimize(model, tmp_path / "api/m.onnx", external_data_threshold=1024)
    written = sorted(p.name for p in (tmp_path / "cli").iterdir())
    assert len(written) == 2, "the model and its data file"
    assert sorted(p.name for p in (tmp_path / "api").iterdir()) == written
    for name in written:
        assert (tmp_path / "api" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes()
    # In memory, the external tensors are read in: one buffer ORT runs.
    data = whittle.optimize(model).to_bytes()
    ort.InferenceSession(data, providers=["CPUExecutionProvider"])


def test_model_proto_bytes_and_path_give_the_same_model(cli, tmp_path):
    model = ROOT / "fixtures/models/mobile_block.ts.onnx"
    want = cli_optimize(cli, model, tmp_path / "cli.onnx")
    proto = onnx.load(str(model))
    assert whittle.optimize(proto).to_bytes() == want
    assert whittle.optimize(model.read_bytes()).to_bytes() == want
    assert whittle.optimize(str(model)).to_bytes() == want
    result = whittle.optimize(proto)
    assert isinstance(result.model, onnx.ModelProto)
    assert result.model.SerializeToString() == want
    result.save(tmp_path / "saved.onnx")
    assert (tmp_path / "saved.onnx").read_bytes() == want


def test_onnx_program_from_torch(cli, tmp_path):
    torch = pytest.importorskip("torch", reason="torch is not in the test venv")
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU())
    net.eval()
    program = torch.onnx.export(net, (torch.randn(1, 3, 16, 16),), dynamo=True)
    result = whittle.optimize(program)
    assert result.report["input"] == "<ONNXProgram>"
    assert "BatchNormalization" not in result.report["after"]["op_counts"]
    sess = ort.InferenceSession(result.to_bytes(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((1, 3, 16, 16), dtype=np.float32)
    (y,) = sess.run(None, {sess.get_inputs()[0].name: x})
    np.testing.assert_allclose(y, net(torch.from_numpy(x)).detach().numpy(), atol=1e-4)


def test_report_is_the_cli_report(cli, tmp_path):
    model = ROOT / "fixtures/models/bert_tiny.ts.onnx"
    r = run_cli(cli, "-q", "optimize", model, "-o", tmp_path / "c.onnx", "--report", tmp_path / "c.json")
    assert r.returncode == 0, r.stderr
    want = json.loads((tmp_path / "c.json").read_text())
    got = whittle.optimize(model, tmp_path / "a.onnx").report
    for timing in ("read_ms", "total_ms"):
        assert got.pop(timing) >= 0 and want.pop(timing) >= 0
    for p in got["passes"] + want["passes"]:
        p.pop("ms")
    want["output"] = str(tmp_path / "a.onnx")
    assert got == want
    assert got["before"]["nodes"] > got["after"]["nodes"]
    assert sum(p["rewrites"] for p in got["passes"]) == len(got["rewrites"]) > 0


def test_settings_are_the_cli_flags(cli, tmp_path):
    model = ROOT / "fixtures/models/bert_tiny.dyn.onnx"
    want = cli_optimize(
        cli, model, tmp_path / "c.onnx", "-O", "1", "--disable", "cse",
        "--input-shape", "input_ids=1,8", "--fold-limit", "4096",
    )
    got = whittle.optimize(
        model, level=1, disable="cse", input_shapes={"input_ids": [1, 8]}, fold_limit=4096
    ).to_bytes()
    assert got == want


def test_quantize_with_numpy_calibration_equals_the_cli_with_a_file(cli, tmp_path):
    model = ROOT / "fixtures/models/vgg_digits.ts.onnx"
    calib = DATA / "vgg_digits/calib.npy"
    want = cli_optimize(cli, model, tmp_path / "c.onnx", "--quantize", "int8-static", "--calibrate", calib)
    array = np.load(calib)
    got = whittle.optimize(model, quantize="int8-static", calibrate=array)
    assert got.to_bytes() == want
    assert got.report["after"]["op_counts"].get("QLinearConv", 0) + got.report["after"][
        "op_counts"
    ].get("QuantizeLinear", 0) > 0
    notes = [n["note"] for n in got.report["notes"]]
    # A layer whose input the previous layer quantized reports that layer's scale, not
    # an empty range.
    assert any("quantized upstream (scale " in n for n in notes), notes
    assert not any("[0.0000, 0.0000]" in n for n in notes), notes
    name = onnx.load(str(model)).graph.input[0].name
    by_name = whittle.optimize(model, quantize="int8-static", calibrate={name: array})
    assert by_name.to_bytes() == want


def test_prune_from_python_is_the_cli_run(cli, tmp_path):
    model = ROOT / "fixtures/models/vgg_digits.ts.onnx"
    calib = DATA / "vgg_digits/calib.npy"
    flags = ("--prune", "conv,dense", "--budget", "cosine=0.995", "--calibrate", calib)
    want = cli_optimize(cli, model, tmp_path / "c.onnx", *flags)
    got = whittle.optimize(model, prune=["conv", "dense"], budget="cosine=0.995",
                           calibrate=np.load(calib))
    assert got.to_bytes() == want
    notes = [n["note"] for n in got.report["notes"]]
    assert any(n.startswith("prune conv ") and " kept (into " in n for n in notes), notes
    assert got.report["after"]["initializer_bytes"] < got.report["before"]["initializer_bytes"]


def test_int8_dynamic_and_budget(cli, tmp_path):
    model = ROOT / "fixtures/models/bert_tiny.ts.onnx"
    want = cli_optimize(cli, model, tmp_path / "c.onnx", "--quantize", "int8-dynamic")
    result = whittle.optimize(model, quantize="int8-dynamic")
    assert result.to_bytes() == want
    assert result.report["notes"], "lossy steps report per-layer errors"


def test_verify_reports_the_check(tmp_path):
    model = ROOT / "fixtures/models/cnn_bn.ts.onnx"
    result = whittle.optimize(model, verify=True)
    v = result.report["verify"]
    assert v["rolled_back"] == [] and v["pipeline_runs"] >= 1 and v["min_cosine"] > 0.9999
    strict = whittle.optimize(model, verify="strict", verify_inputs=DATA / "cnn_bn.ts/inputs.npz")
    assert "inputs.npz" in strict.report["verify"]["inputs"]
    arrays = dict(np.load(DATA / "cnn_bn.ts/inputs.npz"))
    from_arrays = whittle.optimize(model, verify="strict", verify_inputs=arrays)
    assert from_arrays.to_bytes() == strict.to_bytes()


def test_runtime_ort_runs_in_the_onnxruntime_this_process_imported(monkeypatch):
    # Whatever python3 or ORT_DYLIB_PATH would find, the library this process already
    # loaded is the one whittle loads (one ONNX Runtime per process).
    monkeypatch.delenv("ORT_DYLIB_PATH", raising=False)
    model = ROOT / "fixtures/models/cnn_bn.ts.onnx"
    result = whittle.optimize(model, verify=True, runtime="ort", threads=1)
    rt = result.report["verify"]["runtime"]
    assert rt.startswith(f"ONNX Runtime {ort.__version__} "), rt
    assert str(Path(ort.__file__).parent / "capi") in rt and "1 intra-op thread" in rt, rt
    assert result.report["settings"]["runtime"] == "ort"


def test_verify_runs_both_models_in_ort():
    model = ROOT / "fixtures/models/cnn_bn.ts.onnx"
    out = whittle.verify(model, model, runtime="ort", threads=1)
    assert out["verified"] and all(d["max_abs"] == 0.0 for d in out["outputs"])


def test_an_unknown_runtime_is_a_settings_error():
    with pytest.raises(whittle.SettingsError, match="runtime"):
        whittle.optimize(ROOT / "fixtures/models/cnn_bn.ts.onnx", runtime="tvm")


def test_saving_beside_a_copy_of_the_input_leaves_the_copy_alone(cli, tmp_path):
    """Issue 30: an output written into a folder that holds a copy of the input (model
    and data file) once rewrote the copy's data file; the copy must still load in ORT,
    byte for byte as it was, after every way of writing there."""
    model = ROOT / "fixtures/models/cnn_bn.ts.ext.onnx"
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    for f in (model, model.with_name(model.name + ".data")):
        shutil.copy(f, deploy / f.name)
    before = {p.name: p.read_bytes() for p in deploy.iterdir()}
    flags = {"quantize": "int8-weights", "external_data_threshold": 1024}
    result = whittle.optimize(model, deploy / "api.onnx", **flags)
    result.save(deploy / "saved.onnx")
    cli_optimize(cli, model, deploy / "cli.onnx", "--quantize", "int8-weights",
                 "--external-data-threshold", "1024")
    for name, data in before.items():
        assert (deploy / name).read_bytes() == data, f"{name} changed"
    for name in ("api", "saved", "cli"):
        assert onnx.load(str(deploy / f"{name}.onnx"), load_external_data=False).graph
        assert (deploy / f"{name}.onnx.data").is_file()
    outs = {}
    for name in (model.name, "api.onnx", "saved.onnx", "cli.onnx"):
        sess = ort.InferenceSession(str(deploy / name), providers=["CPUExecutionProvider"])
        shape = [d if isinstance(d, int) else 1 for d in sess.get_inputs()[0].shape]
        x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
        (outs[name],) = sess.run(None, {sess.get_inputs()[0].name: x})
    for name in ("api.onnx", "saved.onnx", "cli.onnx"):
        np.testing.assert_allclose(outs[name], outs[model.name], rtol=0.05, atol=0.05)
    # A data file name taken by a file that is not the output's own: a FileError naming
    # it, and nothing written.
    (deploy / "taken.onnx.data").write_bytes(b"not whittle's")
    with pytest.raises(whittle.FileError, match="taken.onnx.data"):
        result.save(deploy / "taken.onnx")
    assert not (deploy / "taken.onnx").exists()
    assert (deploy / "taken.onnx.data").read_bytes() == b"not whittle's"

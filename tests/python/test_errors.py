"""Bad input: a whittle.Error subclass with the CLI's one-line message, nothing written."""

from __future__ import annotations

import pytest
import whittle

from conftest import ROOT, run_cli

MODEL = ROOT / "fixtures/models/cnn_bn.ts.onnx"


def cli_message(cli, *args) -> str:
    r = run_cli(cli, *args)
    assert r.returncode == 1
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("error: ")
    return line[len("error: "):]


def test_garbage_model_file(cli, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage that is not protobuf\xff\xff")
    out = tmp_path / "out.onnx"
    with pytest.raises(whittle.ModelError) as e:
        whittle.optimize(bad, out)
    assert isinstance(e.value, ValueError)
    assert str(e.value) == cli_message(cli, "optimize", bad, "-o", out)
    assert not out.exists()
    with pytest.raises(whittle.ModelError, match="<bytes>"):
        whittle.optimize(bad.read_bytes())


def test_missing_file(cli, tmp_path):
    with pytest.raises(whittle.FileError) as e:
        whittle.optimize(tmp_path / "nope.onnx", tmp_path / "out.onnx")
    assert isinstance(e.value, OSError)
    assert str(e.value) == cli_message(cli, "optimize", tmp_path / "nope.onnx", "-o", tmp_path / "out.onnx")


def test_bad_settings_raise_and_write_nothing(cli, tmp_path):
    out = tmp_path / "out.onnx"
    out.write_bytes(b"keep me")
    with pytest.raises(whittle.SettingsError) as e:
        whittle.optimize(MODEL, out, passes=["no-such-pass"])
    assert isinstance(e.value, ValueError)
    assert str(e.value) == cli_message(cli, "optimize", MODEL, "-o", out, "--passes", "no-such-pass")
    assert out.read_bytes() == b"keep me"
    with pytest.raises(whittle.SettingsError, match="budget"):
        whittle.optimize(MODEL, quantize="int8-weights", budget="nonsense=3")
    with pytest.raises(whittle.SettingsError, match="quantize"):
        whittle.optimize(MODEL, quantize="int3")
    with pytest.raises(whittle.SettingsError, match="rule:rotary"):
        whittle.optimize(MODEL, enable="rule:rotary")
    with pytest.raises(whittle.SettingsError):
        whittle.dump(MODEL, "yaml")


def test_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError, match="fold_limt"):
        whittle.optimize(MODEL, fold_limt=3)


def test_unsupported_model_type():
    with pytest.raises(TypeError, match="expected a path, bytes"):
        whittle.optimize(12)


def test_proto_over_two_gib_is_refused_with_the_way_out():
    class Huge:
        graph = None

        def ByteSize(self):
            return 3 * 2**30

        def SerializeToString(self):
            raise AssertionError("must not serialize")

    with pytest.raises(whittle.ModelError, match="2 GiB.*pass the path"):
        whittle.optimize(Huge())


def test_native_error_kinds_map_to_classes():
    from whittle import _whittle
    from whittle._errors import reraise

    cases = {
        "settings": whittle.SettingsError,
        "model": whittle.ModelError,
        "io": whittle.FileError,
        "verification": whittle.VerificationError,
        "internal": whittle.InternalError,
        "error": whittle.Error,
    }
    for kind, cls in cases.items():
        with pytest.raises(cls) as e:
            reraise(_whittle.WhittleError(kind, "the message"))
        assert type(e.value) is cls and str(e.value) == "the message"


def test_output_over_the_input_is_refused(tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(MODEL.read_bytes())
    with pytest.raises(whittle.Error, match="output is the input file"):
        whittle.optimize(model, model)
    result = whittle.optimize(model)
    with pytest.raises(whittle.Error, match="output is the input file"):
        result.save(model)
    assert model.read_bytes() == MODEL.read_bytes()

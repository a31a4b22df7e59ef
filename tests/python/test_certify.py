"""whittle.certify: the certificate checker in process, returning what `whittle certify
--format json` prints; a certificate that does not describe the models is refused."""

from __future__ import annotations

import json

import whittle

from conftest import ROOT, run_cli


def test_certify_returns_what_the_cli_prints(cli, tmp_path):
    model = ROOT / "fixtures/models/mobile_block.ts.onnx"
    out, cert = tmp_path / "o.onnx", tmp_path / "o.cert"
    r = run_cli(cli, "-q", "optimize", model, "-o", out, "--certificate", cert)
    assert r.returncode == 0, r.stderr
    r = run_cli(cli, "certify", model, out, cert, "--format", "json", "--runtime", "tract")
    assert r.returncode == 0, r.stderr
    want = json.loads(r.stdout)
    got = whittle.certify(model, out, cert, runtime="tract")
    assert got == want
    assert got["rejected"] is None and got["replayed"]
    assert {v[3]["verdict"] for v in got["verdicts"]} <= {"proved-exact", "checked-by-evaluation"}


def test_certify_refuses_a_certificate_for_other_files(cli, tmp_path):
    model = ROOT / "fixtures/models/mobile_block.ts.onnx"
    other = ROOT / "fixtures/models/squeezenet1_1.ts.onnx"
    out, cert = tmp_path / "o.onnx", tmp_path / "o.cert"
    r = run_cli(cli, "-q", "optimize", model, "-o", out, "--certificate", cert)
    assert r.returncode == 0, r.stderr
    got = whittle.certify(other, out, cert, runtime="tract")
    assert "not the original model" in got["rejected"]["why"]

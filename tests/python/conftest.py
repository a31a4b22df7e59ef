"""Fixtures of the Python package's tests: the Rust CLI binary the API is compared with,
and the models shipped in fixtures/."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODELS = sorted((ROOT / "fixtures" / "models").glob("*.onnx")) + sorted(
    (ROOT / "fixtures" / "real").glob("*.onnx")
)
DATA = ROOT / "fixtures" / "data"


@pytest.fixture(scope="session")
def cli() -> Path:
    """The `whittle` binary `cargo test` built (scripts/test passes its path)."""
    path = os.environ.get("WHITTLE_BIN")
    if not path or not Path(path).is_file():
        pytest.fail("WHITTLE_BIN must name the whittle binary (scripts/test sets it)")
    return Path(path)


def run_cli(cli: Path, *args: object) -> subprocess.CompletedProcess:
    return subprocess.run([str(cli), *map(str, args)], capture_output=True, text=True)


def cli_optimize(cli: Path, model: Path, out: Path, *flags: object) -> bytes:
    """Runs `whittle optimize MODEL -o OUT FLAGS…` and returns the bytes written."""
    r = run_cli(cli, "-q", "optimize", model, "-o", out, *flags)
    assert r.returncode == 0, r.stderr
    return out.read_bytes()

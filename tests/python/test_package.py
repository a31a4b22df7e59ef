"""The installed package: the `whittle` command, threads, help and types."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import whittle

from conftest import ROOT, cli_optimize, run_cli

MODEL = ROOT / "fixtures/models/bert_tiny.ts.onnx"


def script() -> Path:
    path = Path(sys.executable).parent / "whittle"
    assert path.is_file(), "the wheel installs the whittle command beside python"
    return path


def test_command_is_the_cli(cli, tmp_path):
    want = cli_optimize(cli, MODEL, tmp_path / "bin.onnx")
    r = subprocess.run([script(), "-q", "optimize", MODEL, "-o", tmp_path / "py.onnx"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "py.onnx").read_bytes() == want
    for args in (["--version"], ["dump", MODEL, "--summary"], ["optimize", "--list-passes"]):
        a = subprocess.run([script(), *args], capture_output=True, text=True)
        b = run_cli(cli, *args)
        assert (a.returncode, a.stdout) == (b.returncode, b.stdout), args


def test_command_exit_codes_are_the_cli_codes(cli, tmp_path):
    cases = [
        ["optimize", tmp_path / "missing.onnx", "-o", tmp_path / "o.onnx"],  # error: 1
        ["optimize", "--no-such-flag"],  # usage: 2
        ["optimize", MODEL, "-o", tmp_path / "absent.onnx", "--check"],  # would create: 1
    ]
    for args in cases:
        a = subprocess.run([script(), *map(str, args)], capture_output=True, text=True)
        b = run_cli(cli, *args)
        assert a.returncode == b.returncode != 0, args
        assert a.stderr == b.stderr, args


def test_four_threads_at_once_give_the_same_bytes(cli, tmp_path):
    want = cli_optimize(cli, MODEL, tmp_path / "c.onnx")
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda _: whittle.optimize(MODEL, verify=True).to_bytes(), range(4)))
    assert all(g == want for g in got)


def test_the_gil_is_released_while_optimizing():
    ticks = 0
    stop = threading.Event()

    def count():
        nonlocal ticks
        while not stop.is_set():
            ticks += 1

    t = threading.Thread(target=count)
    t.start()
    time.sleep(0.05)
    try:
        before = ticks
        start = time.perf_counter()
        whittle.optimize(MODEL, verify=True)
        elapsed = time.perf_counter() - start
        during = ticks - before
    finally:
        stop.set()
        t.join()
    # Holding the GIL, the counter thread could not run at all during the call.
    assert elapsed > 0.02 and during > 1000, (elapsed, during)


def test_help_and_types():
    doc = whittle.optimize.__doc__ or ""
    for word in ("calibrate", "budget", "verify", "ONNXProgram", "Raises"):
        assert word in doc
    assert "fold_limit" in whittle.setting_names()
    pkg = Path(whittle.__file__).parent
    assert (pkg / "py.typed").is_file() and (pkg / "_whittle.pyi").is_file()
    assert issubclass(whittle.SettingsError, ValueError)
    assert whittle.__version__


def test_mypy_free_import_time():
    """Importing whittle does not import onnx, numpy or torch."""
    code = "import sys, whittle; print(sorted(m for m in ('onnx', 'numpy', 'torch') if m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"

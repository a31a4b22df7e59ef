"""Attributes as cheap as tensors: a tree-ensemble model whose trees live in node
attributes (scripts/tree_ensemble_model.py, the shape skl2onnx and onnxmltools export)
through whittle -O0 and -O2 beside a plain copy of the file; wall time and peak RSS of
each run, and the ratios. `just bench-attributes`."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def timed(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one child process."""
    start = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(cmd)}")
    return wall, usage.ru_maxrss * 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--whittle", required=True)
    ap.add_argument("--mb", type=float, default=195.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--peers", help="a folder holding the onnxsim and onnxslim commands (a venv's bin/)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "forest.onnx"
        subprocess.run([sys.executable, HERE / "tree_ensemble_model.py", model, "--mb", str(a.mb)], check=True)
        size = model.stat().st_size
        rows: dict[str, list[tuple[float, int]]] = {"copy": [], "-O0": [], "-O2": []}
        peers = {}
        if a.peers:
            for name in ("onnxsim", "onnxslim"):
                peers[name] = str(Path(a.peers) / name)
                rows[name] = []
        for _ in range(a.rounds):  # interleaved, so drift hits every row alike
            t0 = time.perf_counter()
            shutil.copyfile(model, Path(tmp) / "copy.onnx")
            rows["copy"].append((time.perf_counter() - t0, 0))
            for level in ("-O0", "-O2"):
                out = Path(tmp) / f"out{level}.onnx"
                rows[level].append(timed([a.whittle, "-q", "optimize", str(model), "-o", str(out), level]))
            for name, cmd in peers.items():
                rows[name].append(timed([cmd, str(model), str(Path(tmp) / f"{name}.onnx")]))
        best = {k: (min(w for w, _ in v), max(r for _, r in v)) for k, v in rows.items()}
        o0, o2 = best["-O0"], best["-O2"]
        print(f"tree ensemble, {size / 1e6:.0f} MB of attributes (best of {a.rounds}):")
        print(f"  copy  {best['copy'][0]:6.2f} s")
        for k in ("-O0", "-O2", *peers):
            w, r = best[k]
            print(f"  {k:<9} {w:6.2f} s  peak RSS {r / 1e6:6.0f} MB ({r / size:.2f}x the file)")
        print(f"  -O2 / -O0 time {o2[0] / o0[0]:.2f}x")
        for name in peers:
            print(f"  {name} / whittle -O2 time {best[name][0] / o2[0]:.2f}x")


if __name__ == "__main__":
    main()

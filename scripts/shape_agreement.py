"""Shape inference judged against onnx.shape_inference.

For one model: run `whittle dump --format json` (which infers types for every value)
and `onnx.shape_inference.infer_shapes(strict_mode=True, data_prop=True)` (falling back
to non-strict when strict mode rejects the model), then compare every main-graph value
onnx gives a tensor shape to:
  * agree    - same element type (when both know it), same rank, and every dim onnx knows
               (an integer, or a symbol other than its generated `unk__N`) is known to
               whittle too, integers equal;
  * disagree - a different element type, rank or integer dim;
  * missing  - onnx knows a shape or dim that whittle leaves unknown.
Also counted: dims whittle knows (integer or symbol) that onnx leaves unknown.
"""
import json
import subprocess

import onnx
import onnx.shape_inference

ELEM = {1: "f32", 2: "u8", 3: "i8", 4: "u16", 5: "i16", 6: "i32", 7: "i64", 8: "string",
        9: "bool", 10: "f16", 11: "f64", 12: "u32", 13: "u64", 14: "c64", 15: "c128", 16: "bf16"}


def onnx_types(model_path):
    m = onnx.load(str(model_path))
    try:
        inferred = onnx.shape_inference.infer_shapes(m, strict_mode=True, data_prop=True)
        mode = "strict"
    except Exception:
        inferred = onnx.shape_inference.infer_shapes(m, strict_mode=False, data_prop=True)
        mode = "lenient"
    g = inferred.graph
    types = {}
    for vi in list(g.value_info) + list(g.output):
        t = vi.type
        if t.WhichOneof("value") != "tensor_type":
            continue
        tt = t.tensor_type
        dims = None
        if tt.HasField("shape"):
            dims = []
            for d in tt.shape.dim:
                # A negative size is the "dynamic" some converters write (and onnx
                # propagates): unknown, as whittle reads it.
                if d.HasField("dim_value") and d.dim_value >= 0:
                    dims.append(d.dim_value)
                elif d.HasField("dim_param") and not d.dim_param.startswith("unk__"):
                    dims.append(("sym", d.dim_param))
                else:
                    dims.append(None)
        types[vi.name] = (ELEM.get(tt.elem_type), dims)
    return types, mode


def whittle_types(whittle, model_path):
    r = subprocess.run([whittle, "-q", "dump", "--format", "json", str(model_path)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"whittle dump exited {r.returncode}: {r.stderr.strip()[:200]}")
    g = json.loads(r.stdout)["graph"]
    types = {}
    for n in g["nodes"]:
        for o in n["outputs"]:
            if o["name"]:
                types[o["name"]] = (o["elem"], o["dims"])
    for o in g["outputs"] + g["inputs"] + g["initializers"]:
        types.setdefault(o["name"], (o["elem"], o["dims"]))
    return types


def compare(ours, theirs):
    """(verdict, detail) for one value."""
    (oe, od), (te, td) = ours, theirs
    if td is None:
        return "skip", ""
    if od is None and oe is None:
        return "missing", "whittle knows nothing"
    if oe and te and oe != te:
        return "disagree", f"elem {oe} vs onnx {te}"
    if od is None:
        return "missing", "rank unknown to whittle"
    if len(od) != len(td):
        return "disagree", f"rank {len(od)} vs onnx {len(td)}"
    verdict = "agree"
    for a, b in zip(od, td):
        if isinstance(b, int) and isinstance(a, int) and a != b:
            return "disagree", f"dims {od} vs onnx {td}"
        if b is not None and a is None:
            verdict = "missing"
    return verdict, (f"dims {od} vs onnx {td}" if verdict != "agree" else "")


def agreement(whittle, model_path):
    theirs, mode = onnx_types(model_path)
    ours = whittle_types(whittle, model_path)
    stats = {"agree": 0, "disagree": 0, "missing": 0, "more": 0}
    problems = []
    for name, t in theirs.items():
        o = ours.get(name, (None, None))
        verdict, detail = compare(o, t)
        if verdict == "skip":
            continue
        stats[verdict] += 1
        if verdict != "agree":
            problems.append((name, verdict, detail))
        if o[1] is not None and t[1] is not None and len(o[1]) == len(t[1]):
            stats["more"] += sum(1 for a, b in zip(o[1], t[1]) if b is None and a is not None)
    return stats, problems, mode

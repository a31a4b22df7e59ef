"""The in-process API: ``optimize``, ``dump``, ``summary`` and ``verify`` over the same
Rust code the ``whittle`` command runs (the GIL is released while it works)."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union

from . import _whittle
from ._errors import Error, reraise
from ._inputs import PathLike, Scratch, model_path, model_source, tensors_path

#: Dims of an input: sizes, symbol names, or "?" for unknown.
Shapes = Mapping[str, Sequence[Union[int, str]]]
ListOrComma = Union[str, Sequence[str]]

_KEYS = frozenset(_whittle.setting_keys())


class Result:
    """What :func:`optimize` made: the model, the report, and a way to save it."""

    def __init__(self, native: Any, output: Optional[str], scratch: Scratch) -> None:
        self._native = native
        self._scratch = scratch  # keeps an exported program's files while needed
        #: Where the model was written (``output=``), else None.
        self.output = output
        #: The run's report as plain data: the CLI's ``--report`` JSON (nodes and op
        #: counts before/after, per-pass rewrite counts, every rewrite, per-layer notes
        #: of lossy steps, verification outcome).
        self.report: Dict[str, Any] = json.loads(native.report_json())

    def to_bytes(self) -> bytes:
        """The model encoded as one ONNX buffer (fails past protobuf's 2 GiB limit: use
        :meth:`save`)."""
        try:
            return self._native.encode()
        except _whittle.WhittleError as e:
            reraise(e)

    @property
    def model(self) -> Any:
        """The model as an ``onnx.ModelProto`` when onnx is installed, else bytes."""
        data = self.to_bytes()
        try:
            import onnx
        except ImportError:
            return data
        return onnx.load_from_string(data)

    def save(self, path: PathLike) -> None:
        """Writes the model to ``path`` as ``whittle optimize -o PATH`` does: atomically,
        with large tensors in ``PATH.data`` when the settings or the size ask for it."""
        try:
            self._native.save(os.fspath(path))
        except _whittle.WhittleError as e:
            reraise(e)

    def __repr__(self) -> str:
        b, a = self.report["before"]["nodes"], self.report["after"]["nodes"]
        return f"<whittle.Result {b} -> {a} nodes, output={self.output!r}>"


def _list(x: Optional[ListOrComma]) -> Optional[List[str]]:
    if x is None:
        return None
    return [s for s in x.split(",") if s] if isinstance(x, str) else list(x)


def _this_process_ort(table: Dict[str, Any]) -> None:
    """With ``runtime="ort"`` or ``"auto"`` and no ``ort_lib``: when this process has
    imported ``onnxruntime``, whittle loads that same library (one ONNX Runtime per
    process), not whatever ``python3`` on PATH would find."""
    ort = sys.modules.get("onnxruntime")
    if table.get("runtime") in ("ort", "auto") and "ort-lib" not in table and ort is not None:
        where = getattr(ort, "__file__", None)
        if where:
            table["ort-lib"] = os.path.join(os.path.dirname(where), "capi")


def _settings(named: Dict[str, Any], extra: Dict[str, Any]) -> Dict[str, Any]:
    """The settings table (``whittle.toml`` keys) for keyword arguments."""
    unknown = [k for k in extra if k.replace("_", "-") not in _KEYS]
    if unknown:
        valid = ", ".join(sorted(k.replace("-", "_") for k in _KEYS))
        raise TypeError(f"optimize() got unexpected keyword argument(s) {unknown}; settings: {valid}")
    table: Dict[str, Any] = {}
    for k, v in {**named, **extra}.items():
        if v is None:
            continue
        key = k.replace("_", "-")
        if key in ("passes", "disable", "decompose", "prune", "exclude", "enable", "ops"):
            v = _list(v)
        if key == "input-shapes":
            v = {name: list(dims) for name, dims in v.items()}
        table[key] = v
    return table


def optimize(
    model: Any,
    output: Optional[PathLike] = None,
    *,
    level: Optional[int] = None,
    passes: Optional[ListOrComma] = None,
    disable: Optional[ListOrComma] = None,
    input_shapes: Optional[Shapes] = None,
    quantize: Optional[str] = None,
    calibrate: Any = None,
    budget: Optional[str] = None,
    decompose: Optional[ListOrComma] = None,
    prune: Optional[ListOrComma] = None,
    opset: Optional[int] = None,
    verify: Union[bool, str] = False,
    config: Union[None, bool, PathLike] = None,
    verify_inputs: Any = None,
    runs: Optional[int] = None,
    seed: Optional[int] = None,
    input_range: Optional[Mapping[str, Sequence[int]]] = None,
    rtol: Optional[float] = None,
    atol: Optional[float] = None,
    min_cosine: Optional[float] = None,
    **settings: Any,
) -> Result:
    """Optimizes an ONNX model, as ``whittle optimize`` does, in this process.

    Args:
        model: a path, ``bytes``, an ``onnx.ModelProto`` or a ``torch.onnx.ONNXProgram``.
            Models over 2 GiB: give a path (and ``output``).
        output: where to write the result (external data beside it when needed); without
            it the result stays in memory (``Result.model``, ``Result.save``).
        level: 0 (re-encode only), 1 (clean-up and folding) or 2 (also fusion; the
            default, unless a config says otherwise).
        passes: exactly these passes (names or one comma-separated string).
        disable: passes to skip.
        input_shapes: fixed dims per input, e.g. ``{"input": [1, 3, 224, 224]}``
            (symbols as strings bind everywhere).
        quantize: ``"int8-weights"``, ``"int8-dynamic"``, ``"int8-static"``, ``"int4"``,
            ``"fp16"`` or ``"fp16-weights"``.
        calibrate: calibration data: a path (``.npy``, ``.npz``, ``test_data_set_N``
            folders), a NumPy array (single-input models), a dict of arrays by input
            name, or a list of such dicts (several sets).
        budget: how much error lossy steps may cost: ``"top1=0.99"``, ``"cosine=0.999"``,
            ``"tol=X"`` or ``"exact"``.
        decompose: layers to factor: ``"conv"``, ``"gemm"``, ``"spatial"``.
        prune: channels to remove (with a least-squares refit of the layer reading
            them): ``"conv"`` (filters), ``"dense"`` (2-D dense neurons), ``"ffn"``
            (transformer FFN neurons), ``"heads"`` (attention heads).
        opset: raise the default-domain opset to this version first.
        verify: ``True`` checks the result against the original (in tract, or ONNX
            Runtime with ``runtime="ort"``) and rolls back
            rewrites that change outputs; ``"strict"`` fails instead (and fails when the
            budget is missed).
        config: a ``whittle.toml``; ``None`` uses the one beside a model path (as the
            CLI does); ``False`` uses none.
        verify_inputs: inputs for ``verify`` (as ``calibrate``); default: ``runs``
            random sets from ``seed``, integer inputs in ``input_range``
            (``{"ids": [0, 1000]}``).
        rtol, atol, min_cosine: when outputs count as equal under ``verify``.
        **settings: every other setting of ``whittle.toml`` (``-`` as ``_``):
            ``fold_limit``, ``exclude``, ``enable``, ``external_data_threshold``, ``per_tensor``,
            ``min_elements``, ``min_gain``, ``measure``, ``calibration``, ``full_range``,
            ``block_size``, ``int4_format``, ``ops``, ``int8_form``, ``act_scale``,
            ``runtime`` (``"tract"``, ``"ort"`` or ``"auto"``: the runtime that verifies,
            judges and calibrates; ``"ort"`` uses the ``onnxruntime`` this process imported,
            if any), ``ort_lib``, ``threads``.

    Returns:
        a :class:`Result`: ``.model``, ``.report``, ``.save(path)``, ``.to_bytes()``.

    Raises:
        SettingsError, ModelError, FileError, VerificationError (all ``whittle.Error``;
        the first two are also ``ValueError``). A failed run writes nothing.
    """
    scratch = Scratch()
    named = dict(level=level, passes=passes, disable=disable, input_shapes=input_shapes,
                 quantize=quantize, budget=budget, decompose=decompose, prune=prune,
                 opset=opset)
    table = _settings(named, settings)
    _this_process_ort(table)
    if calibrate is not None:
        table["calibrate"] = tensors_path(calibrate, "calibrate", scratch)
    spec: Dict[str, Any] = {"settings": table}
    if config is not None:
        spec["config"] = os.fspath(config) if config is not True else None
    if verify:
        spec.update(verify="strict" if verify == "strict" else "on", runs=runs, seed=seed,
                    rtol=rtol, atol=atol, min_cosine=min_cosine)
        spec["input_range"] = [f"{k}={lo},{hi}" for k, (lo, hi) in (input_range or {}).items()]
        if verify_inputs is not None:
            spec["inputs"] = tensors_path(verify_inputs, "inputs", scratch)
    src, label = model_source(model, scratch)
    out = None if output is None else os.fspath(output)
    try:
        native = _whittle.optimize(src, json.dumps(spec), out, label)
    except _whittle.WhittleError as e:
        scratch.close()
        reraise(e)
    return Result(native, out, scratch)


def dump(
    model: Any,
    format: str = "text",
    *,
    summary: bool = False,
    cost: bool = False,
    input_shapes: Optional[Shapes] = None,
    full: bool = False,
) -> Any:
    """Describes a model, as ``whittle dump`` does.

    ``format="text"`` gives the typed listing (``full=True``: every constant in full, so
    it parses back), ``"dot"`` Graphviz, ``"json"`` the CLI's JSON as plain data.
    ``summary=True``: ops, parameters, bytes, MACs and FLOPs, dynamic dims (reads no
    weights); ``cost=True``: per-node MACs, parameters and output bytes.
    """
    scratch = Scratch()
    try:
        args = [model_path(model, scratch), "--format", format]
        args += ["--summary"] * summary + ["--cost"] * cost + ["--full"] * full
        args += _shape_args(input_shapes)
        text = _whittle.dump(args)
    except _whittle.WhittleError as e:
        reraise(e)
    finally:
        scratch.close()
    return json.loads(text) if format == "json" else text


def summary(model: Any, input_shapes: Optional[Shapes] = None) -> Dict[str, Any]:
    """A model's totals as plain data (``whittle dump --summary --format json``): op
    counts, parameters, bytes, MACs and FLOPs (polynomials in the dynamic dims), inputs
    and outputs."""
    return dump(model, "json", summary=True, input_shapes=input_shapes)


def verify(
    a: Any,
    b: Any,
    inputs: Any = None,
    *,
    runs: int = 3,
    seed: int = 0,
    input_shapes: Optional[Shapes] = None,
    input_range: Optional[Mapping[str, Sequence[int]]] = None,
    rtol: float = 1e-4,
    atol: float = 1e-5,
    min_cosine: Optional[float] = None,
    runtime: str = "tract",
    ort_lib: Optional[PathLike] = None,
    threads: Optional[int] = None,
) -> Dict[str, Any]:
    """Runs two models on the same inputs and compares every output, as ``whittle verify
    A B --format json`` does. Returns its JSON as plain data; ``result["verified"]`` says
    whether all outputs are within tolerance.

    ``inputs``: as :func:`optimize`'s ``calibrate``; default ``runs`` random sets.
    ``runtime``: ``"tract"``, ``"ort"`` (ONNX Runtime in process: the ``onnxruntime`` this
    process imported, else ``ort_lib``, ``ORT_DYLIB_PATH`` or the package ``python3``
    finds) or ``"auto"``.
    """
    scratch = Scratch()
    try:
        args = [model_path(a, scratch), model_path(b, scratch), "--format", "json",
                "--runs", str(runs), "--seed", str(seed), "--rtol", repr(rtol),
                "--atol", repr(atol)]
        if min_cosine is not None:
            args += ["--min-cosine", repr(min_cosine)]
        if inputs is not None:
            args += ["--inputs", tensors_path(inputs, "inputs", scratch)]
        for k, (lo, hi) in (input_range or {}).items():
            args += ["--input-range", f"{k}={lo},{hi}"]
        args += _shape_args(input_shapes)
        args += _runtime_args(runtime, ort_lib, threads)
        text, _ = _whittle.verify(args)
    except _whittle.WhittleError as e:
        reraise(e)
    finally:
        scratch.close()
    return json.loads(text)


def certify(
    original: PathLike,
    optimized: PathLike,
    certificate: Optional[PathLike] = None,
    *,
    inputs: Any = None,
    input_shapes: Optional[Shapes] = None,
    runtime: str = "auto",
    ort_lib: Optional[PathLike] = None,
    threads: Optional[int] = None,
) -> Dict[str, Any]:
    """Checks a certificate that ``whittle optimize --certificate`` wrote, as ``whittle
    certify ORIGINAL OPTIMIZED CERT --format json`` does: the logged rewrites are replayed
    on ``original`` and must give exactly ``optimized``; each rewrite gets a verdict
    (``proved-exact``, ``checked-by-evaluation``, ``lossy`` or ``not-certified`` with its
    reason). Returns that JSON as plain data; ``result["rejected"]`` is None when the
    certificate holds. Without ``certificate`` the two models are compared structurally.

    ``inputs``: what the original is run on to feed the regions that are evaluated (as
    :func:`optimize`'s ``calibrate``). ``runtime``: where they are evaluated; ONNX Runtime
    (``"auto"`` finds it) is independent of the tract that folded whittle's constants.
    """
    scratch = Scratch()
    try:
        args = [os.fspath(original), os.fspath(optimized)]
        if certificate is not None:
            args.append(os.fspath(certificate))
        args += ["--format", "json"]
        if inputs is not None:
            args += ["--inputs", tensors_path(inputs, "inputs", scratch)]
        args += _shape_args(input_shapes)
        args += _runtime_args(runtime, ort_lib, threads)
        text, _ = _whittle.certify(args)
    except _whittle.WhittleError as e:
        reraise(e)
    finally:
        scratch.close()
    return json.loads(text)


def tune(
    model: Any,
    output: PathLike,
    budget: str,
    *,
    calibrate: Any = None,
    runtime: str = "tract",
    ort_lib: Optional[PathLike] = None,
    threads: Optional[int] = None,
    input_shapes: Optional[Shapes] = None,
    holdout: Optional[float] = None,
    objective: str = "latency",
    time_limit: Union[None, float, str] = None,
    cache: Union[None, bool, PathLike] = None,
    html: Optional[PathLike] = None,
) -> Dict[str, Any]:
    """Finds the fastest (``objective="size"``: smallest) model within ``budget``
    (``"cosine=X"`` or ``"top1=X"``), as ``whittle tune`` does, writes it to ``output``
    and returns the report ``whittle tune --format json`` prints: every plan measured
    (latency, bytes, held-out accuracy and its bound, whether the budget held), the Pareto
    ``front``, the ``chosen`` index (None when no plan met the budget, and then nothing is
    written) and the ``toml`` that reproduces the choice with :func:`optimize`.

    ``calibrate``: as :func:`optimize`'s (the held-out part judges every plan).
    ``time_limit``: seconds or a duration like ``"10m"``. ``cache``: a folder, ``False``
    for none, or None for the default (``~/.cache/whittle/tune``).
    """
    scratch = Scratch()
    try:
        args = [model_path(model, scratch), "-o", os.fspath(output), "--budget", budget,
                "--objective", objective]
        if calibrate is not None:
            args += ["--calibrate", tensors_path(calibrate, "calibrate", scratch)]
        if holdout is not None:
            args += ["--holdout", repr(holdout)]
        if time_limit is not None:
            limit = f"{time_limit}s" if isinstance(time_limit, (int, float)) else time_limit
            args += ["--time-limit", limit]
        if cache is False:
            args += ["--no-cache"]
        elif cache is not None and cache is not True:
            args += ["--cache", os.fspath(cache)]
        if html is not None:
            args += ["--html", os.fspath(html)]
        args += _shape_args(input_shapes)
        args += _runtime_args(runtime, ort_lib, threads)
        text = _whittle.tune(args)
    except _whittle.WhittleError as e:
        reraise(e)
    finally:
        scratch.close()
    return json.loads(text)


def _runtime_args(runtime: str, ort_lib: Optional[PathLike], threads: Optional[int]) -> List[str]:
    """The runtime flags of verify and tune: ONNX Runtime is the library this process
    imported when it did (see :func:`_this_process_ort`)."""
    rt: Dict[str, Any] = {"runtime": runtime}
    if ort_lib is not None:
        rt["ort-lib"] = os.fspath(ort_lib)
    _this_process_ort(rt)
    args = ["--runtime", runtime]
    if "ort-lib" in rt:
        args += ["--ort-lib", rt["ort-lib"]]
    if threads is not None:
        args += ["--threads", str(threads)]
    return args


def _shape_args(shapes: Optional[Shapes]) -> List[str]:
    out: List[str] = []
    for name, dims in (shapes or {}).items():
        out += ["--input-shape", f"{name}=" + ",".join(str(d) for d in dims)]
    return out


def setting_names() -> Iterable[str]:
    """The keyword names :func:`optimize` takes for ``whittle.toml`` settings."""
    return sorted(k.replace("-", "_") for k in _KEYS)


__all__ = ["Error", "Result", "dump", "optimize", "setting_names", "summary", "tune", "verify"]

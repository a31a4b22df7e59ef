"""Models and tensors as Python holds them, turned into what the native module reads: a
path, or encoded bytes; calibration and test inputs as NumPy arrays written to files the
CLI's loaders read (so both go through the same code)."""

from __future__ import annotations

import os
import tempfile
from typing import Any, Mapping, Sequence, Union

from ._errors import ModelError, SettingsError

PathLike = Union[str, "os.PathLike[str]"]

#: Protobuf cannot encode a message of 2 GiB or more.
PROTO_LIMIT = 2**31 - 1


def is_path(x: Any) -> bool:
    return isinstance(x, (str, os.PathLike))


def is_onnx_program(x: Any) -> bool:
    """A ``torch.onnx.ONNXProgram``, recognised without importing torch."""
    t = type(x)
    return t.__name__ == "ONNXProgram" and t.__module__.startswith("torch")


def model_source(model: Any, scratch: Scratch) -> tuple[Union[str, bytes], str]:
    """``(path or bytes, label)`` for a model given as a path, bytes, an
    ``onnx.ModelProto`` or a ``torch.onnx.ONNXProgram``."""
    if is_path(model):
        return os.fspath(model), os.fspath(model)
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model), "<bytes>"
    if is_onnx_program(model):
        return program_source(model, scratch)
    if hasattr(model, "SerializeToString") and hasattr(model, "graph"):
        return proto_bytes(model, "<ModelProto>"), "<ModelProto>"
    raise TypeError(
        "model: expected a path, bytes, an onnx.ModelProto or a torch.onnx.ONNXProgram, "
        f"got {type(model).__name__}"
    )


def proto_bytes(proto: Any, label: str) -> bytes:
    size = proto.ByteSize()
    if size > PROTO_LIMIT:
        raise ModelError(
            f"{label}: {size} bytes, over protobuf's 2 GiB limit: a ModelProto this large "
            "cannot be passed in memory; save it with external data "
            "(onnx.save(model, path, save_as_external_data=True)) and pass the path "
            "(and give output= a path)"
        )
    return proto.SerializeToString()


def program_source(program: Any, scratch: Scratch) -> tuple[Union[str, bytes], str]:
    """An exported program: encoded in memory, or past 2 GiB saved to a scratch file
    with its weights as external data."""
    proto = program.model_proto
    if proto.ByteSize() <= PROTO_LIMIT:
        return proto.SerializeToString(), "<ONNXProgram>"
    path = os.path.join(scratch.dir(), "model.onnx")
    program.save(path, external_data=True)
    return path, path


def model_path(model: Any, scratch: Scratch) -> str:
    """A file holding ``model`` (itself when it is a path)."""
    src, _ = model_source(model, scratch)
    if isinstance(src, str):
        return src
    path = os.path.join(scratch.dir(), f"model{scratch.next()}.onnx")
    with open(path, "wb") as f:
        f.write(src)
    return path


def tensors_path(data: Any, what: str, scratch: Scratch) -> str:
    """A file the CLI's input loader reads: a path as given; one array as ``.npy``; a
    dict of arrays (by input name) as ``.npz``; a list of dicts as a folder of
    ``test_data_set_N`` (several sets; needs onnx)."""
    if is_path(data):
        return os.fspath(data)
    import numpy as np

    if isinstance(data, Mapping):
        path = os.path.join(scratch.dir(), f"{what}{scratch.next()}.npz")
        np.savez(path, **{k: np.asarray(v) for k, v in data.items()})
        return path
    if isinstance(data, Sequence) and data and isinstance(data[0], Mapping):
        return test_sets(data, what, scratch)
    if hasattr(data, "__array__"):
        path = os.path.join(scratch.dir(), f"{what}{scratch.next()}.npy")
        np.save(path, np.asarray(data))
        return path
    raise SettingsError(
        f"{what}: expected a path, a NumPy array, a dict of arrays or a list of dicts, "
        f"got {type(data).__name__}"
    )


def test_sets(sets: Sequence[Mapping[str, Any]], what: str, scratch: Scratch) -> str:
    import numpy as np

    try:
        from onnx import numpy_helper
    except ImportError:
        raise SettingsError(
            f"{what}: several input sets need the onnx package (pip install onnx); "
            "or give one dict of arrays"
        ) from None
    root = os.path.join(scratch.dir(), f"{what}{scratch.next()}")
    for k, s in enumerate(sets):
        folder = os.path.join(root, f"test_data_set_{k}")
        os.makedirs(folder)
        for j, (name, array) in enumerate(s.items()):
            t = numpy_helper.from_array(np.asarray(array), name)
            with open(os.path.join(folder, f"input_{j}.pb"), "wb") as f:
                f.write(t.SerializeToString())
    return root


class Scratch:
    """A temporary folder made on first use and removed with this object."""

    def __init__(self) -> None:
        self._tmp: Union[tempfile.TemporaryDirectory[str], None] = None
        self._n = 0

    def dir(self) -> str:
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="whittle-")
        return self._tmp.name

    def next(self) -> int:
        self._n += 1
        return self._n

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

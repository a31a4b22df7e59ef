"""whittle: make exported ONNX models smaller and faster without changing their answers.

The same engine as the ``whittle`` command (installed with this package), in process::

    import whittle
    result = whittle.optimize("model.onnx", "model.opt.onnx")
    print(result.report["after"]["nodes"])

:func:`optimize` takes a path, bytes, an ``onnx.ModelProto`` or a
``torch.onnx.ONNXProgram``; :func:`dump`, :func:`summary` and :func:`verify` describe and
compare models; :func:`tune` finds the fastest model within an accuracy budget;
:func:`certify` checks the certificate of an optimization. Failures raise :class:`Error`
subclasses with the CLI's message.
"""

from ._api import Result, certify, dump, optimize, setting_names, summary, tune, verify
from ._errors import (
    Error,
    FileError,
    InternalError,
    ModelError,
    SettingsError,
    VerificationError,
)
from ._whittle import __version__

__all__ = [
    "Error",
    "FileError",
    "InternalError",
    "ModelError",
    "Result",
    "SettingsError",
    "VerificationError",
    "__version__",
    "certify",
    "dump",
    "optimize",
    "setting_names",
    "summary",
    "tune",
    "verify",
]

"""The ``whittle`` command installed with the package: the Rust CLI, run in this
process with the same arguments, output and exit status as the binary."""

from __future__ import annotations

import signal
import sys

from . import _whittle


def main() -> None:
    """Entry point of the ``whittle`` console script."""
    # As the binary: Ctrl-C stops the work at once, and `whittle dump m.onnx | head`
    # ends quietly when head stops reading.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.stdout.flush()
    try:
        code = _whittle.cli_main(["whittle", *sys.argv[1:]])
    except _whittle.WhittleError as e:
        # Only a panic gets here (the CLI reports its own errors); the binary exits 101.
        print(f"error: {e.args[-1]}", file=sys.stderr)
        code = 101
    sys.exit(code)


if __name__ == "__main__":
    main()

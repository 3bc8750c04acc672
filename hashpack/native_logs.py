"""Keep native libraries' log lines off a command's output.

Why: LiteRT prints ``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`` straight to file
descriptor 2 from C++ whenever an interpreter is created, so it lands in the middle of
``hashpack validate``'s progress bar and table. Python-level ``sys.stderr`` writes (progress bar,
warnings, errors) stay visible; only what native code writes to fd 2 goes to /dev/null.
``--debug`` keeps it.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def native_stderr_silenced(enabled: bool = True) -> Iterator[None]:
    """Point fd 2 at /dev/null while the block runs; ``sys.stderr`` keeps the real stream."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 at all: nothing to silence
        yield
        return
    try:
        python_on_fd2 = sys.stderr.fileno() == 2
    except (AttributeError, ValueError, io.UnsupportedOperation):  # replaced (tests, CliRunner)
        python_on_fd2 = False
    original = sys.stderr
    if python_on_fd2:
        sys.stderr = open(os.dup(saved), "w", buffering=1, encoding=original.encoding, errors="replace")  # noqa: SIM115
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        yield
    finally:
        if python_on_fd2:
            sys.stderr.flush()
            sys.stderr.close()
            sys.stderr = original
        os.dup2(saved, 2)
        os.close(saved)

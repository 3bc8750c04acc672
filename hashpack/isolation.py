"""Run an ONNX Runtime or LiteRT model in a child process, so a hostile file cannot crash hashpack.

Why: both runtimes are C++ libraries that trust parts of the file they load. .tflite files that
pass the flatbuffer verifier but lie about tensor types, shapes or indices make LiteRT segfault
in ``allocate_tensors`` or ``invoke`` (``benchmarks/fuzz_exports.py`` counts how often). A file
the user names is therefore loaded and run in a child process: if the child dies, is killed for
using too much memory or stops answering, the parent raises :class:`BackendCrashed` saying so,
and carries on.

Protocol, both directions, no pickle: a 4-byte little-endian header length, a JSON header, then
``nbytes`` bytes of raw little-endian data: float32, or int32 (token ids) when the header says
``"dtype": "int32"``. The parent starts
``python -m hashpack.isolation KIND PATH MAX_MEMORY [NUM_THREADS]``; the child caps its own
address space at MAX_MEMORY bytes (``RLIMIT_AS``) before importing a runtime, answers ``ready`` or ``error``
once loaded, then one ``output`` or ``error`` per ``run`` request, and exits at end of input.
The child speaks on a private copy of its stdout; fd 1 is pointed at stderr so that native
libraries printing to stdout cannot corrupt the stream. POSIX only (``select`` on the pipe).
"""

from __future__ import annotations

import json
import os
import select
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

try:
    import resource
except ImportError:  # pragma: no cover - not POSIX: no address-space cap
    resource = None  # type: ignore[assignment]

__all__ = [
    "RUNTIME_NAMES",
    "BackendCrashed",
    "BackendRejected",
    "IsolatedRunner",
    "memory_limit",
    "short_error",
]

RUNTIME_NAMES = {"onnx": "ONNX Runtime", "tflite": "LiteRT"}

MAX_HEADER_BYTES = 64 * 1024
MAX_ARRAY_BYTES = 2**31
MAX_RANK = 8
DEFAULT_TIMEOUT = 600.0  # seconds for loading, and for each run
_LENGTH = struct.Struct("<I")


class BackendCrashed(RuntimeError):
    """The child process running a model died, ran out of memory or stopped answering.

    ``cause``: the signal's name (e.g. ``"SIGSEGV"``), ``"exit"``, ``"timeout"`` or ``"malformed"``.
    """

    def __init__(self, message: str, cause: str) -> None:
        super().__init__(message)
        self.cause = cause


class BackendRejected(Exception):
    """The runtime raised an error in the child: it rejected the file or the input (not a crash)."""


def memory_limit(file_size: int) -> int:
    """Address-space cap of a child, in bytes: 4 GiB plus 64 bytes per byte of the file.

    Generous for any honest model (a runtime's own footprint is well under 2 GiB; 64× covers
    weights decompressed from a compact file), small enough that a file declaring a huge tensor
    fails fast instead of swapping the machine.
    """
    return 4 * 2**30 + 64 * max(0, int(file_size))


# ------------------------------------------------------------------------------------ framing

_WIRE_DTYPES = {"float32": "<f4", "int32": "<i4"}  # what crosses the pipe: model inputs and outputs


def _encode(header: dict[str, Any], array: np.ndarray | None = None) -> bytes:
    payload = b""
    if array is not None:
        dtype = "int32" if np.issubdtype(array.dtype, np.integer) else "float32"
        array = np.ascontiguousarray(array, dtype=_WIRE_DTYPES[dtype])
        header = {**header, "shape": list(array.shape), "nbytes": array.nbytes, "dtype": dtype}
        payload = array.tobytes()
    text = json.dumps(header).encode()
    return _LENGTH.pack(len(text)) + text + payload


def _decode_array(header: dict[str, Any], payload: bytes) -> np.ndarray:
    shape = header.get("shape")
    dtype = header.get("dtype", "float32")
    if (
        dtype not in _WIRE_DTYPES
        or not isinstance(shape, list)
        or len(shape) > MAX_RANK
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
        or int(np.prod(shape, dtype=np.int64)) * 4 != len(payload)
    ):
        raise ValueError(f"array header {header!r} does not match {len(payload)} data bytes")
    return np.frombuffer(payload, dtype=_WIRE_DTYPES[dtype]).reshape(shape).astype(dtype)


class _Reader:
    """Reads framed messages from a pipe, with a deadline per message."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.fd = stream.fileno()

    def read(self, deadline: float | None) -> tuple[dict[str, Any], bytes] | None:
        prefix = self._exact(_LENGTH.size, deadline, allow_eof=True)
        if prefix is None:
            return None
        (length,) = _LENGTH.unpack(prefix)
        if length > MAX_HEADER_BYTES:
            raise ValueError(f"message header of {length} bytes exceeds {MAX_HEADER_BYTES}")
        header = json.loads(self._exact(length, deadline) or b"")
        if not isinstance(header, dict):
            raise ValueError("message header is not a JSON object")
        nbytes = header.get("nbytes", 0)
        if not isinstance(nbytes, int) or not 0 <= nbytes <= MAX_ARRAY_BYTES:
            raise ValueError(f"message declares {nbytes!r} data bytes")
        return header, (self._exact(nbytes, deadline) or b"") if nbytes else b""

    def _exact(self, size: int, deadline: float | None, allow_eof: bool = False) -> bytes | None:
        chunks, remaining = [], size
        while remaining:
            if deadline is not None:
                timeout = deadline - time.monotonic()
                if timeout <= 0 or not select.select([self.fd], [], [], timeout)[0]:
                    raise TimeoutError
            chunk = os.read(self.fd, min(remaining, 1 << 20))
            if not chunk:
                if allow_eof and remaining == size:
                    return None
                raise EOFError
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)


# ------------------------------------------------------------------------------------- parent


class IsolatedRunner:
    """``run(x) -> y`` for an ONNX or TFLite file, executed in a child process.

    Raises :class:`BackendCrashed` when the child dies (the message names the signal, e.g.
    SIGSEGV, and the last line the child wrote to stderr), exceeds ``max_memory`` (default
    :func:`memory_limit`) or does not answer within ``timeout`` seconds, and
    :class:`BackendRejected` with the child's one-line message when the runtime raises an error.
    """

    def __init__(
        self,
        kind: str,
        path: str | os.PathLike[str],
        *,
        num_threads: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_memory: int | None = None,
    ) -> None:
        self.kind, self.path, self.timeout = kind, Path(path), timeout
        limit = memory_limit(self.path.stat().st_size) if max_memory is None else max_memory
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close())
        command: Sequence[str] = [
            sys.executable,
            "-m",
            "hashpack.isolation",
            kind,
            str(self.path),
            str(limit),
        ]
        if num_threads:
            command = [*command, str(num_threads)]
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr
        )
        self._reader = _Reader(self._process.stdout)  # type: ignore[arg-type]
        try:
            header, _ = self._receive("loading")
        except BaseException:
            self.close()
            raise
        if header.get("status") == "error":
            self.close()
            raise BackendRejected(str(header.get("message", "unknown error")))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        try:
            self._process.stdin.write(_encode({"request": "run"}, x))  # type: ignore[union-attr]
            self._process.stdin.flush()  # type: ignore[union-attr]
        except (BrokenPipeError, OSError):
            pass  # the child died: _receive says how
        header, payload = self._receive("running")
        if header.get("status") == "error":
            raise BackendRejected(str(header.get("message", "unknown error")))
        try:
            return _decode_array(header, payload)
        except ValueError as exc:
            raise BackendCrashed(f"{self._what()} sent a malformed answer: {exc}", "malformed") from None

    def close(self) -> None:
        """Stop the child (end of input, then kill if it lingers) and release its pipes."""
        process = self._process
        if process.poll() is None:
            try:
                process.stdin.close()  # type: ignore[union-attr]
                process.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                process.kill()
                process.wait()
        for stream in (process.stdin, process.stdout, self._stderr):
            if stream is not None and not stream.closed:
                stream.close()

    def __enter__(self) -> IsolatedRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _what(self) -> str:
        return f"{self.path}: {RUNTIME_NAMES.get(self.kind, self.kind)}"

    def _receive(self, doing: str) -> tuple[dict[str, Any], bytes]:
        try:
            message = self._reader.read(time.monotonic() + self.timeout)
        except TimeoutError:
            self._process.kill()
            self._process.wait()
            raise BackendCrashed(
                f"{self._what()} did not finish {doing} within {self.timeout:g} s", "timeout"
            ) from None
        except (EOFError, ValueError, OSError):
            message = None
        if message is None:
            cause, how = self._death()
            raise BackendCrashed(f"{self._what()} crashed while {doing} ({how})", cause)
        return message

    def _death(self) -> tuple[str, str]:
        """(cause, description) of the child's end: the signal's name or "exit", and a phrase."""
        code = self._process.wait()
        if code < 0:
            try:
                cause = signal.Signals(-code).name
            except ValueError:
                cause = f"signal {-code}"
            how = f"killed by {cause}"
        else:
            cause, how = "exit", f"exit code {code}"
        self._stderr.seek(0)
        lines = [
            line.strip()
            for line in self._stderr.read()[-4096:].decode(errors="replace").splitlines()
            if line.strip() and not line.startswith("INFO:")
        ]
        if lines and ("MemoryError" in lines[-1] or "bad_alloc" in lines[-1]):
            how += ", out of memory"
        return cause, f"{how}; last message: {lines[-1][:200]}" if lines else how


def short_error(exc: BaseException, limit: int = 240) -> str:
    """One line of an exception (onnxruntime and LiteRT errors span many lines).

    A ``BackendRejected`` already holds the child process's own one line ("ValueError: ...").
    """
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if not isinstance(exc, BackendRejected):
        text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -------------------------------------------------------------------------------------- child


def _serve(kind: str, path: str, max_memory: int, num_threads: int | None) -> int:
    if resource is not None:
        resource.setrlimit(resource.RLIMIT_AS, (max_memory, max_memory))
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything native code prints goes to stderr, not into the protocol
    from hashpack.backends import open_backend

    def send(header: dict[str, Any], array: np.ndarray | None = None) -> None:
        out.write(_encode(header, array))
        out.flush()

    try:
        runner = open_backend(kind, path, num_threads=num_threads)
    except Exception as exc:
        send({"status": "error", "message": short_error(exc)})
        return 0
    send({"status": "ready"})
    reader = _Reader(sys.stdin.buffer)
    while (message := reader.read(None)) is not None:
        header, payload = message
        try:
            x = _decode_array(header, payload)
            y = np.asarray(runner(x), dtype=np.float32)
        except Exception as exc:
            send({"status": "error", "message": short_error(exc)})
        else:
            send({"status": "output"}, y)
    return 0


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if len(arguments) not in (3, 4):
        sys.exit("usage: python -m hashpack.isolation KIND PATH MAX_MEMORY [NUM_THREADS]")
    threads = int(arguments[3]) if len(arguments) == 4 else None
    sys.exit(_serve(arguments[0], arguments[1], int(arguments[2]), threads))

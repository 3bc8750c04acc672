"""The safetensors container: read and write named little-endian tensors plus string metadata.

Implemented here (numpy only) rather than with the ``safetensors`` package because the runtime
must run where nothing but numpy is installed. The reader follows safetensors' safety rules and
is stricter: entries must tile the data buffer exactly, so no entry can claim bytes the file does
not have. See docs/FORMAT.md §2 and §6.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import HpkFormatError

MAX_HEADER_BYTES = 16 * 1024 * 1024
MAX_NAME_LENGTH = 256
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_./-]+$")
DTYPES: dict[str, np.dtype] = {
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I8": np.dtype("i1"),
}
DTYPE_CODES = {dtype: code for code, dtype in DTYPES.items()}


@dataclass(frozen=True)
class Container:
    """A parsed container: string metadata and read-only tensors (views into the file bytes)."""

    metadata: dict[str, str]
    tensors: dict[str, np.ndarray]
    data: memoryview  # the whole data buffer, for checksums


def _fail(source: str, message: str) -> HpkFormatError:
    return HpkFormatError(f"{source}: {message}")


def parse_container(blob: bytes, source: str = "<bytes>") -> Container:
    """Parse container bytes, checking every size and offset before touching tensor data."""
    if len(blob) < 8:
        raise _fail(source, f"truncated: {len(blob)} bytes, a .hpk file is at least 8")
    (header_len,) = struct.unpack_from("<Q", blob, 0)
    if header_len > MAX_HEADER_BYTES:
        raise _fail(source, f"header length {header_len} exceeds the {MAX_HEADER_BYTES}-byte limit")
    if 8 + header_len > len(blob):
        raise _fail(
            source, f"truncated: header claims {header_len} bytes, file has {len(blob) - 8} after the prefix"
        )
    try:
        header = json.loads(bytes(blob[8 : 8 + header_len]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise _fail(source, f"header is not valid UTF-8 JSON ({exc})") from None
    if not isinstance(header, dict):
        raise _fail(source, "header is not a JSON object")
    metadata = header.pop("__metadata__", None)
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise _fail(source, "header has no __metadata__ object of strings")
    data = memoryview(blob)[8 + header_len :]
    entries = [_check_entry(source, name, entry) for name, entry in header.items()]
    entries.sort(key=lambda e: (e[2], e[3]))
    position = 0
    for name, _, begin, end in entries:
        if begin != position:
            what = "overlaps the previous tensor" if begin < position else "leaves a gap before it"
            raise _fail(source, f"tensor {name!r} starts at byte {begin} and {what} (expected {position})")
        position = end
    if position != len(data):
        raise _fail(
            source,
            f"tensors cover {position} bytes but the data buffer has {len(data)}"
            + (" (truncated file)" if position > len(data) else " (trailing bytes)"),
        )
    tensors = {}
    for name, (dtype, shape), begin, end in entries:
        array = np.frombuffer(data[begin:end], dtype=dtype).reshape(shape)
        tensors[name] = array
    return Container(metadata=metadata, tensors=tensors, data=data)


def _check_entry(
    source: str, name: str, entry: object
) -> tuple[str, tuple[np.dtype, tuple[int, ...]], int, int]:
    if len(name) > MAX_NAME_LENGTH or not NAME_PATTERN.match(name):
        raise _fail(source, f"tensor name {name[:60]!r} is not allowed (ASCII [A-Za-z0-9_./-], <= 256 chars)")
    if not isinstance(entry, dict):
        raise _fail(source, f"tensor {name!r}: entry is not an object")
    dtype = DTYPES.get(entry.get("dtype"))  # type: ignore[arg-type]
    if dtype is None:
        raise _fail(source, f"tensor {name!r}: unsupported dtype {entry.get('dtype')!r} (F32, F16 or I8)")
    shape = entry.get("shape")
    if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape) or len(shape) > 8:
        raise _fail(
            source, f"tensor {name!r}: shape {shape!r} is not a list of at most 8 non-negative integers"
        )
    offsets = entry.get("data_offsets")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(o) and o >= 0 for o in offsets)):
        raise _fail(source, f"tensor {name!r}: data_offsets {offsets!r} is not [begin, end]")
    begin, end = offsets
    numel = 1
    for d in shape:
        numel *= d  # Python ints: no overflow
    if end - begin != numel * dtype.itemsize:
        raise _fail(
            source,
            f"tensor {name!r}: shape {shape} of {entry['dtype']} needs {numel * dtype.itemsize} bytes, "
            f"offsets give {end - begin}",
        )
    return name, (dtype, tuple(shape)), begin, end


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def encode_tensors(tensors: dict[str, np.ndarray]) -> tuple[dict[str, dict], bytes]:
    """The header's tensor table and the data buffer, tensors laid out in ascending name order."""
    table: dict[str, dict] = {}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        array = np.asarray(tensors[name])
        if not NAME_PATTERN.match(name) or len(name) > MAX_NAME_LENGTH:
            raise ValueError(f"tensor name {name!r} is not allowed")
        code = DTYPE_CODES.get(array.dtype.newbyteorder("=")) or DTYPE_CODES.get(array.dtype)
        if code is None:
            raise ValueError(
                f"tensor {name!r}: dtype {array.dtype} cannot be stored (float32, float16, int8)"
            )
        raw = np.ascontiguousarray(array, dtype=DTYPES[code]).tobytes()
        table[name] = {"dtype": code, "shape": list(array.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    return table, b"".join(chunks)


def serialize_container(metadata: dict[str, str], table: dict[str, dict], data: bytes) -> bytes:
    """Container bytes: length prefix, space-padded JSON header, data buffer."""
    header = {"__metadata__": dict(sorted(metadata.items())), **table}
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    header_bytes += b" " * (-(8 + len(header_bytes)) % 8)
    return struct.pack("<Q", len(header_bytes)) + header_bytes + data


def atomic_write_bytes(path: str | os.PathLike[str], payload: bytes) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename: readers never see half a file."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise

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
import secrets
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import HpkFormatError

MAX_HEADER_BYTES = 16 * 1024 * 1024
MAX_NAME_LENGTH = 256
MAX_RANK = 8
MAX_DIM = 2**31 - 1  # no .hpk tensor needs more along one axis (FORMAT §6 caps virtual sizes there)
NAME_PATTERN = re.compile(r"[A-Za-z0-9_./-]+")
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


def _other_format(blob: bytes) -> str:
    """Name the format of a file that is clearly not a .hpk (a common mix-up), for the error message."""
    if blob[4:8] in (b"TFL3", b"TFL2"):  # the TFLite flatbuffer file identifier
        return " (it is a TFLite flatbuffer)"
    if blob[0] == 0x08 and 3 <= blob[1] < 0x80:  # ModelProto's field 1, ir_version, comes first
        return " (it looks like an ONNX model)"
    return ""


def parse_container(blob: bytes, source: str = "<bytes>") -> Container:
    """Parse container bytes, checking every size and offset before touching tensor data."""
    if len(blob) < 8:
        raise _fail(source, f"truncated: {len(blob)} bytes, a .hpk file is at least 8")
    (header_len,) = struct.unpack_from("<Q", blob, 0)
    if header_len > MAX_HEADER_BYTES:
        raise _fail(
            source,
            f"not a .hpk file{_other_format(blob)}: header length {header_len} exceeds the "
            f"{MAX_HEADER_BYTES}-byte limit",
        )
    if 8 + header_len > len(blob):
        raise _fail(
            source, f"truncated: header claims {header_len} bytes, file has {len(blob) - 8} after the prefix"
        )
    header = parse_json(bytes(blob[8 : 8 + header_len]), source, "header")
    if not isinstance(header, dict):
        raise _fail(source, "not a .hpk file: header is not a JSON object")
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


def parse_json(text: bytes | str, source: str, what: str) -> object:
    """Strict JSON: valid Unicode (no lone surrogates), no duplicate keys, no NaN/Infinity literals."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        else:
            text.encode("utf-8")
        value = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_reject_constant)
        if _SURROGATE_ESCAPE.search(text):  # "\\udXXX" may decode to a lone surrogate
            _check_strings(value)
        return value
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, Unicode errors, digit limits
        raise _fail(source, f"{what} is not valid UTF-8 JSON ({_clip(str(exc))})") from None


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _check_strings(value: object) -> None:
    """Every string (keys included) must be encodable as UTF-8."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            item.encode("utf-8")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {_clip(key)!r}")
            seen.add(key)
    return result


def _reject_constant(name: str) -> None:
    raise ValueError(f"non-finite number {name}")


def _clip(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _check_entry(
    source: str, name: str, entry: object
) -> tuple[str, tuple[np.dtype, tuple[int, ...]], int, int]:
    if len(name) > MAX_NAME_LENGTH or not NAME_PATTERN.fullmatch(name):
        raise _fail(source, f"tensor name {name[:60]!r} is not allowed (ASCII [A-Za-z0-9_./-], <= 256 chars)")
    if not isinstance(entry, dict):
        raise _fail(source, f"tensor {name!r}: entry is not an object")
    code = entry.get("dtype")
    dtype = DTYPES.get(code) if isinstance(code, str) else None
    if dtype is None:
        raise _fail(source, f"tensor {name!r}: unsupported dtype {_clip(repr(code))} (F32, F16 or I8)")
    shape = entry.get("shape")
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_RANK
        or not all(_is_int(d) and 0 <= d <= MAX_DIM for d in shape)
    ):
        raise _fail(
            source,
            f"tensor {name!r}: shape {_clip(repr(shape))} is not a list of at most {MAX_RANK} integers "
            f"in [0, {MAX_DIM}]",
        )
    offsets = entry.get("data_offsets")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(o) and o >= 0 for o in offsets)):
        raise _fail(source, f"tensor {name!r}: data_offsets {_clip(repr(offsets))} is not [begin, end]")
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
        if not NAME_PATTERN.fullmatch(name) or len(name) > MAX_NAME_LENGTH:
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


_O_TMPFILE = getattr(os, "O_TMPFILE", 0)  # Linux: a file with no name until it is linked


def atomic_write_bytes(path: str | os.PathLike[str], payload: bytes) -> None:
    """Write ``path`` so that readers (and a crash) see the old file or the new one, never half of one.

    The bytes go to a temporary file in the same directory, are fsynced, and the file is renamed
    over ``path`` (docs/FORMAT.md §7). On Linux the temporary file is created nameless
    (``O_TMPFILE``) and only linked as ``.<name>.<random>.tmp`` once complete, so a writer killed
    mid-write leaves no stray file; elsewhere a named temporary file is removed on any error.
    """
    target = Path(path)
    directory = target.parent
    tmp = _write_unnamed(directory, target.name, payload) or _write_named(directory, target.name, payload)
    try:
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


def _temp_name(name: str) -> str:
    return f".{name[:200]}.{secrets.token_hex(6)}.tmp"


def _write_all(fd: int, payload: bytes) -> None:
    view = memoryview(payload)
    while view:
        view = view[os.write(fd, view) :]
    os.fsync(fd)


def _write_unnamed(directory: Path, name: str, payload: bytes) -> Path | None:
    """Write into a nameless file and link it under a temporary name; None where unsupported."""
    if not _O_TMPFILE:
        return None
    try:
        fd = os.open(directory, _O_TMPFILE | os.O_WRONLY, 0o666)
    except OSError:  # a filesystem without O_TMPFILE (or no such directory: the fallback says so)
        return None
    try:
        _write_all(fd, payload)
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for _ in range(100):
                tmp = _temp_name(name)
                with contextlib.suppress(FileExistsError):
                    # src_dir_fd makes os.link use linkat(AT_SYMLINK_FOLLOW), which links the inode
                    os.link(f"/proc/self/fd/{fd}", tmp, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
                    return directory / tmp
        except OSError:  # no /proc: write a named file instead
            return None
        finally:
            os.close(dir_fd)
        return None
    finally:
        os.close(fd)


def _write_named(directory: Path, name: str, payload: bytes) -> Path:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = directory / _temp_name(name)
        try:
            fd = os.open(tmp, flags, 0o666)  # 0o666 & ~umask, like any new file
            break
        except FileExistsError:
            continue
    try:
        _write_all(fd, payload)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    os.close(fd)
    return tmp


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable (POSIX); a no-op where directories cannot be opened (Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)

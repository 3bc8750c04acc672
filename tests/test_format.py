"""The .hpk container: interoperability with safetensors and the documented error for bad files."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

import hashpack
from hashpack.models import LeNet5
from hashpack.runtime import HpkFormatError, load, read_hpk


@pytest.fixture(scope="module")
def hpk_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    torch.manual_seed(0)
    model = hashpack.compress(LeNet5((1, 28, 28), 10), compression=1 / 16, seed=2).eval()
    path = tmp_path_factory.mktemp("hpk") / "lenet.hpk"
    hashpack.pack(model, torch.randn(2, 1, 28, 28), path)
    return path.read_bytes()


def _write(tmp_path: Path, blob: bytes) -> Path:
    path = tmp_path / "bad.hpk"
    path.write_bytes(blob)
    return path


def _split(blob: bytes) -> tuple[dict, bytes]:
    (n,) = struct.unpack_from("<Q", blob)
    return json.loads(blob[8 : 8 + n]), blob[8 + n :]


def _join(header: dict, data: bytes, resign: bool = True) -> bytes:
    meta = header["__metadata__"]
    if resign:
        digest = hashlib.sha256(meta["hashpack"].encode())
        digest.update(data)
        meta["hashpack.sha256"] = digest.hexdigest()
    raw = json.dumps(header).encode()
    raw += b" " * (-(8 + len(raw)) % 8)
    return struct.pack("<Q", len(raw)) + raw + data


def _edit_metadata(blob: bytes, edit) -> bytes:
    header, data = _split(blob)
    meta = json.loads(header["__metadata__"]["hashpack"])
    edit(meta)
    header["__metadata__"]["hashpack"] = json.dumps(meta)
    return _join(header, data)


def test_safetensors_library_reads_hpk(tmp_path: Path, hpk_bytes: bytes) -> None:
    path = _write(tmp_path, hpk_bytes)
    tensors = load_file(str(path))
    hpk = read_hpk(path)
    assert set(tensors) == set(hpk.tensors)
    for name, array in tensors.items():
        np.testing.assert_array_equal(array, hpk.tensors[name])


def test_header_is_canonical(hpk_bytes: bytes) -> None:
    header, _ = _split(hpk_bytes)
    names = [n for n in header if n != "__metadata__"]
    begins = [header[n]["data_offsets"][0] for n in names]
    assert [n for _, n in sorted(zip(begins, names, strict=True))] == sorted(names)
    assert (8 + struct.unpack_from("<Q", hpk_bytes)[0]) % 8 == 0


@pytest.mark.parametrize("cut", [0, 4, 8, 100, -1, -1000])
def test_truncated(tmp_path: Path, hpk_bytes: bytes, cut: int) -> None:
    with pytest.raises(HpkFormatError, match=r"truncated|header|cover"):
        read_hpk(_write(tmp_path, hpk_bytes[:cut]))


def test_not_a_hpk_file(tmp_path: Path) -> None:
    with pytest.raises(HpkFormatError, match="header"):
        read_hpk(_write(tmp_path, b"\x08\x00\x00\x00\x00\x00\x00\x00not json"))
    with pytest.raises(HpkFormatError, match="exceeds"):
        read_hpk(_write(tmp_path, b"ONNX model bytes, not a hpk file at all"))


def test_wrong_format_name(tmp_path: Path, hpk_bytes: bytes) -> None:
    blob = _edit_metadata(hpk_bytes, lambda m: m.update(format="notpack"))
    with pytest.raises(HpkFormatError, match="format is 'notpack'"):
        read_hpk(_write(tmp_path, blob))


def test_unsupported_version(tmp_path: Path, hpk_bytes: bytes) -> None:
    blob = _edit_metadata(hpk_bytes, lambda m: m.update(version=2))
    with pytest.raises(HpkFormatError, match="unsupported format version 2"):
        read_hpk(_write(tmp_path, blob))


def test_checksum_mismatch_on_flipped_bucket(tmp_path: Path, hpk_bytes: bytes) -> None:
    blob = bytearray(hpk_bytes)
    blob[-5] ^= 0x01
    with pytest.raises(HpkFormatError, match="checksum mismatch"):
        read_hpk(_write(tmp_path, bytes(blob)))


def test_unknown_op_named(tmp_path: Path, hpk_bytes: bytes) -> None:
    def edit(meta: dict) -> None:
        meta["nodes"][1]["op"] = "Mish"

    with pytest.raises(HpkFormatError, match="unknown op 'Mish'"):
        load(_write(tmp_path, _edit_metadata(hpk_bytes, edit)))


def test_unknown_scheme_named(tmp_path: Path, hpk_bytes: bytes) -> None:
    def edit(meta: dict) -> None:
        next(p for p in meta["params"].values() if p["scheme"] == "hashed")["scheme"] = "magic"

    with pytest.raises(HpkFormatError, match="unknown compression scheme 'magic'"):
        read_hpk(_write(tmp_path, _edit_metadata(hpk_bytes, edit)))


def test_huge_virtual_shape_rejected_before_allocation(tmp_path: Path, hpk_bytes: bytes) -> None:
    def edit(meta: dict) -> None:
        next(p for p in meta["params"].values() if p["scheme"] == "hashed")["shape"] = [2**30, 2**30]

    with pytest.raises(HpkFormatError, match="limit"):
        read_hpk(_write(tmp_path, _edit_metadata(hpk_bytes, edit)))


def test_error_names_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, b"")
    with pytest.raises(HpkFormatError, match=str(path)):
        read_hpk(path)
    with pytest.raises(HpkFormatError, match="directory"):
        read_hpk(tmp_path)


def test_tensor_name_with_trailing_newline_rejected(tmp_path: Path, hpk_bytes: bytes) -> None:
    """`$` in a regex also matches before a final newline; names must match the whole pattern."""
    header, data = _split(hpk_bytes)
    name = next(key for key in header if key != "__metadata__")
    header[name + "\n"] = header.pop(name)
    with pytest.raises(HpkFormatError, match="tensor name"):
        read_hpk(_write(tmp_path, _join(header, data)))

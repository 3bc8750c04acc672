"""The places docs/FORMAT.md now states exactly (issue 16, section 2), checked on the Python reader:
the node fields, attrs' JSON types, Softmax never over the batch axis, the checksum over the
decoded metadata string, scalar and zero-byte tensors. The Java reader's twins are in
GraphRulesTest/OpsTest (Softmax) and run by tests/test_java.py."""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import hashpack
from hashpack.runtime import HpkFormatError, load, read_hpk


@pytest.fixture(scope="module")
def hpk_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """An MLP ending in Softmax(dim=1), hashed: nodes with and without params and attrs."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4), nn.Softmax(dim=1))
    hashpack.compress(model, compression=1 / 2, seed=2)
    path = tmp_path_factory.mktemp("spec") / "m.hpk"
    hashpack.pack(model.eval(), torch.rand(3, 16), path)
    return path.read_bytes()


def split(blob: bytes) -> tuple[dict, bytes]:
    (n,) = struct.unpack_from("<Q", blob)
    return json.loads(blob[8 : 8 + n]), blob[8 + n :]


def join(header: dict, data: bytes, *, ensure_ascii: bool = True) -> bytes:
    meta = header["__metadata__"]
    meta["hashpack.sha256"] = hashlib.sha256(meta["hashpack"].encode() + data).hexdigest()
    raw = json.dumps(header, ensure_ascii=ensure_ascii).encode()
    raw += b" " * (-(8 + len(raw)) % 8)
    return struct.pack("<Q", len(raw)) + raw + data


def edited(blob: bytes, edit: Callable[[dict], None]) -> bytes:
    header, data = split(blob)
    meta = json.loads(header["__metadata__"]["hashpack"])
    edit(meta)
    header["__metadata__"]["hashpack"] = json.dumps(meta, sort_keys=True, separators=(",", ":"))
    return join(header, data)


def write(tmp_path: Path, blob: bytes) -> Path:
    path = tmp_path / "edited.hpk"
    path.write_bytes(blob)
    return path


def node(meta: dict, op: str) -> dict:
    return next(n for n in meta["nodes"] if n["op"] == op)


# ------------------------------------------------------------------------------------------ §5


@pytest.mark.parametrize("axis", [0, -2])
def test_softmax_over_the_batch_axis_is_rejected(tmp_path: Path, hpk_bytes: bytes, axis: int) -> None:
    blob = edited(hpk_bytes, lambda meta: node(meta, "Softmax")["attrs"].update(axis=axis))
    with pytest.raises(HpkFormatError, match=f"axis {axis} is the batch dimension"):
        read_hpk(write(tmp_path, blob))


def test_softmax_counted_from_the_end_is_accepted(tmp_path: Path, hpk_bytes: bytes) -> None:
    blob = edited(hpk_bytes, lambda meta: node(meta, "Softmax")["attrs"].update(axis=-1))
    model = load(write(tmp_path, blob))
    np.testing.assert_allclose(model.run(model.golden_inputs), model.golden_outputs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("field", ["op", "name", "inputs", "outputs", "params", "attrs"])
def test_every_node_field_is_required_even_when_empty(tmp_path: Path, hpk_bytes: bytes, field: str) -> None:
    blob = edited(hpk_bytes, lambda meta: node(meta, "Relu").pop(field))
    with pytest.raises(HpkFormatError):
        read_hpk(write(tmp_path, blob))


def test_a_node_has_exactly_one_output(tmp_path: Path, hpk_bytes: bytes) -> None:
    blob = edited(hpk_bytes, lambda meta: node(meta, "Relu")["outputs"].append("extra"))
    with pytest.raises(HpkFormatError, match="exactly one output"):
        read_hpk(write(tmp_path, blob))


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({}, "missing attr 'start_dim'"),  # no PyTorch default
        ({"start_dim": True}, "not a valid int"),  # a JSON boolean is not an integer
        ({"start_dim": 1.0}, "not a valid int"),  # nor is 1.0
        ({"start_dim": 1, "end_dim": -1}, "unexpected attr 'end_dim'"),
    ],
)
def test_attrs_are_required_with_their_json_type(
    tmp_path: Path, hpk_bytes: bytes, attrs: dict, message: str
) -> None:
    def edit(meta: dict) -> None:
        node(meta, "Flatten")["attrs"] = attrs

    with pytest.raises(HpkFormatError, match=message):
        read_hpk(write(tmp_path, edited(hpk_bytes, edit)))


def test_a_pair_attr_is_a_two_element_list() -> None:
    from hashpack.runtime.ops._registry import _KINDS

    assert (
        _KINDS["pair"]([1, 1])
        and not _KINDS["pair"](1)
        and not _KINDS["pair"]([1])
        and not _KINDS["pair"]([1, 1, 1])
    )


# ------------------------------------------------------------------------------------------ §2


def test_checksum_covers_the_decoded_string_not_its_escaped_bytes(tmp_path: Path, hpk_bytes: bytes) -> None:
    header, data = split(hpk_bytes)
    meta = json.loads(header["__metadata__"]["hashpack"])
    meta["producer"] = "hashpack é ✓"  # non-ASCII: escaped as \\u00e9 in the header bytes below
    header["__metadata__"]["hashpack"] = json.dumps(meta, ensure_ascii=False)
    escaped = join(header, data, ensure_ascii=True)
    assert b"\\u00e9" in escaped and "é".encode() not in escaped
    assert load(write(tmp_path, escaped)).run  # hashed over the UTF-8 of the decoded value: loads

    raw_text = json.dumps(header, ensure_ascii=True)  # sign the escaped text instead: rejected
    value_start = raw_text.index('"hashpack": "') + len('"hashpack": "')
    value_end = raw_text.index('", "hashpack.sha256"')
    wrong = hashlib.sha256(raw_text[value_start:value_end].encode() + data).hexdigest()
    header["__metadata__"]["hashpack.sha256"] = wrong
    raw = json.dumps(header, ensure_ascii=True).encode()
    raw += b" " * (-(8 + len(raw)) % 8)
    with pytest.raises(HpkFormatError, match=r"(?i)sha-?256|checksum"):
        read_hpk(write(tmp_path, struct.pack("<Q", len(raw)) + raw + data))


def test_zero_byte_tensor_ties_are_tiled_but_never_referenced(tmp_path: Path, hpk_bytes: bytes) -> None:
    """A zero-byte tensor (a 0 dimension) may share its offset with the tensor starting there
    (entries sort by (begin, end)); the container accepts it, but metadata shapes have dimensions
    >= 1, so no field can reference it and the reader rejects it as unreferenced."""
    header, data = split(hpk_bytes)
    first = min((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"][0])
    begin = header[first]["data_offsets"][0]
    header["empty"] = {"dtype": "F32", "shape": [0, 4], "data_offsets": [begin, begin]}
    with pytest.raises(HpkFormatError, match="tensor 'empty' is not referenced"):
        read_hpk(write(tmp_path, join(header, data)))


def test_a_scalar_tensor_holds_one_element(tmp_path: Path, hpk_bytes: bytes) -> None:
    header, data = split(hpk_bytes)
    header["scalar"] = {"dtype": "F32", "shape": [], "data_offsets": [len(data), len(data) + 4]}
    data += np.float32(1.5).tobytes()
    with pytest.raises(HpkFormatError, match="tensor 'scalar' is not referenced"):  # tiled: 4 bytes
        read_hpk(write(tmp_path, join(header, data)))
    header["scalar"]["data_offsets"] = [len(data) - 4, len(data) - 4]
    with pytest.raises(HpkFormatError, match="needs 4 bytes"):  # not zero bytes
        read_hpk(write(tmp_path, join(header, data)))

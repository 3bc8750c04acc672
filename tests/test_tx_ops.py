"""The transformer ops in the numpy runtime and the PyTorch evaluator, against torch (tests/tx_op_cases.py).

Every case is written to a .hpk file and read back, so the reader's checks and shape rules run on
it; hostile variants (bad params, attrs, int/float mix-ups) must be rejected with
``HpkFormatError``, and token ids outside a table with a plain ``ValueError`` naming the node.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from tx_op_cases import CASE_IDS, CASES, TOLERANCE, TX_OPS, TxCase, case_hpk

from hashpack.runtime import HpkFormatError, IdsOutOfRange, load, read_hpk, write_hpk
from hashpack.runtime.hpk import Param, ValueInfo, parse_hpk, serialize_hpk
from hashpack.runtime.ops import OPS
from hashpack.torch_eval import to_torch


def _written(tmp_path: Path, case: TxCase) -> Path:
    path = tmp_path / f"{case.id}.hpk"
    write_hpk(case_hpk(case), path)
    return path


def _by_id(case_id: str) -> TxCase:
    return next(c for c in CASES if c.id == case_id)


def test_every_tx_op_has_a_case() -> None:
    covered = set().union(*(case.ops for case in CASES))
    assert set(TX_OPS) <= covered
    assert set(TX_OPS) <= set(OPS)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_numpy_runtime_matches_torch(tmp_path: Path, case: TxCase) -> None:
    model = load(_written(tmp_path, case))
    expected = model.golden_outputs
    actual = model.run(model.golden_inputs)
    assert actual.shape == expected.shape
    assert actual.dtype == np.float32
    assert np.abs(expected).max() > 0.1  # the case computes something
    np.testing.assert_allclose(actual, expected, rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_torch_evaluator_matches_torch(tmp_path: Path, case: TxCase) -> None:
    hpk = read_hpk(_written(tmp_path, case))
    inputs, expected = hpk.golden_arrays()
    np.testing.assert_allclose(to_torch(hpk).run(inputs), expected, rtol=0, atol=TOLERANCE)


def test_int32_input_round_trips_and_float_files_are_unchanged() -> None:
    ids_file = case_hpk(_by_id("embedding-tokens"))
    assert ids_file.to_metadata()["inputs"] == [{"name": "x", "shape": [None, 6], "dtype": "int32"}]
    assert parse_hpk(serialize_hpk(ids_file)).input.dtype == "int32"
    float_file = case_hpk(_by_id("gelu-erf"))
    assert float_file.to_metadata()["inputs"] == [{"name": "x", "shape": [None, 3, 7]}]  # no dtype key
    assert parse_hpk(serialize_hpk(float_file)).input.dtype == "float32"


def test_ids_run_as_int64_int32_or_whole_floats(tmp_path: Path) -> None:
    model = load(_written(tmp_path, _by_id("embedding-padding-idx")))
    ids = model.golden_inputs
    for variant in (ids.astype(np.int64), ids.astype(np.int32), ids):
        np.testing.assert_allclose(model.run(variant), model.golden_outputs, atol=TOLERANCE)
    assert not model.run(np.full((1, 3, 4), 2)).any()  # padding_idx rows read as zero
    with pytest.raises(ValueError, match="whole numbers"):
        model.run(ids + 0.5)


@pytest.mark.parametrize("bad", [11, -1, 1000])
def test_ids_outside_the_table_name_the_node(tmp_path: Path, bad: int) -> None:
    model = load(_written(tmp_path, _by_id("embedding-tokens")))
    ids = model.golden_inputs.astype(np.int64)
    ids[1, 3] = bad
    with pytest.raises(IdsOutOfRange, match=r"node 'n0' \(Embedding\).*token id") as info:
        model.run(ids)
    assert not isinstance(info.value, HpkFormatError)  # the caller's input, not the file


# (case, node index, attrs to merge in / inputs to use / params to use) -> message HpkFormatError must contain
HOSTILE = [
    ("layernorm-last-affine", 0, {"dims": 0}, "dims"),
    ("layernorm-last-affine", 0, {"dims": 2}, "dims"),
    ("layernorm-plain-rank2", 0, {"dims": 2}, "dims"),
    ("layernorm-last-affine", 0, {"eps": -1.0}, "eps"),
    ("layernorm-last-affine", 0, {"eps": 1e300}, "eps"),
    ("layernorm-last-affine", 0, {"params": {"weight": "w"}}, "both"),
    ("layernorm-two-dims", 0, {"params": {"weight": "w", "bias": "w"}, "dims": 1}, "normalized"),
    ("gelu-erf", 0, {"approximate": "tanh"}, "approximate"),
    ("gelu-erf", 0, {"params": {}, "attrs": {}}, "approximate"),
    ("matmul-rank3", 1, {"inputs": ("x", "x")}, "multiply"),
    ("attention-self", 0, {"scale": 1e300}, "scale"),
    ("attention-self", 0, {"causal": 0}, "causal"),
    ("attention-cross-causal", 2, {"inputs": ("y0", "y1", "x")}, "fit"),
    ("attention-cross-causal", 2, {"inputs": ("y0", "y0", "y1")}, "fit"),
    ("linear-rank3", 0, {"inputs": ("y9",)}, "earlier"),
    ("embedding-tokens", 0, {"padding_idx": 11}, "padding_idx"),
    ("embedding-tokens", 0, {"padding_idx": -1}, "padding_idx"),
    ("embedding-tokens", 0, {"padding_idx": True}, "padding_idx"),
    ("embedding-mean-linear", 1, {"inputs": ("x",)}, "int32"),  # a float op on token ids
    ("embedding-mean-linear", 2, {"params": {"weight": "table"}}, "computes"),
    ("embedding-mean-linear", 2, {"inputs": ("y0",), "params": {"weight": "table"}}, "computes"),
]


@pytest.mark.parametrize(("case_id", "index", "change", "message"), HOSTILE)
def test_reader_rejects_bad_tx_nodes(case_id: str, index: int, change: dict, message: str) -> None:
    hpk = case_hpk(_by_id(case_id))
    node = hpk.nodes[index]
    change = dict(change)
    fields = {key: change.pop(key) for key in ("inputs", "params", "attrs") if key in change}
    node = dataclasses.replace(node, **fields)
    node = dataclasses.replace(node, attrs={**node.attrs, **change})
    hpk.nodes[index] = node
    with pytest.raises(HpkFormatError, match=message):
        parse_hpk(serialize_hpk(hpk), "bad.hpk")


def test_reader_checks_param_shapes_and_the_input_dtype() -> None:
    hpk = case_hpk(_by_id("embedding-tokens"))
    table = hpk.tensors["params/table"]
    hpk.tensors["params/table"] = table.reshape(1, 11, 4)
    hpk.params["table"] = Param("table", "dense", (1, 11, 4), {"tensor": "params/table"})
    with pytest.raises(HpkFormatError, match="rank 2"):
        parse_hpk(serialize_hpk(hpk), "bad.hpk")

    hpk = case_hpk(_by_id("embedding-tokens"))
    hpk.inputs[0] = ValueInfo("x", hpk.inputs[0].shape, "float32")  # Embedding on a float input
    with pytest.raises(HpkFormatError, match="must be int32"):
        parse_hpk(serialize_hpk(hpk), "bad.hpk")

    hpk = case_hpk(_by_id("embedding-tokens"))
    hpk.inputs[0] = ValueInfo("x", hpk.inputs[0].shape, "int64")
    with pytest.raises(HpkFormatError, match="dtype 'int64'"):
        parse_hpk(serialize_hpk(hpk), "bad.hpk")

    hpk = case_hpk(_by_id("embedding-tokens"))
    hpk.tensors["golden/inputs"] = hpk.tensors["golden/inputs"] + np.float32(0.25)
    with pytest.raises(HpkFormatError, match="golden"):
        parse_hpk(serialize_hpk(hpk), "bad.hpk")

    hpk = case_hpk(_by_id("constant-rank1"))
    hpk.tensors["params/c"] = np.ones((1,) * 8, np.float32)
    hpk.params["c"] = Param("c", "dense", (1,) * 8, {"tensor": "params/c"})
    with pytest.raises(HpkFormatError, match="7 dimensions"):
        parse_hpk(serialize_hpk(hpk), "bad.hpk")


def test_attention_weights_are_bounded() -> None:
    """A tiny file may not declare attention over a huge sequence (the L×S weights are counted)."""
    hpk = case_hpk(_by_id("attention-self"))
    hpk.golden = None
    hpk.nodes.insert(
        0,
        dataclasses.replace(
            hpk.nodes[0],
            op="Reshape",
            name="big",
            outputs=("big",),
            inputs=("x",),
            attrs={"shape": [1, 40, 1]},
        ),
    )
    hpk.nodes[1] = dataclasses.replace(hpk.nodes[1], inputs=("big", "big", "big"))
    hpk.outputs[0] = ValueInfo("y0", (None, 1, 40, 1))
    hpk.tensors = {}
    hpk.inputs[0] = ValueInfo("x", (None, 40))
    parse_hpk(serialize_hpk(hpk))  # 40x40 weights: fine
    big = 2**15
    hpk.inputs[0] = ValueInfo("x", (None, big))
    hpk.nodes[0] = dataclasses.replace(hpk.nodes[0], attrs={"shape": [1, big, 1]})
    hpk.outputs[0] = ValueInfo("y0", (None, 1, big, 1))
    with pytest.raises(HpkFormatError, match="attention weights"):
        parse_hpk(serialize_hpk(hpk), "bad.hpk")

"""The zoo ops in the numpy runtime and the PyTorch evaluator, against torch (tests/zoo_op_cases.py).

Every case is written to a .hpk file and read back, so the reader's checks and shape rules run
on it; hostile variants of each new op's attrs must be rejected with ``HpkFormatError``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from zoo_op_cases import CASE_IDS, CASES, TOLERANCE, ZOO_OPS, OpCase, case_hpk

from hashpack.runtime import HpkFormatError, load, read_hpk, write_hpk
from hashpack.runtime.hpk import Node, parse_hpk, serialize_hpk
from hashpack.runtime.ops import OPS
from hashpack.torch_eval import to_torch


def _written(tmp_path: Path, case: OpCase) -> Path:
    path = tmp_path / f"{case.id}.hpk"
    write_hpk(case_hpk(case), path)
    return path


def test_every_zoo_op_has_a_case() -> None:
    covered = set().union(*(case.ops for case in CASES))
    assert set(ZOO_OPS) <= covered
    assert set(ZOO_OPS) <= set(OPS)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_numpy_runtime_matches_torch(tmp_path: Path, case: OpCase) -> None:
    model = load(_written(tmp_path, case))
    expected = model.golden_outputs
    actual = model.run(model.golden_inputs)
    assert actual.shape == expected.shape
    assert actual.dtype == np.float32
    np.testing.assert_allclose(actual, expected, rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_torch_evaluator_matches_torch(tmp_path: Path, case: OpCase) -> None:
    hpk = read_hpk(_written(tmp_path, case))
    inputs, expected = hpk.golden_arrays()
    np.testing.assert_allclose(to_torch(hpk).run(inputs), expected, rtol=0, atol=TOLERANCE)


def test_ceil_mode_absent_means_false(tmp_path: Path) -> None:
    """Files written before ceil_mode existed keep their meaning."""
    case = next(c for c in CASES if c.id == "maxpool-ceil-false-explicit")
    hpk = case_hpk(case)
    attrs = {k: v for k, v in hpk.nodes[0].attrs.items() if k != "ceil_mode"}
    hpk.nodes[0] = dataclasses.replace(hpk.nodes[0], attrs=attrs)
    path = tmp_path / "old.hpk"
    write_hpk(hpk, path)
    model = load(path)
    np.testing.assert_allclose(model.run(model.golden_inputs), model.golden_outputs, atol=TOLERANCE)


def _by_id(case_id: str) -> OpCase:
    return next(c for c in CASES if c.id == case_id)


# (case, node index, attrs to merge in, or the replacement inputs) -> the message HpkFormatError must contain
HOSTILE = [
    ("transpose-5d", 0, {"perm": [1, 0, 2, 3, 4]}, "perm"),
    ("transpose-5d", 0, {"perm": [0, 2, 1, 3]}, "perm"),
    ("transpose-5d", 0, {"perm": [0, 2, 2, 3, 4]}, "perm"),
    ("slice-last-axis", 0, {"start": 3, "end": 3}, "slice"),
    ("slice-last-axis", 0, {"end": 8}, "slice"),
    ("slice-last-axis", 0, {"start": -1}, "slice"),
    ("slice-last-axis", 0, {"axis": 0}, "axis"),
    ("slice-last-axis", 0, {"axis": 4}, "axis"),
    ("mean-hw", 0, {"dims": [0, 2]}, "dims"),
    ("mean-hw", 0, {"dims": [2, 2]}, "dims"),
    ("mean-hw", 0, {"dims": []}, "dims"),
    ("mean-hw", 0, {"dims": [4]}, "dims"),
    ("mean-hw", 0, {"keepdim": 1}, "keepdim"),
    ("adaptive-avg-1x1", 0, {"output": [0, 1]}, "output"),
    ("adaptive-max-3x3-from-8x8", 0, {"output": [1 << 20, 1 << 20]}, "elements"),
    ("adaptive-max-3x3-from-8x8", 0, {"output": [3]}, "output"),
    ("maxpool-ceil-k3s2-15", 0, {"ceil_mode": 1}, "ceil_mode"),
    ("avgpool-ceil-k3s2-p0", 0, {"ceil_mode": "yes"}, "ceil_mode"),
    ("hardswish", 0, {"alpha": 1}, "unexpected attr"),
    ("mul-square", 0, ("x",), "input"),
]


@pytest.mark.parametrize(("case_id", "index", "change", "message"), HOSTILE)
def test_reader_rejects_bad_zoo_nodes(case_id: str, index: int, change, message: str) -> None:
    hpk = case_hpk(_by_id(case_id))
    node = hpk.nodes[index]
    if isinstance(change, dict):
        node = dataclasses.replace(node, attrs={**node.attrs, **change})
    else:
        node = dataclasses.replace(node, inputs=change)
    hpk.nodes[index] = node
    with pytest.raises(HpkFormatError, match=message):
        parse_hpk(serialize_hpk(hpk), "bad.hpk")


def test_mul_rejects_shapes_that_do_not_broadcast() -> None:
    hpk = case_hpk(_by_id("mul-se-gate"))
    hpk.nodes.insert(0, Node("Slice", "cut", ("x",), ("cut",), {}, {"axis": 2, "start": 0, "end": 2}))
    hpk.nodes[-1] = dataclasses.replace(hpk.nodes[-1], inputs=("cut", "x"))
    with pytest.raises(HpkFormatError, match="broadcast"):
        parse_hpk(serialize_hpk(hpk), "bad.hpk")

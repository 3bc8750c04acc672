"""The transformer ops (docs/FORMAT.md §5, issue 15) in the ONNX exporter, every weights mode.

Every case of the shared table (tests/tx_op_cases.py) is exported and run in ONNX Runtime:

- as it is (dense params), against torch's output (the case's golden data), within the table's
  tolerance;
- with every param turned into a ``hashed`` one (so compact, inline and expanded really differ,
  and a hashed embedding table takes the looked-up-rows path of compact and inline), against the numpy
  runtime, within the existing ONNX tests' tolerance (atol = rtol = 1e-4); embedding lookups
  must be bit-identical (they are pure hp32 gathers).

Plus the ONNX-specific behaviour: int32 graph input in the signature, ids outside the table fail
in ORT in a node named after the .hpk node, compact and inline never materialise a hashed table,
and both ways of decompressing it give the same bits.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from tx_op_cases import CASE_IDS, CASES, TOLERANCE, TX_OPS, TxCase, case_hpk, case_input

from hashpack.exporter.onnx import WEIGHT_MODES, build_onnx, serialize_onnx
from hashpack.exporter.onnx.graph import OPS as ONNX_OPS
from hashpack.runtime import HpkFile, Model, Param, Space, read_hpk, write_hpk

ONNX_TOLERANCE = {"atol": 1e-4, "rtol": 1e-4}  # as tests/test_onnx_export.py
BATCH = 3
OPSETS = (18, 20, 23)  # 18: Gelu decomposed; >= 20: ONNX's Gelu


def _by_id(case_id: str) -> TxCase:
    return next(c for c in CASES if c.id == case_id)


def _hashed(case: TxCase, seed: int = 5) -> HpkFile:
    """The case with every param hashed into its own space of ~half its size (no golden data)."""
    hpk = case_hpk(case)
    rng = np.random.default_rng(seed)
    spaces, params, tensors = {}, {}, {}
    for i, (name, param) in enumerate(sorted(hpk.params.items())):
        size = max(1, int(np.prod(param.shape)) // 2)
        space = Space(f"s{i}", size, "float32", f"spaces/s{i}")
        spaces[space.name] = space
        tensors[space.tensor] = rng.uniform(-1, 1, size).astype(np.float32)
        params[name] = Param(name, "hashed", param.shape, {"space": space.name, "seed": 1000 + i})
    return dataclasses.replace(hpk, spaces=spaces, params=params, tensors=tensors, golden=None)


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _feed(hpk: HpkFile, x: np.ndarray) -> dict[str, np.ndarray]:
    return {hpk.input.name: x.astype(np.int32) if hpk.input.dtype == "int32" else x.astype(np.float32)}


def _run(model: onnx.ModelProto, hpk: HpkFile, x: np.ndarray) -> np.ndarray:
    return _session(model).run(None, _feed(hpk, x))[0]


@pytest.fixture(scope="module")
def hashed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, HpkFile]:
    """Each case with hashed params, written and read back (so the reader's checks ran)."""
    root = tmp_path_factory.mktemp("tx-onnx")
    result = {}
    for case in CASES:
        path = root / f"{case.id}.hpk"
        write_hpk(_hashed(case), path)
        result[case.id] = read_hpk(path)
    return result


def test_every_tx_op_has_a_translator() -> None:
    assert set(TX_OPS) <= set(ONNX_OPS)


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_onnxruntime_matches_torch(tmp_path: Path, case: TxCase, opset: int) -> None:
    path = tmp_path / f"{case.id}.hpk"
    write_hpk(case_hpk(case), path)
    hpk = read_hpk(path)
    inputs, expected = hpk.golden_arrays()
    actual = _run(build_onnx(hpk, "compact", opset), hpk, inputs)
    assert actual.shape == expected.shape and actual.dtype == np.float32
    np.testing.assert_allclose(actual, expected, rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("mode", WEIGHT_MODES)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_onnxruntime_matches_numpy_runtime(hashed: dict[str, HpkFile], case: TxCase, mode: str) -> None:
    hpk = hashed[case.id]
    x = case_input(case, BATCH, seed=3)
    expected = Model(hpk).run(x)
    assert np.abs(expected).max() > 0.1  # the case computes something
    actual = _run(build_onnx(hpk, mode), hpk, x)
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, **ONNX_TOLERANCE)
    if case.ops == {"Embedding"}:  # a lookup is a pure hp32 gather: bit for bit
        np.testing.assert_array_equal(actual, expected)


def _table_calls(model: onnx.ModelProto) -> list[str]:
    """The ai.hashpack ops the graph calls (HashedWeight = a whole tensor decompressed)."""
    return sorted(node.op_type for node in model.graph.node if node.domain == "ai.hashpack")


def test_int32_ids_in_the_signature(hashed: dict[str, HpkFile]) -> None:
    hpk = hashed["embedding-tokens"]
    for mode in WEIGHT_MODES:
        model = build_onnx(hpk, mode)
        (graph_input,) = model.graph.input
        assert graph_input.type.tensor_type.elem_type == onnx.TensorProto.INT32
        assert graph_input.type.tensor_type.shape.dim[0].dim_param == "batch"
        assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    float_model = build_onnx(hashed["gelu-erf"], "compact")
    assert float_model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT


@pytest.mark.parametrize("mode", ["compact", "inline"])
@pytest.mark.parametrize("case_id", ["embedding-tokens", "embedding-padding-idx", "embedding-mean-linear"])
def test_hashed_tables_gather_rows_and_both_ways_give_the_same_bits(
    hashed: dict[str, HpkFile], case_id: str, mode: str
) -> None:
    hpk = hashed[case_id]
    rows_model = build_onnx(hpk, mode)
    table_model = build_onnx(hpk, mode, embedding_rows=False)
    embedding = next(n for n in hpk.nodes if n.op == "Embedding")
    assert hpk.params[embedding.params["weight"]].scheme == "hashed"

    def hashes_rows(model: onnx.ModelProto) -> bool:
        return any(out == f"{embedding.outputs[0]}/bucket" for n in model.graph.node for out in n.output)

    assert hashes_rows(rows_model) and not hashes_rows(table_model)
    if mode == "compact":  # one Hp32 call instead of the table's HashedWeight
        assert _table_calls(rows_model).count("Hp32") == 1
        assert _table_calls(table_model).count("Hp32") == 0
        assert (
            _table_calls(table_model).count("HashedWeight")
            == _table_calls(rows_model).count("HashedWeight") + 1
        )
    x = case_input(_by_id(case_id), BATCH, seed=11)
    rows, table = _run(rows_model, hpk, x), _run(table_model, hpk, x)
    np.testing.assert_array_equal(rows, table)


def test_padding_rows_read_as_zero(hashed: dict[str, HpkFile]) -> None:
    hpk = hashed["embedding-padding-idx"]  # padding_idx 2 of a 5-row table
    ids = np.array([[[2, 0, 2, 4], [1, 2, 3, 2], [2, 2, 2, 2]]])
    expected = Model(hpk).run(ids)
    for mode in WEIGHT_MODES:
        actual = _run(build_onnx(hpk, mode), hpk, ids)
        np.testing.assert_array_equal(actual, expected)
        assert not actual[0][ids[0] == 2].any() and actual[0][ids[0] != 2].all()


@pytest.mark.parametrize("mode", WEIGHT_MODES)
@pytest.mark.parametrize("bad", [11, -1, -11, 2**31 - 1])
def test_ids_outside_the_table_fail_in_ort_naming_the_node(
    hashed: dict[str, HpkFile], mode: str, bad: int
) -> None:
    """ONNX Gather would read id -1 from the end of the table; the export makes ORT refuse it."""
    hpk = hashed["embedding-tokens"]  # 11 rows, node n0
    session = _session(build_onnx(hpk, mode))
    ids = np.zeros((2, 6), np.int32)
    session.run(None, {"x": ids})  # in range: fine
    ids[1, 4] = bad
    with pytest.raises(Exception, match=r"n0/ids_out_of_range") as info:
        session.run(None, {"x": ids})
    assert "out of" in str(info.value)


def test_packed_hashed_embedding_model_gathers_rows(tmp_path: Path) -> None:
    """A model packed from PyTorch (HashedEmbedding via compress): compact mode hashes the
    looked-up rows of its [50000, 64] table instead of decompressing 3.2M weights."""
    import torch

    import hashpack
    from hashpack.models import EmbeddingMeanHead

    torch.manual_seed(0)
    model = EmbeddingMeanHead(50000, 64, outputs=3)
    hashpack.compress(model, "hashed", compression=1 / 8)
    ids = torch.randint(0, 50000, (4, 12), generator=torch.Generator().manual_seed(0))
    hpk = hashpack.pack(model.eval(), ids, tmp_path / "head.hpk")
    table = next(p for p in hpk.params.values() if p.shape == (50000, 64))
    assert table.scheme == "hashed" and hpk.input.dtype == "int32"
    compact = build_onnx(hpk, "compact")
    assert "Hp32" in _table_calls(compact)
    hashed_weights = [n for n in compact.graph.node if n.op_type == "HashedWeight"]
    assert all(list(a.ints) != [50000, 64] for n in hashed_weights for a in n.attribute if a.name == "shape")
    fresh = torch.randint(0, 50000, (5, 12), generator=torch.Generator().manual_seed(1)).numpy()
    expected = Model(hpk).run(fresh)
    hpk_bytes = (tmp_path / "head.hpk").stat().st_size
    for mode in WEIGHT_MODES:
        exported = build_onnx(hpk, mode)
        np.testing.assert_allclose(_run(exported, hpk, fresh), expected, **ONNX_TOLERANCE)
        if mode != "expanded":  # the size bound of tests/test_onnx_export.py
            assert len(serialize_onnx(exported)) <= 1.05 * hpk_bytes + 16 * 1024


@pytest.mark.parametrize("mode", WEIGHT_MODES)
def test_same_file_same_bytes(hashed: dict[str, HpkFile], mode: str) -> None:
    for case_id in ("mha-plumbing", "embedding-padding-idx", "constant-cls-pos"):
        first = serialize_onnx(build_onnx(hashed[case_id], mode))
        assert serialize_onnx(build_onnx(hashed[case_id], mode)) == first

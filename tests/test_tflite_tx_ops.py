"""The transformer ops (docs/FORMAT.md §5, issue 15) in the TFLite exporter: LiteRT against the numpy runtime.

- ``tx_op_cases.CASES`` (shared by every backend): each case exported in every weights mode
  (its params are dense, so the modes differ only in the graph's plumbing) and run in LiteRT with
  XNNPACK and with the builtin kernels only, against the numpy runtime and torch's golden outputs;
- small *hashed* transformer models (compressed by hashpack, packed by the packer): embedding
  tables, attention in-projections, feed-forward and head Linear layers whose weights the graph
  decompresses, in once, inline, expanded and a materialized ``--materializable`` once file.

Tolerance as tests/test_tflite_zoo_ops.py: max |LiteRT - reference| <= 1e-4 · max |reference| + 1e-6.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from ai_edge_litert.interpreter import Interpreter
from litert_tools import RESOLVERS, opcode_names, run_serving
from test_tflite_export import _assert_close
from torch import nn
from tx_op_cases import CASE_IDS, CASES, TX_OPS, TxCase, case_hpk

import hashpack
from hashpack.exporter.tflite import WEIGHT_MODES, build_tflite, tx_ops
from hashpack.exporter.tflite.graph import OPS as EXPORTER_OPS
from hashpack.exporter.tflite.materialize import materialize
from hashpack.models import EmbeddingMeanHead, TextClassifier
from hashpack.runtime import load, write_hpk
from hashpack.runtime.hpk import ValueInfo


def _input_type(data: bytes) -> np.dtype:
    interpreter = Interpreter(model_content=data)
    (detail,) = interpreter.get_signature_runner("serving_default").get_input_details().values()
    return np.dtype(detail["dtype"])


def _case_input(case: TxCase, model_inputs: np.ndarray) -> np.ndarray:
    """Batch 3 (not the golden 2), int32 for an ids case."""
    x = np.concatenate([model_inputs, model_inputs[:1][:, ::-1] if case.vocab else 3 * model_inputs[:1]])
    return np.ascontiguousarray(x.astype(np.int32) if case.vocab else x)


def test_every_tx_op_is_exported_and_has_a_case() -> None:
    assert set(TX_OPS) <= set(EXPORTER_OPS)
    assert set(TX_OPS) <= set().union(*(case.ops for case in CASES))


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_shared_case_matches_numpy_runtime(tmp_path: Path, case: TxCase) -> None:
    path = tmp_path / f"{case.id}.hpk"
    write_hpk(case_hpk(case), path)
    model = load(path)
    x = _case_input(case, model.golden_inputs)
    want = model.run(x)
    for mode in WEIGHT_MODES:
        exported = build_tflite(path, mode)
        assert _input_type(exported.data) == (np.int32 if case.vocab else np.float32)
        assert "CUSTOM" not in opcode_names(exported.data)
        for resolver in RESOLVERS:
            got = run_serving(exported.data, x, exported.input_name, exported.output_name, resolver)
            _assert_close(got, want, f"{case.id} {mode} {resolver} vs numpy runtime")
            _assert_close(got[:2], model.golden_outputs, f"{case.id} {mode} {resolver} vs torch")


def _case(case_id: str) -> TxCase:
    return next(c for c in CASES if c.id == case_id)


def test_lowerings_use_the_intended_builtin_ops(tmp_path: Path) -> None:
    """GELU with its flag, BATCH_MATMUL (a Transpose before it folds into adj_x/adj_y), the causal
    mask as an ADD, GATHER for tables, BROADCAST_TO for constants (docs/TFLITE.md)."""

    def ops_of(case_id: str) -> set[str]:
        path = tmp_path / f"{case_id}.hpk"
        write_hpk(case_hpk(_case(case_id)), path)
        return opcode_names(build_tflite(path, "expanded").data)

    assert "GELU" in ops_of("gelu-tanh")
    ops = ops_of("matmul-rank3")
    assert "BATCH_MATMUL" in ops and "TRANSPOSE" not in ops  # x @ xᵀ: adj_y, no data moved
    assert {"BATCH_MATMUL", "SOFTMAX", "ADD", "MUL"} <= ops_of("attention-causal")
    assert "ADD" not in ops_of("attention-self")  # no mask without causal
    assert {"RSQRT", "MEAN", "SUB"} <= ops_of("layernorm-two-dims")
    assert "GATHER" in ops_of("embedding-tokens")
    assert "GATHER" in ops_of("constant-rank1") and "BROADCAST_TO" not in ops_of("constant-rank1")
    assert "TRANSPOSE" not in ops_of("linear-rank3")  # FULLY_CONNECTED keeps [N, L]


def test_padding_row_and_bad_ids(tmp_path: Path) -> None:
    """padding_idx rows read as zero; ids outside the table fail the invoke (never read memory)."""
    path = tmp_path / "pad.hpk"
    write_hpk(case_hpk(_case("embedding-padding-idx")), path)
    for mode in WEIGHT_MODES:
        data = build_tflite(path, mode).data
        for resolver in RESOLVERS:
            assert not run_serving(data, np.full((2, 3, 4), 2, np.int32), "x", "y0", resolver).any()
            with pytest.raises((RuntimeError, ValueError)):
                run_serving(data, np.full((1, 3, 4), 5, np.int32), "x", "y0", resolver)


# --------------------------------------------------------------- hashed transformer models


@functools.cache
def _hashed(name: str, root: str) -> Path:
    """A small model compressed 1/8 with hashed weights and packed (all its tx ops together)."""
    torch.manual_seed(0)
    if name == "text":  # Embedding + 2 TransformerEncoderLayers (batch_first) + mean + Linear
        model: nn.Module = TextClassifier(300, 32)
        example = torch.randint(0, 300, (2, 7))
    elif name == "recommender":  # Embedding + mean head
        model = EmbeddingMeanHead(500, 16)
        example = torch.randint(0, 500, (2, 5))
    else:  # a small ViT: class token, positional embedding (Constant), GELU, attention
        from hashpack.torchvision_compat import torchvision_models

        model = torchvision_models().VisionTransformer(
            image_size=16, patch_size=8, num_layers=1, num_heads=2, hidden_dim=32, mlp_dim=64, num_classes=5
        )
        nn.init.normal_(model.heads.head.weight, std=0.1)
        example = torch.randn(2, 3, 16, 16)
    hashpack.compress(model, "hashed", compression=1 / 8, seed=3)
    model.eval()
    path = Path(root) / f"{name}.hpk"
    hashpack.pack(model, example, path)
    return path


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tx")


@pytest.mark.parametrize("name", ["text", "recommender", "vit"])
def test_hashed_models_match_numpy_runtime_in_every_mode(workdir: Path, name: str) -> None:
    path = _hashed(name, str(workdir))
    model = load(path)
    rng = np.random.default_rng(1)
    if model.hpk.input.dtype == "int32":
        vocab = next(
            model.hpk.params[n.params["weight"]].shape[0] for n in model.hpk.nodes if n.op == "Embedding"
        )
        x = rng.integers(0, vocab, (3, *model.hpk.input.shape[1:])).astype(np.int32)
    else:
        x = rng.standard_normal((3, *model.hpk.input.shape[1:])).astype(np.float32)
    want = model.run(x)
    assert float(np.std(want)) > 1e-3
    files = {mode: build_tflite(path, mode).data for mode in WEIGHT_MODES}
    files["materialized"] = materialize(build_tflite(path, "once", materializable=True).data)
    files["once-plain"] = build_tflite(path, "once", materializable=False).data  # no template
    for kind, data in files.items():
        assert "CUSTOM" not in opcode_names(data)
        for resolver in RESOLVERS:
            got = run_serving(data, x, model.hpk.input.name, model.hpk.output.name, resolver)
            _assert_close(got, want, f"{name} {kind} {resolver}")
    ratio = 1.5 if name == "vit" else 3  # the tiny ViT's dense positions/LayerNorms and graph weigh more
    # the weights stay compressed in the file (the default once file adds the materialize template)
    assert len(files["once-plain"]) < len(files["expanded"]) / ratio


@pytest.mark.parametrize("padding_idx", [None, 3])
def test_hashed_table_rows_are_hashed_per_lookup_bit_exact(tmp_path: Path, padding_idx: int | None) -> None:
    """A large hashed table in once/inline mode: only the looked-up rows are hashed (no table
    variable, no init subgraph), bit-identical to the numpy runtime; out-of-range ids fail."""
    torch.manual_seed(0)
    model = EmbeddingMeanHead(2000, 40)  # 80000 elements >= ROW_GATHER_MIN_ELEMENTS
    hashpack.compress(model, "hashed", compression=1 / 8, seed=4)
    model.eval()
    hpk = hashpack.pack(model, torch.randint(0, 2000, (2, 5)), tmp_path / "full.hpk")
    embedding = hpk.nodes[0]
    assert embedding.op == "Embedding" and hpk.params[embedding.params["weight"]].scheme == "hashed"
    attrs = {} if padding_idx is None else {"padding_idx": padding_idx}
    hpk.nodes = [replace(embedding, attrs={**embedding.attrs, **attrs})]
    hpk.outputs = [ValueInfo(embedding.outputs[0], (None, 5, 40))]
    hpk.golden = None
    hpk.tensors = {k: v for k, v in hpk.tensors.items() if not k.startswith("golden/")}
    path = tmp_path / "rows.hpk"
    write_hpk(hpk, path)
    runtime = load(path)
    ids = np.random.default_rng(2).integers(0, 2000, (4, 5)).astype(np.int32)
    ids[0, :2] = [3, 1999]
    want = runtime.run(ids)
    for mode in WEIGHT_MODES:
        data = build_tflite(path, mode).data
        ops = opcode_names(data)
        assert ("BITWISE_XOR" in ops and "CALL_ONCE" not in ops) == (mode != "expanded"), (mode, ops)
        for resolver in RESOLVERS:
            got = run_serving(data, ids, hpk.input.name, embedding.outputs[0], resolver)
            np.testing.assert_array_equal(got, want, err_msg=f"{mode} {resolver}")
            for bad in (2000, -1):
                with pytest.raises((RuntimeError, ValueError)):
                    run_serving(
                        data, np.full((1, 5), bad, np.int32), hpk.input.name, embedding.outputs[0], resolver
                    )


def _variants(value: object) -> list[object]:
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [0, 1, 2, 3, -1, -2, value + 1, 2**31 - 1]
    if isinstance(value, float):
        return [0.0, -1.0, 1e-12, 1e30, float("nan")]
    if isinstance(value, list):
        return [list(reversed(value)), value[:-1], [*value, 1], [0] * len(value), [-1] * len(value)]
    return []


def test_reader_accepted_attr_variants_export_and_run(tmp_path: Path) -> None:
    """Every attr of every tx case's nodes replaced by plausible and hostile values: whatever the
    reader accepts exports (once and expanded), runs in LiteRT and matches the numpy runtime;
    anything else is an HpkFormatError naming the file."""
    from hashpack.runtime import HpkFormatError

    accepted = rejected = 0
    for case in CASES:
        base = case_hpk(case)
        for i, node in enumerate(base.nodes):
            for key in sorted(node.attrs):
                for value in _variants(node.attrs[key]):
                    hpk = case_hpk(case)
                    hpk.nodes[i] = replace(node, attrs={**node.attrs, key: value})
                    hpk.golden = None
                    hpk.tensors = {k: v for k, v in hpk.tensors.items() if not k.startswith("golden/")}
                    path = tmp_path / "variant.hpk"
                    try:
                        write_hpk(hpk, path)  # the reader's checks and shape rules
                        model = load(path)
                    except (HpkFormatError, ValueError, TypeError, KeyError):
                        rejected += 1
                        continue
                    accepted += 1
                    x = _case_input(case, case_hpk(case).golden_arrays()[0])  # type: ignore[index]
                    try:
                        want = model.run(x)
                    except ValueError:
                        continue  # e.g. a padding_idx the numpy runtime rejects at run time
                    for mode in ("once", "expanded"):
                        try:
                            exported = build_tflite(path, mode)
                        except HpkFormatError as exc:
                            assert str(exc).startswith(str(path)) and "not supported" in str(exc), exc
                            continue
                        got = run_serving(
                            exported.data, x, exported.input_name, exported.output_name, "builtin"
                        )
                        what = f"{case.id} node {i} {key}={value!r} {mode}"
                        if np.isnan(want).any():
                            assert np.isnan(got).any(), what
                            continue
                        _assert_close(got, want, what)
    print(f"attr variants: {accepted} accepted, {rejected} rejected")
    assert accepted >= 20 and rejected >= 20, (accepted, rejected)


@pytest.mark.parametrize("case", [c for c in CASES if c.hashed], ids=[c.id for c in CASES if c.hashed])
@pytest.mark.parametrize("rows", [True, False], ids=["rows", "table"])
def test_shared_hashed_table_cases_both_ways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: TxCase, rows: bool
) -> None:
    """The shared hashed-table cases with the looked-up rows hashed (threshold 0) and with the
    table decoded (threshold above the table): bit-identical to the numpy runtime either way."""
    monkeypatch.setattr(tx_ops, "ROW_GATHER_MIN_ELEMENTS", 0 if rows else 1 << 62)
    path = tmp_path / f"{case.id}.hpk"
    write_hpk(case_hpk(case), path)
    model = load(path)
    x = _case_input(case, model.golden_inputs)
    want = model.run(x)
    for mode in WEIGHT_MODES:
        data = build_tflite(path, mode).data
        ops = opcode_names(data)
        if mode == "once":  # the table decoded by the init subgraph, or no init subgraph at all
            assert ("CALL_ONCE" in ops) != rows, ops
        if mode == "inline":  # the table's flat indices are a RANGE; the rows' come from the ids
            assert ("RANGE" in ops) != rows and "BITWISE_XOR" in ops, ops
        for resolver in RESOLVERS:
            got = run_serving(data, x, "x", model.hpk.output.name, resolver)
            if case.ops == {"Embedding"}:
                np.testing.assert_array_equal(got, want, err_msg=f"{case.id} {mode} {resolver}")
            else:
                _assert_close(got, want, f"{case.id} {mode} {resolver}")

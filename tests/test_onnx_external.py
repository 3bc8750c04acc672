"""App-side decompression for ONNX Runtime (exporter/onnx/external.py): same weights, same outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto

import hashpack
from hashpack.exporter.onnx import export_onnx
from hashpack.exporter.onnx.external import decode_weights, decoded_session
from hashpack.exporter.onnx.functions import DOMAIN, HASHED_WEIGHT
from hashpack.models import LeNet5
from hashpack.nn.quantize import quantize
from hashpack.runtime import load


def _export(tmp_path: Path, name: str, method: str = "hashed", mode: str | None = None) -> tuple[Path, Path]:
    torch.manual_seed(0)
    model = hashpack.compress(LeNet5((1, 12, 12), 10), method=method, compression=1 / 8, seed=5).eval()
    if mode is not None:
        quantize(model, mode)
    hpk = tmp_path / f"{name}.hpk"
    hashpack.pack(model, torch.randn(2, 1, 12, 12), hpk)
    onnx_path = tmp_path / f"{name}.onnx"
    export_onnx(hpk, onnx_path, weights="compact")
    return hpk, onnx_path


def _run(session: ort.InferenceSession, x: np.ndarray) -> np.ndarray:
    return session.run(None, {session.get_inputs()[0].name: x})[0]


@pytest.mark.parametrize("mode", [None, "fp16", "int8"])
def test_decoded_weights_are_the_numpy_runtimes_and_outputs_match(tmp_path: Path, mode: str | None) -> None:
    hpk, onnx_path = _export(tmp_path, f"lenet_{mode}", mode=mode)
    runtime = load(hpk)
    decoded = decode_weights(onnx.load(str(onnx_path)))
    hashed = [p for p in runtime.hpk.params.values() if p.scheme == "hashed"]
    assert set(decoded.weights) == {p.name for p in hashed}
    for name, array in decoded.weights.items():
        assert array.dtype == np.float32 and array.shape == runtime.weights[name].shape
        assert np.array_equal(array.view(np.uint32), runtime.weights[name].view(np.uint32)), name
    # the calls, the spaces' dequantization and the spaces themselves are gone
    assert not any(node.domain == DOMAIN for node in decoded.model.graph.node)
    assert not decoded.model.functions
    assert not any(t.name.startswith("spaces/") for t in decoded.model.graph.initializer)
    external = [t for t in decoded.model.graph.initializer if t.data_location == TensorProto.EXTERNAL]
    assert {t.name for t in external} == set(decoded.weights)

    x = np.random.default_rng(0).standard_normal((3, 1, 12, 12)).astype(np.float32)
    fast = decoded_session(onnx_path)
    stock = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(_run(fast, x), _run(stock, x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(_run(fast, x), runtime.run(x), rtol=1e-4, atol=1e-4)


def test_other_schemes_stay_in_the_graph_for_ort_to_fold(tmp_path: Path) -> None:
    hpk, onnx_path = _export(tmp_path, "fresh", method="fresh")
    decoded = decode_weights(onnx.load(str(onnx_path)))
    remaining = {node.op_type for node in decoded.model.graph.node if node.domain == DOMAIN}
    assert remaining and HASHED_WEIGHT not in remaining  # FreshWeight kept, hashed Linear layers decoded
    x = np.random.default_rng(1).standard_normal((2, 1, 12, 12)).astype(np.float32)
    np.testing.assert_allclose(_run(decoded_session(onnx_path), x), load(hpk).run(x), rtol=1e-4, atol=1e-4)


def _first_call(model: onnx.ModelProto) -> onnx.NodeProto:
    return next(n for n in model.graph.node if n.domain == DOMAIN and n.op_type == HASHED_WEIGHT)


@pytest.mark.parametrize(
    ("attribute", "value", "message"),
    [
        ("shape", [2**20, 2**10], "exceed the format's limits"),  # 2^30 weights from a few hundred buckets
        ("shape", [0, 5], "out of range"),
        ("seed", 2**32, "out of range"),
        ("seed", -1, "out of range"),
        ("function", 2**16, "out of range"),
    ],
)
def test_hostile_calls_are_refused_before_allocating(
    tmp_path: Path, attribute: str, value: object, message: str
) -> None:
    _, onnx_path = _export(tmp_path, "hostile")
    model = onnx.load(str(onnx_path))
    node = _first_call(model)
    kept = [a for a in node.attribute if a.name != attribute]
    del node.attribute[:]
    node.attribute.extend([*kept, onnx.helper.make_attribute(attribute, value)])
    with pytest.raises(ValueError, match=message):
        decode_weights(model, "hostile.onnx")


def test_non_finite_buckets_are_refused(tmp_path: Path) -> None:
    _, onnx_path = _export(tmp_path, "nan")
    model = onnx.load(str(onnx_path))
    space = _first_call(model).input[0]
    tensor = next(t for t in model.graph.initializer if t.name == space)
    array = onnx.numpy_helper.to_array(tensor).copy()
    array[0] = np.nan
    tensor.CopyFrom(onnx.numpy_helper.from_array(array, space))
    with pytest.raises(ValueError, match="NaN or infinite"):
        decode_weights(model)

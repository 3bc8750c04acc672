"""The ONNX form of the hp32 hash must be bit-identical to the numpy runtime (docs/FORMAT.md §1).

Every model is checked by the full ONNX checker and strict shape inference, run by stock ONNX
Runtime both folded at session creation (the product path) and unfolded (the in-graph path), in
the function form (ai.hashpack local functions) and the inline form (plain standard ops).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from hashpack.exporter.onnx import functions as hf
from hashpack.runtime.hashing import gather_signed

VECTORS = json.loads((Path(__file__).parent / "vectors" / "hash_vectors.json").read_text())
MODES = ["function", "inline"]
IR_VERSION = 10  # what onnxruntime >= 1.18 reads
FOLDED = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
UNFOLDED = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
HASH_OPS = {"Range", "BitShift", "BitwiseXor", "Mod", "Gather", hf.HASHED_WEIGHT, hf.HP32}

# (num_buckets, seed, function, shape): every K in {1, 7, 12500, 2**20} with every f in {0, 1, 3},
# two ~1e6-element tensors, and the edge shapes (scalar, empty).
WEIGHT_CASES = [
    (1, 0, 0, (5,)),
    (1, 0xFFFFFFFF, 1, (3, 4)),
    (1, 17, 3, ()),
    (7, 1, 0, (3, 4, 5)),
    (7, 0x9E3779B9, 1, (1000, 1000)),
    (7, 2024, 3, (5, 0)),
    (12500, 42, 0, (784, 300)),
    (12500, 2840119437, 1, (300,)),
    (12500, 42, 3, (64, 3, 3, 3)),
    (2**20, 915522104, 0, (1000, 1000)),
    (2**20, 3, 1, (0, 7)),
    (2**20, 0xFFFFFFFF, 3, (4097,)),
]


def _space(num_buckets: int) -> np.ndarray:
    return np.random.default_rng(num_buckets).standard_normal(num_buckets).astype(np.float32)


def _model(mode: str, graph: onnx.GraphProto, opset: int = hf.MIN_OPSET) -> onnx.ModelProto:
    functions = hf.local_functions(opset) if mode == "function" else []
    model = helper.make_model(
        graph, opset_imports=hf.opset_imports(opset), functions=functions, ir_version=IR_VERSION
    )
    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    return model


def _weight_nodes(mode: str, space: str, output: str, seed: int, function: int, shape) -> list:
    if mode == "function":
        return [hf.hashed_weight_node(space, output, seed=seed, shape=shape, function=function)]
    return hf.hashed_weight_nodes(space, output, seed=seed, shape=shape, function=function)


def _session(model: onnx.ModelProto, level=FOLDED, optimized_path: Path | None = None):
    options = ort.SessionOptions()
    options.graph_optimization_level = level
    options.log_severity_level = 3  # the optimized-model "hardware specific" warning is expected
    if optimized_path is not None:
        options.optimized_model_filepath = str(optimized_path)
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _assert_bits_equal(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    assert np.array_equal(actual.view(np.uint32), expected.view(np.uint32))


def _weights_model(mode: str, opset: int = hf.MIN_OPSET) -> onnx.ModelProto:
    """All WEIGHT_CASES in one graph (one session per mode keeps the suite fast)."""
    spaces = {k: numpy_helper.from_array(_space(k), f"space_{k}") for k, *_ in WEIGHT_CASES}
    nodes, outputs = [], []
    for n, (k, seed, function, shape) in enumerate(WEIGHT_CASES):
        nodes += _weight_nodes(mode, f"space_{k}", f"w{n}", seed, function, shape)
        outputs.append(helper.make_tensor_value_info(f"w{n}", TensorProto.FLOAT, list(shape)))
    graph = helper.make_graph(nodes, "hashed_weights", [], outputs, list(spaces.values()))
    return _model(mode, graph, opset)


@pytest.mark.parametrize("level", [FOLDED, UNFOLDED], ids=["folded", "unfolded"])
@pytest.mark.parametrize("mode", MODES)
def test_weights_bit_identical_to_numpy(mode: str, level) -> None:
    results = _session(_weights_model(mode), level).run(None, {})
    for (k, seed, function, shape), weight in zip(WEIGHT_CASES, results, strict=True):
        expected = gather_signed(_space(k), int(np.prod(shape)), seed, function).reshape(shape)
        _assert_bits_equal(weight, expected)


@pytest.mark.parametrize("opset", [21, 23])
def test_newer_opsets(opset: int) -> None:
    (k, seed, function, shape) = WEIGHT_CASES[3]
    for mode in MODES:
        nodes = _weight_nodes(mode, "space", "w", seed, function, shape)
        out = helper.make_tensor_value_info("w", TensorProto.FLOAT, list(shape))
        graph = helper.make_graph(nodes, "g", [], [out], [numpy_helper.from_array(_space(k), "space")])
        (weight,) = _session(_model(mode, graph, opset)).run(None, {})
        _assert_bits_equal(
            weight, gather_signed(_space(k), int(np.prod(shape)), seed, function).reshape(shape)
        )


def _linear_model(mode: str, seed: int = 2840119437) -> onnx.ModelProto:
    """y = x @ W with W a hashed [784, 300] weight, the shape of a first MNIST layer."""
    nodes = [
        *_weight_nodes(mode, "space", "W", seed, 0, (784, 300)),
        helper.make_node("MatMul", ["x", "W"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "hashed_linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 784])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 300])],
        [numpy_helper.from_array(_space(12500), "space")],
    )
    return _model(mode, graph)


@pytest.mark.parametrize("mode", MODES)
def test_matmul_weight_is_folded_to_dense(mode: str, tmp_path: Path) -> None:
    optimized = tmp_path / "optimized.onnx"
    session = _session(_linear_model(mode), optimized_path=optimized)
    x = np.random.default_rng(1).standard_normal((4, 784)).astype(np.float32)
    (y,) = session.run(None, {"x": x})
    weight = gather_signed(_space(12500), 784 * 300, 2840119437).reshape(784, 300)
    # ORT pre-packs constant MatMul weights (another summation order): compare with a tolerance.
    np.testing.assert_allclose(y, x @ weight, rtol=1e-5, atol=1e-4)

    folded = onnx.load(optimized)
    assert not HASH_OPS & {node.op_type for node in folded.graph.node}
    assert not folded.functions
    dense = [numpy_helper.to_array(t) for t in folded.graph.initializer if list(t.dims) == [784, 300]]
    assert len(dense) == 1
    _assert_bits_equal(dense[0], weight)
    assert all(list(t.dims) != [12500] for t in folded.graph.initializer)  # the space is gone


@pytest.mark.parametrize("mode", MODES)
def test_weight_output_is_folded_to_initializer(mode: str, tmp_path: Path) -> None:
    optimized = tmp_path / "optimized.onnx"
    nodes = _weight_nodes(mode, "space", "w", 7, 1, (30, 20))
    out = helper.make_tensor_value_info("w", TensorProto.FLOAT, [30, 20])
    graph = helper.make_graph(nodes, "g", [], [out], [numpy_helper.from_array(_space(7), "space")])
    _session(_model(mode, graph), optimized_path=optimized)
    folded = onnx.load(optimized)
    assert not folded.graph.node
    (weight,) = (numpy_helper.to_array(t) for t in folded.graph.initializer if t.name == "w")
    _assert_bits_equal(weight, gather_signed(_space(7), 600, 7, 1).reshape(30, 20))


def _vectors_model(mode: str) -> onnx.ModelProto:
    """Hp32 of each vector case's indices (graph inputs), plus mix32 and (key, multiplier)."""
    inputs, outputs, nodes = [], [], []
    for n, case in enumerate(VECTORS["cases"]):
        names = [f"hash{n}", f"bucket{n}", f"sign{n}"]
        size = len(case["indices"])
        inputs.append(helper.make_tensor_value_info(f"index{n}", TensorProto.INT64, [size]))
        for name, dtype in zip(
            names, (TensorProto.UINT32, TensorProto.INT64, TensorProto.FLOAT), strict=True
        ):
            outputs.append(helper.make_tensor_value_info(name, dtype, [size]))
        kwargs = {"seed": case["seed"], "function": case["function"], "num_buckets": case["num_buckets"]}
        if mode == "function":
            nodes.append(hf.hp32_node(f"index{n}", names, **kwargs))
        else:
            nodes += hf.hp32_nodes(f"index{n}", names, **kwargs)
    # mix32 and the key derivation are emitted inline in both modes: they have no function form.
    em = hf.Emitter(prefix="vectors/")
    inputs.append(helper.make_tensor_value_info("mix_in", TensorProto.UINT32, [len(VECTORS["mix32"])]))
    outputs.append(helper.make_tensor_value_info("mix_out", TensorProto.UINT32, [len(VECTORS["mix32"])]))
    hf.emit_mix32(em, "mix_in", output="mix_out")
    for n, entry in enumerate(VECTORS["keys"]):
        key, multiplier = hf.emit_hash_key(em, entry["seed"], entry["function"])
        for name, value in ((f"key{n}", key), (f"multiplier{n}", multiplier)):
            em.op("Identity", [value], name, output=name)
            outputs.append(helper.make_tensor_value_info(name, TensorProto.UINT32, []))
    graph = helper.make_graph(nodes + em.nodes, "hp32_vectors", inputs, outputs)
    return _model(mode, graph)


@pytest.mark.parametrize("level", [FOLDED, UNFOLDED], ids=["folded", "unfolded"])
@pytest.mark.parametrize("mode", MODES)
def test_shared_vectors(mode: str, level) -> None:
    feeds = {f"index{n}": np.array(c["indices"], np.int64) for n, c in enumerate(VECTORS["cases"])}
    feeds["mix_in"] = np.array([m["x"] for m in VECTORS["mix32"]], np.uint32)
    session = _session(_vectors_model(mode), level)
    result = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds), strict=True))
    for n, case in enumerate(VECTORS["cases"]):
        assert result[f"hash{n}"].tolist() == case["hashes"]
        assert result[f"bucket{n}"].tolist() == case["buckets"]
        assert result[f"sign{n}"].tolist() == case["signs"]
    assert result["mix_out"].tolist() == [m["mix32"] for m in VECTORS["mix32"]]
    for n, entry in enumerate(VECTORS["keys"]):
        assert (int(result[f"key{n}"]), int(result[f"multiplier{n}"])) == (entry["key"], entry["multiplier"])


def test_onnx_reference_evaluator_agrees() -> None:
    """The graph means the hash by ONNX semantics, not by an ORT accident."""
    from onnx.reference import ReferenceEvaluator

    for mode in MODES:
        nodes = _weight_nodes(mode, "space", "w", 0x9E3779B9, 3, (40, 25))
        out = helper.make_tensor_value_info("w", TensorProto.FLOAT, [40, 25])
        graph = helper.make_graph(nodes, "g", [], [out], [numpy_helper.from_array(_space(12500), "space")])
        (weight,) = ReferenceEvaluator(_model(mode, graph)).run(None, {})
        _assert_bits_equal(weight, gather_signed(_space(12500), 1000, 0x9E3779B9, 3).reshape(40, 25))


def test_inline_nodes_only_use_standard_ops() -> None:
    nodes = hf.hashed_weight_nodes("space", "w", seed=1, shape=(2, 3))
    assert {node.domain for node in nodes} == {""}
    assert nodes[-1].output == ["w"] and all(n.output[0].startswith("w/hp32/") for n in nodes[:-1])
    (function,) = [f for f in hf.local_functions() if f.name == hf.HASHED_WEIGHT]
    # one code path: the function body is the inline node list up to value names and attributes
    assert [n.op_type for n in function.node] == [n.op_type for n in nodes]


@pytest.mark.parametrize(
    ("call", "kwargs"),
    [
        (hf.hashed_weight_node, {"seed": -1, "shape": (2,)}),
        (hf.hashed_weight_node, {"seed": 2**32, "shape": (2,)}),
        (hf.hashed_weight_nodes, {"seed": 1, "shape": (2,), "function": 2**16}),
        (hf.hashed_weight_nodes, {"seed": 1, "shape": (2**16, 2**15)}),
        (hf.hashed_weight_nodes, {"seed": 1, "shape": (-1, 3)}),
    ],
)
def test_rejects_out_of_spec_arguments(call, kwargs) -> None:
    with pytest.raises(ValueError):
        call("space", "w", **kwargs)


def test_rejects_bad_bucket_count_and_opset() -> None:
    with pytest.raises(ValueError):
        hf.hp32_nodes("i", ["h", "b", "s"], seed=1, num_buckets=2**30 + 1)
    with pytest.raises(ValueError):
        hf.hp32_node("i", ["h", "b", "s"], seed=1, num_buckets=0)
    with pytest.raises(ValueError):
        hf.hashed_weight_function(opset=17)

"""The TFLite writer and the hp32 decompression as LiteRT builtin ops (docs/FORMAT.md §1).

The weights LiteRT regenerates must be bit-identical to the numpy runtime's, and the graph must
reproduce the shared test vectors; the once mode must decompress on the first invoke only.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hashpack.exporter.tflite import (
    ModelBuilder,
    OnceInitializer,
    emit_bucket_and_sign,
    emit_gather_signed,
    emit_hash,
    make_interpreter,
    run_signature,
)
from hashpack.exporter.tflite.schema import schema
from hashpack.runtime.hashing import gather_signed

VECTORS = Path(__file__).parent / "vectors" / "hash_vectors.json"


def _bucket_values(num_buckets: int, seed: int) -> np.ndarray:
    values = np.random.default_rng(seed).standard_normal(num_buckets).astype(np.float32)
    values[0] = 0.0  # a zero bucket: the sign must give -0.0 exactly where numpy flips it
    return values


def _decompress_in_litert(values: np.ndarray, size: int, seed: int, function: int, **kwargs) -> np.ndarray:
    """Test-only model: no input, the virtual tensor as its output."""
    model = ModelBuilder()
    sg = model.add_subgraph("main")
    sg.mark_output(emit_gather_signed(sg, values, size, seed, function, name="weight", **kwargs))
    model.add_signature(sg)
    return run_signature(make_interpreter(model.to_bytes()), {})["weight"]


@pytest.mark.parametrize(
    ("size", "num_buckets", "seed", "function"),
    [
        (1, 1, 0, 0),
        (1000, 1, 1, 3),
        (12_345, 7, 0xFFFFFFFF, 0),
        (1_000_000, 12_500, 42, 0),
        (784_000, 12_500, 2840119437, 3),
        (300_000, 2**20, 915522104, 1),
        (65_537, 2**20, 2024, 0),
    ],
)
def test_decompression_is_bit_identical_to_numpy(
    size: int, num_buckets: int, seed: int, function: int
) -> None:
    values = _bucket_values(num_buckets, seed)
    got = _decompress_in_litert(values, size, seed, function)
    want = gather_signed(values, size, seed, function)
    assert got.dtype == np.float32 and got.shape == (size,)
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))


def test_chunked_decompression_and_reshape_are_bit_identical() -> None:
    values = _bucket_values(12_500, 5)
    got = _decompress_in_litert(values, 300 * 701, 77, 1, shape=(300, 701), chunk_size=50_000)
    want = gather_signed(values, 300 * 701, 77, 1).reshape(300, 701)
    assert got.shape == (300, 701)
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))


def test_bucket_values_from_a_tensor() -> None:
    """Spaces stored as int8/float16 are dequantised in the graph, then gathered from a tensor."""
    space = np.array([-128, -1, 0, 3, 127], dtype=np.int32)
    scale = np.float32(0.5)
    model = ModelBuilder()
    sg = model.add_subgraph("main")
    q = sg.add_input("space", np.int32, [5])
    f = sg.op("CAST", [q], np.float32, [5], schema.CastOptionsT())
    deq = sg.op("MUL", [f, sg.constant(scale)], np.float32, [5], schema.MulOptionsT())
    sg.mark_output(emit_gather_signed(sg, deq, 999, 3, 0, (9, 111), name="w"))
    model.add_signature(sg)
    got = run_signature(make_interpreter(model.to_bytes()), {"space": space})["w"]
    want = gather_signed(space.astype(np.float32) * scale, 999, 3).reshape(9, 111)
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))


def test_graph_reproduces_shared_hash_vectors() -> None:
    """One graph, one input per case: h, bucket and sign for the file's indices."""
    cases = json.loads(VECTORS.read_text())["cases"]
    model = ModelBuilder()
    sg = model.add_subgraph("main")
    feeds = {}
    for c, case in enumerate(cases):
        index = sg.add_input(f"index{c}", np.int32, [len(case["indices"])])
        h = emit_hash(sg, index, case["seed"], case["function"], name=f"hash{c}")
        bucket, sign = emit_bucket_and_sign(sg, h, case["num_buckets"], name=f"case{c}")
        for t in (h, bucket, sign):
            sg.mark_output(t)
        feeds[f"index{c}"] = np.array(case["indices"], dtype=np.int32)
    model.add_signature(sg)
    out = run_signature(make_interpreter(model.to_bytes()), feeds)
    for c, case in enumerate(cases):
        assert out[f"hash{c}"].dtype == np.uint32
        assert out[f"hash{c}"].tolist() == case["hashes"], c
        assert out[f"case{c}/bucket"].tolist() == case["buckets"], c
        assert out[f"case{c}/sign"].tolist() == [float(s) for s in case["signs"]], c


def _once_fc_model(values: np.ndarray, n_in: int, n_out: int) -> bytes:
    """x [batch, n_in] -> FULLY_CONNECTED with hashed weight and bias held in resource variables.

    The weight is also a graph output (test only) so its bits can be compared.
    """
    model = ModelBuilder()
    main = model.add_subgraph("main")
    x = main.add_input("x", np.float32, [None, n_in])
    init = OnceInitializer(model, main)
    init.assign("fc.weight", emit_gather_signed(init.subgraph, values, n_in * n_out, 11, 0, (n_out, n_in)))
    init.assign("fc.bias", emit_gather_signed(init.subgraph, values, n_out, 12, 0))
    weight = init.read("fc.weight")
    y = main.op(
        "FULLY_CONNECTED",
        [x, weight, init.read("fc.bias")],
        np.float32,
        [None, n_out],
        schema.FullyConnectedOptionsT(),
        name="y",
    )
    main.mark_output(y)
    main.mark_output(weight)
    model.add_signature(main, inputs={"x": x}, outputs={"y": y, "weight": weight})
    return model.to_bytes()


def test_once_mode_fully_connected_matches_numpy() -> None:
    n_in, n_out = 64, 30
    values = _bucket_values(97, 3)
    weight = gather_signed(values, n_in * n_out, 11).reshape(n_out, n_in)
    bias = gather_signed(values, n_out, 12)
    runner = make_interpreter(_once_fc_model(values, n_in, n_out)).get_signature_runner()
    rng = np.random.default_rng(0)
    for batch in (1, 1, 4, 1):  # first invoke initialises; later ones (and a resize) reuse the variables
        x = rng.standard_normal((batch, n_in)).astype(np.float32)
        out = runner(x=x)
        assert np.array_equal(out["weight"].view(np.uint32), weight.view(np.uint32))
        np.testing.assert_allclose(out["y"], x @ weight.T + bias, rtol=1e-5, atol=1e-5)


def test_call_once_runs_the_init_subgraph_once() -> None:
    """main increments a variable the init subgraph set to 10: 11, 12, 13 proves a single init."""
    model = ModelBuilder()
    main = model.add_subgraph("main")
    x = main.add_input("x", np.float32, [1])
    init = OnceInitializer(model, main)
    init.assign("counter", init.subgraph.constant(np.array([10.0], np.float32)))
    count = main.op("ADD", [init.read("counter"), x], np.float32, [1], schema.AddOptionsT(), name="count")
    handle = main.op("VAR_HANDLE", [], "resource", [], _var_options("counter"), name="counter/handle2")
    main.add_op("ASSIGN_VARIABLE", [handle, count], [], schema.AssignVariableOptionsT())
    main.mark_output(count)
    model.add_signature(main)
    runner = make_interpreter(model.to_bytes()).get_signature_runner()
    seen = [float(runner(x=np.ones(1, np.float32))["count"][0]) for _ in range(3)]
    assert seen == [11.0, 12.0, 13.0]


def _var_options(shared_name: str) -> object:
    options = schema.VarHandleOptionsT()
    options.container = ""
    options.sharedName = shared_name
    return options


def test_second_subgraph_gets_its_own_call_once() -> None:
    values = _bucket_values(7, 1)
    model = ModelBuilder()
    main = model.add_subgraph("main")
    x = main.add_input("x", np.float32, [1, 5])
    init = OnceInitializer(model, main)
    init.assign("w", emit_gather_signed(init.subgraph, values, 15, 42, 0, (3, 5)))
    fc = schema.FullyConnectedOptionsT()
    main.mark_output(main.op("FULLY_CONNECTED", [x, init.read("w"), None], np.float32, [1, 3], fc, name="y"))
    other = model.add_subgraph("other")
    x2 = other.add_input("x2", np.float32, [1, 5])
    other.mark_output(
        other.op("FULLY_CONNECTED", [x2, init.read("w", other), None], np.float32, [1, 3], fc, name="y2")
    )
    model.add_signature(main)
    model.add_signature(other, "other")
    interpreter = make_interpreter(model.to_bytes())
    xs = np.arange(5, dtype=np.float32).reshape(1, 5)
    want = xs @ gather_signed(values, 15, 42).reshape(3, 5).T
    np.testing.assert_allclose(run_signature(interpreter, {"x2": xs}, "other")["y2"], want, rtol=1e-6)
    np.testing.assert_allclose(run_signature(interpreter, {"x": xs})["y"], want, rtol=1e-6)


_DETERMINISM_SCRIPT = """
import hashlib, sys
sys.path.insert(0, {tests!r})
from test_tflite_hash import _once_fc_model, _bucket_values
print(hashlib.sha256(_once_fc_model(_bucket_values(97, 3), 64, 30)).hexdigest())
"""


def test_serialisation_is_deterministic_across_processes() -> None:
    data = _once_fc_model(_bucket_values(97, 3), 64, 30)
    assert data == _once_fc_model(_bucket_values(97, 3), 64, 30)
    script = _DETERMINISM_SCRIPT.format(tests=str(Path(__file__).parent))
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    assert result.stdout.strip() == hashlib.sha256(data).hexdigest()


def test_buffers_are_deduplicated_aligned_and_readable_by_the_tflite_package() -> None:
    import tflite

    model = ModelBuilder()
    a = model.add_subgraph("a")
    b = model.add_subgraph("b")
    big = np.arange(1001, dtype=np.float32)
    for sg in (a, b):
        inp = sg.add_input("x", np.float32, [1001])
        sg.mark_output(
            sg.op("ADD", [inp, sg.constant(big)], np.float32, [1001], schema.AddOptionsT(), name="y")
        )
        sg.constant(np.int64(7))  # odd sizes between big buffers exercise the padding
        sg.constant(np.array([1, 2, 3], np.int8))
    model.add_signature(a)
    data = model.to_bytes()
    assert data[4:8] == b"TFL3"

    parsed = tflite.Model.GetRootAsModel(data, 0)
    assert parsed.SubgraphsLength() == 2
    assert parsed.BuffersLength() == 4  # empty + big + int64 + int8, each stored once
    for i in range(1, parsed.BuffersLength()):
        buf = parsed.Buffers(i)
        start = buf._tab.Vector(buf._tab.Offset(4))
        assert start % 16 == 0, (i, start)
        assert data[start : start + buf.DataLength()] == buf.DataAsNumpy().tobytes()
    sub = parsed.Subgraphs(1)
    const = next(sub.Tensors(t) for t in range(sub.TensorsLength()) if sub.Tensors(t).Buffer() != 0)
    assert np.array_equal(parsed.Buffers(const.Buffer()).DataAsNumpy().view(np.float32), big)
    out = run_signature(make_interpreter(data), {"x": np.ones(1001, np.float32)})["y"]
    assert np.array_equal(out, big + 1)


@pytest.mark.parametrize(
    ("values", "size", "error"),
    [
        (np.ones(5, np.float64), 10, "float32"),
        (np.ones((2, 2), np.float32), 10, "1-D"),
        (np.ones(5, np.float32), 0, "virtual size"),
        (np.ones(5, np.float32), 2**31, "virtual size"),
    ],
)
def test_invalid_arguments_are_rejected(values: np.ndarray, size: int, error: str) -> None:
    sg = ModelBuilder().add_subgraph("main")
    with pytest.raises(ValueError, match=error):
        emit_gather_signed(sg, values, size, 1)


def test_tensors_cannot_cross_subgraphs() -> None:
    model = ModelBuilder()
    a, b = model.add_subgraph("a"), model.add_subgraph("b")
    x = a.add_input("x", np.float32, [1])
    with pytest.raises(ValueError, match="belongs to subgraph"):
        b.op("ADD", [x, x], np.float32, [1], schema.AddOptionsT())

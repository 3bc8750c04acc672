"""Untrusted .onnx/.tflite files run in a child process: a runtime crash, a memory bomb or a hang
becomes ``BackendCrashed`` in the parent (and exit code 2 from ``hashpack validate``), never the
death of the process. The fuzz run with many more cases is ``python benchmarks/fuzz_exports.py``."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import export_fuzz_tools as eft
import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper
from test_validate import make_model

from hashpack.cli import main
from hashpack.exporter.tflite.schema import schema
from hashpack.isolation import BackendCrashed, BackendRejected, IsolatedRunner, memory_limit
from hashpack.validation import export_model, open_backend

OUTCOMES = {"ran", "rejected at load", "rejected at run", "timeout"}


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("isolation")
    source = make_model(directory / "lenet.hpk", "hashed")
    return {
        kind: export_model(kind, mode, source, directory)
        for kind, mode in (("onnx", "compact"), ("tflite", "once"))
    }


X = np.random.default_rng(0).random((3, 1, 8, 8), dtype=np.float32)


@pytest.mark.parametrize("kind", ["onnx", "tflite"])
def test_isolated_outputs_equal_in_process_outputs(exports: dict[str, Path], kind: str) -> None:
    with IsolatedRunner(kind, exports[kind]) as run:
        first, second = run(X), run(X[:1])
    assert first.dtype == np.float32 and first.shape == (3, 10)
    in_process = open_backend(kind, exports[kind])
    np.testing.assert_array_equal(first, in_process(X))
    np.testing.assert_array_equal(second, in_process(X[:1]))


def test_a_child_killed_by_a_signal_is_reported_by_name(exports: dict[str, Path]) -> None:
    with IsolatedRunner("tflite", exports["tflite"]) as run:
        os.kill(run._process.pid, signal.SIGSEGV)
        with pytest.raises(
            BackendCrashed, match=r"lenet\.once\.tflite: LiteRT crashed while running \(killed by SIGSEGV"
        ):
            run(X)


def test_a_child_that_does_not_answer_in_time_is_killed(exports: dict[str, Path]) -> None:
    started = time.monotonic()
    with pytest.raises(BackendCrashed, match=r"did not finish loading within 0\.01 s"):
        IsolatedRunner("onnx", exports["onnx"], timeout=0.01)
    assert time.monotonic() - started < 30  # killed, not waited for


def test_errors_inside_the_child_are_rejections(tmp_path: Path, exports: dict[str, Path]) -> None:
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(100))
    with pytest.raises(BackendRejected):
        IsolatedRunner("tflite", junk)
    with IsolatedRunner("onnx", exports["onnx"]) as run, pytest.raises(BackendRejected, match="input"):
        run(np.zeros((1, 3, 5, 5), np.float32))  # wrong input shape: the runtime says so
    with IsolatedRunner("onnx", exports["onnx"]) as run:  # and the child keeps serving
        assert run(X).shape == (3, 10)


def test_a_tensor_larger_than_the_memory_cap_fails_fast(tmp_path: Path) -> None:
    """A 23-byte ConstantOfShape that asks for 6.4 GB: without the cap ORT would allocate it."""
    shape = numpy_helper.from_array(np.array([1, 1_600_000_000], np.int64), "shape")
    one = helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])
    graph = helper.make_graph(
        [
            helper.make_node("ConstantOfShape", ["shape"], ["big"], value=one),
            helper.make_node("ReduceSum", ["big"], ["total"], keepdims=0),
            helper.make_node("Add", ["x", "total"], ["y"]),
        ],
        "bomb",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 10])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])],
        [shape],
    )
    path = tmp_path / "bomb.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    assert memory_limit(path.stat().st_size) < 6.4e9
    with pytest.raises((BackendRejected, BackendCrashed)), IsolatedRunner("onnx", path) as run:
        run(np.zeros((1, 10), np.float32))


def _var_handle_writing_past_the_tensor_table(blob: bytes) -> bytes:
    """A VAR_HANDLE whose output index is one past the last tensor: stock LiteRT does not check
    it and segfaults on invoke (ai-edge-litert 2.x), found by benchmarks/fuzz_exports.py."""
    model = eft._tflite_model(blob)
    codes = [code.builtinCode for code in model.operatorCodes]
    main_graph = model.subgraphs[0]
    op = next(o for o in main_graph.operators if codes[o.opcodeIndex] == schema.BuiltinOperator.VAR_HANDLE)
    op.outputs = [len(main_graph.tensors)]
    return eft._tflite_bytes(model)


def test_a_tflite_that_crashes_litert_is_contained(tmp_path: Path, exports: dict[str, Path]) -> None:
    hostile = tmp_path / "hostile.tflite"
    hostile.write_bytes(_var_handle_writing_past_the_tensor_table(exports["tflite"].read_bytes()))
    assert eft.outcome("tflite", hostile.read_bytes(), X) in {"crashed at run (SIGSEGV)", "rejected at load"}
    result = CliRunner().invoke(
        main, ["validate", str(exports["tflite"].with_name("lenet.hpk")), "--tflite", str(hostile)]
    )
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output
    assert "hostile.tflite" in lines[0]
    assert "crashed" in lines[0] or "cannot be loaded" in lines[0]


@pytest.mark.parametrize("kind", ["onnx", "tflite"])
def test_mutated_exports_never_take_the_parent_down(exports: dict[str, Path], kind: str) -> None:
    rng = random.Random(7)
    blob = exports[kind].read_bytes()
    seen = set()
    for _ in range(12):
        _, mutated = eft.MUTATORS[kind](blob, rng, rng.choice([1, 2]))
        result = eft.outcome(kind, mutated, X[:1], timeout=120)
        assert result in OUTCOMES or result.startswith("crashed at "), result
        seen.add(result)
    assert "rejected at load" in seen  # the mutations do reach the runtime's checks


@pytest.mark.parametrize("kind", ["onnx", "tflite"])
def test_token_id_models_run_isolated_and_validate(tmp_path: Path, kind: str) -> None:
    """int32 inputs cross the pipe as int32 (a float32 frame would make LiteRT refuse the tensor)."""
    import torch

    import hashpack
    from hashpack.models import EmbeddingMeanHead

    torch.manual_seed(0)
    model = EmbeddingMeanHead(items=300, dim=8, outputs=3)
    hashpack.compress(model, compression=1 / 8, seed=4)
    model.eval()
    path = tmp_path / "ids.hpk"
    ids = torch.randint(0, 300, (4, 5))
    hashpack.pack(model, ids, path)
    exported = export_model(kind, "expanded", path, tmp_path)
    x = ids.numpy().astype(np.int32)
    with IsolatedRunner(kind, exported) as run:
        got = run(x)
    np.testing.assert_allclose(got, model(ids).detach().numpy(), atol=1e-5, rtol=1e-5)
    result = CliRunner().invoke(main, ["validate", str(path), f"--{kind}", str(exported)])
    assert result.exit_code == 0, result.output

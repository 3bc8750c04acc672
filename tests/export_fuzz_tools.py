"""Hostile .onnx and .tflite files, and what loading them in an isolated child must end in.

Shared by tests/test_isolation.py and benchmarks/fuzz_exports.py. A mutation lies about the
file's structure (operator tensor indices, shapes, buffers, types, opcodes, node inputs,
initializer dims, attributes) or flips bytes; :func:`outcome` loads and runs the result with
``hashpack.isolation.IsolatedRunner`` and names how it ended. Crashes of ONNX Runtime or LiteRT
are allowed outcomes (they are the reason for the child process); anything escaping the runner
other than its two documented exceptions is a contract violation.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable
from pathlib import Path

import flatbuffers
import numpy as np
import onnx

from hashpack.exporter.tflite.schema import schema
from hashpack.isolation import BackendCrashed, BackendRejected, IsolatedRunner

Mutation = tuple[str, bytes]  # (what was done, the file)
HOSTILE_INTS = (-2, -1, 0, 1, 3, 255, 2**16, 2**31 - 1)


# ------------------------------------------------------------------------------------- tflite


def _tflite_model(blob: bytes) -> schema.ModelT:
    """The object-API model with every index/shape list as a plain (mutable) list."""
    model = schema.ModelT.InitFromPackedBuf(blob, 0)
    for subgraph in model.subgraphs:
        for op in subgraph.operators:
            op.inputs = [] if op.inputs is None else [int(v) for v in op.inputs]
            op.outputs = [] if op.outputs is None else [int(v) for v in op.outputs]
        for tensor in subgraph.tensors:
            tensor.shape = [] if tensor.shape is None else [int(v) for v in tensor.shape]
    return model


def _tflite_bytes(model: schema.ModelT) -> bytes:
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), b"TFL3")
    return bytes(builder.Output())


def mutate_tflite(blob: bytes, rng: random.Random, steps: int = 1) -> Mutation:
    """1..steps structural lies (re-serialized, so the flatbuffer verifier passes) or byte flips."""
    if rng.random() < 0.15:
        return _byte_flips(blob, rng)
    model = _tflite_model(blob)
    labels = []
    for _ in range(steps):
        index = rng.randrange(len(model.subgraphs))
        subgraph = model.subgraphs[index]
        tensors, ops = subgraph.tensors, subgraph.operators
        choice = rng.randrange(5)
        if choice == 0 and ops:
            op = rng.choice(ops)
            slots = op.inputs if rng.random() < 0.5 or not op.outputs else op.outputs
            if slots:
                k = rng.randrange(len(slots))
                slots[k] = rng.choice([*HOSTILE_INTS, len(tensors), rng.randrange(len(tensors))])
                labels.append(f"sg{index} operator tensor index -> {slots[k]}")
        elif choice == 1:
            tensor = rng.choice(tensors)
            if tensor.shape:
                k = rng.randrange(len(tensor.shape))
                tensor.shape[k] = rng.choice(HOSTILE_INTS)
                labels.append(f"sg{index} tensor shape[{k}] -> {tensor.shape[k]}")
        elif choice == 2:
            tensor = rng.choice(tensors)
            tensor.buffer = rng.choice(
                [0, 1, 2**31 - 1, 2**32 - 1, len(model.buffers), rng.randrange(len(model.buffers))]
            )
            labels.append(f"sg{index} tensor buffer -> {tensor.buffer}")
        elif choice == 3 and ops:
            op = rng.choice(ops)
            op.opcodeIndex = rng.choice([len(model.operatorCodes), rng.randrange(len(model.operatorCodes))])
            labels.append(f"sg{index} opcode index -> {op.opcodeIndex}")
        else:
            tensor = rng.choice(tensors)
            tensor.type = rng.choice([0, 1, 2, 3, 4, 9, 10, 13, 16, 17])
            labels.append(f"sg{index} tensor type -> {tensor.type}")
    return "; ".join(labels) or "no-op", _tflite_bytes(model)


# --------------------------------------------------------------------------------------- onnx


def mutate_onnx(blob: bytes, rng: random.Random, steps: int = 1) -> Mutation:
    """1..steps lies about nodes, initializers, attributes and shapes, or byte flips."""
    if rng.random() < 0.15:
        return _byte_flips(blob, rng)
    model = onnx.load_from_string(blob)
    graphs = [model.graph, *(f for f in model.functions)]
    labels = []
    for _ in range(steps):
        graph = rng.choice(graphs)
        nodes = list(graph.node)
        choice = rng.randrange(5)
        if choice == 0 and nodes:
            node = rng.choice(nodes)
            values = [v for n in nodes for v in n.output] + ["", "no_such_value"]
            if node.input:
                k = rng.randrange(len(node.input))
                node.input[k] = rng.choice(values)
                labels.append(f"{node.op_type} input {k} -> {node.input[k]!r}")
        elif choice == 1 and isinstance(graph, onnx.GraphProto) and graph.initializer:
            tensor = rng.choice(list(graph.initializer))
            if tensor.dims:
                k = rng.randrange(len(tensor.dims))
                tensor.dims[k] = rng.choice([0, 1, 2, 2**20, 2**31 - 1])
                labels.append(f"initializer {tensor.name} dims[{k}] -> {tensor.dims[k]}")
        elif choice == 2 and nodes:
            node = rng.choice(nodes)
            ints = [
                a for a in node.attribute if a.type in (onnx.AttributeProto.INT, onnx.AttributeProto.INTS)
            ]
            if ints:
                attribute = rng.choice(ints)
                value = rng.choice([-(2**62), -1, 0, 2**31, 2**40])
                if attribute.type == onnx.AttributeProto.INT:
                    attribute.i = value
                elif attribute.ints:
                    attribute.ints[rng.randrange(len(attribute.ints))] = value
                labels.append(f"{node.op_type} attribute {attribute.name} -> {value}")
        elif choice == 3 and nodes:
            node = rng.choice(nodes)
            node.op_type = rng.choice(["Gather", "Reshape", "Mul", "Conv", "Expand", "Tile", "NoSuchOp"])
            labels.append(f"node op_type -> {node.op_type}")
        elif nodes:
            victim = rng.choice(nodes)
            graph.node.remove(victim)
            labels.append(f"removed a {victim.op_type} node")
    return "; ".join(labels) or "no-op", model.SerializeToString()


def _byte_flips(blob: bytes, rng: random.Random) -> Mutation:
    data = bytearray(blob)
    count = rng.choice([1, 4, 16])
    for _ in range(count):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return f"{count} bit flips", bytes(data)


MUTATORS: dict[str, Callable[[bytes, random.Random, int], Mutation]] = {
    "onnx": mutate_onnx,
    "tflite": mutate_tflite,
}


# ------------------------------------------------------------------------------------ outcome


def outcome(kind: str, blob: bytes, x: np.ndarray, timeout: float = 60.0) -> str:
    """How loading and running ``blob`` in an isolated child ended.

    One of ``ran``, ``rejected at load``, ``rejected at run``, ``crashed at load (SIGSEGV)``,
    ``crashed at run (...)``, ``timeout``; any other exception propagates (a violation).
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"case.{kind}"
        path.write_bytes(blob)
        stage = "load"
        try:
            with IsolatedRunner(kind, path, timeout=timeout) as run:
                stage = "run"
                y = run(x)
        except BackendRejected:
            return f"rejected at {stage}"
        except BackendCrashed as exc:
            return "timeout" if exc.cause == "timeout" else f"crashed at {stage} ({exc.cause})"
    if not isinstance(y, np.ndarray) or y.dtype != np.float32:
        raise AssertionError(f"the runner returned {type(y).__name__} {getattr(y, 'dtype', '')}")
    return "ran"

"""App-side decompression for ONNX Runtime: decode a compact export's weights, hand them to ORT.

Stock ONNX Runtime runs a compact ``.onnx`` alone: it inlines the ``ai.hashpack`` functions and
constant-folds them at session creation. At ResNet-18 size that folding costs ~200 ns and ~100
bytes of peak memory per virtual weight (docs/ONNX.md, "Load at real size"), because ORT's folder
evaluates every node of the hash with int64/uint32 intermediates of the weight's full size.

:func:`decoded_session` takes the *same compact file* and skips the folding: it reads each
``HashedWeight`` call's seed, shape and bucket values from the file, regenerates the weight with
the numpy runtime's decoder (``hashpack.runtime.hashing.gather_signed``: bit-identical to the
numpy runtime, ~7 ns per weight), removes the call and the nodes and initializers only it used,
declares the weight as an external-data initializer, and supplies the decoded array through
``SessionOptions.add_external_initializers`` (ORT's API for weights held by the app; the same call
exists in ORT's C, C++, Java and C# APIs). Other ``ai.hashpack`` ops (FreshWeight,
FunHashWeight, FilterSummaryWeight) stay in the graph and are folded by ORT as before.

Rewriting the graph needs a protobuf library; an app without one (Android) uses the ``external``
weights mode instead (``external_weights.py``): the rewriting is done at export time and the app
only supplies the arrays.

The file is untrusted: shapes, seeds and bucket counts are checked before anything is allocated,
with the limits of docs/FORMAT.md §6 (at most 2^16 weights per bucket, 2^28 weights in all).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from hashpack.runtime.hashing import MAX_BUCKETS, MAX_VIRTUAL_SIZE, gather_signed

from .functions import DOMAIN, HASHED_WEIGHT

__all__ = ["DecodedModel", "decode_weights", "decoded_session"]

MAX_EXPANSION = 2**16
MAX_TOTAL_VIRTUAL = 2**28
# 1 by default: on a busy 2-core machine a second thread measured slower (10.5 vs 7.3 ns per weight)
DECODE_THREADS = int(os.environ.get("HASHPACK_DECODE_THREADS", "1"))
EXTERNAL_LOCATION = "hashpack-decoded-by-the-app"  # never read: ORT takes the values from memory


class DecodedModel:
    """A compact model with its ``HashedWeight`` calls replaced by external initializers."""

    def __init__(self, model: onnx.ModelProto, weights: dict[str, np.ndarray]) -> None:
        self.model = model
        self.weights = weights


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _space_values(
    name: str, producers: dict[str, onnx.NodeProto], initializers: dict[str, TensorProto]
) -> np.ndarray | None:
    """The float32 bucket values feeding a call: an initializer, or its Cast (and Mul by a scale)."""
    if name in initializers:
        array = numpy_helper.to_array(initializers[name])
        return array.astype(np.float32) if array.dtype == np.float32 else None
    node = producers.get(name)
    if node is None or node.domain not in ("", "ai.onnx"):
        return None
    if (
        node.op_type == "Cast"
        and _attrs(node).get("to") == TensorProto.FLOAT
        and node.input[0] in initializers
    ):
        raw = numpy_helper.to_array(initializers[node.input[0]])
        return raw.astype(np.float32) if raw.dtype in (np.float16, np.int8, np.float32) else None
    if node.op_type == "Mul" and len(node.input) == 2:
        widened = _space_values(node.input[0], producers, initializers)
        scale = initializers.get(node.input[1])
        if widened is None or scale is None:
            return None
        scale_value = numpy_helper.to_array(scale)
        if scale_value.dtype != np.float32 or scale_value.size != 1:
            return None
        return widened * scale_value.reshape(())  # float32 × float32, as FORMAT.md §3 and the runtime do
    return None


def decode_weights(model: onnx.ModelProto, source: str = "<onnx>") -> DecodedModel:
    """Decode every ``HashedWeight`` call of ``model`` (a compact export); see the module docstring.

    Raises ``ValueError`` naming the node when a call declares more weights than the format allows.
    """
    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    jobs: list[tuple[str, np.ndarray, int, int, int, list[int]]] = []
    decoded: set[int] = set()
    total = 0
    for index, node in enumerate(graph.node):
        if (
            node.domain != DOMAIN
            or node.op_type != HASHED_WEIGHT
            or len(node.input) != 1
            or len(node.output) != 1
        ):
            continue
        attrs = _attrs(node)
        seed, function, shape = attrs.get("seed"), attrs.get("function", 0), attrs.get("shape")
        if not isinstance(seed, int) or not isinstance(function, int) or not isinstance(shape, list):
            continue
        if (
            not 0 <= seed < 2**32
            or not 0 <= function < 2**16
            or any(not 1 <= d <= MAX_VIRTUAL_SIZE for d in shape)
        ):
            raise ValueError(
                f"{source}: node {node.name!r} ({HASHED_WEIGHT}): seed, function or shape out of range"
            )
        values = _space_values(node.input[0], producers, initializers)
        if values is None or values.ndim != 1:
            continue  # a form this decoder does not know: ORT folds it as before
        numel = math.prod(shape)
        if not 1 <= values.size <= MAX_BUCKETS or numel > min(MAX_VIRTUAL_SIZE, MAX_EXPANSION * values.size):
            raise ValueError(
                f"{source}: node {node.name!r} ({HASHED_WEIGHT}): {numel} weights from {values.size} buckets "
                "exceed the format's limits"
            )
        total += numel
        if total > MAX_TOTAL_VIRTUAL:
            raise ValueError(
                f"{source}: more than {MAX_TOTAL_VIRTUAL} hashed weights (limit reached at {node.name!r})"
            )
        if not np.isfinite(values).all():
            raise ValueError(f"{source}: node {node.name!r}: bucket values hold NaN or infinite values")
        jobs.append((node.output[0], values, numel, seed, function, shape))
        decoded.add(index)
    weights = _decode_all(jobs)
    return DecodedModel(_strip(model, decoded, weights), weights)


def _decode_all(jobs: list[tuple[str, np.ndarray, int, int, int, list[int]]]) -> dict[str, np.ndarray]:
    """gather_signed for every call, on up to DECODE_THREADS threads (numpy releases the GIL)."""

    def one(job: tuple[str, np.ndarray, int, int, int, list[int]]) -> np.ndarray:
        _, values, numel, seed, function, shape = job
        return gather_signed(values, numel, seed, function).reshape(shape)

    threads = min(DECODE_THREADS, os.cpu_count() or 1, max(1, len(jobs)))
    if threads == 1:
        results = [one(job) for job in jobs]
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:  # largest first: balanced
            order = sorted(range(len(jobs)), key=lambda i: -jobs[i][2])
            done = dict(zip(order, pool.map(one, [jobs[i] for i in order]), strict=True))
        results = [done[i] for i in range(len(jobs))]
    return {job[0]: result for job, result in zip(jobs, results, strict=True)}


def _strip(model: onnx.ModelProto, decoded: set[int], weights: dict[str, np.ndarray]) -> onnx.ModelProto:
    """A copy without the decoded calls and whatever only they used, the weights declared external."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    kept = [node for index, node in enumerate(graph.node) if index not in decoded]
    outputs = {v.name for v in graph.output}
    while True:  # drop nodes none of whose outputs is used any more (the spaces' Cast/Mul)
        used = outputs | {name for node in kept for name in node.input}
        pruned = [node for node in kept if any(o in used for o in node.output)]
        if len(pruned) == len(kept):
            break
        kept = pruned
    used = outputs | {name for node in kept for name in node.input}
    initializers = [t for t in graph.initializer if t.name in used]
    for name, array in weights.items():
        tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=array.shape)
        tensor.data_location = TensorProto.EXTERNAL
        entry = tensor.external_data.add()
        entry.key, entry.value = "location", EXTERNAL_LOCATION
        initializers.append(tensor)
    del graph.node[:]
    graph.node.extend(kept)
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    in_use = {(node.domain, node.op_type) for node in kept}
    functions = [f for f in out.functions if (f.domain, f.name) in in_use]
    del out.functions[:]
    out.functions.extend(functions)
    return out


def decoded_session(
    model: str | os.PathLike[str] | onnx.ModelProto,
    sess_options: Any = None,
    providers: Sequence[str] = ("CPUExecutionProvider",),
) -> Any:
    """An ``onnxruntime.InferenceSession`` for a compact export, its hashed weights decoded by the app.

    Same outputs as a session on the compact file (the weights are bit-identical to the numpy
    runtime's and to ORT's own folding); the decoded arrays stay referenced by the session.
    ``sess_options`` receives the weights (``add_external_initializers``): pass a fresh one per call.
    """
    import onnxruntime as ort

    source = "<onnx>" if isinstance(model, onnx.ModelProto) else str(model)
    proto = model if isinstance(model, onnx.ModelProto) else onnx.load(str(model))
    decoded = decode_weights(proto, source)
    options = sess_options if sess_options is not None else ort.SessionOptions()
    names = list(decoded.weights)
    values = [ort.OrtValue.ortvalue_from_numpy(decoded.weights[name]) for name in names]
    if names:
        options.add_external_initializers(names, values)
    session = ort.InferenceSession(decoded.model.SerializeToString(), options, providers=list(providers))
    session._hashpack_weights = (decoded.weights, values)  # ORT reads them in place: keep them alive
    return session

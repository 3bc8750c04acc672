"""Transformer ops (docs/FORMAT.md §5, issue 15) as standard ONNX nodes.

LayerNorm → ``LayerNormalization``; Gelu → ``Gelu`` from opset 20, else its exact decomposition
(``Erf`` or ``Tanh``); MatMul → ``MatMul``; Attention → MatMul, Mul by the scale, the causal mask
(``Where`` with −inf), Softmax, MatMul (the numpy runtime's steps, in its order); Constant →
``Expand`` over the batch; Embedding → ``Gather`` (padding rows zeroed with ``Where``); Linear
over the last axis of rank ≥ 3 inputs → MatMul + Add (``Gemm`` is 2-D only).

Hashed embedding tables in compact and inline mode are never materialised: only the looked-up
rows are decompressed, by hashing the flat indices ``id·D + j`` of the batch's distinct ids in the graph
(the ``ai.hashpack.Hp32`` function in compact mode, its body inline; bit-identical to the numpy
runtime's hp32) and gathering those buckets. See docs/ONNX.md for the measured trade-off.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from hashpack.runtime import Node

from . import functions as hf
from .builder import GraphBuilder

__all__ = ["EMBEDDING_ROWS_SCHEMES", "TRANSLATORS"]

# .hpk op -> translator; hashpack.exporter.onnx.graph (the registry) merges these into its OPS.
Translator = Callable[[GraphBuilder, Node], None]
TRANSLATORS: dict[str, Translator] = {}


def _translates(name: str) -> Callable[[Translator], Translator]:
    def decorate(translator: Translator) -> Translator:
        TRANSLATORS[name] = translator
        return translator

    return decorate


EMBEDDING_ROWS_SCHEMES = ("hashed",)  # schemes whose tables compact/inline gather row by row
GELU_OPSET = 20  # the first opset with a Gelu op
# Hash each distinct id of a batch once (Unique, then a Gather of its rows): ~3x faster on
# Zipf-like token batches, ~25-65% slower when every id differs (benchmarks/embedding_onnx.py).
UNIQUE_IDS = True


def _tmp(b: GraphBuilder, node: Node, what: str) -> str:
    return b.names.claim(f"{node.outputs[0]}/{what}")


@_translates("LayerNorm")
def _layer_norm(b: GraphBuilder, node: Node) -> None:
    # LayerNormalization (opset 17) normalises axes [axis, rank): mean, biased variance, eps
    # inside the square root, like F.layer_norm. Its Scale input is required: ones when the .hpk
    # node has no affine params.
    dims = node.attrs["dims"]
    if "weight" in node.params:
        scale, bias = b.param(node.params["weight"]), b.param(node.params["bias"])
        inputs = [node.inputs[0], scale, bias]
    else:
        shape = b.shape(node.inputs[0])[-dims:]
        inputs = [node.inputs[0], b.constant(np.ones(shape, np.float32), np.float32, "const/ones")]
    eps = float(np.float32(node.attrs["eps"]))
    b.node("LayerNormalization", inputs, node.outputs, node.name, axis=-dims, epsilon=eps)


@_translates("Gelu")
def _gelu(b: GraphBuilder, node: Node) -> None:
    approximate = bool(node.attrs["approximate"])
    x = node.inputs[0]
    if b.opset >= GELU_OPSET:
        b.node("Gelu", [x], node.outputs, node.name, approximate="tanh" if approximate else "none")
        return
    # x · (1 + f(x)) / 2 with f = erf(x/√2) or tanh(√(2/π)(x + 0.044715 x³)), as torch.
    if approximate:
        cube = _tmp(b, node, "cube")
        b.node("Mul", [x, x], [cube + "2"], f"{node.name}/sq")
        b.node("Mul", [cube + "2", x], [cube], f"{node.name}/cube")
        scaled = _tmp(b, node, "cube_scaled")
        b.node("Mul", [cube, b.constant(0.044715, np.float32, "const/gelu_c")], [scaled], f"{node.name}/c")
        inner = _tmp(b, node, "inner")
        b.node("Add", [x, scaled], [inner], f"{node.name}/inner")
        arg = _tmp(b, node, "arg")
        k = b.constant(math.sqrt(2.0 / math.pi), np.float32, "const/sqrt_2_over_pi")
        b.node("Mul", [inner, k], [arg], f"{node.name}/arg")
        f = _tmp(b, node, "tanh")
        b.node("Tanh", [arg], [f], f"{node.name}/tanh")
    else:
        arg = _tmp(b, node, "arg")
        k = b.constant(1.0 / math.sqrt(2.0), np.float32, "const/inv_sqrt2")
        b.node("Mul", [x, k], [arg], f"{node.name}/arg")
        f = _tmp(b, node, "erf")
        b.node("Erf", [arg], [f], f"{node.name}/erf")
    one_plus = _tmp(b, node, "one_plus")
    b.node("Add", [f, b.constant(1.0, np.float32, "const/one_f32")], [one_plus], f"{node.name}/one_plus")
    half_x = _tmp(b, node, "half_x")
    b.node("Mul", [x, b.constant(0.5, np.float32, "const/half_f32")], [half_x], f"{node.name}/half_x")
    b.node("Mul", [half_x, one_plus], node.outputs, node.name)


@_translates("MatMul")
def _matmul(b: GraphBuilder, node: Node) -> None:
    b.node("MatMul", list(node.inputs), node.outputs, node.name)


@_translates("Attention")
def _attention(b: GraphBuilder, node: Node) -> None:
    q, k, v = node.inputs
    key_t = _tmp(b, node, "k_t")
    b.node("Transpose", [k], [key_t], f"{node.name}/k_t", perm=[0, 1, 3, 2])
    raw = _tmp(b, node, "qk")
    b.node("MatMul", [q, key_t], [raw], f"{node.name}/qk")
    scores = _tmp(b, node, "scores")
    scale = b.constant(np.float32(node.attrs["scale"]), np.float32, f"{node.name}/scale")
    b.node("Mul", [raw, scale], [scores], f"{node.name}/scale")
    if node.attrs["causal"]:  # torch's ones(L, S).tril(): key j for query i iff j <= i
        length, source = b.shape(q)[2], b.shape(k)[2]
        keep = np.tril(np.ones((length, source), dtype=bool))  # type: ignore[arg-type]
        masked = _tmp(b, node, "masked")
        minus_inf = b.constant(-np.inf, np.float32, "const/minus_inf")
        b.node(
            "Where",
            [b.constant(keep, np.bool_, "const/causal"), scores, minus_inf],
            [masked],
            f"{node.name}/mask",
        )
        scores = masked
    weights = _tmp(b, node, "weights")
    b.node("Softmax", [scores], [weights], f"{node.name}/softmax", axis=-1)
    b.node("MatMul", [weights, v], node.outputs, node.name)


@_translates("Constant")
def _constant(b: GraphBuilder, node: Node) -> None:
    # Expand(value, [N, *value.shape]) with N read from x, so the batch stays symbolic.
    value = b.param(node.params["value"])
    batch = _tmp(b, node, "batch")
    b.node("Shape", [node.inputs[0]], [batch], f"{node.name}/batch", start=0, end=1)
    dims = b.constant(list(b.hpk.params[node.params["value"]].shape), np.int64, f"{node.name}/dims")
    shape = _tmp(b, node, "shape")
    b.node("Concat", [batch, dims], [shape], f"{node.name}/shape", axis=0)
    b.node("Expand", [value, shape], node.outputs, node.name)


def _checked_ids(b: GraphBuilder, node: Node, rows: int) -> str:
    """The ids as int64, made to fail in ORT when one is outside [0, rows).

    ONNX Gather would read a negative id from the end of the table; instead an out-of-range id
    turns into index 1 of a one-element tensor, which ORT rejects ("indices element out of data
    bounds") in a Gather node named ``<node>/ids_out_of_range``. Valid ids add 0.
    """
    ids = _tmp(b, node, "ids64")
    b.node("Cast", [node.inputs[0]], [ids], f"{node.name}/ids64", to=7)  # INT64
    low = _tmp(b, node, "ids_low")
    b.node("Less", [ids, b.constant(0, np.int64, "const/zero_i64")], [low], f"{node.name}/ids_low")
    high = _tmp(b, node, "ids_high")
    b.node("Less", [ids, b.constant(rows, np.int64, f"{node.name}/rows")], [high], f"{node.name}/ids_high")
    valid = _tmp(b, node, "ids_valid")
    b.node("Xor", [low, high], [valid], f"{node.name}/ids_valid")  # id < 0 implies id < rows
    bad = _tmp(b, node, "ids_bad")
    b.node("Not", [valid], [bad], f"{node.name}/ids_bad")
    probe = _tmp(b, node, "ids_probe")
    b.node("Cast", [bad], [probe], f"{node.name}/ids_probe", to=7)
    zero = _tmp(b, node, "ids_zero")
    b.node(
        "Gather",
        [b.constant([0], np.int64, "const/zero1_i64"), probe],
        [zero],
        f"{node.name}/ids_out_of_range",
        axis=0,
    )
    checked = _tmp(b, node, "ids")
    b.node("Add", [ids, zero], [checked], f"{node.name}/ids")
    return checked


def _hashed_rows(b: GraphBuilder, node: Node, ids: str, output: str) -> None:
    """``output`` = the looked-up rows of a hashed [V, D] table, decompressed from the ids alone.

    Flat index of element (id, j) is id·D + j (< V·D ≤ 2**31 − 1): hashed with the
    ``ai.hashpack.Hp32`` function exactly as the whole table would be, then sign · space[bucket];
    with ``UNIQUE_IDS`` only for the batch's distinct ids, whose rows are then gathered.
    """
    param = b.hpk.params[node.params["weight"]]
    space_name = param.spec["space"]
    space = b.space(space_name)
    width = param.shape[1]
    final = output
    if UNIQUE_IDS:  # each distinct id of the batch is hashed once, then its row copied
        flat = _tmp(b, node, "ids_flat")
        b.node(
            "Reshape", [ids, b.constant([-1], np.int64, "const/last_axis")], [flat], f"{node.name}/ids_flat"
        )
        distinct, inverse = _tmp(b, node, "ids_unique"), _tmp(b, node, "ids_inverse")
        b.node("Unique", [flat], [distinct, "", inverse], f"{node.name}/ids_unique", sorted=1)
        ids_shape = _tmp(b, node, "ids_shape")
        b.node("Shape", [ids], [ids_shape], f"{node.name}/ids_shape")
        where = _tmp(b, node, "ids_where")
        b.node("Reshape", [inverse, ids_shape], [where], f"{node.name}/ids_where")
        ids, output = distinct, _tmp(b, node, "unique_rows")
    base = _tmp(b, node, "row_start")
    b.node("Mul", [ids, b.constant(width, np.int64, f"{node.name}/width")], [base], f"{node.name}/row_start")
    base_1 = _tmp(b, node, "row_start_1")
    b.node("Unsqueeze", [base, b.constant([-1], np.int64, "const/last_axis")], [base_1], f"{node.name}/unsq")
    columns = b.constant(np.arange(width, dtype=np.int64), np.int64, f"{node.name}/columns")
    index = _tmp(b, node, "index")
    b.node("Add", [base_1, columns], [index], f"{node.name}/index")
    bucket, sign = _tmp(b, node, "bucket"), _tmp(b, node, "sign")
    num_buckets = b.hpk.spaces[space_name].size
    if b.weights == "compact":  # one call of the model-local function
        b.use_function(hf.DOMAIN, hf.HP32, hf.hp32_function)
        hp32 = hf.hp32_node(
            index,
            ["", bucket, sign],
            seed=param.spec["seed"],
            num_buckets=num_buckets,
            name=f"{node.name}/{hf.HP32}",
        )
        b.add_nodes([hp32])
    else:  # inline: the same body as standard ops (~650 bytes)
        em = b.emitter("emb")
        h = hf.emit_hp32(em, index, param.spec["seed"], 0)
        hf.emit_bucket_sign(em, h, em.const_i64(num_buckets, "num_buckets"), bucket, sign)
        b.add_emitted(em)
    gathered = _tmp(b, node, "gathered")
    b.node("Gather", [space, bucket], [gathered], f"{node.name}/gather", axis=0)
    b.node("Mul", [gathered, sign], [output], f"{node.name}/signed")
    if output != final:
        b.node("Gather", [output, where], [final], f"{node.name}/rows", axis=0)


@_translates("Embedding")
def _embedding(b: GraphBuilder, node: Node) -> None:
    param = b.hpk.params[node.params["weight"]]
    rows = param.shape[0]
    ids = _checked_ids(b, node, rows)
    padding = node.attrs.get("padding_idx")
    looked_up = node.outputs[0] if padding is None else _tmp(b, node, "rows")
    if b.weights in ("compact", "inline") and b.embedding_rows and param.scheme in EMBEDDING_ROWS_SCHEMES:
        _hashed_rows(b, node, ids, looked_up)
    else:
        b.node("Gather", [b.param(param.name), ids], [looked_up], f"{node.name}/gather", axis=0)
    if padding is not None:  # the padding row reads as zero, whatever the table holds
        is_pad = _tmp(b, node, "is_pad")
        b.node(
            "Equal",
            [ids, b.constant(padding, np.int64, f"{node.name}/padding_idx")],
            [is_pad],
            f"{node.name}/is_pad",
        )
        is_pad_1 = _tmp(b, node, "is_pad_1")
        b.node(
            "Unsqueeze",
            [is_pad, b.constant([-1], np.int64, "const/last_axis")],
            [is_pad_1],
            f"{node.name}/is_pad_1",
        )
        zero = b.constant(0.0, np.float32, "const/zero_f32")
        b.node("Where", [is_pad_1, zero, looked_up], node.outputs, node.name)

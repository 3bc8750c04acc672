"""The transformer ops (docs/FORMAT.md §5, issue 15) as LiteRT builtin ops.

Why a module of their own: they work on ``[N, …, D]`` values in PyTorch's order (features last),
never on NHWC, and bring the two things the CNN ops never needed: int32 token ids (GATHER) and
values built from the batch size alone (Constant). Every lowering is builtin ops only:

- LayerNorm: MEAN, SUB, MUL, MEAN, ADD eps, RSQRT, MUL (then MUL weight, ADD bias), as PyTorch's
  two-pass float32 formula (biased variance);
- Gelu: the GELU builtin with its ``approximate`` flag (erf or tanh form, as PyTorch);
- MatMul: BATCH_MATMUL, with ``adj_x``/``adj_y`` when an operand is held with its last two
  axes swapped (a Transpose before it then costs nothing);
- Attention: BATCH_MATMUL(q, k, adj_y), MUL scale, ADD of a constant causal mask, SOFTMAX,
  BATCH_MATMUL with v;
- Constant: GATHER of the param at N zero indices (N from the input, no dynamic tensor);
- Embedding: GATHER of the table rows (a ``padding_idx`` row is zeroed in the weight itself),
  or, for a large ``hashed`` table in once/inline mode, the hp32 chain on the flat indices
  ``id·D + j`` of the looked-up rows only (never the whole table);
- Linear on rank ≥ 3: FULLY_CONNECTED with ``keep_num_dims``.

LayerNorm above rank 6 and MatMul above rank 5 are one-line "not supported" errors.
"""

from __future__ import annotations

import math

import numpy as np

from hashpack.runtime import Node
from hashpack.runtime.hashing import MIX_MULTIPLIER, hash_key

from .builder import TensorHandle
from .context import ExportContext
from .fusion import node_key
from .graph import OPS, _bias, _param_shape, _Unsupported, register_op
from .layout import TORCH, WeightView, layout_perm, perm_layout
from .schema import schema, tflite_type

__all__ = ["ROW_GATHER_MIN_ELEMENTS", "row_gather"]

_MAX_BROADCAST_RANK = 6  # ADD/MUL/SUB broadcast up to rank 6 in LiteRT's reference kernels


def _leading(ctx: ExportContext, name: str) -> tuple[str, tuple[int, ...]]:
    """A layout of value ``name`` whose last axis is PyTorch's last axis (features), and its perm."""
    rank = len(ctx.shape(name))
    for layout in ctx.layouts(name):
        perm = layout_perm(layout, rank)
        if perm[-1] == rank - 1:
            return layout, perm
    return TORCH, tuple(range(rank))


@register_op("LayerNorm")
def _layer_norm(ctx: ExportContext, node: Node) -> None:
    """(x - mean) · rsqrt(var + eps) · weight + bias over the last ``dims`` axes (float32, as torch)."""
    name, out = node.inputs[0], node.outputs[0]
    shape = ctx.shape(name)
    k, rank = int(node.attrs["dims"]), len(shape)
    if not 1 <= k < rank:
        raise ValueError(f"dims {k} must be in [1, {rank})")
    normalized = tuple(shape[rank - k :])
    if ("weight" in node.params) != ("bias" in node.params):
        raise ValueError("weight and bias come together or not at all")
    for slot in ("weight", "bias"):
        if slot in node.params and tuple(_param_shape(ctx, node, slot)) != normalized:
            raise ValueError(f"{slot} shape {list(_param_shape(ctx, node, slot))} != {list(normalized)}")
    if rank > _MAX_BROADCAST_RANK:
        raise _Unsupported(f"LayerNorm of rank {rank} (above {_MAX_BROADCAST_RANK})")
    x = ctx.get(name, TORCH)
    full = [None, *shape[1:]]
    reduced = [None, *shape[1 : rank - k], *([1] * k)]
    options = schema.ReducerOptionsT()
    options.keepDims = True
    axes = ctx.int32(list(range(rank - k, rank)))
    mean = ctx.op("MEAN", [x, axes], f"{out}/mean", reduced, options)
    centered = ctx.op("SUB", [x, mean], f"{out}/centered", full, schema.SubOptionsT())
    square = ctx.op("MUL", [centered, centered], f"{out}/square", full, schema.MulOptionsT())
    var = ctx.op("MEAN", [square, axes], f"{out}/var", reduced, options)
    eps = ctx.main.constant(np.float32(node.attrs["eps"]))
    shifted = ctx.op("ADD", [var, eps], f"{out}/var_eps", reduced, schema.AddOptionsT())
    inv = ctx.op("RSQRT", [shifted], f"{out}/rstd", reduced)
    base = f"{out}/normalized" if "weight" in node.params else out
    y = ctx.op("MUL", [centered, inv], base, full, schema.MulOptionsT())
    if "weight" in node.params:
        weight = ctx.weights.weight(node.params["weight"])
        bias = ctx.weights.weight(node.params["bias"])
        y = ctx.op("MUL", [y, weight], f"{out}/scaled", full, schema.MulOptionsT())
        y = ctx.op("ADD", [y, bias], out, full, schema.AddOptionsT())
    ctx.define(out, y, TORCH, shape)


@register_op("Gelu")
def _gelu(ctx: ExportContext, node: Node) -> None:
    """GELU on the tensor as held (elementwise: any layout)."""
    layout = ctx.layouts(node.inputs[0])[0]
    x = ctx.get(node.inputs[0], layout)
    options = schema.GeluOptionsT()
    options.approximate = bool(node.attrs["approximate"])
    y = ctx.op("GELU", [x], node.outputs[0], [None, *x.shape[1:]], options)
    ctx.define(node.outputs[0], y, layout, ctx.shape(node.inputs[0]))


def _matmul_operand(ctx: ExportContext, name: str) -> tuple[TensorHandle, bool]:
    """Value ``name`` for BATCH_MATMUL: in PyTorch order, or held with the last two axes swapped
    (then True: the op's adj flag transposes it for free)."""
    rank = len(ctx.shape(name))
    swapped = perm_layout([*range(rank - 2), rank - 1, rank - 2])
    layouts = ctx.layouts(name)
    if TORCH not in layouts and swapped in layouts:
        return ctx.get(name, swapped), True
    return ctx.get(name, TORCH), False


def _batch_matmul(
    ctx: ExportContext, a: TensorHandle, b: TensorHandle, adj: tuple[bool, bool], base: str, shape: list
) -> TensorHandle:
    options = schema.BatchMatMulOptionsT()
    options.adjX, options.adjY = adj
    return ctx.op("BATCH_MATMUL", [a, b], base, shape, options)


@register_op("MatMul")
def _matmul(ctx: ExportContext, node: Node) -> None:
    a_name, b_name = node.inputs
    sa, sb = ctx.shape(a_name), ctx.shape(b_name)
    if len(sa) != len(sb) or len(sa) < 3 or sa[1:-2] != sb[1:-2] or sa[-1] != sb[-2]:
        raise ValueError(f"shapes {list(sa)} and {list(sb)} do not multiply")
    if len(sa) > 5:
        raise _Unsupported(f"MatMul of rank {len(sa)} (BATCH_MATMUL takes up to 5 axes)")
    out_shape = (*sa[:-1], sb[-1])
    a, adj_a = _matmul_operand(ctx, a_name)
    b, adj_b = _matmul_operand(ctx, b_name)
    y = _batch_matmul(ctx, a, b, (adj_a, adj_b), node.outputs[0], [None, *out_shape[1:]])
    ctx.define(node.outputs[0], y, TORCH, out_shape)


@register_op("Attention")
def _attention(ctx: ExportContext, node: Node) -> None:
    """softmax(q·kᵀ·scale + causal mask)·v; the mask is PyTorch's top-left ``tril(ones(L, S))``."""
    q_name, k_name, v_name = node.inputs
    sq, sk, sv = (ctx.shape(n) for n in node.inputs)
    if not len(sq) == len(sk) == len(sv) == 4:
        raise ValueError(f"q, k, v must be [N, H, L, E], got {[list(s) for s in (sq, sk, sv)]}")
    if sq[1] != sk[1] or sk[1] != sv[1] or sq[3] != sk[3] or sk[2] != sv[2]:
        raise ValueError(f"q {list(sq)}, k {list(sk)}, v {list(sv)} do not fit")
    out = node.outputs[0]
    heads, length, source = sq[1], sq[2], sk[2]
    q, adj_q = _matmul_operand(ctx, q_name)
    k_swapped = perm_layout([0, 1, 3, 2])
    if TORCH not in ctx.layouts(k_name) and k_swapped in ctx.layouts(k_name):
        k, adj_k = ctx.get(k_name, k_swapped), False  # held as kᵀ already
    else:
        k, adj_k = ctx.get(k_name, TORCH), True
    scores_shape = [None, heads, length, source]
    scores = _batch_matmul(ctx, q, k, (adj_q, adj_k), f"{out}/scores", scores_shape)
    scale = ctx.main.constant(np.float32(node.attrs["scale"]))
    scores = ctx.op("MUL", [scores, scale], f"{out}/scaled", scores_shape, schema.MulOptionsT())
    if node.attrs["causal"]:
        allowed = np.tril(np.ones((length, source), dtype=bool))  # type: ignore[arg-type]
        mask = np.where(allowed, np.float32(0), np.finfo(np.float32).min).astype(np.float32)
        scores = ctx.op("ADD", [scores, ctx.main.constant(mask)], f"{out}/masked", scores_shape,
                        schema.AddOptionsT())  # fmt: skip
    options = schema.SoftmaxOptionsT()
    options.beta = 1.0
    weights = ctx.op("SOFTMAX", [scores], f"{out}/weights", scores_shape, options)
    v, adj_v = _matmul_operand(ctx, v_name)
    out_shape = (None, heads, length, sv[3])
    y = _batch_matmul(ctx, weights, v, (False, adj_v), out, list(out_shape))
    ctx.define(out, y, TORCH, out_shape)


@register_op("Constant")
def _constant(ctx: ExportContext, node: Node) -> None:
    """GATHER of row 0 of the param viewed as ``[1, d1..dr]`` at N zero indices.

    The N zeros are ZEROS_LIKE of one element per sample of the input (RESHAPE to ``[N, M]``,
    GATHER of column 0 → ``[N]``), so every shape follows the input's by LiteRT's static
    resizing: no dynamic tensor. Not a SLICE: LiteRT's SLICE kernel makes its output dynamic
    when the input's batch is (-1 in the signature), and ops after a dynamic tensor are prepared
    inside every invoke — XNNPACK's partitions after it then sometimes read stale values from
    the second invoke on (docs/TFLITE.md). Not a BROADCAST_TO to a SHAPE-computed shape either:
    that output is dynamic too.
    """
    out = node.outputs[0]
    dims = list(_param_shape(ctx, node, "value"))
    if not dims:
        raise ValueError("value must have rank ≥ 1")
    value = ctx.weights.weight(node.params["value"])
    options = schema.ReshapeOptionsT()
    options.newShape = [1, *dims]
    table = ctx.main.op("RESHAPE", [value, ctx.int32([1, *dims])], np.float32, [1, *dims], options,
                        name=ctx.names.claim(ctx.main, f"{out}/value"))  # fmt: skip
    x = ctx.get(node.inputs[0], ctx.layouts(node.inputs[0])[0])
    rows = schema.ReshapeOptionsT()
    rows.newShape = [-1, math.prod(x.shape[1:])]
    rows_x = ctx.main.op("RESHAPE", [x, ctx.int32(rows.newShape)], x.dtype, [None, rows.newShape[1]], rows)
    column = schema.GatherOptionsT()
    column.axis = 1
    first = ctx.main.op("GATHER", [rows_x, ctx.main.constant(np.int32(0))], x.dtype, [None], column)
    zeros = ctx.main.op("ZEROS_LIKE", [first], x.dtype, [None])
    if zeros.dtype != np.dtype(np.int32):
        cast = schema.CastOptionsT()
        cast.inDataType, cast.outDataType = tflite_type(zeros.dtype), tflite_type(np.int32)
        zeros = ctx.main.op("CAST", [zeros], np.int32, [None], cast)
    gather = schema.GatherOptionsT()
    gather.axis = 0
    y = ctx.op("GATHER", [table, zeros], out, [None, *dims], gather)
    ctx.define(out, y, TORCH, (None, *dims))


# A hashed table of at least this many elements is hashed per looked-up row in once and inline
# mode instead of decoded whole (benchmarks/embedding_tflite.py, docs/TFLITE.md).
ROW_GATHER_MIN_ELEMENTS = 1 << 16


@register_op("Embedding")
def _embedding(ctx: ExportContext, node: Node) -> None:
    """GATHER of rows of the table; ids out of [0, V) make LiteRT's GATHER fail the invoke.

    A large ``hashed`` table in once/inline mode is never decoded: the graph hashes the flat
    indices ``id·D + j`` of the rows the batch looks up (:func:`_hashed_rows`).
    """
    name, out = node.inputs[0], node.outputs[0]
    shape = ctx.shape(name)
    vocab, dim = _param_shape(ctx, node, "weight")
    padding = node.attrs.get("padding_idx")
    if padding is not None and not -vocab <= padding < vocab:
        raise ValueError(f"padding_idx {padding} outside the table's {vocab} rows")
    padding = None if padding is None else padding % vocab
    ids = ctx.get(name, TORCH)
    if ids.dtype != np.dtype(np.int32):  # ids computed as float values: whole numbers, as FORMAT.md says
        ids = ctx.main.op("CAST", [ids], np.int32, [None, *ids.shape[1:]])
    param = ctx.hpk.params[node.params["weight"]]
    out_shape = (*shape, dim)
    if row_gather(ctx, param.name):
        y = _hashed_rows(ctx, param.name, ids, vocab, dim, padding, out)
        ctx.define(out, y, TORCH, out_shape)
        return
    scale = None
    if padding is not None:
        scale = np.ones((vocab, 1), np.float32)
        scale[padding] = 0.0
    table = ctx.weights.weight(param.name, scale=scale)
    options = schema.GatherOptionsT()
    options.axis = 0
    y = ctx.op("GATHER", [table, ids], out, [None, *out_shape[1:]], options)
    ctx.define(out, y, TORCH, out_shape)


def row_gather(ctx: ExportContext, param: str) -> bool:
    """Whether the Embedding table ``param`` is hashed per looked-up row (see ``_hashed_rows``)."""
    p = ctx.hpk.params[param]
    return (
        ctx.weights.mode in ("once", "inline")
        and p.scheme == "hashed"
        and math.prod(p.shape) >= ROW_GATHER_MIN_ELEMENTS
    )


def _hashed_rows(
    ctx: ExportContext, param: str, ids: TensorHandle, vocab: int, dim: int, padding: int | None, out: str
) -> TensorHandle:
    """sign(i)·space[h(i) mod K] for i = id·D + j of every looked-up row (FORMAT.md §1, bit-exact).

    The hash chain is ``hash_ops``'s, on tensors with a dynamic batch. Ids outside [0, V) would
    hash indices of no row, so ``id // V`` GATHERs from a one-element constant first: LiteRT
    fails the invoke on any index but 0, as the table GATHER would.
    """
    main, p = ctx.main, ctx.hpk.params[param]
    space = ctx.hpk.spaces[p.spec["space"]]
    lead = [None, *ids.shape[1:]]
    full = [*lead, dim]

    def op(name: str, inputs: list, dtype: type, shape: list, options: object | None = None) -> TensorHandle:
        return main.op(name, inputs, dtype, shape, options)

    def cast(x: TensorHandle, dtype: type, shape: list) -> TensorHandle:
        options = schema.CastOptionsT()
        options.inDataType, options.outDataType = tflite_type(x.dtype), tflite_type(dtype)
        return op("CAST", [x], dtype, shape, options)

    def u32(value: int) -> TensorHandle:
        return main.constant(np.uint32(value))

    gather = schema.GatherOptionsT()
    gather.axis = 0
    row = op("FLOOR_DIV", [ids, main.constant(np.int32(vocab))], np.int32, lead, schema.FloorDivOptionsT())
    check = op("GATHER", [main.constant(np.zeros(1, np.float32)), row], np.float32, lead, gather)
    options = schema.ReshapeOptionsT()
    options.newShape = [-1, *ids.shape[1:], 1]
    column = op("RESHAPE", [ids, ctx.int32(options.newShape)], np.int32, [*lead, 1], options)
    base = op("MUL", [column, main.constant(np.int32(dim))], np.int32, [*lead, 1], schema.MulOptionsT())
    index = op(
        "ADD", [base, main.constant(np.arange(dim, dtype=np.int32))], np.int32, full, schema.AddOptionsT()
    )
    key, multiplier = hash_key(int(p.spec["seed"]), 0)
    mul, xor, shift = schema.MulOptionsT(), schema.BitwiseXorOptionsT(), schema.RightShiftOptionsT()
    h = op("BITWISE_XOR", [cast(index, np.uint32, full), u32(key)], np.uint32, full, xor)
    h = op("MUL", [h, u32(multiplier)], np.uint32, full, mul)
    for step in range(3):  # mix32, as hash_ops.emit_mix32
        high = op("RIGHT_SHIFT", [h, u32(16)], np.uint32, full, shift)
        h = op("BITWISE_XOR", [h, high], np.uint32, full, xor)
        if step < 2:
            h = op("MUL", [h, u32(MIX_MULTIPLIER)], np.uint32, full, mul)
    bucket = op("FLOOR_MOD", [cast(h, np.int64, full), main.constant(np.int64(space.size))], np.int64, full,
                schema.FloorModOptionsT())  # fmt: skip
    bit = cast(op("RIGHT_SHIFT", [h, u32(31)], np.uint32, full, shift), np.float32, full)
    twice = op("MUL", [bit, main.constant(np.float32(-2.0))], np.float32, full, schema.MulOptionsT())
    sign = op("ADD", [twice, main.constant(np.float32(1.0))], np.float32, full, schema.AddOptionsT())
    values = _space_values(ctx, p.spec["space"])
    signed = op(
        "MUL", [op("GATHER", [values, bucket], np.float32, full, gather), sign], np.float32, full, mul
    )
    if padding is not None:  # the padding row reads as zero
        keep = op("NOT_EQUAL", [ids, main.constant(np.int32(padding))], np.bool_, lead)
        keep = op("RESHAPE", [cast(keep, np.float32, lead), ctx.int32(options.newShape)], np.float32,
                  [*lead, 1], options)  # fmt: skip
        signed = op("MUL", [signed, keep], np.float32, full, mul)
    checked = op("RESHAPE", [check, ctx.int32(options.newShape)], np.float32, [*lead, 1], options)
    return ctx.op("ADD", [signed, checked], out, full, schema.AddOptionsT())


def _space_values(ctx: ExportContext, name: str) -> TensorHandle:
    """Space ``name``'s float32 values in the main subgraph (dequantized here, as FORMAT.md §3)."""
    space = ctx.hpk.spaces[name]
    stored = ctx.main.constant(np.asarray(ctx.hpk.tensors[space.tensor]))
    if space.dtype == "float32":
        return stored
    options = schema.CastOptionsT()
    options.inDataType, options.outDataType = tflite_type(stored.dtype), tflite_type(np.float32)
    values = ctx.main.op("CAST", [stored], np.float32, list(stored.shape), options)
    if space.dtype == "int8":
        scale = ctx.main.constant(np.float32(space.scale))
        values = ctx.main.op("MUL", [values, scale], np.float32, list(stored.shape), schema.MulOptionsT())
    return values


_LINEAR_RANK2 = OPS["Linear"]


@register_op("Linear")
def _linear(ctx: ExportContext, node: Node) -> None:
    """Rank 2: graph.py's FULLY_CONNECTED; rank ≥ 3 (a transformer's ``[N, L, D]``): see below."""
    if len(ctx.shape(node.inputs[0])) < 3:
        _LINEAR_RANK2(ctx, node)
        return
    _linear_last_axis(ctx, node)


def _linear_last_axis(ctx: ExportContext, node: Node) -> None:
    """Linear over the last axis of a rank ≥ 3 value: FULLY_CONNECTED keeping the leading dims.

    Runs on any held layout whose last axis is the features; the result stays in that layout.
    """
    name, out = node.inputs[0], node.outputs[0]
    shape = ctx.shape(name)
    out_features, in_features = _param_shape(ctx, node, "weight")
    if shape[-1] != in_features:
        raise ValueError(f"input {list(shape)} does not fit weight [{out_features}, {in_features}]")
    if node_key(node) in ctx.fusions.batch_norm:
        raise _Unsupported("a BatchNorm folded into a Linear of rank ≥ 3")
    layout, perm = _leading(ctx, name)
    weight = ctx.weights.weight(node.params["weight"])
    bias = _bias(ctx, node, WeightView(), out_features, optional=True)
    options = schema.FullyConnectedOptionsT()
    options.fusedActivationFunction = ctx.fusions.fused_activation(node)
    options.keepNumDims = True
    x = ctx.get(name, layout)
    y = ctx.activation(out, [None, *x.shape[1:-1], out_features])
    version = 6 if bias is None else 5  # keep_num_dims needs version 5 (no bias slot: 6)
    ctx.main.add_op("FULLY_CONNECTED", [x, weight, bias], [y], options, version=version)
    out_shape = (*shape[:-1], out_features)
    ctx.define(out, y, layout if perm[-1] == len(shape) - 1 else TORCH, out_shape)

"""Graph ops (docs/FORMAT.md §5) as standard ONNX nodes: one small translator per .hpk op.

Every .hpk op means what the PyTorch operation of the same name means (NCHW), and so does its
ONNX counterpart here; the weights come from :meth:`GraphBuilder.param`, whatever the weights mode.
.hpk value names are kept as ONNX tensor names. An op without a translator is an
``HpkFormatError`` naming the op and the node.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hashpack.runtime import HpkFormatError, Node

from .builder import GraphBuilder
from .transformer import TRANSLATORS as TRANSFORMER_TRANSLATORS

__all__ = ["OPS", "Translator", "register_op", "translate"]

Translator = Callable[[GraphBuilder, Node], None]

OPS: dict[str, Translator] = {}


def register_op(name: str) -> Callable[[Translator], Translator]:
    """Register ``translator(builder, node)`` for .hpk op ``name``."""

    def decorate(translator: Translator) -> Translator:
        OPS[name] = translator
        return translator

    return decorate


def translate(b: GraphBuilder, node: Node) -> None:
    """Append the ONNX nodes computing ``node``."""
    translator = OPS.get(node.op)
    if translator is None:
        raise b.fail(
            f"node {node.name!r}: op {node.op!r} is not supported by the ONNX exporter "
            f"(supported: {', '.join(sorted(OPS))})"
        )
    translator(b, node)


def _params(b: GraphBuilder, node: Node, *slots: str) -> list[str]:
    """Tensor names of the given param slots, skipping absent optional ones at the end."""
    return [b.param(node.params[slot]) for slot in slots if slot in node.params]


def _pads(padding: list[int]) -> list[int]:
    # torch pads both sides of each spatial dim equally; ONNX lists all begins, then all ends.
    return [*padding, *padding]


def _rank_or_2(b: GraphBuilder, value: str) -> int:
    """The rank of ``value``; 2 when its shape cannot be inferred (an in-memory HpkFile whose
    shapes disagree: the Gemm then fails the ONNX checker, which names the node)."""
    try:
        return len(b.shape(value))
    except HpkFormatError:
        return 2


@register_op("Linear")
def _linear(b: GraphBuilder, node: Node) -> None:
    # Gemm(x, W, b, transB=1) = x @ W.T + b, with W in torch's [out, in] layout as stored.
    inputs = [node.inputs[0], *_params(b, node, "weight", "bias")]
    if _rank_or_2(b, node.inputs[0]) == 2:
        b.node("Gemm", inputs, node.outputs, node.name, transB=1)
        return
    # Over the last axis of a rank >= 3 value (a transformer's [N, L, D]): Gemm is 2-D only.
    # Transpose of a weight is constant-folded by ORT at session creation.
    weight_t = b.names.claim(f"{inputs[1]}/T")
    b.node("Transpose", [inputs[1]], [weight_t], f"{node.name}/weight_t", perm=[1, 0])
    product = node.outputs[0] if len(inputs) == 2 else b.names.claim(f"{node.outputs[0]}/matmul")
    b.node("MatMul", [node.inputs[0], weight_t], [product], f"{node.name}/matmul")
    if len(inputs) == 3:
        b.node("Add", [product, inputs[2]], node.outputs, node.name)


@register_op("Conv2d")
def _conv2d(b: GraphBuilder, node: Node) -> None:
    inputs = [node.inputs[0], *_params(b, node, "weight", "bias")]
    a = node.attrs
    b.node(
        "Conv",
        inputs,
        node.outputs,
        node.name,
        kernel_shape=list(b.hpk.params[node.params["weight"]].shape[2:]),
        strides=a["stride"],
        pads=_pads(a["padding"]),
        dilations=a["dilation"],
        group=a["groups"],
    )


@register_op("BatchNorm")
def _batch_norm(b: GraphBuilder, node: Node) -> None:
    inputs = [node.inputs[0], *_params(b, node, "weight", "bias", "running_mean", "running_var")]
    eps = float(np.float32(node.attrs["eps"]))  # torch reads eps as float32, so does ONNX
    b.node("BatchNormalization", inputs, node.outputs, node.name, epsilon=eps)


def _same_name(onnx_op: str) -> Translator:
    def translate_unary(b: GraphBuilder, node: Node) -> None:
        b.node(onnx_op, list(node.inputs), node.outputs, node.name)

    return translate_unary


for _op in ("Relu", "Sigmoid", "Tanh", "Add", "Mul"):  # Mul broadcasts both ways, like torch
    register_op(_op)(_same_name(_op))
register_op("GlobalAvgPool")(_same_name("GlobalAveragePool"))


@register_op("Hardswish")
def _hardswish(b: GraphBuilder, node: Node) -> None:
    # ONNX HardSwish = x · max(0, min(1, x/6 + 1/2)) = x · relu6(x + 3) / 6 (within rounding).
    b.node("HardSwish", list(node.inputs), node.outputs, node.name)


@register_op("Hardsigmoid")
def _hardsigmoid(b: GraphBuilder, node: Node) -> None:
    # max(0, min(1, alpha·x + beta)); ONNX's defaults (0.2, 0.5) are Keras', not torch's.
    b.node("HardSigmoid", list(node.inputs), node.outputs, node.name, alpha=1 / 6, beta=0.5)


@register_op("Silu")
def _silu(b: GraphBuilder, node: Node) -> None:
    # ONNX has no Swish before opset 24: x · Sigmoid(x).
    gate = b.names.claim(f"{node.outputs[0]}/sigmoid")
    b.node("Sigmoid", list(node.inputs), [gate], f"{node.name}/sigmoid")
    b.node("Mul", [node.inputs[0], gate], node.outputs, node.name)


@register_op("Relu6")
def _relu6(b: GraphBuilder, node: Node) -> None:
    low = b.constant(0.0, np.float32, "const/zero_f32")
    high = b.constant(6.0, np.float32, "const/six_f32")
    b.node("Clip", [node.inputs[0], low, high], node.outputs, node.name)


def _ceil_extra(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """How far torch's last ceil_mode window reaches past ``size + 2 * padding`` (0: it fits).

    torch: out = ceil((H + 2p - d(k-1) - 1) / s) + 1, minus 1 if that last window would start at
    or past H + p (docs/FORMAT.md §5).
    """
    span = dilation * (kernel - 1) + 1
    out = -(-(size + 2 * padding - span) // stride) + 1
    if (out - 1) * stride >= size + padding:
        out -= 1
    return max(0, (out - 1) * stride + span - (size + 2 * padding))


def _height_width(b: GraphBuilder, node: Node) -> tuple[int, int]:
    """(H, W) of ``node``'s NCHW input; an ``HpkFormatError`` naming the node if it is not rank 4
    (only an HpkFile built in memory, which skipped the reader, can get here with one)."""
    shape = b.shape(node.inputs[0])
    if len(shape) != 4:
        dims = ", ".join("N" if d is None else str(d) for d in shape)
        raise b.fail(f"node {node.name!r} ({node.op}): expects an NCHW input, got [{dims}]")
    return shape[2], shape[3]  # type: ignore[return-value]


def _pool_extra(b: GraphBuilder, node: Node, dilation: list[int]) -> list[int]:
    """ceil_mode's bottom/right padding beyond ``padding`` ([0, 0] without ceil_mode)."""
    a = node.attrs
    if not a.get("ceil_mode", False):
        return [0, 0]
    height, width = _height_width(b, node)
    return [
        _ceil_extra(size, a["kernel"][i], a["stride"][i], a["padding"][i], dilation[i])  # type: ignore[arg-type]
        for i, size in enumerate((height, width))
    ]


def _pad_node(b: GraphBuilder, node: Node, begin: list[int], end: list[int], value: float) -> str:
    """``node``'s input padded explicitly on H and W with ``value``; returns the padded tensor."""
    pads = b.constant([0, 0, *begin, 0, 0, *end], np.int64, "const/pads")
    fill = b.constant(value, np.float32, "const/pad_value")
    padded = b.names.claim(f"{node.outputs[0]}/padded")
    b.node("Pad", [node.inputs[0], pads, fill], [padded], f"{node.name}/pad")
    return padded


def _padding_only_window(b: GraphBuilder, node: Node, end: list[int]) -> bool:
    """Whether some window of a MaxPool2d (padding ``padding`` before, ``end`` after) covers no
    input cell: possible only with dilation, whose taps can straddle the input."""
    a = node.attrs
    if a["dilation"] == [1, 1] or not any(a["padding"]):
        return False
    for size, k, s, p, d, e in zip(
        _height_width(b, node), a["kernel"], a["stride"], a["padding"], a["dilation"], end, strict=True
    ):
        for start in range(-p, size + e - d * (k - 1), s):  # every window's first tap
            if not any(0 <= start + d * j < size for j in range(k)):
                return True
    return False


@register_op("MaxPool2d")
def _max_pool(b: GraphBuilder, node: Node) -> None:
    # ONNX MaxPool, like torch, never picks a padded position (padding is -inf). ceil_mode is
    # written as extra bottom/right padding, never as ONNX's ceil_mode: onnx's shape inference
    # (1.23) ignores torch's "last window starts in the padding" rule that ORT applies, so the
    # checker and the runtime would disagree on the output shape.
    a = node.attrs
    padding, kernel = a["padding"], a["kernel"]
    end = [p + e for p, e in zip(padding, _pool_extra(b, node, a["dilation"]), strict=True)]
    source, pads = node.inputs[0], [*padding, *end]
    # ORT requires pads < kernel, and gives -FLT_MAX (torch: -inf) for a window that sees only
    # padding (dilation can make one): then pad explicitly with -inf.
    if any(e >= k for e, k in zip(end, kernel, strict=True)) or _padding_only_window(b, node, end):
        source, pads = _pad_node(b, node, padding, end, -np.inf), [0, 0, 0, 0]
    b.node(
        "MaxPool",
        [source],
        node.outputs,
        node.name,
        kernel_shape=kernel,
        strides=a["stride"],
        pads=pads,
        dilations=a["dilation"],
    )


@register_op("AvgPool2d")
def _avg_pool(b: GraphBuilder, node: Node) -> None:
    a = node.attrs
    padding, include = a["padding"], bool(a["count_include_pad"])
    extra = _pool_extra(b, node, [1, 1])
    source, pads = node.inputs[0], [*padding, *(p + e for p, e in zip(padding, extra, strict=True))]
    if any(extra):
        # torch divides ceil_mode's clipped last window by its cells inside [-p, H + p)
        # (count_include_pad) or [0, H) (not). ONNX's count_include_pad=0 counts the cells inside
        # the input, so: zero-pad by p explicitly when the padding counts (its cells then count as
        # input), and let the extra ceil padding be ONNX padding that never counts.
        if include and any(padding):
            source = _pad_node(b, node, padding, padding, 0.0)
            pads = [0, 0, *extra]
        include = False
    b.node(
        "AveragePool",
        [source],
        node.outputs,
        node.name,
        kernel_shape=a["kernel"],
        strides=a["stride"],
        pads=pads,
        count_include_pad=int(include),
    )


MAX_SLICED_WINDOWS = 64  # per axis; beyond it the graph would grow with the output (a tiny file
# asking for a 10^7-row pooling would make a Concat of 10^7 inputs): then the Gather form


def _adaptive_gather(
    b: GraphBuilder, node: Node, source: str, axis: int, out: int, average: bool, result: str
) -> None:
    """The windows gathered onto a new axis ``[.., out, widest, ..]``, then one reduction: a fixed
    number of nodes and an index of ``out × widest`` (what the numpy runtime builds too). A short
    window repeats its last cell: harmless for max, masked out (``Where``) for the average, which
    divides the sum by the count. Slower in ORT than slices (docs/ONNX.md), so for large outputs only.
    """
    size = b.shape(node.inputs[0])[axis]
    i = np.arange(out, dtype=np.int64)
    starts, ends = (i * size) // out, -(-((i + 1) * size) // out)  # type: ignore[operator]
    offsets = np.arange(int((ends - starts).max()), dtype=np.int64)
    index = np.minimum(starts[:, None] + offsets, ends[:, None] - 1)
    valid = offsets < (ends - starts)[:, None]
    tag, name = f"{node.outputs[0]}/{'hw'[axis - 2]}", f"{node.name}/{'hw'[axis - 2]}"
    gathered = b.names.claim(f"{tag}_windows")
    b.node("Gather", [source, b.initializer(index, f"{tag}_index")], [gathered], f"{name}_gather", axis=axis)
    window_axis = b.constant([axis + 1], np.int64, f"const/axis{axis + 1}")
    if not average:
        b.node("ReduceMax", [gathered, window_axis], [result], f"{name}_max", keepdims=0)
        return
    trailing = [1] * (3 - axis)  # the mask and counts broadcast over the axes after the window's
    mask = b.initializer(valid.reshape(*valid.shape, *trailing), f"{tag}_valid")
    masked, total = b.names.claim(f"{tag}_masked"), b.names.claim(f"{tag}_sum")
    b.node("Where", [mask, gathered, b.constant(0.0, np.float32, "const/zero_f32")], [masked], f"{name}_mask")
    b.node("ReduceSum", [masked, window_axis], [total], f"{name}_sum", keepdims=0)
    counts = valid.sum(axis=1).astype(np.float32).reshape(out, *trailing)
    b.node("Div", [total, b.initializer(counts, f"{tag}_count")], [result], f"{name}_div")


def _adaptive_axis(
    b: GraphBuilder, node: Node, source: str, axis: int, out: int, average: bool, result: str | None
) -> str:
    """Pool ``source`` along ``axis`` (2 or 3) to ``out`` adaptive windows, into ``result`` (a
    fresh name if None); returns it.

    One ``Slice`` per distinct window [floor(i·size/out), ceil((i+1)·size/out)), reduced
    (``ReduceMean``/``ReduceMax``, kept as a size-1 axis) unless it is one cell wide, then one
    ``Concat``. Exact: max picks torch's element, the mean is the window's sum over its count;
    windows repeat when the output is larger than the input, and are sliced once.
    """
    result = result or b.names.claim(f"{node.outputs[0]}/{'hw'[axis - 2]}_pooled")
    if out > MAX_SLICED_WINDOWS:
        _adaptive_gather(b, node, source, axis, out, average, result)
        return result
    size = b.shape(node.inputs[0])[axis]
    tag, name = f"{node.outputs[0]}/{'hw'[axis - 2]}", f"{node.name}/{'hw'[axis - 2]}"
    axes = b.constant([axis], np.int64, f"const/axis{axis}")
    reduce = "ReduceMean" if average else "ReduceMax"
    pooled: dict[tuple[int, int], str] = {}
    parts = []
    for i in range(out):
        window = ((i * size) // out, -(-((i + 1) * size) // out))  # type: ignore[operator]
        if window not in pooled:
            bounds = [b.constant([bound], np.int64, f"const/i{bound}") for bound in window]
            cells = b.names.claim(f"{tag}{i}")
            b.node("Slice", [source, *bounds, axes], [cells], f"{name}{i}")
            if window[1] - window[0] > 1:
                reduced = b.names.claim(f"{tag}{i}_{reduce[6:].lower()}")
                b.node(reduce, [cells, axes], [reduced], f"{name}{i}_{reduce[6:].lower()}", keepdims=1)
                cells = reduced
            pooled[window] = cells
        parts.append(pooled[window])
    b.node("Concat", parts, [result], f"{name}_concat", axis=axis)
    return result


def _adaptive_pool(average: bool) -> Translator:
    onnx_pool, onnx_global = ("AveragePool", "GlobalAveragePool") if average else ("MaxPool", "GlobalMaxPool")

    def translate_adaptive(b: GraphBuilder, node: Node) -> None:
        """Standard pooling when the windows are regular, per-window slices otherwise (docs/ONNX.md)."""
        height, width = _height_width(b, node)
        oh, ow = node.attrs["output"]
        if oh == ow == 1:
            b.node(onnx_global, list(node.inputs), node.outputs, node.name)
            return
        if height % oh == 0 and width % ow == 0 and (height, width) != (oh, ow):  # kernel = stride
            kernel = [height // oh, width // ow]  # type: ignore[operator]
            b.node(onnx_pool, list(node.inputs), node.outputs, node.name, kernel_shape=kernel, strides=kernel)
            return
        steps = [(axis, out) for axis, size, out in ((2, height, oh), (3, width, ow)) if size != out]
        if not steps:  # output = input size: every window is one cell
            b.node("Identity", list(node.inputs), node.outputs, node.name)
            return
        value = node.inputs[0]
        for i, (axis, out) in enumerate(steps):
            last = node.outputs[0] if i == len(steps) - 1 else None
            value = _adaptive_axis(b, node, value, axis, out, average, last)

    return translate_adaptive


register_op("AdaptiveAvgPool2d")(_adaptive_pool(average=True))
register_op("AdaptiveMaxPool2d")(_adaptive_pool(average=False))


@register_op("Flatten")
def _flatten(b: GraphBuilder, node: Node) -> None:
    start = node.attrs["start_dim"]
    if start == 1:  # ONNX Flatten(axis=1) is torch.flatten(x, 1) for every rank
        b.node("Flatten", list(node.inputs), node.outputs, node.name, axis=1)
        return
    # Keep dims [0, start) (0 = copy the input's dim, so the batch stays symbolic), merge the rest.
    shape = b.constant([0] * start + [-1], np.int64, f"{node.name}/shape")
    b.node("Reshape", [node.inputs[0], shape], node.outputs, node.name)


@register_op("Reshape")
def _reshape(b: GraphBuilder, node: Node) -> None:
    dims = node.attrs["shape"]
    if any(d == 0 or d < -1 for d in dims) or dims.count(-1) > 1:
        raise b.fail(
            f"node {node.name!r} (Reshape): target shape {dims} must be positive dims and at most one -1"
        )
    shape = b.constant([0, *dims], np.int64, f"{node.name}/shape")  # 0: keep the batch dimension
    b.node("Reshape", [node.inputs[0], shape], node.outputs, node.name)


@register_op("Transpose")
def _transpose(b: GraphBuilder, node: Node) -> None:
    b.node("Transpose", list(node.inputs), node.outputs, node.name, perm=node.attrs["perm"])


@register_op("Slice")
def _slice(b: GraphBuilder, node: Node) -> None:
    a = node.attrs  # x.narrow(axis, start, end - start)
    starts = b.constant([a["start"]], np.int64, f"{node.name}/start")
    ends = b.constant([a["end"]], np.int64, f"{node.name}/end")
    axes = b.constant([a["axis"]], np.int64, f"{node.name}/axis")
    b.node("Slice", [node.inputs[0], starts, ends, axes], node.outputs, node.name)


@register_op("Mean")
def _mean(b: GraphBuilder, node: Node) -> None:
    axes = b.constant(sorted(node.attrs["dims"]), np.int64, f"{node.name}/axes")  # opset >= 18: an input
    keepdims = int(node.attrs["keepdim"])
    b.node("ReduceMean", [node.inputs[0], axes], node.outputs, node.name, keepdims=keepdims)


@register_op("Concat")
def _concat(b: GraphBuilder, node: Node) -> None:
    b.node("Concat", list(node.inputs), node.outputs, node.name, axis=node.attrs["axis"])


@register_op("Softmax")
def _softmax(b: GraphBuilder, node: Node) -> None:
    # opset >= 13 Softmax normalises over the one axis, as torch does.
    b.node("Softmax", list(node.inputs), node.outputs, node.name, axis=node.attrs["axis"])


# Op families with modules of their own: their translators join the registry here.
OPS.update(TRANSFORMER_TRANSLATORS)

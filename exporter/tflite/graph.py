"""Graph ops (docs/FORMAT.md §5) as LiteRT builtin ops: one small translator per .hpk op.

Every .hpk op means what the PyTorch op of that name means (NCHW). LiteRT's convolutions and
pools are NHWC, so those translators ask the context for their input in NHWC and produce NHWC;
elementwise ops, Slice and Mean work on whatever layout their input is held in (axes mapped
through it); Transpose only relabels the layout; reshapes run on the held tensor when the axes
they merge or split are adjacent there, and otherwise go back to an order where they are
(``context.py`` inserts and caches the TRANSPOSEs).
Weights come from ``ctx.weights`` in the LiteRT layout each kernel wants, whatever the mode.
An op without a translator, or an op configuration LiteRT has no builtin for, is an
``HpkFormatError`` naming the op and the node.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from hashpack.runtime import HpkFormatError, Node

from .builder import TensorHandle
from .context import ExportContext, Shape
from .fusion import batch_norm_affine, node_key
from .layout import (
    NHWC,
    TORCH,
    WeightView,
    conv_output_size,
    layout_perm,
    nhwc_axis,
    perm_layout,
    pool_output_size,
    reshape_groups,
    same_padding_matches,
)
from .schema import schema
from .window_pool import adaptive_pool, dilated_windows, pool_windows

__all__ = ["OPS", "Translator", "register_op", "translate"]

Translator = Callable[[ExportContext, Node], None]

OPS: dict[str, Translator] = {}

OHWI = WeightView(perm=(0, 2, 3, 1))  # CONV_2D filter [out, kh, kw, in]
IHWO = WeightView(perm=(1, 2, 3, 0))  # DEPTHWISE_CONV_2D filter [1, kh, kw, out] (in = 1 per group)


def register_op(name: str) -> Callable[[Translator], Translator]:
    """Register ``translator(ctx, node)`` for .hpk op ``name``."""

    def decorate(translator: Translator) -> Translator:
        OPS[name] = translator
        return translator

    return decorate


def translate(ctx: ExportContext, node: Node) -> None:
    """Append the LiteRT ops computing ``node``; shape or support problems name the node."""
    if node_key(node) in ctx.fusions.absorbed:  # a BatchNorm or activation computed by the op before it
        ctx.alias(node.outputs[0], node.inputs[0])
        return
    translator = OPS.get(node.op)
    if translator is None:
        raise ctx.fail(
            f"node {node.name!r}: op {node.op!r} is not supported by the TFLite exporter "
            f"(supported: {', '.join(sorted(OPS))})"
        )
    try:
        translator(ctx, node)
    except HpkFormatError:
        raise
    except _Unsupported as exc:
        raise ctx.fail(
            f"node {node.name!r} ({node.op}): {exc} is not supported by the TFLite exporter"
        ) from None
    except (ValueError, IndexError) as exc:  # shapes that do not fit: a bad file, named by node
        raise ctx.fail(f"node {node.name!r} ({node.op}): {exc}") from None


class _Unsupported(Exception):
    """A valid .hpk op configuration that LiteRT's builtin ops cannot express."""


def _nhwc(shape: Shape) -> list[int | None]:
    return [shape[0], shape[2], shape[3], shape[1]]


def _rank4(ctx: ExportContext, name: str) -> tuple[int, int, int]:
    shape = ctx.shape(name)
    if len(shape) != 4:
        raise ValueError(f"expects an NCHW input, got shape {list(shape)}")
    return shape[1], shape[2], shape[3]  # type: ignore[return-value]


def _param_shape(ctx: ExportContext, node: Node, slot: str) -> tuple[int, ...]:
    return ctx.hpk.params[node.params[slot]].shape


_MAX_XNNPACK_RANK = 6  # XNNPACK claims MEAN/SOFTMAX/CONCATENATION of higher rank, then fails to prepare


def _around_axis(ctx: ExportContext, name: str, axis: int, base: str) -> TensorHandle:
    """Value ``name`` viewed as ``[N, before, axis, after]`` (rank 4; PyTorch order)."""
    shape = ctx.shape(name)
    before, after = math.prod(shape[1:axis]), math.prod(shape[axis + 1 :])  # type: ignore[arg-type]
    return ctx.reshape(ctx.get(name, TORCH), [before, shape[axis], after], base)  # type: ignore[list-item]


# ------------------------------------------------------------------------------ dense layers


@register_op("Linear")
def _linear(ctx: ExportContext, node: Node) -> None:
    shape = ctx.shape(node.inputs[0])
    out_features, in_features = _param_shape(ctx, node, "weight")
    if len(shape) != 2 or shape[1] != in_features:
        raise ValueError(f"input {list(shape)} does not fit weight [{out_features}, {in_features}]")
    scale = ctx.fusions.batch_norm.get(node_key(node), (None, None))[0]
    # FULLY_CONNECTED wants [out, in], as stored. With non-constant weights it beat BATCH_MATMUL.
    weight = ctx.weights.weight(node.params["weight"], scale=None if scale is None else scale[:, None])
    bias = _bias(ctx, node, WeightView(), out_features, optional=True)
    options = schema.FullyConnectedOptionsT()
    options.fusedActivationFunction = ctx.fusions.fused_activation(node)
    x = ctx.get(node.inputs[0])
    y = ctx.op("FULLY_CONNECTED", [x, weight, bias], node.outputs[0], [None, out_features], options)
    ctx.define(node.outputs[0], y, TORCH, (None, out_features))


def _bias(
    ctx: ExportContext, node: Node, view: WeightView, count: int, optional: bool = False
) -> TensorHandle | None:
    """The layer's bias (rows of ``view``), with a folded BatchNorm's ``b·scale + shift``.

    A bias-free layer gets ``shift`` when a BatchNorm was folded into it, else zeros (LiteRT's
    convolutions require a bias tensor), or nothing if ``optional``.
    """
    scale, shift = ctx.fusions.batch_norm.get(node_key(node), (None, None))
    rows = slice(*view.rows) if view.rows is not None else slice(None)
    if "bias" in node.params:
        if scale is None:
            return ctx.weights.weight(node.params["bias"], view)
        return ctx.weights.weight(node.params["bias"], view, scale[rows], shift[rows])  # type: ignore[index]
    if shift is not None:
        return ctx.main.constant(np.ascontiguousarray(shift[rows]))
    return None if optional else ctx.main.constant(np.zeros(count, np.float32))


def _padding(
    ctx: ExportContext,
    x: TensorHandle,
    size: tuple[int, int],
    kernel: tuple[int, int],
    stride: list[int],
    padding: list[int],
    dilation: list[int],
    pad_value: float = 0.0,
) -> tuple[TensorHandle, int]:
    """(input, TFLite padding): VALID, SAME where it places PyTorch's windows, else PAD + VALID."""
    if not any(padding):
        return x, schema.Padding.VALID
    if all(same_padding_matches(size[i], kernel[i], stride[i], padding[i], dilation[i]) for i in (0, 1)):
        return x, schema.Padding.SAME
    return _explicit_pad(ctx, x, padding, pad_value), schema.Padding.VALID


def _explicit_pad(
    ctx: ExportContext, x: TensorHandle, pad: list[int], value: float = 0.0, extra: tuple[int, int] = (0, 0)
) -> TensorHandle:
    """PAD (zeros) or PADV2 (``value``) of the two spatial axes of an NHWC tensor.

    ``pad`` goes on both sides, ``extra`` after it at the end of each axis (ceil_mode's windows).
    """
    (ph, pw), (eh, ew) = pad, extra
    pads = ctx.main.constant(np.array([[0, 0], [ph, ph + eh], [pw, pw + ew], [0, 0]], dtype=np.int32))
    shape = [None, x.shape[1] + 2 * ph + eh, x.shape[2] + 2 * pw + ew, x.shape[3]]
    if value == 0.0:
        return ctx.op("PAD", [x, pads], f"{x.name}/pad", shape, schema.PadOptionsT())
    fill = ctx.main.constant(np.float32(value))
    return ctx.op("PADV2", [x, pads, fill], f"{x.name}/pad", shape, schema.PadV2OptionsT())


@register_op("Conv2d")
def _conv2d(ctx: ExportContext, node: Node) -> None:
    channels, height, width = _rank4(ctx, node.inputs[0])
    out_channels, group_in, kh, kw = _param_shape(ctx, node, "weight")
    a = node.attrs
    groups, stride, dilation = a["groups"], a["stride"], a["dilation"]
    if channels != group_in * groups:
        raise ValueError(f"input has {channels} channels, weight expects {group_in * groups}")
    ho = conv_output_size(height, kh, stride[0], a["padding"][0], dilation[0])
    wo = conv_output_size(width, kw, stride[1], a["padding"][1], dilation[1])
    if ho < 1 or wo < 1:
        raise ValueError(f"kernel {kh}×{kw} is larger than the padded input {height}×{width}")
    out, shape = node.outputs[0], (None, out_channels, ho, wo)
    x = ctx.get(node.inputs[0], NHWC)
    weight = node.params["weight"]
    scale = ctx.fusions.batch_norm.get(node_key(node), (None, None))[0]
    activation = ctx.fusions.fused_activation(node)
    x, padding = _padding(ctx, x, (height, width), (kh, kw), stride, a["padding"], dilation)

    def options(kind: type) -> object:
        opts = kind()
        opts.padding, opts.strideH, opts.strideW = padding, stride[0], stride[1]
        opts.dilationHFactor, opts.dilationWFactor = dilation
        opts.fusedActivationFunction = activation
        return opts

    def filter_of(view: WeightView, axis: int) -> TensorHandle:
        if scale is None:
            return ctx.weights.weight(weight, view)
        rows = scale if view.rows is None else scale[view.rows[0] : view.rows[1]]
        return ctx.weights.weight(weight, view, rows.reshape([-1 if i == axis else 1 for i in range(4)]))

    if groups == 1:
        inputs = [x, filter_of(OHWI, 0), _bias(ctx, node, WeightView(), out_channels)]
        y = ctx.op("CONV_2D", inputs, out, _nhwc(shape), options(schema.Conv2DOptionsT))
    elif group_in == 1:  # depthwise: output channel o reads input channel o // multiplier, as in PyTorch
        opts = options(schema.DepthwiseConv2DOptionsT)
        opts.depthMultiplier = out_channels // channels  # type: ignore[attr-defined]
        inputs = [x, filter_of(IHWO, 3), _bias(ctx, node, WeightView(), out_channels)]
        y = ctx.op("DEPTHWISE_CONV_2D", inputs, out, _nhwc(shape), opts)
    else:  # general groups: SPLIT the channels, one CONV_2D per group, CONCATENATION
        per_group = out_channels // groups
        split = schema.SplitOptionsT()
        split.numSplits = groups
        parts = [ctx.activation(f"{out}/group{g}/in", [None, *x.shape[1:3], group_in]) for g in range(groups)]
        ctx.main.add_op("SPLIT", [ctx.main.constant(np.int32(3)), x], parts, split)
        outs = []
        for g, part in enumerate(parts):
            view = WeightView(OHWI.perm, (g * per_group, (g + 1) * per_group))
            inputs = [part, filter_of(view, 0), _bias(ctx, node, WeightView(rows=view.rows), per_group)]
            outs.append(
                ctx.op(
                    "CONV_2D",
                    inputs,
                    f"{out}/group{g}",
                    [None, ho, wo, per_group],
                    options(schema.Conv2DOptionsT),
                )
            )
        concat = schema.ConcatenationOptionsT()
        concat.axis = 3
        y = ctx.op("CONCATENATION", outs, out, _nhwc(shape), concat)
    ctx.define(out, y, NHWC, shape)


@register_op("BatchNorm")
def _batch_norm(ctx: ExportContext, node: Node) -> None:
    """y = x · scale + shift with scale = weight / sqrt(var + eps), shift = bias - mean · scale.

    Only BatchNorms that ``fusion.py`` could not fold into the layer before them get here.
    """
    shape = ctx.shape(node.inputs[0])
    slots = ("weight", "bias", "running_mean", "running_var")
    channels = _param_shape(ctx, node, "weight")[0]
    if len(shape) not in (2, 4) or shape[1] != channels:
        raise ValueError(f"input {list(shape)} does not fit {channels} channels")
    eps = np.float32(node.attrs["eps"])  # read as float32, as torch does
    names = [node.params[s] for s in slots]
    store = ctx.weights
    if all(store.is_constant(n) for n in names):  # fold at export time
        scale, shift = batch_norm_affine(*(store.array(n) for n in names), eps)
        scale_t = ctx.main.constant(scale, name=ctx.names.claim(ctx.main, f"{node.name}/scale"))
        shift_t = ctx.main.constant(shift, name=ctx.names.claim(ctx.main, f"{node.name}/shift"))
    else:  # fold in the weight subgraph (once: on the first invoke only)
        sg = store.weight_subgraph
        w, b, mean, var = (store.emit(sg, n) for n in names)

        def binary(op: str, lhs: TensorHandle, rhs: TensorHandle, options: object) -> TensorHandle:
            return sg.op(op, [lhs, rhs], np.float32, [channels], options)

        root = sg.op(
            "SQRT", [binary("ADD", var, sg.constant(eps), schema.AddOptionsT())], np.float32, [channels]
        )
        scale_w = binary("DIV", w, root, schema.DivOptionsT())
        shift_w = binary("SUB", b, binary("MUL", mean, scale_w, schema.MulOptionsT()), schema.SubOptionsT())
        scale_t = store.publish(scale_w, f"{node.name}/scale")
        shift_t = store.publish(shift_w, f"{node.name}/shift")
    layout = NHWC if len(shape) == 4 else TORCH
    x = ctx.get(node.inputs[0], layout)
    out_shape = _nhwc(shape) if layout == NHWC else list(shape)
    scaled = ctx.op("MUL", [x, scale_t], f"{node.outputs[0]}/scaled", out_shape, schema.MulOptionsT())
    y = ctx.op("ADD", [scaled, shift_t], node.outputs[0], out_shape, schema.AddOptionsT())
    ctx.define(node.outputs[0], y, layout, shape)


# --------------------------------------------------------------------------- elementwise ops


def _unary(tflite_op: str) -> Translator:
    def translate_unary(ctx: ExportContext, node: Node) -> None:
        layout = ctx.layouts(node.inputs[0])[0]
        x = ctx.get(node.inputs[0], layout)
        y = ctx.op(tflite_op, [x], node.outputs[0], [None, *x.shape[1:]])
        ctx.define(node.outputs[0], y, layout, ctx.shape(node.inputs[0]))

    return translate_unary


for _op, _tflite in (
    ("Relu", "RELU"),
    ("Relu6", "RELU6"),
    ("Sigmoid", "LOGISTIC"),
    ("Tanh", "TANH"),
    ("Hardswish", "HARD_SWISH"),
):
    register_op(_op)(_unary(_tflite))


@register_op("Hardsigmoid")
def _hardsigmoid(ctx: ExportContext, node: Node) -> None:
    """relu6(x + 3) / 6 as ADD (+3, fused RELU6) and MUL by 1/6: LiteRT has no HARD_SIGMOID.

    The multiply by float32(1/6) rounds within an ulp of PyTorch's division by 6.
    """
    layout = ctx.layouts(node.inputs[0])[0]
    x = ctx.get(node.inputs[0], layout)
    shape = [None, *x.shape[1:]]
    add = schema.AddOptionsT()
    add.fusedActivationFunction = schema.ActivationFunctionType.RELU6
    out = node.outputs[0]
    shifted = ctx.op("ADD", [x, ctx.main.constant(np.float32(3.0))], f"{out}/relu6", shape, add)
    y = ctx.op("MUL", [shifted, ctx.main.constant(np.float32(1.0 / 6.0))], out, shape, schema.MulOptionsT())
    ctx.define(out, y, layout, ctx.shape(node.inputs[0]))


@register_op("Silu")
def _silu(ctx: ExportContext, node: Node) -> None:
    """x · sigmoid(x) as LOGISTIC + MUL (LiteRT has no SILU builtin)."""
    layout = ctx.layouts(node.inputs[0])[0]
    x = ctx.get(node.inputs[0], layout)
    shape, out = [None, *x.shape[1:]], node.outputs[0]
    gate = ctx.op("LOGISTIC", [x], f"{out}/sigmoid", shape)
    y = ctx.op("MUL", [x, gate], out, shape, schema.MulOptionsT())
    ctx.define(out, y, layout, ctx.shape(node.inputs[0]))


@register_op("Add")
def _add(ctx: ExportContext, node: Node) -> None:
    a, b = node.inputs
    sa, sb = ctx.shape(a), ctx.shape(b)
    try:
        broadcast = np.broadcast_shapes(tuple(d or 1 for d in sa), tuple(d or 1 for d in sb))
    except ValueError:
        raise ValueError(f"shapes {list(sa)} and {list(sb)} do not broadcast") from None
    if broadcast != tuple(d or 1 for d in sa):
        raise ValueError(f"shape {list(sb)} does not broadcast to {list(sa)}")
    both4 = len(sa) == len(sb) == 4
    layout = NHWC if both4 and NHWC in ctx.layouts(a) + ctx.layouts(b) else TORCH
    shape = _nhwc(sa) if layout == NHWC else list(sa)
    options = schema.AddOptionsT()
    options.fusedActivationFunction = ctx.fusions.fused_activation(node)
    y = ctx.op("ADD", [ctx.get(a, layout), ctx.get(b, layout)], node.outputs[0], shape, options)
    ctx.define(node.outputs[0], y, layout, sa)


@register_op("Mul")
def _mul(ctx: ExportContext, node: Node) -> None:
    """MUL with two-way broadcasting (squeeze-and-excitation: ``[N, C, 1, 1] · [N, C, H, W]``)."""
    a, b = node.inputs
    sa, sb = ctx.shape(a), ctx.shape(b)
    if len(sa) != len(sb) or any(x != y and 1 not in (x, y) for x, y in zip(sa[1:], sb[1:], strict=True)):
        raise ValueError(f"shapes {list(sa)} and {list(sb)} do not broadcast")
    shape = (None, *(max(x, y) for x, y in zip(sa[1:], sb[1:], strict=True)))  # type: ignore[type-var]
    both4 = len(shape) == 4
    layout = NHWC if both4 and NHWC in ctx.layouts(a) + ctx.layouts(b) else TORCH
    options = schema.MulOptionsT()
    options.fusedActivationFunction = ctx.fusions.fused_activation(node)
    y = ctx.op(
        "MUL",
        [ctx.get(a, layout), ctx.get(b, layout)],
        node.outputs[0],
        _nhwc(shape) if layout == NHWC else list(shape),
        options,
    )
    ctx.define(node.outputs[0], y, layout, shape)


@register_op("Softmax")
def _softmax(ctx: ExportContext, node: Node) -> None:
    """SOFTMAX works on the last axis: use NHWC for channels, else move the axis last and back."""
    shape = ctx.shape(node.inputs[0])
    rank = len(shape)
    axis = node.attrs["axis"]
    if not -rank <= axis < rank:
        raise ValueError(f"axis {axis} out of range for rank {rank}")
    axis %= rank
    if axis == 0:
        raise _Unsupported("Softmax over the batch axis")
    options = schema.SoftmaxOptionsT()
    options.beta = 1.0
    out = node.outputs[0]
    if rank == 4 and axis == 1:
        y = ctx.op("SOFTMAX", [ctx.get(node.inputs[0], NHWC)], out, _nhwc(shape), options)
        ctx.define(out, y, NHWC, shape)
        return
    if rank > _MAX_XNNPACK_RANK:  # as [N, before, after, axis]: SOFTMAX over the last axis
        x = _around_axis(ctx, node.inputs[0], axis, f"{out}/flat")
        moved = ctx.transpose(x, [0, 1, 3, 2], f"{out}/moved")
        soft = ctx.op("SOFTMAX", [moved], f"{out}/moved_softmax", [None, *moved.shape[1:]], options)
        back = ctx.transpose(soft, [0, 1, 3, 2], f"{out}/back")
        ctx.define(out, ctx.reshape(back, list(shape[1:]), out), TORCH, shape)  # type: ignore[arg-type]
        return
    x = ctx.get(node.inputs[0], TORCH)
    if axis == rank - 1:
        ctx.define(out, ctx.op("SOFTMAX", [x], out, list(shape), options), TORCH, shape)
        return
    perm = [*(i for i in range(rank) if i != axis), axis]
    moved = ctx.transpose(x, perm, f"{out}/moved")
    soft = ctx.op("SOFTMAX", [moved], f"{out}/moved_softmax", [None, *moved.shape[1:]], options)
    back = ctx.transpose(soft, list(np.argsort(perm)), out)
    ctx.define(out, back, TORCH, shape)


@register_op("Concat")
def _concat(ctx: ExportContext, node: Node) -> None:
    shapes = [ctx.shape(name) for name in node.inputs]
    rank = len(shapes[0])
    axis = node.attrs["axis"]
    if not -rank <= axis < rank or any(len(s) != rank for s in shapes):
        raise ValueError(f"cannot concatenate shapes {[list(s) for s in shapes]} on axis {axis}")
    axis %= rank
    if axis == 0:
        raise _Unsupported("Concat over the batch axis")
    if any(s[:axis] + s[axis + 1 :] != shapes[0][:axis] + shapes[0][axis + 1 :] for s in shapes):
        raise ValueError(f"cannot concatenate shapes {[list(s) for s in shapes]} on axis {axis}")
    shape = list(shapes[0])
    shape[axis] = sum(s[axis] for s in shapes)  # type: ignore[misc]
    out = node.outputs[0]
    if rank > _MAX_XNNPACK_RANK:  # as [N, before, axis, after]
        parts = [_around_axis(ctx, name, axis, f"{out}/part{i}") for i, name in enumerate(node.inputs)]
        options = schema.ConcatenationOptionsT()
        options.axis = 2
        joined = ctx.op(
            "CONCATENATION",
            parts,
            f"{out}/joined",
            [None, *parts[0].shape[1:2], shape[axis], parts[0].shape[3]],
            options,
        )
        ctx.define(out, ctx.reshape(joined, shape[1:], out), TORCH, tuple(shape))  # type: ignore[arg-type]
        return
    nhwc = rank == 4 and any(NHWC in ctx.layouts(name) for name in node.inputs)
    options = schema.ConcatenationOptionsT()
    options.axis = nhwc_axis(axis) if nhwc else axis
    layout = NHWC if nhwc else TORCH
    inputs = [ctx.get(name, layout) for name in node.inputs]
    y = ctx.op("CONCATENATION", inputs, node.outputs[0], _nhwc(tuple(shape)) if nhwc else shape, options)
    ctx.define(node.outputs[0], y, layout, tuple(shape))


# --------------------------------------------------------------------------------- pooling


class _PoolGeometry:
    """Where a MaxPool2d/AvgPool2d node's windows lie (PyTorch's rules, incl. ceil_mode), per axis."""

    def __init__(self, ctx: ExportContext, node: Node, dilation: list[int]) -> None:
        self.channels, height, width = _rank4(ctx, node.inputs[0])
        a = node.attrs
        self.size = (height, width)
        self.kernel, self.stride, self.padding = tuple(a["kernel"]), tuple(a["stride"]), tuple(a["padding"])
        self.dilation = tuple(dilation)
        self.ceil_mode = bool(a.get("ceil_mode", False))
        if min(*self.kernel, *self.stride) < 1:
            raise ValueError("kernel and stride must be positive")
        if self.padding[0] * 2 > self.kernel[0] or self.padding[1] * 2 > self.kernel[1]:
            raise ValueError(f"padding {list(self.padding)} exceeds half the kernel {list(self.kernel)}")
        self.out = tuple(
            pool_output_size(
                self.size[i], self.kernel[i], self.stride[i], self.padding[i], dilation[i], self.ceil_mode
            )
            for i in (0, 1)
        )
        if min(self.out) < 1:
            raise ValueError(f"kernel {list(self.kernel)} is larger than the padded input {height}×{width}")
        # ceil_mode's last windows may reach past the padded input: pad that much more at the end
        self.extra = tuple(
            max((self.out[i] - 1) * self.stride[i] + self.span(i) - self.size[i] - 2 * self.padding[i], 0)
            for i in (0, 1)
        )

    def span(self, i: int) -> int:
        return self.dilation[i] * (self.kernel[i] - 1) + 1

    def same_matches(self) -> bool:
        """TFLite SAME places exactly these windows (see ``layout.same_padding_matches``)."""
        return all(
            same_padding_matches(
                self.size[i], self.kernel[i], self.stride[i], self.padding[i], out=self.out[i]
            )
            for i in (0, 1)
        )

    def divisors(self, count_include_pad: bool) -> tuple[np.ndarray, np.ndarray]:
        """PyTorch's AvgPool2d divisor per output row and column (their product is the divisor).

        Windows are clipped at the padded border ``size + padding`` (ceil_mode's extra windows);
        without ``count_include_pad`` also at the input border.
        """
        result = []
        for i in (0, 1):
            size, k, s, p = self.size[i], self.kernel[i], self.stride[i], self.padding[i]
            starts = np.arange(self.out[i]) * s - p
            ends = np.minimum(starts + k, size + p)
            if not count_include_pad:
                starts, ends = np.maximum(starts, 0), np.minimum(ends, size)
            result.append(ends - starts)
        return result[0], result[1]

    def options(self, padding: int) -> object:
        options = schema.Pool2DOptionsT()
        options.padding = padding
        options.strideH, options.strideW = self.stride
        options.filterHeight, options.filterWidth = self.kernel
        return options


@register_op("MaxPool2d")
def _max_pool(ctx: ExportContext, node: Node) -> None:
    """MAX_POOL_2D: SAME where it places PyTorch's windows, else PADV2 with -inf + VALID.

    A padded position never wins, as in PyTorch (every window holds an input element, also the
    extra windows of ceil_mode, which only need more -inf at the end). Dilation: GATHER the
    dilated windows first (``window_pool.py``).
    """
    g = _PoolGeometry(ctx, node, node.attrs["dilation"])
    x, out = ctx.get(node.inputs[0], NHWC), node.outputs[0]
    (ho, wo), c = g.out, g.channels
    if g.dilation != (1, 1):
        if any(g.padding) or any(g.extra):
            x = _explicit_pad(ctx, x, list(g.padding), -np.inf, g.extra)
        axes = tuple(
            (g.kernel[i], g.stride[i])
            if g.dilation[i] == 1
            else dilated_windows(g.out[i], g.kernel[i], g.stride[i], g.dilation[i])
            for i in (0, 1)
        )
        ctx.define(out, pool_windows(ctx, x, axes, "max", out), NHWC, (None, c, ho, wo))  # type: ignore[arg-type]
        return
    if not any(g.padding) and not any(g.extra):
        padding = schema.Padding.VALID
    elif g.same_matches():
        padding = schema.Padding.SAME
    else:
        x, padding = _explicit_pad(ctx, x, list(g.padding), -np.inf, g.extra), schema.Padding.VALID
    y = ctx.op("MAX_POOL_2D", [x], out, [None, ho, wo, c], g.options(padding))
    ctx.define(out, y, NHWC, (None, c, ho, wo))


@register_op("AvgPool2d")
def _avg_pool(ctx: ExportContext, node: Node) -> None:
    """AVERAGE_POOL_2D divides by the in-bounds count with SAME, by the window size with VALID.

    So: VALID without padding; SAME when it places the windows and the padding is not counted;
    otherwise zero PAD (+ ceil_mode's extra end) + VALID, times a constant per-position factor
    ``window size / PyTorch's divisor`` wherever the two differ.
    """
    g = _PoolGeometry(ctx, node, [1, 1])
    include = bool(node.attrs["count_include_pad"])
    out, (ho, wo), c = node.outputs[0], g.out, g.channels
    x = ctx.get(node.inputs[0], NHWC)
    if not any(g.padding) and not any(g.extra):
        padding = schema.Padding.VALID
    elif not include and g.same_matches():
        padding = schema.Padding.SAME
    else:
        x, padding = _explicit_pad(ctx, x, list(g.padding), 0.0, g.extra), schema.Padding.VALID
    factor = None
    if padding == schema.Padding.VALID:
        rows, cols = g.divisors(include)
        window = np.float32(g.kernel[0] * g.kernel[1])
        divisor = np.outer(rows, cols).astype(np.float32)
        if np.any(divisor != window):  # window means -> PyTorch's means
            factor = (window / divisor).reshape(1, ho, wo, 1).astype(np.float32)
    base = f"{out}/window_mean" if factor is not None else out
    y = ctx.op("AVERAGE_POOL_2D", [x], base, [None, ho, wo, c], g.options(padding))
    if factor is not None:
        y = ctx.op("MUL", [y, ctx.main.constant(factor)], out, [None, ho, wo, c], schema.MulOptionsT())
    ctx.define(out, y, NHWC, (None, c, ho, wo))


def _adaptive_pool(kind: str) -> Translator:
    def translate_adaptive(ctx: ExportContext, node: Node) -> None:
        c, h, w = _rank4(ctx, node.inputs[0])
        oh, ow = node.attrs["output"]
        if min(oh, ow) < 1:
            raise ValueError(f"output size {[oh, ow]} must be positive")
        out = node.outputs[0]
        y = adaptive_pool(ctx, ctx.get(node.inputs[0], NHWC), (h, w), (oh, ow), kind, out)
        if y is None:  # output size = input size: the identity
            ctx.alias(out, node.inputs[0])
            return
        ctx.define(out, y, NHWC, (None, c, oh, ow))

    return translate_adaptive


register_op("AdaptiveAvgPool2d")(_adaptive_pool("avg"))
register_op("AdaptiveMaxPool2d")(_adaptive_pool("max"))


@register_op("GlobalAvgPool")
def _global_avg_pool(ctx: ExportContext, node: Node) -> None:
    c, _, _ = _rank4(ctx, node.inputs[0])
    options = schema.ReducerOptionsT()
    options.keepDims = True
    x = ctx.get(node.inputs[0], NHWC)
    y = ctx.op("MEAN", [x, ctx.int32([1, 2])], node.outputs[0], [None, 1, 1, c], options)
    ctx.define(node.outputs[0], y, NHWC, (None, c, 1, 1))


# ---------------------------------------------------------------------------------- shapes


@register_op("Flatten")
def _flatten(ctx: ExportContext, node: Node) -> None:
    shape = ctx.shape(node.inputs[0])
    start = node.attrs["start_dim"]
    if not 1 <= start < max(len(shape), 2):
        raise ValueError(f"start_dim {start} invalid for rank {len(shape)}")
    _reshape_to(ctx, node, [*shape[1:start], math.prod(shape[start:])])  # type: ignore[arg-type]


@register_op("Reshape")
def _reshape(ctx: ExportContext, node: Node) -> None:
    target = list(node.attrs["shape"])
    features = math.prod(ctx.shape(node.inputs[0])[1:])  # type: ignore[arg-type]
    if target.count(-1) == 1 and all(d > 0 or d == -1 for d in target):
        known = math.prod(d for d in target if d != -1)
        if known and features % known == 0:
            target[target.index(-1)] = features // known
    if not target or any(d < 1 for d in target) or math.prod(target) != features:
        raise ValueError(f"cannot reshape {features} features to {node.attrs['shape']}")
    _reshape_to(ctx, node, target)


_MAX_TRANSPOSE_RANK = 6  # TRANSPOSE takes up to 6 axes: values of higher rank stay in PyTorch's order


def _reshape_to(ctx: ExportContext, node: Node, target: list[int]) -> None:
    """RESHAPE to ``[batch, *target]`` in PyTorch's memory order; identity reshapes add no op.

    The reshape is applied to whichever held tensor allows it without a TRANSPOSE
    (``layout.reshape_groups``): e.g. splitting the channels of an NHWC tensor, as channel
    shuffle does, keeps the result in a permuted layout. Otherwise one TRANSPOSE brings the
    axes that merge next to each other first (to PyTorch's order for a flatten).
    """
    name, out = node.inputs[0], node.outputs[0]
    source = ctx.shape(name)
    shape = (None, *target)
    if tuple(source) == shape:
        ctx.alias(out, name)
        return
    rank = len(source)
    if rank == 1:  # [N] has no axes to keep in place
        ctx.define(out, ctx.reshape(ctx.get(name, TORCH), target, out), TORCH, shape)
        return
    groups = reshape_groups(source[1:], target)  # type: ignore[arg-type]
    for layout in ctx.layouts(name):
        held = layout_perm(layout, rank)
        t = _reshaped_layout(held, groups)
        if t is not None and (len(t) <= _MAX_TRANSPOSE_RANK or perm_layout(t) == TORCH):
            y = ctx.reshape(ctx.get(name, layout), [shape[a] for a in t[1:]], out)  # type: ignore[misc]
            ctx.define(out, y, perm_layout(t), shape)
            return
    if rank == 4 and NHWC in ctx.layouts(name) and TORCH not in ctx.layouts(name):
        _, c, h, w = source
        if c == 1 or h * w == 1:  # type: ignore[operator]
            ctx.define(out, ctx.reshape(ctx.get_torch_order(name), target, out), TORCH, shape)
            return
    held = layout_perm(ctx.layouts(name)[0], rank)
    order = sorted(groups, key=lambda g: min(held.index(a) for a in g[0]))  # keep the groups' places
    wanted = (0, *(a for g in order for a in g[0]))
    if len(shape) > _MAX_TRANSPOSE_RANK:  # a result no TRANSPOSE could bring back to PyTorch's order
        wanted = tuple(range(rank))
    t = _reshaped_layout(wanted, groups)
    assert t is not None
    x = ctx.get(name, perm_layout(wanted))
    ctx.define(out, ctx.reshape(x, [shape[a] for a in t[1:]], out), perm_layout(t), shape)  # type: ignore[misc]


def _reshaped_layout(
    held: tuple[int, ...], groups: list[tuple[list[int], list[int]]]
) -> tuple[int, ...] | None:
    """The layout of the reshape's result when applied to a tensor in layout ``held``, or None.

    None unless every group's source axes are adjacent and in order in ``held``.
    """
    first = {}
    for source, target in groups:
        positions = [held.index(a) for a in source]
        if positions != list(range(positions[0], positions[0] + len(positions))):
            return None
        first[source[0]] = target
    result = [0]
    for axis in held[1:]:
        result.extend(first.get(axis, []))
    return tuple(result)


@register_op("Transpose")
def _transpose(ctx: ExportContext, node: Node) -> None:
    """No op at all: the output is the input's tensors in a relabelled layout.

    The data moves only where a consumer needs another layout, fused with the layout change it
    would make anyway (``context.ExportContext.define_permuted``): e.g. ``permute(0, 2, 3, 1)``
    of an NHWC value is that NHWC tensor in PyTorch order. Ranks above 6 (TRANSPOSE takes up to
    6 axes) are transposed here, merging the axes that stay adjacent.
    """
    name, out = node.inputs[0], node.outputs[0]
    shape = ctx.shape(name)
    perm = tuple(node.attrs["perm"])
    rank = len(shape)
    if sorted(perm) != list(range(rank)) or perm[0] != 0:
        raise ValueError(
            f"perm {list(perm)} is not a permutation of the axes of {list(shape)} keeping axis 0"
        )
    out_shape = tuple(shape[p] for p in perm)
    if rank <= 6:
        ctx.define_permuted(out, name, perm)
        return
    x = ctx.get(name, TORCH)
    groups: list[list[int]] = []  # runs of input axes that stay adjacent and in order
    for axis in perm:
        if groups and groups[-1][-1] + 1 == axis and groups[-1] != [0]:  # the batch stays alone
            groups[-1].append(axis)
        else:
            groups.append([axis])
    if len(groups) > 6:
        raise _Unsupported(f"Transpose with perm {list(perm)} (TRANSPOSE takes up to 6 axes)")
    order = sorted(groups)  # the groups in input order
    merged = ctx.reshape(x, [math.prod(shape[a] for a in g) for g in order[1:]], f"{out}/merged")  # type: ignore[misc]
    moved = ctx.transpose(merged, [order.index(g) for g in groups], f"{out}/moved")
    ctx.define(out, ctx.reshape(moved, list(out_shape[1:]), out), TORCH, out_shape)  # type: ignore[arg-type]


@register_op("Slice")
def _slice(ctx: ExportContext, node: Node) -> None:
    """SLICE of the tensor as held (the axis mapped through its layout); ranks above 5 as rank 4."""
    name, out = node.inputs[0], node.outputs[0]
    shape = ctx.shape(name)
    axis, start, end = node.attrs["axis"], node.attrs["start"], node.attrs["end"]
    if not 1 <= axis < len(shape) or not 0 <= start < end <= shape[axis]:  # type: ignore[operator]
        raise ValueError(f"cannot take [{start}, {end}) of axis {axis} of {list(shape)}")
    out_shape = (*shape[:axis], end - start, *shape[axis + 1 :])
    if start == 0 and end == shape[axis]:
        ctx.alias(out, name)
        return
    if len(shape) > 5:  # SLICE takes up to 5 axes: [N, before, axis, after] in PyTorch order
        before = math.prod(shape[1:axis])  # type: ignore[arg-type]
        after = math.prod(shape[axis + 1 :])  # type: ignore[arg-type]
        x = ctx.reshape(ctx.get(name, TORCH), [before, shape[axis], after], f"{out}/flat")  # type: ignore[list-item]
        begin, size = [0, 0, start, 0], [-1, before, end - start, after]
        y = ctx.op("SLICE", [x, ctx.int32(begin), ctx.int32(size)], f"{out}/sliced", [None, *size[1:]])
        ctx.define(out, ctx.reshape(y, list(out_shape[1:]), out), TORCH, out_shape)  # type: ignore[arg-type]
        return
    layout = ctx.layouts(name)[0]
    held = layout_perm(layout, len(shape))
    begin = [start if a == axis else 0 for a in held]
    size = [-1, *(out_shape[a] for a in held[1:])]
    y = ctx.op("SLICE", [ctx.get(name, layout), ctx.int32(begin), ctx.int32(size)], out, [None, *size[1:]])
    ctx.define(out, y, layout, out_shape)


@register_op("Mean")
def _mean(ctx: ExportContext, node: Node) -> None:
    """MEAN over the dims mapped through the input's layout; the result stays in that layout's order."""
    name, out = node.inputs[0], node.outputs[0]
    shape = ctx.shape(name)
    dims, keep = sorted(node.attrs["dims"]), bool(node.attrs["keepdim"])
    if not dims or len(set(dims)) != len(dims) or not all(1 <= d < len(shape) for d in dims):
        raise ValueError(f"dims {node.attrs['dims']} are not distinct non-batch axes of {list(shape)}")
    kept = [a for a in range(len(shape)) if a not in dims]
    if len(shape) > _MAX_XNNPACK_RANK:
        _mean_high_rank(ctx, node, dims, keep)
        return
    layout = ctx.layouts(name)[0]
    held = layout_perm(layout, len(shape))
    if keep:
        out_shape = tuple(1 if a in dims else shape[a] for a in range(len(shape)))
        out_layout, out_held = layout, [out_shape[a] for a in held]
    else:
        out_shape = tuple(shape[a] for a in kept)
        order = [a for a in held if a not in dims]  # kept axes in held order
        out_layout, out_held = perm_layout([kept.index(a) for a in order]), [shape[a] for a in order]
    options = schema.ReducerOptionsT()
    options.keepDims = keep
    axes = ctx.int32(sorted(held.index(d) for d in dims))
    y = ctx.op("MEAN", [ctx.get(name, layout), axes], out, [None, *out_held[1:]], options)
    ctx.define(out, y, out_layout, out_shape)


def _mean_high_rank(ctx: ExportContext, node: Node, dims: list[int], keep: bool) -> None:
    """Mean over ``dims`` of a value of rank > 6: one rank-4 MEAN per run of adjacent dims.

    Each run is reduced as axis 2 of ``[N, before, run, after]``; means over disjoint axes
    compose (equal counts), within float32 rounding of one mean.
    """
    name, out = node.inputs[0], node.outputs[0]
    shape = list(ctx.shape(name))
    runs: list[list[int]] = []
    for d in dims:
        if runs and runs[-1][-1] + 1 == d:
            runs[-1].append(d)
        else:
            runs.append([d])
    x = ctx.get(name, TORCH)
    options = schema.ReducerOptionsT()
    options.keepDims = True
    for i, run in enumerate(reversed(runs)):  # from the back, so earlier axes keep their numbers
        before, size = math.prod(shape[1 : run[0]]), math.prod(shape[run[0] : run[-1] + 1])  # type: ignore[arg-type]
        after = math.prod(shape[run[-1] + 1 :])  # type: ignore[arg-type]
        view = ctx.reshape(x, [before, size, after], f"{out}/run{i}")
        x = ctx.op("MEAN", [view, ctx.int32([2])], f"{out}/run{i}_mean", [None, before, 1, after], options)
        shape[run[0] : run[-1] + 1] = [1] * len(run)
    out_shape = tuple(shape) if keep else tuple(shape[a] for a in range(len(shape)) if a not in dims)
    ctx.define(out, ctx.reshape(x, list(out_shape[1:]), out), TORCH, out_shape)  # type: ignore[arg-type]

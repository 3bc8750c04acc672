"""Graph ops (docs/FORMAT.md §5) as standard ONNX nodes: one small translator per .hpk op.

Every .hpk op means what the PyTorch operation of the same name means (NCHW), and so does its
ONNX counterpart here; the weights come from :meth:`GraphBuilder.param`, whatever the weights mode.
.hpk value names are kept as ONNX tensor names. An op without a translator is an
``HpkFormatError`` naming the op and the node.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hashpack.runtime import Node

from .builder import GraphBuilder

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


@register_op("Linear")
def _linear(b: GraphBuilder, node: Node) -> None:
    # Gemm(x, W, b, transB=1) = x @ W.T + b, with W in torch's [out, in] layout as stored.
    inputs = [node.inputs[0], *_params(b, node, "weight", "bias")]
    b.node("Gemm", inputs, node.outputs, node.name, transB=1)


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


for _op in ("Relu", "Sigmoid", "Tanh", "Add"):
    register_op(_op)(_same_name(_op))
register_op("GlobalAvgPool")(_same_name("GlobalAveragePool"))


@register_op("Relu6")
def _relu6(b: GraphBuilder, node: Node) -> None:
    low = b.constant(0.0, np.float32, "const/zero_f32")
    high = b.constant(6.0, np.float32, "const/six_f32")
    b.node("Clip", [node.inputs[0], low, high], node.outputs, node.name)


@register_op("MaxPool2d")
def _max_pool(b: GraphBuilder, node: Node) -> None:
    a = node.attrs  # ONNX MaxPool, like torch, never picks a padded position (padding is -inf)
    b.node(
        "MaxPool",
        list(node.inputs),
        node.outputs,
        node.name,
        kernel_shape=a["kernel"],
        strides=a["stride"],
        pads=_pads(a["padding"]),
        dilations=a["dilation"],
    )


@register_op("AvgPool2d")
def _avg_pool(b: GraphBuilder, node: Node) -> None:
    a = node.attrs
    b.node(
        "AveragePool",
        list(node.inputs),
        node.outputs,
        node.name,
        kernel_shape=a["kernel"],
        strides=a["stride"],
        pads=_pads(a["padding"]),
        count_include_pad=int(a["count_include_pad"]),
    )


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


@register_op("Concat")
def _concat(b: GraphBuilder, node: Node) -> None:
    b.node("Concat", list(node.inputs), node.outputs, node.name, axis=node.attrs["axis"])


@register_op("Softmax")
def _softmax(b: GraphBuilder, node: Node) -> None:
    # opset >= 13 Softmax normalises over the one axis, as torch does.
    b.node("Softmax", list(node.inputs), node.outputs, node.name, axis=node.attrs["axis"])

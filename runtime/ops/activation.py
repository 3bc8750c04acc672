"""Elementwise activations (Relu, Relu6, Sigmoid, Tanh, Hardswish, Hardsigmoid, Silu) and Softmax."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._registry import Shape, elementwise, per_sample, register


@register("Relu", infer=elementwise)
def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, np.float32(0))


@register("Relu6", infer=elementwise)
def relu6(x: np.ndarray) -> np.ndarray:
    return np.clip(x, np.float32(0), np.float32(6))


@register("Sigmoid", infer=elementwise)
def sigmoid(x: np.ndarray) -> np.ndarray:
    return (np.float32(1) / (np.float32(1) + np.exp(-x))).astype(np.float32)


@register("Tanh", infer=elementwise)
def tanh(x: np.ndarray) -> np.ndarray:
    return np.tanh(x)


@register("Hardsigmoid", infer=elementwise)
def hardsigmoid(x: np.ndarray) -> np.ndarray:
    """relu6(x + 3) / 6, as F.hardsigmoid."""
    return np.clip(x + np.float32(3), np.float32(0), np.float32(6)) / np.float32(6)


@register("Hardswish", infer=elementwise)
def hardswish(x: np.ndarray) -> np.ndarray:
    """x · relu6(x + 3) / 6, as F.hardswish."""
    return x * np.clip(x + np.float32(3), np.float32(0), np.float32(6)) / np.float32(6)


@register("Silu", infer=elementwise)
def silu(x: np.ndarray) -> np.ndarray:
    """x · sigmoid(x), as F.silu (exp overflows to inf for very negative x: the result is -0)."""
    with np.errstate(over="ignore"):
        return (x / (np.float32(1) + np.exp(-x))).astype(np.float32)


def _softmax_shape(shapes: list[Shape], attrs: dict[str, Any], params: dict) -> tuple[Shape, int]:
    (x,) = shapes
    if not -len(x) <= attrs["axis"] < len(x):
        raise ValueError(f"axis {attrs['axis']} is out of range for rank {len(x)}")
    if attrs["axis"] % len(x) == 0:  # FORMAT.md §5: no op mixes the samples of a batch
        raise ValueError(f"axis {attrs['axis']} is the batch dimension (rank {len(x)})")
    return x, per_sample(x)


@register("Softmax", attrs={"axis": "int"}, infer=_softmax_shape)
def softmax(x: np.ndarray, axis: int) -> np.ndarray:
    shifted = x - x.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=axis, keepdims=True)

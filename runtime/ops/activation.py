"""Elementwise activations and Softmax."""

from __future__ import annotations

import numpy as np

from ._registry import register


@register("Relu")
def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, np.float32(0))


@register("Relu6")
def relu6(x: np.ndarray) -> np.ndarray:
    return np.clip(x, np.float32(0), np.float32(6))


@register("Sigmoid")
def sigmoid(x: np.ndarray) -> np.ndarray:
    return (np.float32(1) / (np.float32(1) + np.exp(-x))).astype(np.float32)


@register("Tanh")
def tanh(x: np.ndarray) -> np.ndarray:
    return np.tanh(x)


@register("Softmax", attrs={"axis": "int"})
def softmax(x: np.ndarray, axis: int) -> np.ndarray:
    shifted = x - x.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=axis, keepdims=True)

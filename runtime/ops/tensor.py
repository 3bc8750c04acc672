"""Shape ops and elementwise combination: Flatten, Reshape, Add, Concat."""

from __future__ import annotations

import numpy as np

from ._registry import register


@register("Flatten", attrs={"start_dim": "int"})
def flatten(x: np.ndarray, start_dim: int) -> np.ndarray:
    if not 1 <= start_dim < max(x.ndim, 2):
        raise ValueError(f"start_dim {start_dim} invalid for rank {x.ndim}")
    return x.reshape(*x.shape[:start_dim], -1)


@register("Reshape", attrs={"shape": "ints"})
def reshape(x: np.ndarray, shape: list[int]) -> np.ndarray:
    return x.reshape(x.shape[0], *shape)


@register("Add", num_inputs=2)
def add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a + b


@register("Concat", attrs={"axis": "int"}, num_inputs=None)
def concat(*xs: np.ndarray, axis: int) -> np.ndarray:
    return np.concatenate(xs, axis=axis)

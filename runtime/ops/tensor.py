"""Shape ops and elementwise combination: Flatten, Reshape, Add, Concat."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._registry import Shape, per_sample, register, show_shape


def _flatten_shape(shapes: list[Shape], attrs: dict[str, Any], params: dict) -> tuple[Shape, int]:
    (x,) = shapes
    start = attrs["start_dim"]
    if not 1 <= start < len(x):
        raise ValueError(f"start_dim {start} is out of range [1, {len(x)}) for input {show_shape(x)}")
    return (*x[:start], math.prod(x[start:])), per_sample(x)  # type: ignore[arg-type]


@register("Flatten", attrs={"start_dim": "int"}, infer=_flatten_shape)
def flatten(x: np.ndarray, start_dim: int) -> np.ndarray:
    if not 1 <= start_dim < x.ndim:
        raise ValueError(f"start_dim {start_dim} invalid for rank {x.ndim}")
    return x.reshape(*x.shape[:start_dim], math.prod(x.shape[start_dim:]))


def _reshape_shape(shapes: list[Shape], attrs: dict[str, Any], params: dict) -> tuple[Shape, int]:
    (x,) = shapes
    target = attrs["shape"]
    if len(target) > 7 or not all(d >= 1 for d in target):
        raise ValueError(f"shape {target} is not at most 7 positive dimensions (the batch excluded)")
    if math.prod(target) != per_sample(x):
        raise ValueError(
            f"cannot reshape input {show_shape(x)} ({per_sample(x)} per sample) to [N, *{target}]"
        )
    return (None, *target), per_sample(x)


@register("Reshape", attrs={"shape": "ints"}, infer=_reshape_shape)
def reshape(x: np.ndarray, shape: list[int]) -> np.ndarray:
    return x.reshape(x.shape[0], *shape)


def _add_shape(shapes: list[Shape], attrs: dict[str, Any], params: dict) -> tuple[Shape, int]:
    a, b = shapes
    if len(a) != len(b) or any(db not in (da, 1) for da, db in zip(a[1:], b[1:], strict=True)):
        raise ValueError(f"second input {show_shape(b)} does not broadcast to the first {show_shape(a)}")
    return a, per_sample(a)


@register("Add", num_inputs=2, infer=_add_shape)
def add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a + b


def _concat_shape(shapes: list[Shape], attrs: dict[str, Any], params: dict) -> tuple[Shape, int]:
    first, axis = shapes[0], attrs["axis"]
    if not 1 <= axis < len(first):
        raise ValueError(f"axis {axis} is out of range [1, {len(first)}) for input {show_shape(first)}")
    rest = first[:axis] + first[axis + 1 :]
    total = 0
    for shape in shapes:
        if shape is not first and (len(shape) != len(first) or shape[:axis] + shape[axis + 1 :] != rest):
            raise ValueError(
                f"input {show_shape(shape)} does not match {show_shape(first)} outside axis {axis}"
            )
        total += shape[axis]  # type: ignore[operator]
    out = (*first[:axis], total, *first[axis + 1 :])
    return out, per_sample(out)


@register("Concat", attrs={"axis": "int"}, num_inputs=None, infer=_concat_shape)
def concat(*xs: np.ndarray, axis: int) -> np.ndarray:
    return np.concatenate(xs, axis=axis)

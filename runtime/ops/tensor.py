"""Shape ops and elementwise combination: Flatten, Reshape, Transpose, Slice, Mean, Add, Mul, Concat."""

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


def _check_perm(attrs: dict, params: dict) -> str | None:
    perm = attrs["perm"]
    if sorted(perm) != list(range(len(perm))) or not perm or perm[0] != 0:
        return f"perm {perm} is not a permutation of 0..rank-1 that keeps axis 0 (the batch) first"
    return None


def _transpose_shape(shapes: list[Shape], attrs: dict[str, Any], params: dict) -> tuple[Shape, int]:
    (x,) = shapes
    perm = attrs["perm"]
    if len(perm) != len(x):
        raise ValueError(f"perm {perm} has {len(perm)} entries for input {show_shape(x)} of rank {len(x)}")
    return tuple(x[i] for i in perm), per_sample(x)


@register("Transpose", attrs={"perm": "ints"}, validate=_check_perm, infer=_transpose_shape)
def transpose(x: np.ndarray, perm: list[int]) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(x, perm))


def _slice_shape(shapes: list[Shape], attrs: dict[str, Any], params: dict) -> tuple[Shape, int]:
    (x,) = shapes
    axis, start, end = attrs["axis"], attrs["start"], attrs["end"]
    if not 1 <= axis < len(x):
        raise ValueError(f"axis {axis} is out of range [1, {len(x)}) for input {show_shape(x)}")
    if not 0 <= start < end <= x[axis]:  # type: ignore[operator]
        raise ValueError(f"slice [{start}, {end}) is not within [0, {x[axis]}] along axis {axis}")
    out = (*x[:axis], end - start, *x[axis + 1 :])
    return out, per_sample(out)


@register("Slice", attrs={"axis": "int", "start": "int", "end": "int"}, infer=_slice_shape)
def slice_(x: np.ndarray, axis: int, start: int, end: int) -> np.ndarray:
    if not 1 <= axis < x.ndim or not 0 <= start < end <= x.shape[axis]:
        raise ValueError(f"slice [{start}, {end}) on axis {axis} does not fit shape {list(x.shape)}")
    index = [slice(None)] * x.ndim
    index[axis] = slice(start, end)
    return np.ascontiguousarray(x[tuple(index)])


def _check_mean(attrs: dict, params: dict) -> str | None:
    dims = attrs["dims"]
    if not dims or len(set(dims)) != len(dims) or min(dims) < 1:
        return f"dims {dims} must be distinct non-batch axes (each >= 1), at least one"
    return None


def _mean_shape(shapes: list[Shape], attrs: dict[str, Any], params: dict) -> tuple[Shape, int]:
    (x,) = shapes
    dims, keepdim = attrs["dims"], attrs["keepdim"]
    if max(dims) >= len(x):
        raise ValueError(f"dims {dims} out of range for input {show_shape(x)}")
    if keepdim:
        out = tuple(1 if i in dims else d for i, d in enumerate(x))
    else:
        out = tuple(d for i, d in enumerate(x) if i not in dims)
    return out, per_sample(x)


@register("Mean", attrs={"dims": "ints", "keepdim": "bool"}, validate=_check_mean, infer=_mean_shape)
def mean(x: np.ndarray, dims: list[int], keepdim: bool) -> np.ndarray:
    return x.mean(axis=tuple(dims), keepdims=keepdim, dtype=np.float32)


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


def _mul_shape(shapes: list[Shape], attrs: dict[str, Any], params: dict) -> tuple[Shape, int]:
    a, b = shapes
    if len(a) != len(b) or any(1 not in (da, db) and da != db for da, db in zip(a[1:], b[1:], strict=True)):
        raise ValueError(f"inputs {show_shape(a)} and {show_shape(b)} do not broadcast together")
    out = (None, *(max(da, db) for da, db in zip(a[1:], b[1:], strict=True)))  # type: ignore[type-var]
    return out, per_sample(out)


@register("Mul", num_inputs=2, infer=_mul_shape)
def mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a · b with two-way broadcasting over non-batch axes (squeeze-and-excitation gating)."""
    return a * b

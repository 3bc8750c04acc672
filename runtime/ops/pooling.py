"""MaxPool2d, AvgPool2d (ceil_mode=False) and GlobalAvgPool (= AdaptiveAvgPool2d(1))."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._registry import Shape, per_sample, register, require_rank
from ._windows import pool_padding_error, window_output, windows


def _check_max(attrs: dict, params: dict) -> str | None:
    return pool_padding_error(attrs["kernel"], attrs["padding"])


def _check_avg(attrs: dict, params: dict) -> str | None:
    return pool_padding_error(attrs["kernel"], attrs["padding"])


def _pool_shape(shapes: list[Shape], attrs: dict[str, Any], params: dict) -> tuple[Shape, int]:
    (x,) = shapes
    kernel, dilation = attrs["kernel"], attrs.get("dilation", [1, 1])
    h_out, w_out = window_output(x, kernel, attrs["stride"], attrs["padding"], dilation)
    return (None, x[1], h_out, w_out), x[1] * h_out * w_out * kernel[0] * kernel[1]  # type: ignore[operator]


def _global_shape(shapes: list[Shape], attrs: dict[str, Any], params: dict) -> tuple[Shape, int]:
    (x,) = shapes
    require_rank(x, (4,))
    return (None, x[1], 1, 1), per_sample(x)


@register(
    "MaxPool2d",
    attrs={"kernel": "pair", "stride": "pair", "padding": "pair", "dilation": "pair"},
    validate=_check_max,
    infer=_pool_shape,
)
def max_pool2d(x: np.ndarray, kernel: list[int], stride: list[int], padding: list[int], dilation: list[int]):
    view = windows(x, tuple(kernel), tuple(stride), tuple(padding), tuple(dilation), pad_value=-np.inf)
    return view.max(axis=(4, 5))


@register(
    "AvgPool2d",
    attrs={"kernel": "pair", "stride": "pair", "padding": "pair", "count_include_pad": "bool"},
    validate=_check_avg,
    infer=_pool_shape,
)
def avg_pool2d(
    x: np.ndarray, kernel: list[int], stride: list[int], padding: list[int], count_include_pad: bool
):
    k, s, p = tuple(kernel), tuple(stride), tuple(padding)
    total = windows(x, k, s, p, (1, 1)).sum(axis=(4, 5), dtype=np.float32)
    if count_include_pad or not any(p):
        return total / np.float32(k[0] * k[1])
    ones = np.ones((1, 1, *x.shape[2:]), dtype=np.float32)
    counts = windows(ones, k, s, p, (1, 1)).sum(axis=(4, 5))
    return total / counts


@register("GlobalAvgPool", infer=_global_shape)
def global_avg_pool(x: np.ndarray) -> np.ndarray:
    if x.ndim != 4:
        raise ValueError(f"expects an NCHW input, got shape {list(x.shape)}")
    return x.mean(axis=(2, 3), keepdims=True, dtype=np.float32)

"""MaxPool2d, AvgPool2d (ceil_mode=False) and GlobalAvgPool (= AdaptiveAvgPool2d(1))."""

from __future__ import annotations

import numpy as np

from ._registry import register
from ._windows import windows


@register("MaxPool2d", attrs={"kernel": "pair", "stride": "pair", "padding": "pair", "dilation": "pair"})
def max_pool2d(x: np.ndarray, kernel: list[int], stride: list[int], padding: list[int], dilation: list[int]):
    view = windows(x, tuple(kernel), tuple(stride), tuple(padding), tuple(dilation), pad_value=-np.inf)
    return view.max(axis=(4, 5))


@register(
    "AvgPool2d", attrs={"kernel": "pair", "stride": "pair", "padding": "pair", "count_include_pad": "bool"}
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


@register("GlobalAvgPool")
def global_avg_pool(x: np.ndarray) -> np.ndarray:
    if x.ndim != 4:
        raise ValueError(f"expects an NCHW input, got shape {list(x.shape)}")
    return x.mean(axis=(2, 3), keepdims=True, dtype=np.float32)

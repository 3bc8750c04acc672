"""MaxPool2d, AvgPool2d (optional ceil_mode), GlobalAvgPool and AdaptiveAvg/MaxPool2d."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._registry import Shape, check_elements, per_sample, register, require_rank
from ._windows import ceil_extra, pool_padding_error, window_output, windows


def _check_pool(attrs: dict, params: dict) -> str | None:
    return pool_padding_error(attrs["kernel"], attrs["padding"])


def _pool_shape(shapes: list[Shape], attrs: dict[str, Any], params: dict) -> tuple[Shape, int]:
    (x,) = shapes
    kernel, dilation = attrs["kernel"], attrs.get("dilation", [1, 1])
    ceil_mode = attrs.get("ceil_mode", False)
    h_out, w_out = window_output(x, kernel, attrs["stride"], attrs["padding"], dilation, ceil_mode)
    return (None, x[1], h_out, w_out), x[1] * h_out * w_out * kernel[0] * kernel[1]  # type: ignore[operator]


def _extra(x: np.ndarray, kernel, stride, padding, dilation, ceil_mode: bool) -> tuple[int, int]:
    """Bottom/right padding beyond ``padding`` that ceil_mode's last partial window needs."""
    if not ceil_mode:
        return (0, 0)
    return (
        ceil_extra(x.shape[2], kernel[0], stride[0], padding[0], dilation[0]),
        ceil_extra(x.shape[3], kernel[1], stride[1], padding[1], dilation[1]),
    )


@register(
    "MaxPool2d",
    attrs={"kernel": "pair", "stride": "pair", "padding": "pair", "dilation": "pair"},
    optional_attrs={"ceil_mode": "bool"},
    validate=_check_pool,
    infer=_pool_shape,
)
def max_pool2d(
    x: np.ndarray,
    kernel: list[int],
    stride: list[int],
    padding: list[int],
    dilation: list[int],
    ceil_mode: bool = False,
) -> np.ndarray:
    extra = _extra(x, kernel, stride, padding, dilation, ceil_mode)
    k, s, p, d = tuple(kernel), tuple(stride), tuple(padding), tuple(dilation)
    view = windows(x, k, s, p, d, pad_value=-np.inf, extra=extra)  # type: ignore[arg-type]
    return view.max(axis=(4, 5))


@register(
    "AvgPool2d",
    attrs={"kernel": "pair", "stride": "pair", "padding": "pair", "count_include_pad": "bool"},
    optional_attrs={"ceil_mode": "bool"},
    validate=_check_pool,
    infer=_pool_shape,
)
def avg_pool2d(
    x: np.ndarray,
    kernel: list[int],
    stride: list[int],
    padding: list[int],
    count_include_pad: bool,
    ceil_mode: bool = False,
) -> np.ndarray:
    k, s, p = tuple(kernel), tuple(stride), tuple(padding)
    extra = _extra(x, kernel, stride, padding, [1, 1], ceil_mode)
    total = windows(x, k, s, p, (1, 1), extra=extra).sum(axis=(4, 5), dtype=np.float32)  # type: ignore[arg-type]
    if not any(extra) and (count_include_pad or not any(p)):
        return total / np.float32(k[0] * k[1])
    # torch's divisor: the window clipped to the padded input [-p, H + p) when padding counts,
    # else to the input itself; so ceil_mode's extra cells never count.
    if count_include_pad:
        ones = np.ones((1, 1, x.shape[2] + 2 * p[0], x.shape[3] + 2 * p[1]), dtype=np.float32)
        counts = windows(ones, k, s, (0, 0), (1, 1), extra=extra).sum(axis=(4, 5))  # type: ignore[arg-type]
    else:
        ones = np.ones((1, 1, *x.shape[2:]), dtype=np.float32)
        counts = windows(ones, k, s, p, (1, 1), extra=extra).sum(axis=(4, 5))  # type: ignore[arg-type]
    return total / counts


def _global_shape(shapes: list[Shape], attrs: dict[str, Any], params: dict) -> tuple[Shape, int]:
    (x,) = shapes
    require_rank(x, (4,))
    return (None, x[1], 1, 1), per_sample(x)


@register("GlobalAvgPool", infer=_global_shape)
def global_avg_pool(x: np.ndarray) -> np.ndarray:
    if x.ndim != 4:
        raise ValueError(f"expects an NCHW input, got shape {list(x.shape)}")
    return x.mean(axis=(2, 3), keepdims=True, dtype=np.float32)


# ------------------------------------------------------------------------------- adaptive pooling


def adaptive_windows(size: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """torch's adaptive windows as gather indices: window i covers [floor(i·size/out),
    ceil((i+1)·size/out)); returns (index [out, width], mask [out, width]) with each short window
    padded by repeating its last position (masked out)."""
    i = np.arange(out, dtype=np.int64)
    starts, ends = (i * size) // out, -(-((i + 1) * size) // out)
    width = int((ends - starts).max())
    offsets = np.arange(width, dtype=np.int64)
    index = np.minimum(starts[:, None] + offsets, ends[:, None] - 1)
    return index, offsets < (ends - starts)[:, None]


def _window_bound(size: int, out: int) -> int:
    """An upper bound of the widest adaptive window along one axis (no loop over ``out``)."""
    return -(-size // out) + 1


def _check_adaptive(attrs: dict, params: dict) -> str | None:
    if min(attrs["output"]) < 1:
        return f"output {attrs['output']} must be at least 1 in each dimension"
    return None


def _adaptive_shape(shapes: list[Shape], attrs: dict[str, Any], params: dict) -> tuple[Shape, int]:
    (x,) = shapes
    require_rank(x, (4,))
    channels, height, width = x[1], x[2], x[3]
    oh, ow = attrs["output"]
    out = (None, channels, oh, ow)
    check_elements(per_sample(out), "the pooled output")
    kh, kw = _window_bound(height, oh), _window_bound(width, ow)  # type: ignore[arg-type]
    check_elements(channels * oh * kh * width, "the gathered row windows")  # type: ignore[operator]
    check_elements(channels * oh * ow * kw, "the gathered column windows")  # type: ignore[operator]
    return out, per_sample(out) * kh * kw


def _adaptive(x: np.ndarray, output: list[int], average: bool) -> np.ndarray:
    """Pool rows, then columns (separable: every window of a row band has the same height)."""
    if x.ndim != 4:
        raise ValueError(f"expects an NCHW input, got shape {list(x.shape)}")
    for axis, out in ((2, output[0]), (3, output[1])):
        index, mask = adaptive_windows(x.shape[axis], out)
        taken = np.take(x, index, axis=axis)  # the axis becomes [out, width]
        shape = [1] * taken.ndim
        shape[axis], shape[axis + 1] = mask.shape
        mask = mask.reshape(shape)
        if average:
            total = np.where(mask, taken, np.float32(0)).sum(axis=axis + 1, dtype=np.float32)
            x = total / mask.sum(axis=axis + 1).astype(np.float32)
        else:
            x = np.where(mask, taken, np.float32(-np.inf)).max(axis=axis + 1)
    return x.astype(np.float32)


@register("AdaptiveAvgPool2d", attrs={"output": "pair"}, validate=_check_adaptive, infer=_adaptive_shape)
def adaptive_avg_pool2d(x: np.ndarray, output: list[int]) -> np.ndarray:
    return _adaptive(x, output, average=True)


@register("AdaptiveMaxPool2d", attrs={"output": "pair"}, validate=_check_adaptive, infer=_adaptive_shape)
def adaptive_max_pool2d(x: np.ndarray, output: list[int]) -> np.ndarray:
    return _adaptive(x, output, average=False)

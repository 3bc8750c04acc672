"""Sliding windows over NCHW tensors, shared by convolution and pooling."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._registry import Shape, check_elements, require_rank, show_shape


def windows(
    x: np.ndarray,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    pad_value: float = 0.0,
    extra: tuple[int, int] = (0, 0),
) -> np.ndarray:
    """A read-only view [N, C, H_out, W_out, kh, kw] of the windows each output position sees.

    ``extra`` pads the bottom/right edge further, for pooling's ceil_mode (a last, partial window).
    """
    if x.ndim != 4:
        raise ValueError(f"expects an NCHW input, got shape {list(x.shape)}")
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    if min(kh, kw, sh, sw, dh, dw) < 1:
        raise ValueError("kernel, stride and dilation must be positive")
    if ph or pw or any(extra):
        pads = ((0, 0), (0, 0), (ph, ph + extra[0]), (pw, pw + extra[1]))
        x = np.pad(x, pads, constant_values=pad_value)
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    if x.shape[2] < span_h or x.shape[3] < span_w:
        raise ValueError(
            f"kernel {kernel} (dilation {dilation}) is larger than the padded input {list(x.shape[2:])}"
        )
    view = sliding_window_view(x, (span_h, span_w), axis=(2, 3))
    return view[:, :, ::sh, ::sw, ::dh, ::dw]


def window_output(
    x: Shape,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    ceil_mode: bool = False,
) -> tuple[int, int]:
    """(H_out, W_out) of ``windows`` over an input of shape ``x``; ValueError if it cannot run."""
    require_rank(x, (4,))
    if min(*kernel, *stride, *dilation) < 1:
        raise ValueError(
            f"kernel {list(kernel)}, stride {list(stride)} and dilation {list(dilation)} must be positive"
        )
    channels, height, width = x[1], x[2], x[3]
    padded_h, padded_w = height + 2 * padding[0], width + 2 * padding[1]  # type: ignore[operator]
    span_h = dilation[0] * (kernel[0] - 1) + 1
    span_w = dilation[1] * (kernel[1] - 1) + 1
    if padded_h < span_h or padded_w < span_w:
        raise ValueError(
            f"kernel {list(kernel)} (dilation {list(dilation)}) is larger than the padded input "
            f"{show_shape(x)} + padding {list(padding)}"
        )
    if not ceil_mode:
        check_elements(channels * padded_h * padded_w, "the padded input")  # type: ignore[operator]
        return (padded_h - span_h) // stride[0] + 1, (padded_w - span_w) // stride[1] + 1
    extra_h = ceil_extra(height, kernel[0], stride[0], padding[0], dilation[0])  # type: ignore[arg-type]
    extra_w = ceil_extra(width, kernel[1], stride[1], padding[1], dilation[1])  # type: ignore[arg-type]
    check_elements(channels * (padded_h + extra_h) * (padded_w + extra_w), "the padded input")  # type: ignore[operator]
    return (
        ceil_output(height, kernel[0], stride[0], padding[0], dilation[0]),  # type: ignore[arg-type]
        ceil_output(width, kernel[1], stride[1], padding[1], dilation[1]),  # type: ignore[arg-type]
    )


def ceil_output(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """torch's ceil_mode output size: a last partial window counts unless it starts in the right padding."""
    out = -(-(size + 2 * padding - dilation * (kernel - 1) - 1) // stride) + 1
    if (out - 1) * stride >= size + padding:
        out -= 1
    return out


def ceil_extra(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """How far past ``size + 2 * padding`` the last ceil_mode window reaches (0 when it fits)."""
    out = ceil_output(size, kernel, stride, padding, dilation)
    return max(0, (out - 1) * stride + dilation * (kernel - 1) + 1 - (size + 2 * padding))


def pool_padding_error(kernel: list[int], padding: list[int]) -> str | None:
    """torch's rule for pooling: padding at most half the kernel (no all-padding window)."""
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        return f"padding {padding} exceeds half the kernel {kernel}"
    return None

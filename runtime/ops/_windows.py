"""Sliding windows over NCHW tensors, shared by convolution and pooling."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def windows(
    x: np.ndarray,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    pad_value: float = 0.0,
) -> np.ndarray:
    """A read-only view [N, C, H_out, W_out, kh, kw] of the windows each output position sees."""
    if x.ndim != 4:
        raise ValueError(f"expects an NCHW input, got shape {list(x.shape)}")
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    if min(kh, kw, sh, sw, dh, dw) < 1:
        raise ValueError("kernel, stride and dilation must be positive")
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=pad_value)
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    if x.shape[2] < span_h or x.shape[3] < span_w:
        raise ValueError(
            f"kernel {kernel} (dilation {dilation}) is larger than the padded input {list(x.shape[2:])}"
        )
    view = sliding_window_view(x, (span_h, span_w), axis=(2, 3))
    return view[:, :, ::sh, ::sw, ::dh, ::dw]

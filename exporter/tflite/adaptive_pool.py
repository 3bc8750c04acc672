"""AdaptiveAvgPool2d / AdaptiveMaxPool2d to any output size with LiteRT's builtin pools.

PyTorch's window ``i`` of ``out`` over an axis of length ``size`` is
``[floor(i·size/out), ceil((i+1)·size/out))``: the windows may differ in length, overlap and,
when ``out > size`` (VGG's 7×7 from 2×2), repeat. LiteRT has no adaptive pool, and its pools
take one kernel and one stride per axis. Why this decomposition:

- **Regular axes** (every window as long as the first, starts a fixed stride apart; always the
  case when ``out`` divides ``size``) are what a pool's kernel and stride express directly.
- **Other axes** are made regular by a GATHER along that axis: window ``i`` is laid out as ``K``
  consecutive rows (``K`` the longest window), so a pool with kernel = stride = ``K`` sees
  exactly window ``i``. A shorter window is filled up with a row that does not change the
  result: its own last row again for max (a repeated element never changes a max), or for
  average a zero row appended by one PAD, with the window's sum then divided by its own length
  (a constant factor ``K / length`` per output position after the pool's ``sum / K``).

So both kinds are one pool op over the whole output (plus at most one GATHER per axis, one PAD
and one MUL for average), with rank-4 NHWC tensors only: exact for max, and for average a
sum divided by the window's element count as in PyTorch (the pool's division and the factor
round twice, within float32 rounding of PyTorch's mean). The gathered tensor holds at most
``out · K ≤ size + 2·out`` rows per axis, so the cost stays within a small multiple of reading
the input. Alternatives rejected: one SLICE + reduce per window (``out_h · out_w`` ops, 49 for
VGG), or a matmul with an averaging matrix (float summation with ``1/length`` weights, and no
max).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .builder import TensorHandle
from .context import ExportContext
from .schema import schema

__all__ = ["adaptive_pool", "adaptive_windows", "regular_windows"]


def adaptive_windows(size: int, out: int) -> list[tuple[int, int]]:
    """PyTorch's adaptive pooling windows ``[start, end)`` over an axis of length ``size``."""
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


def regular_windows(windows: Sequence[tuple[int, int]]) -> tuple[int, int] | None:
    """(kernel, stride) if a pool with them places exactly ``windows`` (from 0), else None."""
    kernel = windows[0][1] - windows[0][0]
    stride = windows[1][0] - windows[0][0] if len(windows) > 1 else 1
    if windows[0][0] != 0 or stride < 1:
        return None
    if all(start == i * stride and end - start == kernel for i, (start, end) in enumerate(windows)):
        return kernel, stride
    return None


def adaptive_pool(
    ctx: ExportContext,
    x: TensorHandle,
    size: tuple[int, int],
    out: tuple[int, int],
    kind: str,
    name: str,
) -> TensorHandle | None:
    """The adaptive ``kind`` ("avg" or "max") pool of NHWC ``x`` to ``out``; None if it is the identity."""
    windows = [adaptive_windows(size[i], out[i]) for i in (0, 1)]
    regular = [regular_windows(w) for w in windows]
    if all(r == (1, 1) for r in regular):
        return None
    kernel, stride = [1, 1], [1, 1]
    lengths: list[np.ndarray | None] = [None, None]  # window lengths of gathered axes (avg factor)
    uneven = [r is None and len({e - s for s, e in windows[i]}) > 1 for i, r in enumerate(regular)]
    if kind == "avg" and any(uneven):  # one zero row/column at the end of each uneven axis
        pads = np.array([[0, 0], [0, int(uneven[0])], [0, int(uneven[1])], [0, 0]], dtype=np.int32)
        shape = [None, x.shape[1] + uneven[0], x.shape[2] + uneven[1], x.shape[3]]
        x = ctx.op("PAD", [x, ctx.main.constant(pads)], f"{name}/pad", shape, schema.PadOptionsT())
    for i in (0, 1):
        if regular[i] is not None:
            kernel[i], stride[i] = regular[i]  # type: ignore[misc]
            continue
        longest = max(e - s for s, e in windows[i])
        if kind == "max":  # a short window repeats its last element
            rows = [min(s + k, e - 1) for s, e in windows[i] for k in range(longest)]
        else:  # a short window reads the zero row at index size (or is never short)
            rows = [s + k if s + k < e else size[i] for s, e in windows[i] for k in range(longest)]
            lengths[i] = np.array([e - s for s, e in windows[i]], dtype=np.float32)
        shape = [None, *x.shape[1:]]
        shape[i + 1] = len(rows)
        options = schema.GatherOptionsT()
        options.axis = i + 1
        indices = ctx.main.constant(np.array(rows, dtype=np.int32))
        x = ctx.op("GATHER", [x, indices], f"{name}/windows{'hw'[i]}", shape, options)
        kernel[i] = stride[i] = longest
    factor = None
    if kind == "avg":  # the pool's sum / K -> sum / length
        rows_cols = [
            np.ones(out[i], np.float32) if lengths[i] is None else np.float32(kernel[i]) / lengths[i]
            for i in (0, 1)
        ]
        outer = np.outer(*rows_cols).astype(np.float32)
        factor = outer.reshape(1, out[0], out[1], 1) if np.any(outer != 1) else None
    if kernel == [1, 1] and stride == [1, 1]:  # windows of one element each: the gathers did it all
        return x
    options = schema.Pool2DOptionsT()
    options.padding = schema.Padding.VALID
    options.strideH, options.strideW = stride
    options.filterHeight, options.filterWidth = kernel
    op = "MAX_POOL_2D" if kind == "max" else "AVERAGE_POOL_2D"
    shape = [None, out[0], out[1], x.shape[3]]
    y = ctx.op(op, [x], f"{name}/window_mean" if factor is not None else name, shape, options)
    if factor is not None:
        y = ctx.op("MUL", [y, ctx.main.constant(factor)], name, shape, schema.MulOptionsT())
    return y

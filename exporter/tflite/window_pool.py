"""Pools over windows LiteRT's pools cannot place: adaptive pools, dilated max pools.

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

A dilated MaxPool2d (MAX_POOL_2D has no dilation) is the same thing: after the -inf padding,
window ``i`` of a dilated axis reads rows ``i·stride + j·dilation``; one GATHER per dilated axis
lays them out as consecutive rows of ``kernel`` each, and MAX_POOL_2D finishes. Exact.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .builder import TensorHandle
from .context import ExportContext
from .schema import schema

__all__ = ["adaptive_pool", "adaptive_windows", "dilated_windows", "pool_windows", "regular_windows"]


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


Windows = tuple[int, int] | list[list[int]]  # per axis: (kernel, stride), or each window's rows


def pool_windows(
    ctx: ExportContext, x: TensorHandle, axes: tuple[Windows, Windows], kind: str, name: str
) -> TensorHandle:
    """A ``kind`` ("avg" or "max") pool of NHWC ``x`` over the given windows of H and W.

    An axis given as (kernel, stride) is pooled directly; one given as explicit windows (lists
    of row indices) is first gathered into windows of equal length ``K`` (see the module
    docstring). The average is each window's sum divided by its own length.
    """
    kernel, stride = [1, 1], [1, 1]
    lengths: list[np.ndarray | None] = [None, None]  # window lengths of gathered axes (avg factor)
    uneven = [isinstance(w, list) and len({len(rows) for rows in w}) > 1 for w in axes]
    if kind == "avg" and any(uneven):  # one zero row/column at the end of each uneven axis
        pads = np.array([[0, 0], [0, int(uneven[0])], [0, int(uneven[1])], [0, 0]], dtype=np.int32)
        shape = [None, x.shape[1] + uneven[0], x.shape[2] + uneven[1], x.shape[3]]
        x = ctx.op("PAD", [x, ctx.main.constant(pads)], f"{name}/pad", shape, schema.PadOptionsT())
    out = [0, 0]
    for i, windows in enumerate(axes):
        if not isinstance(windows, list):
            kernel[i], stride[i] = windows
            out[i] = (x.shape[i + 1] - kernel[i]) // stride[i] + 1
            continue
        longest = max(len(rows) for rows in windows)
        if kind == "max":  # a short window repeats its last row
            flat = [rows[min(k, len(rows) - 1)] for rows in windows for k in range(longest)]
        else:  # a short window reads the zero row appended at the end
            flat = [
                rows[k] if k < len(rows) else x.shape[i + 1] - 1 for rows in windows for k in range(longest)
            ]
            lengths[i] = np.array([len(rows) for rows in windows], dtype=np.float32)
        shape = [None, *x.shape[1:]]
        shape[i + 1] = len(flat)
        options = schema.GatherOptionsT()
        options.axis = i + 1
        indices = ctx.main.constant(np.array(flat, dtype=np.int32))
        x = ctx.op("GATHER", [x, indices], f"{name}/windows{'hw'[i]}", shape, options)
        kernel[i] = stride[i] = longest
        out[i] = len(windows)
    factor = None
    if kind == "avg":  # the pool's sum / K -> sum / length
        rows_cols = [
            np.ones(out[i], np.float32) if lengths[i] is None else np.float32(kernel[i]) / lengths[i]  # type: ignore[operator]
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
    axes = tuple(
        regular[i] if regular[i] is not None else [list(range(s, e)) for s, e in windows[i]] for i in (0, 1)
    )
    return pool_windows(ctx, x, axes, kind, name)  # type: ignore[arg-type]


def dilated_windows(out: int, kernel: int, stride: int, dilation: int) -> list[list[int]]:
    """The rows each window of a dilated pool reads, in the (already padded) input."""
    return [[i * stride + j * dilation for j in range(kernel)] for i in range(out)]

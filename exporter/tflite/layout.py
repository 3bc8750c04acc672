"""Layouts: PyTorch's NCHW activations and OIHW weights versus LiteRT's NHWC / OHWI / 1HWO.

Why a module of its own: the .hpk graph means what PyTorch means (docs/FORMAT.md §5), while
LiteRT's CONV_2D, DEPTHWISE_CONV_2D and the pooling ops only take NHWC activations and filters
in their own axis order. Everything that maps one onto the other lives here:

- activation layouts: a tensor holding value ``x`` in layout ``p`` is ``x.permute(p)``.
  ``TORCH`` is the .hpk's own order, ``NHWC`` LiteRT's for rank-4 tensors; other permutations
  arise from Transpose (which then costs no op) and from reshapes done in a permuted layout
  (channel shuffle), see :func:`reshape_groups`;
- :class:`WeightView`, which says in which order a kernel wants the elements of a virtual weight.
  A hashed weight is generated *directly* in that order by hashing permuted flat indices (the
  hash of element ``i`` is a function of ``i`` alone), so no TRANSPOSE of a decompressed weight is
  ever needed and every element stays bit-identical to the numpy runtime's;
- padding: when TFLite's ``SAME`` places the same windows as PyTorch's symmetric padding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "NCHW_TO_NHWC",
    "NHWC",
    "NHWC_TO_NCHW",
    "TORCH",
    "WeightView",
    "conv_output_size",
    "layout_perm",
    "nhwc_axis",
    "perm_layout",
    "pool_output_size",
    "reshape_groups",
    "same_padding_matches",
]

TORCH = "torch"  # the .hpk's own layout (NCHW for rank 4)
NHWC = "nhwc"  # LiteRT's layout of rank-4 activations
NCHW_TO_NHWC = (0, 2, 3, 1)
NHWC_TO_NCHW = (0, 3, 1, 2)

# Index terms bigger than this are split back into one term per axis (keeps constants tiny).
_MAX_TERM = 4096


def layout_perm(layout: str, rank: int) -> tuple[int, ...]:
    """The permutation ``p`` of a layout: its tensor is ``x.permute(p)`` for PyTorch value ``x``."""
    if layout == TORCH:
        return tuple(range(rank))
    if layout == NHWC:
        return NCHW_TO_NHWC
    return tuple(int(a) for a in layout.removeprefix("perm:").split(","))


def perm_layout(perm: Sequence[int]) -> str:
    """The layout name of permutation ``perm`` (``TORCH``, ``NHWC`` or ``perm:0,3,1,2``)."""
    perm = tuple(perm)
    if perm == tuple(range(len(perm))):
        return TORCH
    if perm == NCHW_TO_NHWC:
        return NHWC
    return "perm:" + ",".join(map(str, perm))


def reshape_groups(source: Sequence[int], target: Sequence[int]) -> list[tuple[list[int], list[int]]]:
    """How a reshape from ``source`` to ``target`` (batch excluded) splits and merges axes.

    Returns the smallest groups ``(source axes, target axes)`` with equal element counts, axes
    numbered from 1 (0 is the batch). A reshape can be applied to a *permuted* tensor, without
    a TRANSPOSE, when each group's source axes are adjacent and in order in its layout; the
    result is then held in the layout that has each group's target axes in their place.
    """
    groups: list[tuple[list[int], list[int]]] = []
    i = j = 0
    while i < len(source) and j < len(target):
        ga, gb, pa, pb = [i + 1], [j + 1], source[i], target[j]
        i, j = i + 1, j + 1
        while pa != pb:
            if pa < pb:
                ga.append(i + 1)
                pa, i = pa * source[i], i + 1
            else:
                gb.append(j + 1)
                pb, j = pb * target[j], j + 1
        groups.append((ga, gb))
    if i < len(source) or j < len(target):  # trailing axes of size 1
        if not groups:
            groups.append(([], []))
        groups[-1][0].extend(range(i + 1, len(source) + 1))
        groups[-1][1].extend(range(j + 1, len(target) + 1))
    return groups


def nhwc_axis(axis: int) -> int:
    """The NHWC axis holding NCHW axis ``axis`` (0..3)."""
    return NCHW_TO_NHWC.index(axis)


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """PyTorch's output length of a convolution/pooling window (ceil_mode=False)."""
    span = dilation * (kernel - 1) + 1
    return (size + 2 * padding - span) // stride + 1


def pool_output_size(
    size: int, kernel: int, stride: int, padding: int, dilation: int = 1, ceil_mode: bool = False
) -> int:
    """PyTorch's output length of a pooling window, with its ``ceil_mode`` rule.

    ceil_mode rounds the window count up, then drops the last window if it would start at or
    past ``size + padding`` (in the padded input), so every window holds an input element.
    """
    if not ceil_mode:
        return conv_output_size(size, kernel, stride, padding, dilation)
    span = dilation * (kernel - 1) + 1
    out = -(-(size + 2 * padding - span) // stride) + 1
    if (out - 1) * stride >= size + padding:
        out -= 1
    return out


def same_padding_matches(
    size: int, kernel: int, stride: int, padding: int, dilation: int = 1, out: int | None = None
) -> bool:
    """True if TFLite ``SAME`` puts its windows where PyTorch's symmetric ``padding`` does.

    TFLite pads ``total // 2`` before and the rest after; the windows coincide when the output
    lengths agree (``out``, default the convolution's) and the leading padding equals PyTorch's
    (trailing padding a window never reaches does not matter). Then SAME is exact for
    convolution (zero padding), max pooling (padding never wins) and average pooling with
    ``count_include_pad=False`` (padding not counted; also for ceil_mode's extra trailing
    windows, which PyTorch divides by their in-bounds count as well), and saves an explicit PAD.
    """
    out_same = -(-size // stride)
    span = dilation * (kernel - 1) + 1
    total = max((out_same - 1) * stride + span - size, 0)
    if out is None:
        out = conv_output_size(size, kernel, stride, padding, dilation)
    return out_same == out and total // 2 == padding


@dataclass(frozen=True)
class WeightView:
    """The elements of a virtual weight a LiteRT kernel consumes, in the order it wants them.

    ``perm[k]`` is the PyTorch axis that becomes axis ``k`` (``None``: PyTorch order); ``rows``
    keeps only ``[start, stop)`` of PyTorch axis 0 (one group of a grouped convolution).
    ``apply`` is the numpy meaning; ``index_terms`` builds the same thing as flat indices.
    """

    perm: tuple[int, ...] | None = None
    rows: tuple[int, int] | None = None

    def _perm(self, rank: int) -> tuple[int, ...]:
        return tuple(range(rank)) if self.perm is None else self.perm

    def _ranges(self, shape: Sequence[int]) -> list[range]:
        ranges = [range(d) for d in shape]
        if self.rows is not None:
            ranges[0] = range(*self.rows)
        return ranges

    def shape(self, torch_shape: Sequence[int]) -> tuple[int, ...]:
        """Shape of the viewed weight."""
        ranges = self._ranges(torch_shape)
        return tuple(len(ranges[a]) for a in self._perm(len(torch_shape)))

    def is_identity(self, torch_shape: Sequence[int]) -> bool:
        """True if the view is the whole weight in PyTorch order (flat index = position)."""
        full = self.rows is None or tuple(self.rows) == (0, torch_shape[0])
        return full and self._perm(len(torch_shape)) == tuple(range(len(torch_shape)))

    @property
    def tag(self) -> str:
        """A short suffix naming the view (for variable and tensor names); empty for the identity."""
        parts = []
        if self.perm is not None:
            parts.append("p" + "".join(map(str, self.perm)))
        if self.rows is not None:
            parts.append(f"r{self.rows[0]}-{self.rows[1]}")
        return "@" + ".".join(parts) if parts else ""

    def apply(self, array: np.ndarray) -> np.ndarray:
        """The numpy reference: slice, then transpose (a contiguous copy)."""
        if self.rows is not None:
            array = array[self.rows[0] : self.rows[1]]
        return np.ascontiguousarray(np.transpose(array, self._perm(array.ndim)))

    def index_terms(
        self, torch_shape: Sequence[int], strides: Sequence[int] | None = None
    ) -> list[np.ndarray]:
        """int32 arrays whose broadcast sum is ``sum_a pos_a · strides[a]`` for every viewed element.

        With the default row-major strides that is the PyTorch flat index. Output axes that are
        consecutive PyTorch axes are merged into one term (OHWI needs three terms, not four); the
        broadcast sum has shape ``[len(term) for term in terms]`` and is reshaped to
        :meth:`shape` by the caller. The sum must stay below 2**31 (true for flat indices).
        """
        shape = tuple(int(d) for d in torch_shape)
        if strides is None:
            strides = [math.prod(shape[a + 1 :]) for a in range(len(shape))]
        ranges = self._ranges(shape)
        perm = self._perm(len(shape))
        groups: list[list[int]] = []
        for axis in perm:
            if groups and groups[-1][-1] + 1 == axis:
                groups[-1].append(axis)
            else:
                groups.append([axis])
        flat: list[np.ndarray] = []
        for group in groups:
            parts = [np.asarray(ranges[a], dtype=np.int64) * strides[a] for a in group]
            merged = parts[0]
            for part in parts[1:]:
                merged = (merged[:, None] + part[None, :]).reshape(-1)
            if merged.size > _MAX_TERM and len(parts) > 1:
                flat.extend(parts)
            else:
                flat.append(merged)
        # The sum of the terms' maxima is the largest index: a flat index (< numel <= 2**31 - 1),
        # or for fsnet a position the reader checked to fit int32.
        rank = len(flat)
        return [
            t.astype(np.int32).reshape([-1 if k == j else 1 for k in range(rank)]) for j, t in enumerate(flat)
        ]

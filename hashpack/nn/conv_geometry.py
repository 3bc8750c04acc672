"""The Conv2d hyper-parameters that every compressed convolution shares.

HashedConv2d, FreshConv2d, FunHashConv2d and FSConv2d differ only in where their weight comes
from; stride, padding, dilation and groups mean exactly what they mean for ``nn.Conv2d``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvGeometry:
    """Mixin for an ``nn.Module``: stores and checks the geometry, runs the convolution."""

    in_channels: int
    out_channels: int
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int

    def _init_geometry(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int],
        padding: int | tuple[int, int],
        dilation: int | tuple[int, int],
        groups: int,
    ) -> tuple[int, int, int, int]:
        """Set the attributes nn.Conv2d has; return the weight shape [out, in/groups, kh, kw]."""
        pair = nn.modules.utils._pair
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = pair(kernel_size), pair(stride)
        self.padding, self.dilation, self.groups = pair(padding), pair(dilation), groups
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"groups={groups} must divide in_channels={in_channels} and out_channels={out_channels}"
            )
        return (out_channels, in_channels // groups, *self.kernel_size)

    @property
    def fan_in(self) -> int:
        return (self.in_channels // self.groups) * self.kernel_size[0] * self.kernel_size[1]

    def _conv(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation, self.groups)

    def _geometry_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}, groups={self.groups}"
        )


def numeric_padding(layer: nn.Conv2d) -> tuple[int, int] | None:
    """``padding="valid"``/``"same"`` as the symmetric numeric padding that computes the same output,
    or None when there is none (an odd total padding: torch pads one side more)."""
    pair = nn.modules.utils._pair
    if not isinstance(layer.padding, str):
        return pair(layer.padding)
    if layer.padding == "valid":
        return (0, 0)
    totals = [d * (k - 1) for d, k in zip(pair(layer.dilation), pair(layer.kernel_size), strict=True)]
    if any(total % 2 for total in totals):
        return None
    return (totals[0] // 2, totals[1] // 2)

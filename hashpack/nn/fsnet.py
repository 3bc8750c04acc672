"""FSNet ("Compression of Deep Convolutional Neural Networks by Filter Summary", Yang et al.).

Each layer keeps one 1-D filter summary (FS) of length L. Filter o (all C_in·k·k values of output
channel o, flattened row-major) is the circular segment of the FS starting at ``o·stride``, with
``stride = max(1, L // C_out)``: the filters are spread evenly over the summary and neighbouring
filters overlap by D - stride values (D = filter length), sharing those weights. The layer has the
same filters and the same forward computation as the dense conv. Compression = L / (C_out·D).

The paper summarizes convolution filters; ``compress(..., method="fsnet")`` therefore compresses
Linear layers with HashedNets by default. ``fc="fs"`` gives each Linear an FS of its own instead (a
Linear is a 1×1 conv: row o is filter o), an extension the paper does not describe.
Biases are kept dense (C_out values, not part of the ratio, as the paper counts filters).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from hashpack.runtime.hpk import Param
from hashpack.runtime.schemes.fsnet import filter_positions

from .conv_geometry import ConvGeometry
from .entries import CompressedLayer, HpkEntries
from .layers import budget as values_for


def default_stride(summary_length: int, filters: int) -> int:
    """Filters start every L // C_out values (at least 1), so they tile the summary evenly."""
    return max(1, summary_length // filters)


class FSModule(CompressedLayer):
    """Shared machinery: the summary (``space``), the stride, the dense bias and the position buffer."""

    def _init_summary(
        self,
        weight_shape: tuple[int, ...],
        bias: bool,
        fan_in: int,
        compression: float | None,
        summary_length: int | None,
        stride: int | None,
    ) -> None:
        self.weight_shape = tuple(weight_shape)
        filters = weight_shape[0]
        self.filter_length = math.prod(weight_shape) // filters
        if (compression is None) == (summary_length is None):
            raise ValueError("give exactly one of compression= or summary_length=")
        if summary_length is None:
            summary_length = values_for(math.prod(weight_shape), compression)  # type: ignore[arg-type]
        self.summary_length = int(summary_length)
        self.filter_stride = default_stride(self.summary_length, filters) if stride is None else int(stride)
        if not 1 <= self.filter_stride <= self.summary_length:
            raise ValueError(f"stride {self.filter_stride} must be in [1, L = {self.summary_length}]")
        self.space = nn.Parameter(torch.empty(self.summary_length))
        self.bias = nn.Parameter(torch.empty(filters)) if bias else None
        positions = filter_positions(filters, self.filter_length, self.filter_stride, self.summary_length)
        self.register_buffer("_index", torch.from_numpy(positions.reshape(-1)), persistent=False)
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        nn.init.uniform_(self.space, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def filters(self) -> torch.Tensor:
        """The virtual weight: filter o = summary[(o·stride + j) mod L] (differentiable)."""
        return self.space.index_select(0, self._index).view(self.weight_shape)

    def filter(self, index: int) -> torch.Tensor:
        """Filter ``index`` (flat, length D) read straight from the summary."""
        start = index * self.filter_stride
        positions = torch.arange(start, start + self.filter_length) % self.summary_length
        return self.space[positions]

    @torch.no_grad()
    def init_from_dense(self, dense: dict[str, torch.Tensor]) -> None:
        """Each summary value := mean of the dense weights at the filter positions that map to it; the
        bias is copied."""
        values = dense["weight"].reshape(-1).float()
        total = torch.zeros(self.summary_length).index_add_(0, self._index, values)
        count = torch.zeros(self.summary_length).index_add_(0, self._index, torch.ones_like(values))
        filled = count > 0
        self.space[filled] = total[filled] / count[filled]
        if self.bias is not None and dense.get("bias") is not None:
            self.bias.copy_(dense["bias"])

    def hpk_entries(self, path: str) -> HpkEntries:
        entries = HpkEntries()
        space = entries.add_space(path, self.space)
        spec = {"space": space, "stride": self.filter_stride}
        entries.params["weight"] = Param(f"{path}.weight", "fsnet", self.weight_shape, spec)
        if self.bias is not None:
            entries.params["bias"] = entries.add_dense(f"{path}.bias", self.bias)
        return entries

    @property
    def budget(self) -> int:
        """Stored values: the summary plus the dense bias."""
        return self.summary_length + (self.weight_shape[0] if self.bias is not None else 0)

    def _describe(self) -> str:
        return f"L={self.summary_length}, stride={self.filter_stride}, filter_length={self.filter_length}"


class FSLinear(FSModule):
    """A Linear layer whose rows are overlapping segments of one filter summary."""

    hpk_op = "Linear"

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        compression: float | None = None,
        summary_length: int | None = None,
        filter_stride: int | None = None,
    ) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        shape = (out_features, in_features)
        self._init_summary(shape, bias, in_features, compression, summary_length, filter_stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.filters(), self.bias)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, {self._describe()}"


class FSConv2d(ConvGeometry, FSModule):
    """A Conv2d whose filters are overlapping segments of one filter summary."""

    hpk_op = "Conv2d"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        *,
        compression: float | None = None,
        summary_length: int | None = None,
        filter_stride: int | None = None,
    ) -> None:
        super().__init__()
        shape = self._init_geometry(in_channels, out_channels, kernel_size, stride, padding, dilation, groups)
        self._init_summary(shape, bias, self.fan_in, compression, summary_length, filter_stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv(x, self.filters(), self.bias)

    def extra_repr(self) -> str:
        return f"{self._geometry_repr()}, {self._describe()}"

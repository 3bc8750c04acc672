"""FreshNets (Chen et al., "Compressing Convolutional Neural Networks in the Frequency Domain").

Each k×k filter is represented by its orthonormal 2-D DCT-II coefficients. The coefficients are
hashed (with sign) into bucket pools, one pool per frequency band ``b = min(u + v, nb - 1)``, and
the filter is recovered by the inverse DCT (a matmul with a constant basis). Frequency-sensitive
allocation gives higher bands fewer buckets per coefficient, under one total budget; a band may get
none (its coefficients are 0: the filter is low-passed). ``allocation="uniform"`` is one band
covering every coefficient: HashedNets in the DCT domain. FC layers of a FreshNet are
HashedNets layers (``HashedLinear``), as in the paper.

The bands share one space (concatenated, band 0 first), so a layer has one int8 scale.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from hashpack.runtime.hashing import MASK32, SIGN_BIT, derive_seed
from hashpack.runtime.hpk import Param
from hashpack.runtime.schemes.fresh import MAX_KERNEL, band_counts, band_table, idct_basis

from .conv_geometry import ConvGeometry
from .entries import CompressedLayer, HpkEntries
from .hashing import hash_indices
from .layers import _random_seed, signed_gather
from .layers import budget as values_for

ALLOCATIONS = ("beta", "uniform")


def band_weights(num_bands: int, alpha: float, beta: float) -> list[float]:
    """Relative bucket rate (buckets per coefficient) of each band: the Beta(alpha, beta) density
    at the band's centre t = (b + 0.5) / nb, up to a constant. alpha = 1, beta > 1 decreases
    with frequency; alpha = beta = 1 is the same rate for every band."""
    if alpha <= 0 or beta <= 0:
        raise ValueError(f"alpha and beta must be positive, got {alpha}, {beta}")
    t = (np.arange(num_bands) + 0.5) / num_bands
    return list(t ** (alpha - 1.0) * (1.0 - t) ** (beta - 1.0))


def allocate(counts: list[int], total: int, weights: list[float]) -> list[int]:
    """Integer bucket counts K_b summing to ``total``: rate K_b / n_b proportional to weights[b],
    capped at 1 (never more buckets than coefficients), rounded by largest remainder."""
    if not 1 <= total <= sum(counts):
        raise ValueError(f"budget {total} outside [1, {sum(counts)} coefficients]")
    capped: set[int] = set()
    while True:
        free = [b for b in range(len(counts)) if b not in capped and counts[b] > 0]
        remaining = total - sum(counts[b] for b in capped)
        mass = sum(counts[b] * weights[b] for b in free)
        scale = remaining / mass if mass > 0 else 0.0
        newly = {b for b in free if scale * weights[b] >= 1.0}
        if not newly:
            break
        capped |= newly
    exact = [float(counts[b]) if b in capped else counts[b] * weights[b] * scale for b in range(len(counts))]
    sizes = [min(counts[b], math.floor(x)) for b, x in enumerate(exact)]
    order = sorted(range(len(counts)), key=lambda b: (-(exact[b] - sizes[b]), b))
    short = total - sum(sizes)
    for b in order + order:  # second pass: bands with weight 0 but room left
        if short == 0:
            break
        if sizes[b] < counts[b]:
            sizes[b] += 1
            short -= 1
    return sizes


class FreshConv2d(ConvGeometry, CompressedLayer):
    """A Conv2d whose filters are inverse DCTs of coefficients hashed into per-band bucket pools.

    compression: stored bucket values / weight values (the bias, if any, is kept dense and is not
    part of that ratio). bands: number of frequency bands (default and maximum kh + kw - 1, one
    per u + v; the last band collects all higher frequencies).
    allocation: "beta" (frequency-sensitive, rate ∝ Beta(alpha, beta) density) or "uniform" (one
    band: HashedNets on the DCT coefficients). band_buckets: explicit K_b per band instead.
    """

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
        band_buckets: list[int] | None = None,
        bands: int | None = None,
        allocation: str = "beta",
        alpha: float = 1.0,
        beta: float = 2.0,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.weight_shape = self._init_geometry(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups
        )
        kh, kw = self.kernel_size
        if max(kh, kw) > MAX_KERNEL:
            raise ValueError(f"FreshNets supports kernels up to {MAX_KERNEL}×{MAX_KERNEL}, got {kh}×{kw}")
        self.band_buckets = self._allocate(compression, band_buckets, bands, allocation, alpha, beta)
        self.num_buckets = sum(self.band_buckets)
        self.layer_seed = (_random_seed() if seed is None else seed) & MASK32
        self.space = nn.Parameter(torch.empty(self.num_buckets))
        self.register_buffer(
            "seeds", torch.tensor([derive_seed(self.layer_seed, "weight")], dtype=torch.int64)
        )
        self.register_buffer("_basis", torch.from_numpy(idct_basis(kh, kw)), persistent=False)
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self._build_index()
        bound = 1.0 / math.sqrt(self.fan_in)
        # Orthonormal DCT: coefficients of uniform(-bound, bound) pixels have the same variance.
        nn.init.uniform_(self.space, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def _allocate(
        self,
        compression: float | None,
        band_buckets: list[int] | None,
        bands: int | None,
        allocation: str,
        alpha: float,
        beta: float,
    ) -> list[int]:
        kh, kw = self.kernel_size
        if (compression is None) == (band_buckets is None):
            raise ValueError("give exactly one of compression= or band_buckets=")
        if band_buckets is not None:
            sizes = [int(k) for k in band_buckets]
            if not 1 <= len(sizes) <= kh + kw - 1 or min(sizes) < 0 or sum(sizes) < 1:
                raise ValueError(f"band_buckets {sizes} must list 1 to {kh + kw - 1} counts ≥ 0, not all 0")
            return sizes
        if allocation not in ALLOCATIONS:
            raise ValueError(f"unknown allocation {allocation!r} (known: {', '.join(ALLOCATIONS)})")
        if allocation == "uniform":
            if bands not in (None, 1):
                raise ValueError(f"allocation='uniform' is one band: bands={bands} cannot apply")
            num_bands = 1
        else:
            if bands is not None and bands < 1:
                raise ValueError(f"bands={bands} must be ≥ 1")
            # At most one band per u + v: a model-wide bands=3 leaves a 1×1 conv with one band.
            num_bands = kh + kw - 1 if bands is None else min(bands, kh + kw - 1)
        counts = band_counts(self.weight_shape, num_bands)
        total = values_for(sum(counts), compression)  # type: ignore[arg-type]
        return allocate(counts, total, band_weights(num_bands, alpha, beta))

    def _build_index(self) -> None:
        """Bucket (global index into the concatenated space) and sign of every coefficient; sign 0
        for coefficients of a band without buckets."""
        kh, kw = self.kernel_size
        numel = math.prod(self.weight_shape)
        taps = kh * kw
        sizes = torch.tensor(self.band_buckets, dtype=torch.int64)
        offsets = torch.cumsum(sizes, 0) - sizes
        table = torch.from_numpy(band_table(kh, kw, len(self.band_buckets))).repeat(numel // taps)
        h = hash_indices(torch.arange(numel, dtype=torch.int64), int(self.seeds[0]))
        sign = 1.0 - 2.0 * ((h & SIGN_BIT) >> 31).to(torch.float32)
        band_size = sizes[table]
        index = offsets[table] + h % band_size.clamp(min=1)
        live = band_size > 0
        self.register_buffer("_index", torch.where(live, index, 0), persistent=False)
        self.register_buffer("_sign", torch.where(live, sign, 0.0), persistent=False)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._build_index()  # the seed may have changed

    def coefficients(self) -> torch.Tensor:
        """The virtual DCT coefficients [O, I, kh, kw] (differentiable)."""
        return signed_gather(self.space, self._index, self._sign).view(self.weight_shape)

    def filters(self) -> torch.Tensor:
        """The virtual weight [O, I, kh, kw]: inverse DCT of each filter's coefficients."""
        out, group_in, kh, kw = self.weight_shape
        flat = self.coefficients().reshape(out * group_in, kh * kw)
        return (flat @ self._basis).view(self.weight_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv(x, self.filters(), self.bias)

    @torch.no_grad()
    def init_from_dense(self, dense: dict[str, torch.Tensor]) -> None:
        """Each bucket := mean of the signed DCT coefficients of the dense filters hashed to it (empty
        buckets keep their value); the bias is copied."""
        out, group_in, kh, kw = self.weight_shape
        pixels = dense["weight"].reshape(out * group_in, kh * kw).float()
        coeffs = (pixels @ self._basis.T).reshape(-1)
        live = self._sign != 0
        total = torch.zeros(self.num_buckets).index_add_(0, self._index[live], (coeffs * self._sign)[live])
        count = torch.zeros(self.num_buckets).index_add_(0, self._index[live], torch.ones(int(live.sum())))
        filled = count > 0
        self.space[filled] = total[filled] / count[filled]
        if self.bias is not None and dense.get("bias") is not None:
            self.bias.copy_(dense["bias"])

    def hpk_entries(self, path: str) -> HpkEntries:
        entries = HpkEntries()
        space = entries.add_space(path, self.space)
        spec = {"space": space, "seed": int(self.seeds[0]), "bands": list(self.band_buckets)}
        entries.params["weight"] = Param(f"{path}.weight", "fresh", self.weight_shape, spec)
        if self.bias is not None:
            entries.params["bias"] = entries.add_dense(f"{path}.bias", self.bias)
        return entries

    @property
    def budget(self) -> int:
        """Stored values this layer promises: the buckets, plus the dense bias."""
        return self.num_buckets + (self.out_channels if self.bias is not None else 0)

    def extra_repr(self) -> str:
        return f"{self._geometry_repr()}, bands={self.band_buckets}, seed={self.layer_seed}"

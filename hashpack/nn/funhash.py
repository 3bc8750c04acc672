"""FunHashNN (Shi, Feng, Zhu, "Functional Hashing for Compressing Neural Networks").

Each virtual weight is ``g(z)``: z holds D = U·hops signed values fetched from the layer's
compression space(s) by U independent hp32 hash functions (f = 0..U-1), and g is a small per-layer
MLP (D → H → 1, ReLU), trained jointly. HashedNets is the degenerate case U = 1, g = identity
(``hidden=0``). Options from the paper's extensions, as we define them (docs/METHODS.md):

- dual-space hashing (``dual_space=True``): two spaces; fetch u reads space u mod 2, so the U
  values of one weight come from two disjoint pools (U ≥ 2).
- multi-hop (``hops=2``): for each u a second fetch at bucket h'_u(b_u) (hp32, f = U + u) keyed by
  the first bucket b_u, with sign s_u·s'_u; it gives g D = 2U inputs for the price of hashing K
  bucket indices, not N weights.

Budget: the buckets *and g* fit in round(compression × (weight + bias)) values; g gets at most half
of it (H is reduced for small layers, down to 1; a layer too small for any g is HashedNets).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from hashpack.runtime.hashing import MASK32, derive_seed
from hashpack.runtime.hpk import Param
from hashpack.runtime.schemes.funhash import MAX_HASHES, MAX_HIDDEN, g_size, split_g

from .conv_geometry import ConvGeometry
from .entries import CompressedLayer, HpkEntries
from .hashing import bucket_and_sign
from .layers import _random_seed, signed_gather
from .layers import budget as values_for

G_STEP = 0.1  # g is trained in units of 0.1 (its biases in units of 0.1·σ): see FunHashModule.g_values


def plan_sizes(
    virtual: int, compression: float, hashes: int, hops: int, hidden: int, spaces: int
) -> tuple[int, int] | None:
    """(H, K): g's hidden width and the total bucket count for a layer of ``virtual`` weights, or
    None when even a 1-unit g does not fit (the layer then degenerates to HashedNets).

    B = round(compression × virtual). H = the largest width ≤ ``hidden`` whose g uses at most B/2
    values, at least 1; K = B - |g|, at least one bucket per space."""
    total = values_for(virtual, compression)
    inputs = hashes * hops
    if hidden == 0:
        return 0, max(spaces, total)
    if total < g_size(inputs, 1) + spaces:
        return None
    width = max(1, min(hidden, (total // 2 - 1) // (inputs + 2)))
    return width, total - g_size(inputs, width)


class FunHashModule(CompressedLayer):
    """Shared machinery: bucket spaces, g, and the fetch index buffers of every virtual tensor."""

    space: nn.Parameter

    def _init_funhash(
        self,
        shapes: dict[str, tuple[int, ...]],
        fan_in: int,
        *,
        compression: float | None,
        num_buckets: int | None,
        hashes: int,
        hidden: int,
        hops: int,
        dual_space: bool,
        seed: int | None,
    ) -> None:
        if not 1 <= hashes <= MAX_HASHES:
            raise ValueError(f"hashes={hashes} must be in [1, {MAX_HASHES}]")
        if hops not in (1, 2):
            raise ValueError(f"hops={hops} must be 1 or 2")
        if not 0 <= hidden <= MAX_HIDDEN:
            raise ValueError(f"hidden={hidden} must be in [0, {MAX_HIDDEN}]")
        if hidden == 0 and hashes * hops != 1:
            raise ValueError("hidden=0 (g = identity) needs hashes=1 and hops=1")
        if dual_space and hashes < 2:
            raise ValueError("dual_space needs hashes ≥ 2 (fetch u reads space u mod 2)")
        if (compression is None) == (num_buckets is None):
            raise ValueError("give exactly one of compression= or num_buckets=")
        virtual = sum(math.prod(s) for s in shapes.values())
        if num_buckets is None:
            plan = plan_sizes(virtual, compression, hashes, hops, hidden, 2 if dual_space else 1)  # type: ignore[arg-type]
            if plan is None:  # too small for any g: HashedNets (U = 1, g = identity)
                hashes, hops, dual_space = 1, 1, False
                plan = (0, values_for(virtual, compression))  # type: ignore[arg-type]
            hidden, total = plan
        else:
            total = num_buckets
        num_spaces = 2 if dual_space else 1
        self.hashes, self.hops, self.inputs, self.hidden = hashes, hops, hashes * hops, hidden
        self.virtual_shapes = dict(shapes)
        if total < num_spaces:
            raise ValueError(f"{total} bucket(s) cannot fill {num_spaces} spaces")
        first = math.ceil(total / num_spaces)
        self.space_sizes = [first, total - first] if dual_space else [total]
        self.hpk_bucket_names = ("space", "space2")[:num_spaces]
        self.layer_seed = (_random_seed() if seed is None else seed) & MASK32
        self.space = nn.Parameter(torch.empty(self.space_sizes[0]))
        if dual_space:
            self.space2 = nn.Parameter(torch.empty(self.space_sizes[1]))
        self.g = nn.Parameter(torch.empty(g_size(self.inputs, self.hidden))) if self.hidden else None
        seeds = [derive_seed(self.layer_seed, name) for name in shapes]
        self.register_buffer("seeds", torch.tensor(seeds, dtype=torch.int64))
        self._build_index()
        self._init_values(fan_in)

    @property
    def num_buckets(self) -> int:
        return sum(self.space_sizes)

    @property
    def budget(self) -> int:
        """Stored values of this layer: buckets plus g."""
        return self.num_buckets + g_size(self.inputs, self.hidden)

    def _spaces(self) -> list[torch.Tensor]:
        return [getattr(self, name) for name in self.hpk_bucket_names]

    def _build_index(self) -> None:
        """Per fetch j (0..D-1): bucket index and sign of every virtual element (all tensors
        concatenated), in the order of docs/FORMAT.md: hop-1 fetches u, then hop-2 fetches u."""
        per_fetch_index: list[list[torch.Tensor]] = [[] for _ in range(self.inputs)]
        per_fetch_sign: list[list[torch.Tensor]] = [[] for _ in range(self.inputs)]
        for seed, shape in zip(self.seeds.tolist(), self.virtual_shapes.values(), strict=True):
            numel = math.prod(shape)
            for u in range(self.hashes):
                size = self.space_sizes[u % len(self.space_sizes)]
                index, sign = bucket_and_sign(numel, seed, size, function=u)
                per_fetch_index[u].append(index)
                per_fetch_sign[u].append(sign)
                if self.hops == 2:
                    table, table_sign = bucket_and_sign(size, seed, size, function=self.hashes + u)
                    per_fetch_index[self.hashes + u].append(table[index])
                    per_fetch_sign[self.hashes + u].append(sign * table_sign[index])
        self.register_buffer("_index", torch.stack([torch.cat(i) for i in per_fetch_index]), persistent=False)
        self.register_buffer("_sign", torch.stack([torch.cat(s) for s in per_fetch_sign]), persistent=False)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._build_index()  # seeds may have changed

    def _g_parts(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(W1 [H, D], b1, w2, b2) of the effective g, split from ``g_values()``."""
        return split_g(self.g_values(), self.inputs, self.hidden)

    def g_values(self) -> torch.Tensor:
        """g as the forward pass uses it and the file stores it: ``self.g * self.g_unit``.

        The trainable ``g`` is a rescaled copy: g is shared by every weight of the layer, so an
        Adam step of ~lr on it moves all weights at once. Training g in units of ``G_STEP`` (and its
        biases additionally in units of the bucket scale σ) keeps its steps proportionate to the
        buckets'. The products are exactly the float32 values used by torch and stored in the file.
        """
        return self.g * self.g_unit

    @torch.no_grad()
    def _init_values(self, fan_in: int) -> None:
        """Buckets ~ U(±σ), σ = 1/sqrt(fan_in); g starts as a linear map c·Σ m_u z_u built from ReLU
        pairs (relu(z) - relu(-z) = z), plus small noise, so training starts from a
        variance-preserving sum of hashed values rather than from a random function."""
        sigma = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 1.0
        for space in self._spaces():
            nn.init.uniform_(space, -sigma, sigma)
        self._linear_gain = 1.0
        if self.g is None:
            self.register_buffer("g_unit", torch.ones(0))
            return
        d, h = self.inputs, self.hidden
        w1, b1, w2, b2 = torch.zeros(h, d), torch.zeros(h), torch.zeros(h), torch.zeros(1)
        # Units 2p and 2p+1 read +z_u and -z_u (u = p mod D); with output weights +c and -c the pair
        # contributes c·z_u. An odd last unit reads z_u + 4σ, which stays positive while |z| < 4σ, and
        # b2 cancels the shift: again c·z_u. So g(z) = c·Σ m_u z_u exactly (m_u units per input).
        uses = [0] * d
        for j in range(h):
            u = (j // 2) % d
            if j % 2 == 0 and j + 1 == h:
                w1[j, u], b1[j] = 1.0, 4.0 * sigma
                uses[u] += 1
            else:
                w1[j, u] = 1.0 if j % 2 == 0 else -1.0
                uses[u] += j % 2
        c = 1.0 / math.sqrt(sum(m * m for m in uses))
        for j in range(h):
            w2[j] = -c if j % 2 else c
        b2 -= float((w2 * b1).sum())
        w1.add_(torch.empty_like(w1).uniform_(-0.05, 0.05))
        self._linear_gain = c * sum(uses)
        effective = torch.cat([w1.reshape(-1), b1, w2, b2])
        unit = torch.full_like(effective, G_STEP)
        unit[d * h : d * h + h] *= sigma
        unit[-1] *= sigma
        self.register_buffer("g_unit", unit)
        self.g.copy_(effective / unit)

    def virtual_tensors(self) -> dict[str, torch.Tensor]:
        """Every virtual tensor, regenerated from the spaces and g (differentiable)."""
        spaces = self._spaces()
        fetched = []
        for j in range(self.inputs):
            space = spaces[(j % self.hashes) % len(spaces)]
            fetched.append(signed_gather(space, self._index[j], self._sign[j]))
        if self.g is None:
            flat = fetched[0]
        else:
            w1, b1, w2, b2 = self._g_parts()
            z = torch.stack(fetched, dim=1)
            flat = F.linear(F.relu(F.linear(z, w1, b1)), w2.unsqueeze(0), b2).squeeze(1)
        sizes = [math.prod(s) for s in self.virtual_shapes.values()]
        parts = torch.split(flat, sizes)
        return {n: p.view(s) for (n, s), p in zip(self.virtual_shapes.items(), parts, strict=True)}

    @torch.no_grad()
    def init_from_dense(self, dense: dict[str, torch.Tensor]) -> None:
        """Each bucket := mean of the signed dense values fetching it, divided by g's initial linear
        gain (so a weight alone in its buckets is reproduced); HashedNets' recipe when g = identity."""
        values = torch.cat([dense[name].reshape(-1).float() for name in self.virtual_shapes])
        gain = self._linear_gain
        spaces = self._spaces()
        for p, space in enumerate(spaces):
            total = torch.zeros(space.shape[0])
            count = torch.zeros(space.shape[0])
            for j in range(self.inputs):
                if (j % self.hashes) % len(spaces) == p:
                    total.index_add_(0, self._index[j], values * self._sign[j])
                    count.index_add_(0, self._index[j], torch.ones_like(values))
            filled = count > 0
            space[filled] = total[filled] / count[filled] / gain

    def hpk_entries(self, path: str) -> HpkEntries:
        entries = HpkEntries()
        names = [entries.add_space(path, self.space)]
        if len(self.space_sizes) == 2:
            names.append(entries.add_space(f"{path}.space2", self.space2))
        common: dict = {"spaces": names, "hashes": self.hashes, "hops": self.hops, "hidden": self.hidden}
        if self.g is not None:
            common["g"] = entries.add_space(f"{path}.g", self.g_values())
        for index, (slot, shape) in enumerate(self.virtual_shapes.items()):
            spec = {**common, "seed": int(self.seeds[index])}
            entries.params[slot] = Param(f"{path}.{slot}", "funhash", tuple(shape), spec)
        return entries

    def _describe(self) -> str:
        g = "identity" if self.g is None else f"{self.inputs}->{self.hidden}->1"
        return f"U={self.hashes}, hops={self.hops}, buckets={self.space_sizes}, g={g}, seed={self.layer_seed}"


class FunHashLinear(FunHashModule):
    """A Linear layer whose weight and bias are FunHashNN virtual tensors sharing one space and g."""

    hpk_op = "Linear"

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        compression: float | None = None,
        num_buckets: int | None = None,
        hashes: int = 4,
        hidden: int = 8,
        hops: int = 1,
        dual_space: bool = False,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        shapes = {"weight": (out_features, in_features)}
        if bias:
            shapes["bias"] = (out_features,)
        self._init_funhash(
            shapes,
            in_features,
            compression=compression,
            num_buckets=num_buckets,
            hashes=hashes,
            hidden=hidden,
            hops=hops,
            dual_space=dual_space,
            seed=seed,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tensors = self.virtual_tensors()
        return F.linear(x, tensors["weight"], tensors.get("bias"))

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, {self._describe()}"


class FunHashConv2d(ConvGeometry, FunHashModule):
    """A Conv2d whose weight and bias are FunHashNN virtual tensors sharing one space and g."""

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
        num_buckets: int | None = None,
        hashes: int = 4,
        hidden: int = 8,
        hops: int = 1,
        dual_space: bool = False,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        weight_shape = self._init_geometry(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups
        )
        shapes = {"weight": weight_shape}
        if bias:
            shapes["bias"] = (out_channels,)
        self._init_funhash(
            shapes,
            self.fan_in,
            compression=compression,
            num_buckets=num_buckets,
            hashes=hashes,
            hidden=hidden,
            hops=hops,
            dual_space=dual_space,
            seed=seed,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tensors = self.virtual_tensors()
        return self._conv(x, tensors["weight"], tensors.get("bias"))

    def extra_repr(self) -> str:
        return f"{self._geometry_repr()}, {self._describe()}"

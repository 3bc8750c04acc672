"""HashedNets layers: ``HashedLinear`` and ``HashedConv2d``.

Weight and bias are virtual tensors that share one trainable compression space (``space``, K
values), as in HashedNets; ``separate_bias=True`` keeps the bias as its own dense vector instead,
as the HashedNets authors' code does, out of the same stored budget (docs/METHODS.md measures both). Bucket indices and signs are regenerated from the seeds (hp32) into
non-persistent buffers: ``state_dict`` holds the space and the seeds, never an index array.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from hashpack.runtime.hashing import MASK32, derive_seed
from hashpack.runtime.hpk import Param

from .conv_geometry import ConvGeometry
from .entries import CompressedLayer, HpkEntries
from .hashing import bucket_and_sign


class _SignedGather(torch.autograd.Function):
    """``space[index] * sign`` with a hand-written backward (one index_add instead of autograd's
    generic index_put path), which keeps a hashed training step close to a dense one."""

    @staticmethod
    def forward(ctx, space: torch.Tensor, index: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(index, sign)
        ctx.num_buckets = space.shape[0]
        return space.index_select(0, index) * sign

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        index, sign = ctx.saved_tensors
        grad_space = torch.zeros(ctx.num_buckets, dtype=grad.dtype, device=grad.device)
        grad_space.index_add_(0, index, grad * sign)
        return grad_space, None, None


def signed_gather(space: torch.Tensor, index: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
    return _SignedGather.apply(space, index, sign)


def budget(virtual: int, compression: float) -> int:
    """Bucket count for ``virtual`` weights at ``compression`` (stored / virtual), at least 1."""
    if not 0 < compression <= 1:
        raise ValueError(f"compression must be in (0, 1], got {compression}")
    return max(1, round(virtual * compression))


def _random_seed() -> int:
    return int(torch.randint(0, 2**31, (1,)).item()) * 2 + int(torch.randint(0, 2, (1,)).item())


class HashedModule(CompressedLayer):
    """Shared machinery: a space, named virtual tensors hashed into it, and their index buffers."""

    space: nn.Parameter
    seeds: torch.Tensor

    def _init_bias(
        self,
        shapes: dict[str, tuple[int, ...]],
        separate: bool,
        compression: float | None,
        num_buckets: int | None,
    ) -> int:
        """Bucket count; with ``separate`` the bias leaves ``shapes`` and takes its values from the budget."""
        buckets = _resolve_buckets(shapes, compression, num_buckets)
        self.register_parameter("bias", None)  # a separate dense bias (separate_bias=True), else in the space
        if separate and "bias" in shapes:
            out = shapes.pop("bias")[0]
            self.bias = nn.Parameter(torch.zeros(out))
            if num_buckets is None:
                buckets = max(1, buckets - out)
        return buckets

    def _resolved_bias(self, tensors: dict[str, torch.Tensor]) -> torch.Tensor | None:
        bias = self._parameters.get("bias")  # the separate dense bias, if any
        return bias if bias is not None else tensors.get("bias")

    def _init_hashing(self, shapes: dict[str, tuple[int, ...]], num_buckets: int, seed: int | None) -> None:
        self.layer_seed = (_random_seed() if seed is None else seed) & MASK32
        self.virtual_shapes = dict(shapes)
        self.num_buckets = num_buckets
        self.space = nn.Parameter(torch.empty(num_buckets))
        seeds = [derive_seed(self.layer_seed, name) for name in shapes]
        # Seeds are state (saved); indices are derived (never saved).
        self.register_buffer("seeds", torch.tensor(seeds, dtype=torch.int64))
        self._build_index()

    def _build_index(self) -> None:
        indices, signs = [], []
        for seed, shape in zip(self.seeds.tolist(), self.virtual_shapes.values(), strict=True):
            index, sign = bucket_and_sign(math.prod(shape), seed, self.num_buckets)
            indices.append(index)
            signs.append(sign)
        self.register_buffer("_index", torch.cat(indices), persistent=False)
        self.register_buffer("_sign", torch.cat(signs), persistent=False)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._build_index()  # seeds may have changed

    def seed_of(self, name: str) -> int:
        return int(self.seeds[list(self.virtual_shapes).index(name)])

    def virtual_tensors(self) -> dict[str, torch.Tensor]:
        """Every virtual tensor, regenerated from the space (differentiable)."""
        flat = signed_gather(self.space, self._index, self._sign)
        sizes = [math.prod(s) for s in self.virtual_shapes.values()]
        parts = torch.split(flat, sizes)
        return {n: p.view(s) for (n, s), p in zip(self.virtual_shapes.items(), parts, strict=True)}

    @property
    def virtual_size(self) -> int:
        return sum(math.prod(s) for s in self.virtual_shapes.values())

    @torch.no_grad()
    def init_from_dense(self, dense: dict[str, torch.Tensor]) -> None:
        """Set each bucket to the mean of the signed dense values that hash to it (HashedNets'
        recipe for compressing a trained model before fine-tuning); empty buckets keep their value."""
        values = torch.cat([dense[name].reshape(-1).float() for name in self.virtual_shapes])
        total = torch.zeros(self.num_buckets).index_add_(0, self._index, values * self._sign)
        count = torch.zeros(self.num_buckets).index_add_(0, self._index, torch.ones_like(values))
        filled = count > 0
        self.space[filled] = total[filled] / count[filled]
        bias = self._parameters.get("bias")  # the separate dense bias, if any
        if bias is not None and dense.get("bias") is not None:
            bias.copy_(dense["bias"])

    def hpk_entries(self, path: str) -> HpkEntries:
        entries = HpkEntries()
        space = entries.add_space(path, self.space)
        for slot, shape in self.virtual_shapes.items():
            spec = {"space": space, "seed": self.seed_of(slot)}
            entries.params[slot] = Param(f"{path}.{slot}", "hashed", tuple(shape), spec)
        if self._parameters.get("bias") is not None:  # a separate dense bias
            entries.params["bias"] = entries.add_dense(f"{path}.bias", self.bias)
        return entries

    def _uniform_init(self, fan_in: int) -> None:
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        nn.init.uniform_(self.space, -bound, bound)
        if self._parameters.get("bias") is not None:  # a separate dense bias
            nn.init.uniform_(self.bias, -bound, bound)


class HashedLinear(HashedModule):
    """A Linear layer whose weight [out, in] and bias [out] are hashed into ``num_buckets`` values."""

    hpk_op = "Linear"

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        compression: float | None = None,
        num_buckets: int | None = None,
        seed: int | None = None,
        separate_bias: bool = False,
    ) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        shapes = {"weight": (out_features, in_features)}
        if bias:
            shapes["bias"] = (out_features,)
        buckets = self._init_bias(shapes, separate_bias, compression, num_buckets)
        self._init_hashing(shapes, buckets, seed)
        self._uniform_init(in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tensors = self.virtual_tensors()
        return F.linear(x, tensors["weight"], self._resolved_bias(tensors))

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, buckets={self.num_buckets}, seed={self.layer_seed}"


class HashedConv2d(ConvGeometry, HashedModule):
    """A Conv2d whose weight [out, in/groups, kh, kw] and bias [out] are hashed into one space."""

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
        seed: int | None = None,
        separate_bias: bool = False,
    ) -> None:
        super().__init__()
        weight_shape = self._init_geometry(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups
        )
        shapes = {"weight": weight_shape}
        if bias:
            shapes["bias"] = (out_channels,)
        buckets = self._init_bias(shapes, separate_bias, compression, num_buckets)
        self._init_hashing(shapes, buckets, seed)
        self._uniform_init(self.fan_in)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tensors = self.virtual_tensors()
        return self._conv(x, tensors["weight"], self._resolved_bias(tensors))

    def extra_repr(self) -> str:
        return f"{self._geometry_repr()}, buckets={self.num_buckets}, seed={self.layer_seed}"


def _resolve_buckets(
    shapes: dict[str, tuple[int, ...]], compression: float | None, num_buckets: int | None
) -> int:
    if (compression is None) == (num_buckets is None):
        raise ValueError("give exactly one of compression= or num_buckets=")
    if num_buckets is not None:
        return num_buckets
    return budget(sum(math.prod(s) for s in shapes.values()), compression)  # type: ignore[arg-type]


class HashedEmbedding(HashedModule):
    """An Embedding whose [num_embeddings, dim] table is hashed into ``num_buckets`` values with a sign.

    The table decodes exactly like a hashed Linear weight of that shape (FORMAT.md §4); a lookup
    regenerates only the rows it reads (bucket ``h(id·D + j)``), never the whole table, so a
    30,000-row table costs per batch what the batch reads. Row ``padding_idx`` reads as zero and
    gets no gradient, as in ``nn.Embedding`` (a hashed table cannot store a zero row).
    """

    hpk_op = "Embedding"

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        *,
        compression: float | None = None,
        num_buckets: int | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"padding_idx {padding_idx} is not a row of a {num_embeddings}-row table")
            padding_idx %= num_embeddings
        self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, padding_idx
        shapes = {"weight": (num_embeddings, embedding_dim)}
        self._init_hashing(shapes, _resolve_buckets(shapes, compression, num_buckets), seed)
        nn.init.normal_(self.space)  # nn.Embedding's N(0, 1)

    def _build_index(self) -> None:
        """The table's bucket and sign per entry, kept compact (int32 / int8): a 30k×128 table is 4M entries."""
        (seed,) = self.seeds.tolist()
        index, sign = bucket_and_sign(self.num_embeddings * self.embedding_dim, seed, self.num_buckets)
        self.register_buffer("_index", index.to(torch.int32), persistent=False)
        self.register_buffer("_sign", sign.to(torch.int8), persistent=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        flat = ids.reshape(-1).long()
        if flat.numel() and (int(flat.min()) < 0 or int(flat.max()) >= self.num_embeddings):
            raise IndexError(
                f"token ids must be in [0, {self.num_embeddings}); got {flat.min()}..{flat.max()}"
            )
        entries = flat[:, None] * self.embedding_dim + torch.arange(self.embedding_dim, device=flat.device)
        entries = entries.reshape(-1)
        index = self._index.index_select(0, entries).long()
        sign = self._sign.index_select(0, entries).to(self.space.dtype)
        rows = signed_gather(self.space, index, sign).view(*ids.shape, self.embedding_dim)
        if self.padding_idx is not None:
            rows = rows * (ids != self.padding_idx).unsqueeze(-1).to(rows.dtype)
        return rows

    def virtual_tensors(self) -> dict[str, torch.Tensor]:
        flat = signed_gather(self.space, self._index.long(), self._sign.to(self.space.dtype))
        weight = flat.view(self.num_embeddings, self.embedding_dim)
        if self.padding_idx is not None:
            weight = weight.index_fill(0, torch.tensor([self.padding_idx]), 0.0)
        return {"weight": weight}

    @torch.no_grad()
    def init_from_dense(self, dense: dict[str, torch.Tensor]) -> None:
        """Each bucket := mean of the signed table entries hashed to it (the padding row excluded)."""
        values = dense["weight"].reshape(-1).float()
        keep = torch.ones_like(values)
        if self.padding_idx is not None:
            start = self.padding_idx * self.embedding_dim
            keep[start : start + self.embedding_dim] = 0
        index, sign = self._index.long(), self._sign.float()
        total = torch.zeros(self.num_buckets).index_add_(0, index, values * sign * keep)
        count = torch.zeros(self.num_buckets).index_add_(0, index, keep)
        filled = count > 0
        self.space[filled] = total[filled] / count[filled]

    def extra_repr(self) -> str:
        padding = f", padding_idx={self.padding_idx}" if self.padding_idx is not None else ""
        return (
            f"{self.num_embeddings}, {self.embedding_dim}{padding}, buckets={self.num_buckets}, "
            f"seed={self.layer_seed}"
        )

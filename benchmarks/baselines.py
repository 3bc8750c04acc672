"""The papers' equal-size baselines and production peers, for benchmarks/accuracy.py.

- equal-size dense: the same architecture with fewer hidden units / channels;
- low-rank: each layer factorised into two thinner ones of equal total size;
- random edge removal: a fixed random mask keeps the budgeted fraction of each weight;
- k-means weight clustering (as TF Model Optimization does): k shared values per layer.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn

from hashpack.models import LeNet5, mlp


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _scaled_lenet5(input_shape: tuple[int, ...], num_classes: int, scale: float) -> nn.Module:
    model = LeNet5(input_shape, num_classes)
    c1, c2 = max(1, round(6 * scale)), max(1, round(16 * scale))
    f1, f2 = max(1, round(120 * scale)), max(1, round(84 * scale))
    pad2 = model.features[3].padding
    model.features[0] = nn.Conv2d(input_shape[0], c1, 5, padding=2)
    model.features[3] = nn.Conv2d(c1, c2, 5, padding=pad2)
    with torch.no_grad():
        flat = model.features(torch.zeros(1, *input_shape)).numel()
    model.classifier = nn.Sequential(
        nn.Linear(flat, f1), nn.ReLU(), nn.Linear(f1, f2), nn.ReLU(), nn.Linear(f2, num_classes)
    )
    return model


def equal_size_dense(arch: str, input_shape: tuple[int, ...], num_classes: int, budget: int) -> nn.Module:
    """The architecture with its widths scaled (bisection on the scale) to ``budget`` parameters."""

    def build(scale: float) -> nn.Module:
        if arch == "mlp":
            return mlp(
                input_shape, num_classes, hidden=(max(1, round(300 * scale)), max(1, round(100 * scale)))
            )
        return _scaled_lenet5(input_shape, num_classes, scale)

    low, high = 1e-3, 1.0
    for _ in range(40):
        mid = (low + high) / 2
        if parameter_count(build(mid)) > budget:
            high = mid
        else:
            low = mid
    return build(low)


class LowRankLinear(nn.Sequential):
    """W ≈ U V with rank r: Linear(in, r, no bias) then Linear(r, out)."""

    def __init__(self, layer: nn.Linear, rank: int) -> None:
        super().__init__(nn.Linear(layer.in_features, rank, bias=False), nn.Linear(rank, layer.out_features))


class LowRankConv(nn.Sequential):
    """A k×k conv with r filters, then a 1×1 conv to the output channels."""

    def __init__(self, layer: nn.Conv2d, rank: int) -> None:
        super().__init__(
            nn.Conv2d(layer.in_channels, rank, layer.kernel_size, layer.stride, layer.padding, bias=False),
            nn.Conv2d(rank, layer.out_channels, 1),
        )


def low_rank(model: nn.Module, compression: float) -> nn.Module:
    """Factorise every Linear/Conv2d to fit ~``compression`` × the model's parameters.

    One rank fraction α for all layers (rank = max(1, round(α · full rank)), α found by bisection
    on the total size), so the budget goes where the layers are large. The output layer stays
    dense: factorising a 100→10 head to rank 1 saves a few hundred parameters and caps accuracy,
    which would make this baseline a straw man (unless even rank 1 elsewhere leaves no room for
    it). A layer whose factorisation would not be smaller than the dense layer stays dense too.
    """
    budget = compression * parameter_count(model)
    layers = [(path, m) for path, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    head = layers[-1][0] if isinstance(layers[-1][1], nn.Linear) else None
    if parameter_count(_factorise(model, layers, head, 0.0)) > budget:
        head = None
    low, high = 0.0, 1.0
    for _ in range(30):
        mid = (low + high) / 2
        if parameter_count(_factorise(model, layers, head, mid)) > budget:
            high = mid
        else:
            low = mid
    return _factorise(model, layers, head, low)


def _factorise(
    model: nn.Module, layers: list[tuple[str, nn.Module]], keep: str | None, alpha: float
) -> nn.Module:
    """A copy of ``model`` with each layer but ``keep`` at rank max(1, round(α · full rank))."""
    result = copy.deepcopy(model)
    for path, module in layers:
        if path == keep:
            continue
        if isinstance(module, nn.Linear):
            fan_in, out = module.in_features, module.out_features
        else:
            fan_in = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            out = module.out_channels
        rank = max(1, round(alpha * min(fan_in, out)))
        if rank * (fan_in + out) >= fan_in * out:
            continue
        replacement = (
            LowRankLinear(module, rank) if isinstance(module, nn.Linear) else LowRankConv(module, rank)
        )
        parent_path, _, name = path.rpartition(".")
        setattr(result.get_submodule(parent_path) if parent_path else result, name, replacement)
    return result


class RandomEdgeRemoval:
    """Keeps a fixed random ``compression`` fraction of every weight; re-applied after each step.

    The kept weights are scaled by 1/sqrt(compression) at the start so each layer's output
    variance matches the dense initialisation (otherwise the sparse net starts vanishingly small
    and the baseline is unfairly slow to train).
    """

    def __init__(self, model: nn.Module, compression: float, seed: int) -> None:
        # A stream of its own: seeded like torch.manual_seed(seed), the mask would replay the numbers
        # that drew the weights (weight = (2u - 1) * bound) and keep exactly the negative ones.
        generator = torch.Generator().manual_seed(seed + 0x9E3779B9)
        self.masks = []
        for module in model.modules():
            if isinstance(module, (nn.Linear, nn.Conv2d)):
                mask = torch.rand(module.weight.shape, generator=generator) < compression
                self.masks.append((module.weight, mask))
                with torch.no_grad():
                    module.weight.mul_(1 / math.sqrt(compression))
        self.apply()

    @torch.no_grad()
    def apply(self) -> None:
        for weight, mask in self.masks:
            weight.mul_(mask)

    def stored_values(self) -> int:
        return sum(int(mask.sum()) for _, mask in self.masks)

    def sparse_bytes(self) -> int:
        """Nonzero float32 values plus a one-bit-per-weight mask: the cheapest honest sparse encoding."""
        return sum(int(mask.sum()) * 4 + math.ceil(mask.numel() / 8) for _, mask in self.masks)


def kmeans_1d(values: np.ndarray, k: int, iterations: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means on scalars, linear initialisation (TFMOT's default): (centroids, labels)."""
    centroids = np.linspace(values.min(), values.max(), k)
    labels = np.zeros(values.shape, dtype=np.int64)
    for _ in range(iterations):
        labels = np.abs(values[:, None] - centroids[None, :]).argmin(axis=1)
        for j in range(k):
            members = values[labels == j]
            if members.size:
                centroids[j] = members.mean()
    return centroids.astype(np.float32), labels


@torch.no_grad()
def cluster_weights(model: nn.Module, k: int) -> int:
    """Snap every Linear/Conv2d weight to k per-layer centroids (post-training); returns clustered bytes.

    Bytes: log2(k)-bit indices plus k float32 centroids per layer, plus the biases — before gzip.
    """
    total_bits = 0
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            weight = module.weight.detach().numpy().reshape(-1)
            centroids, labels = kmeans_1d(weight, k)
            module.weight.copy_(torch.from_numpy(centroids[labels].reshape(module.weight.shape)))
            total_bits += weight.size * max(1, math.ceil(math.log2(k))) + 32 * k
            if module.bias is not None:
                total_bits += 32 * module.bias.numel()
    return math.ceil(total_bits / 8)

"""Reference architectures: the papers' LeNet-300-100, LeNet-5, ResNet-20-style, MobileNetV2-style, and
issue 15's text classifier and embedding recommender head.

Plain ``nn.Module``s with dense layers; ``compress`` turns them into compressed models.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def mlp(input_shape: tuple[int, ...], num_classes: int, hidden: tuple[int, ...] = (300, 100)) -> nn.Module:
    """LeNet-300-100 (for any input size): Flatten → 300 → 100 → classes, ReLU."""
    features = 1
    for dim in input_shape:
        features *= dim
    layers: list[nn.Module] = [nn.Flatten()]
    for width in hidden:
        layers += [nn.Linear(features, width), nn.ReLU()]
        features = width
    layers.append(nn.Linear(features, num_classes))
    return nn.Sequential(*layers)


class LeNet5(nn.Module):
    """LeNet-5: conv 6@5×5 → pool → conv 16@5×5 → pool → 120 → 84 → classes.

    The second conv is padded on small inputs (8×8 digits) so the feature map never vanishes.
    """

    def __init__(self, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        channels, height, width = input_shape
        pad2 = 0 if min(height, width) >= 16 else 2
        self.features = nn.Sequential(
            nn.Conv2d(channels, 6, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5, padding=pad2),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        with torch.no_grad():
            flat = self.features(torch.zeros(1, *input_shape)).numel()
        self.classifier = nn.Sequential(
            nn.Linear(flat, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        return self.classifier(torch.flatten(x, 1))


class BasicBlock(nn.Module):
    """ResNet basic block: two 3×3 conv+BN, identity or 1×1-conv shortcut, residual add."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet20(nn.Module):
    """ResNet-20 (He et al., CIFAR variant): 3 stages × ``blocks`` basic blocks, widths w, 2w, 4w."""

    def __init__(
        self, input_shape: tuple[int, ...], num_classes: int, width: int = 16, blocks: int = 3
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(input_shape[0], width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        stages: list[nn.Module] = []
        channels = width
        for stage, out_channels in enumerate((width, 2 * width, 4 * width)):
            for block in range(blocks):
                stride = 2 if stage > 0 and block == 0 else 1
                stages.append(BasicBlock(channels, out_channels, stride))
                channels = out_channels
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.stages(self.stem(x)))
        return self.fc(torch.flatten(x, 1))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1×1 expand, 3×3 depthwise, 1×1 project (ReLU6), residual when shapes match."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = in_channels * expand
        self.use_residual = stride == 1 and in_channels == out_channels
        self.block = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.use_residual else out


class MobileNetTiny(nn.Module):
    """A small MobileNetV2-style net (depthwise convs, inverted residuals) for small images."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, width: int = 16) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(input_shape[0], width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU6()
        )
        self.blocks = nn.Sequential(
            InvertedResidual(width, width, 1, 4),
            InvertedResidual(width, 2 * width, 2, 4),
            InvertedResidual(2 * width, 2 * width, 1, 4),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))


ARCHITECTURES: dict[str, Callable[[tuple[int, ...], int], nn.Module]] = {
    "mlp": mlp,
    "lenet5": LeNet5,
    "resnet20": ResNet20,
    "mobilenet": MobileNetTiny,
}


def build_model(arch: str, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r} (known: {', '.join(ARCHITECTURES)})")
    return ARCHITECTURES[arch](input_shape, num_classes)


class TextClassifier(nn.Module):
    """Token ids [N, L] → Embedding → TransformerEncoder (batch_first) → mean over the sequence → Linear
    (issue 15's text classifier: ``TextClassifier(30000, 128)``)."""

    def __init__(
        self,
        vocab: int = 30000,
        dim: int = 128,
        num_classes: int = 2,
        *,
        layers: int = 2,
        heads: int = 4,
        feedforward: int = 256,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        layer = nn.TransformerEncoderLayer(dim, heads, feedforward, dropout=dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.embed(ids)).mean(1))


class EmbeddingMeanHead(nn.Module):
    """A recommender head: the mean of the item embeddings a user touched ([N, L] ids), then a Linear
    (nn.EmbeddingBag's mean mode written with the .hpk op set: Embedding + Mean)."""

    def __init__(self, items: int = 50000, dim: int = 64, outputs: int = 1) -> None:
        super().__init__()
        self.items = nn.Embedding(items, dim)
        self.head = nn.Linear(dim, outputs)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.items(ids).mean(1))

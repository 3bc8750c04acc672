"""Small test models for the methods tests: an MLP, LeNet-5 and a ResNet-20-style net (BN, adds).

Sized for 8×8 single-channel digits so a whole test matrix (method × quantization × model) runs in
seconds; the structure (conv/BN/pool/residual/FC) is what matters for the runtime comparison.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import nn

DIGITS_SHAPE = (1, 8, 8)


def mlp(in_features: int = 64, classes: int = 10) -> nn.Module:
    """LeNet-300-100 shape, scaled down: Flatten → 64 → 32 → classes."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(in_features, 64),
        nn.ReLU(),
        nn.Linear(64, 32),
        nn.ReLU(),
        nn.Linear(32, classes),
    )


class LeNet5(nn.Module):
    """conv 6@5×5 → pool → conv 16@5×5 → pool → 120 → 84 → classes (padded for 8×8 inputs)."""

    def __init__(self, channels: int = 1, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 6, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Linear(16 * 2 * 2, 120), nn.ReLU(), nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


class Block(nn.Module):
    """ResNet basic block: conv-BN-ReLU-conv-BN, identity or 1×1 conv+BN shortcut, add, ReLU."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """ResNet-20 layout (stem, 3 stages × ``blocks`` blocks at widths w, 2w, 4w, global pool, FC)."""

    def __init__(self, channels: int = 1, classes: int = 10, width: int = 8, blocks: int = 3) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        layers, cin = [], width
        for stage, cout in enumerate((width, 2 * width, 4 * width)):
            for block in range(blocks):
                layers.append(Block(cin, cout, 2 if stage > 0 and block == 0 else 1))
                cin = cout
        self.stages = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.stages(self.stem(x))), 1))


def randomize_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial running statistics and affine parameters, so BN is really exercised."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                n = module.num_features
                module.running_mean.copy_(torch.rand(n, generator=generator) - 0.5)
                module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                module.bias.copy_(torch.rand(n, generator=generator) - 0.5)
    return model


MODELS = {"mlp": mlp, "lenet5": LeNet5, "resnet": ResNet}


def build(name: str) -> nn.Module:
    torch.manual_seed(0)
    return randomize_batchnorm(MODELS[name]())


@pytest.fixture(autouse=True)
def single_thread() -> Iterator[None]:
    """Run torch on one thread: these models are tiny, and on a busy 2-core machine two spinning
    intra-op threads make each step several times slower. Import it into a test module to use it."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)

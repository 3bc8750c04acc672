"""pack captures the constructs of the torchvision mobile zoo (issue 13), on small hand-written models.

Each model is packed, then run by the numpy runtime and the PyTorch evaluator on inputs that were
never recorded and compared with torch; the op list proves what the capture produced.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import hashpack
from hashpack.packer import UnsupportedModelError
from hashpack.runtime import load
from hashpack.torch_eval import to_torch
from hashpack.torchvision_compat import import_torchvision

TOLERANCE = 1e-5


class Functional(nn.Module):
    """Functional forms: relu, hardswish, hardsigmoid, silu, adaptive pooling, flatten, mean."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 9 + 8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv(x))
        x = F.hardswish(x) + F.hardsigmoid(x)
        x = F.silu(x)
        pooled = torch.flatten(F.adaptive_avg_pool2d(x, (3, 3)), 1)
        peak = F.adaptive_max_pool2d(x, 1)
        summary = x.mean([2, 3], keepdim=True) * peak
        return self.fc(torch.cat([pooled, summary.flatten(1)], dim=1))


class Pools(nn.Module):
    """ceil_mode pooling, adaptive pooling to sizes larger and smaller than the input."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3)
        self.maxpool = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.avgpool = nn.AvgPool2d(3, 2, padding=1, ceil_mode=True, count_include_pad=False)
        self.grow = nn.AdaptiveAvgPool2d((7, 7))
        self.shrink = nn.AdaptiveMaxPool2d((2, None))
        self.fc = nn.Linear(4 * 7 * 7 + 4 * 2 * 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.maxpool(self.conv(x)))
        return self.fc(torch.cat([self.grow(x).flatten(1), self.shrink(x).flatten(1)], 1))


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    batch, channels, height, width = x.size()
    x = x.view(batch, groups, channels // groups, height, width)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(batch, -1, height, width)


class Shuffle(nn.Module):
    """ShuffleNet's block: chunk + getitem, split, shape arithmetic, view, transpose, contiguous, cat."""

    def __init__(self) -> None:
        super().__init__()
        self.branch = nn.Sequential(nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4), nn.ReLU(inplace=True))
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left, right = x.chunk(2, dim=1)
        x = channel_shuffle(torch.cat((left, self.branch(right)), dim=1), 2)
        a, b, c = torch.split(x, [2, 3, 3], dim=1)
        x = torch.cat([c, a.permute(0, 1, 3, 2).contiguous().transpose(2, 3), b], 1)
        return self.head(x.mean([2, 3]))


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int = 6) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, 2, 1)
        self.fc2 = nn.Conv2d(2, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = F.hardsigmoid(self.fc2(F.relu(self.fc1(self.pool(x)))))
        return scale * x


class Residual(nn.Module):
    """SE gating, SiLU/Hardswish modules, StochasticDepth and Dropout (identity in eval), ``+=``."""

    def __init__(self) -> None:
        super().__init__()
        ops = import_torchvision().ops
        self.conv = nn.Conv2d(6, 6, 3, padding=1, groups=2)
        self.act = nn.SiLU(inplace=True)
        self.se = SqueezeExcite()
        self.drop_path = ops.StochasticDepth(0.2, "row")
        self.out = nn.Sequential(nn.Flatten(), nn.Hardswish(), nn.Dropout(0.3), nn.Linear(6 * 5 * 5, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.drop_path(self.se(self.act(self.conv(x))))
        y += x
        y = F.dropout(y, 0.5, self.training)
        return self.out(y)


CASES = {
    "functional": (
        Functional,
        (3, 6, 6),
        {"Hardswish", "Hardsigmoid", "Silu", "AdaptiveAvgPool2d", "Mean", "Mul"},
    ),
    "pools": (Pools, (2, 16, 15), {"MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d"}),
    "shuffle": (Shuffle, (8, 3, 3), {"Slice", "Reshape", "Transpose", "Concat", "Mean"}),
    "residual": (Residual, (6, 5, 5), {"Silu", "Hardsigmoid", "Mul", "Add", "GlobalAvgPool", "Hardswish"}),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("method", ["dense", "hashed"])
def test_capture_matches_torch(tmp_path: Path, name: str, method: str) -> None:
    build, shape, expected_ops = CASES[name]
    torch.manual_seed(0)
    model = build().eval()
    if method != "dense":
        hashpack.compress(model, method, compression=1 / 2, seed=3)
    path = tmp_path / f"{name}.hpk"
    hpk = hashpack.pack(model, torch.randn(3, *shape), path, golden=2)
    assert expected_ops <= {node.op for node in hpk.nodes}
    x = torch.randn(5, *shape, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        expected = model(x).numpy()
    np.testing.assert_allclose(load(path).run(x.numpy()), expected, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(to_torch(path).run(x.numpy()), expected, rtol=0, atol=TOLERANCE)


def test_ceil_mode_is_written_only_when_true(tmp_path: Path) -> None:
    model = nn.Sequential(nn.MaxPool2d(2), nn.MaxPool2d(3, 2, ceil_mode=True), nn.Flatten()).eval()
    hpk = hashpack.pack(model, torch.randn(2, 1, 9, 9), tmp_path / "m.hpk")
    assert [node.attrs.get("ceil_mode") for node in hpk.nodes[:2]] == [None, True]


def test_pack_warns_on_training_mode_and_restores_modes(tmp_path: Path) -> None:
    model = Residual()
    model.train()
    model.se.eval()  # a caller's mixed modes come back as they were
    x = torch.randn(4, 6, 5, 5)
    with pytest.warns(UserWarning, match=r"Residual was in training mode; packing it in eval mode"):
        hashpack.pack(model, x, tmp_path / "m.hpk")
    assert model.training and model.out[2].training and not model.se.training
    model.eval()
    with torch.no_grad():
        expected = model(x).numpy()
    np.testing.assert_allclose(load(tmp_path / "m.hpk").run(x.numpy()), expected, atol=TOLERANCE)


def test_pack_in_eval_mode_does_not_warn(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hashpack.pack(Residual().eval(), torch.randn(2, 6, 5, 5), tmp_path / "m.hpk")


def test_integer_input_is_not_converted(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Linear(3, 2)).eval()
    ids = torch.randint(0, 10, (2, 3))
    with pytest.raises(
        UnsupportedModelError, match=r"example_input has dtype torch\.int64 .* feeds Linear .*float32"
    ):
        hashpack.pack(model, ids, tmp_path / "m.hpk")
    assert not (tmp_path / "m.hpk").exists()


def test_reshape_that_mixes_the_batch_is_refused(tmp_path: Path) -> None:
    class Mix(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.view(x.size(1), x.size(0), -1).relu()

    with pytest.raises(UnsupportedModelError, match="mixes the batch dimension"):
        hashpack.pack(Mix().eval(), torch.randn(4, 4, 3), tmp_path / "m.hpk")

"""torch → .hpk → numpy runtime: every supported op, bit-identical weights, size bound, determinism."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import hashpack
from hashpack.models import LeNet5, MobileNetTiny, ResNet20, mlp
from hashpack.nn.layers import HashedConv2d, HashedLinear, HashedModule
from hashpack.packer import UnsupportedModelError
from hashpack.runtime import load


def _randomize_batchnorm(model: nn.Module) -> None:
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)


class AllOps(nn.Module):
    """Every op of docs/FORMAT.md §5 in one graph, through modules, functions and tensor methods."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = HashedConv2d(3, 8, 3, padding=1, compression=1 / 4, seed=11)
        self.bn = nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 8, 3, stride=1, padding=2, dilation=2, groups=8)
        self.strided = HashedConv2d(
            8, 8, 3, stride=2, padding=1, groups=2, compression=1 / 2, seed=12, bias=False
        )
        self.maxpool = nn.MaxPool2d(3, stride=1, padding=1)
        self.avgpool = nn.AvgPool2d(2, stride=2, padding=1, count_include_pad=False)
        self.avgpool_incl = nn.AvgPool2d(2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.relu6 = nn.ReLU6()
        self.drop = nn.Dropout(0.5)
        self.fc = HashedLinear(8 * 4 * 4 + 8, 16, compression=1 / 8, seed=13)
        self.bn1d = nn.BatchNorm1d(16)
        self.head = nn.Linear(16, 5)
        self.softmax = nn.Softmax(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.conv(x)))
        x = x + self.dw(x)
        x = self.relu6(self.strided(x))
        x = torch.sigmoid(self.maxpool(x))
        skip = self.gap(x)
        x = self.avgpool(x)
        x = torch.tanh(x)
        x = self.drop(x)
        x = torch.cat([x.view(x.size(0), -1), torch.flatten(skip, 1)], dim=1)
        x = self.bn1d(self.fc(x)).relu()
        pooled = torch.sigmoid(self.avgpool_incl(x.view(x.size(0), 1, 4, 4)).flatten(1))
        return torch.cat([self.softmax(self.head(x)), pooled], dim=1)


MODELS = {
    "mlp": (lambda: mlp((1, 8, 8), 10), (1, 8, 8)),
    "lenet5": (lambda: LeNet5((1, 28, 28), 10), (1, 28, 28)),
    "resnet20": (lambda: ResNet20((3, 16, 16), 10, width=8, blocks=1), (3, 16, 16)),
    "mobilenet": (lambda: MobileNetTiny((3, 16, 16), 10, width=8), (3, 16, 16)),
}


def _compressed(name: str) -> tuple[nn.Module, tuple[int, ...]]:
    factory, shape = MODELS[name]
    torch.manual_seed(0)
    model = factory()
    _randomize_batchnorm(model)
    hashpack.compress(model, compression=1 / 8, seed=3)
    return model.eval(), shape


@pytest.mark.parametrize("name", list(MODELS))
def test_architectures_match_torch_on_100_inputs(name: str, tmp_path: Path) -> None:
    model, shape = _compressed(name)
    x = torch.randn(100, *shape)
    hpk_path = tmp_path / f"{name}.hpk"
    hashpack.pack(model, x[:4], hpk_path)
    runtime = load(hpk_path)
    with torch.no_grad():
        expected = model(x).numpy()
    np.testing.assert_allclose(runtime.run(x.numpy()), expected, atol=1e-5, rtol=1e-5)
    assert runtime.input_shape == (None, *shape)


def test_every_op_matches_torch(tmp_path: Path) -> None:
    torch.manual_seed(1)
    model = AllOps()
    model.bn1d.eval()
    _randomize_batchnorm(model)
    model.eval()
    x = torch.randn(100, 3, 12, 12)
    hpk = hashpack.pack(model, x[:2], tmp_path / "ops.hpk")
    ops = {node.op for node in hpk.nodes}
    expected_ops = {
        "Conv2d", "BatchNorm", "Relu", "Add", "Relu6", "Sigmoid", "MaxPool2d", "GlobalAvgPool", "AvgPool2d",
        "Tanh", "Reshape", "Flatten", "Concat", "Linear", "Softmax",
    }  # fmt: skip
    assert expected_ops <= ops
    with torch.no_grad():
        expected = model(x).numpy()
    np.testing.assert_allclose(load(tmp_path / "ops.hpk").run(x.numpy()), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["lenet5", "mobilenet"])
def test_weights_bit_identical_to_torch(name: str, tmp_path: Path) -> None:
    model, shape = _compressed(name)
    hashpack.pack(model, torch.randn(2, *shape), tmp_path / "m.hpk")
    weights = load(tmp_path / "m.hpk").weights
    checked = 0
    for path, module in model.named_modules():
        if isinstance(module, HashedModule):
            for slot, tensor in module.virtual_tensors().items():
                got = weights[f"{path}.{slot}"]
                assert np.array_equal(got.view(np.uint32), tensor.detach().numpy().view(np.uint32)), path
                checked += 1
    assert checked >= 3


def test_golden_outputs_recorded_and_reproduced(tmp_path: Path) -> None:
    model, shape = _compressed("lenet5")
    x = torch.randn(8, *shape)
    hashpack.pack(model, x, tmp_path / "g.hpk", golden=5)
    runtime = load(tmp_path / "g.hpk")
    assert runtime.golden_inputs.shape == (5, *shape)
    with torch.no_grad():
        np.testing.assert_array_equal(runtime.golden_outputs, model(x[:5]).numpy())
    np.testing.assert_allclose(runtime.run(runtime.golden_inputs), runtime.golden_outputs, atol=1e-5)


@pytest.mark.parametrize("compression", [1 / 8, 1 / 64])
def test_file_size_bound(compression: float, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = hashpack.compress(mlp((1, 28, 28), 10), compression=compression)
    path = tmp_path / "s.hpk"
    hpk = hashpack.pack(model.eval(), torch.randn(1, 1, 28, 28), path, golden=0)
    payload = sum(array.nbytes for array in hpk.tensors.values())
    assert os.path.getsize(path) <= 1.01 * payload + 4096
    buckets = sum(space.size for space in hpk.spaces.values())
    virtual = sum(p.numel for p in hpk.params.values())
    assert buckets == pytest.approx(virtual * compression, rel=0.01)


def test_same_model_and_seed_give_identical_bytes_across_processes(tmp_path: Path) -> None:
    script = (
        "import sys, torch, hashpack; from hashpack.models import LeNet5;"
        "torch.manual_seed(0); m = hashpack.compress(LeNet5((1, 28, 28), 10), compression=1/16, seed=5);"
        "torch.manual_seed(1); hashpack.pack(m.eval(), torch.randn(3, 1, 28, 28), sys.argv[1])"
    )
    paths = [tmp_path / "a.hpk", tmp_path / "b.hpk"]
    for path in paths:
        subprocess.run([sys.executable, "-c", script, str(path)], check=True)
    assert paths[0].read_bytes() == paths[1].read_bytes()


def test_state_dict_holds_no_index_array() -> None:
    layer = HashedLinear(100, 50, compression=1 / 10, seed=1)
    state = layer.state_dict()
    assert set(state) == {"space", "seeds"}
    assert state["space"].numel() == round(5050 / 10)


def test_state_dict_round_trip_rebuilds_indices() -> None:
    a = HashedLinear(20, 10, compression=1 / 2, seed=1)
    b = HashedLinear(20, 10, compression=1 / 2, seed=2)
    b.load_state_dict(a.state_dict())
    x = torch.randn(3, 20)
    assert torch.equal(a(x), b(x))


def test_compress_initialises_from_dense_weights() -> None:
    torch.manual_seed(0)
    dense = nn.Sequential(nn.Linear(30, 20))
    x = torch.randn(64, 30)
    with torch.no_grad():
        reference = dense(x)

    def relative_error(model: nn.Module) -> float:
        with torch.no_grad():
            return float((model(x) - reference).abs().mean() / reference.abs().mean())

    from_dense = hashpack.compress(copy.deepcopy(dense), compression=1 / 2, seed=1)
    from_random = hashpack.compress(copy.deepcopy(dense), compression=1 / 2, seed=1, from_dense=False)
    assert relative_error(from_dense) < 0.6 * relative_error(from_random)
    # A bucket that holds a single weight reproduces it exactly.
    layer = from_dense[0]
    index, sign = layer._index, layer._sign
    counts = torch.bincount(index, minlength=layer.num_buckets)
    alone = int(torch.nonzero(counts[index] == 1)[0])
    flat = torch.cat([dense[0].weight.reshape(-1), dense[0].bias])
    assert float(layer.space.detach()[index[alone]] * sign[alone]) == pytest.approx(
        float(flat.detach()[alone])
    )


def test_unsupported_op_names_op_and_module(tmp_path: Path) -> None:
    class Odd(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.act = nn.Mish()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.act(x)

    with pytest.raises(UnsupportedModelError, match="act: layer Mish"):
        hashpack.pack(Odd(), torch.randn(1, 4), tmp_path / "x.hpk")
    assert not (tmp_path / "x.hpk").exists()

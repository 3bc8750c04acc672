"""Each compressed layer stores what its compression factor promises, and the .hpk size follows it.

The promises (docs/METHODS.md): HashedNets and FunHashNN store round(c·(weight + bias)) values
(FunHashNN: buckets and g together); FreshNets and FSNet store round(c·weight) values plus the
dense bias (FSNet: L = round(c·C_out·C_in·k·k)).
"""

from __future__ import annotations

import math
import struct

import pytest
import torch
from models import DIGITS_SHAPE, build, single_thread  # noqa: F401 (autouse fixture)
from torch import nn

import hashpack
from hashpack.nn.entries import CompressedLayer
from hashpack.nn.fresh import FreshConv2d
from hashpack.nn.funhash import FunHashModule
from hashpack.nn.layers import HashedModule
from hashpack.nn.quantize import quantize
from hashpack.runtime import read_hpk
from hashpack.runtime.summary import summarize

COMPRESSIONS = [1 / 4, 1 / 16]
_ITEMSIZE = {"none": 4, "fp16": 2, "int8": 1}


def _virtual(layer: nn.Module) -> tuple[int, int]:
    """(weight numel, bias numel) of a compressed layer."""
    if isinstance(layer, (HashedModule, FunHashModule)):
        shapes = layer.virtual_shapes
        return math.prod(shapes["weight"]), math.prod(shapes.get("bias", (0,)))
    weight = math.prod(layer.weight_shape)
    return weight, 0 if layer.bias is None else layer.bias.numel()


def _promised(layer: nn.Module, c: float) -> int:
    weight, bias = _virtual(layer)
    if isinstance(layer, (HashedModule, FunHashModule)):
        return max(1, round(c * (weight + bias)))
    return max(1, round(c * weight)) + bias


def _compressed(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, CompressedLayer)]


@pytest.mark.parametrize("c", COMPRESSIONS)
@pytest.mark.parametrize("method", ["hashed", "fresh", "funhash", "fsnet"])
@pytest.mark.parametrize("model_name", ["mlp", "lenet5", "resnet"])
def test_trainable_count_is_the_budget(model_name: str, method: str, c: float) -> None:
    model = hashpack.compress(build(model_name), method, compression=c, seed=3)
    layers = _compressed(model)
    assert layers
    for path, layer in layers:
        trainable = sum(p.numel() for p in layer.parameters() if p.requires_grad)
        promised = _promised(layer, c)
        assert trainable == promised, f"{path}: {trainable} trainable values, {promised} promised"
        if hasattr(layer, "budget"):
            assert layer.budget == trainable


def test_funhash_budget_includes_g() -> None:
    """g's values come out of the budget; a layer too small for g degenerates to HashedNets."""
    layer = hashpack.compress(nn.Sequential(nn.Linear(64, 32)), "funhash", compression=1 / 8)[0]
    assert layer.num_buckets + layer.g.numel() == round((64 * 32 + 32) / 8)
    assert layer.g.numel() <= round((64 * 32 + 32) / 8) / 2
    tiny = hashpack.compress(nn.Sequential(nn.Linear(4, 4)), "funhash", compression=1 / 4)[0]
    assert (tiny.hashes, tiny.hidden, tiny.num_buckets) == (1, 0, 5)


def test_fsnet_summary_length_is_the_compression() -> None:
    conv = hashpack.compress(nn.Sequential(nn.Conv2d(16, 32, 3)), "fsnet", compression=1 / 8)[0]
    assert conv.summary_length == round(32 * 16 * 3 * 3 / 8)
    assert conv.summary_length / (32 * 16 * 3 * 3) == pytest.approx(1 / 8, rel=1e-3)


def test_fresh_bands_sum_to_the_budget() -> None:
    conv = hashpack.compress(nn.Sequential(nn.Conv2d(16, 32, 5)), "fresh", compression=1 / 16)[0]
    assert isinstance(conv, FreshConv2d)
    assert sum(conv.band_buckets) == conv.num_buckets == round(32 * 16 * 25 / 16)


@pytest.mark.parametrize("mode", ["none", "fp16", "int8"])
@pytest.mark.parametrize("method", ["hashed", "fresh", "funhash", "fsnet"])
def test_file_size_follows_the_budget(tmp_path, method: str, mode: str) -> None:
    """Data bytes = bucket values × their itemsize + every other stored value × 4, nothing else."""
    model = hashpack.compress(build("lenet5"), method, compression=1 / 8, seed=5)
    quantize(model, mode)
    path = tmp_path / "m.hpk"
    hashpack.pack(model, torch.zeros(2, *DIGITS_SHAPE), path, golden=0)
    buckets = others = 0
    for _, layer in _compressed(model):
        for name, param in layer.named_parameters():
            if name.split(".")[-1] in layer.hpk_bucket_names or name.endswith("original"):
                buckets += param.numel()
            else:
                others += param.numel()
    dense = sum(
        p.numel() for m in model.modules() if not isinstance(m, CompressedLayer) for p in m.parameters(False)
    )
    buffers = sum(b.numel() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var")))
    with open(path, "rb") as handle:
        header = struct.unpack("<Q", handle.read(8))[0]
    data_bytes = path.stat().st_size - 8 - header
    assert data_bytes == buckets * _ITEMSIZE[mode] + 4 * (others + dense + buffers)
    # and the runtime's accounting (what `hashpack inspect` reports) agrees
    summary = summarize(read_hpk(path), path.stat().st_size)
    layers = {layer["name"]: layer for layer in summary["layers"]}
    stored = sum(layer["stored_values"] for layer in layers.values() if layer["scheme"] != "dense")
    assert stored == buckets + others  # every stored value of the compressed layers, g included


def test_compressed_file_is_smaller_by_about_the_factor(tmp_path) -> None:
    sizes = {}
    for method in ["hashed", "fresh", "funhash", "fsnet"]:
        model = hashpack.compress(build("lenet5"), method, compression=1 / 16, seed=5)
        path = tmp_path / f"{method}.hpk"
        hashpack.pack(model, torch.zeros(2, *DIGITS_SHAPE), path, golden=0)
        sizes[method] = path.stat().st_size
    dense_bytes = 4 * sum(p.numel() for p in build("lenet5").parameters())
    for method, size in sizes.items():
        # 1/16 of the weights, plus dense biases and a JSON header of a few kB
        assert size < dense_bytes / 16 + 6000, (method, size, dense_bytes)

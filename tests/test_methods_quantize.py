"""Quantized buckets: post-training quantize(), straight-through fake quantization, and what pack writes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from models import DIGITS_SHAPE, build, single_thread  # noqa: F401 (autouse fixture)

import hashpack
from hashpack.nn.quantize import dequantized, fake_quantize, int8_scale, quantization_of, quantize
from hashpack.runtime import load


@pytest.mark.parametrize("method", ["hashed", "fresh", "funhash", "fsnet"])
def test_int8_spaces_are_stored_as_int8_with_a_float32_scale(tmp_path, method: str) -> None:
    model = hashpack.compress(build("lenet5"), method, compression=1 / 8, seed=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    quantize(model, "int8")
    hpk = hashpack.pack(model, torch.zeros(1, *DIGITS_SHAPE), tmp_path / "q.hpk", golden=0)
    buckets = [s for n, s in hpk.spaces.items() if not n.endswith(".g")]
    assert buckets and all(s.dtype == "int8" for s in buckets)
    for space in buckets:
        codes = hpk.tensors[space.tensor]
        assert codes.dtype == np.int8 and np.abs(codes.astype(int)).max() == 127  # the peak maps to ±127
        assert float(np.float32(space.scale)) == space.scale > 0
    # quantization moved each value by at most half a step
    for name, value in model.state_dict().items():
        if name.endswith("space"):
            step = int8_scale(before[name])
            assert (value - before[name]).abs().max() <= step / 2 + 1e-7


def test_fp16_spaces_round_to_half(tmp_path) -> None:
    model = hashpack.compress(build("mlp"), "funhash", compression=1 / 4, seed=1)
    quantize(model, "fp16")
    hpk = hashpack.pack(model, torch.zeros(1, *DIGITS_SHAPE), tmp_path / "h.hpk", golden=0)
    for name, space in hpk.spaces.items():
        assert space.dtype == ("float32" if name.endswith(".g") else "float16")
    tags = quantization_of(model)
    assert tags and all(dtype == "float16" for dtype, _ in tags.values())


def test_int8_dequantization_is_what_a_decoder_computes() -> None:
    values = torch.randn(1000) * 0.07
    scale = int8_scale(values)
    codes = np.clip(np.rint(values.numpy() / np.float32(scale)), -127, 127).astype(np.int8)
    assert np.array_equal(
        dequantized(values, "int8", scale).numpy(), codes.astype(np.float32) * np.float32(scale)
    )
    assert int8_scale(torch.zeros(4)) == 1.0


def test_training_after_quantize_is_refused_at_pack_time(tmp_path) -> None:
    model = hashpack.compress(build("mlp"), "fsnet", compression=1 / 4, seed=1, fc="fs")
    quantize(model, "int8")
    with torch.no_grad():
        model[1].space.add_(1e-3)
    with pytest.raises(ValueError, match="no longer lies on its int8 grid"):
        hashpack.pack(model, torch.zeros(1, *DIGITS_SHAPE), tmp_path / "x.hpk")
    quantize(model, "int8")  # re-quantizing fixes it
    hashpack.pack(model, torch.zeros(1, *DIGITS_SHAPE), tmp_path / "x.hpk")
    quantize(model, "none")  # and "none" writes float32 again
    hpk = hashpack.pack(model, torch.zeros(1, *DIGITS_SHAPE), tmp_path / "y.hpk")
    assert {s.dtype for s in hpk.spaces.values()} == {"float32"}


@pytest.mark.parametrize("mode", ["fp16", "int8"])
@pytest.mark.parametrize("method", ["hashed", "fresh", "funhash", "fsnet"])
def test_fake_quant_is_straight_through(tmp_path, method: str, mode: str) -> None:
    model = hashpack.compress(build("lenet5"), method, compression=1 / 8, seed=1)
    spaces = [p for n, p in model.named_parameters() if n.endswith("space")]
    fake_quantize(model, mode)
    # the optimizer's parameters are the same objects as before
    assert all(any(p is q for q in model.parameters()) for p in spaces)
    x = torch.randn(4, *DIGITS_SHAPE)
    model(x).square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in spaces)
    # forward sees the quantized values; quantize() then makes them permanent, identically
    model.eval()
    with torch.no_grad():
        fake = model(x)
    quantize(model, mode)
    with torch.no_grad():
        real = model(x)
    assert torch.equal(fake, real)
    hashpack.pack(model, x, tmp_path / "f.hpk", golden=2)
    assert np.abs(load(tmp_path / "f.hpk").run(x.numpy()) - real.numpy()).max() <= 1e-5


def test_fake_quant_training_lowers_the_loss() -> None:
    torch.manual_seed(0)
    model = hashpack.compress(build("mlp"), "hashed", compression=1 / 8, seed=1)
    fake_quantize(model, "int8")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = torch.randn(64, *DIGITS_SHAPE), torch.randint(0, 10, (64,))
    losses = []
    for _ in range(30):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_unknown_mode_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown quantization mode"):
        quantize(build("mlp"), "int4")
    with pytest.raises(ValueError, match="unknown quantization mode"):
        fake_quantize(build("mlp"), "bf16")

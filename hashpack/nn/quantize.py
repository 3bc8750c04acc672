"""Quantized buckets: float16, or int8 with one symmetric scale per space (docs/FORMAT.md §3, §4).

Two entry points, for the two ways to get a quantized model:

- ``quantize(model, mode)``: post-training. Rounds every bucket space in place to its grid and
  tags the parameter, so torch now computes with exactly the dequantized values the runtime will
  compute with, and ``pack`` writes float16/int8 spaces. Also the last step after fake-quant
  training.
- ``fake_quantize(model, mode)``: quantization-aware training. Every bucket space is read through
  a straight-through rounding (forward: the dequantized values; backward: identity), so training
  sees the quantization error. Call it before building the optimizer; call ``quantize`` after
  training.

Only bucket spaces (``CompressedLayer.hpk_bucket_names``) are quantized: they are where the bytes
are. FunHashNN's g and dense parameters (biases of FreshNets/FSNet layers, BatchNorm) stay float32.

The storage dtype is a tag on the space parameter (``hpk_quant``), read by ``HpkEntries.add_space``.
``copy.deepcopy`` and ``state_dict`` do not carry it: call ``quantize`` on the model you pack
(on values already quantized it is harmless: the codes stay the same, values move by at most an
ulp when the recomputed int8 scale rounds differently).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from .entries import CompressedLayer

MODES = ("none", "fp16", "int8")
_DTYPES = {"fp16": "float16", "int8": "int8"}
INT8_MAX = 127  # symmetric: codes in [-127, 127], no zero point (bucket values are signed and centred)
FP16_MAX = 65504.0


def int8_scale(values: torch.Tensor) -> float:
    """max|x| / 127, rounded to float32 (the format stores a float32-exact scale); 1.0 for all zeros."""
    peak = float(values.detach().abs().max()) if values.numel() else 0.0
    scale = float(torch.tensor(peak / INT8_MAX, dtype=torch.float32))
    return scale if scale > 0 else 1.0


def dequantized(values: torch.Tensor, mode: str, scale: float | None = None) -> torch.Tensor:
    """The float32 values a decoder reconstructs from ``values`` stored as ``mode``.

    int8: ``float32(round(x / s)) * s`` in float32 (the same two float32 operations a decoder
    does); fp16: ``float32(float16(x))`` with saturation at ±65504.
    """
    values = values.float()
    if mode == "none":
        return values
    if mode == "fp16":
        return values.clamp(-FP16_MAX, FP16_MAX).half().float()
    if mode == "int8":
        step = torch.tensor(int8_scale(values) if scale is None else scale, dtype=torch.float32)
        codes = torch.round(values / step).clamp(-INT8_MAX, INT8_MAX)
        return codes * step
    raise ValueError(f"unknown quantization mode {mode!r} (known: {', '.join(MODES)})")


class _StraightThrough(torch.autograd.Function):
    """Forward: the dequantized values; backward: the gradient unchanged (straight-through)."""

    @staticmethod
    def forward(ctx, values: torch.Tensor, mode: str) -> torch.Tensor:
        return dequantized(values, mode)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad, None


class FakeQuantize(nn.Module):
    """A parametrization: the space is seen through quantize→dequantize with a straight-through
    gradient (int8 rescales from the current max|x| at every step, as ``quantize`` will)."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        if mode not in _DTYPES:
            raise ValueError(f"fake quantization needs mode fp16 or int8, got {mode!r}")
        self.mode = mode

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        return _StraightThrough.apply(values, self.mode)

    def extra_repr(self) -> str:
        return self.mode


def bucket_spaces(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """(layer, attribute name) of every bucket space of every compressed layer of ``model``."""
    found = []
    for module in model.modules():
        if isinstance(module, CompressedLayer):
            for name in module.hpk_bucket_names:
                if _has_space(module, name):
                    found.append((module, name))
    return found


def _has_space(module: nn.Module, name: str) -> bool:
    if parametrize.is_parametrized(module, name):
        return True
    return isinstance(getattr(module, name, None), nn.Parameter)


def _remove_fake_quant(module: nn.Module, name: str) -> nn.Parameter:
    if parametrize.is_parametrized(module, name):
        parametrize.remove_parametrizations(module, name, leave_parametrized=False)
    return getattr(module, name)


def fake_quantize(model: nn.Module, mode: str) -> nn.Module:
    """Read every bucket space through straight-through quantization (mode fp16/int8; "none" removes
    it). The trainable parameters stay the same objects (parametrize keeps the original), but call
    this before creating the optimizer all the same. Returns ``model``."""
    if mode not in MODES:
        raise ValueError(f"unknown quantization mode {mode!r} (known: {', '.join(MODES)})")
    for module, name in bucket_spaces(model):
        _remove_fake_quant(module, name)
        if mode != "none":
            parametrize.register_parametrization(module, name, FakeQuantize(mode), unsafe=True)
    return model


@torch.no_grad()
def quantize(model: nn.Module, mode: str) -> nn.Module:
    """Post-training quantization of every bucket space (mode "none", "fp16" or "int8").

    Removes fake quantization if present, rounds each space in place to the grid (int8: one
    symmetric scale per space = max|x| / 127) and tags the parameter so ``pack`` stores float16 or
    int8 + scale. "none" only removes tags and fake quantization. Returns ``model``.
    """
    if mode not in MODES:
        raise ValueError(f"unknown quantization mode {mode!r} (known: {', '.join(MODES)})")
    for module, name in bucket_spaces(model):
        space = _remove_fake_quant(module, name)
        if mode == "none":
            if hasattr(space, "hpk_quant"):
                del space.hpk_quant
            continue
        scale = int8_scale(space) if mode == "int8" else None
        space.copy_(dequantized(space, mode, scale))
        space.hpk_quant = (_DTYPES[mode], scale)
    return model


def quantization_of(model: nn.Module) -> dict[str, tuple[str, float | None]]:
    """{layer path.space name: (dtype, scale)} of every tagged bucket space (for reports)."""
    paths = {id(m): path for path, m in model.named_modules()}
    result = {}
    for module, name in bucket_spaces(model):
        tag = getattr(getattr(module, name), "hpk_quant", None)
        result[f"{paths[id(module)]}.{name}".lstrip(".")] = tag or ("float32", None)
    return result

"""Compress a trained dense model and win its accuracy back.

The recipe behind ``hashpack train --init``: :func:`compress_pretrained` runs
``compress(model, from_dense=True)``, which sets every bucket to the mean of the dense weights
hashed into it, then rescales each compressed layer so its weights keep the dense layer's RMS (a
bucket shared by n weights holds their mean, so each weight keeps only 1/n of its own value and the
layer's output shrinks by about √n: without BatchNorm to undo it, fine-tuning starts from a
network whose activations fade layer by layer). :func:`recalibrate_batchnorm` then re-estimates
BatchNorm statistics for the changed weights (the stored ones describe the dense model's
activations); :func:`finetune` trains the compressed model, by default distilling from the dense
original. Each step is also usable alone inside a training loop of your own.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from .data import Dataset
from .nn.compress import compress
from .nn.entries import CompressedLayer
from .nn.ratios import Compression
from .train import TrainResult, train


def _weight_of(layer: nn.Module) -> torch.Tensor | None:
    """The virtual weight of a compressed layer whose weight is linear in its ``space`` (else None)."""
    if hasattr(layer, "filters"):  # FreshNets, FSNet
        return layer.filters()
    linear_in_space = not hasattr(layer, "g")  # FunHashNN decodes its fetches with a nonlinear g
    if hasattr(layer, "virtual_tensors") and linear_in_space:  # HashedNets
        return layer.virtual_tensors()["weight"]
    return None


def _rms(tensor: torch.Tensor) -> float:
    return float(tensor.detach().float().pow(2).mean().sqrt())


@torch.no_grad()
def compress_pretrained(
    model: nn.Module,
    method: str = "hashed",
    compression: Compression = 1 / 8,
    *,
    seed: int = 0,
    **options: Any,
) -> nn.Module:
    """``compress(model, from_dense=True)``, then each compressed layer rescaled to its dense weight's RMS.

    Layers whose weight is not linear in their buckets (FunHashNN) keep the plain mean. Returns ``model``.
    """
    dense_rms = {
        path: _rms(module.weight)
        for path, module in model.named_modules()
        if isinstance(module, (nn.Linear, nn.Conv2d))
    }
    compress(model, method, compression, seed=seed, from_dense=True, **options)
    for path, layer in model.named_modules():
        if not isinstance(layer, CompressedLayer) or path not in dense_rms:
            continue
        weight = _weight_of(layer)
        if weight is None or _rms(weight) == 0:
            continue
        layer.space.mul_(dense_rms[path] / _rms(weight))
    return model


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches: Iterable[torch.Tensor] | torch.Tensor | np.ndarray,
                          batch_size: int = 256) -> int:  # fmt: skip
    """Reset every BatchNorm's running statistics and re-estimate them as a plain average over ``batches``.

    ``batches``: input tensors (e.g. ``(x for x, _ in loader)``), or one array/tensor split into
    ``batch_size`` chunks. Returns the number of samples seen (0 when the model has no BatchNorm).
    The model is left in eval mode.
    """
    norms = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    if not norms:
        model.eval()
        return 0
    if isinstance(batches, np.ndarray):
        batches = torch.from_numpy(batches)
    if isinstance(batches, torch.Tensor):
        batches = torch.split(batches, batch_size)
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch weighs the same
    model.train()
    seen = 0
    try:
        for inputs in batches:
            model(inputs)
            seen += len(inputs)
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        model.eval()
    return seen


def calibration_inputs(data: Dataset, seed: int, samples: int = 2048) -> np.ndarray:
    """A seeded sample of the training inputs for :func:`recalibrate_batchnorm`."""
    order = np.random.default_rng([seed, 0xB4]).permutation(len(data.x_train))[:samples]
    return data.x_train[np.sort(order)]


def finetune(
    model: nn.Module,
    data: Dataset,
    *,
    teacher: nn.Module | None = None,
    epochs: int = 5,
    lr: float = 1e-3,
    seed: int = 0,
    recalibrate: bool = True,
    schedule: str = "cosine",
    **train_options: Any,
) -> TrainResult:
    """Fine-tune a compressed ``model`` on ``data`` (distilling from ``teacher`` when given).

    BatchNorm statistics are recalibrated first (``recalibrate``). ``train_options`` are those of
    :func:`hashpack.train.train` (batch_size, weight_decay, val_fraction, temperature, alpha, ...).
    """
    if recalibrate:
        recalibrate_batchnorm(model, calibration_inputs(data, seed))
    return train(
        model, data, epochs=epochs, lr=lr, seed=seed, teacher=teacher, schedule=schedule, **train_options
    )


def frozen_copy(model: nn.Module) -> nn.Module:
    """A teacher: a copy of the dense ``model`` in eval mode with gradients off."""
    teacher = copy.deepcopy(model).eval()
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    return teacher

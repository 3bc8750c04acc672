"""Training loop shared by ``hashpack train``, ``hashpack demo`` and the benchmarks.

One loop for training from scratch and for fine-tuning: Adam (AdamW with weight decay), a
constant or cosine learning rate, an optional validation split carved from the training set
whose best epoch is the model returned, an optional teacher for distillation, and
DistributedDataParallel when started by ``torchrun``. Deterministic for a given seed (and world size).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from .data import Dataset
from .distill import distillation_loss
from .distributed import World

ProgressHook = Callable[[int, int, float], None]  # (step, total_steps, loss)
EpochHook = Callable[[int, int, dict[str, float]], None]  # (epoch, epochs, metrics)
SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class TrainResult:
    train_loss: float
    test_accuracy: float
    seconds: float
    epochs: int
    val_accuracy: float | None = None  # of the returned (best-validation) epoch
    best_epoch: int | None = None  # 1-based; None without a validation split


def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int = 512) -> float:
    """Top-1 accuracy of ``model`` on (x, y)."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            logits = model(torch.from_numpy(x[start : start + batch_size]))
            correct += int((logits.argmax(1).numpy() == y[start : start + batch_size]).sum())
    return correct / max(1, len(x))


def split_validation(data: Dataset, fraction: float, seed: int) -> tuple[Dataset, np.ndarray, np.ndarray]:
    """``data`` with ``fraction`` of its training set moved out as (x_val, y_val); the test set is untouched."""
    if not 0 <= fraction < 1:
        raise ValueError(f"validation fraction {fraction} must be in [0, 1)")
    count = round(len(data.x_train) * fraction)
    if count == 0:
        return data, data.x_train[:0], data.y_train[:0]
    order = np.random.default_rng([seed, 0x5A1]).permutation(len(data.x_train))
    train_idx, val_idx = np.sort(order[count:]), np.sort(order[:count])
    kept = Dataset(data.name, data.x_train[train_idx], data.y_train[train_idx], data.x_test, data.y_test)
    return kept, data.x_train[val_idx], data.y_train[val_idx]


def _learning_rate(schedule: str, lr: float, total: int) -> Callable[[int], float]:
    if schedule == "constant":
        return lambda step: 1.0
    if schedule == "cosine":  # from lr down to 0 over every step of the run
        return lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total) / max(1, total)))
    raise ValueError(f"unknown schedule {schedule!r} (known: {', '.join(SCHEDULES)})")


def train(
    model: nn.Module,
    data: Dataset,
    *,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    on_step: ProgressHook | None = None,
    schedule: str = "constant",
    weight_decay: float = 0.0,
    val_fraction: float = 0.0,
    teacher: nn.Module | None = None,
    temperature: float = 4.0,
    alpha: float = 0.9,
    on_epoch: EpochHook | None = None,
    world: World | None = None,
) -> TrainResult:
    """Train ``model`` on ``data`` (cross-entropy, or distillation from ``teacher``).

    With ``val_fraction`` > 0 the model is evaluated on that share of the training set after every
    epoch and left holding its best epoch's weights. ``world``: the process group (``torchrun``);
    each process trains on its shard and gradients are averaged by DistributedDataParallel.
    """
    world = world or World()
    torch.manual_seed(seed)
    generator = np.random.default_rng(seed)
    data, x_val, y_val = split_validation(data, val_fraction, seed)
    if teacher is not None:
        teacher.eval()
        for parameter in teacher.parameters():
            parameter.requires_grad_(False)
    trained = world.wrap(model)
    if weight_decay > 0:
        optimizer: torch.optim.Optimizer = torch.optim.AdamW(
            trained.parameters(), lr=lr, weight_decay=weight_decay
        )
    else:
        optimizer = torch.optim.Adam(trained.parameters(), lr=lr)
    x_train, y_train = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    steps_per_epoch = world.steps_per_epoch(len(x_train), batch_size)
    total = epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _learning_rate(schedule, lr, total))
    started = time.perf_counter()
    loss_value, best_val, best_epoch, best_state = float("nan"), -1.0, None, None
    step = 0
    for epoch in range(epochs):
        trained.train()
        order = world.epoch_order(len(x_train), epoch, seed, generator)
        running, correct, count = 0.0, 0, 0
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            inputs, targets = x_train[batch], y_train[batch]
            optimizer.zero_grad(set_to_none=True)
            logits = trained(inputs)
            if teacher is not None:
                with torch.no_grad():
                    teacher_logits = teacher(inputs)
                loss = distillation_loss(logits, teacher_logits, targets, temperature, alpha)
            else:
                loss = nn.functional.cross_entropy(logits, targets)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_item = loss.item()
            running += loss_item * len(batch)
            correct += int((logits.detach().argmax(1) == targets).sum())
            count += len(batch)
            step += 1
            if on_step:
                on_step(step, total, loss_item)
        loss_value = running / max(1, count)
        metrics: dict[str, float] = {"train_loss": loss_value, "train_accuracy": correct / max(1, count)}
        if len(x_val):
            metrics["val_accuracy"] = evaluate(model, x_val, y_val)
            if metrics["val_accuracy"] > best_val:
                best_val, best_epoch = metrics["val_accuracy"], epoch + 1
                best_state = copy.deepcopy(model.state_dict())
        if on_epoch:
            on_epoch(epoch + 1, epochs, metrics)
    if best_state is not None:
        model.load_state_dict(best_state)
    seconds = time.perf_counter() - started
    return TrainResult(
        loss_value,
        evaluate(model, data.x_test, data.y_test),
        seconds,
        epochs,
        best_val if best_epoch is not None else None,
        best_epoch,
    )


def describe(result: TrainResult) -> dict[str, Any]:
    """The result as plain JSON-ready fields."""
    return {
        "train_loss": result.train_loss,
        "test_accuracy": result.test_accuracy,
        "train_seconds": result.seconds,
        "val_accuracy": result.val_accuracy,
        "best_epoch": result.best_epoch,
    }

"""Training loop shared by ``hashpack train``, ``hashpack demo`` and the benchmarks."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .data import Dataset

ProgressHook = Callable[[int, int, float], None]  # (step, total_steps, loss)


@dataclass(frozen=True)
class TrainResult:
    train_loss: float
    test_accuracy: float
    seconds: float
    epochs: int


def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int = 512) -> float:
    """Top-1 accuracy of ``model`` on (x, y)."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            logits = model(torch.from_numpy(x[start : start + batch_size]))
            correct += int((logits.argmax(1).numpy() == y[start : start + batch_size]).sum())
    return correct / max(1, len(x))


def train(
    model: nn.Module,
    data: Dataset,
    *,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    on_step: ProgressHook | None = None,
) -> TrainResult:
    """Adam + cross-entropy on ``data``; deterministic for a given seed."""
    torch.manual_seed(seed)
    generator = np.random.default_rng(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    x_train, y_train = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    steps_per_epoch = (len(x_train) + batch_size - 1) // batch_size
    total = epochs * steps_per_epoch
    started = time.perf_counter()
    loss_value = float("nan")
    step = 0
    for _ in range(epochs):
        model.train()
        order = torch.from_numpy(generator.permutation(len(x_train)))
        running, count = 0.0, 0
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x_train[batch]), y_train[batch])
            loss.backward()
            optimizer.step()
            loss_item = loss.item()
            running += loss_item * len(batch)
            count += len(batch)
            step += 1
            if on_step:
                on_step(step, total, loss_item)
        loss_value = running / max(1, count)
    seconds = time.perf_counter() - started
    return TrainResult(loss_value, evaluate(model, data.x_test, data.y_test), seconds, epochs)

"""One short epoch on the digits really trains every method (held-out loss and accuracy improve).

Not a smoke test: the held-out cross-entropy must fall well below chance (ln 10 ≈ 2.30) and the
accuracy must rise far above 10%, for a conv net (LeNet-5) and an MLP, with every method.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from models import DIGITS_SHAPE, LeNet5, mlp, single_thread  # noqa: F401 (autouse fixture)
from sklearn import datasets

import hashpack
from hashpack.nn.quantize import fake_quantize, quantize

TRAIN = 1400
BATCH = 32
LR = 1e-2


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    data = datasets.load_digits()
    x = torch.tensor(data.data / 16.0, dtype=torch.float32).view(-1, *DIGITS_SHAPE)
    y = torch.tensor(data.target)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    return x[order], y[order]


def _held_out(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    model.eval()
    with torch.no_grad():
        logits = model(x[TRAIN:])
    return F.cross_entropy(logits, y[TRAIN:]).item(), (logits.argmax(1) == y[TRAIN:]).float().mean().item()


def _one_epoch(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    model.train()
    for start in range(0, TRAIN, BATCH):
        loss = F.cross_entropy(model(x[start : start + BATCH]), y[start : start + BATCH])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


CASES = [
    ("lenet5", "fresh", {}, None),
    ("lenet5", "fresh", {"allocation": "uniform"}, None),
    ("lenet5", "funhash", {}, None),
    ("lenet5", "funhash", {"hops": 2, "dual_space": True}, None),
    ("lenet5", "fsnet", {}, None),
    ("lenet5", "hashed", {}, None),
    ("mlp", "funhash", {}, None),
    ("mlp", "fsnet", {"fc": "fs"}, None),  # an MLP has no convolutions: FS on its Linear layers
    ("lenet5", "fresh", {}, "int8"),
    ("lenet5", "funhash", {}, "int8"),
    ("lenet5", "fsnet", {}, "fp16"),
]


@pytest.mark.parametrize(("arch", "method", "options", "fake"), CASES)
def test_one_epoch_lowers_the_loss(digits, arch: str, method: str, options: dict, fake: str | None) -> None:
    x, y = digits
    torch.manual_seed(0)
    model = LeNet5() if arch == "lenet5" else mlp()
    hashpack.compress(model, method, compression=1 / 4, from_dense=False, **options)
    if fake:
        fake_quantize(model, fake)
    loss_before, accuracy_before = _held_out(model, x, y)
    _one_epoch(model, x, y)
    if fake:
        quantize(model, fake)
    loss_after, accuracy_after = _held_out(model, x, y)
    assert loss_before > 2.2 and accuracy_before < 0.2  # an untrained model is at chance
    assert loss_after < 0.6 * loss_before, (loss_before, loss_after)
    assert accuracy_after > 0.5, accuracy_after

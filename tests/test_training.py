"""Hashed layers learn: a short training run lowers the loss and beats chance by far."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from click.testing import CliRunner
from torch import nn

import hashpack
from hashpack.cli import main
from hashpack.data import load_dataset
from hashpack.models import mlp
from hashpack.runtime import load
from hashpack.train import train


def _loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float(nn.functional.cross_entropy(model(x), y))


def test_one_epoch_on_digits_lowers_the_loss() -> None:
    data = load_dataset("digits")
    torch.manual_seed(0)
    model = hashpack.compress(mlp(data.input_shape, 10), compression=1 / 8, from_dense=False)
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    before = _loss(model.eval(), x, y)
    result = train(model, data, epochs=1, lr=1e-2, seed=0)
    after = _loss(model.eval(), x, y)
    # one epoch is 23 Adam steps; at lr 1e-2 the loss falls far below chance level (ln 10 = 2.30),
    # so this margin does not depend on the seed or the initialisation details
    assert after < 0.6 * before
    assert result.test_accuracy > 0.5  # chance is 0.1


def test_a_few_epochs_reach_useful_accuracy() -> None:
    data = load_dataset("digits")
    torch.manual_seed(0)
    model = hashpack.compress(mlp(data.input_shape, 10), compression=1 / 8, from_dense=False)
    assert train(model, data, epochs=8, seed=0).test_accuracy > 0.9


def test_datasets_have_the_documented_layout() -> None:
    data = load_dataset("digits")
    assert data.x_train.dtype.name == "float32" and data.x_train.shape[1:] == (1, 8, 8)
    assert data.x_train.min() >= 0.0 and data.x_train.max() <= 1.0
    assert data.num_classes == 10 and len(data.x_train) + len(data.x_test) == 1797
    mnist = load_dataset("mnist5k")
    assert mnist.x_train.shape[1:] == (1, 28, 28) and len(mnist.x_train) == 4000
    assert len(set(mnist.y_test.tolist())) == 10  # shuffled despite the class-sorted source


def test_fashion_mnist_from_the_debian_package() -> None:
    data = load_dataset("fashion")  # CI installs dataset-fashion-mnist (make system-deps)
    assert data.x_train.shape == (60000, 1, 28, 28) and data.x_test.shape == (10000, 1, 28, 28)
    assert data.num_classes == 10 and data.x_train.max() == 1.0


def test_user_npz_dataset_trains_through_the_cli(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((3, 6, 6)).astype(np.float32)
    labels = rng.integers(0, 3, 400)
    images = centers[labels] + 0.3 * rng.standard_normal((400, 6, 6)).astype(np.float32)
    path = tmp_path / "blobs.npz"
    np.savez(path, x_train=images[:300], y_train=labels[:300], x_test=images[300:], y_test=labels[300:])
    out = tmp_path / "blobs.hpk"
    result = CliRunner().invoke(
        main,
        ["train", "--dataset", str(path), "--epochs", "5", "--compression", "1/4", "-o", str(out), "--json"],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["test_accuracy"] > 0.9
    assert load(out).input_shape == (None, 1, 6, 6)

"""End-to-end flows behind the CLI: train → compress → pack, and the demo (train, pack, run, compare)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hashpack.runtime import load
from hashpack.runtime.summary import FLOAT32_BYTES

from .data import load_dataset
from .models import build_model
from .nn.compress import METHODS, compress
from .packer import pack
from .train import ProgressHook, evaluate, train


def build_compressed(
    arch: str, method: str, compression: float, input_shape: tuple[int, ...], num_classes: int, seed: int
):
    """A fresh ``arch`` model with its layers compressed by ``method`` ('dense' keeps it dense)."""
    torch.manual_seed(seed)
    model = build_model(arch, input_shape, num_classes)
    if method != "dense":
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r} (known: dense, {', '.join(METHODS)})")
        compress(model, method=method, compression=compression, seed=seed, from_dense=False)
    return model


def train_and_pack(
    *,
    arch: str,
    method: str,
    compression: float,
    dataset: str,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    golden: int,
    path: str | os.PathLike[str],
    on_step: ProgressHook | None = None,
) -> dict[str, Any]:
    data = load_dataset(dataset, seed=seed)
    model = build_compressed(arch, method, compression, data.input_shape, data.num_classes, seed)
    result = train(model, data, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, on_step=on_step)
    model.eval()
    hpk = pack(model, torch.from_numpy(data.x_test[: max(golden, 1)]), path, golden=golden)
    file_bytes = os.path.getsize(path)
    dense_bytes = sum(p.numel for p in hpk.params.values()) * FLOAT32_BYTES
    return {
        "path": str(path),
        "arch": arch,
        "method": method,
        "compression_target": compression,
        "dataset": data.name,
        "epochs": epochs,
        "seed": seed,
        "train_loss": result.train_loss,
        "test_accuracy": result.test_accuracy,
        "train_seconds": result.seconds,
        "file_bytes": file_bytes,
        "dense_bytes": dense_bytes,
        "compression": dense_bytes / file_bytes,
    }


def run_demo(out_dir: Path, epochs: int = 30, on_step: ProgressHook | None = None) -> dict[str, Any]:
    """Train HashedNets LeNet-300-100 at 1/8 on digits, pack, run in numpy, compare with torch."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "digits_mlp_hashed.hpk"
    data = load_dataset("digits", seed=0)
    model = build_compressed("mlp", "hashed", 1 / 8, data.input_shape, data.num_classes, seed=0)
    result = train(model, data, epochs=epochs, seed=0, on_step=on_step)
    model.eval()
    pack(model, torch.from_numpy(data.x_test[:8]), path)
    runtime_model = load(path)
    runtime_logits = runtime_model.run(data.x_test)
    with torch.no_grad():
        torch_logits = model(torch.from_numpy(data.x_test)).numpy()
    golden_inputs, golden_outputs = runtime_model.golden_inputs, runtime_model.golden_outputs
    golden_ok = bool(np.allclose(runtime_model.run(golden_inputs), golden_outputs, atol=1e-5, rtol=1e-5))
    dense_bytes = sum(p.numel for p in runtime_model.hpk.params.values()) * FLOAT32_BYTES
    return {
        "path": str(path),
        "epochs": epochs,
        "train_seconds": result.seconds,
        "torch_accuracy": evaluate(model, data.x_test, data.y_test),
        "runtime_accuracy": float((runtime_logits.argmax(1) == data.y_test).mean()),
        "max_abs_diff": float(np.abs(runtime_logits - torch_logits).max()),
        "file_bytes": os.path.getsize(path),
        "dense_bytes": dense_bytes,
        "golden_ok": golden_ok,
    }

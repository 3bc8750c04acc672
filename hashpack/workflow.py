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
from .nn.compress import METHODS, compress, method_options
from .nn.quantize import fake_quantize
from .nn.quantize import quantize as quantize_buckets
from .packer import pack
from .train import ProgressHook, evaluate, train


class ModelOptionError(ValueError):
    """The architecture, method or method options cannot build a model (a user error, caught early)."""


def method_options_from_flags(method: str, flags: dict[str, Any]) -> dict[str, Any]:
    """The CLI flags that were given (not None/False), checked against ``method``'s options."""
    given = {name: value for name, value in flags.items() if value is not None and value is not False}
    known = method_options(method) if method in METHODS else {}
    for name in given:
        if name not in known:
            flag = "--" + name.replace("_", "-")
            raise ValueError(
                f"{flag} does not apply to --method {method} (its options: {', '.join(known) or 'none'})"
            )
    return given


def build_compressed(
    arch: str,
    method: str,
    compression: float,
    input_shape: tuple[int, ...],
    num_classes: int,
    seed: int,
    options: dict[str, Any] | None = None,
) -> torch.nn.Module:
    """A fresh ``arch`` model with its layers compressed by ``method`` ('dense' keeps it dense).

    Raises ``ModelOptionError`` when ``compress`` rejects the method's options for this model.
    """
    torch.manual_seed(seed)
    model = build_model(arch, input_shape, num_classes)
    if method != "dense":
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r} (known: dense, {', '.join(METHODS)})")
        try:
            compress(
                model, method=method, compression=compression, seed=seed, from_dense=False, **(options or {})
            )
        except ValueError as exc:
            raise ModelOptionError(f"--method {method}: {exc}") from None
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
    golden: int | None,
    path: str | os.PathLike[str],
    on_step: ProgressHook | None = None,
    options: dict[str, Any] | None = None,
    quantize: str = "none",
    fake_quant: bool = False,
) -> dict[str, Any]:
    """Train ``arch`` compressed by ``method`` on ``dataset``, quantize its buckets, pack it to ``path``."""
    data = load_dataset(dataset, seed=seed)
    model = build_compressed(arch, method, compression, data.input_shape, data.num_classes, seed, options)
    if fake_quant:
        fake_quantize(model, quantize)  # before train() builds the optimizer
    result = train(model, data, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, on_step=on_step)
    model.eval()
    quantize_buckets(model, quantize)
    test_accuracy = evaluate(model, data.x_test, data.y_test) if quantize != "none" else result.test_accuracy
    hpk = pack(model, torch.from_numpy(data.x_test[:8]), path, golden=golden)
    file_bytes = os.path.getsize(path)
    dense_bytes = sum(p.numel for p in hpk.params.values()) * FLOAT32_BYTES
    return {
        "path": str(path),
        "arch": arch,
        "method": method,
        "options": dict(options or {}),
        "quantize": quantize,
        "fake_quant": fake_quant,
        "compression_target": compression,
        "dataset": data.name,
        "epochs": epochs,
        "seed": seed,
        "train_loss": result.train_loss,
        "test_accuracy": test_accuracy,
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

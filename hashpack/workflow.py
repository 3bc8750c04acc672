"""End-to-end flows behind the CLI: train → compress → pack, and the demo (train, pack, run, compare)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hashpack.runtime import load
from hashpack.runtime.summary import FLOAT32_BYTES

from .data import Dataset, load_dataset
from .distributed import World
from .finetuning import calibration_inputs, compress_pretrained, frozen_copy, recalibrate_batchnorm
from .model_source import build_from_factory, load_dense_weights
from .models import build_model
from .nn.compress import METHODS, compress, method_options
from .nn.quantize import fake_quantize
from .nn.quantize import quantize as quantize_buckets
from .nn.ratios import allocate_budget
from .packer import pack
from .train import EpochHook, ProgressHook, evaluate, train

BUDGETS = ("uniform", "power")


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


def adapt_channels(data: Dataset, model: torch.nn.Module) -> Dataset:
    """Repeat grayscale images to the channel count of ``model``'s first Conv2d (e.g. 3 for torchvision).

    The packed model then takes the repeated images too (its input shape is what training saw).
    """
    first = next((m for m in model.modules() if isinstance(m, torch.nn.Conv2d)), None)
    channels = data.input_shape[0]
    if first is None or first.in_channels == channels:
        return data
    if channels != 1:
        raise ModelOptionError(
            f"the model's first Conv2d takes {first.in_channels} channels, the dataset has {channels}"
        )

    def repeat(x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.repeat(x, first.in_channels, axis=1))

    return Dataset(data.name, repeat(data.x_train), data.y_train, repeat(data.x_test), data.y_test)


def layer_rule(
    compression: float,
    layer_compression: Sequence[tuple[str, float]] = (),
    keep_dense: Sequence[str] = (),
    budget: str = "uniform",
    model: torch.nn.Module | None = None,
) -> Callable[[str, torch.nn.Module], float | None]:
    """``--layer-compression``/``--keep-dense`` patterns over ``compression`` spent by ``budget``.

    Order: a --keep-dense match keeps the layer dense; else the first --layer-compression pattern
    that matches gives its ratio; else the budget policy: ``uniform`` (every layer ``compression``)
    or ``power`` (``allocate_budget``: the layers left spend ``compression`` of their weights, ∝ √n).
    """
    if budget not in BUDGETS:
        raise ModelOptionError(f"--budget {budget!r}: unknown policy (choose from {', '.join(BUDGETS)})")

    def explicit(path: str) -> tuple[bool, float | None]:
        if any(fnmatchcase(path, pattern) for pattern in keep_dense):
            return True, None
        for pattern, ratio in layer_compression:
            if fnmatchcase(path, pattern):
                return True, ratio
        return False, None

    allocated: dict[str, float] = {}
    if budget == "power" and model is not None:
        allocated = allocate_budget(model, compression, keep_dense=lambda path, module: explicit(path)[0])

    def rule(path: str, module: torch.nn.Module) -> float | None:
        matched, ratio = explicit(path)
        if matched:
            return ratio
        return allocated.get(path, compression)

    return rule


def _build_dense(
    arch: str, factory: str | None, kwargs: dict[str, Any] | None, data: Dataset, seed: int
) -> torch.nn.Module:
    torch.manual_seed(seed)
    if factory:
        return build_from_factory(factory, kwargs)
    return build_model(arch, data.input_shape, data.num_classes)


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
    model_factory: str | None = None,
    model_kwargs: dict[str, Any] | None = None,
    init: str | os.PathLike[str] | None = None,
    distill: bool | None = None,
    teacher_factory: str | None = None,
    teacher_kwargs: dict[str, Any] | None = None,
    teacher_weights: str | os.PathLike[str] | None = None,
    temperature: float = 4.0,
    alpha: float = 0.9,
    layer_compression: Sequence[tuple[str, float]] = (),
    keep_dense: Sequence[str] = (),
    budget: str = "uniform",
    schedule: str = "constant",
    weight_decay: float = 0.0,
    val_fraction: float = 0.0,
    on_epoch: EpochHook | None = None,
    world: World | None = None,
) -> dict[str, Any]:
    """Build the model (``arch`` or ``model_factory``), optionally from dense weights (``init``),
    compress it by ``method``, train or fine-tune it (distilling when asked), quantize its buckets
    and pack it to ``path``. Under ``torchrun`` only rank 0 writes (``world``).

    ``distill`` defaults to on with ``init`` (the dense model teaches) or with ``teacher_factory``.
    """
    world = world or World()
    distill = (init is not None or teacher_factory is not None) if distill is None else distill
    if distill and init is None and teacher_factory is None:
        raise ModelOptionError("--distill needs a teacher: --init (the dense model) or --teacher")
    if teacher_factory and not teacher_weights:
        raise ModelOptionError("--teacher needs --teacher-weights (a trained teacher's state dict)")
    data = load_dataset(dataset, seed=seed)
    model = _build_dense(arch, model_factory, model_kwargs, data, seed)
    data = adapt_channels(data, model)
    dense_accuracy = None
    if init is not None:
        load_dense_weights(model, init)
        dense_accuracy = evaluate(model, data.x_test, data.y_test)
    teacher = None
    if distill:
        if teacher_factory:
            teacher = build_from_factory(teacher_factory, teacher_kwargs)
            load_dense_weights(teacher, teacher_weights)  # type: ignore[arg-type]
            teacher = frozen_copy(teacher)
        else:
            teacher = frozen_copy(model)
    if method != "dense":
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r} (known: dense, {', '.join(METHODS)})")
        rule = layer_rule(compression, layer_compression, keep_dense, budget, model)
        try:
            if init is not None:  # buckets from the dense weights, rescaled to each layer's dense RMS
                compress_pretrained(model, method, rule, seed=seed, **(options or {}))
            else:
                compress(
                    model, method=method, compression=rule, seed=seed, from_dense=False, **(options or {})
                )
        except ValueError as exc:
            raise ModelOptionError(f"--method {method}: {exc}") from None
    initial_accuracy = None
    if init is not None:
        recalibrate_batchnorm(model, calibration_inputs(data, seed))
        initial_accuracy = evaluate(model, data.x_test, data.y_test)
    if fake_quant:
        fake_quantize(model, quantize)  # before train() builds the optimizer
    result = train(
        model, data, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, on_step=on_step,
        schedule=schedule, weight_decay=weight_decay, val_fraction=val_fraction, teacher=teacher,
        temperature=temperature, alpha=alpha, on_epoch=on_epoch, world=world,
    )  # fmt: skip
    model.eval()
    quantize_buckets(model, quantize)
    test_accuracy = evaluate(model, data.x_test, data.y_test) if quantize != "none" else result.test_accuracy
    report: dict[str, Any] = {
        "path": str(path),
        "arch": model_factory or arch,
        "method": method,
        "options": dict(options or {}),
        "quantize": quantize,
        "fake_quant": fake_quant,
        "compression_target": compression,
        "budget": budget,
        "dataset": data.name,
        "epochs": epochs,
        "seed": seed,
        "schedule": schedule,
        "weight_decay": weight_decay,
        "init": None if init is None else str(init),
        "distill": bool(distill),
        "dense_test_accuracy": dense_accuracy,
        "initial_test_accuracy": initial_accuracy,
        "train_loss": result.train_loss,
        "val_accuracy": result.val_accuracy,
        "best_epoch": result.best_epoch,
        "test_accuracy": test_accuracy,
        "train_seconds": result.seconds,
        "processes": world.size,
    }
    if world.is_main:
        hpk = pack(model, torch.from_numpy(data.x_test[:8]), path, golden=golden)
        report["file_bytes"] = os.path.getsize(path)
        report["dense_bytes"] = sum(p.numel for p in hpk.params.values()) * FLOAT32_BYTES
        report["compression"] = report["dense_bytes"] / report["file_bytes"]
    world.barrier()  # the other processes return once the file is in place
    return report


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

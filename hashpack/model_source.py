"""Bring your own model: build it from ``package.module:factory`` and load trained dense weights.

Weights come from a ``.safetensors`` file or a weights-only ``.pt`` state dict
(``torch.load(weights_only=True)``: tensors and plain containers, never pickled code). Every way a
weights file can fail to fit the model raises :class:`InitWeightsError` with one line naming the
file and the first offending key, so the CLI can print it and exit 2.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn


class InitWeightsError(ValueError):
    """A dense weights file is unreadable or does not fit the model (message names file and key)."""


class ModelFactoryError(ValueError):
    """``--model package.module:factory`` cannot be imported or called, or its kwargs are bad."""


def parse_model_kwargs(text: str | None) -> dict[str, Any]:
    """``--model-kwargs`` JSON → a dict of keyword arguments."""
    if not text:
        return {}
    try:
        kwargs = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelFactoryError(f"--model-kwargs {text!r}: not JSON ({exc.msg})") from None
    if not isinstance(kwargs, dict):
        raise ModelFactoryError(
            f"--model-kwargs {text!r}: expected a JSON object like '{{\"num_classes\": 10}}'"
        )
    return kwargs


def build_from_factory(spec: str, kwargs: Mapping[str, Any] | None = None) -> nn.Module:
    """Call ``package.module:factory(**kwargs)``; torchvision is imported through hashpack's shim."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ModelFactoryError(f"--model {spec!r}: expected package.module:factory (e.g. mypkg.nets:Net)")
    try:
        if module_name == "torchvision" or module_name.startswith("torchvision."):
            from .torchvision_compat import import_torchvision

            import_torchvision()  # the zoo loads even where torchvision's C++ extension does not
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelFactoryError(f"--model {spec!r}: cannot import {module_name} ({exc})") from None
    factory = module
    for part in attr.split("."):
        factory = getattr(factory, part, None)
        if factory is None:
            raise ModelFactoryError(f"--model {spec!r}: {module_name} has no attribute {attr!r}")
    if not callable(factory):
        raise ModelFactoryError(f"--model {spec!r}: {attr} is not callable")
    try:
        model = factory(**dict(kwargs or {}))
    except TypeError as exc:
        raise ModelFactoryError(f"--model {spec!r}: {exc}") from None
    if not isinstance(model, nn.Module):
        raise ModelFactoryError(f"--model {spec!r}: returned {type(model).__name__}, not a torch nn.Module")
    return model


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """A state dict from ``.safetensors`` or a weights-only torch file (no code is executed)."""
    path = Path(path)
    if not path.is_file():
        raise InitWeightsError(f"{path}: no such file")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(str(path))
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise InitWeightsError(f"{path}: not a readable safetensors file ({_first_line(exc)})") from None
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises pickle, zip and runtime errors for damaged files
            raise InitWeightsError(
                f"{path}: not a weights-only torch state dict ({_first_line(exc)}); "
                "save one with torch.save(model.state_dict(), path) or use .safetensors"
            ) from None
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise InitWeightsError(
            f"{path}: holds a {type(state).__name__}, not a state dict of tensors "
            "(save model.state_dict(), not the model)"
        )
    return dict(state)


def load_dense_weights(model: nn.Module, path: str | os.PathLike[str]) -> None:
    """Load ``path`` into ``model`` after checking every key and shape (one-line errors)."""
    state = read_state_dict(path)
    expected = model.state_dict()
    if state and all(k.startswith("module.") for k in state):  # saved from a DistributedDataParallel wrapper
        state = {k.removeprefix("module."): v for k, v in state.items()}
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (first: {missing[0]!r})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (first: {unexpected[0]!r})")
        raise InitWeightsError(
            f"{path}: keys do not match the model: {', '.join(parts)}; was it saved from this model?"
        )
    for key, tensor in expected.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise InitWeightsError(
                f"{path}: {key} has shape {list(state[key].shape)}, the model expects {list(tensor.shape)}"
            )
        if state[key].is_floating_point() != tensor.is_floating_point():
            raise InitWeightsError(f"{path}: {key} is {state[key].dtype}, the model expects {tensor.dtype}")
    model.load_state_dict(state)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__

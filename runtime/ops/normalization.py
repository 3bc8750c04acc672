"""BatchNorm (inference form) over dimension 1 of a rank-2 or rank-4 input."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._registry import Shape, per_sample, register, require_rank, show_shape

_SLOTS = ("weight", "bias", "running_mean", "running_var")


def _check(attrs: dict, params: dict) -> str | None:
    shapes = {slot: params[slot].shape for slot in _SLOTS}
    if len(set(shapes.values())) != 1:
        return "weight, bias, running_mean and running_var differ in shape: " + ", ".join(
            f"{slot} {list(shape)}" for slot, shape in shapes.items()
        )
    if attrs["eps"] < 0:
        return f"eps {attrs['eps']} is negative"
    return None


def _shape(shapes: list[Shape], attrs: dict[str, Any], params: dict) -> tuple[Shape, int]:
    (x,) = shapes
    require_rank(x, (2, 4))
    channels = params["weight"].shape[0]
    if x[1] != channels:
        raise ValueError(f"input {show_shape(x)} does not fit {channels} channels")
    return x, per_sample(x)


@register(
    "BatchNorm",
    params={slot: 1 for slot in _SLOTS},
    attrs={"eps": "float"},
    validate=_check,
    infer=_shape,
)
def batch_norm(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray,
    running_mean: np.ndarray,
    running_var: np.ndarray,
    eps: float,
) -> np.ndarray:
    if x.ndim not in (2, 4) or x.shape[1] != weight.shape[0]:
        raise ValueError(f"input {list(x.shape)} does not fit {weight.shape[0]} channels")
    shape = (1, -1) + (1,) * (x.ndim - 2)
    scale = weight / np.sqrt(running_var + np.float32(eps))
    return (x - running_mean.reshape(shape)) * scale.reshape(shape) + bias.reshape(shape)

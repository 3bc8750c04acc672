"""BatchNorm (inference form) over dimension 1 of a rank-2 or rank-4 input."""

from __future__ import annotations

import numpy as np

from ._registry import register


@register(
    "BatchNorm",
    params={"weight": 1, "bias": 1, "running_mean": 1, "running_var": 1},
    attrs={"eps": "float"},
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

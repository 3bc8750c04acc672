"""Linear: y = x W^T + b."""

from __future__ import annotations

import numpy as np

from ._registry import register


@register("Linear", params={"weight": 2}, optional_params={"bias": 1})
def linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    if x.ndim != 2 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"input {list(x.shape)} does not fit weight {list(weight.shape)}")
    y = x @ weight.T
    return y + bias if bias is not None else y

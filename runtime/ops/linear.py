"""Linear: y = x W^T + b over the last axis (rank 2, or rank > 2 for a transformer's [N, L, D])."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._registry import Shape, register, require_rank, show_shape


def _check(attrs: dict, params: dict) -> str | None:
    out_features = params["weight"].shape[0]
    if "bias" in params and params["bias"].shape != (out_features,):
        return f"bias shape {list(params['bias'].shape)} does not fit {out_features} output features"
    return None


def _shape(shapes: list[Shape], attrs: dict[str, Any], params: dict) -> tuple[Shape, int]:
    (x,) = shapes
    out_features, in_features = params["weight"].shape
    require_rank(x, tuple(range(2, 9)))
    if x[-1] != in_features:
        raise ValueError(f"input {show_shape(x)} does not fit weight {[out_features, in_features]}")
    rows = math.prod(x[1:-1])  # type: ignore[arg-type]
    return (*x[:-1], out_features), rows * out_features * in_features


@register("Linear", params={"weight": 2}, optional_params={"bias": 1}, validate=_check, infer=_shape)
def linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    if x.ndim < 2 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"input {list(x.shape)} does not fit weight {list(weight.shape)}")
    y = x @ weight.T
    return y + bias if bias is not None else y

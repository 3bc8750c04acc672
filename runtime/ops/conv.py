"""Conv2d with stride, padding, dilation and groups (depthwise included)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._registry import Shape, check_elements, register, show_shape
from ._windows import window_output, windows

_CONV_ATTRS = {"stride": "pair", "padding": "pair", "dilation": "pair", "groups": "int"}


def _check(attrs: dict, params: dict) -> str | None:
    weight = params["weight"].shape
    groups = attrs["groups"]
    if groups < 1 or weight[0] % groups:
        return f"groups={groups} does not divide {weight[0]} output channels"
    if "bias" in params and params["bias"].shape != (weight[0],):
        return f"bias shape {list(params['bias'].shape)} does not fit {weight[0]} output channels"
    if min(*attrs["stride"], *attrs["dilation"]) < 1:
        return f"stride {attrs['stride']} and dilation {attrs['dilation']} must be positive"
    return None


def _shape(shapes: list[Shape], attrs: dict[str, Any], params: dict) -> tuple[Shape, int]:
    (x,) = shapes
    out_channels, group_in, kh, kw = params["weight"].shape
    groups = attrs["groups"]
    if len(x) == 4 and x[1] != group_in * groups:
        raise ValueError(f"input {show_shape(x)} has {x[1]} channels, weight expects {group_in * groups}")
    h_out, w_out = window_output(x, (kh, kw), attrs["stride"], attrs["padding"], attrs["dilation"])
    check_elements(x[1] * kh * kw * h_out * w_out, "the unfolded input")  # type: ignore[operator]
    return (None, out_channels, h_out, w_out), out_channels * group_in * kh * kw * h_out * w_out


@register(
    "Conv2d",
    params={"weight": 4},
    optional_params={"bias": 1},
    attrs=_CONV_ATTRS,
    validate=_check,
    infer=_shape,
)
def conv2d(
    x: np.ndarray,
    weight: np.ndarray,
    stride: list[int],
    padding: list[int],
    dilation: list[int],
    groups: int,
    bias: np.ndarray | None = None,
) -> np.ndarray:
    out_channels, group_in, kh, kw = weight.shape
    n, channels = x.shape[0], x.shape[1] if x.ndim == 4 else -1
    if channels != group_in * groups:
        raise ValueError(f"input has {channels} channels, weight expects {group_in * groups}")
    view = windows(x, (kh, kw), tuple(stride), tuple(padding), tuple(dilation))  # N,C,Ho,Wo,kh,kw
    h_out, w_out = view.shape[2], view.shape[3]
    view = view.reshape(n, groups, group_in, h_out, w_out, kh, kw)
    kernels = weight.reshape(groups, out_channels // groups, group_in, kh, kw)
    y = np.einsum("ngchwij,gocij->ngohw", view, kernels, optimize=True).reshape(n, out_channels, h_out, w_out)
    if bias is not None:
        y = y + bias.reshape(1, -1, 1, 1)
    return np.ascontiguousarray(y, dtype=np.float32)

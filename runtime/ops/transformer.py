"""Transformer ops: LayerNorm, Gelu, MatMul, Attention, Constant, Embedding (docs/FORMAT.md §5).

The reference kernels of issue 15: plain numpy, accumulating in float64 where torch's own kernels
are more precise than a naive float32 sum (LayerNorm statistics, Gelu's erf).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import IdsOutOfRange
from ._registry import ANY_RANK, Shape, check_elements, per_sample, register, show_shape

# --------------------------------------------------------------------------------------- LayerNorm


def _check_layer_norm(attrs: dict, params: dict) -> str | None:
    if attrs["dims"] < 1:
        return f"dims {attrs['dims']} must be >= 1"
    if attrs["eps"] < 0:
        return f"eps {attrs['eps']} is negative"
    if ("weight" in params) != ("bias" in params):
        return "takes both weight and bias or neither"
    if "weight" in params:
        weight, bias = params["weight"].shape, params["bias"].shape
        if weight != bias or len(weight) != attrs["dims"]:
            return f"weight {list(weight)} and bias {list(bias)} must both have the {attrs['dims']} normalized dims"
    return None


def _layer_norm_shape(shapes: list[Shape], attrs: dict[str, Any], params: dict) -> tuple[Shape, int]:
    (x,) = shapes
    dims = attrs["dims"]
    if not 1 <= dims < len(x):
        raise ValueError(f"dims {dims} must be in [1, {len(x)}) for input {show_shape(x)}")
    if "weight" in params and tuple(x[-dims:]) != tuple(params["weight"].shape):
        raise ValueError(
            f"input {show_shape(x)} does not end with the weight's {list(params['weight'].shape)}"
        )
    return x, per_sample(x)


@register(
    "LayerNorm",
    optional_params={"weight": ANY_RANK, "bias": ANY_RANK},
    attrs={"dims": "int", "eps": "float"},
    validate=_check_layer_norm,
    infer=_layer_norm_shape,
)
def layer_norm(
    x: np.ndarray, dims: int, eps: float, weight: np.ndarray | None = None, bias: np.ndarray | None = None
) -> np.ndarray:
    """F.layer_norm over the last ``dims`` axes (biased variance, eps inside the square root)."""
    if not 1 <= dims < x.ndim:
        raise ValueError(f"dims {dims} invalid for rank {x.ndim}")
    axes = tuple(range(x.ndim - dims, x.ndim))
    wide = x.astype(np.float64)
    centered = wide - wide.mean(axis=axes, keepdims=True)
    variance = (centered * centered).mean(axis=axes, keepdims=True)
    y = (centered / np.sqrt(variance + np.float64(np.float32(eps)))).astype(np.float32)
    if weight is not None and bias is not None:
        y = y * weight + bias
    return y


# -------------------------------------------------------------------------------------------- Gelu

_ERF = np.frompyfunc(math.erf, 1, 1)


@register("Gelu", attrs={"approximate": "bool"}, infer=lambda s, a, p: (s[0], per_sample(s[0])))
def gelu(x: np.ndarray, approximate: bool) -> np.ndarray:
    """F.gelu: x·Φ(x) with the exact erf (approximate false) or torch's tanh form (true)."""
    wide = x.astype(np.float64)
    if approximate:
        inner = math.sqrt(2.0 / math.pi) * (wide + 0.044715 * wide**3)
        return (0.5 * wide * (1.0 + np.tanh(inner))).astype(np.float32)
    erf = _ERF(wide / math.sqrt(2.0)).astype(np.float64) if wide.size else wide
    return (0.5 * wide * (1.0 + erf)).astype(np.float32)


# ------------------------------------------------------------------------------------------ MatMul


def _matmul_shape(shapes: list[Shape], attrs: dict[str, Any], params: dict) -> tuple[Shape, int]:
    a, b = shapes
    if len(a) != len(b) or len(a) < 3:
        raise ValueError(f"inputs {show_shape(a)} and {show_shape(b)} must have equal rank >= 3")
    if a[1:-2] != b[1:-2] or a[-1] != b[-2]:
        raise ValueError(
            f"inputs {show_shape(a)} and {show_shape(b)} do not multiply ([…, M, K] @ […, K, P])"
        )
    out = (*a[:-1], b[-1])
    return out, per_sample(out) * a[-1]  # type: ignore[operator]


@register("MatMul", num_inputs=2, infer=_matmul_shape)
def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.ndim != b.ndim or a.ndim < 3 or a.shape[:-2] != b.shape[:-2] or a.shape[-1] != b.shape[-2]:
        raise ValueError(f"inputs {list(a.shape)} and {list(b.shape)} do not multiply")
    return np.matmul(a, b)


# --------------------------------------------------------------------------------------- Attention


def _attention_shape(shapes: list[Shape], attrs: dict[str, Any], params: dict) -> tuple[Shape, int]:
    q, k, v = shapes
    if not len(q) == len(k) == len(v) == 4:
        raise ValueError(f"q {show_shape(q)}, k {show_shape(k)}, v {show_shape(v)} must each be [N, H, L, E]")
    if not (q[1] == k[1] == v[1] and k[2] == v[2] and q[3] == k[3]):
        raise ValueError(
            f"q {show_shape(q)}, k {show_shape(k)}, v {show_shape(v)} do not fit [N,H,L,E], [N,H,S,E], [N,H,S,Ev]"
        )
    heads, length, source, width, value_width = q[1], q[2], k[2], q[3], v[3]
    check_elements(heads * length * source, "the attention weights")  # type: ignore[operator]
    out = (None, heads, length, value_width)
    return out, heads * length * source * (width + value_width)  # type: ignore[operator]


@register(
    "Attention",
    attrs={"scale": "float", "causal": "bool"},
    num_inputs=3,
    infer=_attention_shape,
)
def attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, scale: float, causal: bool) -> np.ndarray:
    """F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale): softmax(q kᵀ·scale) v."""
    scores = np.matmul(q, np.swapaxes(k, -1, -2)) * np.float32(scale)
    if causal:  # torch's mask: ones(L, S).tril(0), aligned top-left
        keep = np.tril(np.ones((q.shape[-2], k.shape[-2]), dtype=bool))
        scores = np.where(keep, scores, np.float32(-np.inf))
    scores = scores - scores.max(axis=-1, keepdims=True)
    weights = np.exp(scores)
    weights /= weights.sum(axis=-1, keepdims=True)
    return np.matmul(weights.astype(np.float32), v)


# ---------------------------------------------------------------------------------------- Constant


def _check_constant(attrs: dict, params: dict) -> str | None:
    if len(params["value"].shape) > 7:
        return f"value {list(params['value'].shape)} has more than 7 dimensions (the batch is added)"
    return None


def _constant_shape(shapes: list[Shape], attrs: dict[str, Any], params: dict) -> tuple[Shape, int]:
    out = (None, *params["value"].shape)
    return out, per_sample(out)


@register("Constant", params={"value": ANY_RANK}, validate=_check_constant, infer=_constant_shape)
def constant(x: np.ndarray, value: np.ndarray) -> np.ndarray:
    """The param repeated over x's batch (class tokens, positional embeddings)."""
    return np.ascontiguousarray(np.broadcast_to(value, (x.shape[0], *value.shape)))


# --------------------------------------------------------------------------------------- Embedding


def _check_embedding(attrs: dict, params: dict) -> str | None:
    rows = params["weight"].shape[0]
    if "padding_idx" in attrs and not 0 <= attrs["padding_idx"] < rows:
        return f"padding_idx {attrs['padding_idx']} is not a row of the [{rows}, …] table"
    return None


def _embedding_shape(shapes: list[Shape], attrs: dict[str, Any], params: dict) -> tuple[Shape, int]:
    (ids,) = shapes
    if len(ids) > 7:
        raise ValueError(f"ids {show_shape(ids)} have more than 7 dimensions (the output adds one)")
    out = (*ids, params["weight"].shape[1])
    return out, per_sample(out)


@register(
    "Embedding",
    params={"weight": 2},
    optional_attrs={"padding_idx": "int"},
    ids_input=True,
    validate=_check_embedding,
    infer=_embedding_shape,
)
def embedding(ids: np.ndarray, weight: np.ndarray, padding_idx: int | None = None) -> np.ndarray:
    """F.embedding(ids, weight); the padding_idx row reads as zero (a hashed table cannot store it)."""
    rows = weight.shape[0]
    if ids.size and (ids.min() < 0 or ids.max() >= rows):
        bad = ids[(ids < 0) | (ids >= rows)].flat[0]
        raise IdsOutOfRange(f"token id {int(bad)} is outside the table's [0, {rows}) rows")
    out = weight[ids.astype(np.intp)]
    if padding_idx is not None:
        out[ids == padding_idx] = 0
    return out

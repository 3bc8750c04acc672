"""A PyTorch evaluator of .hpk graphs: the independent reference ``hashpack validate`` compares against.

Why not the numpy runtime: a backend cannot be its own referee. ``to_torch`` regenerates every
weight from the buckets and seeds with the torch hp32 of ``hashpack.nn.hashing`` (not the numpy
hash) following docs/FORMAT.md §3-§4, and runs the graph with ``torch.nn.functional`` (§5, the
operations the ops are defined to mean). It shares only the parsed ``HpkFile`` with the numpy
runtime, so when the two agree on inputs that were never recorded, both decoders are right.

Every scheme the runtime knows must have a decoder here (the test suite checks it); a scheme
without one raises ``TorchEvalError`` naming it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hashpack.nn.hashing import hash_indices
from hashpack.runtime import HpkFile, Node, Param, read_hpk

__all__ = ["DECODERS", "OPS", "TorchEvalError", "TorchGraph", "decode_param", "space_values", "to_torch"]

SIGN_SHIFT = 31
_CHUNK = 1 << 20  # virtual elements hashed at once: bounds the int64 temporaries to ~8 MiB each


class TorchEvalError(ValueError):
    """The graph uses a scheme or op this evaluator does not implement (the message names it)."""


Decoder = Callable[[HpkFile, Param], torch.Tensor]
DECODERS: dict[str, Decoder] = {}


def _scheme(name: str) -> Callable[[Decoder], Decoder]:
    def decorate(decoder: Decoder) -> Decoder:
        DECODERS[name] = decoder
        return decoder

    return decorate


def space_values(hpk: HpkFile, name: str) -> torch.Tensor:
    """A space's bucket values as float32 (FORMAT.md §3: float16 widened, int8 times its scale)."""
    space = hpk.spaces[name]
    raw = torch.from_numpy(np.array(hpk.tensors[space.tensor]))
    if space.dtype == "int8":
        return raw.to(torch.float32) * torch.tensor(space.scale, dtype=torch.float32)
    return raw.to(torch.float32)


def _hashes(start: int, stop: int, seed: int, function: int = 0) -> torch.Tensor:
    """hp32 h(i) (int64 in [0, 2^32)) for flat indices start..stop-1."""
    return hash_indices(torch.arange(start, stop, dtype=torch.int64), seed, function)


def _signed(values: torch.Tensor, index: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
    picked = values[index]
    return torch.where(negative.bool(), -picked, picked)


@_scheme("dense")
def _dense(hpk: HpkFile, param: Param) -> torch.Tensor:
    return torch.from_numpy(np.array(hpk.tensors[param.spec["tensor"]], dtype=np.float32))


@_scheme("hashed")
def _hashed(hpk: HpkFile, param: Param) -> torch.Tensor:
    """weight(i) = sign(i) · space[h(i) mod K], hp32 with f = 0 (§1, §4)."""
    values = space_values(hpk, param.spec["space"])
    out = torch.empty(param.numel, dtype=torch.float32)
    for start in range(0, param.numel, _CHUNK):
        stop = min(param.numel, start + _CHUNK)
        h = _hashes(start, stop, param.spec["seed"])
        out[start:stop] = _signed(values, h % values.shape[0], h >> SIGN_SHIFT)
    return out.view(param.shape)


def _dct_matrix(n: int) -> torch.Tensor:
    """Orthonormal DCT-II (float64): T[u, x] = a(u) cos(pi (2x + 1) u / (2n))."""
    u = torch.arange(n, dtype=torch.float64)[:, None]
    x = torch.arange(n, dtype=torch.float64)[None, :]
    scale = torch.where(u == 0, math.sqrt(1.0 / n), math.sqrt(2.0 / n))
    return scale * torch.cos(math.pi * (2.0 * x + 1.0) * u / (2.0 * n))


@_scheme("fresh")
def _fresh(hpk: HpkFile, param: Param) -> torch.Tensor:
    """FreshNets: coefficient (o, c, u, v) = sign(i) · space[offset_b + h(i) mod K_b] in band
    b = min(u + v, nb - 1) (0 when K_b = 0); each filter is the inverse 2-D DCT of its coefficients."""
    out_channels, in_channels, kh, kw = param.shape
    sizes = torch.tensor(param.spec["bands"], dtype=torch.int64)
    offsets = torch.cumsum(sizes, 0) - sizes
    u = torch.arange(kh)[:, None]
    v = torch.arange(kw)[None, :]
    band = torch.clamp(u + v, max=len(sizes) - 1).reshape(-1)  # per tap of a filter
    modulus, offset, live = sizes[band].clamp(min=1), offsets[band], sizes[band] > 0
    values = space_values(hpk, param.spec["space"])
    # Inverse DCT of a flat filter: coefficients @ kron(T_kh, T_kw), built in float64, rounded once.
    basis = torch.kron(_dct_matrix(kh), _dct_matrix(kw)).to(torch.float32)
    taps, filters = kh * kw, out_channels * in_channels
    h = _hashes(0, filters * taps, param.spec["seed"]).view(filters, taps)
    bucket = torch.where(live, offset + h % modulus, 0)
    coefficients = torch.where(live, _signed(values, bucket, h >> SIGN_SHIFT), 0.0)
    return (coefficients @ basis).view(param.shape)


@_scheme("fsnet")
def _fsnet(hpk: HpkFile, param: Param) -> torch.Tensor:
    """FSNet: element j of filter o is summary[(o · stride + j) mod L] (no hash)."""
    values = space_values(hpk, param.spec["space"])
    filters = param.shape[0]
    length = param.numel // filters
    starts = torch.arange(filters, dtype=torch.int64)[:, None] * param.spec["stride"]
    positions = (starts + torch.arange(length, dtype=torch.int64)[None, :]) % values.shape[0]
    return values[positions].reshape(param.shape)


@_scheme("funhash")
def _funhash(hpk: HpkFile, param: Param) -> torch.Tensor:
    """FunHashNN: weight(i) = g(z), z = U signed fetches (hp32 f = u, space u mod S), then with two
    hops U more at h_{U+u}(b_u) mod K with sign s_u · s'_u; g = MLP D → H → 1 (ReLU) or identity."""
    spec = param.spec
    hashes, hops, hidden, seed = spec["hashes"], spec["hops"], spec["hidden"], spec["seed"]
    spaces = [space_values(hpk, name) for name in spec["spaces"]]
    inputs = hashes * hops
    if hidden:
        g = space_values(hpk, spec["g"])
        w1 = g[: inputs * hidden].view(hidden, inputs)
        b1 = g[inputs * hidden : inputs * hidden + hidden]
        w2 = g[inputs * hidden + hidden : inputs * hidden + 2 * hidden]
        b2 = g[inputs * hidden + 2 * hidden :]
    second_hop = []
    for u in range(hashes if hops == 2 else 0):
        size = spaces[u % len(spaces)].shape[0]
        h2 = _hashes(0, size, seed, hashes + u)  # hop 2 hashes bucket indices, so K entries suffice
        second_hop.append((h2 % size, h2 >> SIGN_SHIFT))
    out = torch.empty(param.numel, dtype=torch.float32)
    for start in range(0, param.numel, _CHUNK):
        stop = min(param.numel, start + _CHUNK)
        z = torch.empty(stop - start, inputs, dtype=torch.float32)
        for u in range(hashes):
            values = spaces[u % len(spaces)]
            h = _hashes(start, stop, seed, u)
            bucket, negative = h % values.shape[0], h >> SIGN_SHIFT
            z[:, u] = _signed(values, bucket, negative)
            if hops == 2:
                table, table_negative = second_hop[u]
                z[:, hashes + u] = _signed(values, table[bucket], negative ^ table_negative[bucket])
        if hidden:
            out[start:stop] = F.relu(z @ w1.T + b1) @ w2 + b2[0]
        else:
            out[start:stop] = z[:, 0]
    return out.view(param.shape)


def decode_param(hpk: HpkFile, name: str) -> torch.Tensor:
    """The float32 virtual tensor of param ``name``, regenerated in torch."""
    param = hpk.params[name]
    decoder = DECODERS.get(param.scheme)
    if decoder is None:
        raise TorchEvalError(
            f"{hpk.source}: param {name!r}: scheme {param.scheme!r} has no torch decoder "
            f"(known: {', '.join(DECODERS)})"
        )
    return decoder(hpk, param)


# ------------------------------------------------------------------------------------------- ops

# (inputs, params by slot, attrs) -> output; each is the torch operation the op is defined to mean.
Op = Callable[[list[torch.Tensor], dict[str, torch.Tensor], dict], torch.Tensor]

OPS: dict[str, Op] = {
    "Linear": lambda xs, p, a: F.linear(xs[0], p["weight"], p.get("bias")),
    "Conv2d": lambda xs, p, a: F.conv2d(
        xs[0], p["weight"], p.get("bias"), a["stride"], a["padding"], a["dilation"], a["groups"]
    ),
    "BatchNorm": lambda xs, p, a: F.batch_norm(
        xs[0], p["running_mean"], p["running_var"], p["weight"], p["bias"], training=False, eps=a["eps"]
    ),
    "Relu": lambda xs, p, a: F.relu(xs[0]),
    "Relu6": lambda xs, p, a: F.relu6(xs[0]),
    "Sigmoid": lambda xs, p, a: torch.sigmoid(xs[0]),
    "Tanh": lambda xs, p, a: torch.tanh(xs[0]),
    "Hardswish": lambda xs, p, a: F.hardswish(xs[0]),
    "Hardsigmoid": lambda xs, p, a: F.hardsigmoid(xs[0]),
    "Silu": lambda xs, p, a: F.silu(xs[0]),
    "MaxPool2d": lambda xs, p, a: F.max_pool2d(
        xs[0], a["kernel"], a["stride"], a["padding"], a["dilation"], ceil_mode=a.get("ceil_mode", False)
    ),
    "AvgPool2d": lambda xs, p, a: F.avg_pool2d(
        xs[0],
        a["kernel"],
        a["stride"],
        a["padding"],
        ceil_mode=a.get("ceil_mode", False),
        count_include_pad=a["count_include_pad"],
    ),
    "AdaptiveAvgPool2d": lambda xs, p, a: F.adaptive_avg_pool2d(xs[0], a["output"]),
    "AdaptiveMaxPool2d": lambda xs, p, a: F.adaptive_max_pool2d(xs[0], a["output"]),
    "GlobalAvgPool": lambda xs, p, a: F.adaptive_avg_pool2d(xs[0], 1),
    "Flatten": lambda xs, p, a: torch.flatten(xs[0], a["start_dim"]),
    "Reshape": lambda xs, p, a: xs[0].reshape(xs[0].shape[0], *a["shape"]),
    "Transpose": lambda xs, p, a: xs[0].permute(a["perm"]),
    "Slice": lambda xs, p, a: xs[0].narrow(a["axis"], a["start"], a["end"] - a["start"]),
    "Mean": lambda xs, p, a: xs[0].mean(a["dims"], keepdim=a["keepdim"]),
    "Add": lambda xs, p, a: xs[0] + xs[1],
    "Mul": lambda xs, p, a: xs[0] * xs[1],
    "Concat": lambda xs, p, a: torch.cat(xs, dim=a["axis"]),
    "Softmax": lambda xs, p, a: F.softmax(xs[0], dim=a["axis"]),
    "LayerNorm": lambda xs, p, a: F.layer_norm(
        xs[0], xs[0].shape[-a["dims"] :], p.get("weight"), p.get("bias"), a["eps"]
    ),
    "Gelu": lambda xs, p, a: F.gelu(xs[0], approximate="tanh" if a["approximate"] else "none"),
    "MatMul": lambda xs, p, a: torch.matmul(xs[0], xs[1]),
    "Attention": lambda xs, p, a: F.scaled_dot_product_attention(
        xs[0], xs[1], xs[2], is_causal=a["causal"], scale=a["scale"]
    ),
    "Constant": lambda xs, p, a: p["value"].expand(xs[0].shape[0], *p["value"].shape),
    "Embedding": lambda xs, p, a: _embedding(xs[0], p["weight"], a.get("padding_idx")),
}


def _embedding(ids: torch.Tensor, weight: torch.Tensor, padding_idx: int | None) -> torch.Tensor:
    """F.embedding; the padding_idx row reads as zero (FORMAT.md §5)."""
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= weight.shape[0]):
        raise ValueError(f"token ids outside the table's [0, {weight.shape[0]}) rows")
    out = F.embedding(ids.long(), weight)
    if padding_idx is not None:
        out = out.masked_fill((ids == padding_idx).unsqueeze(-1), 0.0)
    return out


class TorchGraph(nn.Module):
    """The .hpk graph as a torch module; weights are regenerated once, at construction."""

    def __init__(self, hpk: HpkFile) -> None:
        super().__init__()
        for node in hpk.nodes:
            if node.op not in OPS:
                raise TorchEvalError(
                    f"{hpk.source}: node {node.name!r}: op {node.op!r} has no torch evaluator"
                )
        self.nodes: list[Node] = list(hpk.nodes)
        self.input_name, self.output_name = hpk.input.name, hpk.output.name
        self.input_shape = hpk.input.shape
        self.input_dtype = torch.int64 if hpk.input.dtype == "int32" else torch.float32
        with torch.no_grad():
            self.weights = {name: decode_param(hpk, name) for name in hpk.params}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = {self.input_name: x}
        for node in self.nodes:
            params = {slot: self.weights[name] for slot, name in node.params.items()}
            values[node.outputs[0]] = OPS[node.op]([values[i] for i in node.inputs], params, node.attrs)
        return values[self.output_name]

    def run(self, x: np.ndarray) -> np.ndarray:
        """numpy in, numpy out (float32), like ``hashpack.runtime.Model.run``."""
        with torch.no_grad():
            return self(torch.from_numpy(np.array(x)).to(self.input_dtype)).numpy()


def to_torch(source: HpkFile | str | os.PathLike[str]) -> TorchGraph:
    """A torch module computing ``source`` (a read ``HpkFile`` or a path, validated on read)."""
    hpk = source if isinstance(source, HpkFile) else read_hpk(source)
    return TorchGraph(hpk).eval()

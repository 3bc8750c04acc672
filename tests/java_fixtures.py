"""Write the fixtures the Java decoder's tests check against (android_demo/hashpack-java).

Usage: ``python tests/java_fixtures.py OUT_DIR``. Torch models are compressed (every method:
hashed, fresh, funhash, fsnet) and packed into ``.hpk`` files, with float32, float16 and int8
spaces; for each, the numpy runtime (``hashpack.runtime``) supplies the reference the Java side
must match: every decompressed param (raw float32) and the outputs for a fixed input batch
(compared within 1e-5). Everything is deterministic (fixed seeds).

Params are compared bit for bit wherever docs/FORMAT.md makes them exact (``dense``, ``hashed``,
``fsnet``, ``funhash`` with g = identity). Where it leaves the float32 summation order free
(``fresh``'s inverse DCT, ``funhash``'s MLP g), the exact intermediate is written and compared bit
for bit instead (``fresh``: the DCT coefficients C; ``funhash``: the fetched values z), and the
weights are compared within the rounding bound of the dot products.

Files written, all raw arrays little-endian float32 (or uint32 where noted):

- ``manifest.json``: ``{"models": [...], "f16_table": ..., "fresh_bases": ..., "parity": ...}``; per
  model its files, input shape and batch, and ``params``: name, scheme, shape, offset and count (in
  floats) into the weights file, ``exact`` (false where the summation order is free) and for those
  ``intermediate``: offset and count into the intermediates file (C, or z as [numel, D] row-major);
- ``<model>.hpk``, ``<model>.weights.bin``, ``<model>.intermediates.bin``, ``<model>.input.bin``,
  ``<model>.output.bin``;
- ``op_cases/``: every case of tests/zoo_op_cases.py and tests/tx_op_cases.py (the zoo and
  transformer ops, one tiny graph each, golden outputs from torch) as ``<id>.hpk`` with a random
  input batch and the numpy runtime's outputs (``<id>.input.bin``, ``<id>.output.bin``; the input
  is int32 for a case of token ids, ``"dtype": "int32"``); listed under ``op_cases`` in the manifest;
- ``from_hpk/``: for every scheme × architecture case of tests/test_tflite_export.py and a grouped
  convolution, the .hpk, its once .tflite, Python's ``materialize_from_hpk`` bytes and the numpy
  params its recipes name, plus damaged slot tables Python refuses (``from_hpk`` in the manifest);
- ``fresh_bases.bin``: numpy's inverse-DCT basis M (float32) for every kernel size in
  ``fresh_bases`` (concatenated), which Java must compute bit for bit;
- ``f16_table.bin``: the float32 bits (uint32) of every float16 bit pattern 0..65535, converted by
  numpy (the Java half-to-float conversion is checked against all of them);
- ``parity/``: damaged copies of the fixtures (random edits of the metadata or the tensor table,
  targeted edits of every field of the fresh, funhash and fsnet schemes and of every attr of the
  zoo blocks' pooling and layout nodes, re-signed so the edit, not the checksum, decides) with the Python reader's verdict in ``parity.json``, and for files it
  accepts, the numpy outputs for a random batch: both readers must accept the same files and compute
  the same outputs.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import struct
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import tx_op_cases  # tests/ (this script's directory)
from torch import nn
from zoo_op_cases import CASES, case_hpk, case_input  # tests/ (this script's directory)

import hashpack
from hashpack.nn.layers import HashedModule
from hashpack.nn.quantize import quantize
from hashpack.runtime import HpkFormatError, Model, load, parse_hpk, read_hpk, write_hpk
from hashpack.runtime.hashing import SIGN_BIT, hash_range
from hashpack.runtime.schemes import fresh as fresh_scheme
from hashpack.runtime.schemes import funhash as funhash_scheme

BATCH = 3
PARITY_BASES = (
    "mlp",
    "lenet5",
    "mixed",
    "rescnn",
    "lenet5_int8",
    "lenet5_fresh",
    "mlp_funhash_hops_int8",
    "lenet5_funhash",
    "rescnn_fsnet_fp16",
    "zoo_blocks",
)
PARITY_PER_BASE = 50
PARITY_MAX_VIRTUAL = 20_000_000  # accepted files above this are not run (too slow for a test)
# values the parity edits put into the JSON trees: wrong types, edge integers, near-miss strings
_SCALARS = (None, True, False, 0.5, -0.0, 1e39, 1e-45, 1e300)
_INTEGERS = (0, 1, -1, 2, 3, 7, 16, 17, 64, 256, 257, 2**30, 2**31 - 1, 2**31, 2**32, 2**63, 10**29, -(2**31))
_STRINGS = (
    "",
    "x",
    "Relu",
    "Gelu",
    "hashed",
    "dense",
    "fresh",
    "funhash",
    "fsnet",
    "float16",
    "int8",
    "F16",
    "I8",
    "golden/inputs",
    "fc1",
)
_STRUCTURES = ([], {}, [0, 1], [None, 10], [2, 2], ["fc1"], ["fc1", "fc1"], [1, 0, 3])
PALETTE: tuple[Any, ...] = _SCALARS + _INTEGERS + _STRINGS + _STRUCTURES


class MLP(nn.Module):
    """Hashed Linear layers with a dense last layer."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(64, 300)
        self.fc2 = nn.Linear(300, 100)
        self.fc3 = nn.Linear(100, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class LeNet5(nn.Module):
    """LeNet-5 with BatchNorm, a depthwise residual conv, view() and tanh."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(1, 6, 5, padding=2)
        self.b1 = nn.BatchNorm2d(6)
        self.pool = nn.MaxPool2d(2)
        self.c2 = nn.Conv2d(6, 16, 5)
        self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.b1(self.c1(x))))
        x = self.pool(F.relu(self.c2(x)))
        x = x + self.dw(x)
        x = x.view(x.size(0), -1)
        x = F.relu(self.fc1(x))
        x = torch.tanh(self.fc2(x))
        return self.fc3(x)


class ResCNN(nn.Module):
    """A small residual CNN on a non-square input: BatchNorm, depthwise, dilated, strided,
    grouped and asymmetric convs, ReLU6, global average pooling, BatchNorm1d."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.pw = nn.Conv2d(16, 16, 1)  # kept dense
        self.bn3 = nn.BatchNorm2d(16)
        self.down = nn.Conv2d(16, 32, 3, stride=2, padding=2, dilation=2)
        self.grouped = nn.Conv2d(32, 32, 3, padding=1, groups=4)
        self.asym = nn.Conv2d(32, 24, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(24, 10)
        self.bn_fc = nn.BatchNorm1d(10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.stem(x)))
        y = F.relu6(self.bn2(self.dw(x)))
        y = self.bn3(self.pw(y))
        x = F.relu(x + y)
        x = F.relu(self.down(x))
        x = x + self.grouped(x)
        x = F.relu(self.asym(x))
        x = torch.flatten(self.pool(x), 1)
        return self.bn_fc(self.fc(x))


class Mixed(nn.Module):
    """AvgPool2d (both count_include_pad), dilated MaxPool2d, Sigmoid, Concat, broadcast Add,
    Reshape with -1, Softmax over an inner axis and over the classes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.avg_excl = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.avg_incl = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=True)
        self.maxp = nn.MaxPool2d(3, stride=2, padding=1)
        self.maxd = nn.MaxPool2d(2, stride=1, padding=1, dilation=2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(24 * 8 * 8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        a = torch.sigmoid(self.avg_excl(x))
        b = torch.tanh(self.avg_incl(x))
        c = self.maxp(x)
        h = torch.cat([a, b, c], dim=1)
        h = h + self.gap(h)
        h = self.maxd(h)
        s = torch.softmax(h.reshape(h.size(0), 24, -1), dim=-1)
        s = s.reshape(s.size(0), -1)
        return F.softmax(self.fc(s), dim=1)


class ZooBlocks(nn.Module):
    """The torchvision mobile zoo's constructs on a small odd-sized input: Hardswish, ceil-mode max
    and average pooling, squeeze-and-excitation (functional adaptive pooling, SiLU, Hardsigmoid,
    broadcast mul), chunk, channel shuffle (size arithmetic, view, transpose, contiguous), adaptive
    average pooling to a larger size then adaptive max pooling, x.mean, Dropout (dropped)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.se_reduce = nn.Conv2d(8, 4, 1)
        self.se_expand = nn.Conv2d(4, 8, 1)
        self.branch = nn.Conv2d(4, 4, 3, padding=1, groups=4)
        self.avg_incl = nn.AvgPool2d(3, 2, padding=1, ceil_mode=True, count_include_pad=True)
        self.avg_excl = nn.AvgPool2d(3, 2, padding=1, ceil_mode=True, count_include_pad=False)
        self.grow = nn.AdaptiveAvgPool2d((5, 7))
        self.shrink = nn.AdaptiveMaxPool2d((2, 3))
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(8 * 2 * 3 + 8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.hardswish(self.bn(self.stem(x))))
        s = F.adaptive_avg_pool2d(x, 1)
        x = x * F.hardsigmoid(self.se_expand(F.silu(self.se_reduce(s))))
        a, b = x.chunk(2, dim=1)
        x = torch.cat([a, F.silu(self.branch(b))], dim=1)
        n, c, h, w = x.size()
        x = x.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, c, h, w)
        x = self.avg_incl(x) + self.avg_excl(x).mean([2, 3], keepdim=True)
        m = x.mean([2, 3])
        x = self.shrink(self.grow(x))
        return self.fc(self.drop(torch.cat([torch.flatten(x, 1), m], dim=1)))


class TextClassifier(nn.Module):
    """Issue 15's text classifier, small: Embedding (padding_idx 0) + 2-layer TransformerEncoder
    (batch_first, GELU feed-forward) + mean over the sequence + Linear."""

    def __init__(self, vocab: int = 300, dim: int = 32) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim, padding_idx=0)
        layer = nn.TransformerEncoderLayer(
            dim, 4, dim_feedforward=64, dropout=0.0, activation="gelu", batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.fc = nn.Linear(dim, 5)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.fc(self.encoder(self.embed(ids)).mean(1))


class EmbeddingMeanHead(nn.Module):
    """An embedding-bag style recommender head: Embedding + mean over the items + Linear, the items
    first mixed by a hand-written self-attention (``e @ eᵀ``, softmax, ``@ e``: MatMul and Softmax)."""

    def __init__(self, vocab: int = 500, dim: int = 16) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.fc = nn.Linear(dim, 4)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        e = self.embed(ids)
        mixed = torch.softmax(e @ e.transpose(1, 2) * 0.25, dim=-1) @ e
        return self.fc((e + mixed).mean(1))


def _tiny_vit() -> nn.Module:
    """torchvision's VisionTransformer at issue 15's small configuration (image 32, patch 8, 2 layers,
    2 heads, hidden 64, mlp 128)."""
    from hashpack.torchvision_compat import torchvision_models

    vit = torchvision_models().vision_transformer.VisionTransformer
    model = vit(
        image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=64, mlp_dim=128, num_classes=10
    )
    # torchvision zero-initialises the head and the class token: the outputs would not depend on the input
    nn.init.normal_(model.heads.head.weight, std=0.2)
    nn.init.normal_(model.class_token, std=0.5)
    return model


def _torchvision(name: str) -> Callable[[], nn.Module]:
    """A torchvision model constructor (10 classes), imported the supported way."""

    def make() -> nn.Module:
        from hashpack.torchvision_compat import torchvision_models

        return getattr(torchvision_models(), name)(num_classes=10)

    return make


def _calibrate_batchnorm(model: nn.Module, shape: tuple[int, ...]) -> None:
    """BatchNorm running statistics from a few random batches in training mode (a random-init deep
    net with the default statistics computes nearly the same output for every input, which would
    make comparing outputs a weak check)."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(8, *shape))
    model.eval()


def _randomise_batchnorm(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.5, 0.5)


def _hashed_spaces(model: nn.Module) -> dict[str, HashedModule]:
    return {path: m for path, m in model.named_modules() if isinstance(m, HashedModule)}


def _quantize_spaces(model: nn.Module, dtype: str) -> dict[str, tuple[np.ndarray, float | None]]:
    """Round every hashed space of ``model`` to ``dtype`` storage, in place (so torch's golden
    outputs are those of the stored values); returns the stored array and scale per space name."""
    stored: dict[str, tuple[np.ndarray, float | None]] = {}
    for path, module in _hashed_spaces(model).items():
        values = module.space.detach().numpy().astype(np.float32)
        if dtype == "float16":
            raw: np.ndarray = values.astype(np.float16)
            scale = None
            dequantized = raw.astype(np.float32)
        else:
            scale32 = np.float32(np.abs(values).max() / 127)
            raw = np.clip(np.round(values / scale32), -127, 127).astype(np.int8)
            scale = float(scale32)
            dequantized = raw.astype(np.float32) * scale32
        with torch.no_grad():
            module.space.copy_(torch.from_numpy(dequantized))
        stored[path] = (raw, scale)
    return stored


def _store_spaces(path: Path, dtype: str, stored: dict[str, tuple[np.ndarray, float | None]]) -> None:
    """Rewrite the (float32) spaces of the .hpk at ``path`` as ``dtype`` storage."""
    hpk = read_hpk(path)
    for name, (raw, scale) in stored.items():
        space = hpk.spaces[name]
        hpk.spaces[name] = replace(space, dtype=dtype, scale=scale)
        hpk.tensors[space.tensor] = raw
    write_hpk(hpk, path)


def _store_g_spaces(path: Path, dtype: str) -> None:
    """Rewrite every funhash g space of the .hpk at ``path`` as ``dtype`` storage (hashpack writes g
    as float32, but a decoder must accept any dtype for any space). Drops the golden pair: torch
    computed it with the float32 g."""
    hpk = read_hpk(path)
    g_names = {p.spec["g"] for p in hpk.params.values() if p.scheme == "funhash" and p.spec.get("hidden")}
    for name in g_names:
        space = hpk.spaces[name]
        values = hpk.space_values(name)
        if dtype == "float16":
            raw: np.ndarray = values.astype(np.float16)
            scale = None
        else:
            scale32 = np.float32(np.abs(values).max() / 127)
            raw = np.clip(np.rint(values / scale32), -127, 127).astype(np.int8)
            scale = float(scale32)
        hpk.spaces[name] = replace(space, dtype=dtype, scale=scale)
        hpk.tensors[space.tensor] = raw
    if hpk.golden is not None:
        for tensor in hpk.golden_tensors:
            del hpk.tensors[tensor]
        hpk.golden = None
    write_hpk(hpk, path)


def _model_cases() -> list[tuple[str, Callable[[], nn.Module], tuple[int, ...], dict]]:
    """(name, constructor, sample input shape, options).

    Options: ``keep_dense`` (layer paths left uncompressed), ``method`` and ``method_options`` (of
    ``hashpack.compress``), ``calibrate`` (BatchNorm statistics from random batches after
    compression), ``space_dtype`` (hashed spaces rewritten by this script, the original
    fixtures), ``quantize`` (``hashpack.nn.quantize.quantize`` mode: every bucket space of every
    method), ``g_dtype`` (funhash g spaces rewritten after packing), ``golden`` (samples)."""
    return [
        ("mlp", MLP, (64,), {"keep_dense": {"fc3"}}),
        ("lenet5", LeNet5, (1, 28, 28), {}),
        ("rescnn", ResCNN, (3, 16, 12), {"keep_dense": {"pw"}}),
        ("mixed", Mixed, (3, 16, 16), {}),
        ("mlp_fp16", MLP, (64,), {"space_dtype": "float16"}),
        ("lenet5_int8", LeNet5, (1, 28, 28), {"space_dtype": "int8"}),
        ("mlp_nogolden", MLP, (64,), {"golden": 0}),
        ("lenet5_generated_golden", LeNet5, (1, 28, 28), {"golden": "generated"}),
        # fresh: 5×5 kernels in 9 bands with a steep allocation (the top bands get no buckets), a
        # depthwise 3×3; uniform allocation (one band) in float16; 3 bands over 3×3, 3×2 (dilated,
        # strided) and 1×1 kernels, grouped and depthwise, in int8. Linear layers are hashed.
        ("lenet5_fresh", LeNet5, (1, 28, 28), {"method": "fresh", "method_options": {"beta": 6.0}}),
        (
            "lenet5_fresh_fp16",
            LeNet5,
            (1, 28, 28),
            {"method": "fresh", "method_options": {"allocation": "uniform"}, "quantize": "fp16"},
        ),
        (
            "rescnn_fresh_int8",
            ResCNN,
            (3, 16, 12),
            {"method": "fresh", "method_options": {"bands": 3}, "quantize": "int8"},
        ),
        # funhash: the default (U = 4, H = 8); g = identity (U = 1, H = 0, bit-exact); dual-space in
        # float16; two hops in int8; conv layers with everything at once (U = 2, two hops, two int8
        # spaces, H = 4); and g itself stored as int8 and float16 (not what hashpack writes).
        ("mlp_funhash", MLP, (64,), {"method": "funhash"}),
        (
            "mlp_funhash_identity",
            MLP,
            (64,),
            {"method": "funhash", "method_options": {"hashes": 1, "hidden": 0}},
        ),
        (
            "mlp_funhash_dual_fp16",
            MLP,
            (64,),
            {"method": "funhash", "method_options": {"dual_space": True}, "quantize": "fp16"},
        ),
        (
            "mlp_funhash_hops_int8",
            MLP,
            (64,),
            {"method": "funhash", "method_options": {"hops": 2, "hashes": 3}, "quantize": "int8"},
        ),
        (
            "lenet5_funhash",
            LeNet5,
            (1, 28, 28),
            {
                "method": "funhash",
                "method_options": {"hashes": 2, "hops": 2, "hidden": 4, "dual_space": True},
                "quantize": "int8",
            },
        ),
        (
            "mlp_funhash_g_int8",
            MLP,
            (64,),
            {"method": "funhash", "method_options": {"hops": 2, "dual_space": True}, "g_dtype": "int8"},
        ),
        (
            "lenet5_funhash_g_fp16",
            LeNet5,
            (1, 28, 28),
            {"method": "funhash", "method_options": {"hashes": 3}, "quantize": "int8", "g_dtype": "float16"},
        ),
        # fsnet: conv and linear layers as filter summaries; float16 on the residual CNN (depthwise,
        # grouped, 1×1 and 3×2 kernels); int8 convs with hashed linear layers.
        ("lenet5_fsnet", LeNet5, (1, 28, 28), {"method": "fsnet", "method_options": {"fc": "fs"}}),
        # the zoo ops (docs/FORMAT.md §5), packed from torch: a block of every construct, and two
        # torchvision models at 64×64 (BatchNorm calibrated, so the outputs depend on the input)
        ("zoo_blocks", ZooBlocks, (3, 15, 13), {}),
        ("zoo_blocks_fresh_fp16", ZooBlocks, (3, 15, 13), {"method": "fresh", "quantize": "fp16"}),
        ("tv_mobilenet_v3_small", _torchvision("mobilenet_v3_small"), (3, 64, 64), {"calibrate": True}),
        ("tv_shufflenet_v2_x0_5", _torchvision("shufflenet_v2_x0_5"), (3, 64, 64), {"calibrate": True}),
        # the transformer ops (issue 15): a small torchvision ViT, a text classifier and an
        # embedding-mean head over int32 token ids (hashed tables: rows regenerated per batch)
        ("tx_vit", _tiny_vit, (3, 32, 32), {}),
        ("tx_text", TextClassifier, (12,), {"vocab": 300}),
        ("tx_text_fp16", TextClassifier, (12,), {"vocab": 300, "quantize": "fp16"}),
        ("tx_bag_int8", EmbeddingMeanHead, (7,), {"vocab": 500, "quantize": "int8"}),
        (
            "rescnn_fsnet_fp16",
            ResCNN,
            (3, 16, 12),
            {"method": "fsnet", "method_options": {"fc": "fs"}, "quantize": "fp16"},
        ),
        (
            "lenet5_fsnet_int8",
            LeNet5,
            (1, 28, 28),
            {"method": "fsnet", "quantize": "int8"},  # the default: hashed Linear layers
        ),
    ]


def _fresh_coefficients(hpk: Any, param: Any) -> np.ndarray:
    """The exact DCT coefficients C of a ``fresh`` param (flat float32), as the numpy runtime's
    ``decode`` computes them before its matmul (docs/FORMAT.md §4 ``fresh``, step 2)."""
    _, _, kh, kw = param.shape
    sizes = np.asarray(param.spec["bands"], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    table = fresh_scheme.band_table(kh, kw, len(sizes))
    modulus = np.maximum(sizes[table], 1).astype(np.uint32)
    live = sizes[table] > 0
    values = hpk.space_values(param.spec["space"])
    h = hash_range(0, param.numel, param.spec["seed"]).reshape(-1, kh * kw)
    bucket = offsets[table] + (h % modulus).astype(np.int64)
    coeffs = np.where(live, values[np.where(live, bucket, 0)], np.float32(0))
    coeffs = np.where(h & np.uint32(SIGN_BIT), -coeffs, coeffs).astype(np.float32)
    weight = coeffs @ fresh_scheme.idct_basis(kh, kw)
    reference = np.asarray(fresh_scheme.decode(param, hpk)).reshape(weight.shape)
    assert np.allclose(weight, reference, rtol=1e-5, atol=1e-6), (
        f"{param.name}: C does not give the runtime's W"
    )
    return coeffs.reshape(-1)


def _funhash_fetches(hpk: Any, param: Any) -> np.ndarray:
    """The exact fetched values z ([numel, D] float32) of a ``funhash`` param, from the numpy
    runtime's own fetch code (docs/FORMAT.md §4 ``funhash``)."""
    z = funhash_scheme._fetches(param, funhash_scheme._fetch_plan(param, hpk), 0, param.numel)
    inputs, hidden = param.spec["hashes"] * param.spec["hops"], param.spec["hidden"]
    w1, b1, w2, b2 = funhash_scheme.split_g(hpk.space_values(param.spec["g"]), inputs, hidden)
    weight = np.maximum(z @ w1.T + b1, np.float32(0)) @ w2 + b2[0]
    reference = np.asarray(funhash_scheme.decode(param, hpk)).reshape(-1)
    assert np.allclose(weight, reference, rtol=1e-5, atol=1e-6), (
        f"{param.name}: z does not give the runtime's W"
    )
    return np.ascontiguousarray(z, dtype="<f4").reshape(-1)


def _intermediate(hpk: Any, param: Any) -> np.ndarray | None:
    """The exact intermediate of a param whose last step has a free summation order, else None."""
    if param.scheme == "fresh":
        return _fresh_coefficients(hpk, param)
    if param.scheme == "funhash" and param.spec["hidden"] > 0:
        return _funhash_fetches(hpk, param)
    return None


def write_model(
    out: Path, name: str, make: Callable[[], nn.Module], shape: tuple[int, ...], options: dict
) -> dict:
    """Compress, pack and reference one model; returns its manifest entry."""
    torch.manual_seed(sum(map(ord, name)))
    model = make()
    _randomise_batchnorm(model)
    keep_dense = options.get("keep_dense", set())
    hashpack.compress(
        model,
        method=options.get("method", "hashed"),
        compression=1 / 8,
        filter_fn=lambda _m, path: path not in keep_dense,
        **options.get("method_options", {}),
    )
    if options.get("calibrate"):
        _calibrate_batchnorm(model, shape)
    model.eval()
    if "quantize" in options:
        quantize(model, options["quantize"])
    space_dtype = options.get("space_dtype")
    stored = _quantize_spaces(model, space_dtype) if space_dtype else {}
    vocab = options.get("vocab", 0)  # > 0: an int32 input of token ids in [0, vocab)
    example = torch.randint(0, vocab, (8, *shape)) if vocab else torch.randn(8, *shape)
    hpk_path = out / f"{name}.hpk"
    golden = options.get("golden", example)  # stored inputs (version 1) unless the case asks otherwise
    hashpack.pack(model, example, hpk_path, golden=None if golden == "generated" else golden)
    if space_dtype:
        _store_spaces(hpk_path, space_dtype, stored)
    if "g_dtype" in options:
        _store_g_spaces(hpk_path, options["g_dtype"])

    runtime = load(hpk_path)
    params = []
    chunks = []
    extra_chunks = []
    offset = 0
    extra_offset = 0
    for param_name, param in runtime.hpk.params.items():
        values = np.ascontiguousarray(runtime.weights[param_name], dtype="<f4").reshape(-1)
        entry: dict[str, Any] = {
            "name": param_name,
            "scheme": param.scheme,
            "shape": list(param.shape),
            "offset": offset,
            "count": values.size,
            "exact": True,
        }
        intermediate = _intermediate(runtime.hpk, param)
        if intermediate is not None:
            entry["exact"] = False
            entry["intermediate"] = {"offset": extra_offset, "count": intermediate.size}
            extra_chunks.append(intermediate.astype("<f4").tobytes())
            extra_offset += intermediate.size
        params.append(entry)
        chunks.append(values.tobytes())
        offset += values.size
    (out / f"{name}.weights.bin").write_bytes(b"".join(chunks))
    (out / f"{name}.intermediates.bin").write_bytes(b"".join(extra_chunks))
    rng = np.random.default_rng(len(name))
    # token ids are written as whole float32 numbers (as golden inputs are); Java also runs them as int[]
    x = (rng.integers(0, vocab, (BATCH, *shape)) if vocab else rng.standard_normal((BATCH, *shape))).astype(
        "<f4"
    )
    y = runtime.run(x).astype("<f4")
    (out / f"{name}.input.bin").write_bytes(x.tobytes())
    (out / f"{name}.output.bin").write_bytes(y.tobytes())
    golden_error = None
    if runtime.golden_inputs is not None:
        golden_error = float(np.abs(runtime.run(runtime.golden_inputs) - runtime.golden_outputs).max())
    return {
        "name": name,
        "hpk": hpk_path.name,
        "weights": f"{name}.weights.bin",
        "intermediates": f"{name}.intermediates.bin",
        "input": f"{name}.input.bin",
        "output": f"{name}.output.bin",
        "batch": BATCH,
        "input_shape": list(shape),
        "output_shape": list(y.shape[1:]),
        "ops": sorted({node.op for node in runtime.hpk.nodes}),
        "space_dtypes": sorted({space.dtype for space in runtime.hpk.spaces.values()}),
        "schemes": sorted({param.scheme for param in runtime.hpk.params.values()}),
        "scheme_dtypes": sorted(
            {
                f"{param.scheme}:{runtime.hpk.spaces[space].dtype}"
                for param in runtime.hpk.params.values()
                for space in _spaces_of(param)
            }
        ),
        "dtype": runtime.hpk.input.dtype,
        "has_golden": runtime.golden_inputs is not None,
        "numpy_golden_max_error": golden_error,
        "params": params,
    }


def _spaces_of(param: Any) -> list[str]:
    """Every space a param reads (bucket spaces and funhash's g)."""
    if param.scheme == "funhash":
        return list(param.spec["spaces"]) + ([param.spec["g"]] if param.spec["hidden"] else [])
    if param.scheme in ("hashed", "fresh", "fsnet"):
        return [param.spec["space"]]
    return []


FRESH_BASIS_SIZES = [(kh, kw) for kh in range(1, 9) for kw in range(1, 9)] + [
    (11, 11),
    (16, 16),
    (32, 1),
    (1, 32),
]


def write_fresh_bases(out: Path) -> dict[str, Any]:
    """numpy's inverse-DCT bases M for a range of kernel sizes (Java must compute the same bits)."""
    chunks = [fresh_scheme.idct_basis(kh, kw).astype("<f4").tobytes() for kh, kw in FRESH_BASIS_SIZES]
    (out / "fresh_bases.bin").write_bytes(b"".join(chunks))
    return {"file": "fresh_bases.bin", "sizes": [list(size) for size in FRESH_BASIS_SIZES]}


def write_f16_table(out: Path) -> str:
    bits = np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float32).view("<u4")
    (out / "f16_table.bin").write_bytes(bits.tobytes())
    return "f16_table.bin"


def _pick(rng: random.Random) -> Any:
    return copy.deepcopy(rng.choice(PALETTE))


def _mutate(tree: dict[str, Any], rng: random.Random) -> str:
    """One random edit (add, remove or replace) somewhere in a JSON tree; returns a description."""
    container: Any = tree
    path: list[Any] = []
    key: Any = None
    while True:
        keys = list(container) if isinstance(container, dict) else list(range(len(container)))
        if not keys:
            break
        key = rng.choice(keys)
        child = container[key]
        if not isinstance(child, dict | list) or rng.random() < 0.25:
            break
        path.append(key)
        container, key = child, None
    action = rng.randrange(4)
    if key is None or action == 0:
        value = _pick(rng)
        if isinstance(container, dict):
            container[f"k{rng.randrange(3)}"] = value
        else:
            container.append(value)
        return f"add {value!r} at {path}"
    if action == 1:
        del container[key]
        return f"remove {[*path, key]}"
    value = _pick(rng)
    container[key] = value
    return f"set {[*path, key]} = {value!r}"


def _container_bytes(table: dict[str, Any], meta_text: str, data: bytes) -> bytes:
    """A signed .hpk container around an (edited) metadata text and tensor table."""
    digest = hashlib.sha256(meta_text.encode("utf-8"))
    digest.update(data)
    header = {"__metadata__": {"hashpack": meta_text, "hashpack.sha256": digest.hexdigest()}, **table}
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-(8 + len(raw)) % 8)
    return struct.pack("<Q", len(raw)) + raw + data


# Targeted parity edits: every scheme-specific field of one param per scheme, set to each value of
# FIELD_VALUES in turn (and removed). Both readers must agree on each file.
PARITY_FIELDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "lenet5_fresh": ("c1.weight", ("shape", "space", "seed", "bands")),
    "lenet5_funhash": ("fc1.weight", ("shape", "spaces", "seed", "hashes", "hops", "hidden", "g")),
    "mlp_funhash_identity": ("fc2.weight", ("spaces", "hashes", "hops", "hidden", "g")),
    "lenet5_fsnet": ("c1.weight", ("shape", "space", "stride")),
}


class _Removal:
    """The "remove this key" marker; a fixed repr keeps parity.json byte-identical across runs."""

    def __repr__(self) -> str:
        return "<removed>"


_REMOVE = _Removal()
# Targeted parity edits of node attrs: every attr of every node of these ops in PARITY_ATTR_BASE.
PARITY_ATTR_BASE = "zoo_blocks"
PARITY_ATTR_OPS = {
    "MaxPool2d",
    "AvgPool2d",
    "AdaptiveAvgPool2d",
    "AdaptiveMaxPool2d",
    "Transpose",
    "Slice",
    "Mean",
    "Reshape",
}
ATTR_VALUES: tuple[Any, ...] = (
    _REMOVE,
    None,
    True,
    False,
    0,
    1,
    2,
    3,
    4,
    -1,
    7,
    2**31,
    1.0,
    "1",
    [],
    [0],
    [1],
    [2, 3],
    [3, 2],
    [0, 1],
    [1, 1],
    [7, 7],
    [2, 2],
    [0, 2, 1, 3, 4],
    [0, 1, 2, 3, 4],
    [1, 0, 2, 3, 4],
    [0, 2, 1, 3],
    [-1, 1],
    [2**30, 2**30],
)
# Targeted parity edits of the transformer op cases (tests/tx_op_cases.py): every attr of every
# node, the input dtype, and the op of each node swapped (readers must agree on int32 misuse).
TX_ATTR_VALUES: tuple[Any, ...] = (
    *ATTR_VALUES,
    0.5,
    -0.5,
    1e-5,
    -1e-5,
    3.4e38,
    1e39,
    5,
    8,
    11,
    20,
    [4],
    [5, 3],
)
TX_INPUT_DTYPES: tuple[Any, ...] = (_REMOVE, "float32", "int32", "int64", "float16", None, 1, True, ["int32"])
FIELD_VALUES: tuple[Any, ...] = (
    _REMOVE,
    None,
    True,
    0,
    1,
    2,
    3,
    4,
    16,
    17,
    19,
    256,
    257,
    -1,
    2**30,
    2**32,
    10**29,
    1.0,
    0.5,
    "",
    "fc1",
    "fc2",
    "fc1.g",
    "c1",
    "c1.g",
    "fc1.space2",
    [],
    [19],
    [0, 0, 19],
    [10, 9],
    [6, 1, 5, 5],
    [6, 25],
    [120, 400],
    [100, 300],
    [3, 4, 1, 1],
    ["fc1"],
    ["fc2"],
    ["fc1", "fc1"],
    ["fc1", "fc1.space2"],
    ["fc1.space2", "fc1"],
    {},
)


def _parity_case(corpus: Path, name: str, payload: bytes, what: str, seed: int) -> dict[str, Any]:
    """Write one damaged file and the Python reader's verdict (and outputs, if it accepts)."""
    (corpus / f"{name}.hpk").write_bytes(payload)
    case: dict[str, Any] = {"file": f"parity/{name}.hpk", "edit": what}
    try:
        hpk = parse_hpk(payload, name)
    except HpkFormatError as exc:
        return {**case, "accepted": False, "message": str(exc)}
    case["accepted"] = True
    if sum(p.numel for p in hpk.params.values()) <= PARITY_MAX_VIRTUAL:
        model = Model(hpk)
        rng = np.random.default_rng(seed)
        if hpk.input.dtype == "int32":  # token ids, stored as whole float32 numbers in every table
            x = rng.integers(0, 5, (2, *hpk.input.shape[1:])).astype("<f4")
        else:
            x = rng.standard_normal((2, *hpk.input.shape[1:])).astype("<f4")
        try:
            y = model.run(x)
        except HpkFormatError as exc:  # a file the reader accepted but cannot run
            case["run_error"] = str(exc)
        else:
            (corpus / f"{name}.input.bin").write_bytes(x.tobytes())
            (corpus / f"{name}.output.bin").write_bytes(np.asarray(y, dtype="<f4").tobytes())
            case["input"], case["output"] = f"parity/{name}.input.bin", f"parity/{name}.output.bin"
    return case


def _edited(meta: dict[str, Any], path: tuple[str | int, ...], key: str, value: Any) -> dict[str, Any]:
    """A copy of ``meta`` whose dict at ``path`` has ``key`` set to ``value`` (removed if ``_REMOVE``)."""
    edited = copy.deepcopy(meta)
    target = edited
    for step in path:
        target = target[step]
    if value is _REMOVE:
        target.pop(key, None)
    else:
        target[key] = copy.deepcopy(value)
    return edited


def _with_meta(header: dict[str, Any], meta: dict[str, Any], data: bytes) -> bytes:
    """The container of ``header`` and ``data`` around ``meta`` (canonical JSON, as the packer writes it)."""
    return _container_bytes(header, json.dumps(meta, sort_keys=True, separators=(",", ":")), data)


def _split_hpk(blob: bytes) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    """(tensor table, metadata document, data buffer) of a .hpk file."""
    (length,) = struct.unpack_from("<Q", blob)
    header = json.loads(blob[8 : 8 + length])
    meta = json.loads(header.pop("__metadata__")["hashpack"])
    return header, meta, blob[8 + length :]


def write_parity_corpus(out: Path) -> str:
    """Damaged fixtures with the Python reader's verdict (and outputs when it accepts)."""
    corpus = out / "parity"
    corpus.mkdir(exist_ok=True)
    rng = random.Random(20240601)
    cases = []
    for base in PARITY_BASES:
        header, meta, data = _split_hpk((out / f"{base}.hpk").read_bytes())
        for index in range(PARITY_PER_BASE):
            table, edited = copy.deepcopy(header), copy.deepcopy(meta)
            on_table = rng.random() < 0.25
            what = ("table: " if on_table else "") + _mutate(table if on_table else edited, rng)
            payload = _with_meta(table, edited, data)
            cases.append(_parity_case(corpus, f"{base}_{index:03d}", payload, what, index))
    for base, (param, fields) in PARITY_FIELDS.items():
        header, meta, data = _split_hpk((out / f"{base}.hpk").read_bytes())
        index = 0
        for key in fields:
            for value in FIELD_VALUES:
                edited = _edited(meta, ("params", param), key, value)
                where = f"params/{param}/{key}"
                what = f"remove {where}" if value is _REMOVE else f"set {where} = {value!r}"
                payload = _with_meta(header, edited, data)
                cases.append(_parity_case(corpus, f"{base}_field_{index:03d}", payload, what, index))
                index += 1
    # Targeted edits of every attr of the zoo blocks' pooling and layout nodes (and ceil_mode where
    # it is absent): the readers' shape rules for the zoo ops must agree on every value.
    header, meta, data = _split_hpk((out / f"{PARITY_ATTR_BASE}.hpk").read_bytes())
    index = 0
    for position, node in enumerate(meta["nodes"]):
        if node["op"] not in PARITY_ATTR_OPS:
            continue
        keys = sorted(node["attrs"]) + (["ceil_mode"] if node["op"].endswith("Pool2d") else [])
        for key in dict.fromkeys(keys):
            for value in ATTR_VALUES:
                edited = _edited(meta, ("nodes", position, "attrs"), key, value)
                where = f"nodes/{node['name']}/attrs/{key}"
                what = f"remove {where}" if value is _REMOVE else f"set {where} = {value!r}"
                payload = _with_meta(header, edited, data)
                name = f"{PARITY_ATTR_BASE}_attr_{index:03d}"
                cases.append(_parity_case(corpus, name, payload, what, index))
                index += 1
    cases += _tx_parity_cases(corpus)
    # A file within every size limit whose weights would take too long to regenerate (§6 work limit).
    header, meta, data = _split_hpk((out / "lenet5_funhash.hpk").read_bytes())
    meta["params"]["fc1.weight"]["shape"] = [3 * 2**26]  # x (4 fetches + 25 for g) > 2^32 operations
    payload = _with_meta(header, meta, data)
    case = _parity_case(corpus, "lenet5_funhash_decode_work", payload, "decode work over 2^32", 0)
    assert "operations" in case.get("message", ""), case
    cases.append({**case, "java_must_mention": "operations"})
    (out / "parity.json").write_text(json.dumps({"cases": cases}, indent=1) + "\n")
    return "parity.json"


def _tx_parity_cases(corpus: Path) -> list[dict[str, Any]]:
    """Every attr of every node of the transformer op cases set to each TX_ATTR_VALUES value (and
    removed), the graph input's dtype edited, and each node's op renamed to every other tx op."""
    cases = []
    index = 0

    def add(header: dict[str, Any], meta: dict[str, Any], data: bytes, what: str) -> None:
        nonlocal index
        payload = _with_meta(header, meta, data)
        cases.append(_parity_case(corpus, f"tx_{index:04d}", payload, what, index))
        index += 1

    for case in tx_op_cases.CASES:
        scratch = corpus / "tx_base.hpk"
        write_hpk(tx_op_cases.case_hpk(case), scratch)
        header, meta, data = _split_hpk(scratch.read_bytes())
        scratch.unlink()
        for position, node in enumerate(meta["nodes"]):
            keys = sorted(node["attrs"]) + (["padding_idx"] if node["op"] == "Embedding" else [])
            for key in dict.fromkeys(keys):
                for value in TX_ATTR_VALUES:
                    edited = _edited(meta, ("nodes", position, "attrs"), key, value)
                    add(header, edited, data, f"{case.id}: nodes/{node['name']}/attrs/{key} = {value!r}")
            for op in tx_op_cases.TX_OPS:
                if op != node["op"]:
                    edited = _edited(meta, ("nodes", position), "op", op)
                    add(header, edited, data, f"{case.id}: nodes/{node['name']}/op = {op}")
        for value in TX_INPUT_DTYPES:
            edited = _edited(meta, ("inputs", 0), "dtype", value)
            add(header, edited, data, f"{case.id}: inputs/0/dtype = {value!r}")
    return cases


OP_CASE_BATCH = 3


def write_op_cases(out: Path) -> list[dict[str, Any]]:
    """Every zoo and transformer op case as a .hpk (torch's golden outputs inside) with the numpy
    runtime's outputs for another random batch: Java must match numpy within 1e-5 and pass the
    golden check."""
    folder = out / "op_cases"
    folder.mkdir(exist_ok=True)
    entries = []
    table = [(case, case_hpk, case_input, "float32") for case in CASES] + [
        (case, tx_op_cases.case_hpk, tx_op_cases.case_input, "int32" if case.vocab else "float32")
        for case in tx_op_cases.CASES
    ]
    for case, make_hpk, make_input, dtype in table:
        path = folder / f"{case.id}.hpk"
        write_hpk(make_hpk(case), path)
        runtime = load(path)
        x = make_input(case, OP_CASE_BATCH, seed=1)
        x = np.ascontiguousarray(x, dtype="<i4" if dtype == "int32" else "<f4")
        y = np.ascontiguousarray(runtime.run(x), dtype="<f4")
        (folder / f"{case.id}.input.bin").write_bytes(x.tobytes())
        (folder / f"{case.id}.output.bin").write_bytes(y.tobytes())
        entries.append(
            {
                "id": case.id,
                "hpk": f"op_cases/{case.id}.hpk",
                "input": f"op_cases/{case.id}.input.bin",
                "output": f"op_cases/{case.id}.output.bin",
                "dtype": dtype,
                "batch": OP_CASE_BATCH,
                "input_shape": list(case.input_shape),
                "output_shape": list(y.shape[1:]),
                "ops": sorted(case.ops),
            }
        )
    return entries


def write_materialize_case(out: Path) -> dict[str, Any]:
    """A --materializable once .tflite, the weights LiteRT computes for it, and materialize()'s bytes.

    The Java Materializer must rebuild exactly those bytes from the file and the weights (what an
    app gets from the ``hashpack_weights`` signature on the device).
    """
    from hashpack.exporter.tflite import build_tflite
    from hashpack.exporter.tflite.materialize import materialize
    from hashpack.exporter.tflite.once import WEIGHTS_SIGNATURE, WEIGHTS_TRIGGER
    from hashpack.exporter.tflite.runner import make_interpreter
    from hashpack.models import LeNet5

    torch.manual_seed(0)
    model = hashpack.compress(LeNet5((1, 12, 12), 10), compression=1 / 8, seed=3).eval()
    path = out / "materialize.hpk"
    hashpack.pack(model, torch.randn(2, 1, 12, 12), path)
    once = build_tflite(path, "once", materializable=True).data
    files = {"once": "materialize.once.tflite", "plain": "materialize.plain.tflite"}
    (out / files["once"]).write_bytes(once)
    (out / files["plain"]).write_bytes(build_tflite(path, "once", materializable=False).data)
    (out / "materialize.expected.tflite").write_bytes(materialize(once))
    runner = make_interpreter(once).get_signature_runner(WEIGHTS_SIGNATURE)
    computed = runner(**{WEIGHTS_TRIGGER: np.zeros(1, np.float32)})
    weights = {}
    for index, name in enumerate(sorted(computed)):
        weights[name] = f"materialize.w{index}.f32"
        (out / weights[name]).write_bytes(np.ascontiguousarray(computed[name], dtype="<f4").tobytes())
    return {**files, "expected": "materialize.expected.tflite", "weights": weights}


def _with_slots(once: bytes, slots: Any) -> bytes:
    """``once`` with its ``hashpack_slots`` metadata replaced by ``slots`` (JSON), re-packed."""
    import flatbuffers

    from hashpack.exporter.tflite.materialize import SLOTS_METADATA
    from hashpack.exporter.tflite.schema import schema

    model = schema.ModelT.InitFromPackedBuf(once, 0)
    index = next(entry.buffer for entry in model.metadata if entry.name.decode() == SLOTS_METADATA)
    model.buffers[index].data = list(json.dumps(slots, separators=(",", ":")).encode())
    builder = flatbuffers.Builder(1 << 16)
    builder.Finish(model.Pack(builder), b"TFL3")
    return bytes(builder.Output())


def _hostile_slot_tables(slots: list[dict[str, Any]]) -> dict[str, Any]:
    """Damaged slot tables of a once file whose first slot folds a BatchNorm scale (ResNet-20)."""
    first, recipe = slots[0], slots[0]["recipe"]
    fc = next(i for i, s in enumerate(slots) if s["recipe"]["perm"] is None and s["size"] > 64)

    def edit(index: int, **changes: Any) -> list[dict[str, Any]]:
        table = copy.deepcopy(slots)
        table[index].update(changes)
        return table

    def recipe_edit(**changes: Any) -> list[dict[str, Any]]:
        return edit(0, recipe={**recipe, **changes})

    return {
        "slots-not-a-list": {"slots": slots},
        "no-recipe": edit(0, recipe=None),
        "recipe-not-an-object": edit(0, recipe=[1, 2]),
        "param-unknown": recipe_edit(param="no.such.param"),
        "param-not-a-name": recipe_edit(param=7),
        "perm-not-a-permutation": recipe_edit(perm=[0, 2, 3, 3]),
        "perm-wrong-length": recipe_edit(perm=[1, 0]),
        "perm-not-integers": recipe_edit(perm=[0, 2.5, 3, 1]),
        "rows-past-the-end": recipe_edit(rows=[1, 99999]),
        "rows-reversed": recipe_edit(rows=[3, 1]),
        "rows-not-a-pair": recipe_edit(rows=[0]),
        "scale-no-such-subgraph": recipe_edit(scale=[99, 1]),
        "scale-no-such-tensor": recipe_edit(scale=[1, 999999]),
        "scale-not-a-constant": recipe_edit(scale=[0, 0]),
        "scale-not-a-pair": recipe_edit(scale="x"),
        "scale-does-not-fit": edit(fc, recipe={**slots[fc]["recipe"], "scale": recipe["scale"]}),
        "shift-does-not-fit": edit(fc, recipe={**slots[fc]["recipe"], "shift": recipe["scale"]}),
        "size-too-small": edit(0, size=first["size"] - 4),
        "size-huge": edit(0, size=2**40),
        "offset-in-template": edit(0, offset=0),
        "offset-huge": edit(0, offset=2**31),
    }


def _grouped_case(root: Path) -> Path:
    """A hashed grouped convolution (2 groups: one ``rows`` view per group) with a folded BatchNorm."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(4, 6, 3, padding=1, groups=2),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(6 * 5 * 5, 3),
    )
    _randomise_batchnorm(model)
    hashpack.compress(model, compression=1 / 4, seed=5)
    path = root / "hashed-grouped.hpk"
    hashpack.pack(model.eval(), torch.randn(2, 4, 5, 5), path)
    return path


def write_from_hpk_cases(out: Path) -> dict[str, Any]:
    """Once files with slot recipes, and the bytes Python's ``materialize_from_hpk`` makes of them.

    For every scheme × architecture case of tests/test_tflite_export.py: the .hpk, its (default,
    materializable) once file, ``materialize_from_hpk``'s output and the numpy runtime's decoded
    params the recipes name (``<id>.params.bin`` with ``params``: name, shape, offset, count in
    floats). Java's ``materializeFromHpk`` must give the same bytes from those params, and from its
    own decode where every param is exact. ``hostile``: damaged slot tables that Python refuses too.
    """
    from test_tflite_export import CASES, _case, _exact  # tests/ (this script's directory)

    from hashpack.exporter.tflite import build_tflite
    from hashpack.exporter.tflite.materialize import SLOTS_METADATA, materialize_from_hpk, read_metadata

    root = out / "from_hpk"
    root.mkdir(exist_ok=True)
    cases, hostile = [], []
    for scheme, arch in [*CASES, ("hashed", "grouped")]:
        case_id = f"{scheme}-{arch}"
        path = _grouped_case(root) if arch == "grouped" else _case(scheme, arch, str(root))[0]
        runtime = load(path)
        once = build_tflite(path, "once")
        (root / f"{case_id}.once.tflite").write_bytes(once.data)
        entry: dict[str, Any] = {
            "id": case_id,
            "hpk": f"from_hpk/{path.name}",
            "once": f"from_hpk/{case_id}.once.tflite",
        }
        cases.append(entry)
        if SLOTS_METADATA not in read_metadata(once.data):
            continue  # nothing decompressed (dense): no template, Java must refuse it too
        slots = json.loads(read_metadata(once.data)[SLOTS_METADATA])
        (root / f"{case_id}.expected.tflite").write_bytes(materialize_from_hpk(once.data, runtime.weights))
        names = sorted({slot["recipe"]["param"] for slot in slots})
        chunks, params, offset = [], [], 0
        for name in names:
            value = np.ascontiguousarray(runtime.weights[name], dtype="<f4")
            params.append({"name": name, "shape": list(value.shape), "offset": offset, "count": value.size})
            chunks.append(value.tobytes())
            offset += value.size
        (root / f"{case_id}.params.bin").write_bytes(b"".join(chunks))
        entry.update(
            expected=f"from_hpk/{case_id}.expected.tflite",
            params_file=f"from_hpk/{case_id}.params.bin",
            params=params,
            exact=all(_exact(runtime.hpk, use.param) for use in once.weights.values()),
            folds=sum(
                slot["recipe"]["scale"] is not None or slot["recipe"]["shift"] is not None for slot in slots
            ),
            views=sum(
                slot["recipe"]["perm"] is not None or slot["recipe"]["rows"] is not None for slot in slots
            ),
        )
        if case_id == "hashed-resnet20":
            for name, table in _hostile_slot_tables(slots).items():
                damaged = _with_slots(once.data, table)
                try:
                    materialize_from_hpk(damaged, runtime.weights)
                except ValueError:
                    pass
                else:
                    raise AssertionError(
                        f"Python's materialize_from_hpk accepts the hostile slot table {name}"
                    )
                (root / f"hostile-{name}.tflite").write_bytes(damaged)
                hostile.append({"name": name, "once": f"from_hpk/hostile-{name}.tflite", "case": case_id})
    return {"cases": cases, "hostile": hostile}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} OUT_DIR", file=sys.stderr)
        return 2
    out = Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    models = [write_model(out, *case) for case in _model_cases()]
    manifest = {
        "models": models,
        "f16_table": write_f16_table(out),
        "fresh_bases": write_fresh_bases(out),
        "parity": write_parity_corpus(out),
        "materialize": write_materialize_case(out),
        "from_hpk": write_from_hpk_cases(out),
        "op_cases": write_op_cases(out),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    covered = sorted({op for m in models + manifest["op_cases"] for op in m["ops"]})
    parity = json.loads((out / "parity.json").read_text())["cases"]
    accepted = sum(case["accepted"] for case in parity)
    schemes = sorted({pair for m in models for pair in m["scheme_dtypes"]})
    print(f"wrote {len(models)} models and {len(manifest['op_cases'])} op cases to {out}")
    print(f"ops covered: {', '.join(covered)}")
    print(f"schemes and space dtypes covered: {', '.join(schemes)}")
    print(f"parity corpus: {len(parity)} damaged files, {accepted} accepted by the Python reader")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

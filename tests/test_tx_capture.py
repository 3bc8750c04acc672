"""Packing transformer constructs (issue 15): each model is packed, read back, and run by the numpy
runtime and the PyTorch evaluator on the golden inputs and on fresh inputs, against torch itself.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from models import single_thread  # noqa: F401 (autouse fixture)
from torch import nn

import hashpack
from hashpack.packer import UnsupportedModelError
from hashpack.runtime import load
from hashpack.torch_eval import to_torch

TOLERANCE = 2e-5


class Functional(nn.Module):
    """The functional forms: F.gelu both ways, F.layer_norm, matmul / bmm / @, F.sdpa, select, unsqueeze."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(8, 24)
        self.norm_weight = nn.Parameter(torch.randn(8))
        self.norm_bias = nn.Parameter(torch.randn(8))
        self.mix = nn.Parameter(torch.randn(8, 8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x [N, 5, 8]
        h = F.layer_norm(x, (8,), self.norm_weight, self.norm_bias, 1e-6)
        h = F.gelu(h) + F.gelu(h, approximate="tanh")
        q, k, v = self.proj(h).chunk(3, dim=-1)  # [N, 5, 8] each
        q, k, v = (t.reshape(t.shape[0], 5, 2, 4).permute(0, 2, 1, 3) for t in (q, k, v))
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # [N, 2, 5, 4]
        scores = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(4), dim=-1)
        b = torch.matmul(scores, v) + a
        c = torch.bmm(
            b.flatten(2, 3).transpose(1, 2)[:, :4], b.flatten(2, 3)[:, :, :4]
        )  # [N, 4, 4]... rank 3
        h = h @ self.mix + b.transpose(1, 2).reshape(b.shape[0], 5, 8)
        first = h[:, 0] + h.select(1, 2) + h[:, -1, :]
        return torch.cat([first.unsqueeze(1), c.flatten(1).unsqueeze(1)[..., :8]], dim=1).mean(1)


class Tokens(nn.Module):
    """A class token, a positional table and x[:, 0]: what a vision transformer does around its blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, 16, 4, stride=4)
        self.class_token = nn.Parameter(torch.randn(1, 1, 16))
        self.position = nn.Parameter(torch.randn(1, 5, 16))
        self.norm = nn.LayerNorm(16, bias=False)
        self.block = nn.TransformerEncoderLayer(
            16, 2, 32, dropout=0.1, batch_first=True, norm_first=True, activation="gelu"
        )
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        h = self.patch(x).flatten(2).transpose(1, 2)  # [N, 4, 16]
        h = torch.cat([self.class_token.expand(n, -1, -1), h], dim=1) + self.position
        return self.head(self.norm(self.block(h))[:, 0])


class Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(12, 3, batch_first=True)
        self.gelu = nn.GELU(approximate="tanh")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gelu(self.attn(x, x, x)[0]).mean(dim=1)


class Text(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 16, padding_idx=0)
        layer = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(16, 2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.embed(ids)).mean(1))


class SequenceFirst(nn.Module):
    """batch_first=False attention and encoder between two transpose(0, 1): the graph stays batch-first."""

    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(16, 4)
        layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.1, activation="gelu")
        self.encoder = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x [N, L, D]
        h = x.transpose(0, 1)
        h = self.encoder(self.attn(h, h, h, need_weights=False)[0] + h)
        return self.head(h.transpose(0, 1).mean(1))


def _ids(*shape: int) -> Callable[[int], torch.Tensor]:
    return lambda seed: torch.randint(0, 50, shape, generator=torch.Generator().manual_seed(seed))


def _floats(*shape: int) -> Callable[[int], torch.Tensor]:
    return lambda seed: torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


MODELS = {
    "functional": (Functional, _floats(4, 5, 8)),
    "tokens": (Tokens, _floats(4, 3, 8, 8)),
    "attention": (Attention, _floats(4, 6, 12)),
    "text": (Text, _ids(4, 7)),
    "sequence-first": (SequenceFirst, _floats(4, 5, 16)),
}


@pytest.mark.parametrize("compressed", [False, True], ids=["dense", "hashed"])
@pytest.mark.parametrize("name", list(MODELS))
def test_packed_transformer_constructs_match_torch(tmp_path: Path, name: str, compressed: bool) -> None:
    build, inputs = MODELS[name]
    torch.manual_seed(0)
    model = build()
    if compressed:
        hashpack.compress(model, compression=1 / 4)
    model.eval()
    path = tmp_path / f"{name}.hpk"
    hashpack.pack(model, inputs(0), path)
    runtime = load(path)
    assert runtime.hpk.input.dtype == ("int32" if name == "text" else "float32")
    fresh = inputs(1)
    with torch.no_grad():
        expected = model(fresh).numpy()
    assert np.abs(expected).max() > 0.05 and expected.std() > 1e-3  # the model computes something
    numpy_input = fresh.numpy()
    np.testing.assert_allclose(runtime.run(numpy_input), expected, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(
        runtime.run(runtime.golden_inputs), runtime.golden_outputs, rtol=0, atol=TOLERANCE
    )
    np.testing.assert_allclose(to_torch(runtime.hpk).run(numpy_input), expected, rtol=0, atol=TOLERANCE)
    if compressed:
        schemes = {p.scheme for p in runtime.hpk.params.values()}
        assert "hashed" in schemes


def test_packed_ops() -> None:
    """The captured graphs use the transformer ops, not something that happens to give the same numbers."""
    torch.manual_seed(0)
    ops = {}
    for name, (build, inputs) in MODELS.items():
        hpk = hashpack.packer.build_hpk(build().eval(), inputs(0), golden=0)
        ops[name] = [node.op for node in hpk.nodes]
    assert {"LayerNorm", "Gelu", "Attention", "MatMul", "Linear", "Slice", "Reshape"} <= set(
        ops["functional"]
    )
    assert ops["tokens"].count("Constant") == 2 and "Concat" in ops["tokens"]
    # need_weights=True (the default): torch computes softmax(q kᵀ) v explicitly, and so does the graph
    assert ops["attention"].count("MatMul") == 2 and "Softmax" in ops["attention"]
    assert ops["attention"][-1] == "Mean" and "Attention" not in ops["attention"]
    assert ops["text"][0] == "Embedding" and ops["text"].count("Attention") == 2


def test_dense_padding_row_and_int_inputs(tmp_path: Path) -> None:
    model = Text().eval()
    hpk = hashpack.pack(model, _ids(2, 7)(0), tmp_path / "t.hpk")
    embedding = next(n for n in hpk.nodes if n.op == "Embedding")
    assert embedding.attrs == {"padding_idx": 0}
    runtime = load(tmp_path / "t.hpk")
    with pytest.raises(ValueError, match=r"node 'embed' \(Embedding\): token id 50 is outside"):
        runtime.run(np.full((1, 7), 50))


class SeqFirst(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x, x, x)[0].mean(0)


class Masked(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mask", torch.ones(4, 4, dtype=torch.bool).tril())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(x, x, x, attn_mask=self.mask).flatten(1)


class SlicedIds(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 4)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.embed(ids[:, :3]).flatten(1)


class Broadcast(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x @ x[:, 0].unsqueeze(-1).unsqueeze(1)).flatten(1)


UNSUPPORTED = {
    # the model's own input is [L, N, E]: its dim 0 would become the .hpk batch
    "seq-first-input": (
        SeqFirst,
        torch.randn(5, 2, 8),
        r"laid out \[sequence, batch, …\] .* use batch_first=True",
    ),
    "sdpa-mask": (Masked, torch.randn(2, 2, 4, 3), r"scaled_dot_product_attention with attn_mask"),
    "sliced-ids": (
        SlicedIds,
        torch.randint(0, 10, (2, 5)),
        r"feeds operator getitem .*may only feed nn\.Embedding",
    ),
    "matmul-broadcast": (
        Broadcast,
        torch.randn(2, 3, 4),
        r"matmul of shapes .* is not yet in the \.hpk op set",
    ),
}


@pytest.mark.parametrize("name", list(UNSUPPORTED))
def test_unsupported_transformer_constructs_fail_in_one_line(tmp_path: Path, name: str) -> None:
    build, x, pattern = UNSUPPORTED[name]
    with pytest.raises(UnsupportedModelError) as info:
        hashpack.pack(build().eval(), x, tmp_path / "m.hpk")
    assert "\n" not in str(info.value)
    assert re.search(pattern, str(info.value)), str(info.value)
    assert not (tmp_path / "m.hpk").exists()


def test_unused_in_place_calls_are_not_dropped(tmp_path: Path) -> None:
    """Dead-code elimination (unused attention weights) must not make an in-place op vanish silently."""

    class InPlace(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x.relu_()
            return x * 2.0

    with pytest.raises(UnsupportedModelError, match=r"relu_"):
        hashpack.pack(InPlace().eval(), torch.randn(2, 3), tmp_path / "m.hpk")

"""Hashed layers for transformers (issue 15, item 2): HashedEmbedding, HashedMultiheadAttention, and
``compress`` on every module type it knows — the model still runs, trains, and computes torch's math.
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
import torch.nn.functional as F
from models import single_thread  # noqa: F401 (autouse fixture)
from torch import nn

import hashpack
from hashpack.nn import HashedEmbedding, HashedMultiheadAttention
from hashpack.nn.compress import METHODS
from hashpack.nn.entries import CompressedLayer


def _keep(linear: nn.Module, part: str) -> nn.Module:
    return linear


@pytest.mark.parametrize("batch_first", [True, False])
def test_hashed_attention_computes_torch_multihead_attention(batch_first: bool) -> None:
    """With the dense projections kept, the replacement is nn.MultiheadAttention bit for bit."""
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(16, 4, batch_first=batch_first)
    ours = HashedMultiheadAttention.from_dense(mha, _keep)
    x, y = torch.randn(3, 5, 16), torch.randn(3, 5, 16)
    length = 5 if batch_first else 3
    mask = torch.rand(length, length) > 0.6
    mask.fill_diagonal_(False)
    padding = torch.zeros(3 if batch_first else 5, length, dtype=torch.bool)
    padding[:, -1] = True
    calls = [
        ((x, x, x), {}),  # need_weights=True: the averaged weights too
        ((x, x, x), {"need_weights": False}),
        ((x, y, y), {"need_weights": False}),  # cross attention: separate projections
        ((x, x, x), {"attn_mask": mask, "need_weights": False}),
        ((x, x, x), {"key_padding_mask": padding}),
        ((x, x, x), {"average_attn_weights": False}),
    ]
    for args, kwargs in calls:
        expected, expected_weights = mha(*args, **kwargs)
        actual, weights = ours(*args, **kwargs)
        torch.testing.assert_close(actual, expected, rtol=0, atol=1e-6)
        if expected_weights is None:
            assert weights is None
        else:
            torch.testing.assert_close(weights, expected_weights, rtol=0, atol=1e-6)


def test_hashed_attention_rejects_what_it_cannot_compute() -> None:
    for mha in (nn.MultiheadAttention(8, 2, kdim=4, vdim=4), nn.MultiheadAttention(8, 2, add_bias_kv=True)):
        with pytest.raises(ValueError, match="cannot be converted"):
            HashedMultiheadAttention.from_dense(mha, _keep)


def test_hashed_embedding_reads_rows_of_its_virtual_table() -> None:
    torch.manual_seed(0)
    table = HashedEmbedding(1000, 12, padding_idx=7, compression=1 / 8, seed=3)
    assert table.num_buckets == 1500
    ids = torch.randint(0, 1000, (4, 9))
    ids[0, :3] = 7
    rows = table(ids)
    weight = table.virtual_tensors()["weight"]
    assert torch.equal(rows, weight[ids])
    assert not rows[0, :3].any() and not weight[7].any()  # padding_idx reads as zero
    assert rows[1].abs().sum() > 0
    rows.square().sum().backward()  # only buckets the batch reads get gradient
    touched = table._index.long()[(ids.reshape(-1, 1) * 12 + torch.arange(12)).reshape(-1)]
    untouched = torch.ones(table.num_buckets, dtype=torch.bool)
    untouched[touched] = False
    assert table.space.grad[untouched].abs().max() == 0 and table.space.grad.abs().max() > 0
    with pytest.raises(IndexError, match=r"\[0, 1000\)"):
        table(torch.tensor([[1000]]))


def test_hashed_embedding_from_dense_is_the_bucket_mean() -> None:
    """At compression 1 with few collisions most rows come back close; the padding row is ignored."""
    torch.manual_seed(0)
    dense = nn.Embedding(50, 4, padding_idx=0)
    model = hashpack.compress(nn.Sequential(dense), compression=4.0 / 4.0)
    table = model[0]
    assert isinstance(table, HashedEmbedding) and table.padding_idx == 0
    weight = table.virtual_tensors()["weight"]
    index, sign = table._index.long(), table._sign.float()
    values = dense.weight.detach().reshape(-1) * sign
    values[:4] = 0  # the padding row does not vote
    votes = torch.zeros(table.num_buckets).index_add_(0, index[4:], torch.ones(196))
    sums = torch.zeros(table.num_buckets).index_add_(0, index, values)
    expected = torch.where(votes > 0, sums / votes.clamp(min=1), table.space.detach())
    torch.testing.assert_close(table.space.detach(), expected)
    assert torch.equal(weight.reshape(-1)[4:], (table.space[index] * sign).detach()[4:])


class Everything(nn.Module):
    """Every module type compress knows: Embedding, Linear, Conv2d, MultiheadAttention (both layouts),
    a TransformerEncoder of TransformerEncoderLayers (norm first and last, gelu and relu)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(40, 16, padding_idx=0)
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.attn = nn.MultiheadAttention(16, 4, batch_first=True)
        self.attn_seq_first = nn.MultiheadAttention(16, 2)
        first = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.1, batch_first=True, activation="gelu")
        self.encoder = nn.TransformerEncoder(first, 1, enable_nested_tensor=False)
        self.layer = nn.TransformerEncoderLayer(16, 2, 24, dropout=0.0, batch_first=True, norm_first=True)
        self.head = nn.Linear(16, 3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.embed(ids)  # [N, L, D]
        h = h + self.conv(h.unsqueeze(1)).mean(1)
        h = self.attn(h, h, h)[0]
        s = h.transpose(0, 1)
        h = self.attn_seq_first(s, s, s, need_weights=False)[0].transpose(0, 1)
        h = self.layer(self.encoder(h))
        return self.head(h.mean(1))


@pytest.mark.parametrize("method", list(METHODS))
def test_compress_every_known_module_runs_and_trains(method: str) -> None:
    torch.manual_seed(0)
    model = Everything()
    ids = torch.randint(0, 40, (4, 6))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hashpack.compress(model, method, compression=1 / 4)
    assert [str(w.message) for w in caught if "compress:" in str(w.message)] == []
    dense_left = [n for n, m in model.named_modules() if type(m) in (nn.Linear, nn.Conv2d, nn.Embedding)]
    assert dense_left == []
    assert isinstance(model.embed, HashedEmbedding)
    for attention in (
        model.attn,
        model.attn_seq_first,
        model.encoder.layers[0].self_attn,
        model.layer.self_attn,
    ):
        assert isinstance(attention, HashedMultiheadAttention)
        assert isinstance(attention.in_proj, CompressedLayer) and isinstance(
            attention.out_proj, CompressedLayer
        )
    assert isinstance(model.encoder.layers[0].linear1, CompressedLayer)
    model.train()
    out = model(ids)
    assert out.shape == (4, 3) and torch.isfinite(out).all()
    out.square().mean().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
    model.eval()
    with torch.no_grad():  # the encoder layers' fused fast path reads the regenerated weights
        fast = model(ids)
    torch.backends.mha.set_fastpath_enabled(False)  # the Python path
    try:
        with torch.no_grad():
            slow = model(ids)
    finally:
        torch.backends.mha.set_fastpath_enabled(True)
    torch.testing.assert_close(fast, slow, rtol=1e-4, atol=1e-5)


def test_compressed_encoder_layer_is_torch_math_on_the_regenerated_weights() -> None:
    """A compressed TransformerEncoderLayer equals a dense one holding its virtual weights."""
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True)
    compressed = hashpack.compress(copy.deepcopy(layer), compression=1 / 8)
    dense = copy.deepcopy(layer)
    with torch.no_grad():
        dense.self_attn.in_proj_weight.copy_(compressed.self_attn.in_proj_weight)
        dense.self_attn.in_proj_bias.copy_(compressed.self_attn.in_proj_bias)
        for name in ("weight", "bias"):
            getattr(dense.self_attn.out_proj, name).copy_(getattr(compressed.self_attn.out_proj, name))
            getattr(dense.linear1, name).copy_(getattr(compressed.linear1, name))
            getattr(dense.linear2, name).copy_(getattr(compressed.linear2, name))
    x = torch.randn(3, 7, 16)
    torch.testing.assert_close(compressed(x), dense(x), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(compressed(x), layer(x), atol=1e-3)  # it really is compressed


def test_compressed_models_learn_a_step() -> None:
    """One SGD step on a compressed text model lowers its loss (the gradient reaches the buckets)."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Embedding(100, 16),
        nn.TransformerEncoder(
            nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True),
            1,
            enable_nested_tensor=False,
        ),
    )
    hashpack.compress(model, compression=1 / 8)
    ids, target = torch.randint(0, 100, (8, 5)), torch.randn(8, 5, 16)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for _ in range(5):
        optimizer.zero_grad()
        loss = F.mse_loss(model(ids), target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_hashed_linear_bias_reads_regenerated_but_packs_hashed(tmp_path) -> None:
    """``.bias`` of a HashedLinear (bias in the space) is the virtual bias for parents that read it,
    while the layer itself still packs and initialises it as a hashed param (not a dense copy)."""
    torch.manual_seed(0)
    dense = nn.Linear(6, 4)
    layer = hashpack.compress(nn.Sequential(dense), compression=1 / 2)[0]
    assert layer._parameters.get("bias") is None
    torch.testing.assert_close(layer.bias, layer.virtual_tensors()["bias"])
    hpk = hashpack.pack(nn.Sequential(layer).eval(), torch.randn(2, 6), tmp_path / "l.hpk")
    assert hpk.params["0.bias"].scheme == "hashed"
    separate = hashpack.compress(nn.Sequential(nn.Linear(6, 4)), compression=1 / 2, separate_bias=True)[0]
    assert isinstance(separate.bias, nn.Parameter)

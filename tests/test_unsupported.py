"""Constructs .hpk cannot hold fail clearly (issue 13, item 3), and compress never breaks a model.

pack: one line naming the layer or op, the module path (for functional calls: the module whose
forward made the call) and what to do. compress: layers it cannot convert stay dense with a
one-line warning naming them, and so do Linears whose parent reads their weights directly.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import hashpack
from hashpack.packer import UnsupportedModelError


class Wrap(nn.Module):
    """``self.block`` applied to the input, then a Linear head (so compress has something to do)."""

    def __init__(self, block: nn.Module, features: int, post=None) -> None:
        super().__init__()
        self.block = block
        self.head = nn.Linear(features, 2)
        self.post = post or (lambda y: y)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.post(self.block(x)).flatten(1))


class Mish(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.mish(x)


class Upsample(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2.0)


class Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2)  # batch_first=False: [L, N, E]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x, x, x)[0]


class Recurrent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(8, 8, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lstm(x)[0]


# the start of compress's warning for a layer it leaves dense (the layer path and type follow)
LEFT_DENSE = (
    r"^compress: left dense \(hashed compresses nn\.Linear, nn\.Conv2d, nn\.Embedding and "
    r"nn\.MultiheadAttention only\): "
)
# name -> (model, example input, pattern of the one-line pack error, pattern of compress's warning or None)
CASES = {
    "GroupNorm": (
        lambda: Wrap(nn.GroupNorm(2, 4), 4 * 3),
        torch.randn(2, 4, 3),
        r"^block: layer GroupNorm is not supported: not yet in the \.hpk op set \(docs/FORMAT\.md §5\)$",
        None,
    ),
    "Mish-module": (
        lambda: Wrap(nn.Sequential(nn.Linear(8, 8), nn.Mish()), 8),
        torch.randn(2, 8),
        r"^block\.1: layer Mish is not supported: not yet in the \.hpk op set",
        None,
    ),
    "Mish-function": (
        lambda: Wrap(nn.Sequential(nn.Linear(8, 8), Mish()), 8),
        torch.randn(2, 8),
        r"^block\.1 \(mish\): function torch\.nn\.functional\.mish is not supported: not yet in the \.hpk op set",
        None,
    ),
    "EmbeddingBag": (
        lambda: Wrap(nn.EmbeddingBag(10, 4), 4),
        torch.randint(0, 10, (2, 3)),
        r"^block: layer EmbeddingBag is not supported: not yet in the \.hpk op set",
        LEFT_DENSE + r"block \(EmbeddingBag\)",
    ),
    "MultiheadAttention-seq-first": (
        lambda: Wrap(Attention(), 5 * 8),
        torch.randn(2, 5, 8),
        r"^block\.attn \(chunk\): linear is laid out \[sequence, batch, …\] \(transpose\(0, 1\) / "
        r"batch_first=False\) and this op depends on the layout; use batch_first=True, or transpose back first$",
        None,  # compressed (HashedMultiheadAttention); this model's own input is [L, N, E]
    ),
    "ConvTranspose2d": (
        lambda: Wrap(nn.ConvTranspose2d(3, 2, 2, stride=2), 2 * 8 * 8),
        torch.randn(2, 3, 4, 4),
        r"^block: layer ConvTranspose2d is not supported: not yet in the \.hpk op set",
        LEFT_DENSE + r"block \(ConvTranspose2d\)",
    ),
    "LSTM": (
        lambda: Wrap(Recurrent(), 5 * 8),
        torch.randn(2, 5, 8),
        r"^block\.lstm: layer LSTM is not supported: not yet in the \.hpk op set",
        LEFT_DENSE + r"block\.lstm \(LSTM\)",
    ),
    "Upsample-module": (
        lambda: Wrap(nn.Upsample(scale_factor=2), 3 * 8 * 8),
        torch.randn(2, 3, 4, 4),
        r"^block: layer Upsample is not supported: not yet in the \.hpk op set",
        None,
    ),
    "Upsample-function": (
        lambda: Wrap(nn.Sequential(nn.Conv2d(3, 3, 1), Upsample()), 3 * 8 * 8),
        torch.randn(2, 3, 4, 4),
        r"^block\.1 \(interpolate\): function torch\.nn\.functional\.interpolate is not supported",
        None,
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_pack_fails_in_one_line_naming_layer_and_path(tmp_path: Path, name: str) -> None:
    build, x, pattern, _ = CASES[name]
    model = build().eval()
    with pytest.raises(UnsupportedModelError) as info:
        hashpack.pack(model, x, tmp_path / "m.hpk")
    message = str(info.value)
    assert "\n" not in message
    assert re.search(pattern, message), message
    assert not (tmp_path / "m.hpk").exists()


@pytest.mark.parametrize("name", list(CASES))
def test_compress_leaves_what_it_cannot_convert_dense_and_says_so(name: str) -> None:
    build, x, _, pattern = CASES[name]
    torch.manual_seed(0)
    model = build()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hashpack.compress(model, "hashed", compression=1 / 2)
    notes = [str(w.message) for w in caught if str(w.message).startswith("compress:")]
    if pattern is None:
        assert notes == []
    else:
        assert notes and all("\n" not in note for note in notes)
        assert any(re.search(pattern, note) for note in notes), notes
    assert type(model.head).__name__ == "HashedLinear"
    model.eval()
    with torch.no_grad():
        assert model(x).shape == (2, 2)


class Transformerish(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(6, 16)
        self.attn = nn.MultiheadAttention(16, 4, batch_first=True)
        layer = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.decoder = nn.TransformerDecoderLayer(16, 4, 32, dropout=0.0, batch_first=True)
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        h = self.attn(h, h, h)[0]
        h = self.encoder(h)
        return self.head(self.decoder(h, h).mean(1))


def test_compress_keeps_attention_and_transformer_layers_running() -> None:
    torch.manual_seed(0)
    model = Transformerish()
    x = torch.randn(3, 5, 6)
    with pytest.warns(UserWarning, match="parent reads their .weight/.bias directly") as caught:
        hashpack.compress(model, "hashed", compression=1 / 4)
    message = next(str(w.message) for w in caught if "directly" in str(w.message))
    for path in ("decoder.self_attn", "decoder.linear1"):  # the decoder layer reads weights directly
        assert f"{path} (read by " in message
    assert "encoder." not in message and " attn.out_proj" not in message
    assert type(model.encoder.layers[0].linear1).__name__ == "HashedLinear"
    assert type(model.attn).__name__ == "HashedMultiheadAttention"
    assert type(model.head).__name__ == "HashedLinear" and type(model.embed).__name__ == "HashedLinear"
    model.train()
    assert model(x).shape == (3, 3)
    model.eval()
    with torch.no_grad():  # eval + no_grad: the encoder layers' fast path reads linear weights itself
        assert model(x).shape == (3, 3)


def test_compress_converts_same_padding() -> None:
    """padding="same" with an odd kernel is symmetric numeric padding: compressed and packable."""
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding="same"), nn.Flatten(), nn.Linear(4 * 5 * 5, 2)).eval()
    hashpack.compress(model, "hashed", compression=1 / 2)
    assert type(model[0]).__name__ == "HashedConv2d" and model[0].padding == (1, 1)
    assert model(torch.randn(1, 2, 5, 5)).shape == (1, 2)


def test_cli_train_of_a_model_with_an_unsupported_layer_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`hashpack train --model` packs the user's model: an op outside the format is one line, exit 2."""
    from click.testing import CliRunner

    from hashpack.cli import main

    (tmp_path / "upnet.py").write_text(
        "from torch import nn\n\n\ndef net():\n"
        "    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Upsample(scale_factor=2), nn.Flatten(),\n"
        "                         nn.Linear(4 * 16 * 16, 10))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    result = CliRunner().invoke(
        main, ["train", "--model", "upnet:net", "--epochs", "1", "-o", str(tmp_path / "x.hpk")]
    )
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [
        "error: 1: layer Upsample is not supported: not yet in the .hpk op set (docs/FORMAT.md §5)"
    ]
    assert not (tmp_path / "x.hpk").exists()

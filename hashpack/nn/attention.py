"""Multi-head attention and Transformer encoder layers with compressed projections.

``nn.MultiheadAttention`` computes its projections from ``in_proj_weight`` inside
``F.multi_head_attention_forward``, so a hashed layer cannot simply be swapped in for a child.
``HashedMultiheadAttention`` holds the in-projection ([3E, E]) and ``out_proj`` as ordinary
(compressed) Linear layers and computes exactly ``nn.MultiheadAttention``'s math (batch_first
true or false, same q/k/v split, scaling and head layout). ``attention_forward`` is that math as
one function over two projection callables; the packer runs it on a dense ``nn.MultiheadAttention``
too (``F.linear`` on its weights), and ``encoder_layer_forward`` / ``encoder_forward`` are
``nn.TransformerEncoderLayer``'s / ``nn.TransformerEncoder``'s slow (non-fused) path, so one set
of traced code covers dense and compressed models.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

Projection = Callable[[torch.Tensor], torch.Tensor]


def _heads(x: torch.Tensor, num_heads: int, head_dim: int) -> torch.Tensor:
    """[N, L, E] -> [N, H, L, E/H] (shape arithmetic kept fx-traceable: no tuple unpacking)."""
    return x.reshape(x.shape[0], x.shape[1], num_heads, head_dim).transpose(1, 2)


def _in_rows(
    weight: torch.Tensor, bias: torch.Tensor | None, part: int, width: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The in-projection's rows ``[part·E, (part+1)·E)`` of ``weight`` and ``bias`` (q, k or v)."""
    rows = slice(part * width, (part + 1) * width)
    return weight[rows], None if bias is None else bias[rows]


def attention_forward(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    project_in: Callable[[torch.Tensor, int | None], torch.Tensor],
    project_out: Projection,
    embed_dim: int,
    num_heads: int,
    batch_first: bool,
    *,
    dropout: float = 0.0,
    training: bool = False,
    key_padding_mask: torch.Tensor | None = None,
    need_weights: bool = True,
    attn_mask: torch.Tensor | None = None,
    average_attn_weights: bool = True,
    is_causal: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``nn.MultiheadAttention.forward``'s math; ``project_in(x, part)`` projects with in-projection
    rows ``[part·E, (part+1)·E)`` (``part`` None: all 3E rows at once, for self-attention)."""
    same = query is key and key is value
    if not batch_first:  # [L, N, E] -> [N, L, E]
        if same:
            query = key = value = query.transpose(0, 1)
        else:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
    if same:  # self-attention: one [3E, E] projection, split in three
        qkv = project_in(query, None).chunk(3, dim=-1)
        q, k, v = qkv[0], qkv[1], qkv[2]
    else:
        q, k, v = project_in(query, 0), project_in(key, 1), project_in(value, 2)
    head_dim = embed_dim // num_heads
    q, k, v = (_heads(t, num_heads, head_dim) for t in (q, k, v))
    mask = _merged_mask(attn_mask, key_padding_mask, q)
    scale = 1.0 / math.sqrt(head_dim)
    p = dropout if training else 0.0
    weights = None
    if need_weights:  # torch computes the weights explicitly then, averaged over heads by default
        scores = (q * scale) @ k.transpose(-2, -1)
        if mask is not None:
            scores = scores + mask
        weights = torch.softmax(scores, dim=-1)
        out = F.dropout(weights, p, training=training) @ v if p > 0 else weights @ v
        if average_attn_weights:
            weights = weights.mean(dim=1)
    elif mask is None:
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=is_causal, scale=scale)
    else:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, scale=scale)
    out = project_out(out.transpose(1, 2).flatten(2))
    if not batch_first:
        out = out.transpose(0, 1)
    return out, weights


def _merged_mask(
    attn_mask: torch.Tensor | None, key_padding_mask: torch.Tensor | None, q: torch.Tensor
) -> torch.Tensor | None:
    """attn_mask and key_padding_mask as one additive float mask [N or 1, H or 1, L, S] (None if neither).

    ``is_causal`` alone is passed to SDPA as is; with a mask, torch's MHA requires attn_mask to hold
    the causal mask already (``is_causal`` is then only a hint), as here.
    """
    if attn_mask is None and key_padding_mask is None:
        return None
    n, heads, length, _ = q.shape
    merged = torch.zeros((), dtype=q.dtype)
    if attn_mask is not None:
        mask = _additive(attn_mask, q.dtype)
        merged = merged + (mask.view(n, heads, length, -1) if mask.dim() == 3 else mask)
    if key_padding_mask is not None:
        merged = merged + _additive(key_padding_mask, q.dtype).view(n, 1, 1, -1)
    return merged


def _additive(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=dtype).masked_fill(mask, float("-inf"))
    return mask.to(dtype)


class HashedMultiheadAttention(nn.Module):
    """``nn.MultiheadAttention`` (same-size q/k/v, no bias_k/v, no zero attention) whose in-projection
    ``in_proj`` ([3E, E]) and ``out_proj`` are any Linear-like layers, typically compressed ones.

    Exposes ``in_proj_weight``/``in_proj_bias`` (regenerated) and the flags the Transformer fast
    paths read, so ``nn.TransformerEncoderLayer`` keeps working around it.
    """

    _qkv_same_embed_dim = True
    bias_k = None
    bias_v = None
    add_zero_attn = False
    merge_masks = nn.MultiheadAttention.merge_masks

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        in_proj: nn.Module,
        out_proj: nn.Module,
        *,
        dropout: float = 0.0,
        batch_first: bool = False,
    ) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        self.embed_dim = self.kdim = self.vdim = embed_dim
        self.num_heads, self.head_dim = num_heads, embed_dim // num_heads
        self.dropout, self.batch_first = dropout, batch_first
        self.in_proj, self.out_proj = in_proj, out_proj

    @classmethod
    def supports(cls, mha: nn.MultiheadAttention) -> str | None:
        """Why ``mha`` cannot be converted (None if it can)."""
        if not mha._qkv_same_embed_dim:
            return "kdim/vdim differ from embed_dim"
        if mha.bias_k is not None or mha.add_zero_attn:
            return "add_bias_kv / add_zero_attn"
        return None

    @classmethod
    def from_dense(
        cls, mha: nn.MultiheadAttention, convert: Callable[[nn.Linear, str], nn.Module]
    ) -> HashedMultiheadAttention:
        """The same attention with ``convert(linear, "in_proj" | "out_proj")`` applied to each projection."""
        reason = cls.supports(mha)
        if reason:
            raise ValueError(f"nn.MultiheadAttention with {reason} cannot be converted")
        width = mha.embed_dim
        in_proj = nn.Linear(width, 3 * width, bias=mha.in_proj_bias is not None)
        out_proj = nn.Linear(width, width, bias=mha.out_proj.bias is not None)
        with torch.no_grad():
            in_proj.weight.copy_(mha.in_proj_weight)
            out_proj.weight.copy_(mha.out_proj.weight)
            if mha.in_proj_bias is not None:
                in_proj.bias.copy_(mha.in_proj_bias)
            if mha.out_proj.bias is not None:
                out_proj.bias.copy_(mha.out_proj.bias)
        return cls(
            width,
            mha.num_heads,
            convert(in_proj, "in_proj"),
            convert(out_proj, "out_proj"),
            dropout=mha.dropout,
            batch_first=mha.batch_first,
        )

    @property
    def in_proj_weight(self) -> torch.Tensor:
        return self.in_proj.weight

    @property
    def in_proj_bias(self) -> torch.Tensor | None:
        return self.in_proj.bias

    def _project_in(self, x: torch.Tensor, part: int | None) -> torch.Tensor:
        if part is None:
            return self.in_proj(x)
        return F.linear(x, *_in_rows(self.in_proj.weight, self.in_proj.bias, part, self.embed_dim))

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        need_weights: bool = True,
        attn_mask: torch.Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        return attention_forward(
            query,
            key,
            value,
            self._project_in,
            self.out_proj,
            self.embed_dim,
            self.num_heads,
            self.batch_first,
            dropout=self.dropout,
            training=self.training,
            key_padding_mask=key_padding_mask,
            need_weights=need_weights,
            attn_mask=attn_mask,
            average_attn_weights=average_attn_weights,
            is_causal=is_causal,
        )

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, batch_first={self.batch_first}"


def dense_attention_forward(
    mha: nn.MultiheadAttention, *args, **kwargs
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A dense ``nn.MultiheadAttention``'s forward as ``attention_forward`` (what the packer traces)."""
    reason = HashedMultiheadAttention.supports(mha)
    if reason:
        raise ValueError(f"nn.MultiheadAttention with {reason} is not supported")
    names = ("key_padding_mask", "need_weights", "attn_mask", "average_attn_weights", "is_causal")
    query, key, value, *rest = args
    options = dict(zip(names, rest, strict=False)) | kwargs
    width = mha.embed_dim

    def project_in(x: torch.Tensor, part: int | None) -> torch.Tensor:
        weight, bias = mha.in_proj_weight, mha.in_proj_bias
        if part is not None:
            weight, bias = _in_rows(weight, bias, part, width)
        return F.linear(x, weight, bias)

    return attention_forward(
        query,
        key,
        value,
        project_in,
        mha.out_proj,
        mha.embed_dim,
        mha.num_heads,
        mha.batch_first,
        dropout=mha.dropout,
        training=mha.training,
        **options,
    )


def encoder_layer_forward(
    layer: nn.TransformerEncoderLayer,
    src: torch.Tensor,
    src_mask: torch.Tensor | None = None,
    src_key_padding_mask: torch.Tensor | None = None,
    is_causal: bool = False,
) -> torch.Tensor:
    """``nn.TransformerEncoderLayer.forward`` without the fused fast path (the same math)."""

    def attend(x: torch.Tensor) -> torch.Tensor:
        out = layer.self_attn(
            x,
            x,
            x,
            attn_mask=src_mask,
            key_padding_mask=src_key_padding_mask,
            need_weights=False,
            is_causal=is_causal,
        )[0]
        return layer.dropout1(out)

    def feed_forward(x: torch.Tensor) -> torch.Tensor:
        return layer.dropout2(layer.linear2(layer.dropout(layer.activation(layer.linear1(x)))))

    x = src
    if layer.norm_first:
        x = x + attend(layer.norm1(x))
        return x + feed_forward(layer.norm2(x))
    x = layer.norm1(x + attend(x))
    return layer.norm2(x + feed_forward(x))


def encoder_forward(
    encoder: nn.TransformerEncoder,
    src: torch.Tensor,
    mask: torch.Tensor | None = None,
    src_key_padding_mask: torch.Tensor | None = None,
    is_causal: bool | None = None,
) -> torch.Tensor:
    """``nn.TransformerEncoder.forward`` without nested tensors (the same math)."""
    output = src
    for layer in encoder.layers:
        output = layer(
            output, src_mask=mask, is_causal=bool(is_causal), src_key_padding_mask=src_key_padding_mask
        )
    if encoder.norm is not None:
        output = encoder.norm(output)
    return output

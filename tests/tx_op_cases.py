"""The transformer ops (docs/FORMAT.md §5, issue 15) as data: one table every backend iterates.

The sibling of ``zoo_op_cases.py`` with two additions transformer graphs need: params (dense
weights, tables, class tokens) and int32 token-id inputs. Each ``TxCase`` is a tiny graph (graph
input ``x``, nodes writing ``y0``, ``y1``, …, the last one the output) plus the torch expression it
must equal; ``case_hpk`` turns it into a valid .hpk file whose golden outputs come from torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from hashpack.nn.hashing import bucket_and_sign
from hashpack.runtime import HpkFile, ValueInfo
from hashpack.runtime.hpk import Node, Param, Space

GOLDEN_BATCH = 2
TOLERANCE = 1e-5  # absolute, on outputs of magnitude ≲ 10

# (op, inputs, attrs, params: slot -> param name)
TxNode = tuple[str, tuple[str, ...], dict[str, Any], dict[str, str]]


@dataclass(frozen=True)
class TxCase:
    """A graph of ``nodes`` over input ``x`` of ``input_shape`` (batch excluded) with dense ``params``.

    ``vocab`` > 0 makes ``x`` an int32 graph input of token ids drawn from ``[0, vocab)``.
    """

    id: str
    input_shape: tuple[int, ...]
    nodes: tuple[TxNode, ...]
    reference: Callable[[torch.Tensor, dict[str, torch.Tensor]], torch.Tensor]
    params: dict[str, tuple[int, ...]] = field(default_factory=dict)  # name -> shape, values ~ N(0, 1)
    scale: float = 1.0
    vocab: int = 0
    hashed: tuple[str, ...] = ()  # params stored as `hashed` (K = numel / 4 buckets) instead of dense

    @property
    def ops(self) -> set[str]:
        return {op for op, _, _, _ in self.nodes}


def _n(
    op: str, inputs: tuple[str, ...] = ("x",), attrs: dict | None = None, params: dict | None = None
) -> TxNode:
    return (op, inputs, attrs or {}, params or {})


HASHED_SEED = 2840119437


def _hashed_table(values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The virtual tensor of a `hashed` param (FORMAT.md §4) over bucket ``values`` (torch hp32)."""
    index, sign = bucket_and_sign(math.prod(shape), HASHED_SEED, values.shape[0])
    return (torch.from_numpy(values)[index] * sign).reshape(shape).numpy()


CASES: list[TxCase] = [
    # LayerNorm: one and two normalized dims, affine or not
    TxCase(
        "layernorm-last-affine",
        (5, 8),
        (_n("LayerNorm", attrs={"dims": 1, "eps": 1e-5}, params={"weight": "w", "bias": "b"}),),
        lambda x, p: F.layer_norm(x, (8,), p["w"], p["b"], 1e-5),
        params={"w": (8,), "b": (8,)},
        scale=3.0,
    ),
    TxCase(
        "layernorm-two-dims",
        (3, 4, 5),
        (_n("LayerNorm", attrs={"dims": 2, "eps": 1e-6}, params={"weight": "w", "bias": "b"}),),
        lambda x, p: F.layer_norm(x, (4, 5), p["w"], p["b"], 1e-6),
        params={"w": (4, 5), "b": (4, 5)},
    ),
    TxCase(
        "layernorm-plain-rank2",
        (16,),
        (_n("LayerNorm", attrs={"dims": 1, "eps": 0.1}),),
        lambda x, p: F.layer_norm(x, (16,), eps=0.1),
        scale=5.0,
    ),
    # Gelu: exact and tanh forms
    TxCase(
        "gelu-erf", (3, 7), (_n("Gelu", attrs={"approximate": False}),), lambda x, p: F.gelu(x), scale=4.0
    ),
    TxCase(
        "gelu-tanh",
        (3, 7),
        (_n("Gelu", attrs={"approximate": True}),),
        lambda x, p: F.gelu(x, approximate="tanh"),
        scale=4.0,
    ),
    # Linear over the last axis of a rank-3 value (a transformer's [N, L, D])
    TxCase(
        "linear-rank3",
        (5, 6),
        (_n("Linear", params={"weight": "w", "bias": "b"}),),
        lambda x, p: F.linear(x, p["w"], p["b"]),
        params={"w": (3, 6), "b": (3,)},
    ),
    # MatMul, rank 3 and 4
    TxCase(
        "matmul-rank3",
        (4, 6),
        (_n("Transpose", attrs={"perm": [0, 2, 1]}), _n("MatMul", ("x", "y0"))),
        lambda x, p: x @ x.transpose(1, 2),
    ),
    TxCase(
        "matmul-rank4",
        (2, 3, 5),
        (_n("Transpose", attrs={"perm": [0, 1, 3, 2]}), _n("MatMul", ("y0", "x"))),
        lambda x, p: x.transpose(2, 3) @ x,
    ),
    # Attention: self-attention, causal, L != S, Ev != E
    TxCase(
        "attention-self",
        (2, 5, 4),
        (_n("Attention", ("x", "x", "x"), {"scale": 0.5, "causal": False}),),
        lambda x, p: F.scaled_dot_product_attention(x, x, x, scale=0.5),
        scale=2.0,
    ),
    TxCase(
        "attention-causal",
        (2, 5, 4),
        (_n("Attention", ("x", "x", "x"), {"scale": 1 / math.sqrt(4), "causal": True}),),
        lambda x, p: F.scaled_dot_product_attention(x, x, x, is_causal=True, scale=1 / math.sqrt(4)),
        scale=2.0,
    ),
    TxCase(
        "attention-cross-causal",
        (3, 6, 4),
        (
            _n("Slice", attrs={"axis": 2, "start": 1, "end": 4}),
            _n("Slice", attrs={"axis": 3, "start": 0, "end": 2}),
            _n("Attention", ("y0", "x", "y1"), {"scale": 0.7, "causal": True}),
        ),
        lambda x, p: F.scaled_dot_product_attention(x[:, :, 1:4], x, x[..., :2], is_causal=True, scale=0.7),
    ),
    # Constant: class token + positional embedding (ViT), a get_attr tensor
    TxCase(
        "constant-cls-pos",
        (4, 3),
        (
            _n("Constant", params={"value": "cls"}),
            _n("Concat", ("y0", "x"), {"axis": 1}),
            _n("Constant", params={"value": "pos"}),
            _n("Add", ("y1", "y2")),
        ),
        lambda x, p: torch.cat([p["cls"].expand(x.shape[0], 1, 3), x], 1) + p["pos"],
        params={"cls": (1, 3), "pos": (5, 3)},
    ),
    TxCase(
        "constant-rank1",
        (3,),
        (_n("Constant", params={"value": "c"}), _n("Mul", ("x", "y0"))),
        lambda x, p: x * p["c"],
        params={"c": (3,)},
    ),
    # Embedding: int32 token ids, padding_idx, embedding + mean (a recommender head)
    TxCase(
        "embedding-tokens",
        (6,),
        (_n("Embedding", params={"weight": "table"}),),
        lambda x, p: F.embedding(x, p["table"]),
        params={"table": (11, 4)},
        vocab=11,
    ),
    TxCase(
        "embedding-padding-idx",
        (3, 4),
        (_n("Embedding", attrs={"padding_idx": 2}, params={"weight": "table"}),),
        lambda x, p: F.embedding(x, p["table"]).masked_fill((x == 2).unsqueeze(-1), 0.0),
        params={"table": (5, 3)},
        vocab=5,
    ),
    TxCase(
        "embedding-mean-linear",
        (7,),
        (
            _n("Embedding", params={"weight": "table"}),
            _n("Mean", ("y0",), {"dims": [1], "keepdim": False}),
            _n("Linear", ("y1",), params={"weight": "w"}),
        ),
        lambda x, p: F.linear(F.embedding(x, p["table"]).mean(1), p["w"]),
        params={"table": (20, 6), "w": (2, 6)},
        vocab=20,
    ),
    # a hashed table (backends may gather only the rows looked up: hash id·D + j)
    TxCase(
        "embedding-hashed-table",
        (9,),
        (_n("Embedding", attrs={"padding_idx": 0}, params={"weight": "table"}),),
        lambda x, p: F.embedding(x, p["table"]).masked_fill((x == 0).unsqueeze(-1), 0.0),
        params={"table": (300, 8)},
        vocab=300,
        hashed=("table",),
    ),
    # a whole attention block's plumbing: heads split, attention, heads merged, softmax elsewhere
    TxCase(
        "mha-plumbing",
        (5, 8),
        (
            _n("Linear", params={"weight": "w_in"}),
            _n("Slice", ("y0",), {"axis": 2, "start": 0, "end": 8}),
            _n("Slice", ("y0",), {"axis": 2, "start": 8, "end": 16}),
            _n("Slice", ("y0",), {"axis": 2, "start": 16, "end": 24}),
            _n("Reshape", ("y1",), {"shape": [5, 2, 4]}),
            _n("Reshape", ("y2",), {"shape": [5, 2, 4]}),
            _n("Reshape", ("y3",), {"shape": [5, 2, 4]}),
            _n("Transpose", ("y4",), {"perm": [0, 2, 1, 3]}),
            _n("Transpose", ("y5",), {"perm": [0, 2, 1, 3]}),
            _n("Transpose", ("y6",), {"perm": [0, 2, 1, 3]}),
            _n("Attention", ("y7", "y8", "y9"), {"scale": 0.5, "causal": False}),
            _n("Transpose", ("y10",), {"perm": [0, 2, 1, 3]}),
            _n("Reshape", ("y11",), {"shape": [5, 8]}),
            _n("Softmax", ("y12",), {"axis": -1}),
        ),
        lambda x, p: F.softmax(
            torch.nn.functional.multi_head_attention_forward(
                x.transpose(0, 1),
                x.transpose(0, 1),
                x.transpose(0, 1),
                8,
                2,
                p["w_in"],
                None,
                None,
                None,
                False,
                0.0,
                torch.eye(8),
                None,
                training=False,
                need_weights=False,
            )[0].transpose(0, 1),
            -1,
        ),
        params={"w_in": (24, 8)},
    ),
]

CASE_IDS = [case.id for case in CASES]
TX_OPS = ("LayerNorm", "Gelu", "MatMul", "Attention", "Constant", "Embedding", "Linear")


def case_input(case: TxCase, batch: int = GOLDEN_BATCH, seed: int = 0) -> np.ndarray:
    """Float32 inputs ~ scale·N(0, 1), or for an ids case whole numbers in [0, vocab) (stored as F32)."""
    generator = torch.Generator().manual_seed(seed)
    if case.vocab:
        return torch.randint(0, case.vocab, (batch, *case.input_shape), generator=generator).float().numpy()
    return (case.scale * torch.randn(batch, *case.input_shape, generator=generator)).numpy()


def case_params(case: TxCase, seed: int = 1) -> dict[str, np.ndarray]:
    """Dense values per param; for a hashed param, its K = numel / 4 bucket values."""
    generator = torch.Generator().manual_seed(seed)
    return {
        name: torch.randn(
            math.prod(shape) // 4 if name in case.hashed else math.prod(shape), generator=generator
        )
        .reshape(-1 if name in case.hashed else shape)
        .numpy()
        for name, shape in case.params.items()
    }


def case_hpk(case: TxCase, batch: int = GOLDEN_BATCH, seed: int = 0) -> HpkFile:
    """The case as a .hpk file; golden inputs random, golden outputs computed by torch."""
    x = case_input(case, batch, seed)
    values = case_params(case)
    torch_x = torch.from_numpy(x).long() if case.vocab else torch.from_numpy(x)
    virtual = {
        name: _hashed_table(v, case.params[name]) if name in case.hashed else v for name, v in values.items()
    }
    with torch.no_grad():
        weights = {name: torch.from_numpy(v) for name, v in virtual.items()}
        y = case.reference(torch_x, weights).contiguous().numpy().astype(np.float32)
    nodes = [
        Node(op, f"n{i}", inputs, (f"y{i}",), dict(params), dict(attrs))
        for i, (op, inputs, attrs, params) in enumerate(case.nodes)
    ]
    params, spaces, tensors = {}, {}, {}
    for name, v in values.items():
        if name in case.hashed:
            spaces[name] = Space(name, v.shape[0], "float32", f"spaces/{name}")
            spec = {"space": name, "seed": HASHED_SEED}
            params[name] = Param(name, "hashed", case.params[name], spec)
            tensors[f"spaces/{name}"] = v
        else:
            params[name] = Param(name, "dense", tuple(v.shape), {"tensor": f"params/{name}"})
            tensors[f"params/{name}"] = v
    return HpkFile(
        inputs=[ValueInfo("x", (None, *case.input_shape), "int32" if case.vocab else "float32")],
        outputs=[ValueInfo(f"y{len(nodes) - 1}", (None, *y.shape[1:]))],
        spaces=spaces,
        params=params,
        nodes=nodes,
        tensors={**tensors, "golden/inputs": x, "golden/outputs": y},
        golden={"inputs": "golden/inputs", "outputs": "golden/outputs"},
        producer="tx op case",
    )

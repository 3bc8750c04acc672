"""The zoo ops (docs/FORMAT.md §5, issue 13) as data: one table every backend iterates.

Like onnx's backend test cases: each ``OpCase`` is a tiny graph (graph input ``x``, nodes writing
``y0``, ``y1``, …, the last one the output) plus the torch expression it must equal. ``case_hpk``
turns a case into a valid .hpk file whose golden outputs come from torch, so a backend test is:
write the file, run it in the backend, compare with the golden outputs. A backend that lacks an
op fails its test for that case instead of being forgotten.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from hashpack.runtime import HpkFile, ValueInfo
from hashpack.runtime.hpk import Node

GOLDEN_BATCH = 2
TOLERANCE = 1e-5  # absolute, on outputs of magnitude ≲ 10


@dataclass(frozen=True)
class OpCase:
    """A graph of ``nodes`` (op, input names, attrs) over input ``x`` of ``input_shape`` (batch excluded)."""

    id: str
    input_shape: tuple[int, ...]
    nodes: tuple[tuple[str, tuple[str, ...], dict[str, Any]], ...]
    reference: Callable[[torch.Tensor], torch.Tensor]
    scale: float = 1.0  # input ~ scale · N(0, 1), so activations see their interesting range

    @property
    def ops(self) -> set[str]:
        return {op for op, _, _ in self.nodes}


def _one(
    op: str, attrs: dict[str, Any] | None = None
) -> tuple[tuple[str, tuple[str, ...], dict[str, Any]], ...]:
    return ((op, ("x",), attrs or {}),)


def _shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """torchvision's channel_shuffle."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).contiguous().view(n, c, h, w)


def _pool(kernel, stride, padding, dilation=(1, 1), ceil_mode=None) -> dict[str, Any]:
    attrs = {
        "kernel": list(kernel),
        "stride": list(stride),
        "padding": list(padding),
        "dilation": list(dilation),
    }
    if ceil_mode is not None:
        attrs["ceil_mode"] = ceil_mode
    return attrs


def _avg(kernel, stride, padding, count_include_pad, ceil_mode=None) -> dict[str, Any]:
    attrs = {
        "kernel": list(kernel),
        "stride": list(stride),
        "padding": list(padding),
        "count_include_pad": count_include_pad,
    }
    if ceil_mode is not None:
        attrs["ceil_mode"] = ceil_mode
    return attrs


CASES: list[OpCase] = [
    # activations
    OpCase("hardswish", (3, 5, 5), _one("Hardswish"), F.hardswish, scale=4.0),
    OpCase("hardsigmoid", (3, 5, 5), _one("Hardsigmoid"), F.hardsigmoid, scale=4.0),
    OpCase("silu", (3, 5, 5), _one("Silu"), F.silu, scale=4.0),
    OpCase("silu-rank2", (17,), _one("Silu"), F.silu, scale=30.0),
    # adaptive pooling: output smaller, equal, larger than the input, non-dividing
    OpCase(
        "adaptive-avg-7x7-from-2x2",
        (3, 2, 2),
        _one("AdaptiveAvgPool2d", {"output": [7, 7]}),
        lambda x: F.adaptive_avg_pool2d(x, (7, 7)),
    ),
    OpCase(
        "adaptive-avg-5x3-from-7x9",
        (2, 7, 9),
        _one("AdaptiveAvgPool2d", {"output": [5, 3]}),
        lambda x: F.adaptive_avg_pool2d(x, (5, 3)),
    ),
    OpCase(
        "adaptive-avg-1x1",
        (4, 3, 5),
        _one("AdaptiveAvgPool2d", {"output": [1, 1]}),
        lambda x: F.adaptive_avg_pool2d(x, 1),
    ),
    OpCase(
        "adaptive-max-3x3-from-8x8",
        (2, 8, 8),
        _one("AdaptiveMaxPool2d", {"output": [3, 3]}),
        lambda x: F.adaptive_max_pool2d(x, 3),
    ),
    OpCase(
        "adaptive-max-4x6-from-3x5",
        (2, 3, 5),
        _one("AdaptiveMaxPool2d", {"output": [4, 6]}),
        lambda x: F.adaptive_max_pool2d(x, (4, 6)),
    ),
    # pooling with ceil_mode (squeezenet: MaxPool2d(3, 2, ceil_mode=True))
    OpCase(
        "maxpool-ceil-k3s2-15",
        (2, 15, 15),
        _one("MaxPool2d", _pool((3, 3), (2, 2), (0, 0), ceil_mode=True)),
        lambda x: F.max_pool2d(x, 3, 2, ceil_mode=True),
    ),
    OpCase(
        "maxpool-ceil-k3s2-16",
        (2, 16, 16),
        _one("MaxPool2d", _pool((3, 3), (2, 2), (0, 0), ceil_mode=True)),
        lambda x: F.max_pool2d(x, 3, 2, ceil_mode=True),
    ),
    OpCase(
        "maxpool-ceil-k2s2-p1-7x6",
        (2, 7, 6),
        _one("MaxPool2d", _pool((2, 2), (2, 2), (1, 1), ceil_mode=True)),
        lambda x: F.max_pool2d(x, 2, 2, 1, ceil_mode=True),
    ),
    OpCase(
        "maxpool-ceil-dilated",
        (2, 11, 10),
        _one("MaxPool2d", _pool((3, 2), (2, 3), (1, 1), (2, 1), ceil_mode=True)),
        lambda x: F.max_pool2d(x, (3, 2), (2, 3), 1, (2, 1), ceil_mode=True),
    ),
    OpCase(
        "maxpool-ceil-false-explicit",
        (2, 7, 7),
        _one("MaxPool2d", _pool((3, 3), (2, 2), (0, 0), ceil_mode=False)),
        lambda x: F.max_pool2d(x, 3, 2),
    ),
    OpCase(
        "avgpool-ceil-k3s2-p0",
        (2, 8, 8),
        _one("AvgPool2d", _avg((3, 3), (2, 2), (0, 0), True, ceil_mode=True)),
        lambda x: F.avg_pool2d(x, 3, 2, 0, ceil_mode=True, count_include_pad=True),
    ),
    OpCase(
        "avgpool-ceil-k3s2-p1-include-pad",
        (2, 8, 7),
        _one("AvgPool2d", _avg((3, 3), (2, 2), (1, 1), True, ceil_mode=True)),
        lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=True),
    ),
    OpCase(
        "avgpool-ceil-k3s2-p1-exclude-pad",
        (2, 8, 7),
        _one("AvgPool2d", _avg((3, 3), (2, 2), (1, 1), False, ceil_mode=True)),
        lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False),
    ),
    # shape ops
    OpCase(
        "transpose-5d",
        (4, 2, 3, 5),
        _one("Transpose", {"perm": [0, 2, 1, 3, 4]}),
        lambda x: x.transpose(1, 2),
    ),
    OpCase("transpose-3d", (4, 6), _one("Transpose", {"perm": [0, 2, 1]}), lambda x: x.permute(0, 2, 1)),
    OpCase(
        "transpose-4d-rotate",
        (2, 3, 4),
        _one("Transpose", {"perm": [0, 3, 1, 2]}),
        lambda x: x.permute(0, 3, 1, 2),
    ),
    OpCase(
        "slice-channels-first-half",
        (8, 3, 3),
        _one("Slice", {"axis": 1, "start": 0, "end": 4}),
        lambda x: x.chunk(2, dim=1)[0],
    ),
    OpCase(
        "slice-channels-second-half",
        (8, 3, 3),
        _one("Slice", {"axis": 1, "start": 4, "end": 8}),
        lambda x: x.chunk(2, dim=1)[1],
    ),
    OpCase(
        "slice-last-axis",
        (2, 3, 7),
        _one("Slice", {"axis": 3, "start": 2, "end": 7}),
        lambda x: x.narrow(3, 2, 5),
    ),
    OpCase(
        "mean-hw",
        (5, 4, 3),
        _one("Mean", {"dims": [2, 3], "keepdim": False}),
        lambda x: x.mean([2, 3]),
    ),
    OpCase(
        "mean-hw-keepdim",
        (5, 4, 3),
        _one("Mean", {"dims": [3, 2], "keepdim": True}),
        lambda x: x.mean([3, 2], keepdim=True),
    ),
    OpCase(
        "mean-channels", (5, 4, 3), _one("Mean", {"dims": [1], "keepdim": True}), lambda x: x.mean(1, True)
    ),
    # Mul: equal shapes and squeeze-and-excitation gating, broadcast either way
    OpCase(
        "mul-se-gate",
        (6, 5, 4),
        (("GlobalAvgPool", ("x",), {}), ("Sigmoid", ("y0",), {}), ("Mul", ("x", "y1"), {})),
        lambda x: x * torch.sigmoid(x.mean((2, 3), keepdim=True)),
    ),
    OpCase(
        "mul-gate-first",
        (6, 5, 4),
        (("GlobalAvgPool", ("x",), {}), ("Mul", ("y0", "x"), {})),
        lambda x: x.mean((2, 3), keepdim=True) * x,
    ),
    OpCase("mul-square", (3, 4), (("Mul", ("x", "x"), {}),), lambda x: x * x),
    OpCase(
        "mul-two-way",
        (4, 1),
        (("Reshape", ("x",), {"shape": [1, 4]}), ("Mul", ("x", "y0"), {})),
        lambda x: x * x.reshape(x.shape[0], 1, 4),
    ),
    # the compositions the zoo produces
    OpCase(
        "channel-shuffle",
        (6, 3, 2),
        (
            ("Reshape", ("x",), {"shape": [2, 3, 3, 2]}),
            ("Transpose", ("y0",), {"perm": [0, 2, 1, 3, 4]}),
            ("Reshape", ("y1",), {"shape": [6, 3, 2]}),
        ),
        lambda x: _shuffle(x, 2),
    ),
    OpCase(
        "split-shuffle-concat",
        (4, 3, 3),
        (
            ("Slice", ("x",), {"axis": 1, "start": 0, "end": 2}),
            ("Slice", ("x",), {"axis": 1, "start": 2, "end": 4}),
            ("Hardswish", ("y1",), {}),
            ("Concat", ("y0", "y2"), {"axis": 1}),
            ("Reshape", ("y3",), {"shape": [2, 2, 3, 3]}),
            ("Transpose", ("y4",), {"perm": [0, 2, 1, 3, 4]}),
            ("Reshape", ("y5",), {"shape": [4, 3, 3]}),
        ),
        lambda x: _shuffle(torch.cat([x.chunk(2, 1)[0], F.hardswish(x.chunk(2, 1)[1])], 1), 2),
        scale=3.0,
    ),
]

CASE_IDS = [case.id for case in CASES]
ZOO_OPS = (
    "Mul",
    "Hardswish",
    "Hardsigmoid",
    "Silu",
    "AdaptiveAvgPool2d",
    "AdaptiveMaxPool2d",
    "MaxPool2d",
    "AvgPool2d",
    "Transpose",
    "Slice",
    "Mean",
)


def case_input(case: OpCase, batch: int = GOLDEN_BATCH, seed: int = 0) -> np.ndarray:
    generator = torch.Generator().manual_seed(seed)
    return (case.scale * torch.randn(batch, *case.input_shape, generator=generator)).numpy()


def case_hpk(case: OpCase, batch: int = GOLDEN_BATCH, seed: int = 0) -> HpkFile:
    """The case as a .hpk file; golden inputs random, golden outputs computed by torch."""
    x = case_input(case, batch, seed)
    with torch.no_grad():
        y = case.reference(torch.from_numpy(x)).contiguous().numpy().astype(np.float32)
    nodes = [
        Node(op, f"n{i}", inputs, (f"y{i}",), {}, dict(attrs))
        for i, (op, inputs, attrs) in enumerate(case.nodes)
    ]
    return HpkFile(
        inputs=[ValueInfo("x", (None, *case.input_shape))],
        outputs=[ValueInfo(f"y{len(nodes) - 1}", (None, *y.shape[1:]))],
        spaces={},
        params={},
        nodes=nodes,
        tensors={"golden/inputs": x, "golden/outputs": y},
        golden={"inputs": "golden/inputs", "outputs": "golden/outputs"},
        producer="zoo op case",
    )

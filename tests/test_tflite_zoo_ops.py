"""The zoo ops (docs/FORMAT.md §5, issue 13) in the TFLite exporter: LiteRT against the numpy runtime.

Two tables:

- ``zoo_op_cases.CASES``, shared by every backend: each op alone on the graph input, exported
  in every weights mode and run in LiteRT with its default kernels (XNNPACK) and with the
  builtin kernels only, against the numpy runtime and the torch golden outputs;
- ``LAYOUT_CASES`` here: the same ops behind a *hashed* Conv2d, so their input is held in
  LiteRT's NHWC layout (the exporter must map axes, perms and dims through it) and the weights
  modes differ (once, inline, expanded and a materialized ``--materializable`` once file).
  They cover the lowering's branches: ceil_mode windows that SAME can and cannot place, the
  AvgPool2d divisor with and without counted padding, adaptive pools that are one pool op,
  need a GATHER on one or both axes, or whose output is larger than the input, two-way
  broadcast Mul in both layouts, every rank-4 Transpose perm, Slice on every axis, Mean over
  every set of dims with and without keepdim, and ranks above what single LiteRT ops take.

Tolerance as tests/test_tflite_export.py: max |LiteRT - reference| <= 1e-4 · max |reference| + 1e-6.
"""

from __future__ import annotations

import functools
import itertools
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from litert_tools import RESOLVERS, opcode_names, run_serving
from test_tflite_export import _assert_close
from torch import nn
from zoo_op_cases import CASE_IDS, CASES, ZOO_OPS, OpCase, case_hpk

import hashpack
from hashpack.exporter.tflite import WEIGHT_MODES, build_tflite
from hashpack.exporter.tflite.graph import OPS as EXPORTER_OPS
from hashpack.exporter.tflite.layout import reshape_groups
from hashpack.exporter.tflite.materialize import materialize
from hashpack.exporter.tflite.window_pool import adaptive_windows, regular_windows
from hashpack.runtime import HpkFile, HpkFormatError, load, read_hpk, write_hpk
from hashpack.runtime.hpk import Node, ValueInfo
from hashpack.runtime.ops import OPS

# --------------------------------------------------------------------- the shared op-case table


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_shared_case_matches_numpy_runtime(tmp_path: Path, case: OpCase) -> None:
    path = tmp_path / f"{case.id}.hpk"
    write_hpk(case_hpk(case), path)
    model = load(path)
    x = np.concatenate([model.golden_inputs, 3 * model.golden_inputs[:1]])  # batch 3, not the golden 2
    want = model.run(x)
    for mode in WEIGHT_MODES:
        exported = build_tflite(path, mode)
        for resolver in RESOLVERS:
            got = run_serving(exported.data, x, exported.input_name, exported.output_name, resolver)
            _assert_close(got, want, f"{case.id} {mode} {resolver} vs numpy runtime")
            _assert_close(got[:2], model.golden_outputs, f"{case.id} {mode} {resolver} vs torch")


# ------------------------------------------------ the ops behind a hashed conv (NHWC, all modes)

CONV_OUT = "c"  # name of the conv's output in the LAYOUT_CASES graphs


@functools.cache
def _conv_base(channels: int, height: int, width: int, root: str) -> Path:
    """A .hpk holding one hashed 3×3 Conv2d (3 → ``channels``) on 3×H×W, its output named ``c``."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1))
    hashpack.compress(model, method="hashed", compression=1 / 4, seed=5)
    model.eval()
    path = Path(root) / f"conv-{channels}x{height}x{width}.hpk"
    hashpack.pack(model, torch.randn(2, 3, height, width), path)
    hpk = read_hpk(path)
    (node,) = hpk.nodes
    hpk.nodes = [replace(node, outputs=(CONV_OUT,))]
    hpk.outputs = [ValueInfo(CONV_OUT, hpk.output.shape)]
    for tensor in [name for name in hpk.tensors if name.startswith("golden/")]:
        del hpk.tensors[tensor]
    hpk.golden = None
    write_hpk(hpk, path)
    return path


def _layout_case(
    root: Path, case_id: str, chw: tuple[int, int, int], nodes: list[tuple[str, list[str], dict[str, Any]]]
) -> Path:
    """The conv base + ``nodes`` (op, inputs, attrs) writing ``z0``, ``z1``, ... (the last one the output)."""
    hpk = read_hpk(_conv_base(*chw, str(root)))
    shapes = {CONV_OUT: hpk.output.shape}
    for i, (op, inputs, attrs) in enumerate(nodes):
        out = f"z{i}"
        node = Node(op, f"m{i}", tuple(inputs), (out,), {}, dict(attrs))
        problem = OPS[op].check(node, {})  # the reader's attr checks, then its shape rule
        if problem:
            raise ValueError(problem)
        hpk.nodes.append(node)
        shapes[out] = OPS[op].infer([shapes[name] for name in inputs], attrs, {})[0]
    hpk.outputs = [ValueInfo(out, shapes[out])]
    path = root / f"{case_id}.hpk"
    write_hpk(hpk, path)
    return path


def _pool(kernel, stride, padding, ceil_mode, dilation=(1, 1)) -> dict[str, Any]:
    return {"kernel": list(kernel), "stride": list(stride), "padding": list(padding),
            "dilation": list(dilation), "ceil_mode": ceil_mode}  # fmt: skip


def _avg(kernel, stride, padding, include, ceil_mode) -> dict[str, Any]:
    return {"kernel": list(kernel), "stride": list(stride), "padding": list(padding),
            "count_include_pad": include, "ceil_mode": ceil_mode}  # fmt: skip


# id -> (conv output C×H×W, nodes on top of the conv output "c")
LAYOUT_CASES: dict[str, tuple[tuple[int, int, int], list[tuple[str, list[str], dict[str, Any]]]]] = {}


def _case(case_id: str, chw: tuple[int, int, int], *nodes: tuple[str, list[str], dict[str, Any]]) -> None:
    assert case_id not in LAYOUT_CASES
    LAYOUT_CASES[case_id] = (chw, list(nodes))


# activations on an NHWC tensor
_case("hardswish", (4, 6, 6), ("Hardswish", ["c"], {}))
_case("hardsigmoid", (4, 6, 6), ("Hardsigmoid", ["c"], {}))
_case("silu", (4, 6, 6), ("Silu", ["c"], {}))
# ceil_mode: SAME places the windows (16 → 8 with k2 s2 ... ) or not (squeezenet's 3/2 on odd sizes)
for _size in (7, 8, 15, 16):
    _case(
        f"maxpool-ceil-k3s2-{_size}",
        (4, _size, _size),
        ("MaxPool2d", ["c"], _pool((3, 3), (2, 2), (0, 0), True)),
    )
_case("maxpool-ceil-k2s2-p1", (4, 7, 6), ("MaxPool2d", ["c"], _pool((2, 2), (2, 2), (1, 1), True)))
_case("maxpool-ceil-k3s3-p1-rect", (4, 10, 8), ("MaxPool2d", ["c"], _pool((3, 2), (3, 2), (1, 1), True)))
_case("maxpool-ceil-same-fits", (4, 9, 9), ("MaxPool2d", ["c"], _pool((3, 3), (2, 2), (1, 1), True)))
_case("maxpool-floor-unchanged", (4, 9, 9), ("MaxPool2d", ["c"], _pool((3, 3), (2, 2), (1, 1), False)))
_case("maxpool-ceil-dilated", (4, 11, 10), ("MaxPool2d", ["c"], _pool((3, 2), (2, 3), (1, 1), True, (2, 1))))
_case("maxpool-dilated", (4, 9, 9), ("MaxPool2d", ["c"], _pool((2, 2), (1, 1), (0, 0), False, (3, 2))))
for _include, _pad, _ceil in itertools.product((True, False), (0, 1), (True, False)):
    _case(
        f"avgpool-k3s2-p{_pad}-{'incl' if _include else 'excl'}-{'ceil' if _ceil else 'floor'}",
        (4, 8, 7),
        ("AvgPool2d", ["c"], _avg((3, 3), (2, 2), (_pad, _pad), _include, _ceil)),
    )
_case(
    "avgpool-ceil-k2s2-p1-excl-same",
    (4, 7, 7),
    ("AvgPool2d", ["c"], _avg((2, 2), (2, 2), (1, 1), False, True)),
)
# adaptive pools: one pool op, a GATHER on one or both axes, output larger than the input, identity
for _kind in ("Avg", "Max"):
    for _hw, _out in (((6, 6), (3, 2)), ((7, 9), (5, 3)), ((2, 2), (7, 7)), ((3, 5), (4, 6)),
                      ((7, 8), (3, 4)), ((5, 5), (5, 5)), ((4, 6), (1, 1)), ((2, 3), (2, 7))):  # fmt: skip
        _case(
            f"adaptive-{_kind.lower()}-{_hw[0]}x{_hw[1]}-to-{_out[0]}x{_out[1]}",
            (3, *_hw),
            (f"Adaptive{_kind}Pool2d", ["c"], {"output": list(_out)}),
        )
# Mul: two-way broadcast, NHWC with NHWC, NHWC with a TORCH-held value, rank 3 and 5, fused Relu
_case(
    "mul-se-gate",
    (4, 5, 5),
    ("GlobalAvgPool", ["c"], {}),
    ("Hardsigmoid", ["z0"], {}),
    ("Mul", ["c", "z1"], {}),
)
_case("mul-gate-first", (4, 5, 5), ("GlobalAvgPool", ["c"], {}), ("Mul", ["z0", "c"], {}))
_case(
    "mul-two-way-rows-cols",
    (4, 5, 6),
    ("Mean", ["c"], {"dims": [2], "keepdim": True}),  # [N, 4, 1, 6]
    ("Mean", ["c"], {"dims": [1, 3], "keepdim": True}),  # [N, 1, 5, 1]
    ("Mul", ["z0", "z1"], {}),  # [N, 4, 5, 6]
)
_case(
    "mul-nhwc-by-torch",
    (4, 5, 6),
    ("Flatten", ["c"], {"start_dim": 1}),
    ("Reshape", ["z0"], {"shape": [4, 5, 6]}),  # held in PyTorch order now
    ("Mean", ["c"], {"dims": [1], "keepdim": True}),  # [N, 1, 5, 6], NHWC
    ("Mul", ["z2", "z1"], {}),
)
_case("mul-relu-fused", (4, 5, 5), ("Mul", ["c", "c"], {}), ("Relu", ["z0"], {}))
_case(
    "mul-rank3",
    (4, 5, 6),
    ("Reshape", ["c"], {"shape": [4, 30]}),
    ("Mean", ["z0"], {"dims": [2], "keepdim": True}),
    ("Mul", ["z1", "z0"], {}),
)
_case(
    "mul-rank5",
    (4, 4, 6),
    ("Reshape", ["c"], {"shape": [2, 2, 4, 6]}),
    ("Mean", ["z0"], {"dims": [1, 3], "keepdim": True}),
    ("Mul", ["z0", "z1"], {}),
)
# Transpose: every rank-4 perm of an NHWC-held value (one is the layout change itself), rank 5, rank 7
for _perm in itertools.permutations((1, 2, 3)):
    _case(f"transpose-0{''.join(map(str, _perm))}", (4, 5, 6), ("Transpose", ["c"], {"perm": [0, *_perm]}))
_case(
    "transpose-then-conv-layout",
    (4, 5, 6),
    ("Transpose", ["c"], {"perm": [0, 2, 3, 1]}),
    ("Transpose", ["z0"], {"perm": [0, 3, 1, 2]}),
    ("MaxPool2d", ["z1"], _pool((2, 2), (2, 2), (0, 0), True)),
)
_case(
    "channel-shuffle",
    (6, 4, 5),
    ("Reshape", ["c"], {"shape": [2, 3, 4, 5]}),
    ("Transpose", ["z0"], {"perm": [0, 2, 1, 3, 4]}),
    ("Reshape", ["z1"], {"shape": [6, 4, 5]}),
    ("MaxPool2d", ["z2"], _pool((2, 2), (2, 2), (0, 0), False)),
)
_case(
    "transpose-rank6",
    (8, 4, 6),
    ("Reshape", ["c"], {"shape": [2, 2, 2, 4, 6]}),
    ("Transpose", ["z0"], {"perm": [0, 5, 3, 1, 4, 2]}),
)
_case(
    "rank8-chain",  # the largest rank a .hpk value can have: every op that accepts it
    (8, 4, 6),
    ("Reshape", ["c"], {"shape": [2, 2, 2, 2, 2, 3, 2]}),
    ("Mean", ["z0"], {"dims": [3], "keepdim": True}),
    ("Mul", ["z1", "z0"], {}),  # two-way broadcast
    ("Silu", ["z2"], {}),
    ("Slice", ["z3"], {"axis": 6, "start": 1, "end": 3}),
    ("Transpose", ["z4"], {"perm": [0, 1, 2, 3, 4, 5, 7, 6]}),
    ("Softmax", ["z5"], {"axis": 3}),  # (XNNPACK fails to prepare MEAN/SOFTMAX/CONCATENATION above rank 6)
    ("Concat", ["z6", "z5"], {"axis": 2}),
    ("Mean", ["z7"], {"dims": [2, 4, 5], "keepdim": False}),
)
_case(
    "transpose-rank7",
    (8, 4, 6),
    ("Reshape", ["c"], {"shape": [2, 2, 2, 2, 2, 6]}),
    ("Transpose", ["z0"], {"perm": [0, 6, 3, 4, 1, 2, 5]}),
)
# values held in other permutations (a Transpose costs no op; reshapes work on the permuted tensor)
_case(
    "transpose-slice-mean",
    (4, 5, 6),
    ("Transpose", ["c"], {"perm": [0, 2, 1, 3]}),
    ("Slice", ["z0"], {"axis": 2, "start": 1, "end": 4}),
    ("Mean", ["z1"], {"dims": [3], "keepdim": False}),
)
_case(
    "transpose-silu-transpose-pool",
    (4, 5, 6),
    ("Transpose", ["c"], {"perm": [0, 3, 1, 2]}),
    ("Silu", ["z0"], {}),
    ("Transpose", ["z1"], {"perm": [0, 2, 3, 1]}),
    ("MaxPool2d", ["z2"], _pool((2, 2), (2, 2), (0, 0), True)),
)
_case(
    "reshape-split-slice-pool",
    (6, 4, 5),
    ("Reshape", ["c"], {"shape": [2, 3, 4, 5]}),
    ("Slice", ["z0"], {"axis": 1, "start": 1, "end": 2}),
    ("Reshape", ["z1"], {"shape": [3, 4, 5]}),
    ("AvgPool2d", ["z2"], _avg((2, 2), (1, 1), (0, 0), True, False)),
)
_case(
    "reshape-merge-hw-mean",
    (4, 5, 6),
    ("Reshape", ["c"], {"shape": [4, 30]}),
    ("Mean", ["z0"], {"dims": [2], "keepdim": False}),
)
_case(
    "reshape-of-rank1",
    (4, 5, 6),
    ("Mean", ["c"], {"dims": [1, 2, 3], "keepdim": False}),
    ("Reshape", ["z0"], {"shape": [1, 1]}),
    ("Mul", ["z1", "z1"], {}),
)
_case(
    "reshape-merge-hw-softmax",
    (4, 5, 6),
    ("Reshape", ["c"], {"shape": [4, 30]}),
    ("Softmax", ["z0"], {"axis": 1}),
)
# Slice: every axis of an NHWC-held value, chunk halves + Concat, rank 6
for _axis, (_start, _end) in ((1, (1, 3)), (2, (0, 4)), (3, (2, 6))):
    _case(f"slice-axis{_axis}", (4, 5, 6), ("Slice", ["c"], {"axis": _axis, "start": _start, "end": _end}))
_case(
    "slice-chunks-concat",
    (6, 4, 4),
    ("Slice", ["c"], {"axis": 1, "start": 0, "end": 3}),
    ("Slice", ["c"], {"axis": 1, "start": 3, "end": 6}),
    ("Silu", ["z1"], {}),
    ("Concat", ["z2", "z0"], {"axis": 1}),
)
_case(
    "slice-rank5",
    (8, 4, 6),
    ("Reshape", ["c"], {"shape": [2, 4, 4, 6]}),
    ("Slice", ["z0"], {"axis": 2, "start": 1, "end": 3}),
)
_case(
    "slice-rank6",
    (8, 4, 6),
    ("Reshape", ["c"], {"shape": [2, 2, 2, 4, 6]}),
    ("Slice", ["z0"], {"axis": 3, "start": 1, "end": 2}),
)
# Mean: every non-empty set of dims of a rank-4 NHWC value, keepdim true and false; rank 3
for _n in (1, 2, 3):
    for _dims in itertools.combinations((1, 2, 3), _n):
        for _keep in (True, False):
            _case(
                f"mean-{''.join(map(str, _dims))}-{'keep' if _keep else 'drop'}",
                (4, 5, 6),
                ("Mean", ["c"], {"dims": list(_dims), "keepdim": _keep}),
            )
_case(
    "mean-rank3",
    (4, 5, 6),
    ("Reshape", ["c"], {"shape": [20, 6]}),
    ("Mean", ["z0"], {"dims": [1], "keepdim": False}),
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tflite_zoo_ops")


@pytest.mark.parametrize("case_id", sorted(LAYOUT_CASES))
def test_layout_case_every_mode_matches_numpy_runtime(workdir: Path, case_id: str) -> None:
    chw, nodes = LAYOUT_CASES[case_id]
    path = _layout_case(workdir, case_id, chw, nodes)
    model = load(path)
    x = (2 * np.random.default_rng(7).standard_normal((3, 3, chw[1], chw[2]))).astype(np.float32)
    want = model.run(x)
    assert float(np.abs(want).max()) > 0
    exports = {mode: build_tflite(path, mode) for mode in WEIGHT_MODES}
    once = build_tflite(path, "once", materializable=True)
    files = {mode: exported.data for mode, exported in exports.items()}
    files["materialized"] = materialize(once.data)
    names = exports["once"].input_name, exports["once"].output_name
    for kind, data in files.items():
        for resolver in RESOLVERS:
            got = run_serving(data, x, *names, resolver)
            _assert_close(got, want, f"{case_id} {kind} {resolver}")
            one = run_serving(data, x[1:2], *names, resolver)
            _assert_close(one, want[1:2], f"{case_id} {kind} {resolver} batch 1")


# ------------------------------------------------------------------------- lowering choices


@pytest.mark.parametrize(
    ("size", "out", "expected"),
    [
        (6, 3, (2, 2)),
        (7, 3, (3, 2)),
        (5, 5, (1, 1)),
        (9, 1, (9, 1)),
        (2, 7, None),
        (7, 5, None),
        (3, 4, None),
    ],
)
def test_regular_adaptive_windows_are_one_pool(size: int, out: int, expected: tuple[int, int] | None) -> None:
    """Adaptive windows that a pool's kernel and stride place exactly are recognised; others are not."""
    windows = adaptive_windows(size, out)
    assert windows[0][0] == 0 and windows[-1][1] == size
    assert regular_windows(windows) == expected
    if expected is not None:
        kernel, stride = expected
        assert windows == [(i * stride, i * stride + kernel) for i in range(out)]


def test_every_zoo_op_is_exported_and_tested_behind_the_conv() -> None:
    covered = {op for _, nodes in LAYOUT_CASES.values() for op, _, _ in nodes}
    assert set(ZOO_OPS) <= covered
    assert set(ZOO_OPS) <= set(EXPORTER_OPS)


def test_lowerings_use_the_intended_builtin_ops(workdir: Path) -> None:
    """Which builtins carry each op (docs/TFLITE.md): no TRANSPOSE where the layout makes one
    unnecessary, GATHER only for irregular adaptive windows, no CUSTOM op anywhere."""

    def ops_of(case_id: str) -> set[str]:
        chw, nodes = LAYOUT_CASES[case_id]
        return opcode_names(build_tflite(_layout_case(workdir, case_id, chw, nodes), "expanded").data)

    assert "GATHER" not in ops_of("adaptive-avg-6x6-to-3x2")  # one AVERAGE_POOL_2D
    assert {"GATHER", "PAD", "AVERAGE_POOL_2D", "MUL"} <= ops_of("adaptive-avg-2x2-to-7x7")
    assert {"GATHER", "MAX_POOL_2D"} <= ops_of("adaptive-max-7x9-to-5x3")
    assert "PADV2" not in ops_of("maxpool-ceil-k3s2-16")  # squeezenet's ceil windows: SAME places them
    assert "PADV2" in ops_of("maxpool-ceil-k2s2-p1")  # SAME cannot: -inf padding incl. the ceil window
    assert "HARD_SWISH" in ops_of("hardswish")
    assert "RELU" not in ops_of("mul-relu-fused")  # fused into MUL
    # conv (NHWC) -> permute(0, 2, 3, 1) is the NHWC tensor itself; only the output's transpose remains
    chw, nodes = LAYOUT_CASES["transpose-0231"]
    data = build_tflite(_layout_case(workdir, "transpose-0231", chw, nodes), "expanded").data
    assert _count_op(data, "TRANSPOSE") == 1  # the graph input's NCHW -> NHWC only
    # channel shuffle on NHWC: the reshapes split and merge channels in place, one TRANSPOSE moves them
    chw, nodes = LAYOUT_CASES["channel-shuffle"]
    data = build_tflite(_layout_case(workdir, "channel-shuffle", chw, nodes), "expanded").data
    assert _count_op(data, "TRANSPOSE") == 3  # the graph input's and output's, and the shuffle's
    for case_id in LAYOUT_CASES:
        assert "CUSTOM" not in ops_of(case_id)


@pytest.mark.parametrize(
    ("source", "target", "groups"),
    [
        ((6, 4, 5), (2, 3, 4, 5), [([1], [1, 2]), ([2], [3]), ([3], [4])]),
        ((3, 2, 4, 5), (6, 4, 5), [([1, 2], [1]), ([3], [2]), ([4], [3])]),
        ((4, 5, 6), (4, 30), [([1], [1]), ([2, 3], [2])]),
        ((1, 6), (6,), [([1, 2], [1])]),
        ((6, 1, 1), (6,), [([1, 2, 3], [1])]),
        ((4, 6), (2, 12), [([1, 2], [1, 2])]),
    ],
)
def test_reshape_groups(source: tuple, target: tuple, groups: list) -> None:
    assert reshape_groups(source, target) == groups


def _count_op(data: bytes, name: str) -> int:
    import tflite

    model = tflite.Model.GetRootAsModel(data, 0)
    code = getattr(tflite.BuiltinOperator, name)
    sub = model.Subgraphs(0)
    return sum(
        model.OperatorCodes(sub.Operators(i).OpcodeIndex()).BuiltinCode() == code
        for i in range(sub.OperatorsLength())
    )


def test_rank5_ops_declare_their_versions(workdir: Path) -> None:
    """Rank-5/6 TRANSPOSE are versions 4/6, a rank-5 SLICE version 5, as the TF converter declares
    (the layout cases above run them in stock LiteRT)."""
    import tflite

    cases = (
        ("channel-shuffle", "TRANSPOSE", 4),
        ("transpose-rank6", "TRANSPOSE", 6),
        ("slice-rank5", "SLICE", 5),
    )
    for case_id, op, version in cases:
        chw, nodes = LAYOUT_CASES[case_id]
        model = tflite.Model.GetRootAsModel(
            build_tflite(_layout_case(workdir, case_id, chw, nodes), "expanded").data, 0
        )
        code = getattr(tflite.BuiltinOperator, op)
        versions = {model.OperatorCodes(i).Version() for i in range(model.OperatorCodesLength())
                    if model.OperatorCodes(i).BuiltinCode() == code}  # fmt: skip
        assert version in versions, (case_id, versions)


def test_unsupported_configuration_names_the_node(workdir: Path) -> None:
    """A Transpose LiteRT cannot express even after merging adjacent axes is a one-line error."""
    chw = (8, 4, 6)
    hpk = read_hpk(_conv_base(*chw, str(workdir)))
    hpk.nodes.append(Node("Reshape", "flat", (CONV_OUT,), ("r",), {}, {"shape": [2, 2, 2, 2, 2, 3, 2]}))
    hpk.nodes.append(Node("Transpose", "scramble", ("r",), ("t",), {}, {"perm": [0, 7, 5, 3, 1, 6, 4, 2]}))
    hpk.outputs = [ValueInfo("t", (None, 2, 2, 2, 2, 3, 2, 2))]
    path = workdir / "scramble.hpk"
    write_hpk(hpk, path)
    with pytest.raises(
        HpkFormatError, match=r"node 'scramble' \(Transpose\).*not supported by the TFLite exporter"
    ):
        build_tflite(path, "expanded")


def _attr_variants(value: Any, rng: random.Random) -> list[Any]:
    """Plausible and hostile replacements for one attr value."""
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [0, 1, 2, 5, -1, value + 1, 2**31 - 1]
    if isinstance(value, list):
        variants = [[rng.randint(-1, 9) for _ in value] for _ in range(4)]
        variants += [
            value[:-1],
            [*value, 1],
            list(reversed(value)),
            [0] * len(value),
            [2**31 - 1] * len(value),
        ]
        return variants
    return []


def test_reader_accepted_attr_variants_export_and_run(workdir: Path) -> None:
    """Every attr of every zoo-op node, replaced by plausible and hostile values: whatever the reader
    accepts exports in once and expanded mode, loads in LiteRT and matches the numpy runtime;
    nothing else escapes but HpkFormatError naming the file."""
    rng = random.Random(3)
    accepted = rejected = 0
    for case_id in sorted(LAYOUT_CASES):
        chw, nodes = LAYOUT_CASES[case_id]
        if len(nodes) != 1 or not nodes[0][2]:
            continue
        op, inputs, attrs = nodes[0]
        for key in sorted(attrs):
            for value in _attr_variants(attrs[key], rng):
                try:
                    path = _layout_case(workdir, "variant", chw, [(op, inputs, {**attrs, key: value})])
                except (HpkFormatError, ValueError, TypeError, KeyError):
                    rejected += 1  # not a valid file (the reader's checks or shape rule said so)
                    continue
                accepted += 1
                model = load(path)
                x = np.random.default_rng(accepted).standard_normal((2, 3, chw[1], chw[2])).astype(np.float32)
                for mode in ("once", "expanded"):
                    try:
                        exported = build_tflite(path, mode)
                    except HpkFormatError as exc:  # a valid configuration LiteRT cannot express: named
                        assert str(exc).startswith(str(path)) and "not supported" in str(exc), exc
                        continue
                    got = run_serving(exported.data, x, exported.input_name, exported.output_name, "builtin")
                    _assert_close(got, model.run(x), f"{case_id} {key}={value!r} {mode}")
    assert accepted >= 100 and rejected >= 100, (accepted, rejected)


def _pool_sweep() -> list[tuple[str, dict[str, Any], tuple[int, int, int]]]:
    """Random valid MaxPool2d/AvgPool2d configurations (ceil_mode both ways), deterministic."""
    rng = random.Random(5)
    cases = []
    while len(cases) < 60:
        kernel = [rng.randint(1, 4), rng.randint(1, 4)]
        stride = [rng.randint(1, 3), rng.randint(1, 3)]
        padding = [rng.randint(0, kernel[0] // 2), rng.randint(0, kernel[1] // 2)]
        size = (2, rng.randint(max(kernel[0], 2), 9), rng.randint(max(kernel[1], 2), 9))
        ceil = rng.random() < 0.7
        if rng.random() < 0.5:
            dilation = [rng.choice([1, 1, 2]), rng.choice([1, 2, 3])]
            if any(
                (k - 1) * d + 1 > n + 2 * p
                for k, d, n, p in zip(kernel, dilation, size[1:], padding, strict=True)
            ):
                continue
            cases.append(("MaxPool2d", _pool(kernel, stride, padding, ceil, dilation), size))
        else:
            cases.append(("AvgPool2d", _avg(kernel, stride, padding, rng.random() < 0.5, ceil), size))
    return cases


@pytest.mark.parametrize(("op", "attrs", "chw"), _pool_sweep())
def test_pool_sweep_matches_numpy_runtime(tmp_path: Path, op: str, attrs: dict[str, Any], chw: tuple) -> None:
    """ceil_mode, padding, count_include_pad and dilation in random combinations, on the graph input."""
    node = Node(op, "pool", ("x",), ("y",), {}, attrs)
    shape = OPS[op].infer([(None, *chw)], attrs, {})[0]
    hpk = HpkFile([ValueInfo("x", (None, *chw))], [ValueInfo("y", shape)], {}, {}, [node], {})
    path = tmp_path / "pool.hpk"
    write_hpk(hpk, path)
    x = np.random.default_rng(1).standard_normal((2, *chw)).astype(np.float32)
    exported = build_tflite(path, "expanded")
    for resolver in RESOLVERS:
        got = run_serving(exported.data, x, "x", "y", resolver)
        _assert_close(got, load(path).run(x), f"{op} {attrs} on {chw} {resolver}")


def _layout_chain(rng: random.Random) -> tuple[tuple[int, ...], list[Node], tuple]:
    """A random chain of layout-moving ops starting from an NHWC-held value (a 1×1 MaxPool2d)."""
    chw = (rng.choice([4, 6, 8]), rng.choice([1, 2, 3, 4]), rng.choice([2, 4, 6]))
    nodes = [Node("MaxPool2d", "nhwc", ("x",), ("v0",), {}, _pool((1, 1), (1, 1), (0, 0), False))]
    shape: tuple = (None, *chw)
    shapes = [shape]  # of each node's output
    for i in range(1, rng.randint(5, 9)):
        rank = len(shape)
        kinds = ["transpose", "reshape", "slice", "mean", "unary", "pool", "softmax", "concat", "mul"]
        choice = rng.choices(kinds, weights=[4, 4, 2, 1, 1, 2, 1, 1, 1])[0]
        inputs = (f"v{i - 1}",)
        if choice == "transpose" and rank >= 3:
            rest = list(range(1, rank))
            rng.shuffle(rest)
            op, attrs = "Transpose", {"perm": [0, *rest]}
        elif choice == "reshape":
            dims = list(shape[1:])
            splits = [a for a, d in enumerate(dims) if d in (4, 6)]
            if splits and rank < 8 and rng.random() < 0.6:
                a = rng.choice(splits)
                dims[a : a + 1] = [2, dims[a] // 2]
            elif len(dims) >= 2:
                a = rng.randrange(len(dims) - 1)
                dims[a : a + 2] = [dims[a] * dims[a + 1]]
            op, attrs = "Reshape", {"shape": dims}
        elif choice == "slice" and any(d >= 2 for d in shape[1:]):
            axis = rng.choice([a for a in range(1, rank) if shape[a] >= 2])
            start = rng.randrange(shape[axis] - 1)
            op, attrs = "Slice", {"axis": axis, "start": start, "end": rng.randint(start + 1, shape[axis])}
        elif choice == "mean" and rank >= 3:
            dims = rng.sample(range(1, rank), rng.randint(1, rank - 2))
            op, attrs = "Mean", {"dims": dims, "keepdim": rng.random() < 0.5}
        elif choice == "pool" and rank == 4:
            op, attrs = "MaxPool2d", _pool((1, 1), (1, 1), (0, 0), False)
        elif choice == "softmax" and rank >= 2:
            op, attrs = "Softmax", {"axis": rng.randrange(1, rank)}
        elif choice == "concat" and rank >= 2 and i >= 2:  # with the value two steps back, if it fits
            axis = rng.randrange(1, rank)
            earlier = (nodes[-2].outputs[0], shapes[-2])
            fits = len(earlier[1]) == rank and all(
                a == axis or earlier[1][a] == shape[a] for a in range(1, rank)
            )
            op, attrs = "Concat", {"axis": axis}
            inputs = (f"v{i - 1}", earlier[0]) if fits else (f"v{i - 1}", f"v{i - 1}")
        elif (
            choice == "mul"
            and rank >= 2
            and i >= 2
            and shapes[-2] != shape
            and len(shapes[-2]) == rank
            and all(1 in (x, y) or x == y for x, y in zip(shapes[-2][1:], shape[1:], strict=True))
        ):
            op, attrs, inputs = "Mul", {}, (nodes[-2].outputs[0], f"v{i - 1}")
        else:
            op, attrs = rng.choice(["Silu", "Hardswish", "Relu"]), {}
        node = Node(op, f"n{i}", inputs, (f"v{i}",), {}, attrs)
        known = {n.outputs[0]: sh for n, sh in zip(nodes, shapes, strict=True)}
        shape = OPS[op].infer([known[name] for name in inputs], attrs, {})[0]
        nodes.append(node)
        shapes.append(shape)
    return chw, nodes, shape


@pytest.mark.parametrize("seed", range(60))
def test_random_layout_chains_match_numpy_runtime(tmp_path: Path, seed: int) -> None:
    """Transposes, reshapes that split and merge axes, slices and means on permuted layouts."""
    chw, nodes, shape = _layout_chain(random.Random(seed))
    hpk = HpkFile([ValueInfo("x", (None, *chw))], [ValueInfo(nodes[-1].outputs[0], shape)], {}, {}, nodes, {})
    path = tmp_path / "chain.hpk"
    write_hpk(hpk, path)
    x = np.random.default_rng(seed).standard_normal((3, *chw)).astype(np.float32)
    exported = build_tflite(path, "expanded")
    what = " -> ".join(f"{n.op}{n.attrs or ''}" for n in nodes)
    for resolver in RESOLVERS:
        got = run_serving(exported.data, x, "x", exported.output_name, resolver)
        _assert_close(got, load(path).run(x), f"{what} ({resolver})")


@pytest.mark.parametrize("seed", range(30))
def test_random_adaptive_pools_match_numpy_runtime(tmp_path: Path, seed: int) -> None:
    """Adaptive pools from 1..9 to 1..10 per axis (smaller, equal, larger, non-dividing)."""
    rng = random.Random(seed)
    op = rng.choice(["AdaptiveAvgPool2d", "AdaptiveMaxPool2d"])
    chw, out = (3, rng.randint(1, 9), rng.randint(1, 9)), [rng.randint(1, 10), rng.randint(1, 10)]
    node = Node(op, "pool", ("x",), ("y",), {}, {"output": out})
    hpk = HpkFile([ValueInfo("x", (None, *chw))], [ValueInfo("y", (None, 3, *out))], {}, {}, [node], {})
    path = tmp_path / "adaptive.hpk"
    write_hpk(hpk, path)
    x = np.random.default_rng(seed).standard_normal((2, *chw)).astype(np.float32)
    exported = build_tflite(path, "expanded")
    for resolver in RESOLVERS:
        got = run_serving(exported.data, x, "x", "y", resolver)
        _assert_close(got, load(path).run(x), f"{op} {chw[1:]} -> {out} ({resolver})")

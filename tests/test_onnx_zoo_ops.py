"""The zoo ops (docs/FORMAT.md §5, issue 13) in the ONNX exporter, every weights mode.

Every case of the shared op table (tests/zoo_op_cases.py) plus the ONNX-specific edge cases
below (ceil_mode windows whose padding ORT would refuse, adaptive pools on the regular-window
and per-window slice paths, more permutations, slices and means) is exported, checked by the full ONNX
checker (build_onnx runs it), and run in ONNX Runtime:

- in each weights mode, behind a hashed 1×1 convolution (so compact, inline and expanded really
  differ: the op's input is decompressed in the graph), against the numpy runtime, within the
  existing ONNX tests' tolerance (atol = rtol = 1e-4);
- on its own against torch's output (the case's golden data), within the op table's tolerance.

ONNX's own ``ceil_mode`` is never emitted: onnx's shape inference and ORT disagree on its output
size (see docs/ONNX.md), and the test checks the exported graphs for it. The torchvision models
themselves go through every ONNX mode in tests/test_zoo.py (``run_validation``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch.nn.functional as F
from zoo_op_cases import CASES, TOLERANCE, ZOO_OPS, OpCase, case_hpk, case_input

from hashpack.exporter.onnx import WEIGHT_MODES, build_onnx, serialize_onnx
from hashpack.exporter.onnx.graph import OPS as ONNX_OPS
from hashpack.runtime import HpkFile, HpkFormatError, Model, Param, Space, ValueInfo, read_hpk, write_hpk
from hashpack.runtime.hpk import Node
from hashpack.runtime.ops import OPS as RUNTIME_OPS

ONNX_TOLERANCE = {"atol": 1e-4, "rtol": 1e-4}  # as tests/test_onnx_export.py
BATCH = 3


def _pool(kernel, stride, padding, dilation=(1, 1), ceil_mode=True) -> dict:
    return {
        "kernel": list(kernel),
        "stride": list(stride),
        "padding": list(padding),
        "dilation": list(dilation),
        "ceil_mode": ceil_mode,
    }


def _avg(kernel, stride, padding, count_include_pad, ceil_mode=True) -> dict:
    return {
        "kernel": list(kernel),
        "stride": list(stride),
        "padding": list(padding),
        "count_include_pad": count_include_pad,
        "ceil_mode": ceil_mode,
    }


def _one(op: str, attrs: dict) -> tuple:
    return ((op, ("x",), attrs),)


ONNX_CASES = [
    # ceil_mode where the last window's padding reaches the kernel size (dilated): ORT rejects
    # such pads, so the exporter pads explicitly with -inf
    OpCase(
        "onnx-maxpool-ceil-dilated-pad-ge-kernel",
        (2, 6, 5),
        _one("MaxPool2d", _pool((2, 2), (3, 4), (1, 0), (3, 2))),
        lambda x: F.max_pool2d(x, 2, (3, 4), (1, 0), (3, 2), ceil_mode=True),
    ),
    OpCase(
        "onnx-maxpool-ceil-stride-gt-kernel",
        (2, 9, 10),
        _one("MaxPool2d", _pool((2, 3), (4, 4), (1, 1))),
        lambda x: F.max_pool2d(x, (2, 3), 4, 1, ceil_mode=True),
    ),
    OpCase(  # ceil_mode with no partial window: the plain lowering
        "onnx-maxpool-ceil-exact-fit",
        (2, 7, 7),
        _one("MaxPool2d", _pool((3, 3), (2, 2), (0, 0))),
        lambda x: F.max_pool2d(x, 3, 2, ceil_mode=True),
    ),
    OpCase(  # torch drops the window that would start in the right padding
        "onnx-maxpool-ceil-drop-last",
        (2, 5, 5),
        _one("MaxPool2d", _pool((2, 2), (2, 2), (1, 1))),
        lambda x: F.max_pool2d(x, 2, 2, 1, ceil_mode=True),
    ),
    OpCase(
        "onnx-avgpool-ceil-include-pad-asymmetric",
        (2, 9, 6),
        _one("AvgPool2d", _avg((4, 3), (3, 2), (2, 1), True)),
        lambda x: F.avg_pool2d(x, (4, 3), (3, 2), (2, 1), ceil_mode=True, count_include_pad=True),
    ),
    OpCase(
        "onnx-avgpool-ceil-exclude-pad-stride-gt-kernel",
        (2, 10, 9),
        _one("AvgPool2d", _avg((2, 2), (3, 3), (1, 1), False)),
        lambda x: F.avg_pool2d(x, 2, 3, 1, ceil_mode=True, count_include_pad=False),
    ),
    OpCase(
        "onnx-avgpool-ceil-include-pad-no-padding",
        (2, 8, 8),
        _one("AvgPool2d", _avg((3, 3), (3, 3), (0, 0), True)),
        lambda x: F.avg_pool2d(x, 3, 3, 0, ceil_mode=True, count_include_pad=True),
    ),
    OpCase(
        "onnx-avgpool-no-ceil-include-pad",
        (2, 6, 6),
        _one("AvgPool2d", _avg((3, 3), (2, 2), (1, 1), True, ceil_mode=False)),
        lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=True),
    ),
    # adaptive pools: every path of the lowering
    OpCase(  # divisible: one AveragePool
        "onnx-adaptive-avg-2x3-from-8x9",
        (3, 8, 9),
        _one("AdaptiveAvgPool2d", {"output": [2, 3]}),
        lambda x: F.adaptive_avg_pool2d(x, (2, 3)),
    ),
    OpCase(  # divisible: one MaxPool
        "onnx-adaptive-max-4x2-from-8x8",
        (3, 8, 8),
        _one("AdaptiveMaxPool2d", {"output": [4, 2]}),
        lambda x: F.adaptive_max_pool2d(x, (4, 2)),
    ),
    OpCase(  # output = input: identity
        "onnx-adaptive-avg-identity",
        (2, 4, 5),
        _one("AdaptiveAvgPool2d", {"output": [4, 5]}),
        lambda x: F.adaptive_avg_pool2d(x, (4, 5)),
    ),
    OpCase(  # only the columns pooled (rows equal)
        "onnx-adaptive-avg-7x3-from-7x8",
        (2, 7, 8),
        _one("AdaptiveAvgPool2d", {"output": [7, 3]}),
        lambda x: F.adaptive_avg_pool2d(x, (7, 3)),
    ),
    OpCase(  # only the rows pooled
        "onnx-adaptive-max-3x5-from-7x5",
        (2, 7, 5),
        _one("AdaptiveMaxPool2d", {"output": [3, 5]}),
        lambda x: F.adaptive_max_pool2d(x, (3, 5)),
    ),
    OpCase(
        "onnx-adaptive-avg-7x7-from-1x1",
        (3, 1, 1),
        _one("AdaptiveAvgPool2d", {"output": [7, 7]}),
        lambda x: F.adaptive_avg_pool2d(x, 7),
    ),
    OpCase(
        "onnx-adaptive-max-7x7-from-2x2",
        (3, 2, 2),
        _one("AdaptiveMaxPool2d", {"output": [7, 7]}),
        lambda x: F.adaptive_max_pool2d(x, 7),
    ),
    OpCase(
        "onnx-adaptive-max-1x1",
        (3, 5, 3),
        _one("AdaptiveMaxPool2d", {"output": [1, 1]}),
        lambda x: F.adaptive_max_pool2d(x, 1),
    ),
    OpCase(
        "onnx-adaptive-avg-1x4-from-6x10",
        (2, 6, 10),
        _one("AdaptiveAvgPool2d", {"output": [1, 4]}),
        lambda x: F.adaptive_avg_pool2d(x, (1, 4)),
    ),
    OpCase(  # more rows than MAX_SLICED_WINDOWS: the Gather form (rows), slices (columns)
        "onnx-adaptive-avg-70x3-from-9x5",
        (2, 9, 5),
        _one("AdaptiveAvgPool2d", {"output": [70, 3]}),
        lambda x: F.adaptive_avg_pool2d(x, (70, 3)),
    ),
    OpCase(
        "onnx-adaptive-max-2x90-from-5x7",
        (2, 5, 7),
        _one("AdaptiveMaxPool2d", {"output": [2, 90]}),
        lambda x: F.adaptive_max_pool2d(x, (2, 90)),
    ),
    # shape ops
    OpCase(
        "onnx-transpose-4d-hw",
        (2, 3, 4),
        _one("Transpose", {"perm": [0, 1, 3, 2]}),
        lambda x: x.transpose(2, 3),
    ),
    OpCase(
        "onnx-transpose-4d-identity",
        (2, 3, 4),
        _one("Transpose", {"perm": [0, 1, 2, 3]}),
        lambda x: x.permute(0, 1, 2, 3),
    ),
    OpCase(
        "onnx-slice-rows",
        (3, 6, 4),
        _one("Slice", {"axis": 2, "start": 1, "end": 5}),
        lambda x: x[:, :, 1:5],
    ),
    OpCase(
        "onnx-slice-whole-axis",
        (3, 6, 4),
        _one("Slice", {"axis": 1, "start": 0, "end": 3}),
        lambda x: x.narrow(1, 0, 3),
    ),
    OpCase(
        "onnx-mean-all-keepdim-false",
        (3, 4, 5),
        _one("Mean", {"dims": [3, 1, 2], "keepdim": False}),
        lambda x: x.mean([1, 2, 3]),
    ),
    OpCase(
        "onnx-mean-rank2",
        (7,),
        _one("Mean", {"dims": [1], "keepdim": True}),
        lambda x: x.mean(1, keepdim=True),
    ),
    OpCase(
        "onnx-mul-hw-broadcast",
        (3, 4, 5),
        (
            ("Mean", ("x",), {"dims": [3], "keepdim": True}),  # [N, C, H, 1]
            ("Mean", ("x",), {"dims": [1, 2], "keepdim": True}),  # [N, 1, 1, W]
            ("Mul", ("y0", "y1"), {}),  # [N, C, H, W]: both operands broadcast
        ),
        lambda x: x.mean(3, keepdim=True) * x.mean((1, 2), keepdim=True),
    ),
    OpCase(  # efficientnet's SE block: SiLU, mean, hardsigmoid gate
        "onnx-se-block",
        (4, 3, 3),
        (
            ("Silu", ("x",), {}),
            ("Mean", ("y0",), {"dims": [2, 3], "keepdim": True}),
            ("Hardsigmoid", ("y1",), {}),
            ("Mul", ("y0", "y2"), {}),
            ("Hardswish", ("y3",), {}),
        ),
        lambda x: F.hardswish(F.silu(x) * F.hardsigmoid(F.silu(x).mean((2, 3), keepdim=True))),
        scale=3.0,
    ),
]
ALL_CASES = [*CASES, *ONNX_CASES]
ALL_IDS = [case.id for case in ALL_CASES]


def _behind_hashed_conv(case: OpCase, seed: int = 7) -> HpkFile:
    """The case's graph fed by a hashed 1×1 Conv2d (weight and bias share one space), for rank-4
    inputs; other ranks as they are. The conv makes the weights modes differ."""
    hpk = case_hpk(case)
    hpk = dataclasses.replace(hpk, golden=None, tensors={})
    if len(case.input_shape) != 3:
        return hpk
    channels = case.input_shape[0]
    rng = np.random.default_rng(seed)
    space = Space("conv", 11, "float32", "space/conv")
    weight = Param("conv.weight", "hashed", (channels, channels, 1, 1), {"space": "conv", "seed": 101})
    bias = Param("conv.bias", "hashed", (channels,), {"space": "conv", "seed": 202})
    conv = Node(
        "Conv2d",
        "conv",
        ("input",),
        ("x",),
        {"weight": weight.name, "bias": bias.name},
        {"stride": [1, 1], "padding": [0, 0], "dilation": [1, 1], "groups": 1},
    )
    return dataclasses.replace(
        hpk,
        inputs=[ValueInfo("input", hpk.input.shape)],
        spaces={space.name: space},
        params={weight.name: weight, bias.name: bias},
        nodes=[conv, *hpk.nodes],
        tensors={space.tensor: rng.uniform(-1, 1, space.size).astype(np.float32)},
    )


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _no_onnx_ceil_mode(model: onnx.ModelProto) -> None:
    for node in model.graph.node:
        for attr in node.attribute:
            assert not (attr.name == "ceil_mode" and attr.i), f"{node.name} uses ONNX's ceil_mode"


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, HpkFile]:
    """Each case behind the hashed conv, written and read back (so the reader's checks ran)."""
    root = tmp_path_factory.mktemp("zoo-onnx")
    result = {}
    for case in ALL_CASES:
        path = root / f"{case.id}.hpk"
        write_hpk(_behind_hashed_conv(case), path)
        result[case.id] = read_hpk(path)
    return result


def test_every_runtime_op_has_a_translator() -> None:
    assert set(ZOO_OPS) <= set(ONNX_OPS)
    assert set(RUNTIME_OPS) <= set(ONNX_OPS), sorted(set(RUNTIME_OPS) - set(ONNX_OPS))
    covered = set().union(*(case.ops for case in ALL_CASES))
    assert set(ZOO_OPS) <= covered


@pytest.mark.parametrize("mode", WEIGHT_MODES)
@pytest.mark.parametrize("case", ALL_CASES, ids=ALL_IDS)
def test_onnxruntime_matches_numpy_runtime(written: dict[str, HpkFile], case: OpCase, mode: str) -> None:
    hpk = written[case.id]
    model = build_onnx(hpk, mode)  # full ONNX checker, strict shape inference
    _no_onnx_ceil_mode(model)
    domains = {node.domain for node in model.graph.node}
    assert domains <= {"", "ai.hashpack"} and (
        ("ai.hashpack" in domains) == (mode == "compact" and bool(hpk.params))
    )
    x = case_input(case, BATCH, seed=5)
    expected = Model(hpk).run(x)
    (actual,) = _session(model).run(None, {hpk.input.name: x})
    assert actual.shape == expected.shape and actual.dtype == np.float32
    np.testing.assert_allclose(actual, expected, **ONNX_TOLERANCE)
    (single,) = _session(model).run(None, {hpk.input.name: x[:1]})  # the batch is symbolic
    np.testing.assert_allclose(single, expected[:1], **ONNX_TOLERANCE)


@pytest.mark.parametrize("case", ALL_CASES, ids=ALL_IDS)
def test_onnxruntime_matches_torch(tmp_path: Path, case: OpCase) -> None:
    """The op alone against torch (the case's golden outputs)."""
    path = tmp_path / "case.hpk"
    write_hpk(case_hpk(case), path)
    hpk = read_hpk(path)
    inputs, expected = hpk.golden_arrays()
    model = build_onnx(hpk, "compact")
    (actual,) = _session(model).run(None, {hpk.input.name: inputs})
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=0, atol=TOLERANCE)


def test_adaptive_lowering_is_deterministic(written: dict[str, HpkFile]) -> None:
    hpk = written["adaptive-avg-5x3-from-7x9"]
    for mode in WEIGHT_MODES:
        assert serialize_onnx(build_onnx(hpk, mode)) == serialize_onnx(build_onnx(hpk, mode))


@pytest.mark.parametrize(
    ("case_id", "expected"),
    [
        ("adaptive-avg-1x1", {"GlobalAveragePool"}),
        ("onnx-adaptive-max-1x1", {"GlobalMaxPool"}),
        ("onnx-adaptive-avg-2x3-from-8x9", {"AveragePool"}),
        ("onnx-adaptive-max-4x2-from-8x8", {"MaxPool"}),
        ("onnx-adaptive-avg-identity", {"Identity"}),
        ("adaptive-max-3x3-from-8x8", {"Slice", "ReduceMax", "Concat"}),
        ("adaptive-avg-7x7-from-2x2", {"Slice", "ReduceMean", "Concat"}),
        ("onnx-adaptive-avg-7x7-from-1x1", {"Slice", "Concat"}),  # one-cell windows: no reduction
        (
            "onnx-adaptive-avg-70x3-from-9x5",
            {"Gather", "Where", "ReduceSum", "Div", "Slice", "ReduceMean", "Concat"},
        ),
        ("onnx-adaptive-max-2x90-from-5x7", {"Slice", "ReduceMax", "Concat", "Gather"}),
    ],
)
def test_adaptive_pool_picks_the_cheapest_exact_form(
    written: dict[str, HpkFile], case_id: str, expected: set[str]
) -> None:
    """Regular windows use one standard pooling op; only irregular ones pay for per-window slices."""
    model = build_onnx(written[case_id], "expanded")
    ops = {node.op_type for node in model.graph.node} - {"Conv"}
    assert ops == expected


@pytest.mark.parametrize("opset", [21, 23])
@pytest.mark.parametrize("case", ALL_CASES, ids=ALL_IDS)
def test_later_opsets(written: dict[str, HpkFile], case: OpCase, opset: int) -> None:
    """The lowerings hold at the later opsets the exporter supports (Pad, Reduce*, ... changed)."""
    hpk = written[case.id]
    model = build_onnx(hpk, "compact", opset=opset)
    assert {o.domain: o.version for o in model.opset_import}[""] == opset
    x = case_input(case, BATCH, seed=6)
    (actual,) = _session(model).run(None, {hpk.input.name: x})
    np.testing.assert_allclose(actual, Model(hpk).run(x), **ONNX_TOLERANCE)


@pytest.mark.parametrize(
    ("op", "attrs", "message"),
    [
        ("AdaptiveAvgPool2d", {"output": [2, 2]}, r"expects an NCHW input, got \[N, 6\]"),
        ("MaxPool2d", _pool((3, 3), (2, 2), (0, 0)), r"expects an NCHW input, got \[N, 6\]"),
    ],
)
def test_unshapeable_in_memory_file_is_a_format_error(op: str, attrs: dict, message: str) -> None:
    """An HpkFile built in memory skips the reader: a rank-2 input to a 2-D pool must still fail
    as HpkFormatError naming the node, not as a traceback from the lowering."""
    hpk = HpkFile(
        inputs=[ValueInfo("x", (None, 6))],
        outputs=[ValueInfo("y", (None, 6))],
        spaces={},
        params={},
        nodes=[Node(op, "pool", ("x",), ("y",), {}, attrs)],
        tensors={},
    )
    with pytest.raises(HpkFormatError, match=rf"node 'pool' \({op}\): {message}"):
        build_onnx(hpk, "compact")


def test_bad_shape_upstream_of_a_pool_names_that_node() -> None:
    hpk = HpkFile(
        inputs=[ValueInfo("x", (None, 6))],
        outputs=[ValueInfo("y", (None, 2, 2, 2))],
        spaces={},
        params={},
        nodes=[
            Node("Reshape", "view", ("x",), ("r",), {}, {"shape": [2, 2, 2]}),  # 8 != 6 elements
            Node("AdaptiveMaxPool2d", "pool", ("r",), ("y",), {}, {"output": [2, 2]}),
        ],
        tensors={},
    )
    with pytest.raises(HpkFormatError, match=r"node 'view' \(Reshape\): cannot infer its shape"):
        build_onnx(hpk, "compact")


def _random_pool_node(rng: np.random.Generator) -> tuple[tuple[int, int, int], str, dict]:
    """A random pooling node over a random [C, H, W] input (the reader decides if it is valid)."""
    shape = (int(rng.integers(1, 3)), int(rng.integers(1, 12)), int(rng.integers(1, 12)))
    op = str(rng.choice(["MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d"]))
    if op.startswith("Adaptive"):
        return shape, op, {"output": [int(rng.integers(1, 10)), int(rng.integers(1, 10))]}
    kernel = [int(rng.integers(1, 5)), int(rng.integers(1, 5))]
    attrs = {
        "kernel": kernel,
        "stride": [int(rng.integers(1, 5)), int(rng.integers(1, 5))],
        "padding": [int(rng.integers(0, k // 2 + 1)) for k in kernel],
        "ceil_mode": bool(rng.integers(0, 4)),  # mostly true: the interesting case
    }
    if op == "MaxPool2d":
        attrs["dilation"] = [int(rng.integers(1, 4)), int(rng.integers(1, 4))]
    else:
        attrs["count_include_pad"] = bool(rng.integers(0, 2))
    return shape, op, attrs


def test_random_pools_match_the_numpy_runtime(tmp_path: Path) -> None:
    """Differential: random pooling nodes the reader accepts export (all modes are the same for a
    param-free graph) and agree with the numpy runtime, windows that ORT's pads rule, ceil_mode's
    partial windows and adaptive windows of every size included."""
    rng = np.random.default_rng(13)
    checked = all_padding = 0
    for attempt in range(400):
        shape, op, attrs = _random_pool_node(rng)
        hpk = HpkFile(
            inputs=[ValueInfo("x", (None, *shape))],
            outputs=[ValueInfo("y", (None, 1))],  # replaced by the shape torch computes
            spaces={},
            params={},
            nodes=[Node(op, "pool", ("x",), ("y",), {}, attrs)],
            tensors={},
        )
        x = rng.standard_normal((2, *shape)).astype(np.float32)
        try:
            out_shape = Model(hpk).run(x).shape
        except HpkFormatError:  # the numpy kernel refuses what the reader would reject
            continue
        hpk.outputs = [ValueInfo("y", (None, *out_shape[1:]))]
        path = tmp_path / f"{attempt}.hpk"
        try:
            write_hpk(hpk, path)  # the reader's checks
        except HpkFormatError:
            continue
        expected = Model(read_hpk(path)).run(x)
        (actual,) = _session(build_onnx(read_hpk(path), "inline")).run(None, {"x": x})
        np.testing.assert_allclose(actual, expected, **ONNX_TOLERANCE, err_msg=f"{op} {attrs} on {shape}")
        checked += 1
        all_padding += int(np.isneginf(expected).any())  # a dilated window that sees only padding
    assert checked >= 300 and all_padding >= 3, (checked, all_padding)  # 351 and 3 with seed 13


def test_huge_adaptive_output_keeps_the_graph_small(tmp_path: Path) -> None:
    """A valid but hostile file (a 1×1 input pooled to 2^20 rows): a handful of nodes and an index
    as large as the numpy runtime's own, not one graph node or Concat input per output row."""
    rows = 2**20
    hpk = HpkFile(
        inputs=[ValueInfo("x", (None, 1, 1, 1))],
        outputs=[ValueInfo("y", (None, 1, rows, 1))],
        spaces={},
        params={},
        nodes=[Node("AdaptiveMaxPool2d", "pool", ("x",), ("y",), {}, {"output": [rows, 1]})],
        tensors={},
    )
    path = tmp_path / "huge.hpk"
    write_hpk(hpk, path)  # the reader accepts it
    model = build_onnx(read_hpk(path), "compact")
    assert len(model.graph.node) <= 3
    assert all(len(node.input) <= 3 for node in model.graph.node)
    assert model.ByteSize() < 8 * rows + 4096  # the int64 window index, plus a little
    x = np.array([[[[2.5]]]], np.float32)
    (y,) = _session(model).run(None, {"x": x})
    assert y.shape == (1, 1, rows, 1) and np.all(y == np.float32(2.5))

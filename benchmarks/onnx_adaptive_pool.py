"""ORT latency of the AdaptiveAvg/MaxPool2d lowerings (docs/ONNX.md, "How the ops lower").

For a few [C, H, W] → [oh, ow] poolings with unequal windows, times the exporter's lowering
(per axis: one Slice + ReduceMean/Max per distinct window, then Concat; O(oh + ow) nodes)
against two alternatives: a Gather of all windows onto a new axis then one reduction (2 nodes
per axis for max, 4 for the average), and, for the average, a constant averaging matrix on each
side (two MatMuls; not exact for ±inf/NaN inputs). Reports
the median of --runs batch-1 runs (after warm-up) on one ORT thread, and checks every variant
against the numpy runtime.
Usage: python benchmarks/onnx_adaptive_pool.py [--runs 300]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from hashpack.exporter.onnx import build_onnx
from hashpack.runtime import HpkFile, Model, Node, ValueInfo

CASES = [  # (C, H, W, oh, ow)
    (512, 2, 2, 7, 7),  # VGG at 64×64 input
    (512, 13, 13, 7, 7),  # VGG at ~416×416
    (256, 28, 28, 5, 5),
    (64, 56, 56, 7, 7),
]


def hpk_for(op: str, c: int, h: int, w: int, oh: int, ow: int) -> HpkFile:
    return HpkFile(
        inputs=[ValueInfo("x", (None, c, h, w))],
        outputs=[ValueInfo("y", (None, c, oh, ow))],
        spaces={},
        params={},
        nodes=[Node(op, "pool", ("x",), ("y",), {}, {"output": [oh, ow]})],
        tensors={},
    )


def windows(size: int, out: int) -> list[tuple[int, int]]:
    return [((i * size) // out, -(-((i + 1) * size) // out)) for i in range(out)]


def gather_model(average: bool, c: int, h: int, w: int, oh: int, ow: int) -> bytes:
    """Per axis: Gather the windows onto a new axis [.., out, widest, ..], then reduce it (the
    average masks the padding positions with Where and divides by the counts): 2 or 4 nodes."""
    nodes, inits = [], []
    source = "x"
    for axis, size, out in ((2, h, oh), (3, w, ow)):
        bounds = windows(size, out)
        widest = max(e - s for s, e in bounds)
        index = np.array([[min(s + j, e - 1) for j in range(widest)] for s, e in bounds], np.int64)
        valid = np.array([[j < e - s for j in range(widest)] for s, e in bounds])
        trailing = (1,) * (3 - axis)
        target = "y" if axis == 3 else "rows"
        inits += [
            numpy_helper.from_array(index, f"index{axis}"),
            numpy_helper.from_array(np.array([axis + 1], np.int64), f"axes{axis}"),
        ]
        nodes.append(helper.make_node("Gather", [source, f"index{axis}"], [f"g{axis}"], axis=axis))
        if not average:
            nodes.append(helper.make_node("ReduceMax", [f"g{axis}", f"axes{axis}"], [target], keepdims=0))
        else:
            counts = valid.sum(axis=1).astype(np.float32).reshape(out, *trailing)
            inits += [
                numpy_helper.from_array(valid.reshape(*valid.shape, *trailing), f"valid{axis}"),
                numpy_helper.from_array(np.array(0, np.float32), f"zero{axis}"),
                numpy_helper.from_array(counts, f"count{axis}"),
            ]
            nodes += [
                helper.make_node("Where", [f"valid{axis}", f"g{axis}", f"zero{axis}"], [f"m{axis}"]),
                helper.make_node("ReduceSum", [f"m{axis}", f"axes{axis}"], [f"s{axis}"], keepdims=0),
                helper.make_node("Div", [f"s{axis}", f"count{axis}"], [target]),
            ]
        source = target
    return _model(nodes, inits, c, h, w, oh, ow)


def matmul_model(c: int, h: int, w: int, oh: int, ow: int) -> bytes:
    """y = A_h @ x @ A_w^T with A's rows 1/len over each window (average only)."""
    a_h = np.zeros((oh, h), np.float32)
    for i, (s, e) in enumerate(windows(h, oh)):
        a_h[i, s:e] = 1 / (e - s)
    a_w = np.zeros((w, ow), np.float32)
    for j, (s, e) in enumerate(windows(w, ow)):
        a_w[s:e, j] = 1 / (e - s)
    nodes = [helper.make_node("MatMul", ["x", "aw"], ["xw"]), helper.make_node("MatMul", ["ah", "xw"], ["y"])]
    inits = [numpy_helper.from_array(a_h, "ah"), numpy_helper.from_array(a_w, "aw")]
    return _model(nodes, inits, c, h, w, oh, ow)


def _model(nodes, inits, c, h, w, oh, ow) -> bytes:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", c, h, w])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", c, oh, ow])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString()


def median_us(data: bytes, x: np.ndarray, runs: int) -> tuple[float, np.ndarray]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    for _ in range(20):
        (y,) = session.run(None, {"x": x})
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, {"x": x})
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6, y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    print(f"onnxruntime {ort.__version__}, 1 thread, batch 1, median of {args.runs} runs (µs)")
    print(f"{'op':>8} {'input':>14} {'output':>7} {'exporter':>9} {'gather':>9} {'matmul':>9}")
    for c, h, w, oh, ow in CASES:
        x = np.random.default_rng(0).standard_normal((1, c, h, w)).astype(np.float32)
        for op in ("AdaptiveAvgPool2d", "AdaptiveMaxPool2d"):
            average = op == "AdaptiveAvgPool2d"
            hpk = hpk_for(op, c, h, w, oh, ow)
            expected = Model(hpk).run(x)
            variants = {
                "exporter": build_onnx(hpk, "expanded").SerializeToString(),
                "gather": gather_model(average, c, h, w, oh, ow),
            }
            if average:
                variants["matmul"] = matmul_model(c, h, w, oh, ow)
            row = {}
            for name, data in variants.items():
                row[name], y = median_us(data, x, args.runs)
                np.testing.assert_allclose(y, expected, atol=1e-5, rtol=1e-5, err_msg=f"{name} {op}")
            cells = " ".join(
                f"{row[k]:>9.1f}" if k in row else f"{'-':>9}" for k in ("exporter", "gather", "matmul")
            )
            print(f"{op[8:11]:>8} {f'{c}x{h}x{w}':>14} {f'{oh}x{ow}':>7} {cells}")


if __name__ == "__main__":
    main()

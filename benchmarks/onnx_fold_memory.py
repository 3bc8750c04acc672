"""Peak memory of ONNX Runtime session creation for compact/inline/expanded exports.

ORT constant-folds the in-graph decompression of compact and inline files when a session is
created, and keeps every folded intermediate (the hash's index, uint32 and int64 temporaries)
until the pass ends, so the peak grows with the virtual weight count times the number of
full-size intermediates. This measures it on one hashed Linear layer (1/8) of each size: each
(size, mode) runs in a fresh process that records its RSS just before the session and its peak
RSS after, so the difference is what session creation added. Prints bytes per virtual weight
(the slope between the two largest sizes cancels ORT's fixed overhead).
Usage: python benchmarks/onnx_fold_memory.py [--sizes 2048x2048 4096x2048 8192x2048] [--json]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

MODES = ("compact", "inline", "expanded")


def measure(mode: str, n_in: int, n_out: int) -> dict:
    """In this process: build the export, then create one ORT session; RSS in bytes."""
    import numpy as np
    import onnxruntime as ort

    from hashpack.exporter.onnx import build_onnx
    from hashpack.runtime import HpkFile, Node, Param, Space, ValueInfo

    buckets = n_in * n_out // 8
    hpk = HpkFile(
        inputs=[ValueInfo("x", (None, n_in))],
        outputs=[ValueInfo("y", (None, n_out))],
        spaces={"s": Space("s", buckets, "float32", "space/s")},
        params={"w": Param("w", "hashed", (n_out, n_in), {"space": "s", "seed": 1})},
        nodes=[Node("Linear", "fc", ("x",), ("y",), {"weight": "w"}, {})],
        tensors={"space/s": np.random.default_rng(0).standard_normal(buckets).astype(np.float32)},
    )
    data = build_onnx(hpk, mode).SerializeToString()
    with open("/proc/self/statm") as statm:
        before = int(statm.read().split()[1]) * resource.getpagesize()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    start = time.perf_counter()
    ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"mode": mode, "virtual": n_in * n_out, "before": before, "peak": peak, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["2048x2048", "4096x2048", "8192x2048"])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child[0], int(args.child[1]), int(args.child[2]))))
        return
    rows = []
    for size in args.sizes:
        n_in, n_out = (int(v) for v in size.split("x"))
        for mode in MODES:
            child = [sys.executable, __file__, "--child", mode, str(n_in), str(n_out)]
            rows.append(json.loads(subprocess.run(child, check=True, capture_output=True, text=True).stdout))
    slopes = {}
    for mode in MODES:
        small, large = sorted((r for r in rows if r["mode"] == mode), key=lambda r: r["virtual"])[-2:]
        added = [r["peak"] - r["before"] for r in (small, large)]
        slopes[mode] = (added[1] - added[0]) / (large["virtual"] - small["virtual"])
    if args.json:
        print(json.dumps({"rows": rows, "bytes_per_virtual_weight": slopes}, indent=2))
        return
    print("one hashed Linear at 1/8, ORT", __import__("onnxruntime").__version__, "1 thread")
    print(f"{'virtual':>12} {'mode':>9} {'session added MB':>17} {'B/weight':>9} {'load s':>7}")
    for r in rows:
        added = r["peak"] - r["before"]
        print(
            f"{r['virtual']:>12,} {r['mode']:>9} {added / 1e6:>17.0f} {added / r['virtual']:>9.1f} {r['seconds']:>7.2f}"
        )
    print(
        "slope (bytes per virtual weight between the two largest):",
        {m: round(v, 1) for m, v in slopes.items()},
    )


if __name__ == "__main__":
    main()

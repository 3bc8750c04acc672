"""LiteRT latency of exported .tflite files: once vs inline vs expanded weights, in one run.

For each model: file sizes; interpreter creation (``Interpreter`` + ``allocate_tensors``); the first
invoke (once: the CALL_ONCE decompression happens here); steady-state batch-1 latency, the median
of ``--runs`` invokes (≥ 50) measured in interleaved rounds so that load drift hits every mode
alike; and the once/expanded and inline/expanded ratios (goal: steady-state once/expanded ≤ 1.5).

A fourth row, ``materialized``, is a ``--materializable`` once file turned into constant weights
on the device (``exporter/tflite/materialize.py``): its file size is the once file's, its creation
time includes running the init subgraph and patching the template, and its steady state is what
an app gets after that one-off step.

    python benchmarks/tflite_latency.py                 # packs four reference models (needs torch)
    python benchmarks/tflite_latency.py model.hpk ...   # or your own .hpk files
    python benchmarks/tflite_latency.py --no-xnnpack    # LiteRT's builtin kernels only

Timings are wall-clock on whatever else the machine is doing: the load average is printed with
them; compare ratios within one run, not absolute numbers across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from hashpack.exporter.tflite import WEIGHT_MODES, build_tflite
from hashpack.exporter.tflite.materialize import materialize
from hashpack.runtime import HpkFile, read_hpk

ROUNDS = 10  # steady-state runs are split into this many interleaved rounds per mode
FRESH = 5  # interpreters created (and first invokes timed) per mode


def reference_models(directory: Path) -> list[Path]:
    """LeNet-300-100 and LeNet-5 on 28×28, ResNet-20 and a MobileNetV2-style net on 32×32 (hashed, 1/8)."""
    import torch

    import hashpack
    from hashpack.models import LeNet5, MobileNetTiny, ResNet20, mlp

    models = {
        "lenet300-100": (lambda: mlp((1, 28, 28), 10), (1, 28, 28)),
        "lenet5": (lambda: LeNet5((1, 28, 28), 10), (1, 28, 28)),
        "resnet20": (lambda: ResNet20((3, 32, 32), 10), (3, 32, 32)),
        "mobilenet": (lambda: MobileNetTiny((3, 32, 32), 10), (3, 32, 32)),
    }
    paths = []
    for name, (factory, shape) in models.items():
        torch.manual_seed(0)
        model = hashpack.compress(factory(), compression=1 / 8, seed=1).eval()
        path = directory / f"{name}.hpk"
        hashpack.pack(model, torch.randn(2, *shape), path)
        paths.append(path)
    return paths


def _interpreter(data: bytes, resolver: OpResolverType, threads: int | None) -> tuple[Interpreter, int]:
    interpreter = Interpreter(model_content=data, num_threads=threads, experimental_op_resolver_type=resolver)
    interpreter.allocate_tensors()
    return interpreter, interpreter.get_input_details()[0]["index"]


def measure(
    hpk: HpkFile, hpk_bytes: int, runs: int, resolver: OpResolverType, threads: int | None
) -> dict[str, Any]:
    """Sizes and latencies (ms) of the three weights modes of one model, and of once materialized."""
    x = np.random.default_rng(0).standard_normal((1, *hpk.input.shape[1:])).astype(np.float32)
    result: dict[str, Any] = {"hpk_bytes": hpk_bytes, "modes": {}}
    live = {}
    for mode in (*WEIGHT_MODES, "materialized"):
        start = time.perf_counter()
        if mode == "materialized":
            data = build_tflite(hpk, "once", materializable=True).data
        else:
            data = build_tflite(hpk, mode).data
        export_ms = (time.perf_counter() - start) * 1e3
        create, first = [], []
        for _ in range(FRESH):
            start = time.perf_counter()
            model = materialize(data, threads) if mode == "materialized" else data
            interpreter, index = _interpreter(model, resolver, threads)
            create.append((time.perf_counter() - start) * 1e3)
            interpreter.set_tensor(index, x)
            start = time.perf_counter()
            interpreter.invoke()
            first.append((time.perf_counter() - start) * 1e3)
        live[mode] = (interpreter, index)
        result["modes"][mode] = {
            "bytes": len(data),
            "export_ms": export_ms,
            "create_ms": statistics.median(create),
            "first_invoke_ms": statistics.median(first),
            "steady": [],
        }
    per_round = max(1, -(-runs // ROUNDS))
    for _ in range(ROUNDS):
        for mode, (interpreter, index) in live.items():
            samples = result["modes"][mode]["steady"]
            for _ in range(per_round):
                interpreter.set_tensor(index, x)
                start = time.perf_counter()
                interpreter.invoke()
                samples.append((time.perf_counter() - start) * 1e3)
    for stats in result["modes"].values():
        samples = stats.pop("steady")
        stats["steady_ms"] = statistics.median(samples)
        stats["steady_runs"] = len(samples)
    expanded = result["modes"]["expanded"]["steady_ms"]
    result["once_over_expanded"] = result["modes"]["once"]["steady_ms"] / expanded
    result["inline_over_expanded"] = result["modes"]["inline"]["steady_ms"] / expanded
    result["materialized_over_expanded"] = result["modes"]["materialized"]["steady_ms"] / expanded
    return result


def report(name: str, result: dict[str, Any]) -> str:
    lines = [f"{name}  (.hpk {result['hpk_bytes']:,} B)"]
    lines.append(
        f"  {'mode':<13}{'file B':>11}{'/hpk':>7}{'export ms':>11}{'create ms':>11}{'1st invoke ms':>15}{'steady ms':>11}"
    )
    for mode, s in result["modes"].items():
        lines.append(
            f"  {mode:<13}{s['bytes']:>11,}{s['bytes'] / result['hpk_bytes']:>7.2f}{s['export_ms']:>11.1f}"
            f"{s['create_ms']:>11.2f}{s['first_invoke_ms']:>15.2f}{s['steady_ms']:>11.3f}"
        )
    goal = "meets" if result["once_over_expanded"] <= 1.5 else "misses"
    materialized = result["materialized_over_expanded"]
    lines.append(
        f"  steady-state once/expanded = {result['once_over_expanded']:.2f} ({goal} the ≤ 1.5 goal), "
        f"once materialized/expanded = {materialized:.2f} ({'meets' if materialized <= 1.5 else 'misses'}), "
        f"inline/expanded = {result['inline_over_expanded']:.2f}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="*", type=Path, help=".hpk files (default: four reference models)")
    parser.add_argument("--runs", type=int, default=200, help="steady-state invokes per mode (≥ 50)")
    parser.add_argument("--threads", type=int, default=None, help="interpreter threads (default: LiteRT's)")
    parser.add_argument("--no-xnnpack", action="store_true", help="builtin kernels only, no default delegate")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args(argv)
    if args.runs < 50:
        parser.error("--runs must be at least 50")
    resolver = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES if args.no_xnnpack else OpResolverType.AUTO
    with tempfile.TemporaryDirectory() as tmp:
        paths = args.models or reference_models(Path(tmp))
        results = {
            p.stem: measure(read_hpk(p), p.stat().st_size, args.runs, resolver, args.threads) for p in paths
        }
    header = {
        "kernels": "builtin only" if args.no_xnnpack else "default (XNNPACK delegate)",
        "threads": args.threads,
        "load_average": os.getloadavg(),
        "cpus": os.cpu_count(),
    }
    if args.json:
        print(json.dumps({"setup": header, "models": results}, indent=2))
        return 0
    load = ", ".join(f"{v:.1f}" for v in header["load_average"])
    print(
        f"LiteRT kernels: {header['kernels']}; threads: {args.threads or 'default'}; "
        f"{header['cpus']} CPUs, load average {load}; steady = median of {args.runs} batch-1 invokes"
    )
    for name, result in results.items():
        print()
        print(report(name, result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

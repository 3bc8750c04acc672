"""ONNX Runtime cost of on-device decompression: compact/inline vs expanded exports, same run.

For LeNet-300-100 (MNIST shape) and ResNet-20 (CIFAR shape) hashed at 1/8 and 1/64: file sizes,
ORT session-creation time (median of --loads, split into function inlining and constant folding)
and batch-1 / batch-32 inference latency (median of --runs after --warmup, the modes interleaved
run by run so drift hits them alike) for the compact, inline and expanded exports and for the
compact file folded once by ``save_optimized``. Prints ratios to expanded (for latency the median
of per-round ratios, robust on a shared machine). Goals: inference latency compact/expanded
≤ 1.05; load-time overhead per virtual weight is reported. Single-threaded ORT by default (a
phone core; --threads 0 = ORT's default pool).
Usage: python benchmarks/onnx_latency.py [--runs 200] [--loads 15] [--threads 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

import hashpack
from hashpack.exporter.onnx import export_onnx, save_optimized
from hashpack.models import build_model
from hashpack.runtime import read_hpk

MODELS = {"lenet-300-100": ("mlp", (1, 28, 28)), "resnet-20": ("resnet20", (3, 32, 32))}
COMPRESSIONS = {"1/8": 1 / 8, "1/64": 1 / 64}
MODES = ("compact", "inline", "expanded", "folded")  # folded = save_optimized(compact)
BATCHES = (1, 32)
GOAL = 1.05


def session(path: Path, threads: int, optimize: bool = True) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    if not optimize:  # functions are still inlined, but nothing is folded
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def median_load_seconds(path: Path, threads: int, loads: int, optimize: bool = True) -> float:
    session(path, threads, optimize)  # warm the file cache and ORT's one-time initialisation
    times = []
    for _ in range(loads):
        start = time.perf_counter()
        session(path, threads, optimize)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved_latency(
    sessions: dict[str, ort.InferenceSession], feeds: dict[str, dict], warmup: int, runs: int
) -> dict[str, list[float]]:
    """Seconds of every run of each session. The sessions take turns within every round and the
    order rotates from round to round, so drift and cache effects hit every mode alike."""
    modes = list(sessions)
    for _ in range(warmup):
        for mode in modes:
            sessions[mode].run(None, feeds[mode])
    times: dict[str, list[float]] = {mode: [] for mode in modes}
    for round_ in range(runs):
        for mode in modes[round_ % len(modes) :] + modes[: round_ % len(modes)]:
            start = time.perf_counter()
            sessions[mode].run(None, feeds[mode])
            times[mode].append(time.perf_counter() - start)
    return times


def paired_ratio(times: dict[str, list[float]], mode: str, base: str = "expanded") -> float:
    """Median over rounds of (mode's time / base's time in the same round): runs of one round are
    adjacent in time, so the ratio cancels the load of a shared machine that medians do not."""
    return statistics.median(a / b for a, b in zip(times[mode], times[base], strict=True))


def measure(
    name: str, arch: str, shape: tuple[int, ...], label: str, compression: float, args, root: Path
) -> dict:
    torch.manual_seed(0)
    model = hashpack.compress(build_model(arch, shape, 10), compression=compression)
    example = torch.randn(8, *shape)
    hpk_path = root / f"{arch}-{label.replace('/', '_')}.hpk"
    hashpack.pack(model.eval(), example, hpk_path)
    hpk = read_hpk(hpk_path)
    compressed = [p for p in hpk.params.values() if p.scheme != "dense"]
    virtual = sum(p.numel for p in compressed)
    paths = {mode: root / f"{hpk_path.stem}.{mode}.onnx" for mode in MODES}
    for mode in ("compact", "inline", "expanded"):
        export_onnx(hpk, paths[mode], weights=mode)
    save_optimized(paths["compact"], paths["folded"])
    row: dict = {
        "model": name,
        "compression": label,
        "virtual_weights": virtual,
        "hpk_bytes": hpk_path.stat().st_size,
        "bytes": {mode: paths[mode].stat().st_size for mode in MODES},
        "load_s": {mode: median_load_seconds(paths[mode], args.threads, args.loads) for mode in MODES},
        "latency_s": {},
        "latency_ratio": {},
        "compressed_tensors": len(compressed),
        # Session creation without graph optimizations: inlining and setup, no folding.
        "unfolded_load_s": {
            mode: median_load_seconds(paths[mode], args.threads, args.loads, optimize=False)
            for mode in ("compact", "inline", "expanded")
        },
    }
    sessions = {mode: session(paths[mode], args.threads) for mode in MODES}
    rng = np.random.default_rng(0)
    for batch in BATCHES:
        x = rng.standard_normal((batch, *shape)).astype(np.float32)
        feeds = {mode: {hpk.input.name: x} for mode in MODES}
        outputs = {mode: s.run(None, feeds[mode])[0] for mode, s in sessions.items()}
        for mode in MODES:  # same model in every file
            np.testing.assert_allclose(outputs[mode], outputs["expanded"], rtol=1e-4, atol=1e-4)
        times = interleaved_latency(sessions, feeds, args.warmup, args.runs)
        row["latency_s"][batch] = {mode: statistics.median(t) for mode, t in times.items()}
        row["latency_ratio"][batch] = {mode: paired_ratio(times, mode) for mode in MODES}
    base, unfolded = row["load_s"]["expanded"], row["unfolded_load_s"]
    row["load_overhead_ns_per_virtual_weight"] = {
        mode: (row["load_s"][mode] - base) / virtual * 1e9 for mode in ("compact", "inline")
    }
    # Split of the overhead: graph setup/inlining (unfolded load minus expanded's) and folding.
    row["load_overhead_split_ms"] = {
        mode: {
            "setup": (unfolded[mode] - unfolded["expanded"]) * 1e3,
            "folding": (row["load_s"][mode] - unfolded[mode] - (base - unfolded["expanded"])) * 1e3,
        }
        for mode in ("compact", "inline")
    }
    return row


def print_table(rows: list[dict], args) -> None:
    threads = "ORT default" if args.threads == 0 else str(args.threads)
    print(
        f"onnxruntime {ort.__version__}, CPU, intra-op threads: {threads}; medians of {args.loads} loads "
        f"and {args.runs} runs (after {args.warmup} warm-up); ratios are mode / expanded (latency: median "
        "of per-round ratios, the modes run back to back in rotating order)"
    )
    header = (
        f"{'model':<14} {'comp':>5} {'mode':<9} {'size KB':>9} {'size/hpk':>8} {'load ms':>8} {'load x':>7} "
        f"{'b1 µs':>8} {'b1 x':>6} {'b32 µs':>9} {'b32 x':>6}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        base = r["latency_s"]
        for mode in MODES:
            b1, b32 = base[1][mode], base[32][mode]
            print(
                f"{r['model']:<14} {r['compression']:>5} {mode:<9} {r['bytes'][mode] / 1024:>9.1f} "
                f"{r['bytes'][mode] / r['hpk_bytes']:>8.2f} {r['load_s'][mode] * 1e3:>8.2f} "
                f"{r['load_s'][mode] / r['load_s']['expanded']:>7.2f} "
                f"{b1 * 1e6:>8.1f} {r['latency_ratio'][1][mode]:>6.3f} "
                f"{b32 * 1e6:>9.1f} {r['latency_ratio'][32][mode]:>6.3f}"
            )
        print(
            f"    .hpk {r['hpk_bytes'] / 1024:.1f} KB; {r['virtual_weights']:,} virtual weights in "
            f"{r['compressed_tensors']} tensors. Load overhead vs expanded, per virtual weight: "
            + ", ".join(f"{m} {v:.0f} ns" for m, v in r["load_overhead_ns_per_virtual_weight"].items())
        )
        print(
            "    of which graph setup (function inlining) / constant folding: "
            + ", ".join(
                f"{m} {v['setup']:.1f} / {v['folding']:.1f} ms"
                for m, v in r["load_overhead_split_ms"].items()
            )
        )
    for batch in BATCHES:
        worst = max(r["latency_ratio"][batch]["compact"] for r in rows)
        verdict = "met" if worst <= GOAL else "NOT met"
        print(f"goal: batch-{batch} latency compact/expanded <= {GOAL}: {verdict} (worst {worst:.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="timed runs per batch size (>= 50)")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--loads", type=int, default=15, help="timed session creations per file")
    parser.add_argument("--threads", type=int, default=1, help="ORT intra-op threads (0 = ORT default)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.runs < 50:
        parser.error("--runs must be at least 50")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (arch, shape) in MODELS.items():
            for label, compression in COMPRESSIONS.items():
                rows.append(measure(name, arch, shape, label, compression, args, Path(tmp)))
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print_table(rows, args)


if __name__ == "__main__":
    main()

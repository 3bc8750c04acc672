"""Sizes, speed and memory of a .hpk model in each backend (``hashpack profile``).

**Sizes**: the dense fp32 model (the raw float32 values of every param: what an uncompressed model
stores), the .hpk file, and every weights mode of every format whose exporter is importable; each
also gzip-compressed (level 9, no timestamp), because downloads and app packages are compressed.
Plus the per-layer breakdown of ``hashpack.runtime.summary``.

**Speed**, per backend and batch size, measured in this process (``time.perf_counter``):

- ``load_ms``: until the backend accepts an input (numpy: read + validate; onnxruntime: session
  creation, which folds the decompression of compact/inline exports; LiteRT: interpreter creation
  and tensor allocation; pytorch: read + weight regeneration);
- ``first_run_ms``: the first inference, including lazy work (the numpy runtime decodes weights
  on first use, a LiteRT ``once`` export runs its CALL_ONCE init);
- ``median_ms``, ``p10_ms``, ``p90_ms``: ``runs`` timed inferences after ``WARMUP`` untimed ones.

**Memory**: the peak resident set size (``VmHWM``, else ``ru_maxrss``) of a child process that
imports the backend, loads the model and runs the largest batch; also its peak after the imports
alone, so ``model_mib = peak_mib - imports_mib`` is what the model itself costs. The child is
this module (``python -m hashpack.profiling KIND PATH BATCH SHAPE``).

``plot_profile`` draws the sizes and latencies as two bar charts (matplotlib, Agg).
"""

from __future__ import annotations

import gzip
import importlib
import importlib.metadata
import importlib.util
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hashpack.runtime import HpkFile, load, read_hpk
from hashpack.runtime.container import atomic_write_bytes
from hashpack.runtime.summary import summarize
from hashpack.validation import (
    EXPORT_MODES,
    BackendUnavailable,
    ProgressHook,
    export_model,
    open_backend,
    random_inputs,
    runtime_missing,
    short_error,
)

DEFAULT_BACKENDS = ("numpy", "onnx", "tflite")
DEFAULT_BATCHES = (1, 32)
DEFAULT_RUNS = 30
WARMUP = 2
MEMORY_RUNS = 3
CHILD_TIMEOUT_S = 600
KIB = 1024
MIB = 1024 * 1024
BACKEND_KINDS = ("numpy", "pytorch", "onnx", "tflite")
# Modules a backend needs at run time (what its memory child imports before loading the model).
BACKEND_IMPORTS = {
    "numpy": ("hashpack.runtime",),
    "pytorch": ("torch", "hashpack.torch_eval"),
    "onnx": ("onnxruntime",),
    # make_interpreter imports the interpreter lazily: import it here so it counts as an import.
    "tflite": (
        "hashpack.exporter.tflite.runner",
        ("ai_edge_litert.interpreter", "tflite_runtime.interpreter"),
    ),
}


def parse_backends(text: str) -> list[tuple[str, str | None]]:
    """'numpy,onnx,tflite:inline' -> [(kind, mode)]; a bare onnx/tflite means its default mode."""
    chosen: list[tuple[str, str | None]] = []
    for item in (part.strip().lower() for part in text.split(",")):
        if not item:
            continue
        kind, _, mode = item.partition(":")
        kind = "pytorch" if kind == "torch" else kind
        if kind not in BACKEND_KINDS:
            raise ValueError(f"unknown backend {item!r} (numpy, pytorch, onnx[:MODE], tflite[:MODE])")
        if kind in EXPORT_MODES:
            mode = mode or EXPORT_MODES[kind][0]
            if mode not in EXPORT_MODES[kind]:
                raise ValueError(f"{item!r}: {kind} modes are {', '.join(EXPORT_MODES[kind])}")
        elif mode:
            raise ValueError(f"{item!r}: the {kind} backend has no weights modes")
        pair = (kind, mode or None)
        if pair not in chosen:
            chosen.append(pair)
    if not chosen:
        raise ValueError("no backend given")
    return chosen


def backend_name(kind: str, mode: str | None) -> str:
    return kind if mode is None else f"{kind}:{mode}"


def gzip_size(data: bytes) -> int:
    """Bytes of ``data`` gzip-compressed at level 9 with a zero timestamp (deterministic)."""
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def peak_rss_bytes() -> int | None:
    """This process's peak resident set size: VmHWM from /proc, else getrusage (None if neither)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * KIB
    except OSError:
        pass
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * KIB  # macOS reports bytes


def _environment() -> dict[str, Any]:
    versions = {}
    for package in ("numpy", "torch", "onnxruntime", "ai-edge-litert"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "versions": versions,
    }


class _Progress:
    """Counts the measuring steps for the caller's progress bar."""

    def __init__(self, hook: ProgressHook | None, total: int) -> None:
        self.hook, self.total, self.done = hook, total, 0

    def step(self, label: str) -> None:
        if self.hook:
            self.hook(self.done, self.total, label)
        self.done += 1

    def finish(self) -> None:
        if self.hook:
            self.hook(self.total, self.total, "done")


def run_profile(
    path: str | os.PathLike[str],
    *,
    backends: Sequence[tuple[str, str | None]] = tuple((kind, None) for kind in DEFAULT_BACKENDS),
    batches: Sequence[int] = DEFAULT_BATCHES,
    runs: int = DEFAULT_RUNS,
    export_dir: str | os.PathLike[str] | None = None,
    memory: bool = True,
    seed: int = 0,
    on_progress: ProgressHook | None = None,
) -> dict[str, Any]:
    """Measure ``path`` (see the module docstring); returns the ``hashpack profile --json`` document.

    backends: (kind, mode) pairs as ``parse_backends`` returns (mode None = the default mode).
    export_dir: keep the exports there (default: a temporary directory, removed afterwards). A
    backend that cannot run here is listed under ``skipped`` with the reason.
    """
    if runs < 1 or not batches or min(batches) < 1:
        raise ValueError("runs and every batch size must be at least 1")
    source = Path(path)
    hpk = read_hpk(source)
    chosen = [
        (kind, mode or (EXPORT_MODES[kind][0] if kind in EXPORT_MODES else None)) for kind, mode in backends
    ]
    export_count = sum(len(modes) for modes in EXPORT_MODES.values())
    progress = _Progress(on_progress, 2 + export_count + len(chosen) * len(batches) + len(chosen) * memory)
    skipped: list[dict[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="hashpack-profile-") as scratch:
        directory = Path(export_dir) if export_dir is not None else Path(scratch)
        directory.mkdir(parents=True, exist_ok=True)
        sizes, exports = _sizes(source, directory, progress, skipped, keep=export_dir is not None)
        speed, memory_rows = [], []
        runnable = []
        for kind, mode in chosen:
            name = backend_name(kind, mode)
            file = source if mode is None else exports.get(name)
            missing = runtime_missing(kind)
            if missing:
                skipped.append({"what": name, "reason": missing})
            elif file is not None:  # else its export was skipped, and listed, above
                runnable.append((name, kind, file))
        for name, kind, file in runnable:
            import_backend(kind)
            for batch in batches:
                progress.step(f"timing {name} at batch {batch}")
                try:
                    speed.append(_time_backend(name, kind, file, hpk, batch, runs, seed))
                except Exception as exc:
                    skipped.append(
                        {"what": f"{name} batch {batch}", "reason": f"run failed: {short_error(exc)}"}
                    )
        if memory:
            for name, kind, file in runnable:
                progress.step(f"peak memory of {name}")
                try:
                    memory_rows.append(
                        measure_memory(name, kind, file, hpk.input.shape, max(batches), hpk.input.dtype)
                    )
                except Exception as exc:
                    skipped.append({"what": f"{name} memory", "reason": short_error(exc)})
    progress.finish()
    summary = summarize(hpk, source.stat().st_size)
    return {
        "file": str(source),
        "file_bytes": source.stat().st_size,
        "model": {
            "input": {"name": hpk.input.name, "shape": list(hpk.input.shape)},
            "output": {"name": hpk.output.name, "shape": list(hpk.output.shape)},
            "virtual_params": summary["virtual_params"],
            "dense_fp32_bytes": summary["dense_fp32_bytes"],
        },
        "sizes": sizes,
        "layers": [
            {
                "name": layer["name"],
                "op": layer["op"],
                "scheme": layer["scheme"],
                "virtual_params": layer["virtual_params"],
                "stored_params": layer["stored_values"],
                "bytes": layer["stored_bytes"],
                "compression": layer["compression"],
            }
            for layer in summary["layers"]
        ],
        "speed": speed,
        "memory": memory_rows,
        "skipped": skipped,
        "settings": {
            "backends": [backend_name(kind, mode) for kind, mode in chosen],
            "batches": list(batches),
            "runs": runs,
            "warmup": WARMUP,
            "seed": seed,
            "exports_kept_in": str(directory) if export_dir is not None else None,
        },
        "environment": _environment(),
    }


def _sizes(
    source: Path, directory: Path, progress: _Progress, skipped: list[dict[str, str]], keep: bool
) -> tuple[list[dict[str, Any]], dict[str, Path]]:
    """Size rows (dense fp32, .hpk, each export) and the export files by backend name."""
    progress.step("decoding the dense fp32 weights")
    model = load(source)
    dense = b"".join(np.ascontiguousarray(w, dtype="<f4").tobytes() for w in model.weights.values())
    rows = [_size_row("dense fp32", "dense", None, None, dense, len(dense))]
    progress.step("compressing the .hpk")
    rows.append(_size_row(".hpk", "hpk", None, source, source.read_bytes(), len(dense)))
    exports: dict[str, Path] = {}
    for kind, modes in EXPORT_MODES.items():
        for mode in modes:
            name = backend_name(kind, mode)
            progress.step(f"exporting {name}")
            try:
                file = export_model(kind, mode, source, directory)
            except BackendUnavailable as exc:
                skipped.append({"what": name, "reason": str(exc)})
                continue
            except Exception as exc:
                skipped.append({"what": name, "reason": f"export failed: {short_error(exc)}"})
                continue
            exports[name] = file
            rows.append(_size_row(name, kind, mode, file if keep else None, file.read_bytes(), len(dense)))
    return rows, exports


def _size_row(
    name: str, kind: str, mode: str | None, path: Path | None, data: bytes, dense_bytes: int
) -> dict[str, Any]:
    return {
        "name": name,
        "kind": kind,
        "mode": mode,
        "path": None if path is None else str(path),
        "bytes": len(data),
        "gzip_bytes": gzip_size(data),
        "dense_over_size": dense_bytes / len(data) if data else None,
    }


def _time_backend(
    name: str, kind: str, file: Path, hpk: HpkFile, batch: int, runs: int, seed: int
) -> dict[str, Any]:
    x = random_inputs(hpk, batch, seed)
    start = time.perf_counter()
    runner = open_backend(kind, file)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    runner(x)
    first_s = time.perf_counter() - start
    for _ in range(WARMUP):
        runner(x)
    times = np.empty(runs)
    for index in range(runs):
        start = time.perf_counter()
        runner(x)
        times[index] = time.perf_counter() - start
    p10, median, p90 = np.percentile(times * 1e3, [10, 50, 90])
    return {
        "backend": name,
        "batch": batch,
        "load_ms": load_s * 1e3,
        "first_run_ms": first_s * 1e3,
        "median_ms": float(median),
        "p10_ms": float(p10),
        "p90_ms": float(p90),
        "runs": runs,
    }


def measure_memory(
    name: str, kind: str, file: Path, input_shape: Sequence[int | None], batch: int, dtype: str = "float32"
) -> dict[str, Any]:
    """Peak RSS of a child process that runs ``file`` in backend ``kind`` at ``batch``."""
    shape = ",".join(str(d) for d in input_shape[1:])
    command = [sys.executable, "-m", "hashpack.profiling", kind, str(file), str(batch), shape, dtype]
    result = subprocess.run(command, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"memory child exited with {result.returncode}: {tail}")
    measured = json.loads(lines[-1])
    if measured["peak_bytes"] is None:
        raise RuntimeError("this platform reports no peak resident memory")
    return {
        "backend": name,
        "batch": batch,
        "imports_mib": measured["imports_bytes"] / MIB,
        "peak_mib": measured["peak_bytes"] / MIB,
        "model_mib": (measured["peak_bytes"] - measured["imports_bytes"]) / MIB,
    }


def import_backend(kind: str) -> None:
    """Import what backend ``kind`` runs on, so neither load times nor model memory include it."""
    for module in BACKEND_IMPORTS[kind]:
        if isinstance(module, tuple):  # the first of these alternatives that is installed
            module = next((m for m in module if importlib.util.find_spec(m.split(".")[0])), module[0])
        importlib.import_module(module)


def _child(argv: list[str]) -> None:
    """The memory child: import the backend, note the peak, load + run, print both peaks as JSON."""
    kind, path, batch, shape, dtype = argv
    import_backend(kind)
    imports = peak_rss_bytes()
    runner = open_backend(kind, path)
    dims = tuple(int(d) for d in shape.split(",") if d)
    x = np.random.default_rng(0).normal(size=(int(batch), *dims)).astype(np.float32)
    if dtype == "int32":  # token ids: id 0 is a row of every table
        x = np.zeros((int(batch), *dims), np.int32)
    for _ in range(MEMORY_RUNS):
        runner(x)
    print(json.dumps({"imports_bytes": imports, "peak_bytes": peak_rss_bytes()}))


# ------------------------------------------------------------------------------------------ plot


def plot_profile(report: dict[str, Any], out_path: str | os.PathLike[str]) -> Path:
    """Write a PNG: file sizes (raw and gzip) and steady-state latency per backend and batch size."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    sizes = report["sizes"]
    speed = report["speed"]
    backends = list(dict.fromkeys(row["backend"] for row in speed))
    batches = list(dict.fromkeys(row["batch"] for row in speed))
    rows = max(len(sizes), len(backends) * max(1, len(batches)) * 0.6, 4)
    figure = Figure(figsize=(14, 1.8 + 0.55 * rows), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    size_axes, speed_axes = figure.subplots(1, 2)
    model = report["model"]
    figure.suptitle(
        f"hashpack profile: {Path(report['file']).name}  ·  {model['virtual_params']:,} virtual params  ·  "
        f"input [{', '.join('N' if d is None else str(d) for d in model['input']['shape'])}]",
        fontsize=13,
        fontweight="bold",
    )
    _plot_sizes(size_axes, sizes)
    _plot_speed(speed_axes, speed, backends, batches)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    atomic_write_bytes(out_path, buffer.getvalue())  # a failed or killed run leaves no half PNG
    return Path(out_path)


def _log_if_wide(axes: Any, values: list[float]) -> bool:
    positive = [v for v in values if v > 0]
    wide = bool(positive) and max(positive) / min(positive) > 30
    if wide:
        axes.set_xscale("log")
        axes.set_xlim(min(positive) / 2.5, max(positive) * 12)
    elif positive:
        axes.set_xlim(0, max(positive) * 1.45)
    return wide


def _legend_below(axes: Any) -> None:
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=6, frameon=False, fontsize=9)


def _human_bytes(n: float) -> str:
    if n >= MIB:
        return f"{n / MIB:.2f} MiB"
    return f"{n / KIB:.1f} KiB" if n >= KIB else f"{n:.0f} B"


def _plot_sizes(axes: Any, sizes: list[dict[str, Any]]) -> None:
    height = 0.38
    labels = [row["name"] for row in sizes]
    positions = np.arange(len(sizes))
    raw = [row["bytes"] / KIB for row in sizes]
    packed = [row["gzip_bytes"] / KIB for row in sizes]
    axes.barh(positions - height / 2, raw, height, label="file", color="#3b75af")
    axes.barh(positions + height / 2, packed, height, label="gzip -9", color="#9ecae1")
    log = _log_if_wide(axes, raw + packed)
    dense = next((row for row in sizes if row["kind"] == "dense"), None)
    for y, row in zip(positions, sizes, strict=True):
        for offset, key in ((-height / 2, "bytes"), (height / 2, "gzip_bytes")):
            label = f"  {_human_bytes(row[key])}"
            if dense is not None and row is not dense and row[key]:
                ratio = dense[key] / row[key]  # file vs file, gzip vs gzip
                label += f"  ({ratio:.1f}x smaller)" if ratio >= 1.1 else "  (≈ dense)"
            axes.text(row[key] / KIB * (1.08 if log else 1.0), y + offset, label, va="center", fontsize=8)
    axes.set_yticks(positions, labels)
    axes.invert_yaxis()
    axes.set_xlabel("size (KiB" + (", log scale)" if log else ")"))
    axes.set_title("Model size (vs dense fp32: file vs file, gzip vs gzip)")
    _legend_below(axes)
    axes.grid(axis="x", alpha=0.3)


def _plot_speed(axes: Any, speed: list[dict[str, Any]], backends: list[str], batches: list[int]) -> None:
    if not speed:
        axes.text(0.5, 0.5, "no latency measured", ha="center", va="center", transform=axes.transAxes)
        axes.set_axis_off()
        return
    palette = ["#e6550d", "#31a354", "#756bb1", "#636363", "#3182bd"]
    height = 0.8 / len(batches)
    by_key = {(row["backend"], row["batch"]): row for row in speed}
    values = []
    for b, batch in enumerate(batches):
        ys, medians, low, high = [], [], [], []
        for i, backend in enumerate(backends):
            row = by_key.get((backend, batch))
            if row is None:
                continue
            ys.append(i - 0.4 + height * (b + 0.5))
            medians.append(row["median_ms"])
            low.append(row["median_ms"] - row["p10_ms"])
            high.append(row["p90_ms"] - row["median_ms"])
            values += [row["p10_ms"], row["p90_ms"]]
        axes.barh(ys, medians, height * 0.92, xerr=[low, high], capsize=2, label=f"batch {batch}",
                  color=palette[b % len(palette)], error_kw={"elinewidth": 0.8})  # fmt: skip
        for y, median, top in zip(ys, medians, high, strict=True):
            axes.text(median + top, y, f"  {median:.3g} ms", va="center", fontsize=8)
    log = _log_if_wide(axes, values)
    axes.set_yticks(np.arange(len(backends)), backends)
    axes.invert_yaxis()
    axes.set_xlabel("milliseconds per run" + (" (log scale)" if log else ""))
    axes.set_title("Steady-state latency per run (median; whiskers p10-p90)")
    _legend_below(axes)
    axes.grid(axis="x", alpha=0.3)


if __name__ == "__main__":
    _child(sys.argv[1:])

"""Decode cost per compression scheme, in every runtime that decodes on the device.

One conv net (5 convolutions 3→32→64→128→256→256, 3×3, on 3×32×32, global pooling, Linear
256→10: 981,066 virtual params, biases included) compressed at 1/8 by each method with its default options
(fsnet: filter summaries for the convolutions, HashedNets for the Linear), plus the dense model.
Per scheme, medians of ``--repeats`` runs on one thread:

- **numpy**: regenerating every weight of the file (``Model.weights`` on a freshly read file).
- **ORT load**: ``InferenceSession`` creation for the compact ONNX export, which folds the
  decompression into dense initializers (the dense model's session creation for comparison).
- **LiteRT first invoke**: interpreter creation plus the first batch-1 invoke of the ``once``
  export (CALL_ONCE decodes the weights there), and a steady-state invoke for comparison.
- **Java**: ``new Model(file)`` in hashpack-java after the file was read (median after one cold
  run); skipped without a JDK.

Usage: OMP_NUM_THREADS=1 python benchmarks/decode_per_scheme.py [--repeats 5] [--no-java] [--json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

import hashpack
from hashpack.native_logs import native_stderr_silenced

ROOT = Path(__file__).resolve().parent.parent
JAVA_DIR = ROOT / "android_demo" / "hashpack-java"
SCHEMES = ("dense", "hashed", "fresh", "funhash", "fsnet")
SHAPE = (3, 32, 32)


def conv_net() -> nn.Module:
    channels = [3, 32, 64, 128, 256, 256]
    layers: list[nn.Module] = []
    for cin, cout in itertools.pairwise(channels):
        layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(256, 10))


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def numpy_decode(path: Path) -> Callable[[], object]:
    from hashpack.runtime import load

    return lambda: load(path).weights


def ort_load(path: Path) -> Callable[[], object]:
    import onnxruntime as ort

    def create() -> object:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.log_severity_level = 3
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    return create


def litert(path: Path) -> tuple[Callable[[], object], Callable[[], object]]:
    from hashpack.exporter.tflite.runner import make_interpreter

    data = path.read_bytes()
    x = np.zeros((1, *SHAPE), np.float32)

    def first() -> object:
        interpreter = make_interpreter(data, num_threads=1)
        runner = interpreter.get_signature_runner("serving_default")
        return runner(**{interpreter.get_signature_list()["serving_default"]["inputs"][0]: x})

    interpreter = make_interpreter(data, num_threads=1)
    runner = interpreter.get_signature_runner("serving_default")
    name = interpreter.get_signature_list()["serving_default"]["inputs"][0]
    runner(**{name: x})
    return first, lambda: runner(**{name: x})


def java_decode(path: Path, repeats: int) -> float | None:
    if shutil.which("java") is None or not (JAVA_DIR / "build" / "classes").exists():
        return None
    command = ["java", "-cp", str(JAVA_DIR / "build" / "classes"), "org.hashpack.bench.DecodeFileBenchmark"]
    result = subprocess.run([*command, str(path), str(repeats)], check=True, capture_output=True, text=True)
    values = dict(line.split("=", 1) for line in result.stdout.split())
    return float(values["median_ms"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-java", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from hashpack.exporter.onnx import export_onnx
    from hashpack.exporter.tflite import export_tflite

    if not args.no_java and shutil.which("javac"):
        subprocess.run(["bash", str(JAVA_DIR / "build.sh")], check=True)
    rows = []
    with tempfile.TemporaryDirectory() as scratch, native_stderr_silenced():
        for scheme in SCHEMES:
            torch.manual_seed(0)
            model = conv_net()
            if scheme != "dense":
                hashpack.compress(model, scheme, compression=1 / 8, seed=0)
            path = Path(scratch) / f"{scheme}.hpk"
            hpk = hashpack.pack(model.eval(), torch.rand(2, *SHAPE), path)
            onnx_path, tflite_path = path.with_suffix(".onnx"), path.with_suffix(".tflite")
            export_onnx(path, onnx_path, weights="compact")
            export_tflite(path, tflite_path, weights="once")
            first, steady = litert(tflite_path)
            virtual = sum(int(np.prod(p.shape)) for p in hpk.params.values())
            numpy_ms = median_ms(numpy_decode(path), args.repeats)
            rows.append(
                {
                    "scheme": scheme,
                    "virtual_weights": virtual,
                    "hpk_bytes": path.stat().st_size,
                    "numpy_decode_ms": numpy_ms,
                    "numpy_M_weights_per_s": virtual / numpy_ms / 1e3,
                    "ort_load_ms": median_ms(ort_load(onnx_path), args.repeats),
                    "litert_first_invoke_ms": median_ms(first, args.repeats),
                    "litert_steady_invoke_ms": median_ms(steady, args.repeats),
                    "java_decode_ms": None if args.no_java else java_decode(path, args.repeats),
                }
            )
    environment = {
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg()[0],
        "threads": 1,
        "repeats": args.repeats,
    }
    if args.json:
        print(json.dumps({"rows": rows, "environment": environment}, indent=2))
        return
    print(
        f"{'scheme':<8} {'virtual':>9} {'.hpk B':>9} {'numpy ms':>9} {'M w/s':>7} {'ORT load':>9} "
        f"{'LiteRT 1st':>10} {'steady':>7} {'Java ms':>8}"
    )
    for r in rows:
        java = "-" if r["java_decode_ms"] is None else f"{r['java_decode_ms']:.1f}"
        print(
            f"{r['scheme']:<8} {r['virtual_weights']:>9,} {r['hpk_bytes']:>9,} {r['numpy_decode_ms']:>9.1f} "
            f"{r['numpy_M_weights_per_s']:>7.1f} {r['ort_load_ms']:>9.1f} {r['litert_first_invoke_ms']:>10.1f} "
            f"{r['litert_steady_invoke_ms']:>7.2f} {java:>8}"
        )
    print(
        f"(ms, medians of {args.repeats}; 1 thread; load average {environment['load_average']:.1f} "
        f"on {environment['cpus']} CPUs)"
    )


if __name__ == "__main__":
    main()

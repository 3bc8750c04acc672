"""Decompression throughput of the Java decoder (hashpack-java) next to the numpy runtime's.

Both regenerate the same hashed layer (10M virtual weights by default, K = n/64 float32 buckets,
identical bucket values and seed) on one thread; the Java output is checked bit for bit against
numpy's (CRC-32 of the float32 bytes). Prints weights/s for each and the Java/numpy ratio.
Needs a JDK (javac/java on PATH); builds android_demo/hashpack-java first.
Usage: python benchmarks/java_decompress.py [--weights 10000000] [--buckets N] [--repeats 7] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np

from hashpack.runtime.hashing import gather_signed

ROOT = Path(__file__).resolve().parent.parent
JAVA_DIR = ROOT / "android_demo" / "hashpack-java"
SEED = 2840119437  # DecompressBenchmark.SEED


def bucket_values(count: int) -> np.ndarray:
    """The benchmark's buckets: ((j * 7919) % 2001 - 1000) / 1024, exact in float32 (as in Java)."""
    j = np.arange(count, dtype=np.int64)
    return (((j * 7919) % 2001 - 1000) / 1024).astype(np.float32)


def run_java(weights: int, buckets: int, repeats: int) -> dict[str, str]:
    if shutil.which("javac") is None or shutil.which("java") is None:
        sys.exit("java_decompress.py: javac/java not found: install a JDK >= 9")
    subprocess.run(["bash", str(JAVA_DIR / "build.sh")], check=True)
    result = subprocess.run(
        [
            "java",
            "-cp",
            str(JAVA_DIR / "build" / "classes"),
            "org.hashpack.bench.DecompressBenchmark",
            str(weights),
            str(buckets),
            str(repeats),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    fields = dict(
        line.split("=", 1) for line in result.stdout.splitlines() if "=" in line and ":" not in line
    )
    fields["summary"] = result.stdout.splitlines()[0]
    return fields


def run_numpy(weights: int, buckets: int, repeats: int) -> tuple[float, int]:
    """Median seconds of ``gather_signed`` and the CRC-32 of its output."""
    values = bucket_values(buckets)
    out = gather_signed(values, weights, SEED)  # warm-up, and the output to compare
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        gather_signed(values, weights, SEED)
        times.append(time.perf_counter() - start)
    return statistics.median(times), zlib.crc32(np.ascontiguousarray(out, dtype="<f4").tobytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=int, default=10_000_000)
    parser.add_argument("--buckets", type=int, default=None, help="K (default: weights / 64)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    buckets = args.buckets or max(1, args.weights // 64)

    java = run_java(args.weights, buckets, args.repeats)
    numpy_seconds, numpy_crc = run_numpy(args.weights, buckets, args.repeats)
    java_rate = float(java["weights_per_second"])
    numpy_rate = args.weights / numpy_seconds
    identical = int(java["crc32"]) == numpy_crc
    row = {
        "virtual_weights": args.weights,
        "buckets": buckets,
        "java_weights_per_s": java_rate,
        "numpy_weights_per_s": numpy_rate,
        "java_over_numpy": java_rate / numpy_rate,
        "bit_identical": identical,
        "java_vm": java.get("java", ""),
    }
    if args.json:
        print(json.dumps(row, indent=2))
    else:
        print(
            f"{args.weights:,} virtual weights from {buckets:,} float32 buckets, one thread, median of {args.repeats}"
        )
        print(f"  {'java (hashpack-java)':<24} {java_rate / 1e6:>8.1f} M weights/s   [{row['java_vm']}]")
        print(f"  {'numpy (gather_signed)':<24} {numpy_rate / 1e6:>8.1f} M weights/s")
        print(f"  {'java / numpy':<24} {row['java_over_numpy']:>8.2f}x")
        print(f"  outputs bit-identical: {'yes' if identical else 'NO'}")
    if not identical:
        sys.exit("java_decompress.py: the Java and numpy outputs differ")


if __name__ == "__main__":
    main()

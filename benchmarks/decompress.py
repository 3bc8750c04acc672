"""Numpy runtime decompression throughput (virtual weights/s) next to a plain numpy copy.

For 1M and 10M virtual weights hashed from K = n/64 float32 buckets: the median time of
``gather_signed`` (hash + gather + sign), and of ``np.copyto`` of the same number of output bytes,
measured in the same run. Goal: >= 100 M weights/s.
Usage: python benchmarks/decompress.py [--repeats 7] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from hashpack.runtime.hashing import gather_signed


def median_seconds(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    for size in (1_000_000, 10_000_000):
        values = np.random.default_rng(0).standard_normal(size // 64).astype(np.float32)
        source, target = np.ones(size, np.float32), np.empty(size, np.float32)
        hashed = median_seconds(lambda: gather_signed(values, size, 12345), args.repeats)  # noqa: B023
        copied = median_seconds(lambda: np.copyto(target, source), args.repeats)  # noqa: B023
        rows.append(
            {
                "virtual_weights": size,
                "buckets": values.size,
                "decompress_s": hashed,
                "copy_s": copied,
                "weights_per_s": size / hashed,
                "copy_weights_per_s": size / copied,
                "slowdown_vs_copy": hashed / copied,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(
        f"{'weights':>12} {'decompress':>12} {'M weights/s':>12} {'copy':>10} {'M/s copy':>10} {'decompress/copy':>16}"
    )
    for r in rows:
        print(
            f"{r['virtual_weights']:>12,} {r['decompress_s'] * 1e3:>10.2f}ms {r['weights_per_s'] / 1e6:>12.0f} "
            f"{r['copy_s'] * 1e3:>8.2f}ms {r['copy_weights_per_s'] / 1e6:>10.0f} {r['slowdown_vs_copy']:>15.1f}x"
        )
    worst = min(r["weights_per_s"] for r in rows) / 1e6
    print(f"goal >= 100 M weights/s: {'met' if worst >= 100 else 'NOT met'} (slowest {worst:.0f} M/s)")


if __name__ == "__main__":
    main()

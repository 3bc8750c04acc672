"""Feed ONNX Runtime and LiteRT hostile .onnx/.tflite files through hashpack's isolated runner.

Why: ``hashpack validate --onnx/--tflite`` loads files the user names, and both runtimes are C++
libraries that trust parts of the file. This script mutates valid exports (structural lies that
still parse, and bit flips), loads and runs each in ``hashpack.isolation.IsolatedRunner`` and
counts how each case ended. Crashes of the runtimes are expected outcomes — they are why the
child process exists — and are counted by signal; the parent must survive every case, so any
other exception is a violation (exit 1).

    python benchmarks/fuzz_exports.py               # 200 cases per format, ~4 minutes
    python benchmarks/fuzz_exports.py --cases 1000 --json

The mutations are in tests/export_fuzz_tools.py (shared with tests/test_isolation.py).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import export_fuzz_tools as eft
import fuzz_tools as ft

SEEDS = ("mlp", "lenet5-int8", "lenet5-fresh", "lenet5-funhash", "lenet5-fsnet")
MODES = {"onnx": ("compact", "inline", "expanded"), "tflite": ("once", "inline", "expanded")}


def build_exports(directory: Path) -> dict[str, tuple[str, bytes, np.ndarray]]:
    """Every export mode of a few seed models: name -> (kind, file bytes, an input batch)."""
    from hashpack.runtime import load
    from hashpack.validation import export_model

    hpks = ft.build_seeds(directory)
    exports = {}
    for name in SEEDS:
        source = directory / f"{name}.hpk"
        source.write_bytes(hpks[name])
        x = np.zeros((1, *load(source).input_shape[1:]), np.float32)
        for kind, modes in MODES.items():
            for mode in modes:
                path = export_model(kind, mode, source, directory)
                exports[f"{name}.{mode}.{kind}"] = (kind, path.read_bytes(), x)
    return exports


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=200, help="cases per format (default 200)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the counts as one JSON document")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        exports = build_exports(Path(tmp))
    counts: dict[str, Counter[str]] = {kind: Counter() for kind in MODES}
    violations: list[str] = []
    try:
        from rich.progress import track
    except ImportError:  # rich is in the torch extra; the script also runs without it

        def track(sequence, description=""):  # type: ignore[no-untyped-def]
            return sequence

    plan = [(kind, i) for kind in MODES for i in range(args.cases)]
    for kind, _ in track(plan, description="hostile exports", transient=True):
        name = rng.choice(sorted(n for n, (k, _, _) in exports.items() if k == kind))
        _, blob, x = exports[name]
        label, mutated = eft.MUTATORS[kind](blob, rng, rng.choice([1, 1, 2, 3]))
        try:
            counts[kind][eft.outcome(kind, mutated, x)] += 1
        except Exception:
            counts[kind]["VIOLATION"] += 1
            violations.append(f"{name}: {label}\n{traceback.format_exc(limit=3)}")
    seconds = time.perf_counter() - started
    if args.json:
        print(json.dumps({"cases": {k: dict(c) for k, c in counts.items()}, "violations": violations,
                          "seconds": round(seconds, 1)}, indent=2))  # fmt: skip
    else:
        print(f"seed exports: {len(exports)} ({', '.join(SEEDS)} x every mode); {seconds:.0f} s")
        for kind, counter in counts.items():
            total = sum(counter.values())
            print(f"{kind}: {total} cases")
            for what, n in counter.most_common():
                print(f"  {n:6d}  {what}")
        print(f"violations (the parent process failed): {len(violations)}")
        for text in violations[:5]:
            print(text)
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())

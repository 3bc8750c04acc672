"""A hashed 30000×128 embedding table in LiteRT: hash only the looked-up rows, or decode the table.

Model: hashpack.models.EmbeddingMeanHead(30000, 128) (Embedding + mean over the 16 tokens +
Linear(128, 1)), every layer hashed at 1/8 (seed 0), packed; inputs: batch 32 × 16 int32 ids.
Variants of the exported .tflite:

- ``once rows``: the default for a large hashed table (tx_ops.ROW_GATHER_MIN_ELEMENTS) — each
  invoke hashes the 32·16·128 flat indices id·D + j it reads and GATHERs them from the buckets;
- ``once table``: the whole table decoded by the CALL_ONCE init subgraph on the first invoke into
  a resource variable, then a plain GATHER (forced by raising the threshold);
- ``inline rows``: as ``once rows`` (no init subgraph at all);
- ``expanded``: the dense table stored in the file (the reference size).

Then the same for the text classifier hashpack.models.TextClassifier(30000, 128) (the table +
a 2-layer TransformerEncoder + mean + Linear), all hashed 1/8: once, inline, expanded and
materialized (a ``--materializable`` once file with its weights made constant by ``materialize``).

Reports the file size, the first invoke (interpreter creation + allocation + invoke), the steady
latency (median of 200 invokes) and the peak RSS growth over the run (Linux VmHWM, reset just
before creating the interpreter, minus VmRSS then), single-threaded, default delegates (XNNPACK), each
variant in a fresh child process. Usage: OMP_NUM_THREADS=1 python benchmarks/embedding_tflite.py [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import hashpack
from hashpack.exporter.tflite import build_tflite, tx_ops
from hashpack.exporter.tflite.materialize import materialize
from hashpack.exporter.tflite.runner import make_interpreter
from hashpack.models import EmbeddingMeanHead, TextClassifier
from hashpack.runtime import load

VOCAB, DIM, LENGTH, BATCH, STEADY = 30000, 128, 16, 32, 200


def _status_kib(field: str) -> int:
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(field + ":"))
    return int(line.split()[1])


def _child(model_path: str, ids_path: str) -> None:
    """Measure one .tflite in this (fresh) process; prints JSON."""
    data, ids = Path(model_path).read_bytes(), np.load(ids_path)
    Path("/proc/self/clear_refs").write_text("5")  # resets the peak RSS (VmHWM) to the current RSS
    before = _status_kib("VmRSS")
    start = time.perf_counter()
    interpreter = make_interpreter(data, num_threads=1)
    runner = interpreter.get_signature_runner("serving_default")
    (name,) = runner.get_input_details()
    out = next(iter(runner(**{name: ids}).values()))
    first = time.perf_counter() - start
    times = []
    for _ in range(STEADY):
        t = time.perf_counter()
        runner(**{name: ids})
        times.append(time.perf_counter() - t)
    peak = _status_kib("VmHWM") - before
    np.save(ids_path + ".out.npy", out)
    result = {
        "bytes": len(data),
        "first_invoke_ms": round(first * 1e3, 2),
        "steady_ms": round(statistics.median(times) * 1e3, 3),
        "peak_rss_growth_mib": round(peak / 1024, 1),
    }
    print(json.dumps(result))


def _measure(tmp: Path, name: str, data: bytes, ids: np.ndarray, want: np.ndarray) -> dict:
    model_path, ids_path = tmp / f"{name.replace(' ', '_')}.tflite", tmp / "ids.npy"
    model_path.write_bytes(data)
    np.save(ids_path, ids)
    command = [sys.executable, __file__, "--child", str(model_path), str(ids_path)]
    result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    out = np.load(str(ids_path) + ".out.npy")
    result["max_abs_error_vs_numpy"] = float(np.abs(out - want).max())
    return result


def _model_results(tmp: Path, label: str, model: torch.nn.Module, ids: np.ndarray, table_too: bool) -> dict:
    """Pack ``model`` (hashed 1/8) and measure its exports; ``table_too``: also the decoded table."""
    hashpack.compress(model, "hashed", compression=1 / 8, seed=0)
    model.eval()
    path = tmp / f"{label}.hpk"
    hashpack.pack(model, torch.from_numpy(ids[:2]).long(), path)
    want = load(path).run(ids)
    files = {
        "once rows": build_tflite(path, "once").data,
        "inline rows": build_tflite(path, "inline").data,
        "expanded": build_tflite(path, "expanded").data,
    }
    if table_too:
        threshold = tx_ops.ROW_GATHER_MIN_ELEMENTS
        tx_ops.ROW_GATHER_MIN_ELEMENTS = 1 << 62
        try:
            files["once table"] = build_tflite(path, "once").data
        finally:
            tx_ops.ROW_GATHER_MIN_ELEMENTS = threshold
    else:
        files["materialized"] = materialize(build_tflite(path, "once", materializable=True).data)
    return {
        "model": f"{label} hashed 1/8, .hpk {path.stat().st_size} bytes",
        "batch": [BATCH, LENGTH],
        "variants": {name: _measure(tmp, name, data, ids, want) for name, data in files.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    ids = np.random.default_rng(0).integers(0, VOCAB, (BATCH, LENGTH)).astype(np.int32)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        head = EmbeddingMeanHead(VOCAB, DIM)
        results.append(_model_results(Path(tmp), f"EmbeddingMeanHead({VOCAB}, {DIM})", head, ids, True))
        torch.manual_seed(0)
        text = TextClassifier(VOCAB, DIM)
        results.append(_model_results(Path(tmp), f"TextClassifier({VOCAB}, {DIM})", text, ids, False))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for block in results:
        print(block["model"], f"batch {BATCH}×{LENGTH}")
        print(
            f"{'variant':<12} {'bytes':>10} {'first invoke ms':>16} {'steady ms':>10} {'RSS MiB':>8} {'max err':>9}"
        )
        for name, r in block["variants"].items():
            print(
                f"{name:<12} {r['bytes']:>10} {r['first_invoke_ms']:>16} {r['steady_ms']:>10} "
                f"{r['peak_rss_growth_mib']:>8} {r['max_abs_error_vs_numpy']:>9.2g}"
            )


if __name__ == "__main__":
    main()

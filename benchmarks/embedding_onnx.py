"""ONNX cost of a hashed embedding table: looked-up rows vs the whole table (docs/ONNX.md).

A [30000, 128] ``hashed`` table (1/8: 480000 float32 buckets) behind one Embedding node, input
int32 ids [N, 16]. Exported five ways: compact and inline with only the looked-up rows
decompressed in the graph (the default: hp32 of id·D + j for the batch's ids), compact and
inline with the whole table decompressed (``embedding_rows=False``; ORT folds it into a dense
table at session creation), and expanded (dense initializer); plus compact rows without the
de-duplication of the batch's ids (``transformer.UNIQUE_IDS = False``). Latency is measured on
uniform random ids (all ~distinct) and on Zipf(1.3) ids (like text: few distinct tokens). For each: file bytes,
session creation time, and the median latency of a batch of 32 sequences × 16 tokens, on one ORT
thread, and the peak RSS of a process that does only that variant (each runs in a subprocess);
every output is checked bit for bit against the numpy runtime.
Usage: OMP_NUM_THREADS=1 python benchmarks/embedding_onnx.py [--runs 50] [--json]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort

from hashpack.exporter.onnx import build_onnx, serialize_onnx, transformer
from hashpack.runtime import HpkFile, Model, Node, Param, Space, ValueInfo

VOCAB, DIM, TOKENS, BATCH, RATIO = 30000, 128, 16, 32, 8


def table_hpk() -> HpkFile:
    size = VOCAB * DIM // RATIO
    buckets = np.random.default_rng(0).normal(0, 0.1, size).astype(np.float32)
    return HpkFile(
        inputs=[ValueInfo("ids", (None, TOKENS), "int32")],
        outputs=[ValueInfo("emb", (None, TOKENS, DIM))],
        spaces={"table": Space("table", size, "float32", "spaces/table")},
        params={"table": Param("table", "hashed", (VOCAB, DIM), {"space": "table", "seed": 1234})},
        nodes=[Node("Embedding", "embed", ("ids",), ("emb",), {"weight": "table"}, {})],
        tensors={"spaces/table": buckets},
    )


def measure(data: bytes, ids: np.ndarray, runs: int) -> tuple[float, float, np.ndarray]:
    """(session creation s, median batch latency s, output)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    start = time.perf_counter()
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    created = time.perf_counter() - start
    output = session.run(None, {"ids": ids})[0]
    for _ in range(3):
        session.run(None, {"ids": ids})
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, {"ids": ids})
        times.append(time.perf_counter() - start)
    return created, statistics.median(times), output


VARIANTS = [  # (label, mode, embedding_rows, unique ids)
    ("compact, looked-up rows", "compact", True, True),
    ("compact, looked-up rows, no dedupe", "compact", True, False),
    ("compact, whole table", "compact", False, True),
    ("inline, looked-up rows", "inline", True, True),
    ("inline, whole table", "inline", False, True),
    ("expanded (dense)", "expanded", True, True),
]


def batches() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    uniform = rng.integers(0, VOCAB, (BATCH, TOKENS))
    zipf = np.minimum(rng.zipf(1.3, (BATCH, TOKENS)) - 1, VOCAB - 1)
    return {"uniform": uniform.astype(np.int32), "zipf": zipf.astype(np.int32)}


def run_variant(index: int, runs: int) -> dict:
    """One variant, measured in this process (its peak RSS is the variant's)."""
    label, mode, embedding_rows, unique = VARIANTS[index]
    transformer.UNIQUE_IDS = unique
    hpk = table_hpk()
    ids = batches()
    expected = {kind: Model(hpk).run(batch) for kind, batch in ids.items()}
    data = serialize_onnx(build_onnx(hpk, mode, embedding_rows=embedding_rows))
    del hpk
    row: dict = {"variant": label, "file_bytes": len(data)}
    for kind, batch in ids.items():
        created, latency, output = measure(data, batch, runs)
        if not np.array_equal(output, expected[kind]):
            raise SystemExit(f"{label}: output differs from the numpy runtime ({kind} ids)")
        row.setdefault("session_s", round(created, 4))
        row[f"{kind}_batch_ms"] = round(latency * 1e3, 3)
        row[f"{kind}_distinct_ids"] = len(np.unique(batch))
    row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--variant", type=int, help=argparse.SUPPRESS)  # internal: one variant, JSON out
    args = parser.parse_args()
    if args.variant is not None:
        print(json.dumps(run_variant(args.variant, args.runs)))
        return
    rows = []
    for index in range(len(VARIANTS)):
        command = [sys.executable, __file__, "--variant", str(index), "--runs", str(args.runs)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"{VARIANTS[index][0]}: {done.stderr.strip() or done.stdout.strip()}")
        rows.append(json.loads(done.stdout))
    if args.json:
        print(json.dumps({"table": [VOCAB, DIM], "ratio": RATIO, "batch": [BATCH, TOKENS], "rows": rows}))
        return
    print(
        f"hashed table [{VOCAB}, {DIM}] at 1/{RATIO}, batch {BATCH}×{TOKENS} int32 ids, 1 ORT thread, ort {ort.__version__}"
    )
    distinct = f"{rows[0]['uniform_distinct_ids']} / {rows[0]['zipf_distinct_ids']}"
    print(
        f"| variant | file bytes | session creation | batch latency, uniform / Zipf ids ({distinct} distinct) | peak RSS |"
    )
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['variant']} | {row['file_bytes']:,} | {row['session_s'] * 1e3:.0f} ms "
            f"| {row['uniform_batch_ms']:.3f} / {row['zipf_batch_ms']:.3f} ms | {row['peak_rss_mb']} MB |"
        )
    print("(every output equals the numpy runtime's bit for bit)")


if __name__ == "__main__":
    main()

"""Dense vs hashed embedding tables in the text classifier, on a SYNTHETIC task (issue 15, item 4).

No labeled text corpus ships offline with the packages this project may install, so the task is
hashpack.data.token_presence (synthetic: is one of 49 trigger tokens among 16 ids drawn from a
30,000-token vocabulary? chance = 50%). Model: hashpack.models.TextClassifier(30000, 128) =
Embedding(30000, 128) + TransformerEncoder(2 layers, 4 heads, feed-forward 256, batch_first) +
mean pooling + Linear(128, 2); 3.84 M of its 4.25 M weights are the table.

Rows: the dense model; the embedding table alone hashed (HashedEmbedding, bucket means from the
dense init) at 1/8, 1/32, 1/128 with the rest dense; and every layer hashed at 1/8. Each row is
trained from the same seed with Adam (lr 3e-3, batch 32) and reports the held-out error on 2,000
fresh sequences and the .hpk file size (float32 buckets). Then the numpy decode of the table: the
whole table (what hashpack.runtime does once at load) vs only the rows one batch of 32×16 ids
reads (hash the indices id·D + j), the lookup a backend can do instead of materializing the table.

Usage: python benchmarks/embeddings.py [--quick] [--json]   (--quick: 60 steps, for CI smoke runs)
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import hashpack
from hashpack.data import token_presence
from hashpack.models import TextClassifier
from hashpack.runtime import load
from hashpack.runtime.hashing import SIGN_BIT, hash_indices

VOCAB, DIM, LENGTH, BATCH = 30000, 128, 16, 32


def train(model: nn.Module, steps: int) -> float:
    """Held-out error rate after ``steps`` Adam steps on the token-presence task."""
    ids, labels = (
        torch.from_numpy(a) for a in token_presence(steps * BATCH, vocab=VOCAB, length=LENGTH, seed=0)
    )
    test_ids, test_labels = (
        torch.from_numpy(a) for a in token_presence(2000, vocab=VOCAB, length=LENGTH, seed=1)
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for step in range(steps):
        rows = slice(step * BATCH, (step + 1) * BATCH)
        optimizer.zero_grad()
        F.cross_entropy(model(ids[rows]), labels[rows]).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        return float((model(test_ids).argmax(1) != test_labels).float().mean())


def build(variant: str, ratio: float | None) -> nn.Module:
    torch.manual_seed(0)
    model = TextClassifier(VOCAB, DIM, dropout=0.0)
    if variant == "embedding":
        hashpack.compress(model, compression=ratio, filter_fn=lambda m, path: isinstance(m, nn.Embedding))
    elif variant == "all":
        hashpack.compress(model, compression=ratio)
    return model


def median_ms(fn, repeats: int = 5) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def decode_costs(path: Path) -> dict:
    """numpy: the whole [V, D] table vs the rows of one batch (both from the same buckets and seed)."""
    model = load(path)
    node = next(n for n in model.hpk.nodes if n.op == "Embedding")
    param = model.hpk.params[node.params["weight"]]
    values = model.hpk.space_values(param.spec["space"])
    seed, buckets = param.spec["seed"], values.shape[0]
    from hashpack.runtime.schemes import decode_param

    whole = median_ms(lambda: decode_param(model.hpk, param.name))
    ids = np.random.default_rng(0).integers(0, VOCAB, size=(BATCH, LENGTH))

    def rows() -> np.ndarray:
        entries = (ids[..., None].astype(np.int64) * DIM + np.arange(DIM)).reshape(-1)
        h = hash_indices(entries, seed)
        out = values[h % buckets]
        return np.where(h & np.uint32(SIGN_BIT), -out, out).reshape(BATCH, LENGTH, DIM)

    table = decode_param(model.hpk, param.name)
    assert np.array_equal(rows(), table[ids]), "row lookup must equal the whole-table decode"
    return {
        "table_elements": int(param.numel),
        "whole_table_ms": round(whole, 2),
        "batch_rows_ms": round(median_ms(rows), 3),
        "batch_rows_elements": BATCH * LENGTH * DIM,
        "buckets": int(buckets),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="60 training steps instead of 300")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    steps = 60 if args.quick else 300
    rows = []
    example = torch.from_numpy(token_presence(8, vocab=VOCAB, length=LENGTH, seed=2)[0])
    with tempfile.TemporaryDirectory() as scratch:
        for variant, ratio in [
            ("dense", None),
            ("embedding", 1 / 8),
            ("embedding", 1 / 32),
            ("embedding", 1 / 128),
            ("all", 1 / 8),
        ]:
            model = build(variant, ratio)
            start = time.perf_counter()
            error = train(model, steps)
            seconds = time.perf_counter() - start
            path = Path(scratch) / f"{variant}-{ratio}.hpk"
            hashpack.pack(model, example, path)
            row = {
                "model": "TextClassifier(30000, 128)",
                "compressed": {"dense": "nothing", "embedding": "embedding table", "all": "every layer"}[
                    variant
                ],
                "ratio": "1" if ratio is None else f"1/{round(1 / ratio)}",
                "steps": steps,
                "test_error": round(error, 4),
                "hpk_bytes": path.stat().st_size,
                "train_seconds": round(seconds, 1),
            }
            if variant != "dense":
                row["decode"] = decode_costs(path)
            rows.append(row)
            if not args.json:
                print(row, flush=True)
    if args.json:
        print(
            json.dumps(
                {"task": "synthetic token presence (hashpack.data.token_presence)", "rows": rows}, indent=1
            )
        )


if __name__ == "__main__":
    main()

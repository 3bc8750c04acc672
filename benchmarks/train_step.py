"""One training step (forward + backward + Adam) of LeNet-300-100: hashed layers vs nn.Linear.

Prints the median step time of each, measured in the same run, and the ratio (goal: ≤ 1.5×); also
FunHashNN (default U = 4, hidden 8) and FSNet with filter summaries on the Linear layers (``--fc fs``;
FSNet's default would be HashedNets on an MLP), interleaved with the others so load hits all alike.
Usage: python benchmarks/train_step.py [--steps 200] [--batch 128] [--compression 1/8] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from fractions import Fraction

import torch
from torch import nn

import hashpack
from hashpack.models import mlp
from hashpack.nn import layers


def median_step_ms(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, warmup: int = 20) -> float:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    times = []
    for step in range(warmup + steps):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimizer.step()
        if step >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--compression", default="1/8")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    compression = float(Fraction(args.compression))
    torch.manual_seed(0)
    x, y = torch.randn(args.batch, 1, 28, 28), torch.randint(0, 10, (args.batch,))
    dense = mlp((1, 28, 28), 10)
    hashed = hashpack.compress(mlp((1, 28, 28), 10), compression=compression, from_dense=False)
    others = {
        "funhash": hashpack.compress(
            mlp((1, 28, 28), 10), "funhash", compression=compression, from_dense=False
        ),
        "fsnet_fc_fs": hashpack.compress(
            mlp((1, 28, 28), 10), "fsnet", compression=compression, from_dense=False, fc="fs"
        ),
    }
    other_ms: dict[str, list[float]] = {name: [] for name in others}
    # Interleave them so machine noise hits all alike.
    dense_ms, hashed_ms, naive_ms = [], [], []
    fast_gather = layers.signed_gather
    for _ in range(3):
        dense_ms.append(median_step_ms(dense, x, y, args.steps // 3))
        hashed_ms.append(median_step_ms(hashed, x, y, args.steps // 3))
        # The naive baseline: plain indexing, autograd's generic scatter in backward.
        layers.signed_gather = lambda space, index, sign: space[index] * sign
        naive_ms.append(median_step_ms(hashed, x, y, args.steps // 3))
        layers.signed_gather = fast_gather
        for name, model in others.items():
            other_ms[name].append(median_step_ms(model, x, y, args.steps // 3))
    result = {
        "batch": args.batch,
        "compression": args.compression,
        "threads": torch.get_num_threads(),
        "dense_ms": statistics.median(dense_ms),
        "hashed_ms": statistics.median(hashed_ms),
        "naive_hashed_ms": statistics.median(naive_ms),
        **{f"{name}_ms": statistics.median(times) for name, times in other_ms.items()},
    }
    result["ratio"] = result["hashed_ms"] / result["dense_ms"]
    result["naive_ratio"] = result["naive_hashed_ms"] / result["dense_ms"]
    result["funhash_over_hashed"] = result["funhash_ms"] / result["hashed_ms"]
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"LeNet-300-100 training step, batch {args.batch}, {result['threads']} threads, median of {args.steps} steps"
    )
    print(f"  nn.Linear      {result['dense_ms']:8.3f} ms")
    print(f"  HashedLinear   {result['hashed_ms']:8.3f} ms   (compression {args.compression})")
    print(f"  naive gather   {result['naive_hashed_ms']:8.3f} ms   (space[index] * sign, autograd scatter)")
    print(f"  FunHashLinear  {result['funhash_ms']:8.3f} ms   ({result['funhash_over_hashed']:.2f}x hashed)")
    print(f"  FSLinear       {result['fsnet_fc_fs_ms']:8.3f} ms")
    print(
        f"  ratio hashed/dense = {result['ratio']:.2f}x   (goal <= 1.5x); naive/dense = {result['naive_ratio']:.2f}x"
    )


if __name__ == "__main__":
    main()

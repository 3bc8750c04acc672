"""HashedNets with the bias in the layer's hashed space (hashpack's choice) vs a separate dense bias.

hashpack hashes a layer's weight *and* bias into one space of round(c·(weights + biases)) buckets;
the HashedNets authors' code keeps the bias as a separate, unhashed vector. At an equal stored
budget, "separate" gives the biases their own exact values and the weights that many fewer
buckets. This trains LeNet-300-100 (mlp) both ways on a Fashion-MNIST subset and prints the test
error of each (mean ± std over seeds), with the stored value counts (equal by construction).

Usage: OMP_NUM_THREADS=1 python benchmarks/bias_space.py [--train 6000] [--test 2000] [--epochs 3] [--seeds 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch import nn

from hashpack.data import Dataset, load_dataset
from hashpack.models import mlp
from hashpack.nn.layers import HashedLinear
from hashpack.train import evaluate, train


class SeparateBias(nn.Module):
    """A hashed weight (no bias in the space) plus a dense, unhashed bias: the authors' layout."""

    def __init__(self, layer: nn.Linear, buckets: int, seed: int) -> None:
        super().__init__()
        self.hashed = HashedLinear(
            layer.in_features, layer.out_features, bias=False, num_buckets=buckets, seed=seed
        )
        bound = 1 / layer.in_features**0.5
        self.bias = nn.Parameter(torch.empty(layer.out_features).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.hashed(x) + self.bias


def build(variant: str, data: Dataset, compression: float, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = mlp(data.input_shape, data.num_classes)
    for index, layer in enumerate(model):
        if not isinstance(layer, nn.Linear):
            continue
        total = max(1, round(compression * (layer.weight.numel() + layer.out_features)))
        if variant == "shared":
            model[index] = HashedLinear(
                layer.in_features, layer.out_features, num_buckets=total, seed=seed * 101 + index
            )
        else:  # the same stored values: the bias takes out_features of them
            model[index] = SeparateBias(layer, max(1, total - layer.out_features), seed * 101 + index)
    return model


def stored(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=6000)
    parser.add_argument("--test", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    full = load_dataset("fashion", seed=0)
    data = Dataset(
        full.name,
        full.x_train[: args.train],
        full.y_train[: args.train],
        full.x_test[: args.test],
        full.y_test[: args.test],
    )
    rows = []
    started = time.perf_counter()
    for compression in (1 / 8, 1 / 64):
        for variant in ("shared", "separate"):
            errors, values = [], 0
            for seed in range(args.seeds):
                model = build(variant, data, compression, seed)
                values = stored(model)
                train(model, data, epochs=args.epochs, batch_size=128, lr=1e-3, seed=seed)
                errors.append(1 - evaluate(model, data.x_test, data.y_test))
            rows.append(
                {
                    "compression": compression,
                    "bias": variant,
                    "stored_values": values,
                    "error_mean": statistics.mean(errors),
                    "error_std": statistics.stdev(errors) if len(errors) > 1 else 0.0,
                    "errors": errors,
                }
            )
    settings = {**vars(args), "minutes": (time.perf_counter() - started) / 60}
    if args.json:
        print(json.dumps({"rows": rows, "settings": settings}, indent=2))
        return
    print(f"{'compression':>11} {'bias':>9} {'stored':>7} {'test error %':>14}")
    for r in rows:
        print(
            f"{'1/' + str(round(1 / r['compression'])):>11} {r['bias']:>9} {r['stored_values']:>7,} "
            f"{100 * r['error_mean']:>7.2f} ± {100 * r['error_std']:.2f}"
        )
    print(
        f"(LeNet-300-100, Fashion-MNIST {args.train}/{args.test} subset, {args.epochs} epochs, "
        f"{args.seeds} seeds, Adam 1e-3, batch 128; {settings['minutes']:.1f} min)"
    )


if __name__ == "__main__":
    main()

"""Which distillation settings to use when fine-tuning a compressed LeNet-5 (Fashion-MNIST).

One dense LeNet-5 teacher (15 epochs, AdamW lr 3e-3, weight decay 5e-4, cosine schedule, batch 128,
seed 0) on all 60k/10k images; then ``compress_pretrained`` with ``hashed`` at the given ratios and
fine-tuning from the dense weights, plain cross-entropy vs distillation at several (T, α), each for
the same epochs and seed. Prints one line per run (test error %, seconds); about 12 min on 2 quiet
cores (7 s per LeNet-5 epoch), several times that on a loaded machine.

Why: the quick mode of benchmarks/finetune.py had distillation (T = 4, α = 0.9) worse than plain
fine-tuning, but from an undertrained teacher; this asks the same question with a trained one
before the full run spends its hour. Results: benchmarks/DISTILL_SETTINGS.md.
Usage: python benchmarks/distill_settings.py [--epochs 8] [--ratios 1/16,1/64] [--threads 2]
"""

from __future__ import annotations

import argparse
import copy
import time
from fractions import Fraction

import torch

import hashpack
from hashpack.data import load_dataset
from hashpack.finetuning import frozen_copy
from hashpack.models import LeNet5
from hashpack.train import evaluate, train

SETTINGS = {  # name -> distillation (T, α); None = plain cross-entropy
    "plain": None,
    "T=4, α=0.9": (4.0, 0.9),
    "T=4, α=0.5": (4.0, 0.5),
    "T=2, α=0.5": (2.0, 0.5),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8, help="fine-tuning epochs per run")
    parser.add_argument("--ratios", default="1/16,1/64")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset("fashion")
    common = {"batch_size": 128, "lr": 3e-3, "weight_decay": 5e-4, "schedule": "cosine"}

    def error(model: torch.nn.Module) -> float:
        return 100 * (1 - evaluate(model, data.x_test, data.y_test))

    torch.manual_seed(0)
    dense = LeNet5(data.input_shape, data.num_classes)
    started = time.perf_counter()
    train(dense, data, epochs=15, seed=0, **common)
    print(f"teacher: {error(dense):.2f} % ({time.perf_counter() - started:.0f} s)", flush=True)
    teacher = frozen_copy(dense)
    for ratio_text in args.ratios.split(","):
        ratio = float(Fraction(ratio_text))
        for name, setting in SETTINGS.items():
            started = time.perf_counter()
            model = hashpack.compress_pretrained(copy.deepcopy(dense), "hashed", ratio, seed=0)
            kd = (
                {}
                if setting is None
                else {"teacher": teacher, "temperature": setting[0], "alpha": setting[1]}
            )
            hashpack.finetune(model, data, epochs=args.epochs, seed=0, recalibrate=False, **common, **kd)
            print(
                f"hashed {ratio_text} {name}: {error(model):.2f} % ({time.perf_counter() - started:.0f} s)",
                flush=True,
            )


if __name__ == "__main__":
    main()

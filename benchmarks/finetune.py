"""How much accuracy compress-then-fine-tune wins back, on Fashion-MNIST.

For LeNet-5 and ResNet-20: train a dense teacher (AdamW, cosine schedule), then compress it at each
ratio from its dense weights (``compress_pretrained``: bucket means rescaled to each layer's dense
RMS; BatchNorm recalibrated) and fine-tune it four ways: plain cross-entropy, and distillation
from the teacher, each with the uniform ratio and with the ``power`` per-layer budget (stored
values ∝ √layer size, same total). A
from-scratch row (same method and ratio, trained as long as the teacher) is the reference the
workflow must beat. Each row: test error (mean ± std over seeds), .hpk and int8 .hpk bytes, time.

Writes benchmarks/FINETUNE.md and benchmarks/finetune.png (``--out`` names another file; ``--quick``
says so in it).
Usage: python benchmarks/finetune.py [--quick] [--seeds N] [--archs lenet5|resnet20] [--threads 2]
                                     [--temperature 4 --alpha 0.9] [--out FINETUNE.md]
  --quick: LeNet-5 on 4,000 / 1,000 images, 2 seeds, short runs, hashed only (~3 min on 2 cores)
  full:    LeNet-5 on all 60k / 10k images: teacher 15 epochs; hashed and fresh at 1/8, 1/16, 1/64;
           scratch 15 epochs, plain / plain+power / distill 6 epochs each; one seed
           (``--seeds 2`` for two): 35 min on one thread of a shared 2-core machine
  --archs resnet20 --out FINETUNE_resnet20.md: ResNet-20 on 12,000 training / 5,000 test images,
           teacher 6 epochs, fine-tuning 2, hashed, one seed (its own budget)
The distillation settings come from benchmarks/distill_settings.py (DISTILL_SETTINGS.md).
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

import hashpack
from hashpack.data import Dataset, load_dataset
from hashpack.finetuning import frozen_copy
from hashpack.models import LeNet5, ResNet20
from hashpack.nn.quantize import quantize
from hashpack.nn.ratios import allocate_budget
from hashpack.packer import pack
from hashpack.train import evaluate, train

HERE = Path(__file__).resolve().parent
ARCHS = {"lenet5": LeNet5, "resnet20": ResNet20}
RATIOS = {"1/8": 1 / 8, "1/16": 1 / 16, "1/64": 1 / 64}
VARIANTS = ("scratch", "plain", "plain+power", "distill")  # run() also knows "distill+power"
GOALS = {"1/16": 1.0, "1/64": 3.0}  # distillation within this many points of the teacher


@dataclass(frozen=True)
class Plan:
    """What one architecture's runs use (per architecture: ResNet-20 costs ~100x LeNet-5 per image)."""

    train_samples: int | None  # None: all 60,000
    test_samples: int | None  # None: all 10,000
    teacher_epochs: int
    finetune_epochs: int
    methods: tuple[str, ...]
    seeds: tuple[int, ...]  # the first method's seeds
    other_seeds: tuple[int, ...] = (0,)  # the other methods' (the compute budget)
    variants: tuple[str, ...] = VARIANTS
    lr: float = 3e-3
    weight_decay: float = 5e-4
    batch_size: int = 128
    temperature: float = 4.0
    alpha: float = 0.9

    def method_seeds(self, method: str) -> tuple[int, ...]:
        return self.seeds if method == self.methods[0] else self.other_seeds


def plans(args: argparse.Namespace) -> dict[str, Plan]:
    kd = {"temperature": args.temperature, "alpha": args.alpha}
    if args.quick:
        return {
            "lenet5": Plan(4000, 1000, 5, 3, ("hashed",), tuple(range(args.seeds or 2)), **kd),
            "resnet20": Plan(1000, 500, 2, 1, ("hashed",), (0,), **kd),
        }
    return {
        "lenet5": Plan(None, None, 15, 6, ("hashed", "fresh"), tuple(range(args.seeds or 1)), **kd),
        "resnet20": Plan(12000, 5000, 6, 2, ("hashed",), (0,), **kd),
    }


@dataclass
class Row:
    arch: str
    method: str
    ratio: str
    variant: str
    errors: list[float] = field(default_factory=list)
    int8_errors: list[float] = field(default_factory=list)
    hpk_bytes: int = 0
    int8_bytes: int = 0
    seconds: list[float] = field(default_factory=list)
    initial_errors: list[float] = field(default_factory=list)

    @staticmethod
    def _stat(values: list[float]) -> str:
        if not values:
            return "–"
        if len(values) == 1:
            return f"{values[0]:.2f}"
        return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"

    def cells(self) -> list[str]:
        return [
            self.arch, self.method, self.ratio, self.variant, self._stat(self.errors),
            self._stat(self.int8_errors), self._stat(self.initial_errors), f"{self.hpk_bytes:,}",
            f"{self.int8_bytes:,}" if self.int8_bytes else "–", f"{statistics.mean(self.seconds):.0f}" if self.seconds else "–",
        ]  # fmt: skip


def subsample(data: Dataset, train_samples: int | None, test_samples: int | None, seed: int = 0) -> Dataset:
    if train_samples is None:
        return data
    rng = np.random.default_rng(seed)
    tr = np.sort(rng.permutation(len(data.x_train))[:train_samples])
    te = np.sort(rng.permutation(len(data.x_test))[:test_samples])
    return Dataset(data.name, data.x_train[tr], data.y_train[tr], data.x_test[te], data.y_test[te])


def error(model: nn.Module, data: Dataset) -> float:
    return 100.0 * (1.0 - evaluate(model, data.x_test, data.y_test))


def sizes(model: nn.Module, data: Dataset, workdir: Path) -> tuple[int, int, float]:
    """(.hpk bytes, int8 .hpk bytes, int8 test error %) of ``model`` (left unchanged)."""
    example = torch.from_numpy(data.x_test[:1])
    path = workdir / "m.hpk"
    pack(model, example, path, golden=0)
    fp32 = path.stat().st_size
    int8 = copy.deepcopy(model)
    quantize(int8, "int8")
    pack(int8, example, path, golden=0)
    return fp32, path.stat().st_size, error(int8, data)


def run(args: argparse.Namespace) -> tuple[list[Row], dict[str, list[float]], dict[str, Plan]]:
    chosen = {arch: plan for arch, plan in plans(args).items() if arch in args.archs.split(",")}
    full = load_dataset("fashion")
    rows: dict[tuple[str, str, str, str], Row] = {}
    teachers: dict[str, list[float]] = {}
    workdir = Path(tempfile.mkdtemp(prefix="finetune-bench-"))
    for arch, p in chosen.items():
        data = subsample(full, p.train_samples, p.test_samples)
        common = {
            "batch_size": p.batch_size,
            "lr": p.lr,
            "weight_decay": p.weight_decay,
            "schedule": "cosine",
        }
        teacher_epochs, ft_epochs = p.teacher_epochs, p.finetune_epochs
        for seed in p.seeds:
            torch.manual_seed(seed)
            dense = ARCHS[arch](data.input_shape, data.num_classes)
            started = time.perf_counter()
            train(dense, data, epochs=teacher_epochs, seed=seed, **common)
            teachers.setdefault(arch, []).append(error(dense, data))
            dense_row = rows.setdefault((arch, "dense", "1", "teacher"), Row(arch, "dense", "1", "teacher"))
            dense_row.errors.append(teachers[arch][-1])
            dense_row.seconds.append(time.perf_counter() - started)
            dense_row.hpk_bytes = sizes(dense, data, workdir)[0]  # int8 applies to buckets: none here
            log(f"{arch} seed {seed}: teacher {teacher_epochs} epochs, error {teachers[arch][-1]:.2f} %")
            teacher = frozen_copy(dense)
            for method in (m for m in p.methods if seed in p.method_seeds(m)):
                for ratio_name, ratio in RATIOS.items():
                    for variant in p.variants:
                        key = (arch, method, ratio_name, variant)
                        row = rows.setdefault(key, Row(*key))
                        started = time.perf_counter()
                        if variant == "scratch":
                            torch.manual_seed(seed)
                            model = ARCHS[arch](data.input_shape, data.num_classes)
                            hashpack.compress(model, method, ratio, seed=seed, from_dense=False)
                            train(model, data, epochs=teacher_epochs, seed=seed, **common)
                        else:
                            budget = allocate_budget(dense, ratio) if variant.endswith("power") else ratio
                            model = hashpack.compress_pretrained(
                                copy.deepcopy(dense), method, budget, seed=seed
                            )
                            hashpack.recalibrate_batchnorm(model, data.x_train[:2048])
                            row.initial_errors.append(error(model, data))
                            hashpack.finetune(
                                model, data, teacher=teacher if variant.startswith("distill") else None,
                                epochs=ft_epochs, seed=seed, recalibrate=False, temperature=p.temperature,
                                alpha=p.alpha, **common,
                            )  # fmt: skip
                        row.seconds.append(time.perf_counter() - started)
                        row.errors.append(error(model, data))
                        row.hpk_bytes, row.int8_bytes, int8_error = sizes(model, data, workdir)
                        row.int8_errors.append(int8_error)
                        log(f"  {arch} {method} {ratio_name} {variant}: error {row.errors[-1]:.2f} %")
    return list(rows.values()), teachers, chosen


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def best_variants(rows: list[Row]) -> list[str]:
    """For each architecture, method and ratio: the variants from best to worst (mean error)."""
    lines = []
    order = list(RATIOS)
    groups = sorted(
        {(r.arch, r.method, r.ratio) for r in rows if r.variant != "teacher"},
        key=lambda group: (group[0], group[1], order.index(group[2])),
    )
    for arch, method, ratio in groups:
        ranked = sorted(
            (statistics.mean(r.errors), r.variant)
            for r in rows
            if (r.arch, r.method, r.ratio) == (arch, method, ratio)
        )
        lines.append(f"- {arch} {method} {ratio}: " + " < ".join(f"{v} {e:.2f}" for e, v in ranked))
    return lines


def verdicts(rows: list[Row], teachers: dict[str, list[float]]) -> list[str]:
    """The issue's goals, checked against the rows (mean errors)."""
    lines = []
    for arch, errors in teachers.items():
        teacher = statistics.mean(errors)
        for ratio_name, allowed in GOALS.items():
            for row in rows:
                if (row.arch, row.ratio) == (arch, ratio_name) and row.variant == "distill":
                    gap = statistics.mean(row.errors) - teacher
                    verdict = "holds" if gap <= allowed else "does not hold"
                    lines.append(
                        f"- {arch} {row.method} {ratio_name} with distillation within {allowed:.1f} point(s) of the "
                        f"teacher: **{verdict}** ({statistics.mean(row.errors):.2f} % vs {teacher:.2f} %, gap {gap:+.2f})"
                    )
        for row in rows:
            if row.arch != arch or row.variant != "distill":
                continue
            for other in ("plain", "scratch"):
                match = [
                    r
                    for r in rows
                    if (r.arch, r.method, r.ratio, r.variant) == (arch, row.method, row.ratio, other)
                ]
                if match:
                    diff = statistics.mean(match[0].errors) - statistics.mean(row.errors)
                    better = "distill better" if diff > 0 else "distill not better"
                    lines.append(f"  - {arch} {row.method} {row.ratio}: {other} {statistics.mean(match[0].errors):.2f} % "
                                 f"vs distill {statistics.mean(row.errors):.2f} % ({better} by {abs(diff):.2f})")  # fmt: skip
    return lines


def write(
    rows: list[Row],
    teachers: dict[str, list[float]],
    chosen: dict[str, Plan],
    args: argparse.Namespace,
    seconds: float,
) -> None:
    mode = (
        "QUICK MODE (subsampled data, short runs: not the issue's full benchmark)" if args.quick else "full"
    )
    command = "python benchmarks/finetune.py " + " ".join(sys.argv[1:])
    header = ["arch", "method", "ratio", "variant", "test error %", "int8 error %", "error before fine-tuning %",
              ".hpk bytes", "int8 .hpk bytes", "seconds"]  # fmt: skip
    lines = [
        "# Compress a trained model and fine-tune it (Fashion-MNIST)",
        "",
        f"Mode: **{mode}**.  ",
        f"Command: `{command.strip()}`  ",
        f"Machine: {platform.machine()}, {torch.get_num_threads()} torch threads, Python {platform.python_version()}, "
        f"torch {torch.__version__}; shared with other jobs while it ran; wall time {seconds / 60:.1f} min.  ",
        *(
            f"{arch}: {p.train_samples or 60000:,} train / {p.test_samples or 10000:,} test images, teacher "
            f"{p.teacher_epochs} epochs, fine-tuning {p.finetune_epochs} epochs, methods {', '.join(p.methods)}, "
            f"seeds {list(p.seeds)}"
            + (f" ({', '.join(p.methods[1:])}: {list(p.other_seeds)})" if len(p.methods) > 1 else "")
            + f"; AdamW lr {p.lr:g}, weight decay {p.weight_decay:g}, cosine schedule, batch {p.batch_size}; "
            f"distillation T = {p.temperature:g}, α = {p.alpha:g}.  "
            for arch, p in chosen.items()
        ),
        "Scratch rows train as long as the teacher.  ",
        "Variants: scratch = compressed model trained from random buckets; plain = from the dense weights, "
        "cross-entropy; distill = from the dense weights, distillation loss (T and α above); +power = with the power budget "
        "(stored values ∝ √layer size, same total).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row.cells()) + " |" for row in rows),
        "",
        "## Goals, checked against the rows",
        "",
        *verdicts(rows, teachers),
        "",
        "## Variants from best to worst (mean test error %)",
        "",
        *best_variants(rows),
        "",
    ]
    if args.quick:
        lines += [
            "Quick mode trains on 4,000 images for a few epochs: the teachers are undertrained and the",
            "errors are far higher than a full run's. Read it as a smoke test of the workflow and of the direction",
            "of the differences, not as the issue's figures. The full run is `python benchmarks/finetune.py`",
            "(LeNet-5 on all 60k/10k images with hashed and fresh, 2 seeds; about 75 min on 2 cores estimated",
            "from RESULTS.md's LeNet-5 epoch time, not yet run) and `python benchmarks/finetune.py --archs resnet20`",
            "(ResNet-20 on 12k training images, hashed, 1 seed; not yet run).",
            "",
        ]
    out = HERE / args.out
    out.write_text("\n".join(lines))
    plot(rows, teachers, out.with_name(out.stem.lower() + ".png"))


def plot(rows: list[Row], teachers: dict[str, list[float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(teachers), figsize=(6 * len(teachers), 4.5), squeeze=False)
    for ax, (arch, errors) in zip(axes[0], teachers.items(), strict=True):
        ax.axhline(statistics.mean(errors), color="black", linestyle="--", label="dense teacher")
        for (method, variant), marker in zip(
            sorted({(r.method, r.variant) for r in rows if r.arch == arch and r.variant != "teacher"}),
            "os^vD<>p*hx+", strict=False,
        ):  # fmt: skip
            points = sorted(
                (r.hpk_bytes, statistics.mean(r.errors))
                for r in rows
                if (r.arch, r.method, r.variant) == (arch, method, variant)
            )
            ax.plot(*zip(*points, strict=True), marker=marker, label=f"{method} {variant}")
        ax.set_xscale("log")
        ax.set_xlabel(".hpk bytes (fp32 buckets)")
        ax.set_ylabel("test error %")
        ax.set_title(arch)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="Subsampled data and short runs (a few minutes)."
    )
    parser.add_argument("--seeds", type=int, default=None, help="LeNet-5 seeds (default: quick 1, full 2).")
    parser.add_argument("--archs", default=None, help="Comma-separated: lenet5 (default), resnet20.")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (1 on a busy machine).")
    parser.add_argument(
        "--out", default="FINETUNE.md", help="results file in benchmarks/ (plot: same stem, .png)"
    )
    parser.add_argument("--temperature", type=float, default=4.0, help="distillation temperature T")
    parser.add_argument("--alpha", type=float, default=0.9, help="distillation weight α of the soft loss")
    args = parser.parse_args()
    args.archs = args.archs or "lenet5"  # ResNet-20 (~100x LeNet-5's compute per image) on request
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    rows, teachers, chosen = run(args)
    write(rows, teachers, chosen, args, time.perf_counter() - started)


if __name__ == "__main__":
    main()

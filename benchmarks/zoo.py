"""The torchvision mobile zoo at 1/8 and 1/64 (hashed, from the dense weights): sizes and validate.

Per model (torchvision's definition, num_classes=10, 3×64×64 inputs, random init rescaled so
each compressed layer's output has unit std; built by hashpack.zoo, as tests/test_zoo.py builds
it): virtual weights, the .hpk bytes against dense float32 bytes, the compact ONNX and
once-TFLite export bytes, and which of the nine `hashpack validate` backends pass (golden + 2
random inputs).
Usage: python benchmarks/zoo.py [--models resnet18,mobilenet_v2] [--compressions 1/8,1/64]
       [--no-validate] [--json]
       python benchmarks/zoo.py --table-from rows.json   (the table of an earlier --json run)
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import torch

import hashpack
from hashpack.validation import export_model, run_validation
from hashpack.zoo import INPUT_SHAPE, LARGE_MODELS, MODELS, compressed_model

FLOAT32_BYTES = 4


def measure(name: str, compression: Fraction, validate: bool, directory: Path) -> dict:
    started = time.perf_counter()
    generator = torch.Generator().manual_seed(2)
    model = compressed_model(name, "hashed", float(compression), generator)
    path = directory / f"{name}-{compression.denominator}.hpk"
    hpk = hashpack.pack(model, torch.randn(2, *INPUT_SHAPE, generator=generator), path, golden=2)
    virtual = sum(p.numel for p in hpk.params.values())
    row = {
        "model": name,
        "compression": str(compression),
        "virtual_weights": virtual,
        "hpk_bytes": path.stat().st_size,
        "dense_fp32_bytes": virtual * FLOAT32_BYTES,
    }
    row["hpk_over_dense"] = row["hpk_bytes"] / row["dense_fp32_bytes"]
    if validate:
        report = run_validation(path, random_count=2, work_dir=directory)
        row["passed"] = [b.name for b in report.backends if b.status == "pass"]
        row["not_passed"] = {b.name: f"{b.status}: {b.reason}" for b in report.backends if b.status != "pass"}
    for kind, mode in (("onnx", "compact"), ("tflite", "once")):
        try:
            row[f"{kind}_{mode}_bytes"] = export_model(kind, mode, path, directory).stat().st_size
        except Exception as exc:  # the exporter lacks an op: report it, keep measuring
            row[f"{kind}_{mode}_bytes"] = None
            row.setdefault("export_errors", {})[f"{kind}:{mode}"] = str(exc).splitlines()[0][:200]
    row["seconds"] = round(time.perf_counter() - started, 1)
    for leftover in directory.iterdir():
        leftover.unlink()
    return row


def _bytes(value: int | None) -> str:
    return "—" if value is None else f"{value / 1e6:.2f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", default=",".join(MODELS + LARGE_MODELS), help="comma-separated torchvision model names"
    )
    parser.add_argument("--compressions", default="1/8,1/64")
    parser.add_argument("--no-validate", dest="validate", action="store_false")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--table-from", help="print the table of a --json output file instead of measuring")
    args = parser.parse_args()
    if args.table_from:
        print(table(json.loads(Path(args.table_from).read_text())))
        return
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory(prefix="hashpack-zoo-") as scratch:
        for name in args.models.split(","):
            for text in args.compressions.split(","):
                rows.append(measure(name, Fraction(text), args.validate, Path(scratch)))
    print(json.dumps(rows, indent=2) if args.json else table(rows))


def table(rows: list[dict]) -> str:
    """The rows as the README's markdown table."""
    lines = [
        "| model | compression | virtual weights | .hpk | .hpk / dense fp32 | ONNX compact | TFLite once | validate |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "passed" in r:
            total = len(r["passed"]) + len(r["not_passed"])
            verdict = f"{len(r['passed'])}/{total} pass"
            if r["not_passed"]:
                verdict += " (not: " + ", ".join(r["not_passed"]) + ")"
        else:
            verdict = "not run"
        lines.append(
            f"| {r['model']} | {r['compression']} | {r['virtual_weights'] / 1e6:.2f} M | {_bytes(r['hpk_bytes'])} "
            f"| {r['hpk_over_dense']:.4f} | {_bytes(r['onnx_compact_bytes'])} | {_bytes(r['tflite_once_bytes'])} "
            f"| {verdict} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()

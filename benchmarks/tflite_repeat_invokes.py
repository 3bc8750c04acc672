"""How many fresh LiteRT interpreters of the constant-weight ViT go wrong after their first invoke.

Why: the expanded and materialized exports of ``tests/test_transformers.py``'s ViT used to be
right on an interpreter's first invoke and wrong on later ones in some interpreters, only with
XNNPACK (docs/TFLITE.md, "Constant broadcast without a dynamic tensor"). The cause was a SLICE in
the Constant lowering; this script is the reproduction, kept to check the fix on other runtimes.

Model: torchvision's VisionTransformer (image 32, patch 8, 2 layers, 2 heads, hidden 64, mlp 128,
10 classes, head ~N(0, 0.1)), every layer hashed at 1/8 (seed 0), packed with 4 images. For each
export (expanded; materialized = a ``--materializable`` once file made constant by
``materialize``) and each kernel set (default delegates = XNNPACK; builtin kernels only): COUNT
fresh single-threaded interpreters in this process, each invoked 3 times (batches 4, 4, 2) and
compared with the numpy runtime; an interpreter is "wrong" if any invoke is off by more than 1e-4.
Usage: OMP_NUM_THREADS=1 python benchmarks/tflite_repeat_invokes.py [--count 40] [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import hashpack
from hashpack.exporter.tflite import build_tflite
from hashpack.exporter.tflite.materialize import materialize
from hashpack.runtime import load
from hashpack.torchvision_compat import torchvision_models

TOLERANCE = 1e-4


def _vit_hpk(path: Path) -> None:
    torch.manual_seed(0)
    model = torchvision_models().VisionTransformer(
        image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=64, mlp_dim=128, num_classes=10
    )
    nn.init.normal_(model.heads.head.weight, std=0.1)
    hashpack.compress(model, "hashed", compression=1 / 8).eval()
    hashpack.pack(model, torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0)), path)


def _interpreter(data: bytes, builtin_only: bool) -> Any:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES if builtin_only else OpResolverType.AUTO
    interpreter = Interpreter(model_content=data, num_threads=1, experimental_op_resolver_type=resolver)
    interpreter.allocate_tensors()
    return interpreter


def count_wrong(count: int) -> dict[str, dict[str, int]]:
    """{export: {kernels: number of the ``count`` fresh interpreters with a wrong invoke}}."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vit.hpk"
        _vit_hpk(path)
        runtime = load(path)
        expanded = build_tflite(path, "expanded")
        exports = {
            "expanded": expanded.data,
            "materialized": materialize(build_tflite(path, "once", materializable=True).data),
        }
    rng = np.random.default_rng(1)
    batches = [rng.standard_normal((n, 3, 32, 32)).astype(np.float32) for n in (4, 4, 2)]
    expected = [runtime.run(batch) for batch in batches]
    results: dict[str, dict[str, int]] = {}
    for name, data in exports.items():
        results[name] = {}
        for kernels in ("xnnpack", "builtin"):
            wrong = 0
            for _ in range(count):
                runner = _interpreter(data, kernels == "builtin").get_signature_runner("serving_default")
                errors = [
                    float(np.abs(runner(**{expanded.input_name: b})[expanded.output_name] - want).max())
                    for b, want in zip(batches, expected, strict=True)
                ]
                wrong += max(errors) > TOLERANCE
            results[name][kernels] = wrong
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=40, help="fresh interpreters per export and kernel set")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    results = count_wrong(args.count)
    if args.json:
        print(json.dumps({"count": args.count, "wrong": results}, indent=2))
        return
    for name, by_kernels in results.items():
        cells = ", ".join(f"{kernels} {wrong}/{args.count}" for kernels, wrong in by_kernels.items())
        print(f"{name:13s} wrong interpreters: {cells}")


if __name__ == "__main__":
    main()

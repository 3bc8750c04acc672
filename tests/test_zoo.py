"""The torchvision mobile zoo, unchanged, through the whole pipeline (issue 13).

One parametrized test over torchvision's own model definitions (``num_classes=10``, 3×64×64
inputs, random init): compress at 1/8 (``hashed`` from the dense weights on every model, ``fresh``
and ``fsnet`` on three) → pack → numpy runtime against the torch model → ``run_validation`` with
every backend (PyTorch evaluator, numpy, ONNX compact/inline/expanded, TFLite
once/inline/expanded/materialized), each of which must pass (a skip is a failure here) → the Java
runtime on the file's golden samples. Every backend that fails is named on its own line.

Random init leaves a compressed zoo model's logits tiny (1e-3 down to 1e-18 with fsnet), where
an absolute tolerance of 1e-4 would prove nothing, so ``hashpack.zoo.compressed_model`` (shared
with benchmarks/zoo.py) first rescales each compressed layer so its output has unit standard
deviation on a calibration batch, and the test checks the logits are O(1).

vgg11_bn (128 M virtual weights, its classifier is 25088→4096→4096 whatever the input size)
takes ~2.5 min and ~15 GB peak RSS here; it runs in ``make test`` and carries the ``zoo_large``
marker so ``make test-zoo-large`` can run it alone. Its compact/inline ONNX exports run unfolded
(``hashpack.validation.FOLD_LIMIT``): ONNX Runtime's folding would need ~13 GB more.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import hashpack
from hashpack.runtime import load
from hashpack.validation import DEFAULT_ATOL, DEFAULT_RTOL, EXPORT_MODES, BackendResult, run_validation
from hashpack.zoo import INPUT_SHAPE, LARGE_MODELS, MODELS, compressed_model

# squeezenet's MaxPool2d(3, 2, ceil_mode=True) windows all fit at 64×64 (ceil_mode would change
# nothing); at 66×66 each of its three pools has a partial last window
INPUT_SHAPES = {"squeezenet1_1": (3, 66, 66)}
COMPRESSION = 1 / 8
OTHER_METHODS = {"fresh": ["mobilenet_v3_small", "squeezenet1_1", "shufflenet_v2_x0_5"]}
OTHER_METHODS["fsnet"] = OTHER_METHODS["fresh"]
EXPECTED_BACKENDS = ["pytorch", "numpy"] + [
    f"{kind}:{mode}" for kind, modes in EXPORT_MODES.items() for mode in modes
]

CASES = (
    [pytest.param(name, "hashed", id=f"{name}-hashed") for name in MODELS]
    + [
        pytest.param(name, "hashed", id=f"{name}-hashed", marks=pytest.mark.zoo_large)
        for name in LARGE_MODELS
    ]
    + [
        pytest.param(name, method, id=f"{name}-{method}")
        for method, names in OTHER_METHODS.items()
        for name in names
    ]
)


def describe(backend: BackendResult) -> str:
    """One line: the backend, what happened, and why (the worst check of a failure)."""
    worst = backend.worst()
    if worst is not None:
        why = f"{worst.inputs} inputs vs {worst.reference}: max |error| {worst.max_abs_error:.3g}"
    else:
        why = (backend.reason or "")[:160]
    return f"{backend.name}: {backend.status} ({why})"


def java_problem(path: Path) -> str | None:
    """The Java runtime's verdict on the file's golden samples (None when it passes)."""
    try:
        from java_runner import check_golden  # tests/java_runner.py, from branch java-ops
    except ImportError:
        return "java: tests/java_runner.py is missing (the Java zoo check comes with branch java-ops)"
    (result,) = check_golden([path])
    return None if result.passed else result.describe()


@pytest.mark.parametrize(("name", "method"), CASES)
def test_zoo_model_passes_every_backend(tmp_path: Path, name: str, method: str) -> None:
    started = time.perf_counter()
    generator = torch.Generator().manual_seed(2)
    shape = INPUT_SHAPES.get(name, INPUT_SHAPE)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = compressed_model(name, method, COMPRESSION, generator, shape)
    assert not [str(w.message) for w in caught if str(w.message).startswith("compress:")]
    assert not [m for m in model.modules() if type(m) in (nn.Linear, nn.Conv2d)], "a layer stayed dense"
    x = torch.randn(4, *shape, generator=generator)
    path = tmp_path / f"{name}-{method}.hpk"
    hashpack.pack(model, x[:2], path, golden=2)

    # the numpy runtime against the torch model, on inputs the file never saw
    with torch.no_grad():
        expected = model(x[2:]).numpy()
    scale = float(np.abs(expected).max())
    assert 0.1 < scale < 1e3, f"logits of scale {scale:.3g}: the test would prove nothing"
    error = float(np.abs(load(path).run(x[2:].numpy()) - expected).max())
    assert error <= DEFAULT_ATOL + DEFAULT_RTOL * scale, f"numpy runtime: max |error| {error:.3g}"

    # every backend of `hashpack validate`, then Java; each failure is its own line
    report = run_validation(path, random_count=2, work_dir=tmp_path)
    problems = [describe(b) for b in report.backends if b.status != "pass"]
    problems += [f"degenerate reference: {reason}" for reason in report.degenerate]
    ran = [b.name for b in report.backends]
    if ran != EXPECTED_BACKENDS:
        problems.append(f"backends run: {ran}, expected {EXPECTED_BACKENDS}")
    java = java_problem(path)
    if java:
        problems.append(java)
    seconds = time.perf_counter() - started
    assert not problems, f"{name} ({method}, {seconds:.0f} s):\n" + "\n".join(problems)

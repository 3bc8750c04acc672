"""``hashpack validate`` must fail on subtly wrong backends and on a reference that proves nothing.

Each wrong backend is an ONNX file given with ``--onnx``: weights scaled by 1e-6, one layer's sign
flipped, the output classes permuted, a constant output. On a model whose outputs are small an
absolute tolerance (the old ``atol = 1e-4``) passed such backends; the scale-aware check must not.
A degenerate reference (tiny outputs, outputs that ignore the input, NaN, all zero) fails with its
own message unless ``--allow-degenerate``. LiteRT's native INFO line stays off the output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

import hashpack
from hashpack.cli import main
from hashpack.exporter.onnx import export_onnx
from hashpack.exporter.tflite import export_tflite
from hashpack.models import LeNet5
from hashpack.runtime import load
from hashpack.validation import compare, degenerate_reason

SHAPE = (1, 8, 8)
GOLDEN = 8


def packed(path: Path, edit: dict[str, float] | None = None, scale_output: float = 1.0) -> Path:
    """LeNet-5 hashed at 1/4 (seeded, so every call builds the same weights), with the hashed
    spaces named in ``edit`` multiplied by their factor, packed with the same golden inputs."""
    torch.manual_seed(0)
    model = LeNet5(SHAPE, 10)
    hashpack.compress(model, method="hashed", compression=1 / 4, seed=3)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            parameter.mul_((edit or {}).get(name.removesuffix(".space"), 1.0))
        model.classifier[4].space.mul_(scale_output)
    inputs = torch.rand(GOLDEN, *SHAPE, generator=torch.Generator().manual_seed(1))
    hashpack.pack(model.eval(), inputs, path)
    return path


def onnx_with_tail(source: Path, target: Path, tail: str) -> Path:
    """The ONNX export of ``source`` with its output permuted (``tail="permute"``: class j gets
    class j+1's logit) or replaced by the golden outputs' per-class mean for every input
    (``tail="constant"``: the best constant a backend could return)."""
    model = export_onnx(source, target.with_suffix(".base.onnx"))
    graph = model.graph
    output = graph.output[0]
    raw = f"{output.name}__raw"
    for node in graph.node:
        node.output[:] = [raw if name == output.name else name for name in node.output]
    if tail == "permute":
        order = numpy_helper.from_array(np.roll(np.arange(10), -1).astype(np.int64), "perm_order")
        graph.initializer.append(order)
        graph.node.append(helper.make_node("Gather", [raw, "perm_order"], [output.name], axis=1))
    else:
        mean = load(source).golden_outputs.mean(axis=0, keepdims=True).astype(np.float32)
        graph.initializer.append(numpy_helper.from_array(mean, "const_mean"))
        graph.initializer.append(numpy_helper.from_array(np.zeros((1, 1), np.float32), "const_zero"))
        graph.initializer.append(numpy_helper.from_array(np.array([1], np.int64), "const_axes"))
        graph.node.extend(
            [  # a column of zeros shaped by the batch, plus the mean: ignores the input's values
                helper.make_node("ReduceMean", [raw, "const_axes"], ["batch_col"], keepdims=1),
                helper.make_node("Mul", ["batch_col", "const_zero"], ["zero_col"]),
                helper.make_node("Add", ["zero_col", "const_mean"], [output.name]),
            ]
        )
    onnx.checker.check_model(model)
    onnx.save(model, target)
    assert output.type.tensor_type.elem_type == TensorProto.FLOAT
    return target


def to_onnx(source: Path, target: Path) -> Path:
    export_onnx(source, target)
    return target


def to_tflite(source: Path, target: Path) -> Path:
    export_tflite(source, target)
    return target


def validate(*args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(main, ["validate", *args, "--json"], catch_exceptions=False)
    return result.exit_code, json.loads(result.output)


def by_name(report: dict) -> dict[str, dict]:
    return {backend["name"]: backend for backend in report["backends"]}


WRONG = {  # a backend file name -> how it is wrong
    "scaled.onnx": "every weight scaled by 1e-6",
    "flipped.onnx": "the second convolution's sign flipped",
    "permuted.onnx": "output classes rotated by one",
    "constant.onnx": "the golden outputs' mean, whatever the input",
}


SPACES = ("features.0", "features.3", "classifier.0", "classifier.2", "classifier.4")


@pytest.fixture(scope="module")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Outputs below 1e-4 (like a model packed from badly converted weights): an absolute tolerance
    of 1e-4 is larger than the whole signal."""
    return packed(tmp_path_factory.mktemp("small") / "small.hpk", scale_output=1e-3)


@pytest.fixture(scope="module")
def wrong_report(small_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    directory = tmp_path_factory.mktemp("wrong")
    # every wrong backend is built from the same small-output model
    scaled_source = packed(directory / "s.hpk", dict.fromkeys(SPACES, 1e-6), scale_output=1e-3)
    flipped_source = packed(directory / "f.hpk", {"features.3": -1.0}, scale_output=1e-3)
    files = [
        to_onnx(small_model, directory / "good.onnx"),
        to_onnx(scaled_source, directory / "scaled.onnx"),
        to_onnx(flipped_source, directory / "flipped.onnx"),
        onnx_with_tail(small_model, directory / "permuted.onnx", "permute"),
        onnx_with_tail(small_model, directory / "constant.onnx", "constant"),
    ]
    tflite = to_tflite(small_model, directory / "good.tflite")
    onnx_args = [arg for file in files for arg in ("--onnx", str(file))]
    code, report = validate(str(small_model), *onnx_args, "--tflite", str(tflite), "--inputs", "16")
    report["exit_code"] = code
    return report


def test_the_reference_itself_is_usable(wrong_report: dict) -> None:
    assert wrong_report["degenerate"] == []
    scale = by_name(wrong_report)["numpy"]["checks"][0]["scale"]
    assert 1e-6 < scale < 1e-4  # small outputs: where an absolute tolerance of 1e-4 passes anything


def test_the_correct_backends_pass(wrong_report: dict) -> None:
    backends = by_name(wrong_report)
    for name in ("pytorch", "numpy", "onnx:good.onnx", "tflite:good.tflite"):
        assert backends[name]["status"] == "pass", backends[name]


@pytest.mark.parametrize("file", sorted(WRONG))
def test_every_subtly_wrong_backend_fails(wrong_report: dict, file: str) -> None:
    backend = by_name(wrong_report)[f"onnx:{file}"]
    assert backend["status"] == "fail", (WRONG[file], backend)
    for check in backend["checks"]:
        assert not check["passed"] and check["tolerance_ratio"] > 10, (WRONG[file], check)
    if file != "flipped.onnx":  # an absolute 1e-4 would have passed them: the bug this guards
        assert all(check["max_abs_error"] < 1e-4 + 1e-4 * check["scale"] for check in backend["checks"])
    assert wrong_report["exit_code"] == 1
    assert f"onnx:{file}" in wrong_report["failed"]


def test_top1_and_cosine_are_reported_but_the_error_decides(wrong_report: dict) -> None:
    permuted = by_name(wrong_report)["onnx:permuted.onnx"]["checks"][0]
    assert permuted["top1_agreement"] < 1 and permuted["min_cosine"] < 0.99
    # this untrained model predicts one class for every input, so the constant backend keeps full
    # top-1 agreement and a cosine near 1: only the scale-aware error catches it
    constant = by_name(wrong_report)["onnx:constant.onnx"]["checks"][0]
    assert constant["top1_agreement"] == 1.0 and not constant["passed"]


def test_exactly_the_wrong_backends_fail(wrong_report: dict) -> None:
    assert sorted(wrong_report["failed"]) == sorted(f"onnx:{file}" for file in WRONG)


# --------------------------------------------------------------------------- degenerate references


@pytest.mark.parametrize(
    ("edit", "scale_output", "words"),
    [
        ({"features.0": 0.0}, 1.0, "barely depend on the input"),  # a dead first layer
        ({}, 1e-7, "below 1e-06 in magnitude"),  # near-zero weights
    ],
)
def test_degenerate_reference_fails_unless_allowed(
    tmp_path: Path, edit: dict[str, float], scale_output: float, words: str
) -> None:
    path = packed(tmp_path / "degenerate.hpk", edit, scale_output)
    tflite = to_tflite(path, tmp_path / "d.tflite")
    onnx_file = to_onnx(path, tmp_path / "d.onnx")
    args = [str(path), "--onnx", str(onnx_file), "--tflite", str(tflite), "--inputs", "8"]
    code, report = validate(*args)
    assert code == 1 and not report["passed"]
    assert report["failed"] == []  # every backend agrees with it, and that proves nothing
    assert any(words in line for line in report["degenerate"]), report["degenerate"]
    text = CliRunner().invoke(main, ["validate", *args])
    assert (
        text.exit_code == 1 and "degenerate reference" in text.output and "--allow-degenerate" in text.output
    )

    code, report = validate(*args, "--allow-degenerate")
    assert code == 0 and report["passed"] and report["degenerate"]


def test_a_backend_returning_zeros_fails_even_on_a_tiny_reference() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(0, 1e-8, size=(8, 10))
    zeros = compare(np.zeros_like(ref), ref, atol=0.0, rtol=1e-4, inputs="golden", reference_name="stored")
    assert not zeros.passed and zeros.max_rel_error == 1.0
    assert compare(
        ref * (1 + 1e-6), ref, atol=0.0, rtol=1e-4, inputs="golden", reference_name="stored"
    ).passed


def test_degenerate_reason_names_each_kind() -> None:
    rng = np.random.default_rng(0)
    good = rng.normal(size=(8, 10))
    tolerance = {"atol": 0.0, "rtol": 1e-4}
    assert degenerate_reason(good, **tolerance) is None
    assert "NaN" in degenerate_reason(np.where(good > 2, np.nan, good), **tolerance)
    assert "NaN" in degenerate_reason(np.where(good > 2, np.inf, good), **tolerance)
    assert "all zero" in degenerate_reason(np.zeros((8, 10)), **tolerance)
    assert "below" in degenerate_reason(good * 1e-8, **tolerance)
    constant = np.tile(good[:1], (8, 1)) + rng.normal(0, 1e-7, size=(8, 10))
    assert "barely depend on the input" in degenerate_reason(constant, **tolerance)
    assert degenerate_reason(constant, atol=0.0, rtol=1e-9) is None  # a tighter tolerance tells them apart
    assert degenerate_reason(good[:1], **tolerance) is None  # one sample: nothing to compare across


# ------------------------------------------------------------------------------ native log lines


def test_litert_info_line_stays_off_the_output_unless_debug(small_model: Path) -> None:
    command = [sys.executable, "-m", "hashpack", "validate", str(small_model), "--inputs", "2", "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    quiet = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert quiet.returncode == 0, quiet.stderr
    json.loads(quiet.stdout)  # stdout is exactly the JSON document
    assert "XNNPACK" not in quiet.stdout and "XNNPACK" not in quiet.stderr

    debug = subprocess.run(
        [sys.executable, "-m", "hashpack", "--debug", *command[3:]],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert debug.returncode == 0
    assert "XNNPACK" in debug.stderr and "XNNPACK" not in debug.stdout  # the line exists; --debug keeps it

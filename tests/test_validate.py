"""``hashpack validate``: passes on fresh models of every scheme, fails (exit 1, backend named) on a
file whose buckets changed after packing, exit 2 on bad input; the PyTorch evaluator it compares
against covers every scheme and agrees with the numpy runtime."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import hashpack
from hashpack.cli import main
from hashpack.models import LeNet5, mlp
from hashpack.nn.quantize import quantize
from hashpack.runtime import load
from hashpack.runtime.schemes import SCHEMES
from hashpack.torch_eval import DECODERS, to_torch
from hashpack.validation import EXPORT_MODES, compare, run_validation

SHAPE = (1, 8, 8)
COMPRESSED = sorted(set(SCHEMES) - {"dense"})  # every compression method, as the runtime knows them


def make_model(path: Path, method: str, arch: str = "lenet5", quantization: str = "none", **options) -> Path:
    """A small packed model (random weights x2, 8 golden samples); conv layers so FreshNets applies."""
    torch.manual_seed(0)
    model = LeNet5(SHAPE, 10) if arch == "lenet5" else mlp(SHAPE, 10, hidden=(32,))
    if method != "dense":
        hashpack.compress(model, method=method, compression=1 / 4, seed=3, **options)
    with torch.no_grad():  # untrained, funhash's outputs vary by 1e-5 of their scale across inputs:
        for parameter in model.parameters():  # a degenerate reference validate rejects; x2 fixes it
            parameter.mul_(2.0)
    if method != "dense":
        quantize(model, quantization)
    hashpack.pack(model.eval(), torch.rand(8, *SHAPE), path)
    return path


def tamper(source: Path, target: Path, delta: float = 0.5) -> Path:
    """Shift every bucket of the first space by ``delta`` and re-sign the checksum (FORMAT.md §2:
    sha256(metadata string || data buffer)), so the file still loads but no longer matches its
    golden outputs."""
    blob = bytearray(source.read_bytes())
    (header_len,) = struct.unpack_from("<Q", blob, 0)
    header = json.loads(bytes(blob[8 : 8 + header_len]))
    meta = header["__metadata__"]
    spaces = json.loads(meta["hashpack"])["spaces"]
    tensor = spaces[sorted(spaces)[0]]["tensor"]
    begin, end = header[tensor]["data_offsets"]
    start = 8 + header_len
    values = np.frombuffer(bytes(blob[start + begin : start + end]), dtype="<f4") + np.float32(delta)
    blob[start + begin : start + end] = values.astype("<f4").tobytes()
    digest = hashlib.sha256(meta["hashpack"].encode() + bytes(blob[start:])).hexdigest()
    blob[8 : 8 + header_len] = bytes(blob[8 : 8 + header_len]).replace(
        meta["hashpack.sha256"].encode(), digest.encode()
    )
    target.write_bytes(bytes(blob))
    return target


def _validate(*args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(main, ["validate", *args, "--json"], catch_exceptions=False)
    return result.exit_code, json.loads(result.output) if result.output.startswith("{") else {}


def _by_name(report: dict) -> dict[str, dict]:
    return {backend["name"]: backend for backend in report["backends"]}


# ------------------------------------------------------------------------------- the command


@pytest.fixture(scope="module")
def hashed_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_model(tmp_path_factory.mktemp("hashed") / "lenet.hpk", "hashed")


@pytest.mark.parametrize("method", ["dense", *COMPRESSED])
def test_passes_on_a_fresh_model_of_every_scheme(tmp_path: Path, method: str) -> None:
    path = make_model(tmp_path / f"{method}.hpk", method)
    code, report = _validate(str(path), "--inputs", "4")
    assert code == 0, report
    assert report["passed"] and not report["failed"]
    backends = _by_name(report)
    for name in ("pytorch", "numpy"):  # always run: the reference and the numpy runtime
        assert backends[name]["status"] == "pass"
        assert all(check["passed"] for check in backends[name]["checks"])
    assert report["random_reference"] == "pytorch" and backends["pytorch"]["is_reference"]
    golden = backends["numpy"]["checks"][0]
    assert (
        golden["inputs"] == "golden" and golden["reference"] == "stored" and golden["top1_agreement"] == 1.0
    )
    for backend in report["backends"]:  # every exporter covers every scheme: nothing skips
        assert backend["status"] == "pass", backend


def test_hashed_model_runs_in_every_backend_and_export_mode(hashed_model: Path) -> None:
    code, report = _validate(str(hashed_model), "--inputs", "8")
    assert code == 0
    backends = _by_name(report)
    expected = [
        "pytorch",
        "numpy",
        *(f"{kind}:{mode}" for kind, modes in EXPORT_MODES.items() for mode in modes),
    ]
    assert list(backends) == expected
    for name in expected:
        assert backends[name]["status"] == "pass", backends[name]
        inputs = [check["inputs"] for check in backends[name]["checks"]]
        assert inputs == (["golden"] if name == "pytorch" else ["golden", "random"])
        for check in backends[name]["checks"]:
            assert check["max_abs_error"] < 1e-4 and check["tolerance_ratio"] <= 1


def test_quantized_spaces_pass(tmp_path: Path) -> None:
    path = make_model(tmp_path / "int8.hpk", "hashed", arch="mlp", quantization="int8")
    code, report = _validate(str(path), "--inputs", "4")
    assert code == 0 and report["passed"]


def test_tampered_file_fails_in_every_backend_and_says_by_how_much(
    tmp_path: Path, hashed_model: Path
) -> None:
    bad = tamper(hashed_model, tmp_path / "tampered.hpk")
    load(bad)  # still a valid file: only the golden comparison can catch it
    code, report = _validate(str(bad), "--inputs", "4")
    assert code == 1
    assert not report["passed"]
    assert report["skipped"] == []
    assert set(report["failed"]) == {b["name"] for b in report["backends"]}  # every one, PyTorch's too
    golden = _by_name(report)["numpy"]["checks"][0]
    assert not golden["passed"] and golden["max_abs_error"] > 0.01 and golden["tolerance_ratio"] > 100
    assert any("changed after packing" in note for note in report["notes"])

    text = CliRunner().invoke(main, ["validate", str(bad), "--inputs", "4"])
    assert text.exit_code == 1
    assert "FAIL" in text.output and "numpy" in text.output and "max abs err" in text.output


def test_one_disagreeing_export_is_named(tmp_path: Path, hashed_model: Path) -> None:
    from hashpack.exporter.onnx import export_onnx

    good, bad = tmp_path / "good.onnx", tmp_path / "bad.onnx"
    export_onnx(hashed_model, good)
    export_onnx(tamper(hashed_model, tmp_path / "tampered.hpk"), bad)
    code, report = _validate(str(hashed_model), "--onnx", str(good), "--onnx", str(bad), "--inputs", "4")
    assert code == 1
    assert report["failed"] == ["onnx:bad.onnx"]
    assert _by_name(report)["onnx:good.onnx"]["status"] == "pass"
    assert _by_name(report)["onnx:bad.onnx"]["file"] == str(bad)


def test_bad_input_exits_2(tmp_path: Path, hashed_model: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    cases = [
        [str(tmp_path / "missing.hpk")],
        [str(junk)],  # not a .hpk
        [str(hashed_model), "--onnx", str(junk)],
        [str(hashed_model), "--onnx", str(tmp_path / "missing.onnx")],
        [str(hashed_model), "--tflite", str(hashed_model)],
        [str(hashed_model), "--atol", "0", "--rtol", "0"],
        [str(hashed_model), "--rtol", "-1"],
        [str(hashed_model), "--inputs", "-1"],
    ]
    for args in cases:
        result = CliRunner().invoke(main, ["validate", *args])
        assert result.exit_code == 2, (args, result.output)


def test_without_torch_random_inputs_are_checked_against_the_numpy_runtime(hashed_model: Path) -> None:
    report = run_validation(hashed_model, onnx_files=(), random_count=4, use_torch=False)
    backends = {b.name: b for b in report.backends}
    assert report.passed and report.random_reference == "numpy"
    assert backends["pytorch"].status == "skipped"
    assert backends["numpy"].is_reference and [c.inputs for c in backends["numpy"].checks] == ["golden"]
    assert backends["onnx:compact"].checks[1].reference == "numpy"
    assert any("numpy runtime" in note for note in report.notes)


def test_compare_applies_the_documented_tolerance() -> None:
    ref = np.array([[1.0, -2.0], [0.0, 10.0]], dtype=np.float32)

    def check(outputs: np.ndarray, inputs: str = "random", atol: float = 0.0):
        return compare(outputs, ref, atol=atol, rtol=1e-4, inputs=inputs, reference_name="stored")

    close = check(ref + np.float32(1e-5), "golden")
    assert close.passed and close.top1_agreement == 1.0 and close.tolerance_ratio < 1
    assert close.scale == 10.0 and close.min_cosine > 0.999999
    # max |y - ref| <= atol + rtol * max |ref|: the bound is 1e-3 (of the scale 10) for every element,
    # so 9e-4 off passes even where ref = 0, and 2e-3 off fails even where |ref| = 10
    assert check(ref + np.array([[0, 0], [9e-4, 0]], dtype=np.float32)).passed
    off = check(ref + np.array([[0, 0], [0, 2e-3]], dtype=np.float32))
    assert not off.passed and off.tolerance_ratio == pytest.approx(2, rel=1e-3)
    assert off.max_abs_error == pytest.approx(2e-3, rel=1e-3) and off.max_rel_error == pytest.approx(
        2e-4, rel=1e-3
    )
    assert check(ref + np.float32(1.9e-3), atol=1e-3).passed  # atol is an absolute floor on top
    assert off.top1_agreement == 1.0  # reported on random inputs too
    assert not check(ref[:1]).passed and "shape" in check(ref[:1]).note
    assert not check(ref * np.nan).passed


# -------------------------------------------------------------------------- the torch evaluator


def test_torch_evaluator_covers_every_runtime_scheme() -> None:
    assert set(SCHEMES) <= set(DECODERS), f"no torch decoder for {sorted(set(SCHEMES) - set(DECODERS))}"


@pytest.mark.parametrize(
    ("method", "options", "quantization"),
    [
        ("hashed", {}, "int8"),
        ("fresh", {}, "fp16"),
        ("funhash", {"hops": 2, "dual_space": True}, "int8"),
        ("funhash", {"hidden": 0, "hashes": 1}, "none"),
        ("fsnet", {}, "int8"),
    ],
)
def test_torch_evaluator_regenerates_the_runtime_weights(
    tmp_path: Path, method: str, options: dict, quantization: str
) -> None:
    path = make_model(tmp_path / "m.hpk", method, quantization=quantization, **options)
    runtime = load(path)
    graph = to_torch(path)
    for name, weight in runtime.weights.items():
        np.testing.assert_allclose(graph.weights[name].numpy(), weight, rtol=1e-6, atol=1e-7, err_msg=name)
    np.testing.assert_allclose(graph.run(runtime.golden_inputs), runtime.golden_outputs, rtol=1e-5, atol=1e-6)


def test_large_models_run_compact_onnx_unfolded(monkeypatch: pytest.MonkeyPatch, hashed_model: Path) -> None:
    """Above FOLD_LIMIT virtual weights the compact/inline ONNX exports run with ORT's optimizations
    off (folding would hold ~100 B per weight); they must still pass, and the report says so."""
    import hashpack.validation as validation

    sessions: list[int] = []
    real = validation.open_backend

    def spy(kind: str, path: object, num_threads: int | None = None, *, optimize: bool = True):
        if kind == "onnx":
            sessions.append(optimize)
        return real(kind, path, num_threads, optimize=optimize)

    monkeypatch.setattr(validation, "FOLD_LIMIT", 1000)
    monkeypatch.setattr(validation, "open_backend", spy)
    code, report = _validate(str(hashed_model), "--inputs", "4")
    assert code == 0
    backends = _by_name(report)
    assert sessions == [False, False, True]  # compact, inline unfolded; expanded as usual
    for mode in ("compact", "inline"):
        assert backends[f"onnx:{mode}"]["status"] == "pass"
        assert "optimizations off" in backends[f"onnx:{mode}"]["reason"]
    assert backends["onnx:expanded"]["reason"] is None

"""The exporters given hostile .hpk files raise the reader's ``HpkFormatError`` and write nothing;
given valid files they succeed or name what they cannot express; and the same model and seed
give byte-identical .hpk, .onnx and .tflite files in two processes."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import fuzz_tools as ft
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hashpack.exporter.onnx import export_onnx
from hashpack.exporter.tflite import export_tflite
from hashpack.runtime import HpkFormatError, parse_hpk

onnx_export = export_onnx
tflite_export = export_tflite
EXPORTERS: dict[str, Callable[..., object]] = {"onnx": onnx_export, "tflite": tflite_export}


@pytest.fixture(scope="module")
def seeds() -> dict[str, bytes]:
    return ft.seed_files()


def export(fmt: str, blob: bytes, directory: Path) -> Path:
    source, target = directory / "model.hpk", directory / f"model.{fmt}"
    source.write_bytes(blob)
    EXPORTERS[fmt](source, target)
    return target


@pytest.mark.parametrize("fmt", sorted(EXPORTERS))
def test_seed_files_export(seeds: dict[str, bytes], fmt: str, tmp_path: Path) -> None:
    for name, blob in seeds.items():
        assert export(fmt, blob, tmp_path).stat().st_size > 0, name


@pytest.mark.parametrize("fmt", sorted(EXPORTERS))
def test_hostile_files_give_the_format_error_and_no_output(
    seeds: dict[str, bytes], fmt: str, tmp_path: Path
) -> None:
    hostile = [case for case in ft.targeted_cases(seeds) if case.expect and case.allowance == 10]
    assert len(hostile) > 200
    for case in random.Random(0).sample(hostile, 60):
        with pytest.raises(HpkFormatError, match=case.expect):
            export(fmt, case.blob, tmp_path)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["model.hpk"], case.name


@pytest.mark.parametrize("fmt", sorted(EXPORTERS))
@settings(
    max_examples=25, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)
@given(rng=st.randoms(use_true_random=False), seed=st.sampled_from(["allops", "mlp", "lenet5-int8"]))
def test_mutants_export_or_give_the_format_error(
    seeds: dict[str, bytes], fmt: str, rng: random.Random, seed: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A random field lie (re-signed): accepted by the reader -> exported, or a clear HpkFormatError."""
    label, mutated = ft.random_tree_mutation(ft.Parts.split(seeds[seed]), rng)
    blob = mutated.build()
    directory = tmp_path_factory.mktemp("mutant")
    try:
        parse_hpk(blob)
        valid = True
    except HpkFormatError:
        valid = False
    try:
        target = export(fmt, blob, directory)
    except HpkFormatError as exc:
        assert str(exc).startswith(str(directory / "model.hpk")), (label, exc)
        assert not (directory / f"model.{fmt}").exists(), label
        return
    assert valid, f"{label}: exported a file the reader rejects"
    assert target.stat().st_size > 0


def test_mutants_the_reader_accepts_export_or_name_the_problem(
    seeds: dict[str, bytes], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Random mutants mostly fail the reader; this draws until 12 pass it, then exports each."""
    rng = random.Random(11)
    accepted: list[tuple[str, bytes]] = []
    for _ in range(3000):
        seed = rng.choice(["allops", "mlp", "lenet5-int8"])
        label, mutated = ft.random_tree_mutation(ft.Parts.split(seeds[seed]), rng)
        blob = mutated.build()
        try:
            parse_hpk(blob)
        except HpkFormatError:
            continue
        accepted.append((f"{seed}: {label}", blob))
        if len(accepted) == 12:
            break
    assert len(accepted) == 12, f"only {len(accepted)} of 3000 mutants passed the reader"
    exported = 0
    for fmt in sorted(EXPORTERS):
        for label, blob in accepted:
            directory = tmp_path_factory.mktemp("accepted")
            try:
                target = export(fmt, blob, directory)
            except HpkFormatError as exc:  # a valid file the format cannot express: named, nothing written
                assert str(exc).startswith(str(directory / "model.hpk")), (label, exc)
                assert not (directory / f"model.{fmt}").exists(), label
                continue
            assert target.stat().st_size > 0, label
            load_export(fmt, target)  # and what was written is a model its runtime accepts
            exported += 1
    assert exported >= len(accepted), f"only {exported} of {2 * len(accepted)} exports succeeded"


def load_export(fmt: str, path: Path) -> None:
    if fmt == "onnx":
        import onnx
        import onnxruntime as ort

        onnx.checker.check_model(onnx.load(path), full_check=True)
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    else:
        from hashpack.exporter.tflite.runner import make_interpreter

        make_interpreter(path.read_bytes())


@pytest.mark.parametrize("seed", ["allops", "lenet5-int8"])
def test_duplicate_node_names_export_correctly(seeds: dict[str, bytes], seed: str, tmp_path: Path) -> None:
    """Node names need not be unique (FORMAT.md §5: outputs must be). The TFLite exporter once keyed
    its BatchNorm/activation fusion plan by name and looped forever on such a file, and the ONNX
    exporter copied the names, which ONNX Runtime rejects (found by
    test_mutants_the_reader_accepts_export_or_name_the_problem)."""
    import numpy as np
    import onnx
    import onnxruntime as ort

    from hashpack.exporter.tflite.runner import make_interpreter, run_signature
    from hashpack.runtime import load

    parts = ft.Parts.split(seeds[seed])
    for node in parts.meta["nodes"]:
        node["name"] = "layer"
    source = tmp_path / "same-names.hpk"
    source.write_bytes(parts.build())
    model = load(source)
    x = np.random.default_rng(0).standard_normal((2, *model.input_shape[1:])).astype(np.float32)
    want = model.run(x)
    tflite_file = export("tflite", source.read_bytes(), tmp_path)
    interpreter = make_interpreter(tflite_file.read_bytes())
    got = run_signature(interpreter, {model.hpk.input.name: x})[model.hpk.output.name]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    for mode in ("compact", "inline", "expanded"):  # ONNX Runtime refuses repeated node names
        onnx_file = tmp_path / f"model.{mode}.onnx"
        onnx_export(source, onnx_file, weights=mode)
        onnx.checker.check_model(onnx.load(onnx_file), full_check=True)
        session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
        got = session.run(None, {session.get_inputs()[0].name: x})[0]
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=mode)


# Packs a small model with a fixed seed and exports it in every weights mode.
DETERMINISM_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import torch
    import hashpack
    from hashpack.models import LeNet5
    from hashpack.nn.quantize import quantize
    from hashpack.exporter.onnx import export_onnx
    from hashpack.exporter.tflite import export_tflite

    out = Path(sys.argv[1])
    for method in ("hashed", "fresh"):
        torch.manual_seed(0)
        model = hashpack.compress(LeNet5((1, 16, 16), 10), method=method, compression=1 / 8, seed=5)
        if method == "hashed":
            quantize(model, "int8")
        torch.manual_seed(1)
        hpk = out / f"{method}.hpk"
        hashpack.pack(model.eval(), torch.randn(3, 1, 16, 16), hpk)
        for mode in ("compact", "inline", "expanded"):
            export_onnx(hpk, out / f"{method}-{mode}.onnx", weights=mode)
        for mode in ("once", "inline", "expanded"):
            export_tflite(hpk, out / f"{method}-{mode}.tflite", weights=mode)
    """
)


def test_same_model_and_seed_give_identical_files_across_processes(tmp_path: Path) -> None:
    runs = [tmp_path / "first", tmp_path / "second"]
    for directory in runs:
        directory.mkdir()
        subprocess.run([sys.executable, "-c", DETERMINISM_SCRIPT, str(directory)], check=True, timeout=600)
    names = sorted(p.name for p in runs[0].iterdir())
    assert len(names) == 2 * (1 + 3 + 3), names
    assert names == sorted(p.name for p in runs[1].iterdir())
    for name in names:
        assert (runs[0] / name).read_bytes() == (runs[1] / name).read_bytes(), name

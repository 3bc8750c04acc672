"""``hashpack profile``: the documented JSON keys, positive numbers, sizes equal to the real files,
a valid PNG, the text tables, and one-line errors (exit 2) for bad options."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import hashpack
from hashpack.cli import main
from hashpack.models import mlp
from hashpack.profiling import parse_backends, peak_rss_bytes
from hashpack.runtime import load
from hashpack.validation import EXPORT_MODES

SHAPE = (1, 8, 8)
TOP_KEYS = {
    "file",
    "file_bytes",
    "model",
    "sizes",
    "layers",
    "speed",
    "memory",
    "skipped",
    "settings",
    "environment",
    "plot",
}
SIZE_KEYS = {"name", "kind", "mode", "path", "bytes", "gzip_bytes", "dense_over_size"}
LAYER_KEYS = {"name", "op", "scheme", "virtual_params", "stored_params", "bytes", "compression"}
SPEED_KEYS = {"backend", "batch", "load_ms", "first_run_ms", "median_ms", "p10_ms", "p90_ms", "runs"}
MEMORY_KEYS = {"backend", "batch", "imports_mib", "peak_mib", "model_mib"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = hashpack.compress(mlp(SHAPE, 10, hidden=(48, 24)), method="hashed", compression=1 / 8, seed=1)
    path = tmp_path_factory.mktemp("profile") / "mlp.hpk"
    hashpack.pack(model.eval(), torch.rand(8, *SHAPE), path)
    return path


def _profile(*args: str) -> dict:
    result = CliRunner().invoke(main, ["profile", *args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_json_has_the_documented_keys_and_real_sizes(model_path: Path, tmp_path: Path) -> None:
    exports, plot = tmp_path / "exports", tmp_path / "profile.png"
    report = _profile(
        str(model_path), "--backends", "numpy,onnx,tflite", "--batch", "1,4", "--runs", "5",
        "--export-dir", str(exports), "--plot", str(plot), "--all-sizes",
    )  # fmt: skip
    assert set(report) == TOP_KEYS
    assert report["file_bytes"] == model_path.stat().st_size
    virtual = report["model"]["virtual_params"]
    assert virtual == sum(p.numel for p in load(model_path).hpk.params.values())

    sizes = {row["name"]: row for row in report["sizes"]}
    for row in sizes.values():
        assert set(row) == SIZE_KEYS
        assert row["bytes"] > 0 and row["gzip_bytes"] > 0 and row["dense_over_size"] > 0
    assert sizes["dense fp32"]["bytes"] == 4 * virtual == report["model"]["dense_fp32_bytes"]
    assert sizes[".hpk"]["bytes"] == model_path.stat().st_size
    assert sizes[".hpk"]["gzip_bytes"] == len(gzip.compress(model_path.read_bytes(), 9, mtime=0))
    exported = [row for row in report["sizes"] if row["kind"] in ("onnx", "tflite")]
    assert {row["name"] for row in exported} == {
        f"{kind}:{mode}" for kind, modes in EXPORT_MODES.items() for mode in modes
    }
    for row in exported:  # every export mode is a real file of exactly that size
        assert Path(row["path"]).parent == exports
        assert row["bytes"] == Path(row["path"]).stat().st_size
    assert sizes["onnx:compact"]["bytes"] < sizes["onnx:expanded"]["bytes"]

    assert len(report["layers"]) == 3  # LeNet-300-100's three Linear layers
    for layer in report["layers"]:
        assert set(layer) == LAYER_KEYS
        assert layer["virtual_params"] > 0 and layer["stored_params"] > 0 and layer["bytes"] > 0
        assert layer["compression"] > 1  # hashed at 1/8

    assert report["skipped"] == []  # every backend runs in CI: nothing may drop out quietly
    ran = ["numpy", "onnx:compact", "tflite:once"]
    assert [(row["backend"], row["batch"]) for row in report["speed"]] == [
        (b, n) for b in ran for n in (1, 4)
    ]
    for row in report["speed"]:
        assert set(row) == SPEED_KEYS and row["runs"] == 5
        assert min(row["load_ms"], row["first_run_ms"], row["p10_ms"]) > 0
        assert row["p10_ms"] <= row["median_ms"] <= row["p90_ms"]
    assert [row["backend"] for row in report["memory"]] == ran
    for row in report["memory"]:
        assert set(row) == MEMORY_KEYS and row["batch"] == 4
        assert 0 < row["imports_mib"] <= row["peak_mib"] < 4096
        assert row["model_mib"] == pytest.approx(row["peak_mib"] - row["imports_mib"])

    assert report["settings"]["batches"] == [1, 4] and report["settings"]["runs"] == 5
    assert report["plot"] == str(plot)
    data = plot.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    import matplotlib.image

    image = matplotlib.image.imread(plot)
    assert image.shape[0] > 300 and image.shape[1] > 600


def test_tflite_backend_is_profiled(model_path: Path) -> None:
    report = _profile(str(model_path), "--backends", "tflite", "--batch", "2", "--runs", "3", "--no-memory")
    assert {row["name"] for row in report["sizes"]} == {
        "dense fp32",
        ".hpk",
        "tflite:once",
    }  # the profiled ones
    assert [(row["backend"], row["batch"]) for row in report["speed"]] == [("tflite:once", 2)]


def test_text_output_has_the_tables(model_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["profile", str(model_path), "--backends", "numpy,onnx:inline", "--batch", "2", "--runs", "3"]
    )
    assert result.exit_code == 0, result.output
    for title in ("Sizes", "Layers", "Speed", "Peak resident memory", "dense fp32", ".hpk", "onnx:inline"):
        assert title in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["--backends", "numpy,cuda"],
        ["--backends", "onnx:once"],
        ["--backends", ""],
        ["--batch", "0"],
        ["--batch", "1,x"],
        ["--runs", "0"],
        ["--plot", "/no/such/dir/p.png"],
    ],
)
def test_bad_options_exit_2(model_path: Path, args: list[str]) -> None:
    result = CliRunner().invoke(main, ["profile", str(model_path), *args])
    assert result.exit_code == 2, result.output


def test_missing_or_bad_file_exits_2(tmp_path: Path) -> None:
    junk = tmp_path / "junk.hpk"
    junk.write_bytes(b"\x00" * 16)
    for path in (tmp_path / "missing.hpk", junk):
        result = CliRunner().invoke(main, ["profile", str(path)])
        assert result.exit_code == 2 and result.output.startswith("error:"), result.output


def test_parse_backends_defaults_and_modes() -> None:
    assert parse_backends("numpy,onnx,tflite") == [("numpy", None), ("onnx", "compact"), ("tflite", "once")]
    assert parse_backends("torch, onnx:expanded,onnx:expanded") == [("pytorch", None), ("onnx", "expanded")]
    with pytest.raises(ValueError, match="numpy"):
        parse_backends("numpy:inline")


def test_peak_rss_is_measured() -> None:
    peak = peak_rss_bytes()
    assert peak is not None and peak > 10 * 1024 * 1024  # this process has numpy and torch loaded

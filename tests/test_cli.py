"""The CLI's happy paths: train, inspect, demo, python -m hashpack (error paths: test_cli_errors.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from hashpack.cli import main
from hashpack.runtime import load


def _invoke(*args: str) -> dict:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_train_writes_a_hpk_that_the_runtime_runs(tmp_path: Path) -> None:
    out = tmp_path / "m.hpk"
    report = _invoke(
        "train", "--arch", "lenet5", "--compression", "1/16", "--epochs", "10", "-o", str(out), "--json"
    )
    assert out.is_file() and report["file_bytes"] == out.stat().st_size
    assert report["test_accuracy"] > 0.5  # 10 classes: chance is 0.1
    model = load(out)
    np.testing.assert_allclose(model.run(model.golden_inputs), model.golden_outputs, atol=1e-5)


def test_inspect_json_reports_layers_and_ratio(tmp_path: Path) -> None:
    out = tmp_path / "m.hpk"
    _invoke("train", "--compression", "64x", "--epochs", "1", "--golden", "0", "-o", str(out), "--json")
    summary = _invoke("inspect", str(out), "--json")
    assert [layer["op"] for layer in summary["layers"]] == ["Linear", "Linear", "Linear"]
    for layer in summary["layers"]:
        assert layer["scheme"] == "hashed"
        assert 50 < layer["compression"] < 80  # ~64x, rounding of small layers
    assert summary["file_bytes"] == out.stat().st_size
    assert summary["golden_samples"] == 0


def test_inspect_table(tmp_path: Path) -> None:
    out = tmp_path / "m.hpk"
    _invoke("train", "--epochs", "1", "-o", str(out), "--json")
    result = CliRunner().invoke(main, ["inspect", str(out)])
    assert result.exit_code == 0
    rows = [line for line in result.output.splitlines() if "│ Linear" in line]
    assert len(rows) == 3  # LeNet-300-100's three layers, each hashed at 1/8
    for row in rows:
        cells = [cell.strip() for cell in row.strip("│ ").split("│")]
        assert cells[1:3] == ["Linear", "hashed"] and cells[6] == "8.0x"
        virtual, stored = (int(cells[i].replace(",", "")) for i in (3, 4))
        assert stored == round(virtual / 8)
    assert f"file {out.stat().st_size:,} bytes" in result.output and "smaller" in result.output


def test_demo_agrees_with_torch(tmp_path: Path) -> None:
    report = _invoke("demo", "--out", str(tmp_path), "--epochs", "5", "--json")
    assert report["golden_ok"] is True
    assert report["runtime_accuracy"] == report["torch_accuracy"] > 0.8
    assert report["max_abs_diff"] < 1e-4
    assert report["dense_bytes"] / report["file_bytes"] > 5


def test_python_dash_m_entry_point() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hashpack", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert "train" in result.stdout and "inspect" in result.stdout

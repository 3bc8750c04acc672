"""Golden self-check data: generated inputs (hp32-uniform), the size budget, stored inputs on request."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

import hashpack
from hashpack.cli import main
from hashpack.models import mlp
from hashpack.packer import GOLDEN_SEED, MAX_STORED_GOLDEN_SAMPLES, golden_budget
from hashpack.runtime import HpkFormatError, load, read_hpk
from hashpack.runtime.golden import generated_inputs
from hashpack.runtime.hpk import parse_hpk

VECTORS = json.loads((Path(__file__).parent / "vectors" / "golden_vectors.json").read_text())


def test_generator_matches_the_pure_python_vectors_bit_for_bit() -> None:
    assert VECTORS["default_seed"] == GOLDEN_SEED
    for case in VECTORS["cases"]:
        values = generated_inputs(case["seed"], case["count"], tuple(case["shape"]))
        assert values.shape == (case["count"], *case["shape"]) and values.dtype == np.float32
        flat = values.reshape(-1)
        bits = [f"{b:08x}" for b in flat[: len(case["first_bits"])].view(np.uint32)]
        assert bits == case["first_bits"]
        assert hashlib.sha256(flat.astype("<f4").tobytes()).hexdigest() == case["sha256"]
        assert flat.min() >= -1.0 and flat.max() < 1.0


def test_generator_refuses_more_than_the_reader_limit() -> None:
    with pytest.raises(ValueError, match="exceed the limits"):
        generated_inputs(1, 1, (2**24 + 1,))


class _BigInput(nn.Module):
    """A small compressed model with a 3×224×224 input (eight stored inputs would be 4.8 MB)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 7, stride=8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.conv(x)), 1))


def test_default_golden_is_generated_and_within_budget_at_224(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = hashpack.compress(_BigInput(), compression=1 / 8, seed=1).eval()
    path = tmp_path / "big.hpk"
    hpk = hashpack.pack(model, torch.randn(1, 3, 224, 224), path)
    assert hpk.golden is not None and hpk.golden["generator"] == "hp32-uniform"
    assert hpk.version == 2
    golden_bytes = sum(hpk.tensors[name].nbytes for name in hpk.golden_tensors)
    stored = sum(a.nbytes for name, a in hpk.tensors.items() if not name.startswith("golden/"))
    assert golden_bytes <= max(16 * 1024, stored // 100)
    assert "golden/inputs" not in hpk.tensors
    assert 1 <= hpk.golden_count <= 8
    loaded = load(path)
    inputs = loaded.golden_inputs
    assert inputs is not None and inputs.shape == (hpk.golden_count, 3, 224, 224)
    np.testing.assert_allclose(loaded.run(inputs), loaded.golden_outputs, atol=1e-4, rtol=1e-4)
    with torch.no_grad():
        expected = model(torch.from_numpy(inputs)).numpy()
    np.testing.assert_array_equal(loaded.golden_outputs, expected)


def test_golden_budget_shrinks_the_count_and_can_drop_it(tmp_path: Path) -> None:
    torch.manual_seed(0)
    wide = hashpack.compress(nn.Sequential(nn.Linear(4, 3000)), compression=1 / 64, seed=1).eval()
    hpk = hashpack.pack(wide, torch.randn(1, 4), tmp_path / "wide.hpk")
    assert golden_budget(hpk) == 16 * 1024
    assert hpk.golden_count == (16 * 1024) // (3000 * 4)  # 1 sample of 12 KB fits, 2 do not
    huge = hashpack.compress(nn.Sequential(nn.Linear(2, 5000)), compression=1 / 64, seed=1).eval()
    with pytest.warns(UserWarning, match="no golden self-check stored"):
        dropped = hashpack.pack(huge, torch.randn(1, 2), tmp_path / "huge.hpk")
    assert dropped.golden is None and dropped.version == 1


def test_user_inputs_are_stored_on_request_within_the_cap(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = hashpack.compress(mlp((1, 8, 8), 10), compression=1 / 8, seed=3).eval()
    real = torch.rand(5, 1, 8, 8)
    hpk = hashpack.pack(model, real, tmp_path / "stored.hpk", golden=real)
    assert hpk.version == 1 and hpk.golden == {"inputs": "golden/inputs", "outputs": "golden/outputs"}
    loaded = load(tmp_path / "stored.hpk")
    np.testing.assert_array_equal(loaded.golden_inputs, real.numpy())
    with pytest.raises(ValueError, match="capped at 64 samples"):
        hashpack.pack(
            model, real, tmp_path / "x.hpk", golden=torch.rand(MAX_STORED_GOLDEN_SAMPLES + 1, 1, 8, 8)
        )
    with pytest.raises(ValueError, match="do not match"):
        hashpack.pack(model, real, tmp_path / "x.hpk", golden=torch.rand(2, 64))
    explicit = hashpack.pack(model, real, tmp_path / "three.hpk", golden=3)
    assert explicit.golden_count == 3 and "generator" in explicit.golden
    assert hashpack.pack(model, real, tmp_path / "none.hpk", golden=0).golden is None


def test_same_model_gives_byte_identical_files(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = hashpack.compress(mlp((1, 8, 8), 10), compression=1 / 8, seed=3).eval()
    hashpack.pack(model, torch.randn(2, 1, 8, 8), tmp_path / "a.hpk")
    hashpack.pack(model, torch.randn(2, 1, 8, 8), tmp_path / "b.hpk")  # the example input does not matter
    assert (tmp_path / "a.hpk").read_bytes() == (tmp_path / "b.hpk").read_bytes()


def test_a_version_1_reader_refuses_generated_golden_clearly(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = hashpack.compress(mlp((1, 8, 8), 10), compression=1 / 8, seed=3).eval()
    hashpack.pack(model, torch.randn(2, 1, 8, 8), tmp_path / "a.hpk")
    blob = (tmp_path / "a.hpk").read_bytes()
    assert read_hpk(tmp_path / "a.hpk").to_metadata()["version"] == 2
    import hashpack.runtime.hpk as hpk_module

    saved = hpk_module.READ_VERSIONS
    hpk_module.READ_VERSIONS = (1,)
    try:
        with pytest.raises(HpkFormatError, match="unsupported format version 2"):
            parse_hpk(blob, "a.hpk")
    finally:
        hpk_module.READ_VERSIONS = saved


def test_inspect_shows_golden_bytes_as_their_own_row(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = hashpack.compress(mlp((1, 8, 8), 10), compression=1 / 8, seed=3).eval()
    path = tmp_path / "m.hpk"
    hashpack.pack(model, torch.randn(2, 1, 8, 8), path)
    result = CliRunner().invoke(main, ["inspect", str(path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "│ golden" in line)
    assert "320" in row  # 8 × 10 float32 outputs, its own row
    assert "golden samples 8 (inputs generated)" in result.output
    data = json.loads(CliRunner().invoke(main, ["inspect", str(path), "--json"]).output)
    assert data["golden_bytes"] == 320 and data["golden_inputs"] == "generated"
    assert os.path.getsize(path) == data["file_bytes"]

"""Method defaults and option combinations the docs promise: ``--method fsnet`` is the paper's form
(filter summaries for convolutions, HashedNets for Linear layers, ``fc="fs"`` an option), and
FreshNets' ``bands`` is honoured or rejected, never silently ignored; HashedNets' bias lives in the
hashed space unless ``separate_bias`` (same budget, a dense bias) asks otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

import hashpack
from hashpack.cli import main
from hashpack.models import LeNet5
from hashpack.nn.fresh import FreshConv2d
from hashpack.nn.fsnet import FSConv2d, FSLinear
from hashpack.nn.layers import HashedLinear
from hashpack.runtime import read_hpk


def test_fsnet_defaults_to_the_papers_form() -> None:
    model = hashpack.compress(LeNet5((1, 8, 8), 10), "fsnet", compression=1 / 4, seed=0)
    assert isinstance(model.features[0], FSConv2d) and isinstance(model.features[3], FSConv2d)
    assert all(isinstance(model.classifier[i], HashedLinear) for i in (0, 2, 4))


def test_fsnet_on_linear_layers_is_an_option() -> None:
    model = hashpack.compress(LeNet5((1, 8, 8), 10), "fsnet", compression=1 / 4, seed=0, fc="fs")
    assert isinstance(model.features[0], FSConv2d)
    assert all(isinstance(model.classifier[i], FSLinear) for i in (0, 2, 4))


@pytest.mark.parametrize("bands", [2, 9])
def test_uniform_allocation_rejects_more_than_one_band(bands: int) -> None:
    with pytest.raises(ValueError, match="uniform"):
        hashpack.compress(
            LeNet5((1, 8, 8), 10), "fresh", compression=1 / 4, allocation="uniform", bands=bands
        )
    with pytest.raises(ValueError, match="uniform"):
        FreshConv2d(6, 16, 5, compression=1 / 4, allocation="uniform", bands=bands)


def test_bands_are_honoured_with_the_beta_allocation() -> None:
    model = hashpack.compress(LeNet5((1, 8, 8), 10), "fresh", compression=1 / 4, bands=3)
    assert len(model.features[3].band_buckets) == 3  # 5x5 kernel: up to 9 bands, 3 asked
    one = hashpack.compress(LeNet5((1, 8, 8), 10), "fresh", compression=1 / 4, allocation="uniform", bands=1)
    assert len(one.features[3].band_buckets) == 1


def test_cli_rejects_bands_with_uniform_in_one_line(tmp_path: Path) -> None:
    args = ["train", "--arch", "lenet5", "--method", "fresh", "--bands", "9", "--allocation", "uniform"]
    result = CliRunner().invoke(main, [*args, "--epochs", "1", "-o", str(tmp_path / "m.hpk")])
    assert result.exit_code == 2, result.output
    assert "uniform" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "m.hpk").exists()


# ------------------------------------------------------------------------- hashed: the bias


def test_separate_bias_keeps_the_budget_and_runs_in_every_backend(tmp_path: Path) -> None:
    def build(**options) -> nn.Module:
        torch.manual_seed(0)
        return hashpack.compress(LeNet5((1, 8, 8), 10), "hashed", compression=1 / 4, seed=0, **options)

    shared, separate = build(), build(separate_bias=True)
    count = lambda model: sum(p.numel() for p in model.parameters())  # noqa: E731
    assert count(separate) == count(shared)  # the biases come out of the same budget
    assert separate.classifier[0].bias is not None and shared.classifier[0].bias is None
    with torch.no_grad():
        for parameter in separate.parameters():
            parameter.mul_(2.0)  # an input-dependent reference (see tests/test_validate.py)
    path = tmp_path / "separate.hpk"
    hashpack.pack(separate.eval(), torch.rand(8, 1, 8, 8), path)
    schemes = {name: p.scheme for name, p in read_hpk(path).params.items()}
    assert schemes["classifier.0.weight"] == "hashed" and schemes["classifier.0.bias"] == "dense"
    result = CliRunner().invoke(main, ["validate", str(path), "--inputs", "4", "--json"])
    report = json.loads(result.output)
    assert result.exit_code == 0, report
    assert all(backend["status"] == "pass" for backend in report["backends"])


def test_separate_bias_is_a_cli_flag_of_hashed_only(tmp_path: Path) -> None:
    args = ["train", "--arch", "mlp", "--method", "fresh", "--separate-bias", "-o", str(tmp_path / "m.hpk")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "--separate-bias does not apply to --method fresh" in result.output

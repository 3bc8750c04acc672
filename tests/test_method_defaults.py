"""Method defaults and option combinations the docs promise: ``--method fsnet`` is the paper's form
(filter summaries for convolutions, HashedNets for Linear layers, ``fc="fs"`` an option), and
FreshNets' ``bands`` is honoured or rejected, never silently ignored."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import hashpack
from hashpack.cli import main
from hashpack.models import LeNet5
from hashpack.nn.fresh import FreshConv2d
from hashpack.nn.fsnet import FSConv2d, FSLinear
from hashpack.nn.layers import HashedLinear


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

"""Compress a trained model and fine-tune it: --init, distillation, per-layer budgets, schedules."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file
from torch import nn

import hashpack
from hashpack.cli import main
from hashpack.data import Dataset, load_dataset
from hashpack.finetuning import recalibrate_batchnorm
from hashpack.models import LeNet5, ResNet20, mlp
from hashpack.nn.layers import HashedModule
from hashpack.nn.ratios import allocate_budget, virtual_size
from hashpack.runtime import load
from hashpack.train import evaluate, train


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits")


@pytest.fixture(scope="module")
def dense_mlp(digits: Dataset, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """A trained dense LeNet-300-100 on digits, saved as safetensors, and its test accuracy."""
    torch.manual_seed(0)
    model = mlp(digits.input_shape, 10)
    result = train(model, digits, epochs=5, lr=3e-3, seed=0, schedule="cosine")
    path = tmp_path_factory.mktemp("dense") / "mlp.safetensors"
    save_file(model.state_dict(), str(path))
    return path, result.test_accuracy


def _train(args: list[str]) -> dict:
    result = CliRunner().invoke(main, ["train", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _stored_values(path: Path) -> dict[str, int]:
    summary = load(path).hpk
    return {space.name: space.size for space in summary.spaces.values()}


# ------------------------------------------------------------------------------------- from dense


def test_init_starts_from_the_dense_weights_and_fine_tunes(
    dense_mlp: tuple[Path, float], digits: Dataset, tmp_path: Path
) -> None:
    weights, dense_accuracy = dense_mlp
    assert dense_accuracy > 0.93
    out = tmp_path / "ft.hpk"
    report = _train(
        ["--init", str(weights), "--compression", "1", "--epochs", "2", "--lr", "3e-3", "-o", str(out)]
    )
    assert report["dense_test_accuracy"] == pytest.approx(dense_accuracy)
    assert report["distill"] is True  # on by default with --init
    # before any step: buckets hold the means of the dense weights hashed into them. At ratio 1 the
    # collisions of random hashing cost some accuracy, but it stays near the dense model, while the
    # same compressed model from a random initialisation is at chance
    assert report["initial_test_accuracy"] > dense_accuracy - 0.2
    torch.manual_seed(0)
    scratch = hashpack.compress(mlp(digits.input_shape, 10), compression=1.0, from_dense=False)
    assert evaluate(scratch, digits.x_test, digits.y_test) < 0.3
    # fine-tuning wins accuracy back; the packed file computes the same accuracy in numpy
    assert report["test_accuracy"] > report["initial_test_accuracy"]
    runtime_accuracy = (load(out).run(digits.x_test).argmax(1) == digits.y_test).mean()
    assert runtime_accuracy == pytest.approx(report["test_accuracy"], abs=2 / len(digits.y_test))
    assert runtime_accuracy > 0.8  # chance is 0.1


def test_init_from_a_weights_only_pt_file(dense_mlp: tuple[Path, float], tmp_path: Path) -> None:
    from safetensors.torch import load_file

    pt = tmp_path / "mlp.pt"
    torch.save(load_file(str(dense_mlp[0])), pt)
    report = _train(["--init", str(pt), "--no-distill", "--epochs", "1", "-o", str(tmp_path / "a.hpk")])
    assert report["distill"] is False
    assert report["dense_test_accuracy"] == pytest.approx(dense_mlp[1])


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    torch.manual_seed(0)
    other = LeNet5((1, 8, 8), 10).state_dict()
    narrow = mlp((1, 8, 8), 10, hidden=(200, 100)).state_dict()
    files = {
        "keys do not match": ("lenet.safetensors", other),
        "has shape": ("narrow.safetensors", narrow),
    }
    paths = {}
    for reason, (name, state) in files.items():
        paths[reason] = tmp_path / name
        save_file(state, str(paths[reason]))
    paths["not a state dict"] = tmp_path / "list.pt"
    torch.save([1, 2, 3], paths["not a state dict"])
    paths["not a weights-only torch state dict"] = tmp_path / "module.pt"
    torch.save(mlp((1, 8, 8), 10), paths["not a weights-only torch state dict"])  # a pickled module
    paths["not a readable safetensors"] = tmp_path / "corrupt.safetensors"
    paths["not a readable safetensors"].write_bytes(b"\xff" * 8 + b"{not json")
    paths["not a weights-only torch state dict (corrupt)"] = tmp_path / "corrupt.pt"
    paths["not a weights-only torch state dict (corrupt)"].write_bytes(b"PK\x03\x04garbage")
    return paths


def test_bad_init_files_give_one_line_and_exit_2(tmp_path: Path) -> None:
    for reason, path in _bad_files(tmp_path).items():
        result = CliRunner().invoke(main, ["train", "--init", str(path), "-o", str(tmp_path / "x.hpk")])
        assert result.exit_code == 2, (reason, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (reason, result.output)
        assert str(path) in lines[0] and reason.split(" (")[0] in lines[0], lines[0]
        assert not (tmp_path / "x.hpk").exists()


def test_torchvision_factory_from_a_saved_state_dict_trains_and_packs(
    tmp_path: Path, digits: Dataset
) -> None:
    from hashpack.model_source import build_from_factory

    torch.manual_seed(0)
    dense = build_from_factory("torchvision.models:resnet18", {"num_classes": 10})
    save_file(dense.state_dict(), str(tmp_path / "rn18.safetensors"))
    small = tmp_path / "small.npz"  # 256 digits: the point is the plumbing, not the accuracy
    np.savez(small, x_train=digits.x_train[:256], y_train=digits.y_train[:256], x_test=digits.x_test[:64],
             y_test=digits.y_test[:64])  # fmt: skip
    out = tmp_path / "rn18.hpk"
    report = _train([
        "--model", "torchvision.models:resnet18", "--model-kwargs", '{"num_classes": 10}',
        "--init", str(tmp_path / "rn18.safetensors"), "--compression", "1/64", "--epochs", "1",
        "--dataset", str(small), "-o", str(out),
    ])  # fmt: skip
    assert report["arch"] == "torchvision.models:resnet18" and report["distill"] is True
    runtime = load(out)
    x = np.repeat(digits.x_test[:4], 3, axis=1)  # gray digits repeated to resnet18's 3 channels
    assert runtime.run(x).shape == (4, 10)
    assert report["compression"] > 30  # every conv and the fc hashed at 1/64; BatchNorm stays dense


def test_model_factory_errors_are_one_line(tmp_path: Path) -> None:
    cases = [
        (["--model", "no_such_pkg.nets:Net"], "cannot import"),
        (["--model", "torch.nn:NoSuchThing"], "no attribute"),
        (["--model", "hashpack.models"], "package.module:factory"),
        (["--model", "torch.nn:Linear", "--model-kwargs", "[1]"], "JSON object"),
        (["--model", "torch.nn:Linear", "--model-kwargs", '{"bogus": 1}'], "bogus"),
        (["--arch", "mlp", "--model", "torch.nn:Linear"], "not both"),
        (["--distill"], "needs a teacher"),
        (["--teacher", "hashpack.models:mlp"], "--teacher-weights"),
    ]
    for args, message in cases:
        result = CliRunner().invoke(main, ["train", *args, "-o", str(tmp_path / "x.hpk")])
        assert result.exit_code == 2 and message in result.output, (args, result.output)
        assert len(result.output.strip().splitlines()) == 1


# ----------------------------------------------------------------------------------- distillation


def test_distillation_loss_matches_a_hand_computed_value() -> None:
    student, teacher, target = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]]), torch.tensor([0])
    # T = 2: p_s = softmax([0.5, 0]) = (σ, 1 − σ), p_t = (1 − σ, σ) with σ = 1/(1 + e^−0.5).
    # KL(p_t ‖ p_s) = (1−σ)·ln((1−σ)/σ) + σ·ln(σ/(1−σ)) = (2σ − 1)·0.5 = 0.1224593
    # CE = ln(1 + e^−1) = 0.3132617;  loss = 0.5·2²·0.1224593 + 0.5·0.3132617 = 0.4015495
    sigma = 1 / (1 + math.exp(-0.5))
    by_hand = 0.5 * 4 * (2 * sigma - 1) * 0.5 + 0.5 * math.log(1 + math.exp(-1))
    assert by_hand == pytest.approx(0.4015495, abs=1e-7)
    loss = hashpack.distillation_loss(student, teacher, target, temperature=2.0, alpha=0.5)
    assert float(loss) == pytest.approx(by_hand, rel=1e-6)
    # α = 0 is plain cross-entropy; α = 1 ignores the labels
    assert float(hashpack.distillation_loss(student, teacher, target, 2.0, 0.0)) == pytest.approx(
        0.3132617, 1e-6
    )
    assert float(hashpack.distillation_loss(student, teacher, torch.tensor([1]), 2.0, 1.0)) == pytest.approx(
        4 * 0.1224593, 1e-6
    )


def test_the_teacher_runs_in_eval_mode_without_gradients(digits: Dataset) -> None:
    torch.manual_seed(0)
    teacher = ResNet20(digits.input_shape, 10, width=4, blocks=1)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    student = hashpack.compress(ResNet20(digits.input_shape, 10, width=4, blocks=1), compression=1 / 4)
    teacher.train()  # train() must switch it to eval: its BatchNorm statistics may not move
    train(student, digits, epochs=1, teacher=teacher, seed=0)
    assert not teacher.training and all(not p.requires_grad for p in teacher.parameters())
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())


# ------------------------------------------------------------------------------ per-layer ratios


def _buckets(model: nn.Module) -> dict[str, int]:
    return {path: m.num_buckets for path, m in model.named_modules() if isinstance(m, HashedModule)}


def test_compression_as_mapping_callable_and_float() -> None:
    shape = (1, 28, 28)
    torch.manual_seed(0)
    mapping = {"features.0": 1 / 2, "classifier.*": 1 / 16, "classifier.4": None, "default": 1 / 4}
    model = hashpack.compress(LeNet5(shape, 10), compression=mapping)
    sizes = {
        p: virtual_size(m)
        for p, m in LeNet5(shape, 10).named_modules()
        if isinstance(m, (nn.Linear, nn.Conv2d))
    }
    assert _buckets(model) == {
        "features.0": round(sizes["features.0"] / 2),  # exact path
        "features.3": round(sizes["features.3"] / 4),  # default
        "classifier.0": round(sizes["classifier.0"] / 16),  # first matching pattern
        "classifier.2": round(sizes["classifier.2"] / 16),
    }
    assert isinstance(model.classifier[4], nn.Linear)  # None keeps it dense (exact path beats the pattern)

    def rule(path: str, module: nn.Module) -> float | None:
        return None if isinstance(module, nn.Conv2d) else 1 / 8

    model = hashpack.compress(LeNet5(shape, 10), compression=rule)
    assert set(_buckets(model)) == {"classifier.0", "classifier.2", "classifier.4"}
    with pytest.raises(ValueError, match="must be a number in"):
        hashpack.compress(LeNet5(shape, 10), compression={"default": 2.0})


def test_power_budget_gives_each_layer_the_stored_values_of_its_rule() -> None:
    shape, total = (1, 28, 28), 1 / 64
    dense = LeNet5(shape, 10)
    sizes = {p: virtual_size(m) for p, m in dense.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))}
    budget = round(total * sum(sizes.values()))
    ratios = allocate_budget(dense, total)
    model = hashpack.compress(LeNet5(shape, 10), compression=ratios)
    stored = _buckets(model)
    # the rule: K_l = c·√n_l (no layer reaches its cap at 1/64), integers summing to the budget
    c = budget / sum(math.sqrt(n) for n in sizes.values())
    assert sum(stored.values()) == budget
    for path, n in sizes.items():
        assert abs(stored[path] - c * math.sqrt(n)) < 1, path
    assert stored["features.0"] / sizes["features.0"] > 10 * stored["classifier.0"] / sizes["classifier.0"]
    # exponent 1 is the uniform ratio
    uniform = allocate_budget(dense, total, exponent=1.0)
    assert all(abs(r * sizes[p] - total * sizes[p]) < 1 for p, r in uniform.items())
    # a generous budget caps small layers at ratio 1 and gives the rest to the others
    capped = allocate_budget(dense, 1 / 2)
    assert capped["features.0"] == 1.0 and capped["classifier.4"] == 1.0
    assert sum(round(r * sizes[p]) for p, r in capped.items()) == round(sum(sizes.values()) / 2)


def test_cli_layer_compression_keep_dense_and_power_budget(tmp_path: Path) -> None:
    out = tmp_path / "l.hpk"
    _train([
        "--arch", "lenet5", "--compression", "1/8", "--layer-compression", "classifier.*=1/2",
        "--keep-dense", "features.0", "--epochs", "1", "-o", str(out),
    ])  # fmt: skip
    stored = _stored_values(out)
    torch.manual_seed(0)
    sizes = {
        p: virtual_size(m)
        for p, m in LeNet5((1, 8, 8), 10).named_modules()
        if isinstance(m, (nn.Linear, nn.Conv2d))
    }
    expected = {"features.3": 1 / 8, "classifier.0": 1 / 2, "classifier.2": 1 / 2, "classifier.4": 1 / 2}
    assert stored == {
        layer: round(sizes[layer] * ratio) for layer, ratio in expected.items()
    }  # features.0 dense
    power = tmp_path / "p.hpk"
    report = _train(
        ["--arch", "lenet5", "--compression", "1/16", "--budget", "power", "--epochs", "1", "-o", str(power)]
    )
    assert report["budget"] == "power"
    assert sum(_stored_values(power).values()) == round(sum(sizes.values()) / 16)
    bad = CliRunner().invoke(main, ["train", "--layer-compression", "fc", "-o", str(out)])
    assert bad.exit_code == 2 and "PATTERN=RATIO" in bad.output


# ------------------------------------------------------------------------------- Python workflow


def test_python_api_compress_recalibrate_finetune(digits: Dataset) -> None:
    torch.manual_seed(0)
    dense = ResNet20(digits.input_shape, 10, width=8, blocks=1)
    train(dense, digits, epochs=3, lr=3e-3, seed=0, schedule="cosine")
    dense_accuracy = evaluate(dense, digits.x_test, digits.y_test)
    teacher = hashpack.finetuning.frozen_copy(dense)
    student = hashpack.compress(dense, compression=1 / 4, from_dense=True)
    stale = evaluate(student, digits.x_test, digits.y_test)
    assert recalibrate_batchnorm(student, digits.x_train) == len(digits.x_train)
    bn = student.stem[1]
    with torch.no_grad():  # the statistics now describe the compressed model's own activations
        channel_mean = student.stem[0](torch.from_numpy(digits.x_train)).mean(dim=(0, 2, 3))
    assert torch.allclose(bn.running_mean, channel_mean, atol=1e-4)
    result = hashpack.finetune(student, digits, teacher=teacher, epochs=3, lr=3e-3, val_fraction=0.1)
    assert result.best_epoch is not None and result.val_accuracy is not None
    assert result.test_accuracy > max(stale, 0.5) and dense_accuracy > 0.5


# ------------------------------------------------------------------------------------- schedules


def test_validation_split_best_epoch_and_determinism(tmp_path: Path, digits: Dataset) -> None:
    args = [
        "--arch",
        "mlp",
        "--epochs",
        "3",
        "--val-fraction",
        "0.2",
        "--weight-decay",
        "1e-4",
        "--seed",
        "3",
    ]
    first = _train([*args, "-o", str(tmp_path / "a.hpk")])
    second = _train([*args, "-o", str(tmp_path / "b.hpk")])
    assert (tmp_path / "a.hpk").read_bytes() == (tmp_path / "b.hpk").read_bytes()
    assert 1 <= first["best_epoch"] <= 3 and first["val_accuracy"] > 0.5
    assert first["test_accuracy"] == second["test_accuracy"]
    from hashpack.train import split_validation

    kept, x_val, _ = split_validation(digits, 0.2, seed=3)
    assert len(kept.x_train) + len(x_val) == len(digits.x_train) and len(x_val) == round(
        0.2 * len(digits.x_train)
    )
    assert not set(map(bytes, x_val)) & set(map(bytes, kept.x_train[: len(x_val)]))


def test_cosine_schedule_ends_at_zero() -> None:
    from hashpack.train import _learning_rate

    factor = _learning_rate("cosine", 1e-3, 100)
    assert factor(0) == 1.0 and factor(50) == pytest.approx(0.5) and factor(100) == pytest.approx(0.0)


def test_compress_pretrained_keeps_each_layers_dense_scale() -> None:
    torch.manual_seed(0)
    dense = LeNet5((1, 8, 8), 10)
    rms = {
        p: float(m.weight.detach().pow(2).mean().sqrt())
        for p, m in dense.named_modules()
        if isinstance(m, (nn.Linear, nn.Conv2d))
    }
    torch.manual_seed(1)  # empty buckets keep their random init: the same in both
    means = hashpack.compress(copy.deepcopy(dense), compression=1 / 8, from_dense=True)
    torch.manual_seed(1)
    scaled = hashpack.compress_pretrained(copy.deepcopy(dense), compression=1 / 8)
    for path, layer in scaled.named_modules():
        if isinstance(layer, HashedModule):
            weight = layer.virtual_tensors()["weight"].detach()
            assert float(weight.pow(2).mean().sqrt()) == pytest.approx(rms[path], rel=1e-5)
            # the same buckets as the plain means, times one factor per layer (> 1: means shrink)
            plain = means.get_submodule(path).space.detach()
            factor = float(layer.space.detach().norm() / plain.norm())
            assert factor > 1 and torch.allclose(layer.space.detach(), plain * factor, atol=1e-6)


def test_a_separate_teacher_from_a_factory(dense_mlp: tuple[Path, float], tmp_path: Path) -> None:
    out = tmp_path / "s.hpk"
    report = _train([
        "--arch", "mlp", "--teacher", "hashpack.models:mlp",
        "--teacher-kwargs", '{"input_shape": [1, 8, 8], "num_classes": 10}',
        "--teacher-weights", str(dense_mlp[0]), "--epochs", "3", "--lr", "1e-2", "-o", str(out),
    ])  # fmt: skip
    assert report["distill"] is True and report["init"] is None  # a student trained from scratch
    assert report["test_accuracy"] > 0.8 and out.exists()  # chance is 0.1
    wrong = CliRunner().invoke(main, [
        "train", "--teacher", "hashpack.models:LeNet5", "--teacher-kwargs", '{"input_shape": [1, 8, 8], "num_classes": 10}',
        "--teacher-weights", str(dense_mlp[0]), "-o", str(tmp_path / "t.hpk"),
    ])  # fmt: skip
    assert wrong.exit_code == 2 and "keys do not match" in wrong.output


def test_progress_bar_shows_train_and_validation_metrics() -> None:
    from hashpack.cli import _progress

    with _progress(quiet=False) as progress:
        assert progress.on_step is not None and progress.on_epoch is not None
        progress.on_step(1, 4, 0.5)
        progress.on_epoch(1, 2, {"train_loss": 0.5, "train_accuracy": 0.75, "val_accuracy": 0.625})
        fields = progress.bar.tasks[0].fields
    assert fields["metrics"] == "epoch 1/2 train acc 0.750 val acc 0.625" and fields["loss"] == 0.5
    with _progress(quiet=True) as quiet:
        assert quiet.on_step is None and quiet.on_epoch is None

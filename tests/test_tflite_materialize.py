"""``--materializable`` once files turn into constant-weight models on the device (materialize.py):
for every scheme × architecture the materialized model runs in stock LiteRT, matches the numpy
runtime, holds exactly the weights ``once`` computes (bit-identical to numpy for the exact
schemes) and keeps none of the decompression machinery."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tflite
from click.testing import CliRunner
from test_tflite_export import CASES, _assert_close, _case, _exact, _export, _inputs

from hashpack.cli import main
from hashpack.exporter.tflite import build_tflite
from hashpack.exporter.tflite.materialize import (
    SLOTS_METADATA,
    materialize,
    materialize_from_hpk,
    read_metadata,
)
from hashpack.exporter.tflite.once import WEIGHTS_SIGNATURE, WEIGHTS_TRIGGER
from hashpack.exporter.tflite.runner import make_interpreter
from hashpack.runtime import load

SERVING = "serving_default"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tflite_materialize")


def _opcodes(data: bytes) -> set[int]:
    model = tflite.Model.GetRootAsModel(data, 0)
    return {model.OperatorCodes(i).BuiltinCode() for i in range(model.OperatorCodesLength())}


@pytest.mark.parametrize(("scheme", "arch"), CASES)
def test_materialized_model_matches_and_holds_the_once_weights(scheme: str, arch: str, workdir: Path) -> None:
    path, _, shape = _case(scheme, arch, str(workdir))
    runtime = load(path)
    once = build_tflite(path, "once", materializable=True)
    if (
        once.data == build_tflite(path, "once", materializable=False).data
    ):  # nothing to decompress (dense): nothing to add
        assert not once.weights or all(
            runtime.hpk.params[u.param].scheme == "dense" for u in once.weights.values()
        )
        with pytest.raises(ValueError, match="no hashpack materialize template"):
            materialize(once.data)
        return
    data = materialize(once.data)

    x = _inputs(shape, 3, 4)
    runner = make_interpreter(data).get_signature_runner(SERVING)
    _assert_close(runner(**{once.input_name: x})[once.output_name], runtime.run(x), "materialized vs numpy")

    model = tflite.Model.GetRootAsModel(data, 0)
    assert model.SubgraphsLength() == 1 and model.SignatureDefsLength() == 1
    machinery = {tflite.BuiltinOperator.CALL_ONCE, tflite.BuiltinOperator.VAR_HANDLE,
                 tflite.BuiltinOperator.READ_VARIABLE, tflite.BuiltinOperator.ASSIGN_VARIABLE}  # fmt: skip
    assert not _opcodes(data) & machinery

    runner = make_interpreter(once.data).get_signature_runner(WEIGHTS_SIGNATURE)
    computed = runner(**{WEIGHTS_TRIGGER: np.zeros(1, np.float32)})
    slots = json.loads(read_metadata(once.data)[SLOTS_METADATA])
    assert sorted(s["variable"] for s in slots) == sorted(computed)
    for slot in slots:  # the materialized bytes are what once computed on this device
        stored = np.frombuffer(data, "<f4", slot["size"] // 4, slot["offset"])
        value = computed[slot["variable"]]
        assert np.array_equal(stored.view(np.uint32), value.ravel().view(np.uint32)), slot["variable"]
        use = once.weights[f"{slot['variable']}/value"]
        want = use.reference(runtime.weights[use.param]).ravel()
        if _exact(runtime.hpk, use.param):  # and, for the exact schemes, the numpy runtime's weights
            assert np.array_equal(stored.view(np.uint32), want.view(np.uint32)), slot["variable"]


def test_materialized_hashed_model_is_the_expanded_model(workdir: Path) -> None:
    """Same weights, same graph: byte for byte the expanded model's outputs and about its size."""
    path, _, shape = _case("hashed", "lenet5", str(workdir))
    once = build_tflite(path, "once", materializable=True)
    data, expanded = materialize(once.data), _export(path, "expanded")
    x = _inputs(shape, 2, 9)
    got = make_interpreter(data).get_signature_runner(SERVING)(**{once.input_name: x})[once.output_name]
    want = make_interpreter(expanded.data).get_signature_runner(SERVING)(**{once.input_name: x})
    np.testing.assert_array_equal(got, want[once.output_name])
    assert 0.9 < len(data) / len(expanded.data) < 1.1


def test_materializable_costs_little_and_is_deterministic(workdir: Path) -> None:
    path, _, _ = _case("fresh", "resnet20", str(workdir))
    plain = build_tflite(path, "once", materializable=False).data
    first = build_tflite(path, "once", materializable=True).data
    assert first == build_tflite(path, "once", materializable=True).data
    nodes = len(load(path).hpk.nodes)
    assert len(first) - len(plain) <= 4096 + 512 * nodes, (len(first) - len(plain), nodes)


def test_materializable_needs_once_mode(tmp_path: Path, workdir: Path) -> None:
    path, _, _ = _case("hashed", "mlp", str(workdir))
    with pytest.raises(ValueError, match="once weights mode"):
        build_tflite(path, "inline", materializable=True)
    result = CliRunner().invoke(
        main, ["export", str(path), "--format", "onnx", "--materializable", "-o", str(tmp_path / "m.onnx")]
    )
    assert result.exit_code == 2 and "--materializable applies to --format tflite" in result.output
    assert not (tmp_path / "m.onnx").exists()
    out = tmp_path / "m.tflite"
    result = CliRunner().invoke(
        main, ["export", str(path), "--format", "tflite", "--materializable", "-o", str(out), "--json"]
    )
    assert result.exit_code == 0 and json.loads(result.output)["materializable"] is True
    assert materialize(out.read_bytes())  # the CLI's file materializes


def test_slots_that_overrun_the_weights_are_rejected_before_allocating(workdir: Path) -> None:
    """A hostile slot table cannot make materialize() allocate more than template + weights."""
    import flatbuffers

    from hashpack.exporter.tflite.materialize import TEMPLATE_METADATA
    from hashpack.exporter.tflite.schema import schema

    path, _, _ = _case("hashed", "mlp", str(workdir))
    once = build_tflite(path, "once", materializable=True).data
    model = schema.ModelT.InitFromPackedBuf(once, 0)
    names = {entry.name.decode(): entry.buffer for entry in model.metadata}
    assert TEMPLATE_METADATA in names
    slots = json.loads(bytes(model.buffers[names[SLOTS_METADATA]].data))
    for lie in ({"offset": 2**40}, {"size": 2**33}, {"offset": 0}, {"variable": "nope"}):
        bad = [dict(slots[0], **lie), *slots[1:]]
        model.buffers[names[SLOTS_METADATA]].data = list(json.dumps(bad).encode())
        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), b"TFL3")
        with pytest.raises(ValueError, match="slot"):
            materialize(bytes(builder.Output()))


def test_damaged_files_give_value_error_only(workdir: Path) -> None:
    """read_metadata (what materialize() parses itself) on truncated and bit-flipped files."""
    import random

    path, _, _ = _case("hashed", "lenet5", str(workdir))
    once = build_tflite(path, "once", materializable=True).data
    rng = random.Random(0)
    rejected = 0
    for case in range(600):
        damaged = bytearray(once[: rng.randrange(len(once))] if case % 3 == 0 else once)
        if case % 3:
            for _ in range(rng.choice([1, 4, 16])):
                damaged[rng.randrange(len(damaged))] ^= 1 << rng.randrange(8)
        try:
            read_metadata(bytes(damaged))
        except ValueError as exc:
            assert str(exc).startswith("not a valid .tflite"), exc
            rejected += 1
    assert rejected >= 150  # every truncation and many flips


@pytest.mark.parametrize(("scheme", "arch"), CASES)
def test_materialize_from_hpk_fills_the_template_without_litert(
    scheme: str, arch: str, workdir: Path
) -> None:
    """The slot recipes rebuild materialize()'s bytes from the .hpk's decoded params (exact schemes)."""
    path, _, shape = _case(scheme, arch, str(workdir))
    runtime = load(path)
    once = build_tflite(path, "once")
    if SLOTS_METADATA not in read_metadata(once.data):
        return  # nothing decompressed (dense): no template
    fast = materialize_from_hpk(once.data, runtime.weights)
    if all(_exact(runtime.hpk, use.param) for use in once.weights.values()):
        assert fast == materialize(once.data)  # bit for bit, BatchNorm folds included
    x = _inputs(shape, 2, 5)
    runner = make_interpreter(fast).get_signature_runner(SERVING)
    _assert_close(runner(**{once.input_name: x})[once.output_name], runtime.run(x), "from .hpk vs numpy")


def test_materialize_from_hpk_refuses_bad_recipes(workdir: Path) -> None:
    path, _, _ = _case("hashed", "resnet20", str(workdir))
    weights = load(path).weights
    once = build_tflite(path, "once").data
    with pytest.raises(ValueError, match="no recipe"):
        materialize_from_hpk(once, {})
    plain = build_tflite(path, "once", materializable=False).data
    with pytest.raises(ValueError, match="no hashpack materialize template"):
        materialize_from_hpk(plain, weights)
    slots = json.loads(read_metadata(once)[SLOTS_METADATA])
    # ResNet-20's BatchNorms are folded into conv weights: the bit-for-bit test above covers them
    assert any(s["recipe"]["scale"] is not None and s["recipe"]["perm"] is not None for s in slots)
    bad = dict(weights)
    first = slots[0]["recipe"]["param"]
    bad[first] = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match=r"bad recipe|bytes, its slot has|fit"):
        materialize_from_hpk(once, bad)

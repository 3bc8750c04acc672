"""The app path of ``--weights external``: hashpack-java decodes the .hpk, ONNX Runtime gets the arrays.

What the Android app does (android_demo/.../Engines.kt, OnnxEngine), minus Kotlin: Java's
``OnnxWeights.initializers`` (run through ``org.hashpack.DumpOnnxWeights``, which writes each array
as raw little-endian float32) produces every initializer of the external export; Python's
onnxruntime takes them with ``add_external_initializers``. The outputs must be the expanded export's
and the numpy runtime's, and the weights the numpy runtime's and ``decoded_session``'s, bit for bit
where FORMAT.md §4 makes them exact. A missing JDK fails (java_runner raises), it is not skipped.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from java_fixtures import _model_cases, write_model
from java_runner import java_classes
from onnx import TensorProto

from hashpack.exporter.onnx import export_onnx
from hashpack.exporter.onnx.external import decode_weights
from hashpack.exporter.onnx.external_weights import MAPPING_KEY, external_session, read_mapping
from hashpack.runtime import load, read_hpk
from hashpack.runtime.schemes import decode_param

# hashed + dense params with BatchNorm, float16 and int8 spaces, the three other schemes, and a
# transformer whose hashed embedding table Java regenerates row by row (decoded whole here)
CASES = ["rescnn", "mlp_fp16", "lenet5_int8", "lenet5_fresh", "mlp_funhash", "lenet5_fsnet", "tx_text"]
EXACT_SCHEMES = {"dense", "hashed"}  # FORMAT.md §4: bit-exact decode; the others round within 1e-5


def _java_weights(hpk: Path, onnx_path: Path, out: Path) -> dict[str, np.ndarray] | str:
    """Java's initializers for (hpk, onnx), or its one-line error."""
    out.mkdir(exist_ok=True)
    command = ["java", "-XX:+UseSerialGC", "-cp", str(java_classes()), "org.hashpack.DumpOnnxWeights"]
    result = subprocess.run(
        [*command, str(hpk), str(onnx_path), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    if result.returncode == 1:
        return report["error"]
    return {
        item["name"]: np.fromfile(out / item["file"], dtype="<f4").reshape(item["shape"])
        for item in report["initializers"]
    }


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("external")
    cases = {name: (make, shape, options) for name, make, shape, options in _model_cases()}
    for name in CASES:
        make, shape, options = cases[name]
        write_model(out, name, make, shape, options)
        for mode in ("external", "expanded", "compact"):
            export_onnx(out / f"{name}.hpk", out / f"{name}.{mode}.onnx", weights=mode)
    return {"dir": out}


def _input(hpk_path: Path) -> np.ndarray:
    hpk = read_hpk(hpk_path)
    shape = (3, *hpk.input.shape[1:])
    rng = np.random.default_rng(0)
    if hpk.input.dtype == "int32":
        return rng.integers(0, 300, shape).astype(np.int32)
    return rng.standard_normal(shape).astype(np.float32)


def _run(session: ort.InferenceSession, x: np.ndarray) -> np.ndarray:
    return session.run(None, {session.get_inputs()[0].name: x})[0]


@pytest.mark.parametrize("name", CASES)
def test_java_initializers_run_the_external_export_like_expanded(
    exported: dict[str, Path], name: str
) -> None:
    out = exported["dir"]
    hpk_path, onnx_path = out / f"{name}.hpk", out / f"{name}.external.onnx"
    hpk = read_hpk(hpk_path)
    weights = _java_weights(hpk_path, onnx_path, out / f"{name}.java")
    assert isinstance(weights, dict), weights

    # the mapping covers every external initializer of the graph, and every param of the .hpk once
    model = onnx.load(str(onnx_path), load_external_data=False)
    mapping = read_mapping(model, hpk, str(onnx_path))
    external = {t.name for t in model.graph.initializer if t.data_location == TensorProto.EXTERNAL}
    assert set(weights) == set(mapping) == external
    assert sorted(mapping.values()) == sorted(hpk.params)
    # no weight values in the graph: graph + .hpk ≈ .hpk
    assert all(
        t.data_location == TensorProto.EXTERNAL or t.ByteSize() < 4096 for t in model.graph.initializer
    )

    # Java's weights are the numpy runtime's (bit for bit where the spec makes them exact) and
    # decoded_session's for every HashedWeight call of the compact export
    decoded = decode_weights(onnx.load(str(out / f"{name}.compact.onnx"))).weights
    for initializer, param in mapping.items():
        reference = np.asarray(decode_param(hpk, param), dtype=np.float32).reshape(hpk.params[param].shape)
        java = weights[initializer]
        assert java.shape == reference.shape, initializer
        if hpk.params[param].scheme in EXACT_SCHEMES:
            assert np.array_equal(java.view(np.uint32), reference.view(np.uint32)), initializer
        else:
            np.testing.assert_allclose(java, reference, rtol=1e-5, atol=1e-6, err_msg=initializer)
        if initializer in decoded:
            assert np.array_equal(java.view(np.uint32), decoded[initializer].view(np.uint32)), initializer
    hashed = {p.name for p in hpk.params.values() if p.scheme == "hashed"}
    assert {mapping[n] for n in decoded} <= hashed and (decoded or not hashed or name == "tx_text")

    # ONNX Runtime on the external export with Java's arrays = the expanded export = numpy
    options = ort.SessionOptions()
    names = list(weights)
    options.add_external_initializers(names, [ort.OrtValue.ortvalue_from_numpy(weights[n]) for n in names])
    app = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    expanded = ort.InferenceSession(str(out / f"{name}.expanded.onnx"), providers=["CPUExecutionProvider"])
    x = _input(hpk_path)
    got, want = _run(app, x), _run(expanded, x)
    if all(p.scheme in EXACT_SCHEMES for p in hpk.params.values()):
        assert np.array_equal(got, want)  # the same graph and the same weights
    else:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got, load(hpk_path).run(x), rtol=1e-4, atol=1e-4)
    # the Python counterpart (numpy decodes) gives the expanded export's outputs exactly
    assert np.array_equal(_run(external_session(onnx_path, hpk_path), x), want)


def test_java_refuses_an_export_of_another_hpk(exported: dict[str, Path]) -> None:
    out = exported["dir"]
    error = _java_weights(out / "lenet5_int8.hpk", out / "rescnn.external.onnx", out / "mismatch.java")
    assert error == (
        f"{out / 'rescnn.external.onnx'}: was exported from another .hpk than {out / 'lenet5_int8.hpk'} "
        "(hpk_sha256 differs): export this .hpk with --weights external"
    )
    with pytest.raises(ValueError, match=r"another \.hpk"):
        external_session(out / "rescnn.external.onnx", out / "lenet5_int8.hpk")


def test_java_gives_no_initializers_for_a_file_ort_runs_alone(exported: dict[str, Path]) -> None:
    out = exported["dir"]
    assert _java_weights(out / "rescnn.hpk", out / "rescnn.compact.onnx", out / "compact.java") == {}


def _with_mapping(model: onnx.ModelProto, edit: dict) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for prop in copy.metadata_props:
        if prop.key == MAPPING_KEY:
            document = json.loads(prop.value)
            document.update(edit)
            prop.value = json.dumps(document)
    return copy


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"version": True}, "not a version-1 mapping"),
        ({"hpk_sha256": "0" * 64}, r"another \.hpk"),
        ({"initializers": {}}, "initializers is not a list"),
        ({"initializers": [{"name": "w", "param": "nope", "shape": [1]}]}, "names no param"),
        ({"initializers": [{"name": "", "param": "fc1.weight", "shape": [1]}]}, "non-empty 'name'"),
    ],
)
def test_read_mapping_refuses_a_bad_mapping(exported: dict[str, Path], edit: dict, message: str) -> None:
    out = exported["dir"]
    model = onnx.load(str(out / "rescnn.external.onnx"), load_external_data=False)
    with pytest.raises(ValueError, match=message):
        read_mapping(_with_mapping(model, edit), read_hpk(out / "rescnn.hpk"), "x.onnx")


def test_read_mapping_refuses_a_wrong_shape_and_a_repeated_param(exported: dict[str, Path]) -> None:
    out = exported["dir"]
    hpk = read_hpk(out / "rescnn.hpk")
    model = onnx.load(str(out / "rescnn.external.onnx"), load_external_data=False)
    entries = json.loads(next(p.value for p in model.metadata_props if p.key == MAPPING_KEY))["initializers"]
    first = entries[0]
    wrong = [{**first, "shape": [float(d) for d in first["shape"]]}]
    with pytest.raises(ValueError, match="shape"):
        read_mapping(_with_mapping(model, {"initializers": wrong}), hpk)
    twice = [first, {**first, "name": first["name"] + "_again"}]
    with pytest.raises(ValueError, match="listed twice"):
        read_mapping(_with_mapping(model, {"initializers": twice}), hpk)


def test_cli_writes_the_external_export_deterministically(exported: dict[str, Path], tmp_path: Path) -> None:
    from click.testing import CliRunner

    from hashpack.cli import main

    hpk = exported["dir"] / "rescnn.hpk"
    outputs = []
    for name in ("a.onnx", "b.onnx"):
        result = CliRunner().invoke(
            main,
            [
                "export",
                str(hpk),
                "--format",
                "onnx",
                "--weights",
                "external",
                "-o",
                str(tmp_path / name),
                "--json",
            ],
        )
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["weights"] == "external"
        outputs.append((tmp_path / name).read_bytes())
    assert outputs[0] == outputs[1] == (exported["dir"] / "rescnn.external.onnx").read_bytes()
    assert len(outputs[0]) < hpk.stat().st_size / 4  # the graph only: the weights stay in the .hpk
    refused = CliRunner().invoke(
        main,
        [
            "export",
            str(hpk),
            "--format",
            "onnx",
            "--weights",
            "external",
            "--save-optimized",
            str(tmp_path / "f.onnx"),
        ],
    )
    assert refused.exit_code == 2 and "not with --weights external" in refused.output


def test_a_param_named_like_a_graph_value_is_mapped_under_its_new_name(
    exported: dict[str, Path], tmp_path: Path
) -> None:
    """The output value takes a param's name: the initializer becomes ``name~1``, the mapping says whose."""
    import dataclasses

    from hashpack.runtime import write_hpk

    hpk = read_hpk(exported["dir"] / "lenet5_int8.hpk")
    clash, last = list(hpk.params)[2], hpk.nodes[-1]
    nodes = [dataclasses.replace(n, outputs=(clash,)) if n is last else n for n in hpk.nodes]
    output = dataclasses.replace(hpk.output, name=clash)
    write_hpk(dataclasses.replace(hpk, nodes=nodes, outputs=[output], sha256=""), tmp_path / "clash.hpk")
    export_onnx(tmp_path / "clash.hpk", tmp_path / "clash.onnx", weights="external")
    clashed = read_hpk(tmp_path / "clash.hpk")
    mapping = read_mapping(onnx.load(str(tmp_path / "clash.onnx"), load_external_data=False), clashed)
    assert mapping[f"{clash}~1"] == clash and clash not in mapping
    weights = _java_weights(tmp_path / "clash.hpk", tmp_path / "clash.onnx", tmp_path / "java")
    assert isinstance(weights, dict) and set(weights) == set(mapping)
    expected = np.asarray(decode_param(clashed, clash), dtype=np.float32).reshape(weights[f"{clash}~1"].shape)
    assert np.array_equal(weights[f"{clash}~1"].view(np.uint32), expected.view(np.uint32))
    x = _input(tmp_path / "clash.hpk")
    np.testing.assert_allclose(
        _run(external_session(tmp_path / "clash.onnx", tmp_path / "clash.hpk"), x),
        load(tmp_path / "clash.hpk").run(x),
        rtol=1e-4,
        atol=1e-4,
    )

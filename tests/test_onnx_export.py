"""``export_onnx``: every scheme × weights mode × architecture runs in stock ONNX Runtime.

What must hold (issue 4):
- every file passes the full ONNX checker and strict shape inference, opset ≥ 18, with named
  graph input/output whose batch dimension is symbolic (batch 1 and batch 5 both run);
- ONNX Runtime outputs match the numpy runtime and PyTorch within TOLERANCE;
- the weights ORT decompresses (folds) are bit-identical to the numpy runtime's ``Model.weights``;
- compact and inline files are ≤ 1.05 × the .hpk size + 16 KiB; expanded is about the dense size;
- after folding, compact and inline graphs are the expanded graph (same ops, same weights), so
  inference costs the same;
- exports are byte-identical across runs and processes; a corrupt .hpk raises ``HpkFormatError``
  and an unsupported op or scheme an error naming it, with nothing left behind.

Tolerance: ORT pre-packs MatMul/Conv weights and fuses BatchNorm into convolutions, so sums are
reordered: outputs agree within atol = rtol = 1e-4 (observed ≤ 1e-7 on these models).
"""

from __future__ import annotations

import copy
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

import hashpack
from hashpack.exporter.onnx import WEIGHT_MODES, build_onnx, export_onnx, save_optimized
from hashpack.exporter.onnx import functions as hf
from hashpack.models import MobileNetTiny, ResNet20, build_model
from hashpack.nn.quantize import quantize
from hashpack.runtime import HpkFile, HpkFormatError, Model, parse_hpk, read_hpk, serialize_hpk

TOLERANCE = {"atol": 1e-4, "rtol": 1e-4}
SIZE_FACTOR, SIZE_SLACK = 1.05, 16 * 1024
SHAPES = {"mlp": (1, 8, 8), "lenet5": (1, 12, 12), "resnet20": (3, 16, 16), "mobilenet": (3, 16, 16)}
# variant -> (compress method and options, or None for the dense model; quantize() mode)
VARIANTS = {
    "dense": (None, "none"),
    "hashed": (("hashed", {}), "none"),
    "hashed-fp16": (("hashed", {}), "fp16"),
    "hashed-int8": (("hashed", {}), "int8"),
    "fresh": (("fresh", {}), "none"),
    "funhash": (("funhash", {}), "none"),
    "funhash-2hop-int8": (("funhash", {"hops": 2, "dual_space": True}), "int8"),
    "fsnet-fp16": (("fsnet", {}), "fp16"),
}
# Schemes whose decompression has float arithmetic (FreshNets' inverse DCT, FunHashNN's g): their
# weights match the numpy runtime within WEIGHT_TOLERANCE; every other scheme's are bit-identical.
FLOAT_SCHEMES = {"fresh", "funhash"}
WEIGHT_TOLERANCE = {"atol": 1e-6, "rtol": 1e-5}
FOLDED = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
STANDARD_DOMAINS = {"", "ai.onnx"}
COMPACT_OPS = {"HashedWeight", "FreshWeight", "FunHashWeight", "FilterSummaryWeight"}


@dataclasses.dataclass
class Case:
    """One packed model: its .hpk, the torch model it came from and reference outputs."""

    path: Path
    hpk: HpkFile
    runtime: Model
    x: np.ndarray
    torch_out: np.ndarray
    runtime_out: np.ndarray


def _torch_model(arch: str) -> torch.nn.Module:
    torch.manual_seed(0)
    shape = SHAPES[arch]
    if arch == "resnet20":
        model = ResNet20(shape, 10, width=8, blocks=1)
    elif arch == "mobilenet":
        model = MobileNetTiny(shape, 10, width=8)
    else:
        model = build_model(arch, shape, 10)
    with torch.no_grad():  # non-trivial BatchNorm statistics
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return model.eval()


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Case]:
    """Every architecture × variant, packed once for the module (golden=0: the strictest size bound)."""
    root = tmp_path_factory.mktemp("hpk")
    result = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # these models are tiny: threads only add contention
    try:
        _pack_cases(root, result)
    finally:
        torch.set_num_threads(threads)
    return result


def _pack_cases(root: Path, result: dict[tuple[str, str], Case]) -> None:
    for arch, shape in SHAPES.items():
        x = np.random.default_rng(1).standard_normal((5, *shape)).astype(np.float32)
        dense = _torch_model(arch)
        for variant, (method, quantization) in VARIANTS.items():
            model = dense
            if method is not None:
                model = hashpack.compress(copy.deepcopy(dense), method[0], compression=1 / 8, **method[1])
                quantize(model, quantization)  # rounds the buckets in torch too: outputs stay comparable
            path = root / f"{arch}-{variant}.hpk"
            hashpack.pack(model, torch.from_numpy(x), path, golden=0)
            hpk = read_hpk(path)
            runtime = Model(hpk)
            with torch.no_grad():
                torch_out = model(torch.from_numpy(x)).numpy()
            result[arch, variant] = Case(path, hpk, runtime, x, torch_out, runtime.run(x))


def _session(model: onnx.ModelProto | Path, optimized: Path | None = None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = FOLDED
    options.intra_op_num_threads = 1  # tiny models: a thread pool only adds contention
    options.log_severity_level = 3  # "hardware specific" warning when saving an ENABLE_ALL model
    if optimized is not None:
        options.optimized_model_filepath = str(optimized)
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def _with_weight_outputs(model: onnx.ModelProto, case: Case, names: list[str]) -> onnx.ModelProto:
    """A copy of ``model`` whose outputs also include the named params (their tensor names)."""
    model = copy.deepcopy(model)
    for name in names:
        shape = list(case.hpk.params[name].shape)
        model.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
    return model


def _used_params(hpk: HpkFile) -> list[str]:
    return list(dict.fromkeys(p for node in hpk.nodes for p in node.params.values()))


def _assert_bits_equal(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    assert actual.dtype == np.float32 and actual.shape == expected.shape, what
    assert np.array_equal(actual.view(np.uint32), expected.view(np.uint32)), f"{what} differs in bits"


# ------------------------------------------------------------------------ scheme × mode × arch


@pytest.mark.parametrize("mode", WEIGHT_MODES)
@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("arch", list(SHAPES))
def test_export_runs_in_onnxruntime(cases, arch: str, variant: str, mode: str, tmp_path: Path) -> None:
    case = cases[arch, variant]
    out = tmp_path / "model.onnx"
    returned = export_onnx(case.path, out, weights=mode)
    model = onnx.load(out)
    assert model == returned

    # Valid ONNX, opset >= 18, named input/output with a symbolic batch dimension.
    onnx.checker.check_model(model, full_check=True)  # full_check: strict shape inference too
    assert {o.domain: o.version for o in model.opset_import}[""] >= 18
    (graph_in,), (graph_out,) = model.graph.input, model.graph.output
    assert (graph_in.name, graph_out.name) == (case.hpk.input.name, case.hpk.output.name)
    for value, meta in ((graph_in, case.hpk.input), (graph_out, case.hpk.output)):
        dims = value.type.tensor_type.shape.dim
        assert dims[0].dim_param == "batch" and not dims[0].HasField("dim_value")
        assert [d.dim_value for d in dims[1:]] == list(meta.shape[1:])

    # What each mode promises about the graph's content.
    hashed = [p for p in _used_params(case.hpk) if case.hpk.params[p].scheme != "dense"]
    domains = {node.domain for node in model.graph.node}
    initializers = {t.name for t in model.graph.initializer}
    if mode == "compact":
        calls = [n for n in model.graph.node if n.domain == hf.DOMAIN]
        assert sorted(n.output[0] for n in calls) == sorted(hashed)
        assert {n.op_type for n in calls} <= COMPACT_OPS
        assert not initializers & set(hashed)  # only buckets are stored
        assert bool(model.functions) == bool(hashed)
    else:
        assert domains <= STANDARD_DOMAINS and not model.functions
        stored = [p for p in hashed if p in initializers]
        assert stored == (hashed if mode == "expanded" else [])

    # One session (the exported graph plus its weights as extra outputs; one keeps the suite fast):
    # outputs for batch 5 and batch 1 against the numpy runtime and torch, and the folded weights.
    used = _used_params(case.hpk)
    session = _session(_with_weight_outputs(model, case, used))
    for batch in (5, 1):
        y, *weights = session.run(None, {case.hpk.input.name: case.x[:batch]})
        np.testing.assert_allclose(y, case.runtime_out[:batch], **TOLERANCE)
        np.testing.assert_allclose(y, case.torch_out[:batch], **TOLERANCE)
    for name, weight in zip(used, weights, strict=True):
        if case.hpk.params[name].scheme in FLOAT_SCHEMES:
            np.testing.assert_allclose(weight, case.runtime.weights[name], **WEIGHT_TOLERANCE, err_msg=name)
        else:
            _assert_bits_equal(weight, case.runtime.weights[name], name)


@pytest.mark.parametrize("arch", list(SHAPES))
def test_size_bounds(cases, arch: str) -> None:
    for variant in VARIANTS:
        case = cases[arch, variant]
        hpk_size = case.path.stat().st_size
        sizes = {mode: len(build_onnx(case.hpk, mode).SerializeToString()) for mode in WEIGHT_MODES}
        for mode in ("compact", "inline"):
            assert sizes[mode] <= SIZE_FACTOR * hpk_size + SIZE_SLACK, (variant, mode, sizes, hpk_size)
        dense_bytes = 4 * sum(case.hpk.params[p].numel for p in _used_params(case.hpk))
        assert dense_bytes <= sizes["expanded"] <= 1.02 * dense_bytes + SIZE_SLACK, (variant, sizes)


@pytest.mark.parametrize("variant", ["hashed-int8", "fresh", "funhash-2hop-int8", "fsnet-fp16"])
@pytest.mark.parametrize("arch", list(SHAPES))
def test_folded_graphs_equal_expanded(cases, arch: str, variant: str, tmp_path: Path) -> None:
    """After session creation compact/inline are the expanded graph: same ops (so inference costs
    the same), and for integer-only schemes the same weight bits."""
    case = cases[arch, variant]
    exact = not any(case.hpk.params[p].scheme in FLOAT_SCHEMES for p in _used_params(case.hpk))
    folded = {}
    for mode in WEIGHT_MODES:
        path = tmp_path / f"{mode}.onnx"
        _session(build_onnx(case.hpk, mode), optimized=path)
        model = onnx.load(path)
        nodes = [(n.op_type, n.domain, len(n.input)) for n in model.graph.node]
        weights = sorted(
            (tuple(t.dims), numpy_helper.to_array(t).tobytes())
            for t in model.graph.initializer
            if t.data_type == TensorProto.FLOAT and len(t.dims) >= 1
        )
        folded[mode] = (nodes, weights if exact else [dims for dims, _ in weights])
    assert folded["compact"] == folded["expanded"]
    assert folded["inline"] == folded["expanded"]
    assert all(op not in {"BitwiseXor", "Mod", "Range", hf.HASHED_WEIGHT} for op, *_ in folded["compact"][0])


# ------------------------------------------------------------------------------ save_optimized


@pytest.mark.parametrize("mode", ["compact", "inline"])
def test_save_optimized(cases, mode: str, tmp_path: Path) -> None:
    case = cases["resnet20", "hashed-fp16"]
    exported, optimized = tmp_path / "model.onnx", tmp_path / "model.folded.onnx"
    export_onnx(case.path, exported, weights=mode)
    returned = save_optimized(exported, optimized)
    model = onnx.load(optimized)
    assert model == returned
    onnx.checker.check_model(model, full_check=True)
    assert {n.domain for n in model.graph.node} <= STANDARD_DOMAINS
    assert not model.functions and {o.domain for o in model.opset_import} == {""}
    assert sorted(os.listdir(tmp_path)) == ["model.folded.onnx", "model.onnx"]  # no scratch left
    expanded = len(build_onnx(case.hpk, "expanded").SerializeToString())
    assert optimized.stat().st_size <= 1.05 * expanded + SIZE_SLACK
    (y,) = _session(optimized).run(None, {case.hpk.input.name: case.x})
    np.testing.assert_allclose(y, case.runtime_out, **TOLERANCE)
    save_optimized(exported, tmp_path / "again.onnx")
    assert (tmp_path / "again.onnx").read_bytes() == optimized.read_bytes()


# -------------------------------------------------------------------------------- determinism


def test_exports_are_byte_identical_across_runs_and_processes(cases, tmp_path: Path) -> None:
    case = cases["lenet5", "hashed-int8"]
    for mode in WEIGHT_MODES:
        first, second = tmp_path / f"{mode}-1.onnx", tmp_path / f"{mode}-2.onnx"
        export_onnx(case.path, first, weights=mode)
        export_onnx(read_hpk(case.path), second, weights=mode)
        assert first.read_bytes() == second.read_bytes(), mode
    other = tmp_path / "subprocess.onnx"
    code = "import sys; from hashpack.exporter.onnx import export_onnx; export_onnx(sys.argv[1], sys.argv[2])"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", code, str(case.path), str(other)], check=True, env=env)
    assert other.read_bytes() == (tmp_path / "compact-1.onnx").read_bytes()


# ------------------------------------------------------------------------------------ bad input


def _corruptions(blob: bytes) -> dict[str, bytes]:
    flipped = bytearray(blob)
    flipped[-3] ^= 0x40  # a data byte: the checksum no longer matches
    return {
        "truncated": blob[: len(blob) // 2],
        "flipped": bytes(flipped),
        "empty": b"",
        "junk": b"\x00" * 64,
    }


@pytest.mark.parametrize("mode", WEIGHT_MODES)
def test_corrupt_hpk_raises_format_error_and_writes_nothing(cases, mode: str, tmp_path: Path) -> None:
    blob = cases["mlp", "hashed"].path.read_bytes()
    for name, corrupt in _corruptions(blob).items():
        source, target = tmp_path / f"{name}.hpk", tmp_path / f"{name}.onnx"
        source.write_bytes(corrupt)
        with pytest.raises(HpkFormatError, match=name + r"\.hpk"):
            export_onnx(source, target, weights=mode)
        assert not target.exists()
    assert all(p.suffix == ".hpk" for p in tmp_path.iterdir())  # no temporary files either
    with pytest.raises(HpkFormatError, match="cannot be read"):
        export_onnx(tmp_path / "missing.hpk", tmp_path / "missing.onnx")


def test_failed_export_keeps_an_existing_file(cases, tmp_path: Path) -> None:
    target = tmp_path / "model.onnx"
    target.write_bytes(b"previous")
    (tmp_path / "bad.hpk").write_bytes(b"\x00" * 64)
    with pytest.raises(HpkFormatError):
        export_onnx(tmp_path / "bad.hpk", target)
    assert target.read_bytes() == b"previous"


@pytest.mark.parametrize("mode", WEIGHT_MODES)
def test_unsupported_op_names_the_op(cases, mode: str, tmp_path: Path) -> None:
    hpk = cases["mlp", "hashed"].hpk
    nodes = [dataclasses.replace(n, op="Mish") if n.op == "Relu" else n for n in hpk.nodes]
    bad = dataclasses.replace(hpk, nodes=nodes, source="relu-as-mish.hpk")
    relu = next(n.name for n in hpk.nodes if n.op == "Relu")
    with pytest.raises(
        HpkFormatError, match=rf"relu-as-mish\.hpk: node '{relu}': op 'Mish' is not supported"
    ):
        export_onnx(bad, tmp_path / "model.onnx", weights=mode)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("mode", WEIGHT_MODES)
def test_unsupported_scheme_names_the_scheme(cases, mode: str, tmp_path: Path) -> None:
    hpk = cases["mlp", "hashed"].hpk
    name = next(p for p in hpk.params.values() if p.scheme == "hashed").name
    params = {**hpk.params, name: dataclasses.replace(hpk.params[name], scheme="mystery")}
    with pytest.raises(
        HpkFormatError, match=rf"param '{name}': compression scheme 'mystery' is not supported"
    ):
        export_onnx(dataclasses.replace(hpk, params=params), tmp_path / "model.onnx", weights=mode)
    assert not list(tmp_path.iterdir())


def test_inconsistent_shapes_are_a_format_error(cases, tmp_path: Path) -> None:
    """An HpkFile built in memory skips the reader: shapes that disagree fail the export's checker."""
    hpk = cases["mlp", "dense"].hpk
    first = next(n for n in hpk.nodes if n.op == "Linear")
    nodes = [dataclasses.replace(n, inputs=(hpk.input.name,)) if n is first else n for n in hpk.nodes]
    with pytest.raises(HpkFormatError, match="invalid"):
        export_onnx(dataclasses.replace(hpk, nodes=nodes), tmp_path / "model.onnx")
    assert not list(tmp_path.iterdir())


def test_bad_arguments(cases, tmp_path: Path) -> None:
    path = cases["mlp", "hashed"].path
    with pytest.raises(ValueError, match="weights mode"):
        export_onnx(path, tmp_path / "m.onnx", weights="dense")
    with pytest.raises(ValueError, match="opset 17"):
        export_onnx(path, tmp_path / "m.onnx", opset=17)
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------------------------- details


@pytest.mark.parametrize("opset", [21, 23])
def test_newer_opsets(cases, opset: int) -> None:
    case = cases["mobilenet", "hashed-int8"]
    for mode in WEIGHT_MODES:
        model = build_onnx(case.hpk, mode, opset=opset)
        assert {o.domain: o.version for o in model.opset_import}[""] == opset
        (y,) = _session(model).run(None, {case.hpk.input.name: case.x})
        np.testing.assert_allclose(y, case.runtime_out, **TOLERANCE)


@pytest.mark.parametrize("variant", ["hashed-int8", "fresh", "funhash-2hop-int8", "fsnet-fp16"])
def test_reference_evaluator_agrees(cases, variant: str) -> None:
    """The graphs mean the model by ONNX semantics, not by an ONNX Runtime accident."""
    from onnx.reference import ReferenceEvaluator

    case = cases["lenet5", variant]
    for mode in WEIGHT_MODES:
        (y,) = ReferenceEvaluator(build_onnx(case.hpk, mode)).run(None, {case.hpk.input.name: case.x})
        np.testing.assert_allclose(y, case.runtime_out, **TOLERANCE)


def test_generated_names_never_collide_with_hpk_names(cases) -> None:
    """.hpk value names are kept verbatim; the exporter's own names step around them."""
    hpk = cases["lenet5", "hashed"].hpk
    taken = [*hpk.params, *(f"spaces/{s}" for s in hpk.spaces), "hp32/", "hp32/index_0"]
    renames = {node.outputs[0]: taken[i % len(taken)] for i, node in enumerate(hpk.nodes)}
    nodes = [
        dataclasses.replace(
            n, outputs=(renames[n.outputs[0]],), inputs=tuple(renames.get(v, v) for v in n.inputs)
        )
        for n in hpk.nodes
    ]
    outputs = [dataclasses.replace(hpk.output, name=renames[hpk.output.name])]
    renamed = dataclasses.replace(hpk, nodes=nodes, outputs=outputs)
    assert len(set(renames.values())) == len(renames)
    expected = Model(renamed).run(cases["lenet5", "hashed"].x)
    for mode in WEIGHT_MODES:
        model = build_onnx(renamed, mode)
        (y,) = _session(model).run(None, {hpk.input.name: cases["lenet5", "hashed"].x})
        np.testing.assert_allclose(y, expected, **TOLERANCE)


# ----------------------------------------------------------------------------- scheme details


def _rewrite_params(case: Case, rewrite) -> Case:
    """A case whose params are ``rewrite(param) -> Param | None`` (None: unchanged), re-validated."""
    params = {name: rewrite(p) or p for name, p in case.hpk.params.items()}
    hpk = parse_hpk(serialize_hpk(dataclasses.replace(case.hpk, params=params)), "rewritten.hpk")
    runtime = Model(hpk)
    return Case(case.path, hpk, runtime, case.x, case.torch_out, runtime.run(case.x))


def _check_against_runtime(case: Case) -> None:
    used = _used_params(case.hpk)
    for mode in WEIGHT_MODES:
        model = _with_weight_outputs(build_onnx(case.hpk, mode), case, used)
        y, *weights = _session(model).run(None, {case.hpk.input.name: case.x})
        np.testing.assert_allclose(y, case.runtime_out, **TOLERANCE)
        for name, weight in zip(used, weights, strict=True):
            if case.hpk.params[name].scheme in FLOAT_SCHEMES:
                np.testing.assert_allclose(weight, case.runtime.weights[name], **WEIGHT_TOLERANCE)
            else:
                _assert_bits_equal(weight, case.runtime.weights[name], f"{mode} {name}")


def test_fresh_band_without_buckets(cases) -> None:
    """A FreshNets band with no buckets gives zero coefficients (the batched pass reads a 0.0)."""

    def starve_middle_band(p):
        if p.scheme != "fresh" or len(p.spec["bands"]) < 3:
            return None
        bands = list(p.spec["bands"])
        bands[0] += bands[1]
        bands[1] = 0
        return dataclasses.replace(p, spec={**p.spec, "bands": bands})

    case = _rewrite_params(cases["lenet5", "fresh"], starve_middle_band)
    assert any(0 in p.spec.get("bands", []) for p in case.hpk.params.values())
    _check_against_runtime(case)


def test_funhash_identity_g_is_hashed(cases) -> None:
    """FunHashNN with H = 0 (g = identity, one hash, one hop) is HashedNets, exported as HashedWeight."""
    case = cases["mlp", "hashed-int8"]

    def as_funhash(p):
        if p.scheme != "hashed":
            return None
        spec = {"spaces": [p.spec["space"]], "seed": p.spec["seed"], "hashes": 1, "hops": 1, "hidden": 0}
        return dataclasses.replace(p, scheme="funhash", spec=spec)

    rewritten = _rewrite_params(case, as_funhash)
    _check_against_runtime(rewritten)
    compact = build_onnx(rewritten.hpk, "compact")
    assert {n.op_type for n in compact.graph.node if n.domain == hf.DOMAIN} == {hf.HASHED_WEIGHT}


@pytest.mark.parametrize("arch", ["lenet5", "mobilenet"])
def test_float_schemes_fetch_stage_is_bit_identical(cases, arch: str) -> None:
    """FreshNets coefficients and FunHashNN fetches (before the IDCT / g) are integer-exact: the
    inline form exposes them as tensors, compared with the numpy runtime's bit for bit."""
    from hashpack.runtime.hashing import SIGN_BIT, hash_range
    from hashpack.runtime.schemes import fresh, funhash

    for variant in ("fresh", "funhash-2hop-int8"):
        case = cases[arch, variant]
        model = build_onnx(case.hpk, "inline")
        expected = {}
        for name in _used_params(case.hpk):
            p = case.hpk.params[name]
            if p.scheme == "fresh":
                out, cin, kh, kw = p.shape
                sizes = np.asarray(p.spec["bands"])
                band = fresh.band_table(kh, kw, len(sizes))
                offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
                h = hash_range(0, p.numel, p.spec["seed"]).reshape(out * cin, kh * kw)
                live = sizes[band] > 0
                bucket = np.where(live, offsets[band] + h % np.maximum(sizes[band], 1).astype(np.uint32), 0)
                coefficients = np.where(live, case.hpk.space_values(p.spec["space"])[bucket], np.float32(0))
                expected[f"{name}/coefficients"] = np.where(
                    h & np.uint32(SIGN_BIT), -coefficients, coefficients
                )
            elif p.scheme == "funhash":
                plan = funhash._fetch_plan(p, case.hpk)
                expected[f"{name}/z"] = funhash._fetches(p, plan, 0, p.numel)
        assert expected, variant
        for name, array in expected.items():
            model.graph.output.append(
                helper.make_tensor_value_info(name, TensorProto.FLOAT, list(array.shape))
            )
        results = _session(model).run(list(expected), {case.hpk.input.name: case.x[:1]})
        for (name, array), got in zip(expected.items(), results, strict=True):
            _assert_bits_equal(got, array.astype(np.float32), name)


class _EveryOp(torch.nn.Module):
    """Every .hpk op of FORMAT.md §5 with non-default attributes (padding, dilation, strides)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(2, 4, 3, stride=2, padding=2, dilation=2)
        self.depthwise = torch.nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False)
        self.bn2d = torch.nn.BatchNorm2d(4)
        self.max_pool = torch.nn.MaxPool2d(3, stride=1, padding=1, dilation=1)
        self.avg_pool = torch.nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.avg_pool_pad = torch.nn.AvgPool2d(2, stride=1, padding=1, count_include_pad=True)
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(8 + 100, 6)
        self.bn1d = torch.nn.BatchNorm1d(6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.nn.functional.relu6(self.bn2d(self.conv(x)))
        a = a + torch.sigmoid(self.depthwise(a))
        b = torch.tanh(self.max_pool(a))
        c = torch.cat([self.pool(a), self.pool(b)], dim=1)  # [N, 8, 1, 1]
        d = self.avg_pool(self.avg_pool_pad(b))  # [N, 4, 5, 5]
        d = d.view(d.size(0), 2, 2, 25).flatten(2)  # Reshape, then Flatten(start_dim=2)
        h = torch.cat([torch.flatten(c, 1), d.reshape(d.size(0), -1)], dim=1)
        return torch.softmax(torch.relu(self.bn1d(self.fc(h))), dim=1)


@pytest.mark.parametrize("compressed", [False, True], ids=["dense", "hashed"])
def test_every_graph_op(compressed: bool, tmp_path: Path) -> None:
    torch.manual_seed(3)
    model = _EveryOp()
    with torch.no_grad():
        for bn in (model.bn2d, model.bn1d):
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
    if compressed:
        hashpack.compress(model, compression=1 / 4)
    model.eval()
    x = torch.randn(3, 2, 15, 15)
    hpk = hashpack.pack(model, x, tmp_path / "ops.hpk", golden=0)
    ops = {n.op for n in hpk.nodes}
    assert {"Conv2d", "BatchNorm", "Relu6", "Add", "Sigmoid", "Tanh", "MaxPool2d", "AvgPool2d"} <= ops
    assert {"GlobalAvgPool", "Concat", "Reshape", "Flatten", "Linear", "Relu", "Softmax"} <= ops
    with torch.no_grad():
        expected = model(x).numpy()
    runtime = Model(read_hpk(tmp_path / "ops.hpk")).run(x.numpy())
    for mode in WEIGHT_MODES:
        model_proto = export_onnx(tmp_path / "ops.hpk", tmp_path / f"{mode}.onnx", weights=mode)
        for batch in (3, 1):
            (y,) = _session(model_proto).run(None, {hpk.input.name: x.numpy()[:batch]})
            np.testing.assert_allclose(y, runtime[:batch], **TOLERANCE)
            np.testing.assert_allclose(y, expected[:batch], **TOLERANCE)

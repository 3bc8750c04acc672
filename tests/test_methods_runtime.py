"""Every method × quantization × {mlp, LeNet-5, ResNet-20-style}: the numpy runtime reproduces torch.

Quantized models are compared against torch running with the same dequantized bucket values
(``quantize`` rounds the spaces in place), so the tolerance is the same 1e-5 everywhere.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from models import DIGITS_SHAPE, build, single_thread  # noqa: F401 (autouse fixture)

import hashpack
from hashpack.nn.quantize import quantize
from hashpack.runtime import load, read_hpk

METHODS = {
    "hashed": {},
    "fresh": {},
    "funhash": {},
    "fsnet": {},
}
# The options (the paper's variants) on the two conv models, unquantized and int8.
VARIANTS = {
    "fresh-uniform": ("fresh", {"allocation": "uniform"}),
    "fresh-3bands": ("fresh", {"bands": 3, "alpha": 1.0, "beta": 3.0}),
    "funhash-dual-2hop": ("funhash", {"hashes": 3, "hops": 2, "dual_space": True, "hidden": 5}),
    "funhash-U2": ("funhash", {"hashes": 2, "hidden": 4}),
    "fsnet-fc-fs": ("fsnet", {"fc": "fs"}),  # the default is fc="hashed" (the paper's form)
}
TOLERANCE = 1e-5
_DTYPE_OF = {"none": "float32", "fp16": "float16", "int8": "int8"}


def _roundtrip(tmp_path, model_name: str, method: str, options: dict, mode: str):
    model = build(model_name)
    hashpack.compress(model, method, compression=1 / 8, seed=7, **options)
    quantize(model, mode)
    model.eval()
    x = torch.randn(6, *DIGITS_SHAPE, generator=torch.Generator().manual_seed(1))
    path = tmp_path / f"{model_name}-{method}-{mode}.hpk"
    hashpack.pack(model, x, path, golden=2)
    with torch.no_grad():
        expected = model(x).numpy()
    actual = load(path).run(x.numpy())
    return model, read_hpk(path), expected, actual


@pytest.mark.parametrize("mode", ["none", "fp16", "int8"])
@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("model_name", ["mlp", "lenet5", "resnet"])
def test_runtime_matches_torch(tmp_path, model_name: str, method: str, mode: str) -> None:
    _, hpk, expected, actual = _roundtrip(tmp_path, model_name, method, METHODS[method], mode)
    assert np.abs(actual - expected).max() <= TOLERANCE
    schemes = {p.scheme for p in hpk.params.values()}
    expected_scheme = {
        ("fresh", "mlp"): "hashed",  # FreshNets has no conv in an MLP: its FC layers are HashedNets
        ("fsnet", "mlp"): "hashed",  # so has FSNet in its default (the paper's) form
    }.get((method, model_name), method)
    assert expected_scheme in schemes
    bucket_dtypes = {s.dtype for n, s in hpk.spaces.items() if not n.endswith(".g")}
    assert bucket_dtypes == {_DTYPE_OF[mode]}
    assert {s.dtype for n, s in hpk.spaces.items() if n.endswith(".g")} <= {"float32"}  # g stays float32


@pytest.mark.parametrize("mode", ["none", "int8"])
@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("model_name", ["lenet5", "resnet"])
def test_variants_match_torch(tmp_path, model_name: str, variant: str, mode: str) -> None:
    method, options = VARIANTS[variant]
    _, _, expected, actual = _roundtrip(tmp_path, model_name, method, options, mode)
    assert np.abs(actual - expected).max() <= TOLERANCE


def test_decoded_weights_equal_torch_virtual_weights(tmp_path) -> None:
    """Weight by weight (not only outputs): each scheme's decoder regenerates torch's tensors."""
    for method, options in [("fresh", {}), ("funhash", {"hops": 2, "dual_space": True}), ("fsnet", {})]:
        model, hpk, _, _ = _roundtrip(tmp_path, "lenet5", method, options, "none")
        weights = load(hpk.source).weights
        conv = model.features[3]
        torch_weight = conv.filters() if hasattr(conv, "filters") else conv.virtual_tensors()["weight"]
        np.testing.assert_allclose(
            weights["features.3.weight"], torch_weight.detach().numpy(), rtol=0, atol=1e-6
        )

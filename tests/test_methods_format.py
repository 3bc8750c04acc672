"""The fresh/funhash/fsnet schemes as a reader sees them: strict validation of hostile fields, and
the display fields ``hashpack inspect`` shows (``describe``)."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch
from models import DIGITS_SHAPE, build, single_thread  # noqa: F401 (autouse fixture)

import hashpack
from hashpack.nn.quantize import quantize
from hashpack.runtime import HpkFormatError, parse_hpk, serialize_hpk
from hashpack.runtime.schemes import describe_param, funhash
from hashpack.runtime.summary import summarize


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    out = {}
    options = {"fresh": {}, "funhash": {"hops": 2, "dual_space": True}, "fsnet": {}}
    for method, opts in options.items():
        torch.manual_seed(0)
        model = hashpack.compress(build("lenet5"), method, compression=1 / 8, seed=1, **opts)
        quantize(model, "int8")
        path = tmp_path_factory.mktemp(method) / "m.hpk"
        out[method] = hashpack.pack(model, torch.zeros(2, *DIGITS_SHAPE), path, golden=1)
    return out


def _reject(hpk, param: str, change, match: str) -> None:
    bad = copy.deepcopy(hpk)
    change(bad.params[param].spec)
    with pytest.raises(HpkFormatError, match=match):
        parse_hpk(serialize_hpk(bad), "bad.hpk")


def _set(key, value):
    def change(spec: dict) -> None:
        spec[key] = value

    return change


def _drop(key):
    return lambda spec: spec.pop(key)


def test_good_files_parse_back_to_the_same_model(files) -> None:
    for hpk in files.values():
        back = parse_hpk(serialize_hpk(hpk))
        assert back.params == hpk.params and back.spaces == hpk.spaces and back.nodes == hpk.nodes
        assert sorted(back.tensors) == sorted(hpk.tensors)
        for name, tensor in hpk.tensors.items():
            np.testing.assert_array_equal(back.tensors[name], tensor)
            assert back.tensors[name].dtype == tensor.dtype


FRESH_CASES = [
    (_set("bands", [1, 2]), "band bucket counts sum to"),
    (_set("bands", [0] * 9 + [1]), "10 bands, a 5×5 kernel allows 1 to 9"),
    (_set("bands", []), "0 bands"),
    (_set("bands", [-1, 2**31]), "is not an integer in"),
    (_set("bands", [True]), "is not an integer in"),
    (_set("bands", "3"), "wrong type"),
    (_drop("bands"), "missing field 'bands'"),
    (_set("seed", 2**32), "not a 32-bit unsigned"),
    (_drop("seed"), "missing field 'seed'"),
    (_set("space", "nope"), "unknown space 'nope'"),
]


@pytest.mark.parametrize(("change", "match"), FRESH_CASES)
def test_fresh_rejects(files, change, match: str) -> None:
    _reject(files["fresh"], "features.3.weight", change, match)


def test_fresh_rejects_huge_kernels_and_expansion(files) -> None:
    hpk = copy.deepcopy(files["fresh"])
    param = hpk.params["features.3.weight"]
    hpk.params["features.3.weight"] = type(param)(param.name, param.scheme, (16, 6, 40, 40), param.spec)
    with pytest.raises(HpkFormatError, match="exceeds the 32×32 limit"):
        parse_hpk(serialize_hpk(hpk))
    hpk.params["features.3.weight"] = type(param)(param.name, param.scheme, (2**16, 64, 5, 5), param.spec)
    with pytest.raises(HpkFormatError, match="expansion limit"):
        parse_hpk(serialize_hpk(hpk))


FUNHASH_CASES = [
    (_set("hashes", 0), "hashes = 0 outside"),
    (_set("hashes", 17), "hashes = 17 outside"),
    (_set("hops", 3), "hops = 3 must be 1 or 2"),
    (_set("hidden", 3), "a 8→3→1 MLP needs"),
    (_set("hidden", 257), "hidden = 257 outside"),
    (_set("hidden", 0), "needs hashes = 1 and hops = 1"),
    (_drop("g"), "missing field 'g'"),
    (_set("spaces", []), "one or two distinct"),
    (_set("spaces", ["classifier.0", "classifier.0"]), "one or two distinct"),
    (_set("spaces", ["classifier.0", "nope"]), "unknown space 'nope'"),
    (_set("seed", -1), "not a 32-bit unsigned"),
]


@pytest.mark.parametrize(("change", "match"), FUNHASH_CASES)
def test_funhash_rejects(files, change, match: str) -> None:
    _reject(files["funhash"], "classifier.0.weight", change, match)


def test_funhash_rejects_g_shared_with_buckets_and_unused_spaces(files) -> None:
    def g_is_bucket(spec: dict) -> None:
        spec["g"] = spec["spaces"][0]

    _reject(files["funhash"], "classifier.0.weight", g_is_bucket, "also a bucket space")

    def one_hash_two_spaces(spec: dict) -> None:
        spec["hashes"], spec["hops"] = 1, 1

    _reject(files["funhash"], "classifier.0.weight", one_hash_two_spaces, "a space would be unused")


FSNET_CASES = [
    (_set("stride", 0), "stride 0 outside"),
    (_set("stride", 10**9), "outside \\[1, L"),
    (_set("stride", 1.5), "wrong type"),
    (_drop("stride"), "missing field 'stride'"),
    (_set("space", "features.0.weight"), "unknown space"),
]


@pytest.mark.parametrize(("change", "match"), FSNET_CASES)
def test_fsnet_rejects(files, change, match: str) -> None:
    _reject(files["fsnet"], "features.3.weight", change, match)


def test_describe_shows_each_schemes_parameters(files) -> None:
    fresh = describe_param(files["fresh"], "features.3.weight")
    assert fresh["scheme"] == "fresh" and fresh["bands"] == 9 and fresh["bucket_dtype"] == "int8"
    assert sum(fresh["band_buckets"]) == fresh["buckets"] and len(fresh["band_coefficients"]) == 9
    assert (
        fresh["band_buckets"][0] / fresh["band_coefficients"][0]
        > fresh["band_buckets"][-1] / fresh["band_coefficients"][-1]
    )
    funhash = describe_param(files["funhash"], "classifier.0.weight")
    assert funhash["U"] == 4 and funhash["hops"] == 2 and funhash["dual_space"]
    assert funhash["g"].startswith("8->") and funhash["g_params"] > 0 and funhash["g_dtype"] == "float32"
    assert funhash["bucket_dtype"] == "int8" and len(funhash["buckets"]) == 2
    fsnet = describe_param(files["fsnet"], "features.3.weight")
    assert fsnet["L"] == round(16 * 6 * 25 / 8) and fsnet["stride"] == fsnet["L"] // 16
    assert fsnet["filter_length"] == 150 and fsnet["overlap"] == 150 - fsnet["stride"]
    hashed = describe_param(files["fresh"], "classifier.0.weight")  # FreshNets' FC layers are HashedNets
    assert hashed["scheme"] == "hashed" and hashed["bucket_dtype"] == "int8"


def test_summary_counts_g_and_shows_details(files) -> None:
    summary = summarize(files["funhash"])
    layer = next(layer for layer in summary["layers"] if layer["name"] == "classifier_0")
    hpk = files["funhash"]
    expected = sum(hpk.spaces[n].size for n in ("classifier.0", "classifier.0.space2", "classifier.0.g"))
    assert layer["stored_values"] == expected
    assert layer["details"]["bucket_dtype"] == "int8" and layer["details"]["weight"]["U"] == 4


def _funhash_param(hpk) -> str:
    return next(name for name, p in hpk.params.items() if p.scheme == "funhash" and p.spec["hidden"])


def test_decode_work_limit_rejects_a_small_file_that_would_take_hours(files) -> None:
    """U = 16, two hops and H = 256 cost ~8,700 operations per weight: 2^27 weights would take an
    hour to regenerate, from a file of a few KB. The reader refuses before decoding anything."""
    bad = copy.deepcopy(files["funhash"])
    name = _funhash_param(bad)
    spec = dict(bad.params[name].spec, hashes=16, hops=2, hidden=256)
    g = bad.spaces[spec["g"]]
    size = 16 * 2 * 256 + 2 * 256 + 1
    spec["g"] = "evil.g"
    bad.spaces["evil.g"] = dataclasses.replace(g, name="evil.g", size=size, tensor="spaces/evil.g")
    bad.tensors["spaces/evil.g"] = np.zeros(size, dtype=bad.tensors[g.tensor].dtype)
    buckets = sum(bad.spaces[space].size for space in spec["spaces"])
    count = min(buckets * 2**16, 2**27)  # within the expansion and virtual-size limits
    assert count * (32 + size) > 2**32
    bad.params[name] = dataclasses.replace(bad.params[name], shape=(count,), spec=spec)
    with pytest.raises(HpkFormatError, match=r"more than 4294967296 operations \(limit reached at param"):
        parse_hpk(serialize_hpk(bad), "bad.hpk")


def test_two_hop_fetches_without_tables_match_the_tables(files) -> None:
    """A param smaller than its space hashes its hop-1 buckets directly instead of tabulating hop 2
    over the whole space; both paths must give the same z bit for bit."""
    hpk = files["funhash"]
    param = hpk.params[_funhash_param(hpk)]
    assert param.spec["hops"] == 2
    tabled = funhash._fetch_plan(param, hpk)
    direct = [(values, None, None) for values, _, _ in tabled]
    stop = min(param.numel, 5000)
    np.testing.assert_array_equal(
        funhash._fetches(param, tabled, 0, stop), funhash._fetches(param, direct, 0, stop)
    )

"""hp32 against the shared test vectors, in every Python implementation (pure Python, numpy, torch)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hashpack.nn import hashing as torch_hashing
from hashpack.runtime import hashing

VECTORS = json.loads((Path(__file__).parent / "vectors" / "hash_vectors.json").read_text())


def test_vectors_describe_hp32() -> None:
    assert VECTORS["hash"] == "hp32" and VECTORS["version"] == 1
    assert len(VECTORS["cases"]) >= 8


@pytest.mark.parametrize("entry", VECTORS["mix32"], ids=lambda e: hex(e["x"]))
def test_mix32(entry: dict) -> None:
    assert hashing.mix32(entry["x"]) == entry["mix32"]
    x = np.array([entry["x"]], dtype=np.uint32)
    hashing._mix32_inplace(x)
    assert int(x[0]) == entry["mix32"]
    assert int(torch_hashing._mix32(torch.tensor([entry["x"]], dtype=torch.int64))[0]) == entry["mix32"]


@pytest.mark.parametrize("entry", VECTORS["keys"], ids=lambda e: f"seed{e['seed']}-f{e['function']}")
def test_keys(entry: dict) -> None:
    key, multiplier = hashing.hash_key(entry["seed"], entry["function"])
    assert (key, multiplier) == (entry["key"], entry["multiplier"])
    assert multiplier % 2 == 1 and multiplier < 2**31


@pytest.mark.parametrize(
    "case", VECTORS["cases"], ids=lambda c: f"seed{c['seed']}-f{c['function']}-K{c['num_buckets']}"
)
def test_cases_numpy_torch_python(case: dict) -> None:
    seed, function, k, indices = case["seed"], case["function"], case["num_buckets"], case["indices"]
    for i, h, b, s in zip(indices, case["hashes"], case["buckets"], case["signs"], strict=True):
        assert hashing.hash_one(i, seed, function) == h
        assert hashing.bucket_and_sign_one(i, seed, k, function) == (b, s)
        np_h = hashing.hash_range(i, i + 1, seed, function)
        assert int(np_h[0]) == h
    th = torch_hashing.hash_indices(torch.tensor(indices, dtype=torch.int64), seed, function)
    assert th.tolist() == case["hashes"]
    assert (th % k).tolist() == case["buckets"]


def test_numpy_vectorised_matches_python_reference() -> None:
    seed, k = 987654321, 1013
    buckets, signs = hashing.bucket_and_sign(5000, seed, k)
    reference = [hashing.bucket_and_sign_one(i, seed, k) for i in range(5000)]
    assert buckets.tolist() == [b for b, _ in reference]
    assert signs.tolist() == [s for _, s in reference]


def test_torch_matches_numpy_bit_for_bit() -> None:
    seed, k, n = 31337, 12500, 300_000
    np_b, np_s = hashing.bucket_and_sign(n, seed, k)
    t_b, t_s = torch_hashing.bucket_and_sign(n, seed, k)
    assert np.array_equal(np_b, t_b.numpy()) and np.array_equal(np_s, t_s.numpy())


def test_gather_signed_equals_sign_times_bucket() -> None:
    values = np.random.default_rng(0).standard_normal(777).astype(np.float32)
    n = 200_000  # spans several chunks
    b, s = hashing.bucket_and_sign(n, 5, values.size)
    expected = values[b] * s
    got = hashing.gather_signed(values, n, 5)
    assert np.array_equal(got.view(np.uint32), expected.view(np.uint32))


def test_two_tensors_of_same_shape_get_unrelated_maps() -> None:
    seed_a = hashing.derive_seed(0, "layer1.weight")
    seed_b = hashing.derive_seed(0, "layer2.weight")
    assert seed_a != seed_b
    a, _ = hashing.bucket_and_sign(10_000, seed_a, 100)
    b, _ = hashing.bucket_and_sign(10_000, seed_b, 100)
    assert (a == b).mean() < 0.03  # chance agreement is 1/K = 1%


def test_buckets_are_balanced_and_signs_fair() -> None:
    b, s = hashing.bucket_and_sign(1_000_000, 7, 1000)
    counts = np.bincount(b, minlength=1000)
    assert counts.min() > 850 and counts.max() < 1150  # ~1000 ± 5 sigma
    assert abs(float(s.mean())) < 0.005


def test_out_of_range_arguments_are_rejected() -> None:
    with pytest.raises(ValueError):
        hashing.hash_key(2**32, 0)
    with pytest.raises(ValueError):
        hashing.bucket_and_sign(10, 0, 0)
    with pytest.raises(ValueError):
        hashing.hash_range(0, 2**31 + 1, 0)

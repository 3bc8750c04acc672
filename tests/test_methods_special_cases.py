"""The papers' special cases and structures, checked exactly.

FunHashNN with U = 1 and g = identity is HashedNets; FreshNets with uniform allocation is
HashedNets on the DCT coefficients; FSNet's neighbouring filters are overlapping summary segments;
the DCT is the orthonormal DCT-II (checked against scipy).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from models import single_thread  # noqa: F401 (autouse fixture)

import hashpack
from hashpack.nn.fresh import FreshConv2d, allocate, band_weights
from hashpack.nn.fsnet import FSConv2d, FSLinear
from hashpack.nn.funhash import FunHashConv2d, FunHashLinear
from hashpack.nn.layers import HashedConv2d, HashedLinear
from hashpack.runtime import load
from hashpack.runtime.schemes.fresh import band_counts, band_table, dct_matrix, idct_basis


def test_funhash_u1_identity_is_hashednets(tmp_path) -> None:
    hashed = HashedLinear(20, 7, compression=1 / 4, seed=99)
    funhash = FunHashLinear(20, 7, num_buckets=hashed.num_buckets, hashes=1, hidden=0, seed=99)
    with torch.no_grad():
        funhash.space.copy_(hashed.space)
    x = torch.randn(5, 20)
    assert torch.equal(funhash(x), hashed(x))
    for name in ("weight", "bias"):
        assert torch.equal(funhash.virtual_tensors()[name], hashed.virtual_tensors()[name])
    # and in the file: the funhash decoder gives the hashed decoder's weights bit for bit
    for layer, name in ((hashed, "h"), (funhash, "f")):
        hashpack.pack(torch.nn.Sequential(layer), x, tmp_path / f"{name}.hpk", golden=0)
    h, f = load(tmp_path / "h.hpk"), load(tmp_path / "f.hpk")
    assert f.hpk.params["0.weight"].scheme == "funhash" and h.hpk.params["0.weight"].scheme == "hashed"
    for name in ("0.weight", "0.bias"):
        assert np.array_equal(f.weights[name], h.weights[name])


def test_funhash_conv_u1_identity_is_hashednets() -> None:
    hashed = HashedConv2d(3, 4, 3, padding=1, num_buckets=17, seed=5)
    funhash = FunHashConv2d(3, 4, 3, padding=1, num_buckets=17, hashes=1, hidden=0, seed=5)
    with torch.no_grad():
        funhash.space.copy_(hashed.space)
    x = torch.randn(2, 3, 6, 6)
    assert torch.equal(funhash(x), hashed(x))


def test_funhash_uses_u_independent_hashes() -> None:
    """Fetch u uses hp32 function f = u: the U bucket maps differ, and the multi-hop fetch u is
    a function of the first-hop bucket only (keyed by it)."""
    layer = FunHashLinear(32, 32, num_buckets=101, hashes=3, hops=2, hidden=4, seed=1)
    index = layer._index
    assert index.shape[0] == 6
    for a in range(3):
        for b in range(a + 1, 3):
            assert (index[a] != index[b]).float().mean() > 0.9
    first, second = index[0, : 32 * 32], index[3, : 32 * 32]  # the weight (the bias has its own seed)
    for bucket in first.unique()[:20]:
        assert second[first == bucket].unique().numel() == 1


def test_funhash_dual_space_reads_both_spaces() -> None:
    layer = FunHashLinear(16, 16, compression=1 / 2, hashes=4, dual_space=True, seed=2)
    assert len(layer.space_sizes) == 2 and layer.space.numel() + layer.space2.numel() == layer.num_buckets
    layer(torch.randn(3, 16)).sum().backward()
    assert layer.space.grad.abs().sum() > 0 and layer.space2.grad.abs().sum() > 0
    assert layer.g.grad.abs().sum() > 0


def test_fresh_uniform_is_hashednets_in_the_dct_domain() -> None:
    """One band: the coefficient tensor is exactly HashedNets' virtual weight (same seed, space)."""
    fresh = FreshConv2d(3, 4, 3, compression=1 / 4, allocation="uniform", seed=42)
    assert fresh.band_buckets == [fresh.num_buckets]
    hashed = HashedConv2d(3, 4, 3, bias=False, num_buckets=fresh.num_buckets, seed=42)
    with torch.no_grad():
        hashed.space.copy_(fresh.space)
    assert torch.equal(fresh.coefficients(), hashed.virtual_tensors()["weight"])
    # and the filter is the orthonormal inverse DCT of those coefficients
    t = torch.from_numpy(dct_matrix(3)).float()
    expected = t.T @ fresh.coefficients() @ t
    torch.testing.assert_close(fresh.filters(), expected, rtol=0, atol=1e-6)


def test_dct_is_scipy_orthonormal_dct2() -> None:
    from scipy import fft as scipy_fft

    rng = np.random.default_rng(0)
    for kh, kw in [(3, 3), (5, 5), (1, 1), (3, 5), (7, 2)]:
        pixels = rng.standard_normal((kh, kw))
        coeffs = scipy_fft.dctn(pixels, type=2, norm="ortho")
        basis = idct_basis(kh, kw).astype(np.float64)
        np.testing.assert_allclose(coeffs.reshape(-1) @ basis, pixels.reshape(-1), atol=1e-6)
        np.testing.assert_allclose(pixels.reshape(-1) @ basis.T, coeffs.reshape(-1), atol=1e-6)
        np.testing.assert_allclose(basis @ basis.T, np.eye(kh * kw), atol=1e-6)


def test_fresh_bands_and_allocation() -> None:
    assert band_table(3, 3, 5).reshape(3, 3).tolist() == [[0, 1, 2], [1, 2, 3], [2, 3, 4]]
    assert band_table(3, 3, 2).reshape(3, 3).tolist() == [[0, 1, 1], [1, 1, 1], [1, 1, 1]]
    assert band_counts((4, 2, 3, 3), 5) == [8, 16, 24, 16, 8]
    counts = band_counts((32, 16, 5, 5), 9)
    sizes = allocate(counts, 800, band_weights(9, 1.0, 2.0))
    assert sum(sizes) == 800
    rates = [k / n for k, n in zip(sizes, counts, strict=True)]
    assert all(a >= b for a, b in itertools.pairwise(rates)), rates  # fewer buckets per coefficient
    assert sizes[0] >= 1
    # alpha = beta = 1: the same rate in every band (up to rounding)
    flat = allocate(counts, 800, band_weights(9, 1.0, 1.0))
    assert max(abs(k / n - 800 / sum(counts)) for k, n in zip(flat, counts, strict=True)) < 0.01
    # never more buckets than coefficients in a band; a tiny budget can drop high bands
    assert all(
        k <= n for k, n in zip(allocate(counts, sum(counts) - 3, band_weights(9, 1, 4)), counts, strict=True)
    )
    assert allocate(counts, 2, band_weights(9, 1.0, 2.0))[-1] == 0


def test_fresh_dropped_band_is_zero() -> None:
    conv = FreshConv2d(2, 2, 3, band_buckets=[3, 2, 0], seed=1)
    coeffs = conv.coefficients()
    table = torch.from_numpy(band_table(3, 3, 3)).view(3, 3)
    assert (coeffs[:, :, table == 2] == 0).all()
    assert (coeffs[:, :, table == 0] != 0).all()


def test_fresh_init_from_dense_recovers_a_filter_when_buckets_suffice() -> None:
    dense = torch.nn.Conv2d(1, 1, 3)
    fresh = FreshConv2d(1, 1, 3, band_buckets=[50, 50, 50, 50, 50], seed=3)
    fresh.init_from_dense(dict(dense.named_parameters()))
    # 9 coefficients in 250 buckets: almost surely no collision within a band → exact recovery
    torch.testing.assert_close(fresh.filters(), dense.weight, rtol=0, atol=1e-6)
    torch.testing.assert_close(fresh.bias, dense.bias)


def test_fsnet_neighbouring_filters_overlap() -> None:
    conv = FSConv2d(4, 6, 3, compression=1 / 4)
    summary = conv.space.detach()
    length, stride, size = 4 * 9, conv.filter_stride, conv.summary_length
    assert size == round(6 * 4 * 9 / 4) == 54 and stride == 54 // 6 == 9
    weight = conv.filters().detach().reshape(6, length)
    for o in range(6):
        # filter o is the circular segment of the summary starting at o·stride
        expected = summary[(o * stride + torch.arange(length)) % size]
        assert torch.equal(weight[o], expected)
        assert torch.equal(conv.filter(o), expected)
    # neighbours share their overlap: the tail of filter o is the head of filter o+1
    overlap = length - stride
    assert overlap == 27
    assert torch.equal(weight[1][:overlap], weight[0][stride:])
    # the last filter wraps around the end of the summary
    assert torch.equal(weight[5][size - 5 * stride], summary[0])
    # one summary value, changed, changes every filter that covers it (weights are shared)
    with torch.no_grad():
        conv.space[20] += 1.0
    changed = (conv.filters().detach().reshape(6, length) != weight).any(dim=1)
    assert changed.tolist() == [True, True, True, False, False, True]  # filter 5 wraps onto 0..26


def test_fsnet_same_forward_as_a_conv_with_those_filters() -> None:
    fs = FSConv2d(3, 5, 3, stride=2, padding=1, compression=1 / 3)
    dense = torch.nn.Conv2d(3, 5, 3, stride=2, padding=1)
    with torch.no_grad():
        dense.weight.copy_(fs.filters())
        dense.bias.copy_(fs.bias)
    x = torch.randn(2, 3, 9, 9)
    assert torch.equal(fs(x), dense(x))
    linear = FSLinear(10, 4, compression=1 / 2)
    assert linear.filter_stride == 20 // 4 and linear.filters().shape == (4, 10)


def test_compress_rejects_unknown_options() -> None:
    with pytest.raises(ValueError, match="has no option 'hashes'"):
        hashpack.compress(torch.nn.Sequential(torch.nn.Linear(4, 4)), "fresh", hashes=2)
    with pytest.raises(ValueError, match="dual_space needs"):
        hashpack.compress(torch.nn.Sequential(torch.nn.Linear(40, 40)), "funhash", hashes=1, dual_space=True)

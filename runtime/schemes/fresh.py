"""``fresh`` (FreshNets): conv filters stored as hashed 2-D DCT coefficients, one bucket pool per band.

Coefficient (o, c, u, v) of the virtual coefficient tensor lies in frequency band
``min(u + v, nb - 1)``; band b owns buckets ``[offset_b, offset_b + K_b)`` of the space, and the
coefficient is ``sign(i) * space[offset_b + h(i) mod K_b]`` (hp32, f = 0, over the flat index i),
or 0 when ``K_b = 0``. Each k×k filter is the orthonormal inverse DCT-II of its coefficients,
computed as one float32 matmul with a constant basis (docs/FORMAT.md §4, ``fresh``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from ..hashing import MASK32, MAX_BUCKETS, SIGN_BIT, hash_range

if TYPE_CHECKING:
    from ..hpk import HpkFile, Param, Space

MAX_KERNEL = 32  # kh, kw ≤ 32: the basis is (kh·kw)² floats, at most 4 MiB
_CHUNK = 1 << 16


def dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II matrix T (float64, n×n): T[u, x] = a(u) cos(pi (2x + 1) u / (2n))."""
    u = np.arange(n, dtype=np.float64)[:, None]
    x = np.arange(n, dtype=np.float64)[None, :]
    scale = np.where(u == 0, math.sqrt(1.0 / n), math.sqrt(2.0 / n))
    return scale * np.cos(math.pi * (2.0 * x + 1.0) * u / (2.0 * n))


def idct_basis(kh: int, kw: int) -> np.ndarray:
    """M (float32, [kh·kw, kh·kw]): a filter's flat pixels = its flat coefficients @ M.

    M[u·kw + v, x·kw + y] = T_kh[u, x] · T_kw[v, y], computed in float64 and rounded once.
    M is orthogonal, so the forward DCT of a flat filter is ``pixels @ M.T``.
    """
    return np.kron(dct_matrix(kh), dct_matrix(kw)).astype(np.float32)


def band_table(kh: int, kw: int, num_bands: int) -> np.ndarray:
    """Band of each coefficient position u·kw + v of a filter: min(u + v, num_bands - 1)."""
    u = np.arange(kh)[:, None]
    v = np.arange(kw)[None, :]
    return np.minimum(u + v, num_bands - 1).reshape(-1).astype(np.int64)


def band_counts(shape: tuple[int, ...], num_bands: int) -> list[int]:
    """How many coefficients of a [O, I, kh, kw] tensor fall in each band."""
    filters = shape[0] * shape[1]
    per_filter = np.bincount(band_table(shape[2], shape[3], num_bands), minlength=num_bands)
    return [int(n) * filters for n in per_filter]


def validate(param: Param, spaces: dict[str, Space], validator) -> int:
    where = f"param {param.name!r}"
    if len(param.shape) != 4:
        raise validator.fail(f"{where}: fresh needs a 4-D [out, in, kh, kw] shape, got {list(param.shape)}")
    kh, kw = param.shape[2], param.shape[3]
    if kh > MAX_KERNEL or kw > MAX_KERNEL:
        raise validator.fail(f"{where}: fresh kernel {kh}×{kw} exceeds the {MAX_KERNEL}×{MAX_KERNEL} limit")
    space = validator.field(param.spec, "space", str, where)
    if space not in spaces:
        raise validator.fail(f"{where}: unknown space {space!r}")
    seed = validator.field(param.spec, "seed", int, where)
    if not 0 <= seed <= MASK32:
        raise validator.fail(f"{where}: seed {seed} is not a 32-bit unsigned integer")
    bands = validator.field(param.spec, "bands", list, where)
    if not 1 <= len(bands) <= kh + kw - 1:
        raise validator.fail(f"{where}: {len(bands)} bands, a {kh}×{kw} kernel allows 1 to {kh + kw - 1}")
    for size in bands:
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_BUCKETS:
            raise validator.fail(f"{where}: band bucket count {size!r} is not an integer in [0, 2^30]")
    if sum(bands) != spaces[space].size:
        raise validator.fail(
            f"{where}: band bucket counts sum to {sum(bands)}, space {space!r} has {spaces[space].size}"
        )
    return spaces[space].size


def decode_work(param: Param) -> int:
    """Operations to regenerate one weight (FORMAT.md §6): one fetch and a kh·kw inverse DCT."""
    return 1 + param.shape[2] * param.shape[3]


def decode(param: Param, hpk: HpkFile) -> np.ndarray:
    out_channels, in_channels, kh, kw = param.shape
    sizes = np.asarray(param.spec["bands"], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    table = band_table(kh, kw, len(sizes))
    modulus = np.maximum(sizes[table], 1).astype(np.uint32)  # per position of a filter
    offset = offsets[table]
    live = sizes[table] > 0
    values = hpk.space_values(param.spec["space"])
    basis = idct_basis(kh, kw)
    taps = kh * kw
    filters = out_channels * in_channels
    rows_per_chunk = max(1, _CHUNK // taps)
    weight = np.empty((filters, taps), dtype=np.float32)
    for row in range(0, filters, rows_per_chunk):
        stop = min(filters, row + rows_per_chunk)
        h = hash_range(row * taps, stop * taps, param.spec["seed"]).reshape(stop - row, taps)
        bucket = offset + (h % modulus).astype(np.int64)
        coeffs = np.where(live, values[np.where(live, bucket, 0)], np.float32(0))
        coeffs = np.where(h & np.uint32(SIGN_BIT), -coeffs, coeffs).astype(np.float32)
        np.matmul(coeffs, basis, out=weight[row:stop])
    return weight.reshape(param.shape)


def stored_values(param: Param) -> int:
    return 0  # the space is counted once, by the space itself


def describe(param: Param, hpk: HpkFile) -> dict[str, Any]:
    """What ``hashpack inspect`` shows: the bands, their bucket budgets and coefficient counts."""
    sizes = list(param.spec["bands"])
    counts = band_counts(param.shape, len(sizes))
    space = hpk.spaces[param.spec["space"]]
    return {
        "scheme": "fresh",
        "kernel": f"{param.shape[2]}x{param.shape[3]}",
        "bands": len(sizes),
        "band_buckets": sizes,
        "band_coefficients": counts,
        "buckets": space.size,
        "bucket_dtype": space.dtype,
        "seed": param.spec["seed"],
    }

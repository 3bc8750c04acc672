"""The hp32 hash: bucket index and sign for every flat index of a virtual tensor.

Specified in docs/FORMAT.md ("The hash"); every backend (torch, numpy, ONNX, LiteRT, Java)
implements exactly these integer steps. All arithmetic is on unsigned 32-bit values; the only
multiplications are by constants below 2**31, so an implementation that emulates uint32 in a
signed 64-bit integer (torch, Java ``long``) never overflows.
"""

from __future__ import annotations

import numpy as np

MASK32 = 0xFFFFFFFF
MIX_MULTIPLIER = 0x045D9F3B
GOLDEN_GAMMA = 0x9E3779B9
MULTIPLIER_SALT = 0x68E31DA4
MAX_VIRTUAL_SIZE = 2**31 - 1  # flat indices must fit LiteRT's int32 RANGE
MAX_BUCKETS = 2**30  # keeps bit 31 (the sign) nearly independent of h mod K
SIGN_BIT = 0x80000000


def mix32(x: int) -> int:
    """The finaliser of hp32 on one Python int (reference implementation, used for keys)."""
    x &= MASK32
    x ^= x >> 16
    x = (x * MIX_MULTIPLIER) & MASK32
    x ^= x >> 16
    x = (x * MIX_MULTIPLIER) & MASK32
    x ^= x >> 16
    return x


def hash_key(seed: int, function: int = 0) -> tuple[int, int]:
    """Derive (key, multiplier) of hash function number ``function`` of a tensor from its seed.

    ``key`` is XORed into the index, ``multiplier`` is odd and below 2**31.
    """
    if not 0 <= seed <= MASK32:
        raise ValueError(f"seed {seed} is not a uint32")
    if not 0 <= function < 2**16:
        raise ValueError(f"hash function number {function} out of range")
    key = mix32(seed ^ ((GOLDEN_GAMMA * (function + 1)) & MASK32))
    multiplier = (mix32(key ^ MULTIPLIER_SALT) & 0x7FFFFFFF) | 1
    return key, multiplier


def hash_one(index: int, seed: int, function: int = 0) -> int:
    """h(i) for one index, with Python ints: the executable form of the spec."""
    key, multiplier = hash_key(seed, function)
    return mix32(((index ^ key) * multiplier) & MASK32)


def bucket_and_sign_one(index: int, seed: int, num_buckets: int, function: int = 0) -> tuple[int, int]:
    h = hash_one(index, seed, function)
    return h % num_buckets, (-1 if h & SIGN_BIT else 1)


def _mix32_inplace(x: np.ndarray) -> None:
    sixteen = np.uint32(16)
    mul = np.uint32(MIX_MULTIPLIER)
    x ^= x >> sixteen
    x *= mul
    x ^= x >> sixteen
    x *= mul
    x ^= x >> sixteen


def hash_range(start: int, stop: int, seed: int, function: int = 0) -> np.ndarray:
    """h(i) for i in [start, stop) as uint32 (vectorised; numpy uint32 wraps as the spec requires)."""
    if not 0 <= start <= stop <= MAX_VIRTUAL_SIZE + 1:
        raise ValueError(f"index range [{start}, {stop}) outside [0, 2**31)")
    key, multiplier = hash_key(seed, function)
    x = np.arange(start, stop, dtype=np.uint32)
    x ^= np.uint32(key)
    x *= np.uint32(multiplier)
    _mix32_inplace(x)
    return x


def hash_indices(indices: np.ndarray, seed: int, function: int = 0) -> np.ndarray:
    """h(i) for each i of an array of indices in [0, 2^31), as uint32 (same function as hash_range)."""
    key, multiplier = hash_key(seed, function)
    x = np.asarray(indices).astype(np.uint32)
    x ^= np.uint32(key)
    x *= np.uint32(multiplier)
    _mix32_inplace(x)
    return x


def _mod(h: np.ndarray, num_buckets: int) -> np.ndarray:
    # h - (h // K) * K: numpy divides uint32 by a scalar with libdivide, ~10x faster than `%`.
    k = np.uint32(num_buckets)
    return h - (h // k) * k


def bucket_and_sign(
    size: int, seed: int, num_buckets: int, function: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Bucket indices (int64) and signs (float32, +1/-1) for flat indices 0..size-1."""
    check_num_buckets(num_buckets)
    h = hash_range(0, size, seed, function)
    buckets = _mod(h, num_buckets).astype(np.int64)
    signs = np.where(h & np.uint32(SIGN_BIT), np.float32(-1), np.float32(1))
    return buckets, signs


def check_num_buckets(num_buckets: int) -> None:
    if not 1 <= num_buckets <= MAX_BUCKETS:
        raise ValueError(f"bucket count {num_buckets} outside [1, 2**30]")


_CHUNK = 1 << 16  # keeps every temporary in L2 cache


def gather_signed(values: np.ndarray, size: int, seed: int, function: int = 0) -> np.ndarray:
    """The virtual tensor (flat, float32): ``sign(i) * values[bucket(i)]`` for i < size.

    The same steps as ``hash_range`` and ``bucket_and_sign``, fused over cache-sized chunks with
    preallocated buffers. The sign is applied by flipping the float's sign bit, which is
    bit-identical to multiplying by -1.0 and avoids a float multiply.
    """
    num_buckets = int(values.shape[0])
    check_num_buckets(num_buckets)
    if not 0 <= size <= MAX_VIRTUAL_SIZE:
        raise ValueError(f"size {size} outside [0, 2**31 - 1]")
    key, multiplier = hash_key(seed, function)
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    out = np.empty(size, dtype=np.uint32)
    offsets = np.arange(min(size, _CHUNK), dtype=np.uint32)
    x_buffer, t_buffer = np.empty_like(offsets), np.empty_like(offsets)
    idx_buffer = np.empty(offsets.shape, dtype=np.intp)
    k, sixteen, mix = np.uint32(num_buckets), np.uint32(16), np.uint32(MIX_MULTIPLIER)
    for start in range(0, size, _CHUNK):
        n = min(size - start, _CHUNK)
        x, t, idx = x_buffer[:n], t_buffer[:n], idx_buffer[:n]
        np.add(offsets[:n], np.uint32(start), out=x)
        x ^= np.uint32(key)
        x *= np.uint32(multiplier)
        for _ in range(2):  # mix32
            np.right_shift(x, sixteen, out=t)
            x ^= t
            x *= mix
        np.right_shift(x, sixteen, out=t)
        x ^= t
        np.floor_divide(x, k, out=t)  # h mod K as h - (h // K) * K (libdivide)
        t *= k
        np.subtract(x, t, out=idx, casting="unsafe")
        chunk = out[start : start + n]
        np.take(bits, idx, out=chunk)
        x &= np.uint32(SIGN_BIT)
        chunk ^= x
    return out.view(np.float32)


FNV_OFFSET = 0x811C9DC5
FNV_PRIME = 0x01000193


def fnv1a32(text: str) -> int:
    """FNV-1a over UTF-8 bytes: turns a parameter name into 32 bits for seed derivation."""
    h = FNV_OFFSET
    for byte in text.encode("utf-8"):
        h = ((h ^ byte) * FNV_PRIME) & MASK32
    return h


def derive_seed(seed: int, name: str) -> int:
    """A per-tensor seed from a model (or layer) seed and a name (docs/FORMAT.md §7)."""
    return mix32((seed & MASK32) ^ fnv1a32(name))

"""hp32 (docs/FORMAT.md §1) in torch integer ops, so layers can hash on any torch device.

torch has no uint32 arithmetic, so values are kept in int64 and masked to 32 bits after each
multiply; every multiplier is below 2**31, so no product reaches 2**63 (no signed overflow).
"""

from __future__ import annotations

import torch

from hashpack.runtime.hashing import MASK32, MIX_MULTIPLIER, SIGN_BIT, check_num_buckets, hash_key


def _mix32(x: torch.Tensor) -> torch.Tensor:
    x = x ^ (x >> 16)
    x = (x * MIX_MULTIPLIER) & MASK32
    x = x ^ (x >> 16)
    x = (x * MIX_MULTIPLIER) & MASK32
    return x ^ (x >> 16)


def hash_indices(indices: torch.Tensor, seed: int, function: int = 0) -> torch.Tensor:
    """h(i) as int64 values in [0, 2**32) for int64 ``indices``."""
    key, multiplier = hash_key(seed, function)
    x = ((indices ^ key) * multiplier) & MASK32
    return _mix32(x)


def bucket_and_sign(
    size: int, seed: int, num_buckets: int, function: int = 0, device: torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(bucket int64, sign float32 ±1) for flat indices 0..size-1."""
    check_num_buckets(num_buckets)
    h = hash_indices(torch.arange(size, dtype=torch.int64, device=device), seed, function)
    sign = 1.0 - 2.0 * ((h & SIGN_BIT) >> 31).to(torch.float32)
    return h % num_buckets, sign

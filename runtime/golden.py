"""Golden inputs regenerated from a seed (docs/FORMAT.md §3, "Generated golden inputs").

A file stores only the outputs PyTorch computed for these inputs: at 3×224×224 eight stored
input images cost 4.8 MB, more than a compressed ResNet-18, while a seed costs nothing. The
generator is hp32 itself (no new hash to implement) with the 24 high bits of each hash mapped
exactly to a float32 in [-1, 1): integer arithmetic below 2^24 and one multiply by a power of
two, so numpy, Java and JavaScript produce the same bits.
"""

from __future__ import annotations

import math

import numpy as np

from .hashing import hash_range

GENERATOR_NAME = "hp32-uniform"
# What a reader regenerates at most (count × per-sample input values): 64 MiB of float32, so a
# small hostile file cannot make a reader allocate more; 111 samples of 3×224×224.
MAX_GENERATED_VALUES = 2**24
MAX_GENERATED_COUNT = 1024
_SCALE = np.float32(2.0**-23)
_CHUNK = 1 << 20


def generated_inputs(seed: int, count: int, sample_shape: tuple[int, ...]) -> np.ndarray:
    """The ``[count, *sample_shape]`` float32 golden inputs of generator ``hp32-uniform``.

    Element ``j`` (flat, row-major over the whole batch) is
    ``float32(int(h(j) >> 8) - 2^23) * 2^-23`` with ``h`` = hp32 of FORMAT.md §1 for
    ``seed`` and hash function 0: a value in [-1, 1) on a grid of 2^-23, exact in float32.
    """
    total = count * math.prod(sample_shape)
    if not 1 <= count <= MAX_GENERATED_COUNT or total > MAX_GENERATED_VALUES:
        raise ValueError(
            f"{count} generated golden samples of shape {list(sample_shape)} exceed the limits "
            f"({MAX_GENERATED_COUNT} samples, {MAX_GENERATED_VALUES} values)"
        )
    out = np.empty(total, dtype=np.float32)
    for start in range(0, total, _CHUNK):
        stop = min(total, start + _CHUNK)
        h = hash_range(start, stop, seed)
        h >>= np.uint32(8)
        centred = h.view(np.int32) - np.int32(1 << 23)  # < 2^24 in magnitude: exact as float32
        np.multiply(centred.astype(np.float32), _SCALE, out=out[start:stop])
    return out.reshape(count, *sample_shape)

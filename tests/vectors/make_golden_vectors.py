"""Regenerate tests/vectors/golden_vectors.json from a pure-Python reference of ``hp32-uniform``.

The generator of generated golden inputs (docs/FORMAT.md §3) is computed here with Python ints
and ``struct`` only, independently of the numpy runtime, so the runtime's tests (and Java's) check
an implementation against the spec, not against itself. Run only if the spec changes (never).
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from pathlib import Path

from hashpack.runtime.hashing import derive_seed, hash_one

CASES = [
    # (seed, count, sample shape)
    (derive_seed(0, "golden"), 2, [3, 4, 5]),
    (0, 1, [16]),
    (1, 3, [2, 2]),
    (0xFFFFFFFF, 2, [1, 8, 8]),
    (123456789, 1, [10]),
]
FIRST = 12


def value(seed: int, j: int) -> float:
    """x[j] = float32(int(h(j) >> 8) - 2^23) * 2^-23, as a Python float (exact: < 2^24 on a 2^-23 grid)."""
    return ((hash_one(j, seed) >> 8) - (1 << 23)) / float(1 << 23)


def build() -> dict:
    cases = []
    for seed, count, shape in CASES:
        total = count * math.prod(shape)
        blob = b"".join(struct.pack("<f", value(seed, j)) for j in range(total))
        cases.append(
            {
                "seed": seed,
                "count": count,
                "shape": shape,
                "first_bits": [blob[4 * j : 4 * j + 4][::-1].hex() for j in range(min(FIRST, total))],
                "first_values": [value(seed, j) for j in range(min(FIRST, total))],
                "sha256": hashlib.sha256(blob).hexdigest(),
            }
        )
    return {
        "generator": "hp32-uniform",
        "formula": "x[j] = float32(int(h(j) >> 8) - 2^23) * 2^-23, h = hp32 with the golden seed, f = 0",
        "default_seed": derive_seed(0, "golden"),
        "cases": cases,
    }


if __name__ == "__main__":
    target = Path(__file__).with_name("golden_vectors.json")
    target.write_text(json.dumps(build(), indent=1) + "\n")
    print(f"wrote {target}")

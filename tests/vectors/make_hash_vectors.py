"""Regenerate tests/vectors/hash_vectors.json from the pure-Python reference of the hp32 spec.

Run only when the spec changes (it never should): every backend's tests read the JSON file.
"""

from __future__ import annotations

import json
from pathlib import Path

from hashpack.runtime.hashing import bucket_and_sign_one, hash_key, hash_one, mix32

MIX_INPUTS = [0, 1, 2, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xDEADBEEF, 123456789]
CASES = [
    # (seed, function, num_buckets, indices)
    (0, 0, 1, [0, 1, 2, 3]),
    (0, 0, 10, list(range(16))),
    (1, 0, 10, list(range(16))),
    (42, 0, 12500, [0, 1, 2, 783, 784, 785, 783999, 2**31 - 2, 2**31 - 1]),
    (42, 1, 12500, [0, 1, 2, 783, 784, 785]),
    (42, 3, 97, [0, 5, 10, 1000000]),
    (0xFFFFFFFF, 0, 2**30, [0, 1, 2**20, 2**31 - 1]),
    (0x9E3779B9, 2, 3, list(range(8))),
    (2024, 0, 2**16, [17, 65535, 65536, 99999999]),
]


def build() -> dict:
    mixes = [{"x": x, "mix32": mix32(x)} for x in MIX_INPUTS]
    keys = []
    cases = []
    for seed, function, num_buckets, indices in CASES:
        key, multiplier = hash_key(seed, function)
        keys.append({"seed": seed, "function": function, "key": key, "multiplier": multiplier})
        pairs = [bucket_and_sign_one(i, seed, num_buckets, function) for i in indices]
        cases.append(
            {
                "seed": seed,
                "function": function,
                "num_buckets": num_buckets,
                "indices": indices,
                "hashes": [hash_one(i, seed, function) for i in indices],
                "buckets": [b for b, _ in pairs],
                "signs": [s for _, s in pairs],
            }
        )
    return {"hash": "hp32", "version": 1, "mix32": mixes, "keys": keys, "cases": cases}


if __name__ == "__main__":
    path = Path(__file__).with_name("hash_vectors.json")
    path.write_text(json.dumps(build(), indent=1) + "\n")
    print(f"wrote {path}")

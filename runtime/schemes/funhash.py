"""``funhash`` (FunHashNN): each virtual weight is g(z), z = D signed values fetched by U hashes.

Fetch u (0 ≤ u < U) reads space ``spaces[u mod S]`` (S = 1, or 2 for dual-space hashing) at
bucket ``h_u(i) mod K`` with sign bit 31 of ``h_u(i)`` (hp32, f = u). With two hops, a second
fetch per u reads the same space at ``h'_u(b) mod K``, where b is the first bucket and h' is hp32
with f = U + u applied to b (a second round of hashing keyed by the first). g is a per-layer
MLP D → H → 1 with ReLU, or the identity when H = 0 (then U = 1 and this is ``hashed``).
docs/FORMAT.md §4, ``funhash``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..hashing import MASK32, SIGN_BIT, check_num_buckets, hash_indices, hash_range

if TYPE_CHECKING:
    from ..hpk import HpkFile, Param, Space

MAX_HASHES = 16
MAX_HIDDEN = 256
HOPS = (1, 2)
_CHUNK = 1 << 15


def g_size(inputs: int, hidden: int) -> int:
    """Values of g's space: W1 [H, D], b1 [H], w2 [H], b2 [1] (0 for the identity)."""
    return 0 if hidden == 0 else inputs * hidden + 2 * hidden + 1


def split_g(g: np.ndarray, inputs: int, hidden: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(W1 [H, D], b1 [H], w2 [H], b2 [1]) views of g's flat values, in storage order."""
    w1_end = inputs * hidden
    return (
        g[:w1_end].reshape(hidden, inputs),
        g[w1_end : w1_end + hidden],
        g[w1_end + hidden : w1_end + 2 * hidden],
        g[w1_end + 2 * hidden :],
    )


def _int(validator, spec: dict, key: str, low: int, high: int, where: str) -> int:
    value = validator.field(spec, key, int, where)
    if not low <= value <= high:
        raise validator.fail(f"{where}: {key} = {value} outside [{low}, {high}]")
    return value


def validate(param: Param, spaces: dict[str, Space], validator) -> int:
    where = f"param {param.name!r}"
    names = validator.field(param.spec, "spaces", list, where)
    if (
        not 1 <= len(names) <= 2
        or not all(isinstance(n, str) for n in names)
        or len(set(names)) != len(names)
    ):
        raise validator.fail(f"{where}: spaces must list one or two distinct space names, got {names!r}")
    for name in names:
        if name not in spaces:
            raise validator.fail(f"{where}: unknown space {name!r}")
    seed = validator.field(param.spec, "seed", int, where)
    if not 0 <= seed <= MASK32:
        raise validator.fail(f"{where}: seed {seed} is not a 32-bit unsigned integer")
    hashes = _int(validator, param.spec, "hashes", 1, MAX_HASHES, where)
    hops = validator.field(param.spec, "hops", int, where)
    if hops not in HOPS:
        raise validator.fail(f"{where}: hops = {hops} must be 1 or 2")
    if len(names) > hashes:
        raise validator.fail(
            f"{where}: {len(names)} spaces but only {hashes} hash(es): a space would be unused"
        )
    hidden = _int(validator, param.spec, "hidden", 0, MAX_HIDDEN, where)
    inputs = hashes * hops
    if hidden == 0:
        if inputs != 1:
            raise validator.fail(f"{where}: hidden = 0 (g = identity) needs hashes = 1 and hops = 1")
        if "g" in param.spec:
            raise validator.fail(f"{where}: hidden = 0 (g = identity) must not name a g space")
    else:
        g = validator.field(param.spec, "g", str, where)
        if g not in spaces or g in names:
            raise validator.fail(f"{where}: g space {g!r} is unknown or is also a bucket space")
        if spaces[g].size != g_size(inputs, hidden):
            raise validator.fail(
                f"{where}: g space {g!r} has {spaces[g].size} values, a {inputs}→{hidden}→1 MLP needs "
                f"{g_size(inputs, hidden)}"
            )
    return sum(spaces[name].size for name in names)


def decode_work(param: Param) -> int:
    """Operations to regenerate one weight (FORMAT.md §6): D fetches, and g's D·H + 2H + 1."""
    inputs, hidden = param.spec["hashes"] * param.spec["hops"], param.spec["hidden"]
    return inputs + g_size(inputs, hidden)


def _fetch_plan(param: Param, hpk: HpkFile) -> list[tuple[np.ndarray, np.ndarray | None, np.ndarray | None]]:
    """Per hash u: its space's float32 values and, with two hops, the hop-2 bucket and sign tables
    over that space's K bucket indices (hop 2 hashes a bucket index, so K entries suffice). The
    tables are built only when K is at most the param's size: a small param reading a big shared
    space hashes its own buckets instead, so decoding never costs more than the param justifies."""
    spec = param.spec
    hashes, seed = spec["hashes"], spec["seed"]
    spaces = [hpk.space_values(name) for name in spec["spaces"]]
    plan = []
    for u in range(hashes):
        values = spaces[u % len(spaces)]
        size = int(values.shape[0])
        check_num_buckets(size)
        if spec["hops"] == 2 and size <= param.numel:
            h2 = hash_range(0, size, seed, hashes + u)
            plan.append((values, (h2 % np.uint32(size)).astype(np.int64), h2 & np.uint32(SIGN_BIT)))
        else:
            plan.append((values, None, None))
    return plan


def _fetches(param: Param, plan: list, start: int, stop: int) -> np.ndarray:
    """z for flat indices [start, stop): float32 [stop - start, U·hops], hop-1 fetches first."""
    hashes, seed = param.spec["hashes"], param.spec["seed"]
    z = np.empty((stop - start, hashes * param.spec["hops"]), dtype=np.float32)
    sign_bit = np.uint32(SIGN_BIT)
    for u, (values, table2, signs2) in enumerate(plan):
        h = hash_range(start, stop, seed, u)
        bucket = (h % np.uint32(values.shape[0])).astype(np.int64)
        sign = h & sign_bit
        z[:, u] = np.where(sign, -values[bucket], values[bucket])
        if param.spec["hops"] == 2:
            if table2 is not None and signs2 is not None:
                bucket2, sign2 = table2[bucket], sign ^ signs2[bucket]
            else:
                h2 = hash_indices(bucket, seed, hashes + u)
                bucket2 = (h2 % np.uint32(values.shape[0])).astype(np.int64)
                sign2 = sign ^ (h2 & sign_bit)
            z[:, hashes + u] = np.where(sign2, -values[bucket2], values[bucket2])
    return z


def decode(param: Param, hpk: HpkFile) -> np.ndarray:
    spec = param.spec
    inputs, hidden = spec["hashes"] * spec["hops"], spec["hidden"]
    out = np.empty(param.numel, dtype=np.float32)
    if hidden:
        w1, b1, w2, b2 = split_g(hpk.space_values(spec["g"]), inputs, hidden)
    plan = _fetch_plan(param, hpk)
    for start in range(0, param.numel, _CHUNK):
        stop = min(param.numel, start + _CHUNK)
        z = _fetches(param, plan, start, stop)
        if hidden == 0:
            out[start:stop] = z[:, 0]
            continue
        act = np.maximum(z @ w1.T + b1, np.float32(0))
        out[start:stop] = act @ w2 + b2[0]
    return out.reshape(param.shape)


def stored_values(param: Param) -> int:
    return 0  # the spaces (buckets and g) are counted once each, by the spaces themselves


def spaces_of(param: Param) -> list[str]:
    """The spaces this param reads: bucket spaces first, then g's."""
    names = list(param.spec["spaces"])
    if param.spec.get("hidden", 0):
        names.append(param.spec["g"])
    return names


def describe(param: Param, hpk: HpkFile) -> dict[str, Any]:
    """What ``hashpack inspect`` shows: U, hops, the spaces and the size of g."""
    spec = param.spec
    inputs, hidden = spec["hashes"] * spec["hops"], spec["hidden"]
    first = hpk.spaces[spec["spaces"][0]]
    return {
        "scheme": "funhash",
        "U": spec["hashes"],
        "hops": spec["hops"],
        "dual_space": len(spec["spaces"]) == 2,
        "buckets": [hpk.spaces[name].size for name in spec["spaces"]],
        "bucket_dtype": first.dtype,
        "g": "identity" if hidden == 0 else f"{inputs}->{hidden}->1 relu",
        "g_params": g_size(inputs, hidden),
        "g_dtype": hpk.spaces[spec["g"]].dtype if hidden else None,
        "seed": spec["seed"],
    }

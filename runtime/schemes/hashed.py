"""``hashed`` (HashedNets): each virtual weight is a signed copy of one bucket of a shared space."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..hashing import MASK32, SIGN_BIT, gather_signed, hash_indices

if TYPE_CHECKING:
    from ..hpk import HpkFile, Param, Space


def validate(param: Param, spaces: dict[str, Space], validator) -> int:
    where = f"param {param.name!r}"
    space = validator.field(param.spec, "space", str, where)
    if space not in spaces:
        raise validator.fail(f"{where}: unknown space {space!r}")
    seed = validator.field(param.spec, "seed", int, where)
    if not 0 <= seed <= MASK32:
        raise validator.fail(f"{where}: seed {seed} is not a 32-bit unsigned integer")
    return spaces[space].size


def decode(param: Param, hpk: HpkFile) -> np.ndarray:
    values = hpk.space_values(param.spec["space"])
    return gather_signed(values, param.numel, param.spec["seed"]).reshape(param.shape)


def spaces_of(param: Param) -> list[str]:
    return [param.spec["space"]]


def decode_rows(param: Param, hpk: HpkFile, rows: np.ndarray) -> np.ndarray:
    """Rows ``rows`` of a 2-D hashed param (an embedding table), hashing only their indices
    ``row·D + j``: equal, bit for bit, to ``decode(param, hpk)[rows]``."""
    values = hpk.space_values(param.spec["space"])
    width = param.shape[1]
    entries = (np.asarray(rows, dtype=np.int64)[:, None] * width + np.arange(width)).reshape(-1)
    h = hash_indices(entries, param.spec["seed"])
    picked = values[h % np.uint32(values.shape[0])]
    return np.where(h & np.uint32(SIGN_BIT), -picked, picked).reshape(len(rows), width)

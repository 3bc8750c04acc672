"""``dense``: a float32 tensor stored as-is (biases, BatchNorm parameters, uncompressed layers)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ..hpk import HpkFile, Param, Space


def validate(param: Param, spaces: dict[str, Space], validator) -> None:
    where = f"param {param.name!r}"
    tensor = validator.field(param.spec, "tensor", str, where)
    validator.tensor(tensor, np.dtype("<f4"), param.shape, where)
    return None


def decode(param: Param, hpk: HpkFile) -> np.ndarray:
    return np.asarray(hpk.tensors[param.spec["tensor"]], dtype=np.float32)


def spaces_of(param: Param) -> list[str]:
    return []

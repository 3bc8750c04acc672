"""``fsnet`` (FSNet): every filter is a contiguous circular segment of one 1-D filter summary.

For a virtual tensor of shape [O, ...] with D = numel / O elements per filter, element j of
filter o is ``space[(o·stride + j) mod L]`` (L = the space size). Neighbouring filters overlap by
D - stride values. No hash, no seed: the layout is the formula (docs/FORMAT.md §4, ``fsnet``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..hpk import HpkFile, Param, Space

INT32_MAX = 2**31 - 1
_CHUNK = 1 << 16


def filter_positions(filters: int, length: int, stride: int, size: int, first: int = 0) -> np.ndarray:
    """FS positions (int64 [filters - first, length]) of filters first..filters-1."""
    starts = np.arange(first, filters, dtype=np.int64)[:, None] * stride
    return (starts + np.arange(length, dtype=np.int64)[None, :]) % size


def validate(param: Param, spaces: dict[str, Space], validator) -> int:
    where = f"param {param.name!r}"
    if len(param.shape) < 1:
        raise validator.fail(f"{where}: fsnet needs a shape with a filter dimension, got a scalar")
    space = validator.field(param.spec, "space", str, where)
    if space not in spaces:
        raise validator.fail(f"{where}: unknown space {space!r}")
    size = spaces[space].size
    stride = validator.field(param.spec, "stride", int, where)
    if not 1 <= stride <= size:
        raise validator.fail(f"{where}: stride {stride} outside [1, L = {size}]")
    filters = param.shape[0]
    length = param.numel // filters
    if stride * (filters - 1) + length - 1 > INT32_MAX:
        raise validator.fail(
            f"{where}: filter positions reach {stride * (filters - 1) + length - 1}, beyond int32 (2^31 - 1)"
        )
    return size


def decode(param: Param, hpk: HpkFile) -> np.ndarray:
    values = hpk.space_values(param.spec["space"])
    filters = param.shape[0]
    length = param.numel // filters
    stride = param.spec["stride"]
    out = np.empty((filters, length), dtype=np.float32)
    rows = max(1, _CHUNK // max(length, 1))
    for row in range(0, filters, rows):
        stop = min(filters, row + rows)
        out[row:stop] = values[filter_positions(stop, length, stride, values.shape[0], row)]
    return out.reshape(param.shape)


def stored_values(param: Param) -> int:
    return 0  # the summary is a space, counted once by the space itself


def describe(param: Param, hpk: HpkFile) -> dict[str, Any]:
    """What ``hashpack inspect`` shows: L, the filter stride and how much neighbours overlap."""
    space = hpk.spaces[param.spec["space"]]
    filters = param.shape[0]
    length = param.numel // filters
    stride = param.spec["stride"]
    return {
        "scheme": "fsnet",
        "L": space.size,
        "stride": stride,
        "filters": filters,
        "filter_length": length,
        "overlap": max(length - stride, 0),
        "bucket_dtype": space.dtype,
    }

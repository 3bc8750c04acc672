"""hashpack.runtime: read .hpk files and run them with numpy alone (no torch).

>>> from hashpack.runtime import load
>>> model = load("model.hpk")
>>> logits = model.run(x)
"""

from __future__ import annotations

from .errors import HpkFormatError, IdsOutOfRange
from .hpk import HpkFile, Node, Param, Space, ValueInfo, parse_hpk, read_hpk, serialize_hpk, write_hpk
from .model import Model, load

__all__ = [
    "HpkFile",
    "HpkFormatError",
    "IdsOutOfRange",
    "Model",
    "Node",
    "Param",
    "Space",
    "ValueInfo",
    "load",
    "parse_hpk",
    "read_hpk",
    "serialize_hpk",
    "write_hpk",
]

"""Compression schemes: how a param's values are stored and regenerated (docs/FORMAT.md §4).

Each scheme is one module exposing ``validate(param, spaces, validator) -> stored count | None``
and ``decode(param, hpk) -> float32 array of param.shape``. Adding a scheme is adding a module
and a line here.
"""

from __future__ import annotations

from types import ModuleType

from . import dense, hashed

SCHEMES: dict[str, ModuleType] = {"dense": dense, "hashed": hashed}


def decode_param(hpk, name: str):
    """The float32 values of param ``name`` of ``hpk``."""
    param = hpk.params[name]
    return SCHEMES[param.scheme].decode(param, hpk)

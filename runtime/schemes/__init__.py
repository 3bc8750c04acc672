"""Compression schemes: how a param's values are stored and regenerated (docs/FORMAT.md §4).

Each scheme is one module exposing ``validate(param, spaces, validator) -> stored count | None``
and ``decode(param, hpk) -> float32 array of param.shape``; optionally ``decode_work(param) ->
operations per weight`` (1 if absent; the reader caps the file's total, FORMAT.md §6), ``describe(param, hpk) ->
dict`` (what ``hashpack inspect`` shows) and ``spaces_of(param)``. Adding a scheme is adding a
module and a line here.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from . import dense, fresh, fsnet, funhash, hashed

SCHEMES: dict[str, ModuleType] = {
    "dense": dense,
    "hashed": hashed,
    "fresh": fresh,
    "funhash": funhash,
    "fsnet": fsnet,
}


def decode_param(hpk, name: str):
    """The float32 values of param ``name`` of ``hpk``."""
    param = hpk.params[name]
    return SCHEMES[param.scheme].decode(param, hpk)


def decode_work(param) -> int:
    """Operations the reader budgets to regenerate ``param`` (numel × the scheme's per-weight cost)."""
    per_weight = getattr(SCHEMES[param.scheme], "decode_work", None)
    return param.numel * (per_weight(param) if per_weight else 1)


def describe_param(hpk, name: str) -> dict[str, Any]:
    """Display fields of param ``name``: the scheme's ``describe``, or its spec for simple schemes."""
    param = hpk.params[name]
    scheme = SCHEMES[param.scheme]
    if hasattr(scheme, "describe"):
        return scheme.describe(param, hpk)
    fields: dict[str, Any] = {"scheme": param.scheme}
    space = param.spec.get("space")
    if isinstance(space, str) and space in hpk.spaces:
        fields.update(buckets=hpk.spaces[space].size, bucket_dtype=hpk.spaces[space].dtype)
    if "seed" in param.spec:
        fields["seed"] = param.spec["seed"]
    return fields

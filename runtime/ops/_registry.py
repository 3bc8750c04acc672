"""The op registry and the declarative checks run on every node when a file is read."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..hpk import Node, Param

Kernel = Callable[..., np.ndarray]

# attr kind -> predicate
_KINDS: dict[str, Callable[[Any], bool]] = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "pair": lambda v: isinstance(v, list) and len(v) == 2 and all(_KINDS["int"](x) and x >= 0 for x in v),
    "ints": lambda v: isinstance(v, list) and len(v) <= 8 and all(_KINDS["int"](x) for x in v),
}


@dataclass(frozen=True)
class OpDef:
    """An op: its kernel, the param slots (name -> rank) and attrs (name -> kind) it takes."""

    name: str
    kernel: Kernel
    params: dict[str, int] = field(default_factory=dict)
    optional_params: dict[str, int] = field(default_factory=dict)
    attrs: dict[str, str] = field(default_factory=dict)
    num_inputs: int | None = 1  # None: one or more
    validate: Callable[[dict[str, Any], dict[str, Param]], str | None] | None = None

    def check(self, node: Node, params: dict[str, Param]) -> str | None:
        """An error message if the node does not fit this op, else None."""
        if self.num_inputs is not None and len(node.inputs) != self.num_inputs:
            return f"takes {self.num_inputs} input(s), got {len(node.inputs)}"
        if self.num_inputs is None and not node.inputs:
            return "takes at least one input"
        slots = {**self.params, **self.optional_params}
        for slot in params:
            if slot not in slots:
                return f"unexpected param {slot!r}"
        for slot, rank in slots.items():
            if slot not in params:
                if slot in self.params:
                    return f"missing param {slot!r}"
                continue
            if len(params[slot].shape) != rank:
                return f"param {slot!r} has shape {list(params[slot].shape)}, expected rank {rank}"
        for attr, kind in self.attrs.items():
            if attr not in node.attrs:
                return f"missing attr {attr!r}"
            if not _KINDS[kind](node.attrs[attr]):
                return f"attr {attr!r} = {node.attrs[attr]!r} is not a valid {kind}"
        extra = set(node.attrs) - set(self.attrs)
        if extra:
            return f"unexpected attr {sorted(extra)[0]!r}"
        return self.validate(node.attrs, params) if self.validate else None


OPS: dict[str, OpDef] = {}


def register(
    name: str,
    params: dict[str, int] | None = None,
    optional_params: dict[str, int] | None = None,
    attrs: dict[str, str] | None = None,
    num_inputs: int | None = 1,
    validate: Callable[[dict[str, Any], dict[str, Param]], str | None] | None = None,
) -> Callable[[Kernel], Kernel]:
    """Register ``kernel(*inputs, **params_and_attrs) -> ndarray`` as op ``name``."""

    def decorate(kernel: Kernel) -> Kernel:
        OPS[name] = OpDef(
            name, kernel, params or {}, optional_params or {}, attrs or {}, num_inputs, validate
        )
        return kernel

    return decorate

"""The op registry and the declarative checks run on every node when a file is read.

Each op declares its param slots (with ranks), its attrs (with kinds), an optional static check
of attrs and params, and a shape rule. When a file is read, the shape rules walk the graph from
the declared input shape, so a graph the kernels could not run (a kernel larger than its input, a
reshape to the wrong element count, a concat axis out of range, ...) is a format error naming
the node, and so is one whose values or temporaries would exceed ``MAX_ELEMENTS`` per sample.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..hpk import Node, Param

Kernel = Callable[..., np.ndarray]
Shape = tuple[int | None, ...]  # a value's shape: None (the batch) first, then positive ints
# (input shapes, attrs, params) -> (output shape, work per sample); raises ValueError if they do not fit
ShapeRule = Callable[[list[Shape], dict[str, Any], dict[str, "Param"]], tuple[Shape, int]]

ANY_RANK = -1  # a param slot whose rank the op's own check decides (LayerNorm, Constant)
MAX_ELEMENTS = 2**28  # per sample, of any value or temporary (1 GiB of float32)
MAX_ATTR_INT = 2**31 - 1
FLOAT32_MAX = float(np.finfo(np.float32).max)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and -MAX_ATTR_INT - 1 <= v <= MAX_ATTR_INT


def _is_float32(v: Any) -> bool:
    """A JSON number that stays finite when read as float32 (False for NaN, inf, 1e400)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) <= FLOAT32_MAX


# attr kind -> predicate
_KINDS: dict[str, Callable[[Any], bool]] = {
    "int": _is_int,
    "bool": lambda v: isinstance(v, bool),
    "float": _is_float32,
    "pair": lambda v: isinstance(v, list) and len(v) == 2 and all(_is_int(x) and x >= 0 for x in v),
    "ints": lambda v: isinstance(v, list) and len(v) <= 8 and all(_is_int(x) for x in v),
}


@dataclass(frozen=True)
class OpDef:
    """An op: its kernel, the param slots (name -> rank) and attrs (name -> kind) it takes."""

    name: str
    kernel: Kernel
    infer: ShapeRule
    params: dict[str, int] = field(default_factory=dict)
    optional_params: dict[str, int] = field(default_factory=dict)
    attrs: dict[str, str] = field(default_factory=dict)
    # attrs a file may omit (added after version 1 shipped, so older files stay valid); the kernel
    # gives each a default
    optional_attrs: dict[str, str] = field(default_factory=dict)
    num_inputs: int | None = 1  # None: one or more
    ids_input: bool = False  # the first input is int32 token ids (Embedding), every other input float32
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
                return f"unexpected param {_show(slot)}"
        for slot, rank in slots.items():
            if slot not in params:
                if slot in self.params:
                    return f"missing param {slot!r}"
                continue
            if rank != ANY_RANK and len(params[slot].shape) != rank:
                return f"param {slot!r} has shape {list(params[slot].shape)}, expected rank {rank}"
        for attr, kind in self.attrs.items():
            if attr not in node.attrs:
                return f"missing attr {attr!r}"
            if not _KINDS[kind](node.attrs[attr]):
                return f"attr {attr!r} = {_show(node.attrs[attr])} is not a valid {kind}"
        for attr, kind in self.optional_attrs.items():
            if attr in node.attrs and not _KINDS[kind](node.attrs[attr]):
                return f"attr {attr!r} = {_show(node.attrs[attr])} is not a valid {kind}"
        extra = set(node.attrs) - set(self.attrs) - set(self.optional_attrs)
        if extra:
            return f"unexpected attr {_show(sorted(extra)[0])}"
        return self.validate(node.attrs, params) if self.validate else None


OPS: dict[str, OpDef] = {}


def register(
    name: str,
    *,
    infer: ShapeRule,
    params: dict[str, int] | None = None,
    optional_params: dict[str, int] | None = None,
    attrs: dict[str, str] | None = None,
    optional_attrs: dict[str, str] | None = None,
    num_inputs: int | None = 1,
    ids_input: bool = False,
    validate: Callable[[dict[str, Any], dict[str, Param]], str | None] | None = None,
) -> Callable[[Kernel], Kernel]:
    """Register ``kernel(*inputs, **params_and_attrs) -> ndarray`` as op ``name``."""

    def decorate(kernel: Kernel) -> Kernel:
        OPS[name] = OpDef(
            name,
            kernel,
            infer,
            params or {},
            optional_params or {},
            attrs or {},
            optional_attrs or {},
            num_inputs,
            ids_input,
            validate,
        )
        return kernel

    return decorate


# ------------------------------------------------------------------------------------ shape rules


def per_sample(shape: Shape) -> int:
    """Elements of one sample of a value (the batch dimension excluded)."""
    return math.prod(shape[1:])  # type: ignore[arg-type]


def check_elements(count: int, what: str) -> None:
    if count > MAX_ELEMENTS:
        raise ValueError(f"{what} would hold {count} elements per sample (limit {MAX_ELEMENTS})")


def elementwise(shapes: list[Shape], attrs: dict[str, Any], params: dict[str, Param]) -> tuple[Shape, int]:
    """The rule of ops whose output has their (single) input's shape."""
    return shapes[0], per_sample(shapes[0])


def require_rank(shape: Shape, ranks: tuple[int, ...], what: str = "input") -> None:
    if len(shape) not in ranks:
        expected = " or ".join(str(r) for r in ranks)
        raise ValueError(f"{what} {show_shape(shape)} has rank {len(shape)}, expected {expected}")


def show_shape(shape: Shape) -> str:
    return "[" + ", ".join("N" if d is None else str(d) for d in shape) + "]"


def _show(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."

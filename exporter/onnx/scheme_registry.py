"""The table of weight producers, one :class:`SchemeExport` per compression scheme.

Why its own module: ``weights.py`` (the registry's user, which imports every scheme module) and
the scheme modules (``fresh``, ``fsnet``, ``funhash``, which register themselves here) both need
it; neither imports the other's caller.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from onnx import AttributeProto, FunctionProto, helper

from hashpack.runtime import Param

from . import functions as hf

if TYPE_CHECKING:
    from .builder import GraphBuilder

__all__ = ["SCHEMES", "Producer", "SchemeExport", "call_function", "register_scheme", "scheme_producers"]

# (builder, param, output name) -> None: append whatever writes the param's float32 values to output.
Producer = Callable[["GraphBuilder", Param, str], None]


@dataclass(frozen=True)
class SchemeExport:
    """How one scheme's params are written in the compact and inline modes."""

    compact: Producer
    inline: Producer


SCHEMES: dict[str, SchemeExport] = {}


def register_scheme(name: str, compact: Producer, inline: Producer | None = None) -> None:
    """Register scheme ``name``; ``inline`` defaults to ``compact`` (for schemes stored densely)."""
    SCHEMES[name] = SchemeExport(compact=compact, inline=inline or compact)


def scheme_producers(name: str) -> SchemeExport:
    """The registered producers of scheme ``name`` (a scheme may delegate to another)."""
    return SCHEMES[name]


def call_function(
    b: GraphBuilder,
    op_type: str,
    build: Callable[[int], FunctionProto],
    inputs: list[str],
    output: str,
    **attrs: int | Sequence[int],
) -> None:
    """Append a call of the ai.hashpack function ``op_type`` (defining it in the model once).

    Every attribute is written, even when it equals a default: ``onnx.reference`` ignores
    FunctionProto defaults. Sequences become INTS attributes (also when empty, e.g. a scalar shape).
    """
    b.use_function(hf.DOMAIN, op_type, build)
    node = helper.make_node(op_type, inputs, [output], name=f"{output}/{op_type}", domain=hf.DOMAIN)
    for key, value in attrs.items():
        if isinstance(value, int):
            node.attribute.append(helper.make_attribute(key, value))
        else:
            node.attribute.append(helper.make_attribute(key, list(value), attr_type=AttributeProto.INTS))
    b.add_nodes([node])

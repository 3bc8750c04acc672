"""State shared by the op translators while one .hpk graph becomes a LiteRT main subgraph.

Why: a value of the .hpk graph (PyTorch semantics) may be needed in several layouts (NCHW for a
flatten, NHWC for a convolution, and after a Transpose any permutation of its axes, see
``layout.py``). The context keeps each value's PyTorch shape and the tensors that hold it per
layout, and converts lazily with one cached TRANSPOSE, so a chain of NHWC ops never goes back
and forth and a Transpose costs nothing until a consumer needs another order. It also hands out tensor names that can never clash with each other
or with the names the builder generates for anonymous tensors.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from hashpack.runtime import HpkFile, HpkFormatError

from .builder import ModelBuilder, SubgraphBuilder, TensorHandle
from .fusion import plan_fusions
from .layout import NHWC, TORCH, layout_perm, perm_layout
from .schema import schema
from .weights import WeightStore

__all__ = ["ExportContext", "Names", "Shape", "Value"]

Shape = tuple[int | None, ...]  # a PyTorch-order shape, None for the (dynamic) batch dimension

_GENERATED = re.compile(r"t\d+")  # what ModelBuilder calls anonymous tensors


class Names:
    """Unique tensor names per subgraph; a taken or builder-like name gets a ``~n`` suffix."""

    def __init__(self) -> None:
        self._used: dict[int, set[str]] = {}

    def claim(self, sg: SubgraphBuilder, base: str) -> str:
        used = self._used.setdefault(sg.index, set())
        name, n = base, 0
        while name in used or _GENERATED.fullmatch(name):
            n += 1
            name = f"{base}~{n}"
        used.add(name)
        return name


@dataclass
class Value:
    """A value of the .hpk graph: its PyTorch shape and the tensors holding it, by layout."""

    shape: Shape
    native: str  # the layout it was produced in
    handles: dict[str, TensorHandle] = field(default_factory=dict)


class ExportContext:
    """The model being built, its weights and the graph's values (see module docstring)."""

    def __init__(self, hpk: HpkFile, mode: str, description: str) -> None:
        self.hpk = hpk
        self.model = ModelBuilder(description=description)
        self.main = self.model.add_subgraph("main")
        self.names = Names()
        self.weights = WeightStore(hpk, mode, self.model, self.main, self.names, self.fail)
        self.fusions = plan_fusions(hpk, self.weights.is_constant)
        self.values: dict[str, Value] = {}

    def fail(self, message: str) -> HpkFormatError:
        return HpkFormatError(f"{self.hpk.source}: {message}")

    # -- values ----------------------------------------------------------------------------------
    def shape(self, name: str) -> Shape:
        return self.values[name].shape

    def layouts(self, name: str) -> tuple[str, ...]:
        """Layouts the value is available in without a new op, native first."""
        value = self.values[name]
        return (value.native, *(k for k in value.handles if k != value.native))

    def define(self, name: str, handle: TensorHandle, layout: str, shape: Shape) -> None:
        """Record that ``handle`` holds value ``name`` (PyTorch shape ``shape``) in ``layout``."""
        if layout == NHWC and len(shape) != 4:
            layout = TORCH
        if len(layout_perm(layout, len(shape))) != len(shape):
            raise ValueError(f"layout {layout} does not fit shape {list(shape)}")
        self.values[name] = Value(tuple(shape), layout, {layout: handle})

    def define_permuted(self, name: str, source: str, perm: Sequence[int]) -> None:
        """Value ``name`` is ``source.permute(perm)``: the same tensors, relabelled (no op).

        A tensor holding ``x`` in layout ``s`` holds ``y = x.permute(perm)`` in layout ``t`` with
        ``perm[t[i]] = s[i]``.
        """
        value, perm = self.values[source], tuple(perm)
        rank = len(perm)

        def relabel(layout: str) -> str:
            return perm_layout([perm.index(a) for a in layout_perm(layout, rank)])

        handles = {relabel(layout): handle for layout, handle in value.handles.items()}
        shape = tuple(value.shape[a] for a in perm)
        self.values[name] = Value(shape, relabel(value.native), handles)

    def alias(self, name: str, source: str) -> None:
        """``name`` is the same value as ``source`` (an identity op)."""
        self.values[name] = self.values[source]

    def get(self, name: str, layout: str = TORCH) -> TensorHandle:
        """Value ``name`` in ``layout`` (NHWC asked of rank != 4 means TORCH), transposing once."""
        value = self.values[name]
        rank = len(value.shape)
        if layout == NHWC and rank != 4:
            layout = TORCH
        if layout not in value.handles:
            held, wanted = layout_perm(value.native, rank), layout_perm(layout, rank)
            perm = [held.index(a) for a in wanted]
            value.handles[layout] = self.transpose(value.handles[value.native], perm, f"{name}/{layout}")
        return value.handles[layout]

    def get_torch_order(self, name: str) -> TensorHandle:
        """A tensor whose memory order is PyTorch's (its shape may be NHWC's if that is the same order).

        NHWC and NCHW store the same sequence when C == 1 or H·W == 1 (e.g. after global pooling),
        so a flatten or reshape needs no TRANSPOSE then.
        """
        value = self.values[name]
        if TORCH in value.handles or len(value.shape) != 4 or NHWC not in value.handles:
            return self.get(name, TORCH)
        _, c, h, w = value.shape
        if c == 1 or h * w == 1:  # type: ignore[operator]
            return value.handles[NHWC]
        return self.get(name, TORCH)

    # -- tensors and ops in the main subgraph ----------------------------------------------------
    def activation(self, base: str, shape: Sequence[int | None]) -> TensorHandle:
        """A float32 tensor of the main subgraph (``None`` = the dynamic batch dimension)."""
        return self.main.add_tensor(self.names.claim(self.main, base), np.float32, shape)

    def op(
        self,
        op: str,
        inputs: Sequence[TensorHandle | None],
        base: str,
        shape: Sequence[int | None],
        options: object | None = None,
    ) -> TensorHandle:
        """Add a main-subgraph op with one new float32 output named after ``base``."""
        out = self.activation(base, shape)
        self.main.add_op(op, inputs, [out], options)
        return out

    def int32(self, values: Sequence[int]) -> TensorHandle:
        """An int32 vector constant of the main subgraph (shapes, axes, permutations)."""
        return self.main.constant(np.asarray(values, dtype=np.int32))

    def transpose(self, x: TensorHandle, perm: Sequence[int], base: str) -> TensorHandle:
        shape = [None if i == 0 else x.shape[p] for i, p in enumerate(perm)] if perm[0] == 0 else None
        if shape is None:
            raise ValueError("the batch dimension must stay first")
        return self.op("TRANSPOSE", [x, self.int32(perm)], base, shape, schema.TransposeOptionsT())

    def reshape(self, x: TensorHandle, shape: Sequence[int], base: str) -> TensorHandle:
        """RESHAPE to ``[batch, *shape]``; the batch stays dynamic (-1)."""
        options = schema.ReshapeOptionsT()
        options.newShape = [-1, *shape]
        if math.prod(x.shape[1:]) != math.prod(shape):
            raise ValueError(f"cannot reshape {list(x.shape[1:])} to {list(shape)}")
        return self.op("RESHAPE", [x, self.int32([-1, *shape])], base, [None, *shape], options)

"""Weight producers: each compression scheme's params as float32 tensors, in three modes.

``once``
    the scheme's emitter runs in the CALL_ONCE init subgraph (``once.py``) and the result is
    stored in a resource variable the main subgraph reads: decompressed on the first invoke only.
``inline``
    the same emitter runs at the head of the main subgraph, so on every invoke (for runtimes
    without resource variables).
``expanded``
    the numpy runtime decodes the param and it is a constant dense tensor.

One emitter per scheme (docs/FORMAT.md §4, in ``schemes.py``), registered with
:func:`register_scheme`. Layers ask for weights while the graph is translated and get a
placeholder tensor at once; the emitters run at the end (:meth:`WeightStore.finish`) on every
request of their scheme and write the placeholders, in ops inserted at the head of the weight
subgraph. That lets ``hashed`` serve many small params with one shared hash chain, which keeps
the file within a few KiB of the .hpk.
Emitters use builtin integer ops only and produce each param in the element order of its
``layout.WeightView``. A scheme whose params are stored as-is (``dense``) has no emitter: its
params are constants in every mode. A scheme not registered here is an ``HpkFormatError`` naming
it, in every mode, so the three modes always accept the same files.

Spaces are stored in their .hpk dtype; float16 and int8 spaces are dequantized in the graph with
CAST (and one float32 MUL by the scale for int8, as FORMAT.md §3 says) once per space and
subgraph, before anything gathers from them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hashpack.runtime import HpkFile, HpkFormatError, Param
from hashpack.runtime.schemes import decode_param

from .builder import ModelBuilder, SubgraphBuilder, TensorHandle
from .hash_ops import emit_cast, emit_index_range, emit_reshape
from .layout import WeightView
from .once import OnceInitializer
from .schema import schema

if TYPE_CHECKING:  # context.py imports this module
    from .context import Names

__all__ = [
    "BATCH_SIZE",
    "CHUNK_SIZE",
    "IDENTITY",
    "SCHEMES",
    "WEIGHT_MODES",
    "Emitter",
    "Request",
    "SchemeExport",
    "WeightStore",
    "WeightUse",
    "each",
    "register_scheme",
]

WEIGHT_MODES = ("once", "inline", "expanded")
IDENTITY = WeightView()
# Params above CHUNK_SIZE virtual elements are decompressed in pieces of that size joined by
# CONCATENATION, and small params share one hash chain, at most BATCH_SIZE elements at a time:
# the ~20-40 bytes of temporaries per element stay below ~10 MiB (measured: LiteRT keeps the
# init subgraph's arena after CALL_ONCE, so this is also memory the interpreter keeps).
CHUNK_SIZE = 1 << 18
BATCH_SIZE = 1 << 18


@dataclass(frozen=True)
class Request:
    """One (param, view) a layer uses; the emitter writes its values into ``out``."""

    param: Param
    view: WeightView
    out: TensorHandle  # float32, shape view.shape(param.shape), in the weight subgraph


# (store, weight subgraph, every request of the scheme, in order) -> None
Emitter = Callable[["WeightStore", SubgraphBuilder, list[Request]], None]


@dataclass(frozen=True)
class WeightUse:
    """A weight as a layer uses it: ``view(param) · scale + shift`` (scale/shift: a folded BatchNorm).

    ``reference`` computes it from the numpy runtime's decoded param with the same float32
    operations the graph uses, so tests can compare LiteRT's tensor with it bit for bit.
    """

    param: str
    view: WeightView
    scale: np.ndarray | None = None  # broadcasts against the viewed weight
    shift: np.ndarray | None = None

    def reference(self, array: np.ndarray) -> np.ndarray:
        value = self.view.apply(np.asarray(array, dtype=np.float32))
        if self.scale is not None:
            value = value * self.scale
        if self.shift is not None:
            value = value + self.shift
        return np.ascontiguousarray(value, dtype=np.float32)

    @property
    def key(self) -> tuple:
        arrays = tuple(None if a is None else (a.shape, a.tobytes()) for a in (self.scale, self.shift))
        return (self.param, self.view, arrays)


@dataclass(frozen=True)
class SchemeExport:
    """How one scheme's params are produced in the graph (``emit=None``: stored dense)."""

    emit: Emitter | None
    exact: bool = True  # LiteRT reproduces the numpy runtime's values bit for bit


SCHEMES: dict[str, SchemeExport] = {}


def register_scheme(name: str, emit: Emitter | None, *, exact: bool = True) -> None:
    """Register scheme ``name``: its emitter, and whether its values are bit-exact in LiteRT."""
    SCHEMES[name] = SchemeExport(emit, exact)


def each(emit_one: Callable[[WeightStore, SubgraphBuilder, Request], None]) -> Emitter:
    """An emitter that handles its requests one at a time (most schemes)."""

    def emit(store: WeightStore, sg: SubgraphBuilder, requests: list[Request]) -> None:
        for request in requests:
            emit_one(store, sg, request)

    return emit


class WeightStore:
    """Produces every param the main subgraph uses, once per (param, view), in the chosen mode."""

    def __init__(
        self,
        hpk: HpkFile,
        mode: str,
        model: ModelBuilder,
        main: SubgraphBuilder,
        names: Names,
        fail: Callable[[str], HpkFormatError],
    ) -> None:
        if mode not in WEIGHT_MODES:
            raise ValueError(f"unknown weights mode {mode!r} (one of: {', '.join(WEIGHT_MODES)})")
        self.hpk = hpk
        self.mode = mode
        self.model = model
        self.main = main
        self.names = names
        self.fail = fail
        self._init: OnceInitializer | None = None
        self._arrays: dict[str, np.ndarray] = {}
        self._main: dict[tuple, TensorHandle] = {}
        self._shared: set[str] = set()
        self._emitted: dict[tuple[int, str, WeightView], TensorHandle] = {}
        self._pending: list[tuple[SubgraphBuilder, Request]] = []
        self._spaces: dict[tuple[int, str], TensorHandle] = {}
        self._indices: dict[tuple, TensorHandle] = {}
        # main-subgraph tensor name -> how it was made: lets tests read back the weights LiteRT uses
        self.exports: dict[str, WeightUse] = {}
        # once-mode variable (shared name) -> the weight it holds and its BatchNorm-fold constants
        # ("scale"/"shift" tensors of the init subgraph): materialize's slot recipes
        self.variable_uses: dict[str, tuple[WeightUse, dict[str, TensorHandle]]] = {}

    # -- where weights are computed --------------------------------------------------------------
    @property
    def weight_subgraph(self) -> SubgraphBuilder:
        """Where non-constant weights are computed: the init subgraph (once) or main (inline)."""
        if self.mode != "once":
            return self.main
        if self._init is None:
            self._init = OnceInitializer(self.model, self.main)
        return self._init.subgraph

    @property
    def initializer(self) -> OnceInitializer | None:
        """The CALL_ONCE initializer (once mode, when any weight is computed), else None."""
        return self._init

    def scheme(self, param: Param) -> SchemeExport:
        scheme = SCHEMES.get(param.scheme)
        if scheme is None:
            raise self.fail(
                f"param {param.name!r}: compression scheme {param.scheme!r} is not supported by the "
                f"TFLite exporter (supported: {', '.join(sorted(SCHEMES))})"
            )
        return scheme

    def is_constant(self, name: str) -> bool:
        """True if ``name`` becomes a constant tensor (expanded mode, or a densely stored scheme)."""
        return self.mode == "expanded" or self.scheme(self.hpk.params[name]).emit is None

    def array(self, name: str) -> np.ndarray:
        """The param's float32 values decoded by the numpy runtime (cached)."""
        if name not in self._arrays:
            self.scheme(self.hpk.params[name])
            self._arrays[name] = np.asarray(decode_param(self.hpk, name), dtype=np.float32)
        return self._arrays[name]

    # -- asking for weights (while the graph is translated) ---------------------------------------
    def weight(
        self,
        name: str,
        view: WeightView = IDENTITY,
        scale: np.ndarray | None = None,
        shift: np.ndarray | None = None,
    ) -> TensorHandle:
        """``view(param) · scale + shift`` as a tensor of the main subgraph, in this store's mode.

        ``scale``/``shift`` (float32, broadcasting against the view) fold a BatchNorm into the
        weight and bias of the layer before it; constants are folded in numpy, other weights in
        the weight subgraph (once: on the first invoke only).
        """
        use = WeightUse(name, view, scale, shift)
        if use.key not in self._main:
            base = name + view.tag + ("@folded" if scale is not None else "")
            if self.is_constant(name):
                value = use.reference(self.array(name))
                handle = self.main.constant(value, name=self.names.claim(self.main, base))
            else:
                sg = self.weight_subgraph
                value = self.emit(sg, name, view)
                folds: dict[str, TensorHandle] = {}
                for op, operand, options in (
                    ("MUL", scale, schema.MulOptionsT()),
                    ("ADD", shift, schema.AddOptionsT()),
                ):
                    if operand is not None:
                        last = op == "ADD" or shift is None
                        # named in main (inline: tests find weights by name), anonymous in init
                        out = self.names.claim(sg, base) if last and sg is self.main else None
                        const = sg.constant(operand)
                        folds["scale" if op == "MUL" else "shift"] = const
                        value = sg.op(op, [value, const], np.float32, value.shape, options, name=out)
                handle = self.publish(value, base, (use, folds))
            self._main[use.key] = handle
            self.exports[handle.name] = use
        return self._main[use.key]

    def emit(self, sg: SubgraphBuilder, name: str, view: WeightView = IDENTITY) -> TensorHandle:
        """Param ``name`` (viewed) in subgraph ``sg``: a constant, or a placeholder written by finish()."""
        key = (sg.index, name, view)
        if key not in self._emitted:
            param = self.hpk.params[name]
            if self.is_constant(name):
                base = self.names.claim(sg, name + view.tag)
                self._emitted[key] = sg.constant(view.apply(self.array(name)), name=base)
            else:
                self.scheme(param)
                # Named in main (tests find weights by name), anonymous in the init subgraph.
                base = self.names.claim(sg, name + view.tag) if sg is self.main else None
                out = sg.add_tensor(base, np.float32, view.shape(param.shape))
                self._pending.append((sg, Request(param, view, out)))
                self._emitted[key] = out
        return self._emitted[key]

    def publish(
        self, value: TensorHandle, base: str, use: tuple[WeightUse, dict[str, TensorHandle]] | None = None
    ) -> TensorHandle:
        """Make a tensor of the weight subgraph usable in main (once: through a resource variable).

        The variable is named after ``base`` (made unique: a param may be used plain and folded);
        ``use`` (what the variable holds, and the constants of a folded BatchNorm) is recorded in
        ``variable_uses`` for materialize templates.
        """
        if value.subgraph == self.main.index:
            return value
        assert self._init is not None
        name, n = base, 0
        while name in self._shared:
            n += 1
            name = f"{base}~{n}"
        self._shared.add(name)
        if use is not None:
            self.variable_uses[name] = use
        self._init.assign(name, value)
        return self._init.read(name)

    def finish(self) -> None:
        """Run the emitters on every pending request, in ops at the head of the weight subgraphs."""
        by_subgraph: dict[int, tuple[SubgraphBuilder, dict[str, list[Request]]]] = {}
        for sg, request in self._pending:
            by_subgraph.setdefault(sg.index, (sg, {}))[1].setdefault(request.param.scheme, []).append(request)
        self._pending.clear()
        for sg, by_scheme in by_subgraph.values():
            with sg.inserting_at(0):  # before every consumer: layers, BatchNorm folds, ASSIGN_VARIABLE
                for scheme, requests in by_scheme.items():
                    emit = SCHEMES[scheme].emit
                    assert emit is not None
                    emit(self, sg, requests)

    # -- tools for scheme emitters ---------------------------------------------------------------
    def space(self, sg: SubgraphBuilder, name: str) -> TensorHandle:
        """The float32 values of space ``name`` in ``sg``, dequantized in the graph (cached)."""
        key = (sg.index, name)
        if key not in self._spaces:
            space = self.hpk.spaces[name]
            raw = np.asarray(self.hpk.tensors[space.tensor])
            stored = sg.constant(raw, name=self.names.claim(sg, f"spaces/{name}"))
            if space.dtype == "float32":
                values = stored
            elif space.dtype == "float16":
                values = emit_cast(sg, stored, np.float32)
            elif space.dtype == "int8":
                widened = emit_cast(sg, stored, np.float32)
                scale = sg.constant(np.float32(space.scale))
                values = sg.op("MUL", [widened, scale], np.float32, widened.shape, schema.MulOptionsT())
            else:
                raise self.fail(f"space {name!r}: bucket dtype {space.dtype!r} is not supported")
            self._spaces[key] = values
        return self._spaces[key]

    def index_chunks(
        self,
        sg: SubgraphBuilder,
        shape: Sequence[int],
        view: WeightView,
        strides: Sequence[int] | None = None,
        chunk: int | None = None,
    ) -> list[TensorHandle]:
        """int32 tensors of ``sum_a pos_a · strides[a]`` for every viewed element, in view order.

        With the default (row-major) strides that is the PyTorch flat index the hash needs; a
        scheme may pass others (fsnet). Params above ``chunk`` elements (default CHUNK_SIZE)
        come in chunks of about that many elements split along the first axis; concatenated
        along axis 0, the chunks are the view. Cached: indices do not depend on seeds, so
        same-shaped layers share them.
        """
        shape = tuple(int(d) for d in shape)
        numel = math.prod(view.shape(shape))
        chunk = CHUNK_SIZE if chunk is None else chunk
        split = numel > chunk
        if strides is None and view.is_identity(shape):
            step = chunk if split else numel
            return [
                self._cached(
                    ("range", sg.index, a, min(numel, a + step)),
                    lambda a=a: emit_index_range(sg, a, min(numel, a + step)),
                )
                for a in range(0, numel, step)
            ]
        terms = view.index_terms(shape, strides)
        first = terms[0].shape[0]
        step = max(1, chunk // (numel // first)) if split else first
        key = ("terms", sg.index, shape, view, tuple(strides or ()))
        return [
            self._cached((*key, a), lambda a=a: self._sum_terms(sg, [terms[0][a : a + step], *terms[1:]]))
            for a in range(0, first, step)
        ]

    def _cached(self, key: tuple, build: Callable[[], TensorHandle]) -> TensorHandle:
        if key not in self._indices:
            self._indices[key] = build()
        return self._indices[key]

    @staticmethod
    def _sum_terms(sg: SubgraphBuilder, terms: list[np.ndarray]) -> TensorHandle:
        """Broadcast ADD of small int32 constants (one per group of axes) into the index tensor."""
        total = sg.constant(terms[0])
        shape = list(terms[0].shape)
        for term in terms[1:]:
            shape = [max(a, b) for a, b in zip(shape, term.shape, strict=True)]
            total = sg.op("ADD", [total, sg.constant(term)], np.int32, shape, schema.AddOptionsT())
        return total

    def write(self, sg: SubgraphBuilder, value: TensorHandle, out: TensorHandle) -> None:
        """Store ``value`` into the placeholder ``out`` (a RESHAPE: same elements, out's shape)."""
        if value.size != out.size:
            raise AssertionError(f"{value.size} values for a placeholder of shape {out.shape}")
        options = schema.ReshapeOptionsT()
        options.newShape = list(out.shape)
        sg.add_op("RESHAPE", [value, sg.constant(np.asarray(out.shape, np.int32))], [out], options)

    def concat(self, sg: SubgraphBuilder, pieces: list[TensorHandle], axis: int = 0) -> TensorHandle:
        """CONCATENATION of same-rank tensors (the piece itself if there is one)."""
        if len(pieces) == 1:
            return pieces[0]
        options = schema.ConcatenationOptionsT()
        options.axis = axis
        shape = list(pieces[0].shape)
        shape[axis] = sum(p.shape[axis] for p in pieces)
        return sg.op("CONCATENATION", pieces, pieces[0].dtype, shape, options)

    def split(self, sg: SubgraphBuilder, x: TensorHandle, sizes: list[int]) -> list[TensorHandle]:
        """SPLIT_V along axis 0 into consecutive pieces (the tensor itself if one piece)."""
        if len(sizes) == 1:
            return [x]
        parts = [sg.add_tensor(None, x.dtype, [n, *x.shape[1:]]) for n in sizes]
        options = schema.SplitVOptionsT()
        options.numSplits = len(sizes)
        axis = sg.constant(np.int32(0))
        sg.add_op("SPLIT_V", [x, sg.constant(np.asarray(sizes, np.int32)), axis], parts, options)
        return parts

    def flat(self, sg: SubgraphBuilder, x: TensorHandle) -> TensorHandle:
        """``x`` as a 1-D tensor (a RESHAPE unless it already is one)."""
        if len(x.shape) == 1:
            return x
        options = schema.ReshapeOptionsT()
        options.newShape = [x.size]
        return sg.op("RESHAPE", [x, sg.constant(np.asarray([x.size], np.int32))], x.dtype, [x.size], options)

    def elementwise(
        self,
        sg: SubgraphBuilder,
        request: Request,
        value_at: Callable[[TensorHandle], TensorHandle],
        strides: Sequence[int] | None = None,
        chunk: int | None = None,
    ) -> None:
        """Write a param whose every element is a function of its own index alone.

        ``value_at(index)`` maps an int32 index tensor to float32 values (same elements, in the
        same order, any shape); this runs it per chunk and writes the chunks, in view order, into
        ``request.out``. ``chunk`` bounds the elements per chunk (schemes with big temporaries
        per element pass less).
        """
        param, view = request.param, request.view
        pieces = [value_at(index) for index in self.index_chunks(sg, param.shape, view, strides, chunk)]
        if len(pieces) > 1:
            pieces = [self.flat(sg, piece) for piece in pieces]
        self.write(sg, self.concat(sg, pieces), request.out)

    def write_view(self, sg: SubgraphBuilder, full: TensorHandle, request: Request) -> None:
        """Write a param computed whole in PyTorch order: SLICE the rows and TRANSPOSE in the graph.

        For schemes whose elements are not functions of their own index (fresh's inverse DCT
        mixes a filter's taps), so the view cannot be had by permuting indices.
        """
        param, view = request.param, request.view
        if view.is_identity(param.shape):
            self.write(sg, full, request.out)
            return
        x = full
        if tuple(x.shape) != param.shape:
            x = emit_reshape(sg, x, param.shape)
        if view.rows is not None:
            start, stop = view.rows
            begin = [start, *([0] * (len(param.shape) - 1))]
            size = [stop - start, *param.shape[1:]]
            x = sg.op(
                "SLICE",
                [x, sg.constant(np.asarray(begin, np.int32)), sg.constant(np.asarray(size, np.int32))],
                np.float32,
                size,
                schema.SliceOptionsT(),
            )
        if view.perm is not None:
            perm = sg.constant(np.asarray(view.perm, np.int32))
            shape = [x.shape[a] for a in view.perm]
            x = sg.op("TRANSPOSE", [x, perm], np.float32, shape, schema.TransposeOptionsT())
        self.write(sg, x, request.out)

"""The ONNX graph under construction, shared by the op translators and the weight producers.

Why one object: op translators (``graph.py``) and weight producers (``weights.py``) append to the
same graph. The builder hands out tensor names that can never collide with the .hpk's own value
names (which become ONNX tensor names verbatim), materialises each param and space once, on first
use (so a space shared by a weight and its bias is stored and dequantized once), and records which
``ai.hashpack`` functions the graph calls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from hashpack.runtime import HpkFile, HpkFormatError, Param
from hashpack.runtime.ops import OPS

from .batch import HashBatch
from .external_weights import LOCATION
from .functions import Emitter

__all__ = ["GraphBuilder", "Names"]


class Names:
    """Collision-free tensor names and name prefixes.

    The .hpk graph's value names are reserved first. Every generated name or prefix is claimed
    here; a claimed prefix is a namespace of its own (the inline emitters derive their
    intermediates' names from it), so no other name may start with it.
    """

    def __init__(self, reserved: Iterable[str]) -> None:
        self._taken: set[str] = set(reserved)
        self._prefixes: list[str] = []

    def _free(self, name: str, as_prefix: bool) -> bool:
        if not name or name in self._taken or any(name.startswith(p) for p in self._prefixes):
            return False
        if as_prefix:
            return not any(t.startswith(name) for t in self._taken) and not any(
                p.startswith(name) for p in self._prefixes
            )
        return True

    def _claim(self, base: str, as_prefix: bool) -> str:
        candidate, counter = base, 0
        while not self._free(candidate, as_prefix):
            counter += 1
            candidate = f"{base.rstrip('/')}~{counter}" + ("/" if as_prefix else "")
        (self._prefixes.append if as_prefix else self._taken.add)(candidate)
        return candidate

    def claim(self, base: str) -> str:
        """``base`` if free, else ``base~1``, ``base~2``, ..."""
        return self._claim(base, as_prefix=False)

    def claim_prefix(self, base: str) -> str:
        """A prefix (ending in ``/``) that starts no other name, for an emitter's intermediates."""
        return self._claim(base if base.endswith("/") else base + "/", as_prefix=True)


class GraphBuilder:
    """Nodes, initializers and function definitions of the ONNX model being exported.

    ``weights`` is the export mode ("compact", "inline", "expanded" or "external"), ``opset`` the default
    domain's opset (the ai.hashpack functions are built for the same opset). ``embedding_rows``:
    in compact mode, decompress only the looked-up rows of hashed embedding tables (transformer.py).
    """

    def __init__(self, hpk: HpkFile, weights: str, opset: int, embedding_rows: bool = True) -> None:
        self.hpk = hpk
        self.weights = weights
        self.opset = opset
        self.embedding_rows = embedding_rows
        values = [*(v.name for v in (*hpk.inputs, *hpk.outputs)), *(o for n in hpk.nodes for o in n.outputs)]
        self.names = Names(values)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.functions: dict[tuple[str, str], onnx.FunctionProto] = {}
        self._params: dict[str, str] = {}
        self.external: list[tuple[str, str]] = []  # (initializer, param) of the external mode
        self._spaces: dict[str, str] = {}
        self._space_lengths: dict[str, int] = {}
        self._shared: dict[tuple, str] = {}
        self._emitters: dict[str, int] = {}
        self._constants: dict[tuple[str, bytes, tuple[int, ...]], str] = {}
        self._node_names: set[str] = set()
        self._shapes: dict[str, tuple[int | None, ...]] | None = None
        self._shaped = 0  # nodes whose output shape is in _shapes
        self.hash_batch = HashBatch(self)

    def fail(self, message: str) -> HpkFormatError:
        """The error for anything in the .hpk this exporter cannot translate."""
        return HpkFormatError(f"{self.hpk.source}: {message}")

    def shape(self, value: str) -> tuple[int | None, ...]:
        """The shape of .hpk value ``value`` (``None`` for the batch), by the spec's shape rules.

        Some ops lower differently by input size (ceil_mode pooling, adaptive pooling), so the
        translators need static shapes; they come from the runtime's registry, the same rules the
        reader checked.
        """
        if self._shapes is None:
            self._shapes = {self.hpk.input.name: tuple(self.hpk.input.shape)}
        nodes = self.hpk.nodes
        while value not in self._shapes and self._shaped < len(nodes):  # up to the value asked for
            node = nodes[self._shaped]
            self._shaped += 1
            definition = OPS.get(node.op)
            try:
                if definition is None:
                    raise ValueError(f"unknown op {node.op!r}")
                inputs = [self._shapes[name] for name in node.inputs]
                params = {slot: self.hpk.params[name] for slot, name in node.params.items()}
                shape, _ = definition.infer(inputs, node.attrs, params)
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                raise self.fail(f"node {node.name!r} ({node.op}): cannot infer its shape: {exc}") from None
            self._shapes[node.outputs[0]] = tuple(shape)
        if value not in self._shapes:
            raise self.fail(f"value {value!r} is produced by no node")
        return self._shapes[value]

    # -- graph content
    def node(
        self,
        op_type: str,
        inputs: Sequence[str],
        outputs: Sequence[str],
        name: str,
        domain: str = "",
        **attrs: Any,
    ) -> None:
        """Append one node (attributes with a ``None`` value are left out).

        ONNX Runtime rejects two nodes of one name, which a valid .hpk may have (FORMAT.md §5 makes
        outputs unique, not names): a repeated name gets ``~1``, ``~2``, ...
        """
        attrs = {key: value for key, value in attrs.items() if value is not None}
        unique, counter = name, 0
        while unique and unique in self._node_names:
            counter += 1
            unique = f"{name}~{counter}"
        self._node_names.add(unique)
        self.nodes.append(
            helper.make_node(op_type, list(inputs), list(outputs), name=unique, domain=domain, **attrs)
        )

    def add_nodes(self, nodes: Iterable[onnx.NodeProto]) -> None:
        self.nodes.extend(nodes)

    def add_emitted(self, em: Emitter) -> None:
        """Append an inline emitter's nodes without node names (optional in ONNX; each node's
        output already identifies it, and the names would add ~25 bytes a node to the inline form)."""
        for node in em.nodes:
            node.name = ""
        self.nodes.extend(em.nodes)

    def initializer(self, array: np.ndarray, hint: str) -> str:
        """Store ``array`` (dtype and shape as given) under a fresh name derived from ``hint``."""
        return self.store(array, self.names.claim(hint))

    def store(self, array: np.ndarray, name: str) -> str:
        """Store ``array`` as initializer ``name`` (a name already claimed from :attr:`names`)."""
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def declare_external(self, param: Param, name: str) -> None:
        """Initializer ``name``: param ``param``'s float32 values, supplied by the app (external mode)."""
        tensor = onnx.TensorProto(name=name, data_type=onnx.TensorProto.FLOAT, dims=param.shape)
        tensor.data_location = onnx.TensorProto.EXTERNAL
        entry = tensor.external_data.add()
        entry.key, entry.value = "location", LOCATION
        self.initializers.append(tensor)
        self.external.append((name, param.name))

    def constant(self, array: np.ndarray | float | Sequence[int], dtype: Any, hint: str) -> str:
        """A small constant initializer, shared by every use of the same dtype, shape and value."""
        value = np.asarray(array, dtype=dtype)
        key = (value.dtype.str, value.tobytes(), value.shape)
        if key not in self._constants:
            self._constants[key] = self.initializer(value, hint)
        return self._constants[key]

    def use_function(self, domain: str, name: str, build: Callable[[int], onnx.FunctionProto]) -> None:
        """Add the model-local function ``domain.name`` (``build(opset)``, called once per model)."""
        if (domain, name) not in self.functions:
            self.functions[domain, name] = build(self.opset)

    # -- weights, materialised on first use
    def param(self, name: str) -> str:
        """The tensor holding param ``name``'s float32 values in the chosen weights mode."""
        if name not in self._params:
            from .weights import emit_param  # weights.py builds on this module

            self._params[name] = emit_param(self, self.hpk.params[name])
        return self._params[name]

    def space(self, name: str) -> str:
        """The tensor holding space ``name``'s dequantized float32 bucket values."""
        if name not in self._spaces:
            from .weights import emit_space

            self._spaces[name] = emit_space(self, self.hpk.spaces[name])
            self._space_lengths[self._spaces[name]] = self.hpk.spaces[name].size
        return self._spaces[name]

    def space_length(self, tensor: str) -> int:
        """K of the space whose float32 values :meth:`space` returned as ``tensor``."""
        return self._space_lengths[tensor]

    def emitter(self, kind: str) -> Emitter:
        """An Emitter for inline nodes, under a short fresh prefix (``kind0/``, ``kind1/``, ...).

        Short because every intermediate name appears three times per node: it keeps the inline
        form small.
        """
        count = self._emitters.get(kind, 0)
        self._emitters[kind] = count + 1
        return Emitter(prefix=self.names.claim_prefix(f"{kind}{count}/"))

    def shared(self, key: tuple, build: Callable[[], str]) -> str:
        """``build()`` once per ``key`` (e.g. a basis matrix used by several params)."""
        if key not in self._shared:
            self._shared[key] = build()
        return self._shared[key]

    # -- completion
    def finish(self) -> list[onnx.NodeProto]:
        """Flush pending batched work and return the nodes in topological order."""
        self.hash_batch.flush()
        available = {self.hpk.input.name, *(t.name for t in self.initializers)}
        return topological_order(self.nodes, available)


def topological_order(nodes: Sequence[onnx.NodeProto], available: Iterable[str]) -> list[onnx.NodeProto]:
    """``nodes`` sorted so every input is produced first (stable: dependencies move up, nothing else).

    Emitters may append a node before the nodes producing its inputs (the batched hash pass is
    flushed last); ONNX requires topological order. Iterative, so deep chains are fine.
    """
    producer = {out: i for i, node in enumerate(nodes) for out in node.output if out}
    known = set(available)
    state = [0] * len(nodes)  # 0 unseen, 1 waiting for its inputs, 2 placed
    order: list[onnx.NodeProto] = []
    for root in range(len(nodes)):
        stack = [(root, False)]
        while stack:
            i, inputs_placed = stack.pop()
            if state[i] == 2:
                continue
            if inputs_placed:
                state[i] = 2
                order.append(nodes[i])
                continue
            if state[i] == 1:
                raise ValueError(f"node {nodes[i].name or nodes[i].output[0]!r} depends on itself")
            state[i] = 1
            stack.append((i, True))
            for name in reversed(nodes[i].input):
                if name and name not in known:
                    j = producer.get(name)
                    if j is None:
                        raise ValueError(f"node {nodes[i].name!r}: input {name!r} is produced by no node")
                    if state[j] != 2:
                        stack.append((j, False))
    return order

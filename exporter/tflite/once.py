"""``once`` mode: decompress weights on the first invoke into resource variables, then reuse them.

Why: LiteRT does no constant folding, so an in-graph decompression would rerun on every invoke.
A CALL_ONCE operator at the head of the main subgraph runs an init subgraph exactly once per
interpreter; the init subgraph computes each weight and ASSIGN_VARIABLEs it to a resource
variable named by ``shared_name``; the main subgraph reads it with READ_VARIABLE. All of these are
builtin ops (runtime >= 2.6), so stock LiteRT runs the model.
"""

from __future__ import annotations

import numpy as np

from .builder import RESOURCE, ModelBuilder, SubgraphBuilder, TensorHandle
from .schema import schema

__all__ = ["WEIGHTS_SIGNATURE", "WEIGHTS_TRIGGER", "OnceInitializer"]

WEIGHTS_SIGNATURE = "hashpack_weights"  # one output per variable, named by shared name
WEIGHTS_TRIGGER = "trigger"  # its one input, float32 [1], ignored: LiteRT's Java API needs an input


def _var_handle(sg: SubgraphBuilder, shared_name: str, named: bool = True) -> TensorHandle:
    options = schema.VarHandleOptionsT()
    options.container = ""
    options.sharedName = shared_name
    return sg.op("VAR_HANDLE", [], RESOURCE, [], options, name=f"{shared_name}/handle" if named else None)


class OnceInitializer:
    """An init subgraph run by CALL_ONCE from ``main``; emit weight computations into ``.subgraph``.

    Usage: ``init = OnceInitializer(model, main)``; build ``w`` in ``init.subgraph``;
    ``init.assign("fc1.weight", w)``; in the main graph use ``init.read("fc1.weight")``.
    """

    def __init__(self, model: ModelBuilder, main: SubgraphBuilder, name: str = "hashpack_init") -> None:
        self.model = model
        self.main = main
        self.subgraph = model.add_subgraph(name)
        self._variables: dict[str, TensorHandle] = {}
        self._reads: dict[tuple[int, str], TensorHandle] = {}
        self._callers: set[int] = set()
        self._call_once(main)

    def _call_once(self, sg: SubgraphBuilder) -> None:
        """Put CALL_ONCE first in ``sg`` (whatever was added before): its reads must follow it."""
        if sg.index in self._callers:
            return
        if sg.index == self.subgraph.index:
            raise ValueError("the init subgraph cannot read its own variables")
        options = schema.CallOnceOptionsT()
        options.initSubgraphIndex = self.subgraph.index
        sg.add_op("CALL_ONCE", [], [], options, position=0)
        self._callers.add(sg.index)

    def add_weights_signature(self) -> None:
        """A signature that returns every variable (``materialize.py`` uses it).

        Its subgraph reads the variables after its own CALL_ONCE, so it works on a fresh
        interpreter as well as after inference has run. Its one input is ignored: LiteRT's Java
        ``runSignature`` refuses an empty input map.
        """
        sg = self.model.add_subgraph(WEIGHTS_SIGNATURE)
        trigger = sg.add_input(WEIGHTS_TRIGGER, np.float32, [1])
        outputs = {name: self.read(name, sg, named=False) for name in self._variables}
        for handle in outputs.values():
            sg.mark_output(handle)
        self.model.add_signature(sg, WEIGHTS_SIGNATURE, {WEIGHTS_TRIGGER: trigger}, outputs)

    @property
    def variables(self) -> dict[str, tuple[int, ...]]:
        """Shapes of the variables assigned so far, by shared name."""
        return {k: v.shape for k, v in self._variables.items()}

    def assign(self, shared_name: str, value: TensorHandle) -> None:
        """Store ``value`` (a tensor of the init subgraph) into the variable ``shared_name``."""
        if shared_name in self._variables:
            raise ValueError(f"variable {shared_name!r} assigned twice")
        if value.subgraph != self.subgraph.index:
            raise ValueError(f"tensor {value.name!r} is not in the init subgraph")
        handle = _var_handle(self.subgraph, shared_name)
        self.subgraph.add_op("ASSIGN_VARIABLE", [handle, value], [], schema.AssignVariableOptionsT())
        self._variables[shared_name] = value

    def read(
        self, shared_name: str, subgraph: SubgraphBuilder | None = None, named: bool = True
    ) -> TensorHandle:
        """The variable's value in ``subgraph`` (default: main); one READ_VARIABLE per subgraph.

        ``named=False`` leaves the handle and value tensors unnamed (smaller file).

        Reading from another subgraph (e.g. a second signature) gives it its own CALL_ONCE; the
        runtime still runs the init subgraph only once per interpreter.
        """
        sg = self.main if subgraph is None else subgraph
        self._call_once(sg)
        if shared_name not in self._variables:
            raise KeyError(f"variable {shared_name!r} is read before it is assigned")
        key = (sg.index, shared_name)
        if key not in self._reads:
            value = self._variables[shared_name]
            handle = _var_handle(sg, shared_name, named)
            self._reads[key] = sg.op(
                "READ_VARIABLE",
                [handle],
                np.dtype(value.dtype),
                value.shape,
                schema.ReadVariableOptionsT(),
                name=f"{shared_name}/value" if named else None,
            )
        return self._reads[key]

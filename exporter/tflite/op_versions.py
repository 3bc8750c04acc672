"""Builtin operator versions for the ops and types hashpack emits.

Why: a runtime looks kernels up by (op, version). Declaring the version the TF converter would
(e.g. MUL on uint32 is version 7) makes a runtime too old for a type fail at load time with
"didn't find op for builtin opcode ... version ..." instead of inside a kernel. The rules follow
TFLite's ``GetBuiltinOperatorVersion`` for float/integer (non-quantised) tensors; ops not listed
are version 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["builtin_op_version"]

_U32, _I64, _I8, _F16 = np.dtype(np.uint32), np.dtype(np.int64), np.dtype(np.int8), np.dtype(np.float16)


def _dtype(t: object) -> np.dtype | None:
    dtype = getattr(t, "dtype", None)
    return dtype if isinstance(dtype, np.dtype) else None


def _rank(t: object | None) -> int:
    return len(getattr(t, "shape", ()))


def builtin_op_version(op: str, inputs: Sequence[object | None], outputs: Sequence[object]) -> int:
    """Version of builtin ``op`` (schema name) for these input/output tensor handles."""
    first_in = _dtype(inputs[0]) if inputs and inputs[0] is not None else None
    first_out = _dtype(outputs[0]) if outputs else None
    rank = _rank(inputs[0]) if inputs else 0
    if op == "TRANSPOSE":  # rank 5 needs version 4, rank 6 version 6
        return 6 if rank > 5 else 4 if rank > 4 else 1
    if op == "SLICE":
        return 5 if rank > 4 else 1
    if op in ("PAD", "PADV2"):
        return 4 if rank > 4 else 1
    if op == "DIV":  # broadcasting beyond rank 4
        shapes = [getattr(t, "shape", ()) for t in inputs if t is not None]
        return 2 if len(set(shapes)) > 1 and max(map(len, shapes)) > 4 else 1
    if op == "MUL":
        return {_U32: 7, _I64: 5, _I8: 2}.get(first_in, 1)
    if op == "ADD":
        return {_I64: 4, _I8: 2}.get(first_in, 1)
    if op == "RANGE":
        return 2 if first_in == _I64 else 1
    if op == "CONCATENATION":
        return {_U32: 4, _I8: 2}.get(first_in, 1)
    if op == "GATHER":
        return 2 if first_in == _I8 else 1
    if op == "CAST":
        types = {first_in, first_out}
        if _F16 in types:
            return 5
        if _I8 in types:
            return 3
        return 2 if _U32 in types else 1
    if op == "BROADCAST_TO":  # version 1 was the custom op's: the builtin starts at 2
        return 2
    if op == "FULLY_CONNECTED":
        return 6 if len(inputs) == 2 else 1  # no bias slot at all needs version 6
    return 1

"""The TFLite flatbuffer schema, from the one place that ships a generated object API.

Why here: ``ai_edge_litert.schema_py_generated`` (the LiteRT wheel's own generated code, so it
matches the runtime we test on) has ``ModelT``/``.Pack()``; the ``tflite`` PyPI package only has
the low-level builders. Everything else in this package imports the schema from this module so a
future switch of source is a one-line change. Importing it loads no native code.
"""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as schema

__all__ = ["NUMPY_TO_TFLITE", "TFLITE_FILE_IDENTIFIER", "opcode", "schema", "tflite_type"]

TFLITE_FILE_IDENTIFIER = b"TFL3"

NUMPY_TO_TFLITE: dict[np.dtype, int] = {
    np.dtype(np.float32): schema.TensorType.FLOAT32,
    np.dtype(np.float16): schema.TensorType.FLOAT16,
    np.dtype(np.int32): schema.TensorType.INT32,
    np.dtype(np.int64): schema.TensorType.INT64,
    np.dtype(np.uint32): schema.TensorType.UINT32,
    np.dtype(np.uint8): schema.TensorType.UINT8,
    np.dtype(np.int8): schema.TensorType.INT8,
    np.dtype(np.int16): schema.TensorType.INT16,
    np.dtype(np.bool_): schema.TensorType.BOOL,
}


def tflite_type(dtype: np.dtype | type | str) -> int:
    """The ``TensorType`` code of a numpy dtype (``"resource"`` for resource-variable handles)."""
    if isinstance(dtype, str) and dtype == "resource":
        return schema.TensorType.RESOURCE
    try:
        return NUMPY_TO_TFLITE[np.dtype(dtype)]
    except KeyError:
        raise ValueError(f"dtype {dtype} has no TFLite tensor type here") from None


def opcode(op: str | int) -> int:
    """A ``BuiltinOperator`` code from its schema name (``"MUL"``) or the code itself."""
    if isinstance(op, int):
        return op
    try:
        return int(getattr(schema.BuiltinOperator, op))
    except AttributeError:
        raise ValueError(f"unknown TFLite builtin operator {op!r}") from None

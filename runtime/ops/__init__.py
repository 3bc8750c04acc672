"""Graph ops of the numpy runtime (docs/FORMAT.md §5).

Like onnx's reference evaluator: each op is one small function registered under its name with
the params and attrs it takes; the evaluator (``runtime/model.py``) knows nothing about any op.
"""

from __future__ import annotations

# Importing the modules registers their ops.
from . import activation, conv, linear, normalization, pooling, tensor, transformer  # noqa: F401
from ._registry import OPS, OpDef, register

__all__ = ["OPS", "OpDef", "register"]

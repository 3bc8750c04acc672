"""ONNX export of .hpk files: ``export_onnx`` (compact, inline, expanded, external) and ``save_optimized``.

>>> from hashpack.exporter.onnx import export_onnx, save_optimized
>>> export_onnx("model.hpk", "model.onnx")                       # compact (default)
>>> export_onnx("model.hpk", "dense.onnx", weights="expanded")
>>> export_onnx("model.hpk", "graph.onnx", weights="external")   # the app supplies the weights
>>> save_optimized("model.onnx", "model.folded.onnx")          # decompress once, cache

See docs/ONNX.md for the modes, the trade-offs and the tolerances.
"""

from __future__ import annotations

from .export import (
    BATCH_DIM,
    DEFAULT_OPSET,
    EXTERNAL_MODE,
    WEIGHT_MODES,
    build_onnx,
    export_onnx,
    serialize_onnx,
)
from .optimize import save_optimized

__all__ = [
    "BATCH_DIM",
    "DEFAULT_OPSET",
    "EXTERNAL_MODE",
    "WEIGHT_MODES",
    "build_onnx",
    "export_onnx",
    "save_optimized",
    "serialize_onnx",
]

"""``save_optimized``: the model as ONNX Runtime folded it, for apps that decompress once and cache.

A compact or inline file is small, but every session creation re-runs the decompression (ORT
inlines the ai.hashpack functions and constant-folds them into dense weights). An app can instead
fold once, on first launch, and keep the result: this writes that folded model. It is as large as
the expanded export (the weights are dense again) and loads as fast.

ORT's *basic* level is used: function inlining, constant folding and the standard-op fusions
(e.g. Conv+BatchNorm), which leave plain ONNX that any ONNX Runtime build on any CPU can load.
The higher levels would write hardware-specific ops (NCHWc layouts, com.microsoft fused kernels)
that only the same build on the same kind of CPU may run; the loading session applies those
itself in a few milliseconds.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import onnx

from hashpack.runtime.container import atomic_write_bytes

from .export import serialize_onnx
from .functions import DOMAIN

__all__ = ["save_optimized"]


def save_optimized(
    onnx_path: str | os.PathLike[str] | onnx.ModelProto, out_path: str | os.PathLike[str]
) -> onnx.ModelProto:
    """Write ``onnx_path`` (an exported file, or a ModelProto) as ORT folded it to ``out_path``.

    Needs onnxruntime. The result has no ai.hashpack nodes or functions, passes the full ONNX
    checker, and is written atomically (nothing is left at ``out_path`` on error). Returns it.
    """
    import onnxruntime as ort

    source = onnx_path.SerializeToString() if isinstance(onnx_path, onnx.ModelProto) else str(onnx_path)
    target = Path(out_path)
    fd, scratch = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".ort.tmp", dir=target.parent or ".")
    os.close(fd)
    try:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = scratch
        options.log_severity_level = 3
        ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        model = onnx.load(scratch)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(scratch)
    _tidy(model)
    onnx.checker.check_model(model, full_check=True)
    atomic_write_bytes(target, serialize_onnx(model))
    return model


def _tidy(model: onnx.ModelProto) -> None:
    """Drop what ORT leaves behind that the folded model no longer uses; fix the initializer order.

    ORT keeps the ai.hashpack functions and opset import and adds an import of every domain it
    knows; it also writes initializers in hash-map order, which would make the bytes vary.
    """
    used = {node.domain for node in model.graph.node}
    if DOMAIN in used:
        raise RuntimeError("onnxruntime left ai.hashpack nodes in the optimized model (not inlined)")
    kept_functions = [f for f in model.functions if f.domain in used]
    del model.functions[:]
    model.functions.extend(kept_functions)
    used |= {"", *(o.domain for f in kept_functions for o in f.opset_import)}
    kept_opsets = [o for o in model.opset_import if o.domain in used]
    del model.opset_import[:]
    model.opset_import.extend(kept_opsets)
    initializers = sorted(model.graph.initializer, key=lambda t: t.name)
    del model.graph.initializer[:]
    model.graph.initializer.extend(initializers)

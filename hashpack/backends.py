"""The four backends a .hpk model runs on (numpy, pytorch, onnx, tflite), opened the same way.

Why its own module: both ``hashpack.validation`` (in the parent) and ``hashpack.isolation``'s child
process open backends, and the child must not import the validation machinery that drives it.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RUNTIME_MODULES = {
    "pytorch": ("torch",),
    "onnx": ("onnxruntime",),
    "tflite": ("ai_edge_litert", "tflite_runtime"),
}
SIGNATURE_KEY = "serving_default"

Runner = Callable[[np.ndarray], np.ndarray]


class BackendUnavailable(Exception):
    """A backend cannot run here (runtime or exporter missing, scheme or op unsupported): skip it."""


@dataclass(frozen=True)
class Backend:
    """One way to run the model: ``kind`` (numpy, pytorch, onnx, tflite) loading ``path``."""

    name: str
    kind: str
    path: Path
    mode: str | None = None  # the weights mode of an export made on the fly
    given: bool = False  # a file the user named (load failures are bad input, not failures)


def runtime_missing(kind: str) -> str | None:
    """Why backend ``kind`` cannot run in this environment, or None when it can."""
    modules = RUNTIME_MODULES.get(kind, ())
    if not modules or any(importlib.util.find_spec(m) is not None for m in modules):
        return None
    return f"{' or '.join(modules)} is not installed"


def open_backend(
    kind: str, path: str | os.PathLike[str], num_threads: int | None = None, *, optimize: bool = True
) -> Runner:
    """Load ``path`` into backend ``kind`` and return ``run(x) -> y`` (float32 NCHW in, as PyTorch).

    optimize=False (ONNX only): create the session with ORT's graph optimizations off, so a compact
    or inline file's decompression nodes execute at each run instead of being constant-folded at
    load. Same graph, same kernels; ORT's folding holds ~100 bytes per virtual weight until it ends
    (docs/ONNX.md), which a 128 M-weight model cannot afford, while execution frees as it goes."""
    if kind == "numpy":
        from hashpack.runtime import load

        return load(path).run
    if kind == "pytorch":
        from hashpack.torch_eval import to_torch

        return to_torch(path).run
    if kind == "onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        if num_threads:
            options.intra_op_num_threads = num_threads
        if not optimize:
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        input_name, output_name = session.get_inputs()[0].name, session.get_outputs()[0].name
        return lambda x: session.run([output_name], {input_name: x})[0]
    if kind == "tflite":
        from hashpack.exporter.tflite.runner import make_interpreter, run_signature

        interpreter = make_interpreter(Path(path).read_bytes(), num_threads=num_threads)
        signature = interpreter.get_signature_list()[SIGNATURE_KEY]
        input_name, output_name = signature["inputs"][0], signature["outputs"][0]
        return lambda x: run_signature(interpreter, {input_name: x}, SIGNATURE_KEY)[output_name]
    raise ValueError(f"unknown backend {kind!r} (numpy, pytorch, onnx, tflite)")

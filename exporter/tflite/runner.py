"""Load a .tflite model into a LiteRT interpreter (tests, golden checks, benchmarks).

Why: ``ai_edge_litert`` is the maintained runtime; ``tflite_runtime`` is the fallback only when
the former cannot be imported (older platforms). With numpy 2 the old runtime usually fails at
interpreter creation, which then surfaces as its own error.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["make_interpreter", "run_signature"]


def _interpreter_class() -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # pragma: no cover - only on platforms without ai-edge-litert
        from tflite_runtime.interpreter import Interpreter
    return Interpreter


def make_interpreter(model: bytes, num_threads: int | None = None) -> Any:
    """An allocated interpreter for ``model`` (CPU, default delegates)."""
    interpreter = _interpreter_class()(model_content=bytes(model), num_threads=num_threads)
    interpreter.allocate_tensors()
    return interpreter


def run_signature(
    interpreter: Any, inputs: dict[str, np.ndarray], key: str = "serving_default"
) -> dict[str, np.ndarray]:
    """Run one signature and return copies of its outputs by name."""
    runner = interpreter.get_signature_runner(key)
    return {name: np.array(value, copy=True) for name, value in runner(**inputs).items()}

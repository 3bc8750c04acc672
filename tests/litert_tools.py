"""LiteRT helpers shared by the TFLite op tests: run a flatbuffer with either kernel set, list its ops."""

from __future__ import annotations

import numpy as np
import tflite
from ai_edge_litert.interpreter import Interpreter, OpResolverType

# LiteRT's default kernels (XNNPACK delegate) and its builtin kernels alone: both must agree.
RESOLVERS = {
    "xnnpack": OpResolverType.AUTO,
    "builtin": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
}


def run_serving(data: bytes, x: np.ndarray, input_name: str, output_name: str, resolver: str) -> np.ndarray:
    """One call of the ``serving_default`` signature of a fresh interpreter."""
    interpreter = Interpreter(model_content=data, experimental_op_resolver_type=RESOLVERS[resolver])
    runner = interpreter.get_signature_runner("serving_default")
    return runner(**{input_name: x})[output_name]


def opcode_names(data: bytes) -> set[str]:
    """The builtin op names (``"GATHER"``, ...) a flatbuffer uses."""
    model = tflite.Model.GetRootAsModel(data, 0)
    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    return {names[model.OperatorCodes(i).BuiltinCode()] for i in range(model.OperatorCodesLength())}

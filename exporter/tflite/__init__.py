"""TFLite export: a TensorFlow-free .tflite writer and hp32 decompression as LiteRT builtin ops.

Modules: ``schema`` (the generated flatbuffer object API), ``builder`` (tensors, ops, subgraphs,
signatures, deterministic serialisation), ``hash_ops`` (hp32 as builtin ops), ``once`` (CALL_ONCE
init subgraph + resource variables), ``runner`` (load into a LiteRT interpreter).
"""

from .builder import RESOURCE, ModelBuilder, SubgraphBuilder, TensorHandle
from .hash_ops import (
    emit_bucket_and_sign,
    emit_cast,
    emit_gather_signed,
    emit_hash,
    emit_index_range,
    emit_reshape,
)
from .once import OnceInitializer
from .runner import make_interpreter, run_signature

__all__ = [
    "RESOURCE",
    "ModelBuilder",
    "OnceInitializer",
    "SubgraphBuilder",
    "TensorHandle",
    "emit_bucket_and_sign",
    "emit_cast",
    "emit_gather_signed",
    "emit_hash",
    "emit_index_range",
    "emit_reshape",
    "make_interpreter",
    "run_signature",
]

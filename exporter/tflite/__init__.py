"""TFLite export: .hpk files as LiteRT models that regenerate their weights with builtin ops.

``export_tflite(source, path, weights="once")`` is the entry point (``export``). Modules:
``schema`` (the generated flatbuffer object API), ``builder`` (tensors, ops, subgraphs,
signatures, deterministic serialisation), ``hash_ops`` (hp32 as builtin ops), ``once`` (CALL_ONCE
init subgraph + resource variables), ``layout`` (NCHW/NHWC, weight views), ``weights`` (one
emitter per compression scheme, three weights modes), ``context`` + ``graph`` (one translator
per .hpk op), ``runner`` (load into a LiteRT interpreter).
"""

from .builder import RESOURCE, ModelBuilder, SubgraphBuilder, TensorHandle
from .export import SIGNATURE_KEY, WEIGHT_MODES, TFLiteExport, build_tflite, export_tflite
from .hash_ops import (
    emit_bucket_and_sign,
    emit_cast,
    emit_gather_signed,
    emit_gather_signed_at,
    emit_hash,
    emit_index_range,
    emit_reshape,
)
from .once import OnceInitializer
from .runner import make_interpreter, run_signature

__all__ = [
    "RESOURCE",
    "SIGNATURE_KEY",
    "WEIGHT_MODES",
    "ModelBuilder",
    "OnceInitializer",
    "SubgraphBuilder",
    "TFLiteExport",
    "TensorHandle",
    "build_tflite",
    "emit_bucket_and_sign",
    "emit_cast",
    "emit_gather_signed",
    "emit_gather_signed_at",
    "emit_hash",
    "emit_index_range",
    "emit_reshape",
    "export_tflite",
    "make_interpreter",
    "run_signature",
]

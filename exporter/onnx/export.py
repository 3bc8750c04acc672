"""``export_onnx``: a .hpk file as an ONNX model, in one of the weights modes.

The graph is translated op by op (``graph.py``); each param is produced by its scheme's emitter
(``weights.py``). The model is checked with the full ONNX checker (strict shape inference
included) before anything is written, and written atomically with deterministic bytes, so a
failed export never leaves a file behind and the same .hpk always gives the same .onnx.
"""

from __future__ import annotations

import os

import onnx
from onnx import TensorProto, helper

from hashpack import __version__
from hashpack.runtime import HpkFile, HpkFormatError, read_hpk
from hashpack.runtime.container import atomic_write_bytes

from . import functions as hf
from .builder import GraphBuilder
from .external_weights import MAPPING_KEY, mapping_json
from .graph import translate

__all__ = [
    "BATCH_DIM",
    "DEFAULT_OPSET",
    "EXTERNAL_MODE",
    "WEIGHT_MODES",
    "build_onnx",
    "export_onnx",
    "serialize_onnx",
]

WEIGHT_MODES = ("compact", "inline", "expanded")  # the modes ONNX Runtime runs alone
EXTERNAL_MODE = "external"  # the graph alone, its weights supplied by the app (external_weights.py)
DEFAULT_OPSET = hf.MIN_OPSET  # 18: the Bitwise* ops the hash needs
BATCH_DIM = "batch"  # dim_param of the first dimension of the graph input and output
GRAPH_NAME = "hashpack"
MIN_IR_VERSION = 8  # model-local functions


def build_onnx(
    source: HpkFile | str | os.PathLike[str],
    weights: str = "compact",
    opset: int = DEFAULT_OPSET,
    embedding_rows: bool = True,
) -> onnx.ModelProto:
    """The checked ONNX model for ``source`` (a path is read and validated first); writes nothing.

    ``embedding_rows=False`` makes compact mode decompress hashed embedding tables whole, like
    every other weight (the alternative benchmarks/embedding_onnx.py measures).
    """
    if weights not in (*WEIGHT_MODES, EXTERNAL_MODE):
        raise ValueError(
            f"unknown weights mode {weights!r} (one of: {', '.join(WEIGHT_MODES)}, {EXTERNAL_MODE})"
        )
    if not hf.MIN_OPSET <= opset <= onnx.defs.onnx_opset_version():
        raise ValueError(
            f"opset {opset} is outside [{hf.MIN_OPSET}, {onnx.defs.onnx_opset_version()}] "
            "(the hash needs the Bitwise ops of opset 18; the upper bound is the installed onnx's)"
        )
    hpk = source if isinstance(source, HpkFile) else read_hpk(source)
    builder = GraphBuilder(hpk, weights, opset, embedding_rows)
    for node in hpk.nodes:
        translate(builder, node)
    graph = helper.make_graph(
        builder.finish(),
        GRAPH_NAME,
        [_value_info(hpk.input.name, hpk.input.shape, hpk.input.dtype)],
        [_value_info(hpk.output.name, hpk.output.shape, "float32")],
        builder.initializers,
    )
    functions = [builder.functions[key] for key in sorted(builder.functions)]
    opsets = hf.opset_imports(opset) if functions else [helper.make_opsetid("", opset)]
    model = helper.make_model(
        graph,
        opset_imports=opsets,
        functions=functions,
        ir_version=max(MIN_IR_VERSION, helper.find_min_ir_version_for(opsets, ignore_unknown=True)),
        producer_name="hashpack",
        producer_version=__version__,
        doc_string=f"Exported from a .hpk file ({hpk.producer or 'unknown producer'}) with --weights {weights}.",
    )
    props = {"hashpack.weights": weights, "hashpack.format_version": "1"}
    if weights == EXTERNAL_MODE:  # which .hpk param each external initializer is (external_weights.py)
        props[MAPPING_KEY] = mapping_json(hpk, builder.external)
    helper.set_model_props(model, props)
    try:
        onnx.checker.check_model(model if weights != EXTERNAL_MODE else _as_inputs(model), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        # e.g. an HpkFile built in memory (read_hpk not run) whose shapes disagree across nodes.
        raise HpkFormatError(f"{hpk.source}: the exported ONNX graph is invalid: {exc}") from None
    return model


def serialize_onnx(model: onnx.ModelProto) -> bytes:
    """Deterministic bytes of ``model`` (same model, same bytes, in any process)."""
    return model.SerializeToString(deterministic=True)


def export_onnx(
    source: HpkFile | str | os.PathLike[str],
    path: str | os.PathLike[str],
    weights: str = "compact",
    opset: int = DEFAULT_OPSET,
    embedding_rows: bool = True,
) -> onnx.ModelProto:
    """Export ``source`` (a .hpk path or a read ``HpkFile``) to the ONNX file ``path``.

    weights: "compact" (ai.hashpack ops defined by local functions, buckets as initializers),
    "inline" (the same decompression as plain standard ops), "expanded" (dense initializers) or
    "external" (every weight supplied by the app from the .hpk: external_weights.py).
    Raises ``HpkFormatError`` for a bad .hpk or an op/scheme the exporter does not know; the file
    is written atomically, so on any error nothing is left at ``path``. Returns the model.
    """
    model = build_onnx(source, weights, opset, embedding_rows)
    atomic_write_bytes(path, serialize_onnx(model))
    return model


def _as_inputs(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy with the external initializers as graph inputs of the same type and shape.

    The checker opens an external initializer's location, which an external-mode file never has
    (the app supplies the values); as inputs they are checked and shape-inferred alike.
    """
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    external = [t for t in copy.graph.initializer if t.data_location == TensorProto.EXTERNAL]
    kept = [t for t in copy.graph.initializer if t.data_location != TensorProto.EXTERNAL]
    del copy.graph.initializer[:]
    copy.graph.initializer.extend(kept)
    copy.graph.input.extend(helper.make_tensor_value_info(t.name, t.data_type, t.dims) for t in external)
    return copy


_DTYPES = {"float32": TensorProto.FLOAT, "int32": TensorProto.INT32}  # token ids are declared int32


def _value_info(name: str, shape: tuple[int | None, ...], dtype: str) -> onnx.ValueInfoProto:
    dims = [BATCH_DIM if dim is None else dim for dim in shape]
    return helper.make_tensor_value_info(name, _DTYPES[dtype], dims)

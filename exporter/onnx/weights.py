"""Weight producers: how each compression scheme's params become float32 tensors in the graph.

One small :class:`SchemeExport` per scheme (docs/FORMAT.md §4), registered with
:func:`register_scheme`, says how to produce a param in the two decompressing modes:

``compact``
    one node of the scheme's ``ai.hashpack`` op (e.g. ``HashedWeight``) carrying the .hpk
    metadata (seed, shape, ...) as attributes, its inputs the (dequantized) bucket values; the op
    is a model-local function whose body is standard ONNX ops, so stock ONNX Runtime inlines it
    and folds it into a dense weight at session creation, and a native kernel could take it over
    later without changing the file.
``inline``
    the same body emitted straight into the graph, for tools without local-function support.

``expanded`` is the same for every scheme: the numpy runtime decodes the param and it is stored
as a dense float32 initializer. A scheme without an entry here is an ``HpkFormatError`` naming it
in every mode, so the three modes always accept the same files.

Spaces are stored in their .hpk dtype; float16 and int8 spaces are dequantized with standard ops
(``Cast``, and one float32 ``Mul`` by the scale for int8, exactly as FORMAT.md §3 says) once per
space, before any hash gathers from them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from onnx import TensorProto

from hashpack.runtime import Param, Space
from hashpack.runtime.schemes import decode_param

from . import functions as hf
from .scheme_registry import (
    SCHEMES,
    Producer,
    SchemeExport,
    call_function,
    register_scheme,
    scheme_producers,
)

if TYPE_CHECKING:
    from .builder import GraphBuilder  # builder.py calls this module: no import back at run time

__all__ = [
    "SCHEMES",
    "Producer",
    "SchemeExport",
    "call_function",
    "emit_param",
    "emit_space",
    "register_scheme",
    "scheme_producers",
]


def emit_param(b: GraphBuilder, param: Param) -> str:
    """Emit the producer of ``param`` for ``b.weights``; returns the tensor name holding it."""
    scheme = SCHEMES.get(param.scheme)
    if scheme is None:
        raise b.fail(
            f"param {param.name!r}: compression scheme {param.scheme!r} is not supported by the ONNX "
            f"exporter (supported: {', '.join(sorted(SCHEMES))})"
        )
    output = b.names.claim(param.name)
    if b.weights == "external":  # the app supplies the values from the .hpk (external.py)
        b.declare_external(param, output)
    elif b.weights == "expanded":
        dense = np.asarray(decode_param(b.hpk, param.name), dtype=np.float32).reshape(param.shape)
        b.store(dense, output)
    else:
        producer = scheme.compact if b.weights == "compact" else scheme.inline
        producer(b, param, output)
    return output


def emit_space(b: GraphBuilder, space: Space) -> str:
    """The stored bucket values as an initializer, dequantized to float32 with standard ops."""
    raw = b.initializer(np.asarray(b.hpk.tensors[space.tensor]), f"spaces/{space.name}")
    if space.dtype == "float32":
        return raw
    # Short names, no node names: dequantization adds ~100 bytes a space, not ~250.
    values = b.names.claim(f"spaces/{space.name}/f32")
    if space.dtype == "float16":
        b.node("Cast", [raw], [values], name="", to=TensorProto.FLOAT)
    elif space.dtype == "int8":
        widened = b.names.claim(f"spaces/{space.name}/i8f")
        b.node("Cast", [raw], [widened], name="", to=TensorProto.FLOAT)
        scale = b.constant(np.float32(space.scale), np.float32, f"spaces/{space.name}/scale")
        b.node("Mul", [widened, scale], [values], name="")
    else:
        raise b.fail(
            f"space {space.name!r}: bucket dtype {space.dtype!r} is not supported by the ONNX exporter"
        )
    return values


# --------------------------------------------------------------------------------------- schemes


def _dense(b: GraphBuilder, param: Param, output: str) -> None:
    """``dense``: the stored float32 tensor, as-is, in every mode."""
    array = np.asarray(b.hpk.tensors[param.spec["tensor"]], dtype=np.float32).reshape(param.shape)
    b.store(array, output)


def _hashed_compact(b: GraphBuilder, param: Param, output: str) -> None:
    """``hashed``: one ``ai.hashpack.HashedWeight`` call on the (dequantized) space."""
    b.use_function(hf.DOMAIN, hf.HASHED_WEIGHT, hf.hashed_weight_function)
    b.add_nodes(
        [
            hf.hashed_weight_node(
                b.space(param.spec["space"]),
                output,
                seed=param.spec["seed"],
                shape=param.shape,
                name=f"{output}/{hf.HASHED_WEIGHT}",
            )
        ]
    )


def _hashed_inline(b: GraphBuilder, param: Param, output: str) -> None:
    """``hashed``: one request to the graph's batched hp32 pass (see batch.py)."""
    space = b.hpk.spaces[param.spec["space"]]
    b.hash_batch.signed_gather(
        b.space(space.name), space.size, seed=param.spec["seed"], shape=param.shape, output=output
    )


register_scheme("dense", _dense)
register_scheme("hashed", _hashed_compact, _hashed_inline)

# The schemes with modules of their own register themselves on import.
from . import fresh, fsnet, funhash  # noqa: E402, F401

"""``fsnet`` (FSNet): every filter is a circular segment of one 1-D filter summary.

``ai.hashpack.FilterSummaryWeight(summary) -> weight``, attributes ``stride`` and ``shape``:
element j of filter o (o < shape[0], j < numel / shape[0]) is ``summary[(o·stride + j) mod L]``,
L = the summary's length (read from its shape). No hash and no float arithmetic: the weights
are a gather, bit-identical to the numpy runtime (``runtime/schemes/fsnet.py``). The inline form
is the same body with the attributes as constants.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import onnx
from onnx import TensorProto, helper

from hashpack.runtime import Param

from . import functions as hf
from .functions import AttrRef, Emitter, IntOrRef, IntsOrRef
from .scheme_registry import call_function, register_scheme

if TYPE_CHECKING:
    from .builder import GraphBuilder  # builder.py calls this module: no import back at run time

__all__ = ["FILTER_SUMMARY_WEIGHT", "emit_filter_summary_weight", "filter_summary_weight_function"]

FILTER_SUMMARY_WEIGHT = "FilterSummaryWeight"


def emit_filter_summary_weight(
    em: Emitter, summary: str, stride: IntOrRef, shape: IntsOrRef, output: str | None = None
) -> str:
    """``summary[(o·stride + j) mod L]`` laid out as ``shape`` (literal shapes skip the dim arithmetic)."""
    shape_t = em.const_i64(shape, "shape")
    zero, one = em.const(0, TensorProto.INT64), em.const(1, TensorProto.INT64)
    if isinstance(shape, AttrRef):
        numel = em.op("ReduceProd", [shape_t], "numel", keepdims=0)
        filters = em.op("Gather", [shape_t, zero], "filters", axis=0)
        length = em.op("Div", [numel, filters], "length")
    else:
        filters = em.const(shape[0], TensorProto.INT64)
        length = em.const(math.prod(shape) // shape[0], TensorProto.INT64)
    rows = em.op("Range", [zero, filters, one], "filter")
    rows = em.op("Unsqueeze", [rows, em.const_i64([1], "axis1")], "filter_col")
    starts = em.op("Mul", [rows, em.const_i64(stride, "stride")], "start")
    position = em.op("Add", [starts, em.op("Range", [zero, length, one], "tap")], "position")
    position = em.op("Mod", [position, em.op("Shape", [summary], "length_l")], "position_mod_l", fmod=0)
    gathered = em.op("Gather", [summary, position], "gathered", axis=0)
    return em.op("Reshape", [gathered, shape_t], "weight", output=output, allowzero=1)


def filter_summary_weight_function(opset: int) -> onnx.FunctionProto:
    """FunctionProto ``ai.hashpack.FilterSummaryWeight`` (attributes stride, shape)."""
    em = Emitter(prefix="")
    emit_filter_summary_weight(em, "summary", AttrRef("stride"), AttrRef("shape"), output="weight")
    return helper.make_function(
        hf.DOMAIN,
        FILTER_SUMMARY_WEIGHT,
        inputs=["summary"],
        outputs=["weight"],
        nodes=em.nodes,
        opset_imports=[helper.make_opsetid("", opset)],
        attributes=["stride", "shape"],
        doc_string="FSNet filters: circular segments of a filter summary (hashpack docs/FORMAT.md §4).",
    )


def _compact(b: GraphBuilder, param: Param, output: str) -> None:
    summary = b.space(param.spec["space"])
    call_function(
        b,
        FILTER_SUMMARY_WEIGHT,
        filter_summary_weight_function,
        [summary],
        output,
        stride=param.spec["stride"],
        shape=param.shape,
    )


def _inline(b: GraphBuilder, param: Param, output: str) -> None:
    em = b.emitter("fs")
    emit_filter_summary_weight(em, b.space(param.spec["space"]), param.spec["stride"], param.shape, output)
    b.add_emitted(em)


register_scheme("fsnet", _compact, _inline)

"""The inline form's hashing: every hashed tensor of a model decompressed in one vectorised pass.

Why batched: the hp32 body is ~60 standard ops; repeated per tensor (``hashed_weight_nodes``) it
costs ~7 KB of graph per weight, which would break the inline size bound (≤ 1.05 × .hpk + 16 KiB)
on any model with a dozen layers. Here the per-tensor data shrinks to a few table entries, a
``Split`` output and a ``Reshape`` (~100 bytes), whatever the number of tensors, and the decompression
is the same, bit for bit:

    index   = Range(0, N)                          N = the sum of all requested sizes
    segment = CumSum(ScatterElements(0, starts[1:], 1))  which request each element belongs to
    local   = index - starts[segment]              the flat index inside its own tensor
    key, multiplier = from seeds[segment], functions[segment]   (derived in-graph, §1)
    h       = mix32((local ^ key) * multiplier)
    bucket  = h mod K[segment] + offset[segment]   into the concatenation of the used spaces
    weight  = Split(space[bucket] * sign(h)) → each request's slice, reshaped

Requests may come from any scheme that needs signed gathers (``hashed`` now; schemes with several
hash functions per weight add one request per function). The builder flushes the batch once all
params are emitted and then sorts the graph topologically, so consumers may be emitted first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from . import functions as hf

if TYPE_CHECKING:
    from .builder import GraphBuilder

__all__ = ["HashBatch"]


@dataclass(frozen=True)
class _Request:
    space: str  # float32 [K] tensor
    num_buckets: int
    seed: int
    function: int
    shape: tuple[int, ...]
    output: str

    @property
    def size(self) -> int:
        return math.prod(self.shape)


class HashBatch:
    """Collects signed-gather requests; :meth:`flush` emits the single pass computing them all."""

    def __init__(self, builder: GraphBuilder) -> None:
        self.builder = builder
        self.requests: list[_Request] = []

    def request(
        self, space: str, num_buckets: int, *, seed: int, shape: Sequence[int], output: str, function: int = 0
    ) -> None:
        """``output`` = the float32 tensor ``sign(i) * space[bucket(i)]`` of ``shape`` (§1)."""
        shape = tuple(int(d) for d in shape)
        if math.prod(shape) == 0:  # nothing to hash: an empty initializer
            self.builder.store(np.zeros(shape, np.float32), output)
            return
        self.requests.append(_Request(space, num_buckets, seed, function, shape, output))

    def flush(self) -> None:
        """Emit the nodes for every request so far (nothing if there is none)."""
        requests, self.requests = self.requests, []
        if not requests:
            return
        b = self.builder
        prefix = b.names.claim_prefix("hp32/")
        em = hf.Emitter(prefix=prefix)

        def table(name: str, values: Sequence[int], dtype: type = np.int64) -> str:
            # "table/" never appears in an emitter name (hints have no '/'), so no collision.
            return b.store(np.asarray(values, dtype=dtype), f"{prefix}table/{name}")

        spaces = list(dict.fromkeys(r.space for r in requests))
        space_offsets, offset = {}, 0
        for r in requests:
            if r.space not in space_offsets:
                space_offsets[r.space] = offset
                offset += r.num_buckets
        sizes = [r.size for r in requests]
        starts = np.concatenate([[0], np.cumsum(sizes[:-1], dtype=np.int64)]).tolist()
        total = int(sum(sizes))

        index = em.op(
            "Range",
            [
                em.const(0, TensorProto.INT64),
                em.const(total, TensorProto.INT64),
                em.const(1, TensorProto.INT64),
            ],
            "index",
        )
        if len(requests) == 1:
            segment = None  # the per-request tables have one entry: broadcast them instead

            def per_element(values: str) -> str:
                return values
        else:
            zeros = em.op("ConstantOfShape", [table("total", [total])], "zeros", value=_i64_tensor(0))
            marker = em.op(
                "ScatterElements",
                [zeros, table("boundaries", starts[1:]), table("ones", [1] * (len(starts) - 1))],
                "marker",
                axis=0,
            )
            segment = em.op("CumSum", [marker, em.const(0, TensorProto.INT64)], "segment")

            def per_element(values: str) -> str:
                return em.op("Gather", [values, segment], "per_element", axis=0)

        local = (
            index if segment is None else em.op("Sub", [index, per_element(table("starts", starts))], "local")
        )
        key, multiplier = hf.emit_hash_key(
            em, table("seeds", [r.seed for r in requests]), table("functions", [r.function for r in requests])
        )
        x = em.op("Cast", [local], "i_u32", to=TensorProto.UINT32)
        x = em.op("BitwiseXor", [x, per_element(key)], "i_key")
        x = em.op("Mul", [x, per_element(multiplier)], "i_mul")
        h = hf.emit_mix32(em, x)
        bucket, sign = hf.emit_bucket_sign(
            em, h, per_element(table("num_buckets", [r.num_buckets for r in requests]))
        )
        if len(spaces) > 1:
            offsets = table("space_offsets", [space_offsets[r.space] for r in requests])
            bucket = em.op("Add", [bucket, per_element(offsets)], "bucket_in_values")
            values = em.op("Concat", spaces, "values", axis=0)
        else:
            values = spaces[0]
        gathered = em.op("Gather", [values, bucket], "gathered", axis=0)
        flat = em.op("Mul", [gathered, sign], "signed")
        pieces = [flat]
        if len(requests) > 1:
            pieces = [em.fresh("piece") for _ in requests]
            em.nodes.append(_node("Split", [flat, table("sizes", sizes)], pieces, f"{prefix}split", axis=0))
        for piece, r in zip(pieces, requests, strict=True):
            shape = b.constant(list(r.shape), np.int64, f"{r.output}/shape")
            em.nodes.append(_node("Reshape", [piece, shape], [r.output], f"{r.output}/Reshape"))
        b.add_nodes(em.nodes)


def _i64_tensor(value: int) -> TensorProto:
    return numpy_helper.from_array(np.array([value], dtype=np.int64), name="")


def _node(op_type: str, inputs: list[str], outputs: list[str], name: str, **attrs: object) -> onnx.NodeProto:
    return helper.make_node(op_type, inputs, outputs, name=name, **attrs)

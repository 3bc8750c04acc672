"""The inline form's hashing: every hashed fetch of a model decompressed in one vectorised pass.

Why batched: the hp32 body is ~60 standard ops; repeated per tensor (``hashed_weight_nodes``) it
costs ~7 KB of graph per weight, which would break the inline size bound (≤ 1.05 × .hpk + 16 KiB)
on any model with a dozen layers. Here a tensor costs a few table entries, a ``Split`` output and
a ``Reshape`` (~100 bytes), and the decompression is the same, bit for bit.

A *request* asks for a float32 tensor of signed gathers. Its elements cycle through a *period* of
P :class:`Fetch` descriptions (element e uses fetch ``e mod P``); the hash index of element e is
e itself, or ``e div P`` when the request is *grouped* (P fetches per virtual weight):

- ``hashed``: P = 1, one fetch (modulus K).
- ``fresh``: P = kh·kw, the fetch of each filter position carries its band's bucket pool.
- ``funhash``: grouped, P = U·hops fetches per weight with hash functions u and second hops.

The pass, over N = all requested elements::

    segment = CumSum(ScatterElements(0, starts[1:], 1))      request of each element
    local   = index - start[segment]                        element index inside its request
    t       = base[segment] + local mod P[segment]          its fetch, in the table of all fetches
    i       = local (or local div P[segment] when grouped)  the hash index
    h       = mix32((i ^ key[t]) * multiplier[t])           key/multiplier derived in-graph (§1)
    b, s    = h mod modulus[t], sign(h)
    (second hop: h2 = hp32 of b with the fetch's hop-2 function; b = h2 mod modulus, s = s·sign(h2))
    value   = s · values[offset[t] + b]                     values = the used spaces, concatenated
    tensors = Split(value) → each request's slice, reshaped

Tables shrink away when unused (one request: no segments; P = 1 everywhere: no fetch index; no
second hop: no second hash). A fetch with no space (a FreshNets band without buckets) reads a
0.0 appended to the values, so it yields ±0.0 exactly like the numpy runtime.
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

__all__ = ["Fetch", "HashBatch"]

_NARROW_FROM = 16  # entries: below this the Cast node costs more bytes than int32 storage saves


@dataclass(frozen=True)
class Fetch:
    """One signed gather: ``sign(h) * space[offset + h mod modulus]`` with hp32 function ``function``.

    ``space`` names a float32 tensor, or is None for the constant 0.0 (the hash still gives the
    sign). ``hop2``: hash the bucket ``h mod modulus`` again with that function number and gather
    there instead, multiplying the two signs (FunHashNN's second hop).
    """

    space: str | None
    modulus: int
    offset: int = 0
    function: int = 0
    hop2: int | None = None


@dataclass(frozen=True)
class _Request:
    seed: int
    fetches: tuple[Fetch, ...]
    grouped: bool
    shape: tuple[int, ...]
    output: str

    @property
    def size(self) -> int:
        return math.prod(self.shape)


class HashBatch:
    """Collects requests; :meth:`flush` emits the single pass computing them all."""

    def __init__(self, builder: GraphBuilder) -> None:
        self.builder = builder
        self.requests: list[_Request] = []

    def request(
        self, *, seed: int, fetches: Sequence[Fetch], shape: Sequence[int], output: str, grouped: bool = False
    ) -> None:
        """``output`` (float32, ``shape``): element e is fetch ``e mod P`` at hash index e (or e div P)."""
        shape = tuple(int(d) for d in shape)
        fetches = tuple(fetches)
        if not fetches or math.prod(shape) % len(fetches):
            raise ValueError(f"{output}: {len(fetches)} fetches do not tile shape {list(shape)}")
        if math.prod(shape) == 0:  # nothing to hash: an empty initializer
            self.builder.store(np.zeros(shape, np.float32), output)
            return
        self.requests.append(_Request(seed, fetches, grouped, shape, output))

    def signed_gather(
        self, space: str, num_buckets: int, *, seed: int, shape: Sequence[int], output: str
    ) -> None:
        """The ``hashed`` tensor (§1, f = 0): ``sign(i) * space[h(i) mod K]``."""
        self.request(seed=seed, fetches=[Fetch(space, num_buckets)], shape=shape, output=output)

    def flush(self) -> None:
        """Emit the nodes for every request so far (nothing if there is none)."""
        requests, self.requests = self.requests, []
        if requests:
            _Pass(self.builder, requests).emit()


class _Pass:
    """The nodes of one batched pass (see the module docstring for the formula)."""

    def __init__(self, builder: GraphBuilder, requests: list[_Request]) -> None:
        self.b = builder
        self.requests = requests
        self.prefix = builder.names.claim_prefix("hp32/")
        self.em = hf.Emitter(prefix=self.prefix)
        self.fetches = [f for r in requests for f in r.fetches]
        self.segment: str | None = None
        self.fetch_index: str | None = None

    def table(self, name: str, values: Sequence[int] | Sequence[bool], dtype: type = np.int64) -> str:
        """A constant table. Long int64 tables are stored as int32 and widened in the graph (the
        values fit: buckets ≤ 2^30, offsets and sizes ≤ 2^28), halving their share of the file."""
        # "table/" never appears in an emitter's names (hints contain no '/'), so no collision.
        name = f"{self.prefix}table/{name}"
        array = np.asarray(values, dtype=dtype)
        if dtype is np.int64 and array.size >= _NARROW_FROM and np.abs(array).max() < 2**31:
            stored = self.b.store(array.astype(np.int32), f"{name}/int32")
            self.em.nodes.append(_node("Cast", [stored], [name], "", to=TensorProto.INT64))
            return name
        return self.b.store(array, name)

    def i64(self, value: int) -> str:
        return self.em.const(value, TensorProto.INT64)

    def per_request(self, name: str, values: Sequence[int]) -> str:
        """A per-request table, read per element (or broadcast when there is one request)."""
        table = self.table(name, values)
        if self.segment is None:
            return table
        return self.em.op("Gather", [table, self.segment], name, axis=0)

    def per_fetch(self, values: str, hint: str) -> str:
        """A per-fetch tensor ([number of fetches]), read per element."""
        if self.fetch_index is None:
            return values
        return self.em.op("Gather", [values, self.fetch_index], hint, axis=0)

    def emit(self) -> None:
        local = self.locate()
        hash_index = self.fetch_positions(local)
        bucket, sign = self.buckets_and_signs(hash_index)
        values, offsets = self.values()
        em = self.em
        if any(offsets):
            offset = self.per_fetch(self.table("offset", offsets), "offset")
            bucket = em.op("Add", [bucket, offset], "bucket_at")
        gathered = em.op("Gather", [values, bucket], "gathered", axis=0)
        self.split(em.op("Mul", [gathered, sign], "signed"))
        self.b.add_emitted(em)

    def locate(self) -> str:
        """Each element's index inside its request (and ``self.segment``: which request)."""
        em = self.em
        sizes = [r.size for r in self.requests]
        starts = np.concatenate([[0], np.cumsum(sizes[:-1], dtype=np.int64)]).tolist()
        index = em.op("Range", [self.i64(0), self.i64(sum(sizes)), self.i64(1)], "index")
        if len(self.requests) == 1:
            return index
        zero = numpy_helper.from_array(np.zeros(1, np.int64), name="")
        zeros = em.op("ConstantOfShape", [self.table("total", [sum(sizes)])], "zeros", value=zero)
        boundaries = self.table("boundaries", starts[1:])  # strictly increasing: no empty request
        ones = self.table("ones", [1] * (len(starts) - 1))
        marker = em.op("ScatterElements", [zeros, boundaries, ones], "marker", axis=0)
        self.segment = em.op("CumSum", [marker, self.i64(0)], "segment")
        return em.op("Sub", [index, self.per_request("start", starts)], "local")

    def fetch_positions(self, local: str) -> str:
        """Set ``self.fetch_index`` (each element's fetch) and return each element's hash index."""
        em = self.em
        periods = [len(r.fetches) for r in self.requests]
        if any(p > 1 for p in periods):
            bases = np.concatenate([[0], np.cumsum(periods[:-1], dtype=np.int64)]).tolist()
            position = em.op("Mod", [local, self.per_request("period", periods)], "position", fmod=0)
            self.fetch_index = em.op("Add", [position, self.per_request("base", bases)], "fetch")
        elif len(self.requests) > 1:
            self.fetch_index = self.segment  # one fetch per request: fetch = request
        divisors = [len(r.fetches) if r.grouped else 1 for r in self.requests]
        if any(d > 1 for d in divisors):
            return em.op("Div", [local, self.per_request("divisor", divisors)], "hash_index")
        return local

    def buckets_and_signs(self, hash_index: str) -> tuple[str, str]:
        """Each element's bucket (in its space) and sign, second hops applied."""
        em, fetches = self.em, self.fetches
        # One key derivation for every (seed, function) the pass uses: the hop-1 functions of all
        # fetches, then (if any fetch has a second hop) their hop-2 functions.
        seeds = [r.seed for r in self.requests for _ in r.fetches]
        functions = [f.function for f in fetches]
        has_hop2 = any(f.hop2 is not None for f in fetches)
        if has_hop2:
            seeds, functions = seeds * 2, functions + [0 if f.hop2 is None else f.hop2 for f in fetches]
        keys = hf.emit_hash_key(em, self.table("seeds", seeds, np.uint32), self.table("functions", functions))
        modulus = self.per_fetch(self.table("modulus", [f.modulus for f in fetches]), "modulus")
        bucket, sign = self.hash(hash_index, keys, 0, modulus, "h1")
        if not has_hop2:
            return bucket, sign
        bucket2, sign2 = self.hash(bucket, keys, len(fetches), modulus, "h2")
        is_hop2 = self.per_fetch(
            self.table("is_hop2", [f.hop2 is not None for f in fetches], bool), "is_hop2"
        )
        both = em.op("Mul", [sign, sign2], "sign_both")
        return (
            em.op("Where", [is_hop2, bucket2, bucket], "bucket_hop"),
            em.op("Where", [is_hop2, both, sign], "sign_hop"),
        )

    def split(self, flat: str) -> None:
        """Cut the signed values into the requests' outputs, each reshaped."""
        pieces = [flat]
        if len(self.requests) > 1:
            pieces = [self.em.fresh("piece") for _ in self.requests]
            sizes = self.table("sizes", [r.size for r in self.requests])
            self.em.nodes.append(_node("Split", [flat, sizes], pieces, "", axis=0))
        for piece, r in zip(pieces, self.requests, strict=True):
            shape = self.b.constant(list(r.shape), np.int64, f"{r.output}/shape")
            self.em.nodes.append(_node("Reshape", [piece, shape], [r.output], ""))

    def hash(self, index: str, keys: tuple[str, str], first: int, modulus: str, hint: str) -> tuple[str, str]:
        """(bucket int64, sign float32 ±1) of hp32 over ``index``, each element keyed by its fetch's
        entry ``first + fetch`` of the derived (key, multiplier) tables."""
        em = self.em
        key, multiplier = (
            self.keyed(table, first, f"{hint}_{name}")
            for table, name in zip(keys, ("key", "mult"), strict=True)
        )
        x = em.op("Cast", [index], f"{hint}_u32", to=TensorProto.UINT32)
        x = em.op("BitwiseXor", [x, key], f"{hint}_xk")
        x = em.op("Mul", [x, multiplier], f"{hint}_xm")
        return hf.emit_bucket_sign(em, hf.emit_mix32(em, x), modulus)

    def keyed(self, table: str, first: int, hint: str) -> str:
        """Entries ``first + fetch`` of a derived per-(seed, function) table, per element."""
        em = self.em
        if self.fetch_index is not None:
            index = (
                self.fetch_index
                if first == 0
                else em.op("Add", [self.fetch_index, self.i64(first)], f"{hint}_at")
            )
            return em.op("Gather", [table, index], hint, axis=0)
        return em.op("Slice", [table, self.one_d(first), self.one_d(first + 1)], hint)  # a single fetch

    def one_d(self, value: int) -> str:
        return self.em.const_i64([value], f"i{value}")

    def values(self) -> tuple[str, list[int]]:
        """The gathered-from tensor (used spaces, concatenated, plus a 0.0 if some fetch has no
        space) and each fetch's offset into it."""
        spaces = list(dict.fromkeys(f.space for f in self.fetches if f.space is not None))
        sizes: dict[str, int] = {}
        for f in self.fetches:
            if f.space is not None:
                sizes[f.space] = max(sizes.get(f.space, 0), f.offset + f.modulus)
        starts, position = {}, 0
        parts = []
        for space in spaces:
            starts[space] = position
            length = self.b.space_length(space)
            if length < sizes[space]:
                raise ValueError(f"{space}: fetches reach bucket {sizes[space]}, the space has {length}")
            position += length
            parts.append(space)
        if any(f.space is None for f in self.fetches):
            starts[None] = position
            parts.append(self.b.constant(np.zeros(1, np.float32), np.float32, "const/zero_f32_1"))
        offsets = [starts[f.space] + (0 if f.space is None else f.offset) for f in self.fetches]
        values = parts[0] if len(parts) == 1 else self.em.op("Concat", parts, "values", axis=0)
        return values, offsets


def _node(op_type: str, inputs: list[str], outputs: list[str], name: str, **attrs: object) -> onnx.NodeProto:
    return helper.make_node(op_type, inputs, outputs, name=name, **attrs)

"""One emitter per compression scheme (docs/FORMAT.md §4), as LiteRT builtin ops.

Each writes every request of its scheme (``weights.Request``: param, view, placeholder) with
integer ops, GATHERs from the dequantized spaces and, where the scheme itself computes in float
(fresh's inverse DCT, funhash's g), FULLY_CONNECTED. ``exact=False`` marks the latter: their
summation order is LiteRT's, so their values match the numpy runtime's to float32 rounding,
not bit for bit. Registered on import (``export.py`` imports this module).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from hashpack.runtime.hashing import hash_key

from . import weights
from .builder import SubgraphBuilder, TensorHandle
from .hash_ops import (
    emit_cast,
    emit_hash,
    emit_index_range,
    emit_mix32,
    emit_reshape,
    emit_sign,
)
from .schema import schema
from .weights import Request, WeightStore, each, register_scheme

__all__: list[str] = []


def _gather(sg: SubgraphBuilder, table: TensorHandle, index: TensorHandle) -> TensorHandle:
    options = schema.GatherOptionsT()
    options.axis = 0
    return sg.op("GATHER", [table, index], table.dtype, index.shape, options)


def _mul(sg: SubgraphBuilder, a: TensorHandle, b: TensorHandle) -> TensorHandle:
    return sg.op("MUL", [a, b], a.dtype, a.shape, schema.MulOptionsT())


def _add(sg: SubgraphBuilder, a: TensorHandle, b: TensorHandle) -> TensorHandle:
    return sg.op("ADD", [a, b], a.dtype, a.shape, schema.AddOptionsT())


# ------------------------------------------------------------------------ batched hash fetches


@dataclass(frozen=True)
class _Job:
    """U hashed fetches per index: sign · space_u[h_u(i) mod K_u], h_u = hp32(seed, function u).

    ``index`` is [n] int32 (flat indices; every function hashes the same index) or [n, U]
    int64 (buckets of an earlier fetch, one per function: funhash's hop 2). The result is
    [n, U], or [n] when U = 1.
    """

    index: TensorHandle
    seed: int
    functions: tuple[int, ...]
    spaces: tuple[str, ...]

    @property
    def rows(self) -> int:
        return self.index.shape[0]


@dataclass(frozen=True)
class _Fetch:
    values: TensorHandle  # float32 [n, U] ([n] if U = 1): sign · space[bucket]
    bucket: TensorHandle | None  # int64 buckets within their spaces (when asked for)
    sign: TensorHandle | None  # float32 ±1 (when asked for)


def _vector(sg: SubgraphBuilder, values: list[int], dtype: type) -> TensorHandle:
    """A per-function constant: a scalar when U = 1, else a [U] vector broadcast over the rows."""
    return sg.constant(np.asarray(values[0] if len(values) == 1 else values, dtype=dtype))


def _fetch(store: WeightStore, sg: SubgraphBuilder, jobs: list[_Job], details: bool = False) -> list[_Fetch]:
    """Run many jobs through one hash chain: ~3 ops per job plus ~20 per batch.

    Each job computes only its keyed index ``(i ^ key_u) · multiplier_u`` (per-function keys
    broadcast as [U] vectors); mix32, the int64 cast, the sign, one GATHER from all spaces laid
    end to end (bucket + the space's offset) and the sign multiply run once for the batch
    (concatenated along axis 0), then SPLIT_V hands each job its rows. Bit-identical to
    fetching one job at a time. All jobs of a batch have the same U.
    """
    len(jobs[0].functions)
    groups = list(dict.fromkeys(job.spaces for job in jobs))  # jobs with the same spaces share mod/offset
    order = sorted(range(len(jobs)), key=lambda j: groups.index(jobs[j].spaces))  # stable
    tables = list(dict.fromkeys(name for group in groups for name in group))
    offsets = dict(
        zip(tables, np.cumsum([0] + [store.hpk.spaces[n].size for n in tables]).tolist(), strict=False)
    )
    keyed = []
    for j in order:
        job = jobs[j]
        pairs = [hash_key(job.seed, f) for f in job.functions]
        index = emit_cast(sg, job.index, np.uint32)  # [n], or [n, 1] / [n, U] when U > 1
        xor = sg.op(
            "BITWISE_XOR",
            [index, _vector(sg, [k for k, _ in pairs], np.uint32)],
            np.uint32,
            _shape(job),
            schema.BitwiseXorOptionsT(),
        )
        keyed.append(_mul(sg, xor, _vector(sg, [m for _, m in pairs], np.uint32)))
    h = emit_mix32(sg, store.concat(sg, keyed))
    wide = emit_cast(sg, h, np.int64)
    segments = [[j for j in order if jobs[j].spaces == group] for group in groups]
    buckets: list[TensorHandle] = []
    job_buckets: dict[int, TensorHandle] = {}
    for group, seg, part in zip(
        groups,
        segments,
        store.split(sg, wide, [sum(jobs[j].rows for j in seg) for seg in segments]),
        strict=True,
    ):
        sizes = [store.hpk.spaces[name].size for name in group]
        bucket = sg.op(
            "FLOOR_MOD", [part, _vector(sg, sizes, np.int64)], np.int64, part.shape, schema.FloorModOptionsT()
        )
        if details:
            job_buckets.update(zip(seg, store.split(sg, bucket, [jobs[j].rows for j in seg]), strict=True))
        shift = [offsets[name] for name in group]
        buckets.append(_add(sg, bucket, _vector(sg, shift, np.int64)) if any(shift) else bucket)
    table = store.concat(sg, [store.space(sg, name) for name in tables])
    sign = emit_sign(sg, h)
    signed = _mul(sg, _gather(sg, table, store.concat(sg, buckets)), sign)
    rows = [jobs[j].rows for j in order]
    values = dict(zip(order, store.split(sg, signed, rows), strict=True))
    signs = dict(zip(order, store.split(sg, sign, rows), strict=True)) if details else {}
    return [_Fetch(values[j], job_buckets.get(j), signs.get(j)) for j in range(len(jobs))]


def _shape(job: _Job) -> list[int]:
    return list(job.index.shape) if len(job.functions) == 1 else [job.rows, len(job.functions)]


def _batches(
    store: WeightStore, sg: SubgraphBuilder, requests: list[Request], cost: int, column: bool = False
) -> Iterator[list[tuple[int, TensorHandle]]]:
    """(request number, index chunk) pairs, grouped so a batch costs at most BATCH_SIZE.

    ``cost`` is a param element's cost in hashed-element units (its fetches and float
    temporaries); small params share a batch, a large param is split into chunks of about
    BATCH_SIZE / cost elements, one per batch, so a hash chain's temporaries stay bounded.
    Chunks are [n], or [n, 1] with ``column`` (to broadcast against per-function keys).
    """
    chunk = max(1, weights.BATCH_SIZE // cost)
    batch: list[tuple[int, TensorHandle]] = []
    filled = 0
    for number, request in enumerate(requests):
        for index in store.index_chunks(sg, request.param.shape, request.view, chunk=chunk):
            if batch and filled + index.size * cost > weights.BATCH_SIZE:
                yield batch
                batch, filled = [], 0
            if column:
                index = index if index.shape == (index.size, 1) else emit_reshape(sg, index, (index.size, 1))
            else:
                index = store.flat(sg, index)
            batch.append((number, index))
            filled += index.size * cost
    if batch:
        yield batch


def _write_all(
    store: WeightStore, sg: SubgraphBuilder, requests: list[Request], pieces: dict[int, list[TensorHandle]]
) -> None:
    """Write each request's chunks, in order, into its placeholder."""
    for number, request in enumerate(requests):
        store.write(sg, store.concat(sg, pieces[number]), request.out)


# ---------------------------------------------------------------------------------- hashed


def _hashed(store: WeightStore, sg: SubgraphBuilder, requests: list[Request]) -> None:
    """``hashed``: sign(i) · space[h(i) mod K], hashing the flat indices in view order.

    All params share batched hash chains (``_fetch``): about 10 ops per param instead of 25,
    which keeps a many-layer model's graph a few KiB.
    """
    pieces: dict[int, list[TensorHandle]] = {}
    for batch in _batches(store, sg, requests, 1):
        jobs = [
            _Job(index, int(requests[n].param.spec["seed"]), (0,), (requests[n].param.spec["space"],))
            for n, index in batch
        ]
        for (number, _), fetched in zip(batch, _fetch(store, sg, jobs), strict=True):
            pieces.setdefault(number, []).append(fetched.values)
    _write_all(store, sg, requests, pieces)


# --------------------------------------------------------------------------------- funhash


def _funhash(store: WeightStore, sg: SubgraphBuilder, requests: list[Request]) -> None:
    """``funhash``: w(i) = g(z(i)), z = U signed fetches (two hops: 2U), g a D→H→1 ReLU MLP.

    Fetch u reads space ``spaces[u mod S]`` at ``h_u(i) mod K`` (hp32, f = u): one [n, U] job
    per chunk. Hop 2 hashes the first buckets b with f = U + u (what the numpy runtime
    tabulates over the K buckets) and multiplies the two signs (the XOR of the sign bits).
    Params with the same (U, hops) share batched hash chains (``_fetch``). g is two
    FULLY_CONNECTED ops, the first with a fused ReLU; with H = 0 (U = 1), w = z and the param
    is bit-exact.
    """
    families: dict[tuple[int, int], list[Request]] = {}
    for request in requests:
        spec = request.param.spec
        hashes, hops, hidden = int(spec["hashes"]), int(spec["hops"]), int(spec["hidden"])
        if hidden == 0 and (hashes, hops) != (1, 1):
            raise store.fail(f"param {request.param.name!r}: funhash with hidden = 0 needs hashes = hops = 1")
        families.setdefault((hashes, hops), []).append(request)
    for (hashes, hops), family in families.items():
        # Per element: one hop's U fetches are live at a time (the hops run one after the other),
        # plus z and g's hidden layer, D + H floats (~1/8 of a fetch's temporaries each).
        widest = max(int(r.param.spec["hidden"]) for r in family)
        cost = hashes + -(-(hashes * hops + widest) // 8)
        pieces: dict[int, list[TensorHandle]] = {}
        column = hashes > 1 or widest > 0  # z is [n, D]: fetches as columns
        for batch in _batches(store, sg, family, cost, column=column):
            jobs = [_funhash_job(family[n].param.spec, index, 0) for n, index in batch]
            fetched = _fetch(store, sg, jobs, details=hops == 2)
            if hops == 2:
                jobs2 = [
                    _funhash_job(family[n].param.spec, f.bucket, hashes)
                    for (n, _), f in zip(batch, fetched, strict=True)
                ]
                again = _fetch(store, sg, jobs2)
                z = [
                    store.concat(sg, [f.values, _mul(sg, f2.values, f.sign)], axis=1)  # type: ignore[arg-type]
                    for f, f2 in zip(fetched, again, strict=True)
                ]
            else:
                z = [f.values for f in fetched]
            for (number, _), values in zip(batch, z, strict=True):
                pieces.setdefault(number, []).append(_g(store, sg, family[number], values))
        _write_all(store, sg, family, pieces)


def _funhash_job(spec: dict, index: TensorHandle | None, first: int) -> _Job:
    """The job of fetches ``first .. first + U - 1`` (hop 1: first = 0; hop 2: first = U)."""
    assert index is not None
    hashes, names = int(spec["hashes"]), list(spec["spaces"])
    return _Job(
        index,
        int(spec["seed"]),
        tuple(first + u for u in range(hashes)),
        tuple(names[u % len(names)] for u in range(hashes)),
    )


def _g(store: WeightStore, sg: SubgraphBuilder, request: Request, z: TensorHandle) -> TensorHandle:
    """g(z) for one chunk of a param: z itself when H = 0, else two FULLY_CONNECTED ops."""
    spec = request.param.spec
    hidden = int(spec["hidden"])
    if hidden == 0:
        return z
    n, inputs = z.shape
    w1, b1, w2, b2 = _g_layers(store, sg, spec["g"], inputs, hidden)
    fc = schema.FullyConnectedOptionsT()
    fc.fusedActivationFunction = schema.ActivationFunctionType.RELU
    act = sg.op("FULLY_CONNECTED", [z, w1, b1], np.float32, [n, hidden], fc)
    return sg.op("FULLY_CONNECTED", [act, w2, b2], np.float32, [n, 1], schema.FullyConnectedOptionsT())


# ----------------------------------------------------------------------------------- fsnet


def _fsnet(store: WeightStore, sg: SubgraphBuilder, request: Request) -> None:
    """``fsnet``: element j of filter o is space[(o·stride + j) mod L] — a pure gather, exact.

    ``o·stride + j`` is the flat index with axis 0's stride replaced by the filter stride, so
    it comes from the same index machinery, in any view order, and stays below 2**31 (checked
    by the reader).
    """
    param = request.param
    values = store.space(sg, param.spec["space"])
    length = store.hpk.spaces[param.spec["space"]].size
    strides = [
        int(param.spec["stride"]),
        *(math.prod(param.shape[a + 1 :]) for a in range(1, len(param.shape))),
    ]
    modulus = sg.constant(np.int32(length))

    def value_at(index: TensorHandle) -> TensorHandle:
        position = sg.op("FLOOR_MOD", [index, modulus], np.int32, index.shape, schema.FloorModOptionsT())
        return _gather(sg, values, position)

    store.elementwise(sg, request, value_at, strides)


def _g_layers(
    store: WeightStore, sg: SubgraphBuilder, name: str, inputs: int, hidden: int
) -> tuple[TensorHandle, ...]:
    """W1 [H, D], b1 [H], w2 [1, H], b2 [1]: g's dequantized values, sliced at export time (exact)."""
    g = store.hpk.space_values(name)
    w1_end = inputs * hidden
    parts = (
        g[:w1_end].reshape(hidden, inputs),
        g[w1_end : w1_end + hidden],
        g[w1_end + hidden : w1_end + 2 * hidden].reshape(1, hidden),
        g[w1_end + 2 * hidden :],
    )
    return tuple(sg.constant(np.ascontiguousarray(p, dtype=np.float32)) for p in parts)


# ----------------------------------------------------------------------------------- fresh


def _dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II matrix T (float64): T[u, x] = a(u) cos(pi (2x + 1) u / (2n))."""
    u = np.arange(n, dtype=np.float64)[:, None]
    x = np.arange(n, dtype=np.float64)[None, :]
    scale = np.where(u == 0, math.sqrt(1.0 / n), math.sqrt(2.0 / n))
    return scale * np.cos(math.pi * (2.0 * x + 1.0) * u / (2.0 * n))


def _fresh(store: WeightStore, sg: SubgraphBuilder, request: Request) -> None:
    """``fresh``: hashed DCT coefficients, one bucket pool per frequency band, then the inverse DCT.

    Tap t = u·kw + v of every filter is in band min(u + v, nb - 1); its bucket is
    ``offset_b + h(i) mod K_b`` (int64 FLOOR_MOD/ADD by per-tap vectors broadcast over the
    filters). An empty band (K_b = 0) reads an appended 0.0. The filters are coefficients @ M
    (M = kron(T_kh, T_kw) rounded once to float32), one FULLY_CONNECTED; views are a SLICE and a
    TRANSPOSE of the result (the DCT mixes a filter's taps, so index permutation cannot do it).
    """
    param = request.param
    out_channels, in_channels, kh, kw = param.shape
    taps, filters = kh * kw, out_channels * in_channels
    sizes = np.asarray(param.spec["bands"], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    band = np.minimum(np.arange(kh)[:, None] + np.arange(kw)[None, :], len(sizes) - 1).reshape(-1)
    live = sizes[band] > 0
    total = int(sizes.sum())
    modulus = sg.constant(np.maximum(sizes[band], 1).astype(np.int64))
    offset = sg.constant(np.where(live, offsets[band], total).astype(np.int64))
    values = store.space(sg, param.spec["space"])
    if not live.all():
        values = store.concat(sg, [values, sg.constant(np.zeros(1, np.float32))])
    basis_t = sg.constant(
        np.ascontiguousarray(np.kron(_dct_matrix(kh), _dct_matrix(kw)).astype(np.float32).T)
    )
    rows = max(1, weights.CHUNK_SIZE // taps)
    seed = int(param.spec["seed"])
    pieces = []
    for start in range(0, filters, rows):
        count = min(filters, start + rows) - start
        index = emit_reshape(sg, emit_index_range(sg, start * taps, (start + count) * taps), (count, taps))
        h = emit_hash(sg, index, seed, 0)
        wide = emit_cast(sg, h, np.int64)
        bucket = _add(
            sg, sg.op("FLOOR_MOD", [wide, modulus], np.int64, wide.shape, schema.FloorModOptionsT()), offset
        )
        coeffs = _mul(sg, _gather(sg, values, bucket), emit_sign(sg, h))
        options = schema.FullyConnectedOptionsT()
        pieces.append(sg.op("FULLY_CONNECTED", [coeffs, basis_t, None], np.float32, [count, taps], options))
    store.write_view(sg, store.concat(sg, pieces), request)


register_scheme("dense", None)
register_scheme("hashed", _hashed)
register_scheme("fsnet", each(_fsnet))
register_scheme("funhash", _funhash, exact=False)  # exact when hidden = 0
register_scheme("fresh", each(_fresh), exact=False)

"""``fresh`` (FreshNets): conv filters stored as hashed DCT coefficients, one bucket pool per band.

``ai.hashpack.FreshWeight(space) -> weight``, attributes ``seed``, ``bands`` (bucket count of
each frequency band, in order) and ``shape`` ([O, I, kh, kw]). As ``runtime/schemes/fresh.py``:
coefficient i (flat, position (u, v) in its filter) lies in band ``b = min(u + v, nb - 1)`` and is
``sign(i) * space[offset_b + h(i) mod K_b]`` (hp32, f = 0), or ±0 when ``K_b = 0``; each filter is
the orthonormal inverse 2-D DCT of its coefficients, one float32 MatMul with the basis
``M = kron(T_kh, T_kw)`` (T the DCT-II matrix, computed in float64, rounded once to float32).

The coefficients are integer arithmetic and gathers, bit-identical to the numpy runtime; the
basis is built in the graph with the same float64 operations in the same order (``Cos`` may
differ from numpy's in the last bit of a double, which survives the rounding to float32 only in
the rarest ties); the MatMul sums in another order than numpy's. Decompressed FreshNets weights
therefore match the numpy runtime within float32 rounding (tested within atol 1e-6, rtol 1e-5). The inline form sends the coefficients through the batched hash pass
(``batch.py``) and shares one basis per kernel size.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import onnx
from onnx import TensorProto, helper

from hashpack.runtime import Param

from . import functions as hf
from .batch import Fetch
from .functions import AttrRef, Emitter, IntOrRef, IntsOrRef
from .scheme_registry import call_function, register_scheme

if TYPE_CHECKING:
    from .builder import GraphBuilder  # builder.py calls this module: no import back at run time

__all__ = ["FRESH_WEIGHT", "band_fetches", "emit_dct_matrix", "emit_fresh_weight", "emit_idct_basis"]

FRESH_WEIGHT = "FreshWeight"


def emit_dct_matrix(em: Emitter, n: str) -> str:
    """The orthonormal DCT-II matrix (float64 [n, n]) for an int64 scalar ``n``:
    ``T[u, x] = a(u) cos(pi (2x + 1) u / (2n))``, the numpy runtime's operations in its order."""
    double = TensorProto.DOUBLE
    n_d = em.op("Cast", [n], "n_f64", to=double)
    k = em.op(
        "Cast",
        [em.op("Range", [em.const(0, TensorProto.INT64), n, em.const(1, TensorProto.INT64)], "k")],
        "k_f64",
        to=double,
    )
    u = em.op("Unsqueeze", [k, em.const_i64([1], "axis1")], "u")
    x = em.op("Unsqueeze", [k, em.const_i64([0], "axis0")], "x")
    two, one = em.const(2.0, double), em.const(1.0, double)
    odd = em.op("Add", [em.op("Mul", [two, x], "two_x"), one], "two_x_1")
    angle = em.op("Mul", [em.op("Mul", [em.const(math.pi, double), odd], "pi_odd"), u], "pi_odd_u")
    angle = em.op("Div", [angle, em.op("Mul", [two, n_d], "two_n")], "angle")
    first = em.op("Sqrt", [em.op("Div", [one, n_d], "inv_n")], "a0")
    rest = em.op("Sqrt", [em.op("Div", [two, n_d], "two_inv_n")], "a1")
    scale = em.op("Where", [em.op("Equal", [u, em.const(0.0, double)], "u_is_0"), first, rest], "a_u")
    return em.op("Mul", [scale, em.op("Cos", [angle], "cos")], "dct")


def emit_idct_basis(em: Emitter, kh: str, kw: str, output: str | None = None) -> str:
    """M (float32 [kh·kw, kh·kw]): flat filter pixels = flat coefficients @ M.

    ``M[u·kw + v, x·kw + y] = T_kh[u, x] · T_kw[v, y]`` in float64, rounded once (np.kron's product).
    """
    t_h = em.op("Unsqueeze", [emit_dct_matrix(em, kh), em.const_i64([1, 3], "axes13")], "t_h4")  # [kh,1,kh,1]
    t_w = em.op("Unsqueeze", [emit_dct_matrix(em, kw), em.const_i64([0, 2], "axes02")], "t_w4")  # [1,kw,1,kw]
    taps = em.op("Unsqueeze", [em.op("Mul", [kh, kw], "taps"), em.const_i64([0], "axis0")], "taps_1d")
    square = em.op("Concat", [taps, taps], "taps_taps", axis=0)
    product = em.op("Reshape", [em.op("Mul", [t_h, t_w], "kron4"), square], "kron")
    return em.op("Cast", [product], "basis", output=output, to=TensorProto.FLOAT)


def emit_fresh_weight(
    em: Emitter, space: str, seed: IntOrRef, bands: IntsOrRef, shape: IntsOrRef, output: str | None = None
) -> str:
    """The FreshWeight body: band-hashed DCT coefficients, then the inverse DCT of every filter."""
    i64 = TensorProto.INT64
    zero, one = em.const(0, i64), em.const(1, i64)
    shape_t = em.const_i64(shape, "shape")
    numel = em.op("ReduceProd", [shape_t], "numel", keepdims=0)
    kh = em.op("Gather", [shape_t, em.const(2, i64)], "kh", axis=0)
    kw = em.op("Gather", [shape_t, em.const(3, i64)], "kw", axis=0)
    taps = em.op("Mul", [kh, kw], "taps")
    filters = em.op("Div", [numel, taps], "filters")
    h = hf.emit_hp32(em, em.op("Range", [zero, numel, one], "index"), seed, 0)
    grid = em.op(
        "Concat",
        [em.op("Unsqueeze", [d, em.const_i64([0], "axis0")], "dim") for d in (filters, taps)],
        "grid",
        axis=0,
    )
    h = em.op("Reshape", [h, grid], "h_grid")  # [filters, taps]: one row per filter
    # Per filter position r = u·kw + v: band min(u + v, nb - 1), its bucket count and offset.
    position = em.op("Range", [zero, taps, one], "position")
    diagonal = em.op(
        "Add", [em.op("Div", [position, kw], "u"), em.op("Mod", [position, kw], "v", fmod=0)], "u_v"
    )
    sizes = em.const_i64(bands, "bands")
    last = em.op("Sub", [em.op("Shape", [sizes], "num_bands"), one], "last_band")
    band = em.op("Min", [diagonal, last], "band")
    band_offsets = em.op("Sub", [em.op("CumSum", [sizes, zero], "band_ends"), sizes], "band_offsets")
    pool = em.op("Gather", [sizes, band], "pool", axis=0)
    live = em.op("Greater", [pool, zero], "live")
    bucket, sign = hf.emit_bucket_sign(em, h, em.op("Max", [pool, one], "modulus"))
    bucket = em.op("Add", [bucket, em.op("Gather", [band_offsets, band], "offset", axis=0)], "bucket_at")
    bucket = em.op("Where", [live, bucket, zero], "bucket_live")
    gathered = em.op("Gather", [space, bucket], "gathered", axis=0)
    gathered = em.op("Where", [live, gathered, em.const(0.0, TensorProto.FLOAT)], "gathered_live")
    coefficients = em.op("Mul", [gathered, sign], "coefficients")
    pixels = em.op("MatMul", [coefficients, emit_idct_basis(em, kh, kw)], "pixels")
    return em.op("Reshape", [pixels, shape_t], "weight", output=output, allowzero=1)


def fresh_weight_function(opset: int) -> onnx.FunctionProto:
    """FunctionProto ``ai.hashpack.FreshWeight`` (attributes seed, bands, shape)."""
    em = Emitter(prefix="")
    emit_fresh_weight(em, "space", AttrRef("seed"), AttrRef("bands"), AttrRef("shape"), output="weight")
    return helper.make_function(
        hf.DOMAIN,
        FRESH_WEIGHT,
        inputs=["space"],
        outputs=["weight"],
        nodes=em.nodes,
        opset_imports=[helper.make_opsetid("", opset)],
        attributes=["seed", "bands", "shape"],
        doc_string="FreshNets filters: band-hashed DCT coefficients, inverse DCT (hashpack docs/FORMAT.md §4).",
    )


def band_fetches(space: str, bands: list[int], kh: int, kw: int) -> list[Fetch]:
    """The batched pass's fetch for each filter position (u, v): its band's pool, or 0.0."""
    offsets = np.concatenate([[0], np.cumsum(bands)[:-1]]).tolist()
    fetches = []
    for u in range(kh):
        for v in range(kw):
            band = min(u + v, len(bands) - 1)
            size = bands[band]
            fetches.append(Fetch(space, size, int(offsets[band])) if size else Fetch(None, 1))
    return fetches


def _compact(b: GraphBuilder, param: Param, output: str) -> None:
    space = b.space(param.spec["space"])
    spec = param.spec
    call_function(
        b,
        FRESH_WEIGHT,
        fresh_weight_function,
        [space],
        output,
        seed=spec["seed"],
        bands=spec["bands"],
        shape=param.shape,
    )


def _inline(b: GraphBuilder, param: Param, output: str) -> None:
    out_channels, in_channels, kh, kw = param.shape
    coefficients = b.names.claim(f"{output}/coefficients")
    b.hash_batch.request(
        seed=param.spec["seed"],
        fetches=band_fetches(b.space(param.spec["space"]), list(param.spec["bands"]), kh, kw),
        shape=(out_channels * in_channels, kh * kw),
        output=coefficients,
    )

    def basis() -> str:
        em = b.emitter("idct")
        name = emit_idct_basis(em, em.const(kh, TensorProto.INT64), em.const(kw, TensorProto.INT64))
        b.add_emitted(em)
        return name

    pixels = b.names.claim(f"{output}/pixels")
    b.node("MatMul", [coefficients, b.shared(("idct", kh, kw), basis)], [pixels], name=f"{pixels}/MatMul")
    shape = b.constant(list(param.shape), np.int64, f"{output}/shape")
    b.node("Reshape", [pixels, shape], [output], name=f"{output}/Reshape")


register_scheme("fresh", _compact, _inline)

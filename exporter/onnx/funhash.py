"""``funhash`` (FunHashNN): each weight is g(z), z = U (or 2U) signed fetches, g a per-layer MLP.

``ai.hashpack.FunHashWeight(space0, space1, g) -> weight``, attributes ``seed``, ``hashes`` (U),
``hops`` (1 or 2), ``hidden`` (H ≥ 1), ``num_spaces`` (S, 1 or 2; with S = 1 pass space0 twice)
and ``shape``. As ``runtime/schemes/funhash.py``: fetch u of weight i reads space ``u mod S`` at
``b = h_u(i) mod K`` with sign bit 31 of h_u (hp32, f = u); a second hop reads the same space at
``h'_u(b) mod K`` (f = U + u, hashing the bucket b) with the product of both signs. z = [hop-1
fetches, hop-2 fetches]; ``g(z) = relu(z W1ᵀ + b1) · w2 + b2`` with W1 [H, U·hops], b1 [H], w2 [H],
b2 [1] read in that order from the g space.

All U hashes run at once on an [N, U] grid (the key derivation takes a vector of function
numbers). The function body always computes the second hop and keeps the first U·hops columns,
so one body serves both hop counts (the extra hashing is folded away at session creation).
The fetches are bit-identical to the numpy runtime; g is float32 MatMul/Add/Relu, equal to
numpy's up to summation order (tested within atol 1e-6, rtol 1e-5; g's terms are O(1)).
With H = 0 (g = identity, then U = 1, one hop) the scheme *is* ``hashed`` over space0, and is
exported as HashedWeight. The inline form sends the fetches through the batched hash pass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import onnx
from onnx import TensorProto, helper

from hashpack.runtime import Param

from . import functions as hf
from .batch import Fetch
from .functions import AttrRef, Emitter, IntOrRef, IntsOrRef
from .scheme_registry import call_function, register_scheme, scheme_producers

if TYPE_CHECKING:
    from .builder import GraphBuilder  # builder.py calls this module: no import back at run time

__all__ = ["FUNHASH_WEIGHT", "emit_funhash_fetches", "emit_funhash_g", "emit_funhash_weight"]

FUNHASH_WEIGHT = "FunHashWeight"


def _signed_fetch(em: Emitter, h: str, modulus: str, offset: str, values: str) -> tuple[str, str, str]:
    """(bucket in its space, sign, sign · values[offset + bucket]) of uint32 hashes ``h``."""
    bucket, sign = hf.emit_bucket_sign(em, h, modulus)
    gathered = em.op("Gather", [values, em.op("Add", [bucket, offset], "bucket_at")], "gathered", axis=0)
    return bucket, sign, gathered


def emit_funhash_fetches(
    em: Emitter, index: str, spaces: tuple[str, str], seed: IntOrRef, hashes: IntOrRef, num_spaces: IntOrRef
) -> str:
    """z (float32 [N, 2U]) for int64 flat indices ``index`` [N]: hop-1 fetches, then hop-2 fetches."""
    i64 = TensorProto.INT64
    zero, one = em.const(0, i64), em.const(1, i64)
    count = em.const_i64(hashes, "hashes")
    axis0 = em.const_i64([0], "axis0")
    zero_1d, count_1d = em.const_i64([0], "zero_1d"), em.op("Unsqueeze", [count, axis0], "hashes_1d")
    u = em.op("Range", [zero, count, one], "u")
    space_of_u = em.op("Mod", [u, em.const_i64(num_spaces, "num_spaces")], "space_of_u", fmod=0)
    k0, k1 = (em.op("Shape", [s], f"k{n}") for n, s in enumerate(spaces))
    modulus = em.op("Where", [em.op("Equal", [space_of_u, zero], "in_space0"), k0, k1], "modulus")
    offset = em.op("Mul", [space_of_u, k0], "offset")  # space1 follows space0 in `values`
    values = em.op("Concat", list(spaces), "values", axis=0)

    # One key derivation for functions 0..2U-1: hop 1 uses f = u, hop 2 f = U + u.
    all_keys = hf.emit_hash_key(
        em, seed, em.op("Range", [zero, em.op("Add", [count, count], "two_u"), one], "f")
    )
    hop1_keys = [em.op("Slice", [k, zero_1d, count_1d], "hop1_k") for k in all_keys]
    hop2_keys = [
        em.op("Slice", [k, count_1d, em.op("Add", [count_1d, count_1d], "two_u_1d")], "hop2_k")
        for k in all_keys
    ]

    def hashed(x_i64: str, keys: list[str], hint: str) -> str:
        x = em.op("Cast", [x_i64], f"{hint}_u32", to=TensorProto.UINT32)
        x = em.op("Mul", [em.op("BitwiseXor", [x, keys[0]], f"{hint}_xk"), keys[1]], f"{hint}_xm")
        return hf.emit_mix32(em, x)

    column = em.op("Unsqueeze", [index, em.const_i64([1], "axis1")], "index_col")  # [N, 1] × [U]
    bucket, sign, first = _signed_fetch(em, hashed(column, hop1_keys, "hop1"), modulus, offset, values)
    _, sign2, second = _signed_fetch(em, hashed(bucket, hop2_keys, "hop2"), modulus, offset, values)
    first = em.op("Mul", [first, sign], "z1")
    second = em.op("Mul", [second, em.op("Mul", [sign, sign2], "sign12")], "z2")
    return em.op("Concat", [first, second], "z_both", axis=1)


def emit_funhash_g(
    em: Emitter, z: str, g: str, inputs: int | str, hidden: IntOrRef, output: str | None = None
) -> str:
    """``relu(z W1ᵀ + b1) · w2 + b2`` (float32 [N]) for z [N, D].

    ``inputs`` is D, a literal or an int64 scalar tensor; with D and ``hidden`` literal the split
    sizes and W1's shape are constants (the inline form), else they are computed in the graph.
    g is split in storage order into W1 [H, D], b1 [H], w2 [H], b2 [1].
    """
    i64 = TensorProto.INT64
    if isinstance(inputs, int) and isinstance(hidden, int):
        sizes = em.const_i64([inputs * hidden, hidden, hidden, 1], "g_sizes")
        w1_shape = em.const_i64([hidden, inputs], "w1_shape")
    else:
        d = em.const_i64(inputs, "inputs") if isinstance(inputs, int) else inputs
        h = em.const_i64(hidden, "hidden")
        one = em.const(1, i64)
        dims = [em.op("Mul", [d, h], "w1_size"), h, h, one]
        axis0 = em.const_i64([0], "axis0")
        sizes = em.op("Concat", [em.op("Unsqueeze", [v, axis0], "size") for v in dims], "g_sizes", axis=0)
        w1_shape = em.op(
            "Concat", [em.op("Unsqueeze", [v, axis0], "dim") for v in (h, d)], "w1_shape", axis=0
        )
    w1, b1, w2, b2 = (em.fresh(name) for name in ("w1", "b1", "w2", "b2"))
    em.nodes.append(helper.make_node("Split", [g, sizes], [w1, b1, w2, b2], name=f"{w1}_Split", axis=0))
    w1 = em.op("Reshape", [w1, w1_shape], "w1_matrix")
    pre = em.op(
        "Add", [em.op("MatMul", [z, em.op("Transpose", [w1], "w1_t", perm=[1, 0])], "z_w1"), b1], "pre"
    )
    act = em.op("Relu", [pre], "act")
    return em.op("Add", [em.op("MatMul", [act, w2], "act_w2"), b2], "g_out", output=output)


def emit_funhash_weight(
    em: Emitter,
    spaces: tuple[str, str],
    g: str,
    *,
    seed: IntOrRef,
    hashes: IntOrRef,
    hops: IntOrRef,
    hidden: IntOrRef,
    num_spaces: IntOrRef,
    shape: IntsOrRef,
    output: str | None = None,
) -> str:
    """The FunHashWeight body: fetch z for every flat index, keep U·hops columns, apply g."""
    i64 = TensorProto.INT64
    shape_t = em.const_i64(shape, "shape")
    numel = em.op("ReduceProd", [shape_t], "numel", keepdims=0)
    index = em.op("Range", [em.const(0, i64), numel, em.const(1, i64)], "index")
    z = emit_funhash_fetches(em, index, spaces, seed, hashes, num_spaces)
    inputs = em.op("Mul", [em.const_i64(hashes, "hashes"), em.const_i64(hops, "hops")], "inputs")
    end = em.op("Unsqueeze", [inputs, em.const_i64([0], "axis0")], "inputs_1d")
    z = em.op("Slice", [z, em.const_i64([0], "start0"), end, em.const_i64([1], "axis1")], "z")
    flat = emit_funhash_g(em, z, g, inputs, hidden)
    return em.op("Reshape", [flat, shape_t], "weight", output=output, allowzero=1)


def funhash_weight_function(opset: int) -> onnx.FunctionProto:
    """FunctionProto ``ai.hashpack.FunHashWeight`` (seed, hashes, hops, hidden, num_spaces, shape)."""
    em = Emitter(prefix="")
    emit_funhash_weight(
        em,
        ("space0", "space1"),
        "g",
        seed=AttrRef("seed"),
        hashes=AttrRef("hashes"),
        hops=AttrRef("hops"),
        hidden=AttrRef("hidden"),
        num_spaces=AttrRef("num_spaces"),
        shape=AttrRef("shape"),
        output="weight",
    )
    return helper.make_function(
        hf.DOMAIN,
        FUNHASH_WEIGHT,
        inputs=["space0", "space1", "g"],
        outputs=["weight"],
        nodes=em.nodes,
        opset_imports=[helper.make_opsetid("", opset)],
        attributes=["seed", "hashes", "hops", "hidden", "num_spaces", "shape"],
        doc_string="FunHashNN weights: an MLP over hashed fetches (hashpack docs/FORMAT.md §4).",
    )


def _as_hashed(param: Param) -> Param:
    """H = 0: g is the identity, U = 1, one hop, so the weight is ``hashed`` over spaces[0]."""
    spec = {"space": param.spec["spaces"][0], "seed": param.spec["seed"]}
    return Param(param.name, "hashed", param.shape, spec)


def _compact(b: GraphBuilder, param: Param, output: str) -> None:
    spec = param.spec
    if spec["hidden"] == 0:
        scheme_producers("hashed").compact(b, _as_hashed(param), output)
        return
    spaces = [b.space(name) for name in spec["spaces"]]
    inputs = [spaces[0], spaces[-1], b.space(spec["g"])]
    call_function(
        b,
        FUNHASH_WEIGHT,
        funhash_weight_function,
        inputs,
        output,
        seed=spec["seed"],
        hashes=spec["hashes"],
        hops=spec["hops"],
        hidden=spec["hidden"],
        num_spaces=len(spaces),
        shape=param.shape,
    )


def _inline(b: GraphBuilder, param: Param, output: str) -> None:
    spec = param.spec
    if spec["hidden"] == 0:
        scheme_producers("hashed").inline(b, _as_hashed(param), output)
        return
    hashes, hops = spec["hashes"], spec["hops"]
    spaces = [(b.space(name), b.hpk.spaces[name].size) for name in spec["spaces"]]
    fetches = [Fetch(*spaces[u % len(spaces)], function=u) for u in range(hashes)]
    if hops == 2:
        fetches += [Fetch(*spaces[u % len(spaces)], function=u, hop2=hashes + u) for u in range(hashes)]
    z = b.names.claim(f"{output}/z")
    b.hash_batch.request(
        seed=spec["seed"], fetches=fetches, shape=(param.numel, len(fetches)), output=z, grouped=True
    )
    em = b.emitter("g")
    flat = emit_funhash_g(em, z, b.space(spec["g"]), len(fetches), spec["hidden"])
    shape = b.constant(list(param.shape), np.int64, f"{output}/shape")
    em.nodes.append(helper.make_node("Reshape", [flat, shape], [output], name=f"{output}/Reshape"))
    b.add_emitted(em)


register_scheme("funhash", _compact, _inline)

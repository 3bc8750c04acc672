"""hp32 decompression (docs/FORMAT.md §1) as standard ONNX ops, in two forms built by one code path.

Why standard ops: stock ONNX Runtime runs the graph with no custom kernel, and because the body
only reads initializers and attributes, ORT constant-folds it into a dense weight at session
creation (the file stays compact, inference runs at dense speed).

**Function form** — model-local functions (``ModelProto.functions``) in domain ``ai.hashpack``,
version 1; register them with :func:`local_functions` and :func:`opset_imports`:

``HashedWeight(space) -> weight``
    ``space``: float32 ``[K]``, the dequantized bucket values (K is read from its shape).
    ``weight``: float32 of the virtual ``shape`` (PyTorch layout), ``sign(i) * space[bucket(i)]``.
    Attributes: ``seed`` (int, the tensor's u32 seed from the .hpk metadata), ``function``
    (int, hash function number f), ``shape`` (ints, the virtual shape; size = its product).

``Hp32(index) -> (hash, bucket, sign)``
    ``index``: int64 ``[N]`` flat indices in ``[0, 2**31)``; ``hash``: uint32, ``bucket``: int64
    in ``[0, num_buckets)``, ``sign``: float32 ±1. Attributes ``seed``, ``function``,
    ``num_buckets``. For schemes that need buckets and signs rather than a gathered tensor, and
    for checking the shared test vectors.

The key and the multiplier are derived in the graph from ``seed`` and ``function`` exactly as
``hashpack.runtime.hashing.hash_key`` does, so a node carries the .hpk metadata verbatim and the
whole hash specification lives in the graph (ORT folds the scalar derivation away).
Every attribute is required (build call nodes with :func:`hashed_weight_node` / :func:`hp32_node`):
ORT and the checker honour FunctionProto attribute defaults but ``onnx.reference`` does not. The
functions' default-domain opset must equal the model's: ORT tolerates a mismatch, the full checker
rejects it.

**Inline form** — the same nodes emitted straight into a graph (:func:`hashed_weight_nodes`,
:func:`hp32_nodes`), for consumers that do not handle local functions. Both forms come from the
``emit_*`` functions below, which write into an :class:`Emitter`; an attribute is either a
literal (inline form) or an :class:`AttrRef` to the enclosing function's attribute.

Integer types follow ORT CPU support: BitShift only on uint32, so the hash runs on uint32 (Mul
wraps mod 2**32 as the spec requires); Range, Mod and Gather run on int64 (``h < 2**32`` and
``K <= 2**30``, so the int64 ``Mod`` with ``fmod=0`` equals the u32 modulus). The sign is applied
as a float32 multiply by ±1.0, bit-identical to the numpy runtime's sign-bit flip for every value
except NaN (x86 keeps a NaN operand's sign bit in a multiply).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import AttributeProto, TensorProto, helper, numpy_helper

from hashpack.runtime.hashing import (
    GOLDEN_GAMMA,
    MASK32,
    MAX_BUCKETS,
    MAX_VIRTUAL_SIZE,
    MIX_MULTIPLIER,
    MULTIPLIER_SALT,
)

__all__ = [
    "DOMAIN",
    "DOMAIN_VERSION",
    "HASHED_WEIGHT",
    "HP32",
    "MIN_OPSET",
    "AttrRef",
    "Emitter",
    "emit_bucket_sign",
    "emit_hash_key",
    "emit_hashed_weight",
    "emit_hp32",
    "emit_mix32",
    "hashed_weight_function",
    "hashed_weight_node",
    "hashed_weight_nodes",
    "hp32_function",
    "hp32_node",
    "hp32_nodes",
    "local_functions",
    "opset_imports",
]

DOMAIN = "ai.hashpack"
DOMAIN_VERSION = 1
HASHED_WEIGHT = "HashedWeight"
HP32 = "Hp32"
MIN_OPSET = 18  # BitwiseXor / BitwiseAnd / BitwiseOr appear in opset 18

_SIGN_SHIFT = 31
_HALF_SHIFT = 16


@dataclass(frozen=True)
class AttrRef:
    """A reference to an attribute of the enclosing function (``ref_attr_name``)."""

    name: str


IntOrRef = int | AttrRef
IntsOrRef = Sequence[int] | AttrRef


class Emitter:
    """Collects standard-op nodes with unique value names.

    One emitter backs either a function body (names are local, ``prefix`` may be short) or a
    run of inline nodes in a larger graph (``prefix`` keeps names clear of the graph's own).
    uint32 constants are emitted once per emitter and reused.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.nodes: list[onnx.NodeProto] = []
        self._counter = itertools.count()
        self._constants: dict[tuple[int, float], str] = {}

    def fresh(self, hint: str) -> str:
        """A new value name, unique within this emitter."""
        return f"{self.prefix}{hint}_{next(self._counter)}"

    def op(
        self, op_type: str, inputs: Sequence[str], hint: str, output: str | None = None, **attrs: Any
    ) -> str:
        """Append one single-output node and return its output name."""
        out = output or self.fresh(hint)
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=f"{out}_{op_type}", **attrs))
        return out

    def const(self, value: float, dtype: int) -> str:
        """A scalar constant of ``dtype`` (a TensorProto data type), shared within the emitter."""
        key = (dtype, value)
        if key not in self._constants:
            array = np.array(value, dtype=helper.tensor_dtype_to_np_dtype(dtype))
            tensor = numpy_helper.from_array(array, name="")
            hint = f"c_{array.dtype.name}_{array.item()}".replace("-", "m")
            self._constants[key] = self.op("Constant", [], hint, value=tensor)
        return self._constants[key]

    def const_i64(self, value: IntOrRef | IntsOrRef, hint: str) -> str:
        """An int64 constant (scalar for an int, 1-D for a sequence) or an attribute reference."""
        out = self.fresh(hint)
        if isinstance(value, AttrRef):
            # The referenced attribute's type decides between a scalar and a 1-D constant.
            node = helper.make_node("Constant", [], [out], name=f"{out}_Constant")
            kind = _ATTR_KINDS[value.name]
            field = "value_ints" if kind == AttributeProto.INTS else "value_int"
            node.attribute.append(helper.make_attribute_ref(field, kind, ref_attr_name=value.name))
            self.nodes.append(node)
            return out
        if isinstance(value, int):
            tensor = numpy_helper.from_array(np.array(value, dtype=np.int64), name="")
        else:
            tensor = numpy_helper.from_array(np.array(list(value), dtype=np.int64).reshape(-1), name="")
        return self.op("Constant", [], hint, output=out, value=tensor)


# Attribute names and types of the ai.hashpack functions (what an AttrRef may point at); the
# scheme modules (fresh.py, funhash.py, fsnet.py) use the ones after num_buckets.
_ATTR_KINDS = {
    "seed": AttributeProto.INT,
    "function": AttributeProto.INT,
    "shape": AttributeProto.INTS,
    "num_buckets": AttributeProto.INT,
    "bands": AttributeProto.INTS,
    "stride": AttributeProto.INT,
    "hashes": AttributeProto.INT,
    "hops": AttributeProto.INT,
    "hidden": AttributeProto.INT,
    "num_spaces": AttributeProto.INT,
}


def _u32(em: Emitter, value: int) -> str:
    return em.const(value & MASK32, TensorProto.UINT32)


def emit_mix32(em: Emitter, x: str, output: str | None = None) -> str:
    """mix32 on a uint32 tensor: three xorshift-16 steps around two wrapping multiplies."""
    sixteen = _u32(em, _HALF_SHIFT)
    mul = _u32(em, MIX_MULTIPLIER)
    for step in range(3):
        shifted = em.op("BitShift", [x, sixteen], "shr", direction="RIGHT")
        x = em.op("BitwiseXor", [x, shifted], "xs", output=output if step == 2 else None)
        if step < 2:
            x = em.op("Mul", [x, mul], "mm")
    return x


def emit_hash_key(em: Emitter, seed: IntOrRef | str, function: IntOrRef | str) -> tuple[str, str]:
    """uint32 scalars (key, multiplier) of hash function ``function`` of a tensor seeded ``seed``.

    ``seed`` and ``function`` may also name int64 tensors of the graph (same shape or
    broadcastable): the steps are elementwise, so a vector of seeds gives a vector of keys (the
    batched inline form derives every tensor's key in one pass this way).
    """
    seed_i64 = seed if isinstance(seed, str) else em.const_i64(seed, "seed")
    function_i64 = function if isinstance(function, str) else em.const_i64(function, "function")
    seed_u32 = em.op("Cast", [seed_i64], "seed_u32", to=TensorProto.UINT32)
    f_plus_1 = em.op("Add", [function_i64, em.const(1, TensorProto.INT64)], "f1")
    f_u32 = em.op("Cast", [f_plus_1], "f1_u32", to=TensorProto.UINT32)
    gamma_f = em.op("Mul", [f_u32, _u32(em, GOLDEN_GAMMA)], "gamma_f")
    key = emit_mix32(em, em.op("BitwiseXor", [seed_u32, gamma_f], "seed_x"))
    salted = emit_mix32(em, em.op("BitwiseXor", [key, _u32(em, MULTIPLIER_SALT)], "salted"))
    low31 = em.op("BitwiseAnd", [salted, _u32(em, 0x7FFFFFFF)], "low31")
    multiplier = em.op("BitwiseOr", [low31, _u32(em, 1)], "multiplier")
    return key, multiplier


def emit_hp32(em: Emitter, index: str, seed: IntOrRef, function: IntOrRef, output: str | None = None) -> str:
    """h(i) as uint32 for an int64 tensor of flat indices ``index`` (each in [0, 2**31))."""
    key, multiplier = emit_hash_key(em, seed, function)
    x = em.op("Cast", [index], "i_u32", to=TensorProto.UINT32)
    x = em.op("BitwiseXor", [x, key], "i_key")
    x = em.op("Mul", [x, multiplier], "i_mul")
    return emit_mix32(em, x, output=output)


def emit_bucket_sign(
    em: Emitter,
    h: str,
    num_buckets: str,
    bucket_output: str | None = None,
    sign_output: str | None = None,
) -> tuple[str, str]:
    """(bucket int64 = h mod K, sign float32 = 1 - 2 * bit31(h)) from uint32 hashes ``h``.

    ``num_buckets`` names an int64 scalar or ``[1]`` tensor holding K.
    """
    h64 = em.op("Cast", [h], "h_i64", to=TensorProto.INT64)
    bucket = em.op("Mod", [h64, num_buckets], "bucket", output=bucket_output, fmod=0)
    bit = em.op("BitShift", [h, _u32(em, _SIGN_SHIFT)], "sign_bit", direction="RIGHT")
    bit_f = em.op("Cast", [bit], "sign_bit_f", to=TensorProto.FLOAT)
    minus_two_bit = em.op("Mul", [bit_f, _f32(em, -2.0)], "m2bit")
    sign = em.op("Add", [minus_two_bit, _f32(em, 1.0)], "sign", output=sign_output)
    return bucket, sign


def _f32(em: Emitter, value: float) -> str:
    return em.const(value, TensorProto.FLOAT)


def emit_hashed_weight(
    em: Emitter,
    space: str,
    seed: IntOrRef,
    function: IntOrRef,
    shape: IntsOrRef,
    output: str | None = None,
) -> str:
    """The virtual float32 tensor ``sign(i) * space[bucket(i)]`` reshaped to ``shape``.

    K comes from the runtime shape of ``space`` (so the bucket count cannot disagree with the
    data), the flat size from the product of ``shape``.
    """
    shape_t = em.const_i64(shape, "shape")
    size = em.op("ReduceProd", [shape_t], "size", keepdims=0)
    index = em.op("Range", [em.const(0, TensorProto.INT64), size, em.const(1, TensorProto.INT64)], "index")
    h = emit_hp32(em, index, seed, function)
    num_buckets = em.op("Shape", [space], "num_buckets")
    bucket, sign = emit_bucket_sign(em, h, num_buckets)
    gathered = em.op("Gather", [space, bucket], "gathered", axis=0)
    flat = em.op("Mul", [gathered, sign], "signed")
    # allowzero=1: a 0 in ``shape`` is an empty dimension, not "copy the input's dimension".
    return em.op("Reshape", [flat, shape_t], "weight", output=output, allowzero=1)


# --- function form -------------------------------------------------------------------------


def _function_opsets(opset: int) -> list[onnx.OperatorSetIdProto]:
    if opset < MIN_OPSET:
        raise ValueError(f"opset {opset} < {MIN_OPSET}: the hash needs BitwiseXor/And/Or (opset 18)")
    return [helper.make_opsetid("", opset)]


def hashed_weight_function(opset: int = MIN_OPSET) -> onnx.FunctionProto:
    """FunctionProto ``ai.hashpack.HashedWeight`` (attributes seed, function, shape).

    ``opset`` must equal the model's default-domain opset (ORT and the checker expect the
    function's imports to agree with the model's).
    """
    em = Emitter(prefix="")
    emit_hashed_weight(em, "space", AttrRef("seed"), AttrRef("function"), AttrRef("shape"), output="weight")
    return helper.make_function(
        DOMAIN,
        HASHED_WEIGHT,
        inputs=["space"],
        outputs=["weight"],
        nodes=em.nodes,
        opset_imports=_function_opsets(opset),
        attributes=["seed", "function", "shape"],
        doc_string="hp32 decompression of a hashed tensor (hashpack docs/FORMAT.md §1).",
    )


def hp32_function(opset: int = MIN_OPSET) -> onnx.FunctionProto:
    """FunctionProto ``ai.hashpack.Hp32``: (hash, bucket, sign) of int64 flat indices."""
    em = Emitter(prefix="")
    h = emit_hp32(em, "index", AttrRef("seed"), AttrRef("function"), output="hash")
    emit_bucket_sign(em, h, em.const_i64(AttrRef("num_buckets"), "num_buckets"), "bucket", "sign")
    return helper.make_function(
        DOMAIN,
        HP32,
        inputs=["index"],
        outputs=["hash", "bucket", "sign"],
        nodes=em.nodes,
        opset_imports=_function_opsets(opset),
        attributes=["seed", "function", "num_buckets"],
        doc_string="hp32 hash, bucket and sign of flat indices (hashpack docs/FORMAT.md §1).",
    )


def local_functions(opset: int = MIN_OPSET) -> list[onnx.FunctionProto]:
    """Every ai.hashpack function, for ``ModelProto.functions`` (unused ones are harmless)."""
    return [hashed_weight_function(opset), hp32_function(opset)]


def opset_imports(opset: int = MIN_OPSET) -> list[onnx.OperatorSetIdProto]:
    """Model opset imports that make the ai.hashpack function calls resolvable."""
    return [*_function_opsets(opset), helper.make_opsetid(DOMAIN, DOMAIN_VERSION)]


def _check_hash_args(seed: int, function: int) -> None:
    if not 0 <= seed <= MASK32:
        raise ValueError(f"seed {seed} is not a uint32")
    if not 0 <= function < 2**16:
        raise ValueError(f"hash function number {function} out of range")


def _check_shape(shape: Sequence[int]) -> list[int]:
    dims = [int(d) for d in shape]
    if any(d < 0 for d in dims) or int(np.prod(dims, dtype=np.int64)) > MAX_VIRTUAL_SIZE:
        raise ValueError(f"virtual shape {dims} is negative or has more than 2**31 - 1 elements")
    return dims


def _check_num_buckets(num_buckets: int) -> None:
    if not 1 <= num_buckets <= MAX_BUCKETS:
        raise ValueError(f"bucket count {num_buckets} outside [1, 2**30]")


def hashed_weight_node(
    space: str,
    output: str,
    *,
    seed: int,
    shape: Sequence[int],
    function: int = 0,
    name: str | None = None,
) -> onnx.NodeProto:
    """A call of ``ai.hashpack.HashedWeight`` (needs :func:`local_functions` in the model)."""
    _check_hash_args(seed, function)
    node = helper.make_node(
        HASHED_WEIGHT, [space], [output], name=name or f"{output}_{HASHED_WEIGHT}", domain=DOMAIN
    )
    node.attribute.extend(
        [
            helper.make_attribute("seed", seed),
            helper.make_attribute("function", function),
            helper.make_attribute("shape", _check_shape(shape), attr_type=AttributeProto.INTS),
        ]
    )
    return node


def hp32_node(
    index: str,
    outputs: Sequence[str],
    *,
    seed: int,
    num_buckets: int,
    function: int = 0,
    name: str | None = None,
) -> onnx.NodeProto:
    """A call of ``ai.hashpack.Hp32``; ``outputs`` = (hash, bucket, sign), "" to skip one."""
    _check_hash_args(seed, function)
    _check_num_buckets(num_buckets)
    return helper.make_node(
        HP32,
        [index],
        list(outputs),
        name=name or f"{next((o for o in outputs if o), index)}_{HP32}",
        domain=DOMAIN,
        seed=seed,
        function=function,
        num_buckets=num_buckets,
    )


# --- inline form ---------------------------------------------------------------------------


def hashed_weight_nodes(
    space: str,
    output: str,
    *,
    seed: int,
    shape: Sequence[int],
    function: int = 0,
    prefix: str | None = None,
) -> list[onnx.NodeProto]:
    """Standard-op nodes computing ``output`` from ``space`` (the inline form of HashedWeight).

    Intermediate names start with ``prefix`` (default ``"{output}/hp32/"``), which must not
    prefix any other name in the graph.
    """
    _check_hash_args(seed, function)
    em = Emitter(prefix=f"{output}/hp32/" if prefix is None else prefix)
    emit_hashed_weight(em, space, seed, function, _check_shape(shape), output=output)
    return em.nodes


def hp32_nodes(
    index: str,
    outputs: Sequence[str],
    *,
    seed: int,
    num_buckets: int,
    function: int = 0,
    prefix: str | None = None,
) -> list[onnx.NodeProto]:
    """Standard-op nodes computing (hash, bucket, sign) of int64 ``index`` (inline form of Hp32)."""
    _check_hash_args(seed, function)
    _check_num_buckets(num_buckets)
    hash_out, bucket_out, sign_out = outputs
    em = Emitter(prefix=f"{index}/hp32/" if prefix is None else prefix)
    h = emit_hp32(em, index, seed, function, output=hash_out)
    emit_bucket_sign(em, h, em.const_i64(num_buckets, "num_buckets"), bucket_out, sign_out)
    return em.nodes

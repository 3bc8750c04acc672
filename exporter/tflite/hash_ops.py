"""hp32 decompression (docs/FORMAT.md §1) as stock LiteRT builtin ops.

Why this op chain: LiteRT's uint32 support is partial (MUL, BITWISE_XOR, RIGHT_SHIFT and CAST work;
ADD, FLOOR_MOD, RANGE and GATHER do not), so flat indices are an int32 RANGE cast to uint32, the
hash runs on uint32 (wrapping MUL, logical shifts), and ``mod K`` runs after a cast to int64 —
exact because h < 2**32 and K <= 2**30. Every scalar operand is a shape-[] constant broadcast by
the kernel (measured to work for uint32 MUL/BITWISE_XOR/RIGHT_SHIFT), so the graph stays O(K) in
size. key and multiplier are computed here in Python from the seed and baked in.

The sign is applied as ``values[bucket] * (1 - 2 * bit31)``; a float multiply by exactly ±1 is
bit-identical to the numpy runtime's sign-bit flip (zeros included: 1 * -0 = -0, -1 * 0 = -0).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hashpack.runtime.hashing import (
    MAX_VIRTUAL_SIZE,
    MIX_MULTIPLIER,
    check_num_buckets,
    hash_key,
)

from .builder import SubgraphBuilder, TensorHandle
from .schema import schema, tflite_type

__all__ = [
    "emit_bucket",
    "emit_bucket_and_sign",
    "emit_cast",
    "emit_gather_signed",
    "emit_gather_signed_at",
    "emit_hash",
    "emit_index_range",
    "emit_keyed",
    "emit_mix32",
    "emit_reshape",
    "emit_sign",
]


def emit_cast(
    sg: SubgraphBuilder, x: TensorHandle, dtype: np.dtype | type, name: str | None = None
) -> TensorHandle:
    """CAST with the in/out types in its options too, as the TF converter writes them."""
    options = schema.CastOptionsT()
    options.inDataType = tflite_type(x.dtype)
    options.outDataType = tflite_type(dtype)
    return sg.op("CAST", [x], dtype, x.shape, options, name=name)


def emit_reshape(
    sg: SubgraphBuilder, x: TensorHandle, shape: Sequence[int], name: str | None = None
) -> TensorHandle:
    """RESHAPE to a static shape (shape given both as the tensor input and in the options)."""
    shape = tuple(int(d) for d in shape)
    if int(np.prod(shape, dtype=np.int64)) != x.size:
        raise ValueError(f"cannot reshape {x.shape} to {shape}")
    options = schema.ReshapeOptionsT()
    options.newShape = list(shape)
    target = sg.constant(np.array(shape, dtype=np.int32))
    return sg.op("RESHAPE", [x, target], x.dtype, shape, options, name=name)


def emit_index_range(sg: SubgraphBuilder, start: int, stop: int, name: str | None = None) -> TensorHandle:
    """int32 flat indices ``start..stop-1`` (RANGE: the only integer type LiteRT ranges in, with int64)."""
    if not 0 <= start < stop <= MAX_VIRTUAL_SIZE:
        raise ValueError(f"index range [{start}, {stop}) is empty or not within [0, 2**31 - 1]")
    args = [sg.constant(v, np.int32) for v in (start, stop, 1)]
    return sg.op("RANGE", args, np.int32, [stop - start], schema.RangeOptionsT(), name=name)


def _u32(sg: SubgraphBuilder, value: int) -> TensorHandle:
    return sg.constant(value, np.uint32)


def _name(prefix: str | None, suffix: str) -> str | None:
    return None if prefix is None else f"{prefix}/{suffix}"


def _binary(
    sg: SubgraphBuilder, op: str, a: TensorHandle, b: TensorHandle, options: object, name: str | None = None
) -> TensorHandle:
    return sg.op(op, [a, b], a.dtype, a.shape, options, name=name)


def emit_hash(
    sg: SubgraphBuilder, index: TensorHandle, seed: int, function: int = 0, name: str | None = None
) -> TensorHandle:
    """h(i) = mix32((i ^ key) * multiplier) as uint32, for an int32 or uint32 index tensor.

    Pass a uint32 index to share one CAST between several hash functions of the same tensor.
    ``name`` names the result and prefixes the temporaries.
    """
    key, multiplier = hash_key(seed, function)
    x = index
    if np.dtype(x.dtype) == np.int32:
        x = emit_cast(sg, x, np.uint32, name=_name(name, "index_u32"))
    elif np.dtype(x.dtype) != np.uint32:
        raise ValueError(f"index tensor {x.name!r} is {x.dtype}, need int32 or uint32")
    return emit_mix32(sg, emit_keyed(sg, x, key, multiplier, name), name)


def emit_keyed(
    sg: SubgraphBuilder, index: TensorHandle, key: int, multiplier: int, name: str | None = None
) -> TensorHandle:
    """``(i ^ key) * multiplier`` on a uint32 index tensor: the seed-dependent part of h(i)."""
    x = _binary(sg, "BITWISE_XOR", index, _u32(sg, key), schema.BitwiseXorOptionsT(), _name(name, "keyed"))
    return _binary(sg, "MUL", x, _u32(sg, multiplier), schema.MulOptionsT(), _name(name, "scaled"))


def emit_mix32(sg: SubgraphBuilder, x: TensorHandle, name: str | None = None) -> TensorHandle:
    """mix32 on a uint32 tensor; seed-independent, so one chain can serve many tensors at once."""
    mul, xor, shift = schema.MulOptionsT(), schema.BitwiseXorOptionsT(), schema.RightShiftOptionsT()
    sixteen, mix = _u32(sg, 16), _u32(sg, MIX_MULTIPLIER)
    for step in range(3):  # mix32: three xor-shifts with two multiplies between them
        high = _binary(sg, "RIGHT_SHIFT", x, sixteen, shift, _name(name, f"mix{step}_shift"))
        last = step == 2
        x = _binary(sg, "BITWISE_XOR", x, high, xor, name if last else _name(name, f"mix{step}_xor"))
        if not last:
            x = _binary(sg, "MUL", x, mix, mul, _name(name, f"mix{step}_mul"))
    return x


def emit_bucket_and_sign(
    sg: SubgraphBuilder, h: TensorHandle, num_buckets: int, name: str | None = None
) -> tuple[TensorHandle, TensorHandle]:
    """(h mod K as int64, sign as float32 ±1) from a uint32 hash tensor; outputs ``name/bucket|sign``."""
    check_num_buckets(num_buckets)
    wide = emit_cast(sg, h, np.int64, name=_name(name, "h_i64"))
    return emit_bucket(sg, wide, num_buckets, name), emit_sign(sg, h, name)


def emit_bucket(
    sg: SubgraphBuilder, wide: TensorHandle, num_buckets: int, name: str | None = None
) -> TensorHandle:
    """``h mod K`` (int64) from the hash already cast to int64 (LiteRT has no uint32 FLOOR_MOD)."""
    k = sg.constant(num_buckets, np.int64)
    return _binary(sg, "FLOOR_MOD", wide, k, schema.FloorModOptionsT(), _name(name, "bucket"))


def emit_sign(sg: SubgraphBuilder, h: TensorHandle, name: str | None = None) -> TensorHandle:
    """``1 - 2 * bit31(h)`` as float32 (±1) from a uint32 hash tensor."""
    top = _binary(sg, "RIGHT_SHIFT", h, _u32(sg, 31), schema.RightShiftOptionsT(), _name(name, "bit31"))
    bit = emit_cast(sg, top, np.float32, name=_name(name, "bit31_f32"))
    twice = _binary(
        sg, "MUL", bit, sg.constant(-2.0, np.float32), schema.MulOptionsT(), _name(name, "minus2bit")
    )
    return _binary(sg, "ADD", twice, sg.constant(1.0, np.float32), schema.AddOptionsT(), _name(name, "sign"))


def _gather_signed_flat(
    sg: SubgraphBuilder,
    values: TensorHandle,
    start: int,
    stop: int,
    seed: int,
    function: int,
    name: str | None,
    out_name: str | None,
) -> TensorHandle:
    index = emit_index_range(sg, start, stop, name=_name(name, "index"))
    return emit_gather_signed_at(sg, values, index, seed, function, name=name, out_name=out_name)


def emit_gather_signed_at(
    sg: SubgraphBuilder,
    values: TensorHandle,
    index: TensorHandle,
    seed: int,
    function: int = 0,
    *,
    name: str | None = None,
    out_name: str | None = None,
) -> TensorHandle:
    """``sign(i) * values[bucket(i)]`` for every flat index ``i`` held by ``index`` (any shape).

    Why: a kernel that wants a weight in another axis order (OHWI filters) gets it by hashing the
    permuted flat indices, with no TRANSPOSE; each element is still ``weight(i)`` bit for bit.
    ``index`` is int32 (or uint32) with values in ``[0, 2**31)``; ``values`` is float32 ``[K]``.
    """
    h = emit_hash(sg, index, seed, function, name=_name(name, "hash"))
    bucket, sign = emit_bucket_and_sign(sg, h, values.shape[0], name=name)
    options = schema.GatherOptionsT()
    options.axis = 0
    gathered = sg.op(
        "GATHER", [values, bucket], np.float32, index.shape, options, name=_name(name, "gathered")
    )
    return _binary(sg, "MUL", gathered, sign, schema.MulOptionsT(), out_name)


def emit_gather_signed(
    sg: SubgraphBuilder,
    values: np.ndarray | TensorHandle,
    size: int,
    seed: int,
    function: int = 0,
    shape: Sequence[int] | None = None,
    *,
    name: str | None = None,
    chunk_size: int | None = None,
) -> TensorHandle:
    """The virtual tensor ``sign(i) * values[bucket(i)]`` (float32), reshaped to ``shape``.

    The graph equivalent of ``hashing.gather_signed(values, size, seed, function)``. ``values`` is
    the float32 bucket array: an ndarray (baked in as a constant) or a float32 tensor of shape [K]
    (e.g. an int8/float16 space dequantised in the graph). ``chunk_size`` splits the index range
    into pieces joined by CONCATENATION, so the int64/uint32 temporaries (~20 bytes per virtual
    weight) are only live for one chunk at a time.
    """
    if isinstance(values, np.ndarray):
        if values.ndim != 1 or values.dtype != np.float32:
            raise ValueError(
                f"bucket values must be a 1-D float32 array, got {values.dtype}{list(values.shape)}"
            )
        values = sg.constant(values)
    if np.dtype(values.dtype) != np.float32 or len(values.shape) != 1:
        raise ValueError(
            f"bucket tensor {values.name!r} must be float32 [K], is {values.dtype}{list(values.shape)}"
        )
    check_num_buckets(values.shape[0])
    if not 1 <= size <= MAX_VIRTUAL_SIZE:
        raise ValueError(f"virtual size {size} outside [1, 2**31 - 1]")
    shape = (size,) if shape is None else tuple(int(d) for d in shape)
    flat_name = name if shape == (size,) else _name(name, "flat")
    if chunk_size is None or chunk_size >= size:
        flat = _gather_signed_flat(sg, values, 0, size, seed, function, name, flat_name)
    else:
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        pieces = [
            _gather_signed_flat(
                sg,
                values,
                start,
                min(size, start + chunk_size),
                seed,
                function,
                _name(name, f"chunk{i}"),
                _name(name, f"chunk{i}/out"),
            )
            for i, start in enumerate(range(0, size, chunk_size))
        ]
        options = schema.ConcatenationOptionsT()
        options.axis = 0
        flat = sg.op("CONCATENATION", pieces, np.float32, [size], options, name=flat_name)
    if shape == (size,):
        return flat
    return emit_reshape(sg, flat, shape, name=name)

"""The numpy evaluator: regenerate weights from buckets + seeds, then walk the graph.

It knows no op and no scheme: ops come from ``ops.OPS``, weights from ``schemes.decode_param``.
"""

from __future__ import annotations

import os
from functools import cached_property

import numpy as np

from .errors import HpkFormatError, IdsOutOfRange
from .hpk import HpkFile, Node, read_hpk
from .ops import OPS
from .schemes import decode_param, hashed

# What a kernel or decoder raises on inputs it cannot handle; read_hpk's checks should make these
# unreachable, and the evaluator turns any that slip through into the one documented error.
_KERNEL_ERRORS = (ValueError, IndexError, TypeError, ArithmeticError)


class Model:
    """A loaded .hpk model. ``run(x)`` takes a float32 batch shaped ``(N, *input_shape[1:])``, or token
    ids (any integer dtype, or whole floats) when the input's dtype is int32."""

    def __init__(self, hpk: HpkFile) -> None:
        self.hpk = hpk

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        """Input shape, batch first (``None``)."""
        return self.hpk.input.shape

    @property
    def output_shape(self) -> tuple[int | None, ...]:
        return self.hpk.output.shape

    @property
    def golden_inputs(self) -> np.ndarray | None:
        pair = self.hpk.golden_arrays()
        return None if pair is None else pair[0]

    @property
    def golden_outputs(self) -> np.ndarray | None:
        pair = self.hpk.golden_arrays()
        return None if pair is None else pair[1]

    @cached_property
    def weights(self) -> dict[str, np.ndarray]:
        """Every param, decompressed to float32 (computed once, on first use)."""
        return {name: self._weight(name) for name in self.hpk.params}

    def _weight(self, name: str) -> np.ndarray:
        if name not in self._decoded:
            param = self.hpk.params[name]
            try:
                self._decoded[name] = decode_param(self.hpk, name)
            except _KERNEL_ERRORS as exc:
                raise HpkFormatError(f"{self.hpk.source}: param {name!r} ({param.scheme}): {exc}") from None
        return self._decoded[name]

    @cached_property
    def _decoded(self) -> dict[str, np.ndarray]:
        return {}

    @cached_property
    def _row_tables(self) -> set[str]:
        """Hashed tables read only by Embedding nodes: ``run`` regenerates just the rows a batch looks
        up (hashing ``id·D + j``) instead of decoding the whole table (FORMAT.md §5 Embedding)."""
        users: dict[str, set[str]] = {}
        for node in self.hpk.nodes:
            for slot, name in node.params.items():
                users.setdefault(name, set()).add(node.op if slot == "weight" else "other")
        return {
            name
            for name, ops in users.items()
            if ops == {"Embedding"} and self.hpk.params[name].scheme == "hashed"
        }

    def run(self, x: np.ndarray) -> np.ndarray:
        x = _as_ids(x) if self.hpk.input.dtype == "int32" else np.asarray(x, dtype=np.float32)
        expected = self.input_shape[1:]
        if x.ndim != len(self.input_shape) or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"input shape {list(x.shape)} does not match the model's [N, {', '.join(map(str, expected))}]"
            )
        values: dict[str, np.ndarray] = {self.hpk.input.name: x}
        for node in self.hpk.nodes:
            values[node.outputs[0]] = self._run_node(node, values)
        return values[self.hpk.output.name]

    __call__ = run

    def _embedding_rows(self, node: Node, ids: np.ndarray) -> np.ndarray:
        """Embedding of a hashed table, decoding only the distinct rows ``ids`` reads."""
        param = self.hpk.params[node.params["weight"]]
        _checked_ids(ids, param.shape[0], f"{self.hpk.source}: node {node.name!r} ({node.op})")
        rows, inverse = np.unique(ids, return_inverse=True)
        out = hashed.decode_rows(param, self.hpk, rows)[inverse.reshape(ids.shape)]
        if "padding_idx" in node.attrs:
            out[ids == node.attrs["padding_idx"]] = 0
        return out

    def _run_node(self, node: Node, values: dict[str, np.ndarray]) -> np.ndarray:
        if (
            node.op == "Embedding"
            and node.params["weight"] in self._row_tables
            and node.params["weight"] not in self._decoded
        ):
            return self._embedding_rows(node, values[node.inputs[0]])
        kwargs = {slot: self._weight(name) for slot, name in node.params.items()}
        kwargs.update(node.attrs)
        try:
            result = OPS[node.op].kernel(*(values[name] for name in node.inputs), **kwargs)
        except IdsOutOfRange as exc:  # the caller's input, not the file: a plain ValueError
            raise IdsOutOfRange(f"{self.hpk.source}: node {node.name!r} ({node.op}): {exc}") from None
        except _KERNEL_ERRORS as exc:
            raise HpkFormatError(f"{self.hpk.source}: node {node.name!r} ({node.op}): {exc}") from None
        return np.asarray(result, dtype=np.float32)


def _checked_ids(ids: np.ndarray, rows: int, where: str) -> None:
    if ids.size and (ids.min() < 0 or ids.max() >= rows):
        bad = ids[(ids < 0) | (ids >= rows)].flat[0]
        raise IdsOutOfRange(f"{where}: token id {int(bad)} is outside the table's [0, {rows}) rows")


def _as_ids(x: np.ndarray) -> np.ndarray:
    """Token ids as int32: integer arrays, or floats holding whole numbers (golden inputs are F32)."""
    array = np.asarray(x)
    if array.dtype.kind not in "iuf" or (
        array.dtype.kind == "f" and not np.array_equal(array, np.round(array))
    ):
        raise ValueError(
            f"this model takes integer token ids; got {array.dtype} values that are not whole numbers"
        )
    if array.size and (array.min() < -(2**31) or array.max() > 2**31 - 1):
        raise IdsOutOfRange("token ids do not fit int32")
    return array.astype(np.int32)


def load(path: str | os.PathLike[str]) -> Model:
    """Read, validate and wrap a .hpk file; raises ``HpkFormatError`` for any bad file."""
    return Model(read_hpk(path))

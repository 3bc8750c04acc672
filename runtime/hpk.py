"""The .hpk file: hashpack metadata (graph, spaces, params) inside a checked container.

``read_hpk`` validates everything in docs/FORMAT.md §6 and returns an ``HpkFile`` whose fields
every backend (numpy runtime, exporters) consumes; ``write_hpk`` is its deterministic, atomic
inverse. Scheme- and op-specific checks live with the schemes and ops (one concept per module).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from .container import Container, atomic_write_bytes, encode_tensors, parse_container, serialize_container
from .errors import HpkFormatError
from .hashing import MAX_BUCKETS, MAX_VIRTUAL_SIZE

FORMAT_NAME = "hashpack"
FORMAT_VERSION = 1
HASH_NAME = "hp32"
METADATA_KEY = "hashpack"
CHECKSUM_KEY = "hashpack.sha256"
MAX_TOTAL_VIRTUAL = 2**28
MAX_EXPANSION = 2**16
MAX_NODES = 100_000
SPACE_DTYPES = {"float32": np.dtype("<f4"), "float16": np.dtype("<f2"), "int8": np.dtype("i1")}


@dataclass(frozen=True)
class ValueInfo:
    """A graph input or output: name and shape, ``None`` for the batch dimension."""

    name: str
    shape: tuple[int | None, ...]


@dataclass(frozen=True)
class Space:
    """A compression space: the shared bucket values of one or more compressed params."""

    name: str
    size: int
    dtype: str
    tensor: str
    scale: float | None = None


@dataclass(frozen=True)
class Param:
    """One parameter tensor of the graph; ``spec`` holds the scheme-specific fields verbatim."""

    name: str
    scheme: str
    shape: tuple[int, ...]
    spec: dict[str, Any]

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class Node:
    op: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    params: dict[str, str]
    attrs: dict[str, Any]


@dataclass
class HpkFile:
    """Everything a .hpk file holds, validated."""

    inputs: list[ValueInfo]
    outputs: list[ValueInfo]
    spaces: dict[str, Space]
    params: dict[str, Param]
    nodes: list[Node]
    tensors: dict[str, np.ndarray]
    golden: dict[str, str] | None = None
    producer: str = ""
    source: str = "<memory>"

    @property
    def input(self) -> ValueInfo:
        return self.inputs[0]

    @property
    def output(self) -> ValueInfo:
        return self.outputs[0]

    def space_values(self, name: str) -> np.ndarray:
        """The dequantized float32 bucket values of a space (docs/FORMAT.md §3)."""
        space = self.spaces[name]
        raw = self.tensors[space.tensor]
        if space.dtype == "int8":
            return raw.astype(np.float32) * np.float32(space.scale)
        return raw.astype(np.float32)

    def golden_arrays(self) -> tuple[np.ndarray, np.ndarray] | None:
        if self.golden is None:
            return None
        return self.tensors[self.golden["inputs"]], self.tensors[self.golden["outputs"]]

    def to_metadata(self) -> dict[str, Any]:
        """The metadata document (docs/FORMAT.md §3) for this file."""
        meta: dict[str, Any] = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "hash": HASH_NAME,
            "producer": self.producer,
            "inputs": [{"name": v.name, "shape": list(v.shape)} for v in self.inputs],
            "outputs": [{"name": v.name, "shape": list(v.shape)} for v in self.outputs],
            "spaces": {
                s.name: {"size": s.size, "dtype": s.dtype, "tensor": s.tensor}
                | ({"scale": s.scale} if s.scale is not None else {})
                for s in self.spaces.values()
            },
            "params": {
                p.name: {"scheme": p.scheme, "shape": list(p.shape), **p.spec} for p in self.params.values()
            },
            "nodes": [
                {
                    "op": n.op,
                    "name": n.name,
                    "inputs": list(n.inputs),
                    "outputs": list(n.outputs),
                    "params": dict(n.params),
                    "attrs": dict(n.attrs),
                }
                for n in self.nodes
            ],
        }
        if self.golden is not None:
            meta["golden"] = dict(self.golden)
        return meta


# ---------------------------------------------------------------------------------------- writing


def serialize_hpk(hpk: HpkFile) -> bytes:
    """The exact bytes of a .hpk file (deterministic: sorted JSON keys, tensors in name order)."""
    meta_text = json.dumps(hpk.to_metadata(), sort_keys=True, separators=(",", ":"), allow_nan=False)
    table, data = encode_tensors(hpk.tensors)
    digest = hashlib.sha256(meta_text.encode("utf-8"))
    digest.update(data)
    return serialize_container({METADATA_KEY: meta_text, CHECKSUM_KEY: digest.hexdigest()}, table, data)


def write_hpk(hpk: HpkFile, path: str | os.PathLike[str]) -> int:
    """Validate, serialise and atomically write ``hpk``; returns the file size in bytes."""
    payload = serialize_hpk(hpk)
    parse_hpk(payload, source=str(path))  # never write a file our own reader would reject
    atomic_write_bytes(path, payload)
    return len(payload)


# ---------------------------------------------------------------------------------------- reading


def read_hpk(path: str | os.PathLike[str]) -> HpkFile:
    """Read and fully validate a .hpk file; any problem raises ``HpkFormatError``."""
    source = str(path)
    try:
        with open(path, "rb") as handle:
            blob = handle.read()
    except IsADirectoryError:
        raise HpkFormatError(f"{source}: is a directory, not a .hpk file") from None
    except OSError as exc:
        raise HpkFormatError(f"{source}: cannot be read ({exc.strerror or exc})") from None
    return parse_hpk(blob, source)


def parse_hpk(blob: bytes, source: str = "<bytes>") -> HpkFile:
    container = parse_container(blob, source)
    return _Validator(container, source).run()


class _Validator:
    """Checks the metadata against docs/FORMAT.md §3-§6; every failure names what is wrong."""

    def __init__(self, container: Container, source: str) -> None:
        self.container = container
        self.source = source
        self.used_tensors: set[str] = set()

    def fail(self, message: str) -> HpkFormatError:
        return HpkFormatError(f"{self.source}: {message}")

    def run(self) -> HpkFile:
        meta_text = self.container.metadata.get(METADATA_KEY)
        checksum = self.container.metadata.get(CHECKSUM_KEY)
        if meta_text is None or checksum is None:
            raise self.fail(f"not a hashpack file: __metadata__ lacks {METADATA_KEY!r} or {CHECKSUM_KEY!r}")
        try:
            meta = json.loads(meta_text, parse_constant=self._reject_constant)
        except (json.JSONDecodeError, RecursionError, ValueError) as exc:
            raise self.fail(f"metadata is not valid JSON ({exc})") from None
        if not isinstance(meta, dict):
            raise self.fail("metadata is not a JSON object")
        if meta.get("format") != FORMAT_NAME:
            raise self.fail(f"format is {meta.get('format')!r}, expected {FORMAT_NAME!r}")
        if meta.get("version") != FORMAT_VERSION:
            raise self.fail(
                f"unsupported format version {meta.get('version')!r} (this reader knows {FORMAT_VERSION})"
            )
        if meta.get("hash") != HASH_NAME:
            raise self.fail(f"unsupported hash {meta.get('hash')!r} (this reader knows {HASH_NAME!r})")
        digest = hashlib.sha256(meta_text.encode("utf-8"))
        digest.update(self.container.data)
        if digest.hexdigest() != checksum:
            raise self.fail("checksum mismatch: the file was altered or corrupted after it was written")
        inputs = self.value_infos(meta, "inputs")
        outputs = self.value_infos(meta, "outputs")
        spaces = self.spaces(meta)
        params = self.params(meta, spaces)
        nodes = self.nodes(meta, params, inputs[0].name, outputs[0].name)
        golden = self.golden(meta, inputs[0], outputs[0])
        unused = set(self.container.tensors) - self.used_tensors
        if unused:
            raise self.fail(f"tensor {sorted(unused)[0]!r} is not referenced by the metadata")
        return HpkFile(
            inputs=inputs,
            outputs=outputs,
            spaces=spaces,
            params=params,
            nodes=nodes,
            tensors=self.container.tensors,
            golden=golden,
            producer=str(meta.get("producer", "")),
            source=self.source,
        )

    @staticmethod
    def _reject_constant(name: str) -> None:
        raise ValueError(f"non-finite number {name} in metadata")

    # -- helpers
    def field(self, obj: dict, key: str, kind: type | tuple[type, ...], where: str) -> Any:
        if not isinstance(obj, dict) or key not in obj:
            raise self.fail(f"{where}: missing field {key!r}")
        value = obj[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, (int, float))):
            raise self.fail(f"{where}: field {key!r} has the wrong type ({type(value).__name__})")
        return value

    def shape(self, value: object, where: str, batch: bool = False) -> tuple[int | None, ...]:
        if not isinstance(value, list) or not 0 <= len(value) <= 8:
            raise self.fail(f"{where}: shape {value!r} is not a list of at most 8 dimensions")
        dims = []
        for index, dim in enumerate(value):
            if batch and index == 0 and dim is None:
                dims.append(None)
                continue
            if not isinstance(dim, int) or isinstance(dim, bool) or not 1 <= dim <= MAX_VIRTUAL_SIZE:
                raise self.fail(f"{where}: dimension {dim!r} of shape {value} is not a positive integer")
            dims.append(dim)
        if batch and (not dims or dims[0] is not None):
            raise self.fail(f"{where}: shape {value} must start with null (the batch dimension)")
        return tuple(dims)

    def tensor(self, name: object, dtype: np.dtype, shape: tuple[int, ...], where: str) -> np.ndarray:
        if not isinstance(name, str) or name not in self.container.tensors:
            raise self.fail(f"{where}: tensor {name!r} is missing from the file")
        array = self.container.tensors[name]
        if array.dtype != dtype or array.shape != shape:
            raise self.fail(
                f"{where}: tensor {name!r} is {array.dtype}{list(array.shape)}, metadata declares {dtype}{list(shape)}"
            )
        if name in self.used_tensors:
            raise self.fail(f"{where}: tensor {name!r} is used twice")
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise self.fail(f"{where}: tensor {name!r} holds NaN or infinite values")
        self.used_tensors.add(name)
        return array

    # -- sections
    def value_infos(self, meta: dict, key: str) -> list[ValueInfo]:
        items = self.field(meta, key, list, "metadata")
        if len(items) != 1:
            raise self.fail(f"metadata: {key} must list exactly one tensor in version 1, found {len(items)}")
        item = items[0]
        name = self.field(item, "name", str, key)
        return [ValueInfo(name, self.shape(item.get("shape"), f"{key} {name!r}", batch=True))]

    def spaces(self, meta: dict) -> dict[str, Space]:
        spaces = {}
        for name, spec in self.field(meta, "spaces", dict, "metadata").items():
            where = f"space {name!r}"
            size = self.field(spec, "size", int, where)
            if not 1 <= size <= MAX_BUCKETS:
                raise self.fail(f"{where}: bucket count {size} outside [1, 2^30]")
            dtype = self.field(spec, "dtype", str, where)
            if dtype not in SPACE_DTYPES:
                raise self.fail(f"{where}: unsupported bucket dtype {dtype!r} (float32, float16, int8)")
            tensor = self.field(spec, "tensor", str, where)
            self.tensor(tensor, SPACE_DTYPES[dtype], (size,), where)
            scale = None
            if dtype == "int8":
                scale = self.field(spec, "scale", (int, float), where)
                if not (math.isfinite(scale) and scale > 0 and float(np.float32(scale)) == scale):
                    raise self.fail(f"{where}: int8 scale {scale!r} is not a positive finite float32")
                scale = float(scale)
            spaces[name] = Space(name=name, size=size, dtype=dtype, tensor=tensor, scale=scale)
        return spaces

    def params(self, meta: dict, spaces: dict[str, Space]) -> dict[str, Param]:
        from .schemes import SCHEMES  # schemes import this module's types

        params = {}
        total_virtual = 0
        for name, spec in self.field(meta, "params", dict, "metadata").items():
            where = f"param {name!r}"
            scheme_name = self.field(spec, "scheme", str, where)
            scheme = SCHEMES.get(scheme_name)
            if scheme is None:
                raise self.fail(
                    f"{where}: unknown compression scheme {scheme_name!r} (known: {', '.join(SCHEMES)})"
                )
            shape = self.shape(spec.get("shape"), where)
            param = Param(
                name=name,
                scheme=scheme_name,
                shape=shape,  # type: ignore[arg-type]
                spec={k: v for k, v in spec.items() if k not in ("scheme", "shape")},
            )
            if param.numel > MAX_VIRTUAL_SIZE:
                raise self.fail(f"{where}: {param.numel} elements exceed the 2^31-1 limit")
            stored = scheme.validate(param, spaces, self)
            if stored is not None and param.numel > MAX_EXPANSION * stored:
                raise self.fail(
                    f"{where}: {param.numel} virtual elements from {stored} stored values exceeds the "
                    f"{MAX_EXPANSION}x expansion limit"
                )
            total_virtual += param.numel
            if total_virtual > MAX_TOTAL_VIRTUAL:
                raise self.fail(f"virtual parameters exceed the {MAX_TOTAL_VIRTUAL} limit at {where}")
            params[name] = param
        return params

    def nodes(self, meta: dict, params: dict[str, Param], graph_input: str, graph_output: str) -> list[Node]:
        from .ops import OPS

        raw_nodes = self.field(meta, "nodes", list, "metadata")
        if len(raw_nodes) > MAX_NODES:
            raise self.fail(f"{len(raw_nodes)} nodes exceed the {MAX_NODES} limit")
        available = {graph_input}
        nodes = []
        for index, raw in enumerate(raw_nodes):
            where = f"node #{index}"
            op = self.field(raw, "op", str, where)
            name = self.field(raw, "name", str, where)
            where = f"node {name!r} ({op})"
            definition = OPS.get(op)
            if definition is None:
                raise self.fail(f"{where}: unknown op {op!r}")
            inputs = self.field(raw, "inputs", list, where)
            outputs = self.field(raw, "outputs", list, where)
            node_params = self.field(raw, "params", dict, where)
            attrs = self.field(raw, "attrs", dict, where)
            for value in inputs:
                if not isinstance(value, str) or value not in available:
                    raise self.fail(f"{where}: input {value!r} is not produced by an earlier node")
            if len(outputs) != 1 or not isinstance(outputs[0], str):
                raise self.fail(f"{where}: must have exactly one output name")
            if outputs[0] in available:
                raise self.fail(f"{where}: output {outputs[0]!r} is produced twice")
            for slot, param_name in node_params.items():
                if not isinstance(param_name, str) or param_name not in params:
                    raise self.fail(f"{where}: param {slot!r} refers to unknown param {param_name!r}")
            node = Node(op, name, tuple(inputs), tuple(outputs), dict(node_params), dict(attrs))
            message = definition.check(node, {k: params[v] for k, v in node_params.items()})
            if message:
                raise self.fail(f"{where}: {message}")
            available.add(outputs[0])
            nodes.append(node)
        if graph_output not in available or graph_output == graph_input:
            raise self.fail(f"graph output {graph_output!r} is not produced by any node")
        return nodes

    def golden(self, meta: dict, graph_input: ValueInfo, graph_output: ValueInfo) -> dict[str, str] | None:
        spec = meta.get("golden")
        if spec is None:
            return None
        inputs_name = self.field(spec, "inputs", str, "golden")
        outputs_name = self.field(spec, "outputs", str, "golden")
        array = self.container.tensors.get(inputs_name)
        count = array.shape[0] if array is not None and array.ndim >= 1 else 0
        if count < 1:
            raise self.fail(f"golden: inputs tensor {inputs_name!r} is missing or empty")
        f32 = np.dtype("<f4")
        self.tensor(inputs_name, f32, (count, *graph_input.shape[1:]), "golden inputs")  # type: ignore[arg-type]
        self.tensor(outputs_name, f32, (count, *graph_output.shape[1:]), "golden outputs")  # type: ignore[arg-type]
        return {"inputs": inputs_name, "outputs": outputs_name}

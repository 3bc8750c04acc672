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
import stat
from dataclasses import dataclass
from typing import Any

import numpy as np

from .container import (
    Container,
    atomic_write_bytes,
    encode_tensors,
    parse_container,
    parse_json,
    serialize_container,
)
from .errors import HpkFormatError
from .golden import GENERATOR_NAME, MAX_GENERATED_COUNT, MAX_GENERATED_VALUES, generated_inputs
from .hashing import MASK32, MAX_BUCKETS, MAX_VIRTUAL_SIZE

FORMAT_NAME = "hashpack"
FORMAT_VERSION = 2  # the newest version this reader knows; it reads every version in READ_VERSIONS
READ_VERSIONS = (1, 2)
HASH_NAME = "hp32"
METADATA_KEY = "hashpack"
CHECKSUM_KEY = "hashpack.sha256"
MAX_TOTAL_VIRTUAL = 2**28
MAX_EXPANSION = 2**16
MAX_DECODE_WORK = 2**32  # operations to regenerate every weight: seconds, not hours
MAX_NODES = 100_000
# What running the graph may cost per sample: the evaluator keeps every value (1 GiB of float32)
# and does at most ~2^34 multiply-adds, so a tiny file cannot declare a graph that exhausts memory
# or runs for hours. Each op's shape rule also caps its own temporaries (ops/_registry.py).
MAX_ACTIVATIONS = 2**28
MAX_WORK = 2**34
FLOAT32_MAX = float(np.finfo(np.float32).max)
VALUE_DTYPES = ("float32", "int32")  # of the graph input (FORMAT.md §3)
MAX_EXACT_ID = 2**24  # golden token ids are stored as F32, exact up to here
SPACE_DTYPES = {"float32": np.dtype("<f4"), "float16": np.dtype("<f2"), "int8": np.dtype("i1")}


@dataclass(frozen=True)
class ValueInfo:
    """A graph input or output: name, shape (``None`` for the batch) and element type.

    ``dtype`` is ``"float32"`` or, for a graph input of token ids, ``"int32"`` (FORMAT.md §3).
    """

    name: str
    shape: tuple[int | None, ...]
    dtype: str = "float32"


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
    # {"inputs": tensor, "outputs": tensor} (stored inputs) or {"generator": "hp32-uniform",
    # "seed": s, "count": n, "outputs": tensor} (inputs regenerated, docs/FORMAT.md §3)
    golden: dict[str, Any] | None = None
    producer: str = ""
    source: str = "<memory>"
    sha256: str = ""  # the file's checksum (FORMAT.md §3) when read from bytes; "" if built in memory

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
        """(inputs, outputs) of the self-check, regenerating the inputs when the file has a seed."""
        if self.golden is None:
            return None
        outputs = self.tensors[self.golden["outputs"]]
        if "generator" in self.golden:
            inputs = generated_inputs(self.golden["seed"], self.golden["count"], self.input.shape[1:])  # type: ignore[arg-type]
            return inputs, outputs
        return self.tensors[self.golden["inputs"]], outputs

    @property
    def golden_tensors(self) -> list[str]:
        """The names of the tensors the golden section stores (outputs, and inputs if stored)."""
        if self.golden is None:
            return []
        return [self.golden[key] for key in ("inputs", "outputs") if key in self.golden]

    @property
    def golden_count(self) -> int:
        if self.golden is None:
            return 0
        return int(self.tensors[self.golden["outputs"]].shape[0])

    @property
    def version(self) -> int:
        """The lowest format version that can express this file (writers write it, §7)."""
        return 2 if self.golden is not None and "generator" in self.golden else 1

    def to_metadata(self) -> dict[str, Any]:
        """The metadata document (docs/FORMAT.md §3) for this file."""
        meta: dict[str, Any] = {
            "format": FORMAT_NAME,
            "version": self.version,
            "hash": HASH_NAME,
            "producer": self.producer,
            "inputs": [_value_info(v) for v in self.inputs],
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
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            raise HpkFormatError(f"{source}: is a directory, not a .hpk file")
        if not stat.S_ISREG(mode):  # a FIFO or a device (/dev/zero) would block or never end
            raise HpkFormatError(f"{source}: not a regular file")
        with open(path, "rb") as handle:
            blob = handle.read()
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
        self.version = 1

    def fail(self, message: str) -> HpkFormatError:
        return HpkFormatError(f"{self.source}: {message}")

    def run(self) -> HpkFile:
        meta_text = self.container.metadata.get(METADATA_KEY)
        checksum = self.container.metadata.get(CHECKSUM_KEY)
        if meta_text is None or checksum is None:
            raise self.fail(f"not a hashpack file: __metadata__ lacks {METADATA_KEY!r} or {CHECKSUM_KEY!r}")
        meta = parse_json(meta_text, self.source, "metadata")
        if not isinstance(meta, dict):
            raise self.fail("metadata is not a JSON object")
        if meta.get("format") != FORMAT_NAME:
            raise self.fail(f"format is {_show(meta.get('format'))}, expected {FORMAT_NAME!r}")
        version = meta.get("version")
        if not _is_int(version) or version not in READ_VERSIONS:
            raise self.fail(
                f"unsupported format version {_show(version)} (this reader knows "
                f"{', '.join(map(str, READ_VERSIONS))}: update hashpack)"
            )
        self.version = version
        if meta.get("hash") != HASH_NAME:
            raise self.fail(f"unsupported hash {_show(meta.get('hash'))} (this reader knows {HASH_NAME!r})")
        digest = hashlib.sha256(meta_text.encode("utf-8"))
        digest.update(self.container.data)
        if digest.hexdigest() != checksum:
            raise self.fail("checksum mismatch: the file was altered or corrupted after it was written")
        producer = meta.get("producer", "")
        if not isinstance(producer, str):
            raise self.fail(f"metadata: producer has the wrong type ({type(producer).__name__})")
        inputs = self.value_infos(meta, "inputs")
        outputs = self.value_infos(meta, "outputs")
        spaces = self.spaces(meta)
        params = self.params(meta, spaces)
        nodes = self.nodes(meta, params, inputs[0], outputs[0])
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
            producer=producer,
            source=self.source,
            sha256=checksum,
        )

    # -- helpers
    def field(self, obj: object, key: str, kind: type | tuple[type, ...], where: str) -> Any:
        if not isinstance(obj, dict):
            raise self.fail(f"{where}: is not a JSON object ({type(obj).__name__})")
        if key not in obj:
            raise self.fail(f"{where}: missing field {key!r}")
        value = obj[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, (int, float))):
            raise self.fail(f"{where}: field {key!r} has the wrong type ({type(value).__name__})")
        return value

    def shape(self, value: object, where: str, batch: bool = False) -> tuple[int | None, ...]:
        if not isinstance(value, list) or not 0 <= len(value) <= 8:
            raise self.fail(f"{where}: shape {_show(value)} is not a list of at most 8 dimensions")
        dims = []
        for index, dim in enumerate(value):
            if batch and index == 0 and dim is None:
                dims.append(None)
                continue
            if not isinstance(dim, int) or isinstance(dim, bool) or not 1 <= dim <= MAX_VIRTUAL_SIZE:
                raise self.fail(
                    f"{where}: dimension {_show(dim)} of shape {_show(value)} is not an integer in "
                    f"[1, {MAX_VIRTUAL_SIZE}]"
                )
            dims.append(dim)
        if batch and (not dims or dims[0] is not None):
            raise self.fail(f"{where}: shape {_show(value)} must start with null (the batch dimension)")
        return tuple(dims)

    def tensor(self, name: object, dtype: np.dtype, shape: tuple[int, ...], where: str) -> np.ndarray:
        if not isinstance(name, str) or name not in self.container.tensors:
            raise self.fail(f"{where}: tensor {_show(name)} is missing from the file")
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
        shape = self.shape(item.get("shape"), f"{key} {_show(name)}", batch=True)
        dtype = "float32"
        if key == "inputs" and "dtype" in item:
            dtype = self.field(item, "dtype", str, f"{key} {_show(name)}")
            if dtype not in VALUE_DTYPES:
                raise self.fail(
                    f"{key} {_show(name)}: dtype {_show(dtype)} is not one of {', '.join(VALUE_DTYPES)}"
                )
        return [ValueInfo(name, shape, dtype)]

    def spaces(self, meta: dict) -> dict[str, Space]:
        spaces = {}
        for name, spec in self.field(meta, "spaces", dict, "metadata").items():
            where = f"space {_show(name)}"
            size = self.field(spec, "size", int, where)
            if not 1 <= size <= MAX_BUCKETS:
                raise self.fail(f"{where}: bucket count {size} outside [1, 2^30]")
            dtype = self.field(spec, "dtype", str, where)
            if dtype not in SPACE_DTYPES:
                raise self.fail(f"{where}: unsupported bucket dtype {_show(dtype)} (float32, float16, int8)")
            tensor = self.field(spec, "tensor", str, where)
            stored = self.tensor(tensor, SPACE_DTYPES[dtype], (size,), where)
            scale = None
            if dtype == "int8":
                scale = self.int8_scale(spec, stored, where)
            spaces[name] = Space(name=name, size=size, dtype=dtype, tensor=tensor, scale=scale)
        return spaces

    def int8_scale(self, spec: dict, stored: np.ndarray, where: str) -> float:
        scale = self.field(spec, "scale", (int, float), where)
        if not (0 < scale <= FLOAT32_MAX and float(np.float32(scale)) == scale):  # also rejects NaN
            raise self.fail(f"{where}: int8 scale {_show(scale)} is not a positive finite float32")
        peak = float(np.abs(stored.astype(np.float32)).max()) * scale
        if peak > FLOAT32_MAX:
            raise self.fail(f"{where}: int8 scale {scale!r} makes bucket values overflow float32")
        return float(scale)

    def params(self, meta: dict, spaces: dict[str, Space]) -> dict[str, Param]:
        from .schemes import SCHEMES, decode_work  # schemes import this module's types

        params = {}
        total_virtual = 0
        total_work = 0
        for name, spec in self.field(meta, "params", dict, "metadata").items():
            where = f"param {_show(name)}"
            scheme_name = self.field(spec, "scheme", str, where)
            scheme = SCHEMES.get(scheme_name)
            if scheme is None:
                raise self.fail(
                    f"{where}: unknown compression scheme {_show(scheme_name)} (known: {', '.join(SCHEMES)})"
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
            total_work += decode_work(param)
            if total_work > MAX_DECODE_WORK:
                raise self.fail(
                    f"regenerating the weights would take more than {MAX_DECODE_WORK} operations "
                    f"(limit reached at {where})"
                )
            params[name] = param
        return params

    def nodes(
        self, meta: dict, params: dict[str, Param], graph_input: ValueInfo, graph_output: ValueInfo
    ) -> list[Node]:
        from .ops import OPS

        raw_nodes = self.field(meta, "nodes", list, "metadata")
        if len(raw_nodes) > MAX_NODES:
            raise self.fail(f"{len(raw_nodes)} nodes exceed the {MAX_NODES} limit")
        shapes: dict[str, tuple[int | None, ...]] = {graph_input.name: graph_input.shape}
        activations = math.prod(graph_input.shape[1:])  # type: ignore[arg-type]
        if activations > MAX_ACTIVATIONS:
            raise self.fail(f"inputs: {activations} elements per sample exceed the {MAX_ACTIVATIONS} limit")
        work = 0
        nodes = []
        # int32 values (FORMAT.md §5): only the graph input can be one, and only an ids input takes one
        int_values = {graph_input.name} if graph_input.dtype == "int32" else set()
        for index, raw in enumerate(raw_nodes):
            where = f"node #{index}"
            op = self.field(raw, "op", str, where)
            name = self.field(raw, "name", str, where)
            where = f"node {_show(name)} ({_show(op)})"
            definition = OPS.get(op)
            if definition is None:
                raise self.fail(f"{where}: unknown op {_show(op)}")
            inputs = self.field(raw, "inputs", list, where)
            outputs = self.field(raw, "outputs", list, where)
            node_params = self.field(raw, "params", dict, where)
            attrs = self.field(raw, "attrs", dict, where)
            for position, value in enumerate(inputs):
                if not isinstance(value, str) or value not in shapes:
                    raise self.fail(f"{where}: input {_show(value)} is not produced by an earlier node")
                wants_ids = definition.ids_input and position == 0
                if wants_ids != (value in int_values):
                    raise self.fail(
                        f"{where}: input {_show(value)} is "
                        + (
                            "float32 but must be int32 token ids"
                            if wants_ids
                            else "int32 but this op takes float32"
                        )
                    )
            if len(outputs) != 1 or not isinstance(outputs[0], str):
                raise self.fail(f"{where}: must have exactly one output name")
            if outputs[0] in shapes:
                raise self.fail(f"{where}: output {_show(outputs[0])} is produced twice")
            for slot, param_name in node_params.items():
                if not isinstance(param_name, str) or param_name not in params:
                    raise self.fail(
                        f"{where}: param {_show(slot)} refers to unknown param {_show(param_name)}"
                    )
            node = Node(op, name, tuple(inputs), tuple(outputs), dict(node_params), dict(attrs))
            node_param_values = {k: params[v] for k, v in node_params.items()}
            message = definition.check(node, node_param_values)
            if message:
                raise self.fail(f"{where}: {message}")
            try:
                shape, cost = definition.infer([shapes[i] for i in inputs], node.attrs, node_param_values)
            except ValueError as exc:
                raise self.fail(f"{where}: {exc}") from None
            activations += math.prod(shape[1:])  # type: ignore[arg-type]
            work += cost
            if activations > MAX_ACTIVATIONS or work > MAX_WORK:
                raise self.fail(
                    f"{where}: the graph needs more than {MAX_ACTIVATIONS} values or {MAX_WORK} "
                    "operations per sample up to here"
                )
            shapes[outputs[0]] = shape
            nodes.append(node)
        if graph_output.name not in shapes or graph_output.name == graph_input.name:
            raise self.fail(f"graph output {_show(graph_output.name)} is not produced by any node")
        computed = shapes[graph_output.name]
        if computed != graph_output.shape:
            raise self.fail(
                f"outputs: {_show(graph_output.name)} is declared {_show(list(graph_output.shape))} "
                f"but the graph computes {_show(list(computed))}"
            )
        return nodes

    def golden(self, meta: dict, graph_input: ValueInfo, graph_output: ValueInfo) -> dict[str, Any] | None:
        spec = meta.get("golden")
        if spec is None:
            return None
        if self.version >= 2 and isinstance(spec, dict) and "inputs" not in spec:
            return self.generated_golden(spec, graph_input, graph_output)
        inputs_name = self.field(spec, "inputs", str, "golden")
        outputs_name = self.field(spec, "outputs", str, "golden")
        array = self.container.tensors.get(inputs_name)
        count = array.shape[0] if array is not None and array.ndim >= 1 else 0
        if count < 1:
            raise self.fail(f"golden: inputs tensor {_show(inputs_name)} is missing or empty")
        f32 = np.dtype("<f4")
        ids = self.tensor(inputs_name, f32, (count, *graph_input.shape[1:]), "golden inputs")  # type: ignore[arg-type]
        if graph_input.dtype == "int32" and not (
            np.array_equal(ids, np.round(ids)) and np.abs(ids).max(initial=0) <= MAX_EXACT_ID
        ):
            raise self.fail(
                f"golden: inputs of the int32 graph input must be integers within +-{MAX_EXACT_ID} (stored as F32)"
            )
        self.tensor(outputs_name, f32, (count, *graph_output.shape[1:]), "golden outputs")  # type: ignore[arg-type]
        return {"inputs": inputs_name, "outputs": outputs_name}

    def generated_golden(self, spec: dict, graph_input: ValueInfo, graph_output: ValueInfo) -> dict[str, Any]:
        generator = self.field(spec, "generator", str, "golden")
        if generator != GENERATOR_NAME:
            raise self.fail(
                f"golden: unknown input generator {_show(generator)} (this reader knows {GENERATOR_NAME!r})"
            )
        seed = self.field(spec, "seed", int, "golden")
        if not 0 <= seed <= MASK32:
            raise self.fail(f"golden: seed {_show(seed)} is not in [0, 2^32)")
        count = self.field(spec, "count", int, "golden")
        per_sample = math.prod(graph_input.shape[1:])  # type: ignore[arg-type]
        if not 1 <= count <= MAX_GENERATED_COUNT or count * per_sample > MAX_GENERATED_VALUES:
            raise self.fail(
                f"golden: {_show(count)} generated samples of {per_sample} values exceed the limits "
                f"(1..{MAX_GENERATED_COUNT} samples, {MAX_GENERATED_VALUES} values in all)"
            )
        outputs_name = self.field(spec, "outputs", str, "golden")
        f32 = np.dtype("<f4")
        self.tensor(outputs_name, f32, (count, *graph_output.shape[1:]), "golden outputs")  # type: ignore[arg-type]
        return {"generator": generator, "seed": seed, "count": count, "outputs": outputs_name}


def _value_info(info: ValueInfo) -> dict[str, Any]:
    """The metadata entry of an input; ``dtype`` only when not float32, so older files stay byte-identical."""
    entry: dict[str, Any] = {"name": info.name, "shape": list(info.shape)}
    if info.dtype != "float32":
        entry["dtype"] = info.dtype
    return entry


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _show(value: object, limit: int = 80) -> str:
    """``repr`` clipped for error messages (a hostile file may hold megabyte-long values)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."

"""A small, deterministic TFLite model writer built on the schema's object API (no TensorFlow).

Why: hashpack graphs regenerate their weights on the device with builtin ops; the TF converter
would constant-fold that away (and pulls in TensorFlow). This writer assembles tensors, builtin
operators, subgraphs and signature defs by hand and packs them itself, so that:

- constant buffers are deduplicated by content and their data starts 16-byte aligned in the file
  (the alignment the TF converter uses; int64/float32 kernels read them in place from an mmap);
- the output depends only on the sequence of builder calls: the same calls give the same bytes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import flatbuffers
import numpy as np

from .op_versions import builtin_op_version
from .schema import TFLITE_FILE_IDENTIFIER, opcode, schema, tflite_type

__all__ = ["RESOURCE", "ModelBuilder", "SubgraphBuilder", "TensorHandle"]

RESOURCE = "resource"  # dtype of a resource-variable handle (VAR_HANDLE output)
SCHEMA_VERSION = 3
DEFAULT_BUFFER_ALIGNMENT = 16
_MAX_FLATBUFFER = 2**31 - 1  # flatbuffers' 32-bit offsets; bigger models need external buffers


@dataclass(frozen=True)
class TensorHandle:
    """A tensor of one subgraph: its index there plus what the emitters need to know about it."""

    subgraph: int
    index: int
    name: str
    dtype: np.dtype | str  # a numpy dtype, or RESOURCE
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


class _AlignedBufferT(schema.BufferT):
    """A BufferT whose data vector starts on an ``alignment``-byte boundary of the final file.

    flatbuffers builds back to front and pads the finished buffer to its largest alignment, so
    aligning the vector relative to the end aligns it in the file as well.
    """

    def __init__(self, data: bytes, alignment: int) -> None:
        super().__init__()
        self._bytes = data
        self._alignment = alignment

    def Pack(self, builder: flatbuffers.Builder) -> int:
        data_offset = None
        if self._bytes:
            n = len(self._bytes)
            builder.StartVector(1, n, self._alignment)
            builder.head = builder.head - n
            builder.Bytes[builder.head : builder.head + n] = self._bytes
            data_offset = builder.EndVector()
        schema.BufferStart(builder)
        if data_offset is not None:
            schema.BufferAddData(builder, data_offset)
        return schema.BufferEnd(builder)


def _options_union(options: object) -> tuple[str, int]:
    """Map an options object (e.g. ``schema.MulOptionsT()``) to its union field and type code."""
    name = type(options).__name__
    if not name.endswith("T"):
        raise TypeError(f"{name} is not a schema object-API options class")
    name = name[:-1]
    for field, enum in (
        ("builtinOptions", schema.BuiltinOptions),
        ("builtinOptions2", schema.BuiltinOptions2),
    ):
        code = getattr(enum, name, None)
        if code is not None:
            return field, int(code)
    raise TypeError(f"{name} is not a member of BuiltinOptions or BuiltinOptions2")


class SubgraphBuilder:
    """Tensors and operators of one subgraph, in the order they are added (ops must be topological)."""

    def __init__(self, model: ModelBuilder, index: int, name: str) -> None:
        self.model = model
        self.index = index
        self.name = name
        self._tensors: list[schema.TensorT] = []
        self._handles: list[TensorHandle] = []
        self._names: set[str] = set()
        self._operators: list[schema.OperatorT] = []
        self._inputs: list[int] = []
        self._outputs: list[int] = []
        self._constants: dict[tuple[str, tuple[int, ...], bytes], TensorHandle] = {}
        self._anonymous: set[int] = set()  # tensors written without a name (saves file bytes)
        self._cursor: int | None = None  # see inserting_at

    # -- tensors ---------------------------------------------------------------------------------
    def add_tensor(
        self,
        name: str | None,
        dtype: np.dtype | type | str,
        shape: Sequence[int | None],
        *,
        data: np.ndarray | None = None,
    ) -> TensorHandle:
        """Add a tensor; ``None`` in ``shape`` is a dynamic dimension (1 in shape, -1 in signature).

        A tensor added without a name is called ``t<index>`` here but written without a name:
        hash temporaries are most of a compressed model's tensors, and their names ~10% of its graph.
        """
        anonymous = name is None
        if name is None:
            name = f"t{len(self._tensors)}"
        if name in self._names:
            raise ValueError(f"tensor name {name!r} used twice in subgraph {self.name!r}")
        dt: np.dtype | str = RESOURCE if (isinstance(dtype, str) and dtype == RESOURCE) else np.dtype(dtype)
        static = tuple(1 if d is None else int(d) for d in shape)
        tensor = schema.TensorT()
        tensor.name = name
        tensor.type = tflite_type(dt)
        tensor.shape = list(static)
        if any(d is None for d in shape):
            tensor.shapeSignature = [-1 if d is None else int(d) for d in shape]
        if data is not None:
            arr = np.asarray(data, dtype=np.dtype(dt).newbyteorder("<"), order="C")  # 0-d stays 0-d
            if tuple(arr.shape) != static:
                raise ValueError(f"constant {name!r} has shape {arr.shape}, declared {static}")
            tensor.buffer = self.model.add_buffer(arr.tobytes())
        handle = TensorHandle(self.index, len(self._tensors), name, dt, static)
        if anonymous:
            self._anonymous.add(handle.index)
        self._tensors.append(tensor)
        self._handles.append(handle)
        self._names.add(name)
        return handle

    def constant(
        self,
        value: np.ndarray | float | int,
        dtype: np.dtype | type | str | None = None,
        name: str | None = None,
    ) -> TensorHandle:
        """A constant tensor. Unnamed constants are shared: equal dtype/shape/bytes give one tensor."""
        arr = np.asarray(value, dtype=dtype)
        if name is not None:
            return self.add_tensor(name, arr.dtype, arr.shape, data=arr)
        key = (arr.dtype.str, tuple(arr.shape), arr.tobytes())
        handle = self._constants.get(key)
        if handle is None:
            handle = self.add_tensor(None, arr.dtype, arr.shape, data=arr)  # written without a name
            self._constants[key] = handle
        return handle

    def tensor(self, index: int) -> TensorHandle:
        return self._handles[index]

    @property
    def tensors(self) -> tuple[TensorHandle, ...]:
        return tuple(self._handles)

    # -- graph interface -------------------------------------------------------------------------
    def add_input(self, name: str, dtype: np.dtype | type | str, shape: Sequence[int | None]) -> TensorHandle:
        handle = self.add_tensor(name, dtype, shape)
        self._inputs.append(handle.index)
        return handle

    def mark_output(self, handle: TensorHandle) -> None:
        self._check(handle)
        self._outputs.append(handle.index)

    @property
    def inputs(self) -> tuple[TensorHandle, ...]:
        return tuple(self._handles[i] for i in self._inputs)

    @property
    def outputs(self) -> tuple[TensorHandle, ...]:
        return tuple(self._handles[i] for i in self._outputs)

    # -- operators -------------------------------------------------------------------------------
    def add_op(
        self,
        op: str | int,
        inputs: Iterable[TensorHandle | None],
        outputs: Iterable[TensorHandle],
        options: object | None = None,
        *,
        version: int | None = None,
        position: int | None = None,
    ) -> None:
        """Append (or insert at ``position``) a builtin operator; ``None`` inputs are omitted optionals.

        ``version`` defaults to what the TF converter would declare for these types (op_versions).
        Options equal to their defaults are not written (LiteRT's parser supplies the defaults).
        """
        inputs, outputs = list(inputs), list(outputs)
        ins = [-1 if t is None else self._check(t).index for t in inputs]
        outs = [self._check(t).index for t in outputs]
        if version is None:
            version = builtin_op_version(op, inputs, outputs) if isinstance(op, str) else 1
        operator = schema.OperatorT()
        operator.opcodeIndex = self.model.opcode_index(opcode(op), version)
        operator.inputs = ins
        operator.outputs = outs
        if options is not None and vars(options) == vars(type(options)()):
            options = None  # all defaults: the parser fills them in; the table costs ~10 bytes per op
        if options is not None:
            field, code = _options_union(options)
            setattr(operator, field, options)
            setattr(operator, field + "Type", code)
        if position is None and self._cursor is not None:
            position = self._cursor
            self._cursor += 1
        if position is None:
            self._operators.append(operator)
        else:
            self._operators.insert(position, operator)

    @contextlib.contextmanager
    def inserting_at(self, position: int) -> Iterator[None]:
        """Ops added inside the block go to ``position`` onwards, in order, instead of the end.

        Why: a prologue (e.g. weights decompressed in batches once every layer has asked for its
        weights) can be emitted after its consumers yet run before them.
        """
        if not 0 <= position <= len(self._operators):
            raise ValueError(f"position {position} outside [0, {len(self._operators)}]")
        saved, self._cursor = self._cursor, position
        try:
            yield
        finally:
            self._cursor = saved

    def op(
        self,
        op: str | int,
        inputs: Iterable[TensorHandle | None],
        dtype: np.dtype | type | str,
        shape: Sequence[int | None],
        options: object | None = None,
        *,
        name: str | None = None,
        version: int | None = None,
    ) -> TensorHandle:
        """Add an operator with one new output tensor and return that tensor."""
        out = self.add_tensor(name, dtype, shape)
        self.add_op(op, inputs, [out], options, version=version)
        return out

    @property
    def num_operators(self) -> int:
        return len(self._operators)

    def _check(self, handle: TensorHandle) -> TensorHandle:
        if handle.subgraph != self.index:
            raise ValueError(
                f"tensor {handle.name!r} belongs to subgraph {handle.subgraph}, not {self.index}"
            )
        return handle

    def _to_object(self) -> schema.SubGraphT:
        sg = schema.SubGraphT()
        sg.name = self.name
        sg.tensors = [_unnamed(t) if i in self._anonymous else t for i, t in enumerate(self._tensors)]
        sg.inputs = list(self._inputs)
        sg.outputs = list(self._outputs)
        sg.operators = list(self._operators)
        return sg


def _unnamed(tensor: schema.TensorT) -> schema.TensorT:
    copy = schema.TensorT()
    copy.__dict__.update(tensor.__dict__)
    copy.name = None
    return copy


class ModelBuilder:
    """A TFLite model: subgraphs (0 is the main one), shared operator codes and buffers, signatures."""

    def __init__(
        self, description: str = "hashpack", buffer_alignment: int = DEFAULT_BUFFER_ALIGNMENT
    ) -> None:
        if buffer_alignment < 4 or buffer_alignment & (buffer_alignment - 1):
            raise ValueError("buffer alignment must be a power of two >= 4")
        self.description = description
        self.buffer_alignment = buffer_alignment
        self._subgraphs: list[SubgraphBuilder] = []
        self._opcodes: dict[tuple[int, int], int] = {}
        self._buffers: list[bytes] = [b""]  # buffer 0: the empty buffer of every non-constant tensor
        self._buffer_index: dict[bytes, int] = {b"": 0}
        self._signatures: list[schema.SignatureDefT] = []
        self._metadata: dict[str, int] = {}

    def add_metadata(self, name: str, data: bytes) -> None:
        """A named Model.metadata entry holding ``data`` (replaces an earlier entry of that name)."""
        self._metadata[name] = self.add_buffer(data)

    def add_subgraph(self, name: str) -> SubgraphBuilder:
        sg = SubgraphBuilder(self, len(self._subgraphs), name)
        self._subgraphs.append(sg)
        return sg

    @property
    def subgraphs(self) -> tuple[SubgraphBuilder, ...]:
        return tuple(self._subgraphs)

    def add_buffer(self, data: bytes) -> int:
        """Index of a buffer holding ``data``, shared with any earlier buffer of equal content."""
        data = bytes(data)
        index = self._buffer_index.get(data)
        if index is None:
            index = len(self._buffers)
            self._buffers.append(data)
            self._buffer_index[data] = index
        return index

    def opcode_index(self, code: int, version: int = 1) -> int:
        key = (code, version)
        if key not in self._opcodes:
            self._opcodes[key] = len(self._opcodes)
        return self._opcodes[key]

    def add_signature(
        self,
        subgraph: SubgraphBuilder,
        key: str = "serving_default",
        inputs: Mapping[str, TensorHandle] | None = None,
        outputs: Mapping[str, TensorHandle] | None = None,
    ) -> None:
        """A signature def; by default the subgraph's inputs/outputs under their tensor names."""
        if inputs is None:
            inputs = {t.name: t for t in subgraph.inputs}
        if outputs is None:
            outputs = {t.name: t for t in subgraph.outputs}
        sig = schema.SignatureDefT()
        sig.signatureKey = key
        sig.subgraphIndex = subgraph.index
        sig.inputs = [self._tensor_map(subgraph, n, t, subgraph.inputs) for n, t in inputs.items()]
        sig.outputs = [self._tensor_map(subgraph, n, t, subgraph.outputs) for n, t in outputs.items()]
        self._signatures.append(sig)

    @staticmethod
    def _tensor_map(
        sg: SubgraphBuilder, name: str, handle: TensorHandle, allowed: tuple[TensorHandle, ...]
    ) -> schema.TensorMapT:
        sg._check(handle)
        if handle not in allowed:
            raise ValueError(
                f"signature tensor {handle.name!r} is not an input/output of subgraph {sg.name!r}"
            )
        tm = schema.TensorMapT()
        tm.name = name
        tm.tensorIndex = handle.index
        return tm

    def to_bytes(self) -> bytes:
        """Serialise to a .tflite flatbuffer; same builder calls, same bytes."""
        total = sum(len(b) + self.buffer_alignment + 8 for b in self._buffers)
        if total > _MAX_FLATBUFFER - (1 << 24):
            raise ValueError(f"constant data of {total} bytes exceeds the 2 GiB flatbuffer limit")
        model = schema.ModelT()
        model.version = SCHEMA_VERSION
        model.description = self.description
        codes = []
        for code, version in self._opcodes:  # dicts keep insertion order = opcode index
            oc = schema.OperatorCodeT()
            oc.builtinCode = code
            oc.deprecatedBuiltinCode = min(code, schema.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES)
            oc.version = version
            codes.append(oc)
        model.operatorCodes = codes
        model.subgraphs = [sg._to_object() for sg in self._subgraphs]
        model.buffers = [_AlignedBufferT(b, self.buffer_alignment) for b in self._buffers]
        model.signatureDefs = list(self._signatures) or None
        entries = []
        for name, index in self._metadata.items():
            entry = schema.MetadataT()
            entry.name, entry.buffer = name, index
            entries.append(entry)
        model.metadata = entries or None
        builder = flatbuffers.Builder(total + (1 << 16))
        builder.Finish(model.Pack(builder), file_identifier=TFLITE_FILE_IDENTIFIER)
        return bytes(builder.Output())

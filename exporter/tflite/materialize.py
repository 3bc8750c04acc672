"""Turn a ``once`` model into one with constant weights, on the device, with stock LiteRT.

Why: LiteRT's XNNPACK delegate accelerates convolutions only when their filters are constant and
pre-packs only constant FULLY_CONNECTED weights; weights read from resource variables run on the
slower builtin kernels (docs/TFLITE.md). So every ``once`` file also carries, in its
``Model.metadata``:

- ``hashpack_template``: the main subgraph as a standalone model in which each weight that
  ``once`` keeps in a resource variable is a constant whose buffer lies *outside* the flatbuffer
  (``Buffer.offset``/``size``, the mechanism LiteRT uses for models over 2 GiB). The template
  holds no weight data; the init subgraph, buckets and variables are gone.
- ``hashpack_slots``: JSON ``[{"variable": name, "offset": bytes, "size": bytes, "recipe": {...}}, ...]``;
  the recipe (``recipe_of``) says which param and view the slot holds, so
  :func:`materialize_from_hpk` can fill the template from the .hpk's decoded params instead of
  running the init subgraph (~4x faster at ResNet-18 size, benchmarks/scale.py).

:func:`materialize` runs the ``once`` model's ``hashpack_weights`` signature (the init subgraph,
then every variable as an output), writes each variable's bytes at its slot's offset after the
template and returns the result: a model LiteRT loads from memory with constant weights, so
inference runs at the speed of the ``expanded`` export. An app does the same in ~20 lines (see
android_demo/README.md): it needs only the LiteRT interpreter and a byte array. The weights are
the ones ``once`` computes on the device, bit for bit.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import flatbuffers
import numpy as np

from .builder import _AlignedBufferT
from .schema import TFLITE_FILE_IDENTIFIER, schema

__all__ = ["SLOTS_METADATA", "TEMPLATE_METADATA", "make_template", "materialize", "read_metadata"]

TEMPLATE_METADATA = "hashpack_template"
SLOTS_METADATA = "hashpack_slots"
WEIGHT_ALIGNMENT = 64  # each external weight starts on a cache line


class _ExternalBufferT(_AlignedBufferT):
    """A buffer whose bytes live at ``offset`` from the start of the model, outside the flatbuffer."""

    def __init__(self, offset: int, size: int) -> None:
        super().__init__(b"", 16)
        self.offset, self.size = offset, size

    def Pack(self, builder: flatbuffers.Builder) -> int:
        schema.BufferStart(builder)
        schema.BufferAddOffset(builder, self.offset)
        schema.BufferAddSize(builder, self.size)
        return schema.BufferEnd(builder)


def _ops(model: Any, subgraph: Any) -> list[tuple[int, Any]]:
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    return [(codes[op.opcodeIndex], op) for op in subgraph.operators]


def make_template(once: bytes, uses: dict[str, Any] | None = None) -> tuple[bytes, list[dict[str, Any]]]:
    """The template model and its slots (see the module docstring) for a ``once`` model's bytes.

    ``uses`` (variable name -> ``weights.WeightUse``) adds each slot's recipe (``recipe_of``), so
    an app can fill the template from the .hpk's decoded params (``materialize_from_hpk``).
    """
    model = schema.ModelT.InitFromPackedBuf(once, 0)
    main = model.subgraphs[0]
    ops = _ops(model, main)
    handles = {  # VAR_HANDLE output tensor -> shared name
        int(op.outputs[0]): op.builtinOptions.sharedName.decode()
        for code, op in ops
        if code == schema.BuiltinOperator.VAR_HANDLE
    }
    dropped = {schema.BuiltinOperator.VAR_HANDLE, schema.BuiltinOperator.CALL_ONCE}
    reads = {
        int(op.outputs[0]): handles[int(op.inputs[0])]
        for code, op in ops
        if code == schema.BuiltinOperator.READ_VARIABLE
    }
    dropped.add(schema.BuiltinOperator.READ_VARIABLE)
    main.operators = [op for code, op in ops if code not in dropped]

    # keep the tensors the remaining ops and the signature use, renumbered; buffers likewise
    used: list[int] = []
    for op in main.operators:
        used += [int(i) for i in (*op.inputs, *op.outputs) if i >= 0]
    used += [int(i) for i in (*main.inputs, *main.outputs)]
    keep = sorted(set(used))
    renumber = {old: new for new, old in enumerate(keep)}
    buffers: list[Any] = [_AlignedBufferT(b"", 16)]
    slots: list[dict[str, Any]] = []
    externals: list[_ExternalBufferT] = []
    tensors = []
    for old in keep:
        tensor = main.tensors[old]
        if old in reads:
            size = int(np.prod(tensor.shape, dtype=np.int64)) * 4  # float32, as once stores them
            external = _ExternalBufferT(1, size)  # offset fixed below, once the flatbuffer size is known
            tensor.buffer = len(buffers)
            buffers.append(external)
            externals.append(external)
            slot = {"variable": reads[old], "offset": 0, "size": size}
            if uses is not None and reads[old] in uses:
                slot["recipe"] = recipe_of(*uses[reads[old]])
            slots.append(slot)
        elif tensor.buffer:
            data = model.buffers[tensor.buffer].data
            tensor.buffer = len(buffers)
            buffers.append(_AlignedBufferT(b"" if data is None else np.asarray(data, np.uint8).tobytes(), 16))
        tensors.append(tensor)
    main.tensors = tensors
    for op in main.operators:
        op.inputs = [renumber[int(i)] if i >= 0 else int(i) for i in op.inputs]
        op.outputs = [renumber[int(i)] for i in op.outputs]
    main.inputs = [renumber[int(i)] for i in main.inputs]
    main.outputs = [renumber[int(i)] for i in main.outputs]
    codes = sorted({op.opcodeIndex for op in main.operators})  # only the operators main still uses
    recode = {old: new for new, old in enumerate(codes)}
    model.operatorCodes = [model.operatorCodes[i] for i in codes]
    for op in main.operators:
        op.opcodeIndex = recode[op.opcodeIndex]
    model.subgraphs = [main]
    signature = next(s for s in model.signatureDefs if s.subgraphIndex == 0)
    for entry in (*signature.inputs, *signature.outputs):
        entry.tensorIndex = renumber[int(entry.tensorIndex)]
    interface = {int(i) for i in (*main.inputs, *main.outputs)}
    for index, tensor in enumerate(main.tensors):
        if index not in interface:
            tensor.name = None  # names are optional; the template should cost the once file little
    model.signatureDefs = [signature]
    model.buffers = buffers
    model.metadata = None
    model.description = (model.description or b"").decode() + " (materialize template)"

    def pack() -> bytes:
        builder = flatbuffers.Builder(1 << 16)
        builder.Finish(model.Pack(builder), file_identifier=TFLITE_FILE_IDENTIFIER)
        return bytes(builder.Output())

    size = len(pack())  # offsets are fixed-width fields: setting them keeps the size
    position = -(-size // WEIGHT_ALIGNMENT) * WEIGHT_ALIGNMENT
    for external, slot in zip(externals, slots, strict=True):
        external.offset = slot["offset"] = position
        position += -(-slot["size"] // WEIGHT_ALIGNMENT) * WEIGHT_ALIGNMENT
    template = pack()
    if len(template) != size:
        raise AssertionError("template size changed when its offsets were set")
    return template, slots


def read_metadata(data: bytes) -> dict[str, bytes]:
    """A .tflite model's ``Model.metadata`` entries: name -> buffer bytes.

    Raises ``ValueError`` (only) for bytes that are not a readable .tflite.
    """
    data = bytes(data)
    try:
        if len(data) < 8 or data[4:8] != TFLITE_FILE_IDENTIFIER:
            raise ValueError("no TFL3 file identifier")
        model = schema.Model.GetRootAs(data, 0)
        entries = {}
        for i in range(model.MetadataLength()):
            entry = model.Metadata(i)
            index = entry.Buffer()
            if not 0 <= index < model.BuffersLength():
                raise ValueError(f"metadata buffer {index} does not exist")
            buffer = model.Buffers(index)
            size = buffer.DataLength()
            start = buffer.DataAsNumpy() if size else None
            if size and (not isinstance(start, np.ndarray) or start.size != size):
                raise ValueError(f"metadata buffer {index} runs past the end of the file")
            entries[(entry.Name() or b"").decode()] = start.tobytes() if size else b""
        return entries
    except ValueError as exc:
        raise ValueError(f"not a valid .tflite: {exc}") from None
    except (IndexError, struct.error, UnicodeDecodeError, TypeError, OverflowError) as exc:
        raise ValueError(f"not a valid .tflite ({type(exc).__name__}: {exc})") from None


def _check_slots(slots: Any, template: bytes, weights: dict[str, np.ndarray]) -> None:
    """Slots must be well-formed, after the template, and span no more than the weights need."""
    if not isinstance(slots, list):
        raise ValueError("hashpack_slots is not a JSON list")
    budget = -(-len(template) // WEIGHT_ALIGNMENT) * WEIGHT_ALIGNMENT + sum(
        -(-np.asarray(v).nbytes // WEIGHT_ALIGNMENT) * WEIGHT_ALIGNMENT for v in weights.values()
    )
    for slot in slots:
        if (
            isinstance(slot, dict)
            and isinstance(slot.get("variable"), str)
            and slot["variable"] not in weights
        ):
            raise ValueError(f"slot {slot['variable']!r} names no output of the weights signature")
        if not (
            isinstance(slot, dict)
            and isinstance(slot.get("variable"), str)
            and all(
                isinstance(slot.get(k), int) and not isinstance(slot.get(k), bool) for k in ("offset", "size")
            )
            and len(template) <= slot["offset"]
            and slot["size"] >= 0
            and slot["offset"] + slot["size"] <= budget
        ):
            raise ValueError(f"bad slot {slot!r} (template {len(template)} bytes, weights end by {budget})")


def _template_and_slots(once: bytes) -> tuple[bytes, Any]:
    """The constant-weight template and the (unchecked) slot table a materializable file carries."""
    metadata = read_metadata(once)
    if TEMPLATE_METADATA not in metadata or SLOTS_METADATA not in metadata:
        raise ValueError("this .tflite has no hashpack materialize template (not a 'once' export?)")
    try:
        return metadata[TEMPLATE_METADATA], json.loads(metadata[SLOTS_METADATA])
    except ValueError as exc:
        raise ValueError(f"hashpack_slots is not JSON: {exc}") from None


def materialize(once: bytes, num_threads: int | None = None) -> bytes:
    """A model with constant weights computed by running ``once``'s init subgraph in LiteRT.

    Raises ``ValueError`` when ``once`` carries no template (not a hashpack ``once`` export, or
    one without compressed weights).
    """
    from .once import WEIGHTS_SIGNATURE, WEIGHTS_TRIGGER
    from .runner import make_interpreter

    template, slots = _template_and_slots(once)
    interpreter = make_interpreter(once, num_threads=num_threads)
    trigger = {WEIGHTS_TRIGGER: np.zeros(1, np.float32)}
    weights = interpreter.get_signature_runner(WEIGHTS_SIGNATURE)(**trigger)
    _check_slots(slots, template, weights)
    end = max((s["offset"] + s["size"] for s in slots), default=len(template))
    out = bytearray(end)
    out[: len(template)] = template
    for slot in slots:
        value = np.ascontiguousarray(weights[slot["variable"]], dtype="<f4").tobytes()
        if len(value) != slot["size"]:
            raise ValueError(
                f"variable {slot['variable']!r}: {len(value)} bytes, its slot has {slot['size']}"
            )
        out[slot["offset"] : slot["offset"] + slot["size"]] = value
    return bytes(out)


def recipe_of(use: Any, folds: dict[str, Any]) -> dict[str, Any]:
    """How a slot's float32 values come from the decoded param (``WeightUse.reference``), as JSON.

    ``param``; ``perm`` (the PyTorch axis that becomes each axis, or null); ``rows`` ([start, stop)
    of axis 0, or null); ``scale``/``shift`` (a folded BatchNorm, multiplied then added in float32,
    broadcasting against the viewed weight; or null): ``[subgraph, tensor]`` of the float32
    constant the once file's init subgraph already holds, so a recipe costs a few bytes.
    """
    view = use.view
    return {
        "param": use.param,
        "perm": None if view.perm is None else list(view.perm),
        "rows": None if view.rows is None else list(view.rows),
        **{
            key: [folds[key].subgraph, folds[key].index] if key in folds else None
            for key in ("scale", "shift")
        },
    }


def _constant(model: Any, ref: Any) -> np.ndarray:
    """The float32 constant ``[subgraph, tensor]`` of a once model (flatbuffer accessors: no copy
    of the other buffers; every index checked, never trusted)."""
    if not (isinstance(ref, list) and len(ref) == 2 and all(isinstance(i, int) and i >= 0 for i in ref)):
        raise ValueError(f"constant reference {ref!r:.40} is not [subgraph, tensor]")
    if ref[0] >= model.SubgraphsLength() or ref[1] >= model.Subgraphs(ref[0]).TensorsLength():
        raise ValueError(f"constant reference {ref} is out of range")
    tensor = model.Subgraphs(ref[0]).Tensors(ref[1])
    index = tensor.Buffer()
    shape = [int(d) for d in tensor.ShapeAsNumpy()] if tensor.ShapeLength() else []
    data = model.Buffers(index).DataAsNumpy() if 0 < index < model.BuffersLength() else 0
    if tensor.Type() != schema.TensorType.FLOAT32 or not isinstance(data, np.ndarray):
        raise ValueError(f"constant reference {ref} is not a float32 constant")
    if data.size != 4 * int(np.prod(shape, dtype=np.int64)):
        raise ValueError(f"constant reference {ref}: {data.size} bytes for shape {shape}")
    return np.frombuffer(data.tobytes(), dtype="<f4").reshape(shape)


def materialize_from_hpk(once: bytes, weights: dict[str, np.ndarray]) -> bytes:
    """``materialize`` without running LiteRT: fill the template from decoded params.

    ``weights``: the decoded params by name (e.g. ``hashpack.runtime.load(path).weights``, from
    the .hpk ``once`` was exported from). Every slot must carry a recipe (files exported by this
    version). The result equals ``materialize(once)`` bit for bit wherever LiteRT's init subgraph
    is exact (dense, hashed, fsnet); for fresh/funhash it holds the numpy runtime's weights.
    Raises ``ValueError`` for a file without template or recipes, or weights that do not fit.
    """
    from .layout import WeightView

    template, slots = _template_and_slots(once)
    values: dict[str, np.ndarray] = {}
    parsed = None  # the once model, parsed only if a recipe folds a BatchNorm
    for slot in slots if isinstance(slots, list) else []:
        recipe = slot.get("recipe") if isinstance(slot, dict) else None
        if not isinstance(recipe, dict) or recipe.get("param") not in weights:
            raise ValueError(f"slot {slot!r:.80}: no recipe for a param of the given weights")
        try:
            perm, rows = recipe.get("perm"), recipe.get("rows")
            view = WeightView(None if perm is None else tuple(perm), None if rows is None else tuple(rows))
            value = view.apply(np.asarray(weights[recipe["param"]], dtype=np.float32))
            for key in ("scale", "shift"):
                operand = recipe.get(key)
                if operand is not None:
                    if parsed is None:
                        parsed = schema.Model.GetRootAs(once, 0)
                    factor = _constant(parsed, operand)
                    if np.broadcast_shapes(value.shape, factor.shape) != value.shape:
                        raise ValueError(
                            f"{key} of shape {factor.shape} does not fit the weight {value.shape}"
                        )
                    value = value * factor if key == "scale" else value + factor
        except (TypeError, KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"slot {slot.get('variable')!r}: bad recipe ({exc})") from None
        values[slot["variable"]] = np.ascontiguousarray(value, dtype=np.float32)
    _check_slots(slots, template, values)
    end = max((s["offset"] + s["size"] for s in slots), default=len(template))
    out = bytearray(end)
    out[: len(template)] = template
    for slot in slots:
        data = values[slot["variable"]].tobytes()
        if len(data) != slot["size"]:
            raise ValueError(f"variable {slot['variable']!r}: {len(data)} bytes, its slot has {slot['size']}")
        out[slot["offset"] : slot["offset"] + slot["size"]] = data
    return bytes(out)

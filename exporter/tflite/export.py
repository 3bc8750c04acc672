"""``export_tflite``: a .hpk file as a LiteRT (.tflite) model, in one of three weights modes.

The main subgraph takes the input in the .hpk's (PyTorch's) layout, NCHW for images, with a
dynamic batch dimension, and returns the output in PyTorch's layout too; the transposes to and
from LiteRT's NHWC happen inside the graph (``graph.py``). Each param is produced by its
scheme's emitter (``weights.py``). One signature, ``serving_default``, maps the .hpk's input and
output names to those tensors. The bytes depend only on the .hpk content and the mode, and are
written atomically, so a failed export never leaves a file behind.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from hashpack import __version__
from hashpack.runtime import HpkFile, read_hpk
from hashpack.runtime.container import atomic_write_bytes

from . import schemes, tx_ops  # noqa: F401  (register the scheme emitters, the transformer ops)
from .context import ExportContext
from .graph import translate
from .layout import TORCH, WeightView
from .materialize import SLOTS_METADATA, TEMPLATE_METADATA, make_template
from .weights import WEIGHT_MODES

__all__ = ["SIGNATURE_KEY", "WEIGHT_MODES", "TFLiteExport", "build_tflite", "export_tflite"]

SIGNATURE_KEY = "serving_default"


@dataclass(frozen=True)
class TFLiteExport:
    """An exported model: its bytes, and which main-subgraph tensor holds which (param, view).

    ``weights`` lets a test read the weights LiteRT actually uses back out of the interpreter
    and compare them with the numpy runtime's (``view.apply(model.weights[param])``).
    """

    data: bytes
    weights: dict[str, tuple[str, WeightView]]
    input_name: str
    output_name: str


def build_tflite(
    source: HpkFile | str | os.PathLike[str], weights: str = "once", *, materializable: bool | None = None
) -> TFLiteExport:
    """Translate ``source`` (a .hpk path, read and validated first, or an ``HpkFile``); writes nothing.

    materializable (once mode only): also store a ``hashpack_weights`` signature and a template
    so that ``materialize.materialize`` can turn the file into one with constant weights on the
    device (XNNPACK speed; ~2 KB plus ~0.4 KB per layer). The default (None) is True in once mode:
    at ResNet-18 / MobileNetV2 size it costs 0.3 % / 2.8 % of the file and turns steady batch-1
    latency from ~3× expanded into ~1× on the device (benchmarks/scale.py).
    Raises ``HpkFormatError`` for a bad file or an op/scheme/configuration LiteRT cannot run,
    ``ValueError`` for an unknown weights mode or ``materializable`` outside once mode.
    """
    if weights not in WEIGHT_MODES:
        raise ValueError(f"unknown weights mode {weights!r} (one of: {', '.join(WEIGHT_MODES)})")
    if materializable is None:
        materializable = weights == "once"
    if materializable and weights != "once":
        raise ValueError(f"materializable applies to the once weights mode, not {weights!r}")
    hpk = source if isinstance(source, HpkFile) else read_hpk(source)
    description = f"hashpack {__version__} --weights {weights} (from {hpk.producer or 'unknown producer'})"
    ctx = ExportContext(hpk, weights, description)
    main = ctx.main
    x = main.add_input(ctx.names.claim(main, hpk.input.name), hpk.input.dtype, hpk.input.shape)  # int32: ids
    ctx.define(hpk.input.name, x, TORCH, hpk.input.shape)
    for node in hpk.nodes:
        translate(ctx, node)
    ctx.weights.finish()
    y = ctx.get(hpk.output.name, TORCH)
    if y == x:  # the output is the input itself (identity graph): give it a tensor of its own
        y = ctx.reshape(x, list(x.shape[1:]), hpk.output.name)
    main.mark_output(y)
    ctx.model.add_signature(main, SIGNATURE_KEY, {hpk.input.name: x}, {hpk.output.name: y})
    initializer = ctx.weights.initializer
    if materializable and initializer is not None:  # (no initializer: every weight is constant already)
        initializer.add_weights_signature()
        template, slots = make_template(ctx.model.to_bytes(), ctx.weights.variable_uses)
        ctx.model.add_metadata(TEMPLATE_METADATA, template)
        ctx.model.add_metadata(SLOTS_METADATA, json.dumps(slots, separators=(",", ":")).encode())
    return TFLiteExport(ctx.model.to_bytes(), dict(ctx.weights.exports), hpk.input.name, hpk.output.name)


def export_tflite(
    source: HpkFile | str | os.PathLike[str],
    path: str | os.PathLike[str],
    weights: str = "once",
    *,
    materializable: bool | None = None,
) -> bytes:
    """Export ``source`` (a .hpk path or a read ``HpkFile``) to the .tflite file ``path``.

    weights: "once" (decompressed on the first invoke by a CALL_ONCE init subgraph into resource
    variables; the file holds buckets and seeds), "inline" (decompressed in the main subgraph on
    every invoke) or "expanded" (dense constant weights). Raises ``HpkFormatError`` for a bad .hpk
    or anything the exporter cannot express; nothing is written then. Returns the file's bytes.
    materializable: see :func:`build_tflite`.
    """
    data = build_tflite(source, weights, materializable=materializable).data
    atomic_write_bytes(path, data)
    return data

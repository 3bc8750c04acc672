"""The ``external`` weights mode: a graph whose every weight an app supplies from the .hpk.

``export_onnx(hpk, path, weights="external")`` writes the expanded graph with each param declared
as an external-data initializer (``data_location = EXTERNAL``, a location that is never read) and
no weight values at all: the app ships this graph next to the .hpk (together ≈ the .hpk's size),
decodes the .hpk's params itself and hands them to ONNX Runtime with
``SessionOptions.add_external_initializers`` (Java: ``addExternalInitializers``; hashpack-java's
``OnnxWeights.initializers`` builds the map). ORT then neither folds nor hashes anything, so it
loads like the expanded file, without a protobuf library on the app's side: the app never edits
the graph.

Which param each initializer is, is recorded in the model's ``metadata_props`` under
:data:`MAPPING_KEY` as JSON (docs/ONNX.md, "The external mode")::

    {"version": 1, "hpk_sha256": "<the .hpk's hashpack.sha256>",
     "initializers": [{"name": "fc1.weight", "param": "fc1.weight", "shape": [300, 784]}, ...]}

Every entry is the param's decoded float32 values (FORMAT.md §4), row-major, in the param's own
shape: no view or transposition (the graph transposes where the op needs it, as in expanded mode).
``hpk_sha256`` ties the graph to the one .hpk it was exported from.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx

from hashpack.runtime import HpkFile, read_hpk
from hashpack.runtime.container import parse_container
from hashpack.runtime.hpk import CHECKSUM_KEY, serialize_hpk
from hashpack.runtime.schemes import decode_param

__all__ = [
    "LOCATION",
    "MAPPING_KEY",
    "MAPPING_VERSION",
    "external_session",
    "hpk_sha256",
    "mapping_json",
    "read_mapping",
]

MAPPING_KEY = "hashpack.external"
MAPPING_VERSION = 1
LOCATION = "hashpack-weights-come-from-the-hpk"  # never read: a stock ORT load alone fails naming it


def hpk_sha256(hpk: HpkFile) -> str:
    """The checksum the .hpk file carries (of the bytes ``write_hpk`` would write, if built in memory)."""
    return hpk.sha256 or parse_container(serialize_hpk(hpk)).metadata[CHECKSUM_KEY]


def mapping_json(hpk: HpkFile, entries: Sequence[tuple[str, str]]) -> str:
    """The :data:`MAPPING_KEY` value for (initializer name, param name) pairs, in graph order."""
    initializers = [
        {"name": name, "param": param, "shape": list(hpk.params[param].shape)} for name, param in entries
    ]
    document = {
        "version": MAPPING_VERSION,
        "hpk_sha256": hpk_sha256(hpk),
        "initializers": initializers,
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def read_mapping(model: onnx.ModelProto, hpk: HpkFile, source: str = "<onnx>") -> dict[str, str]:
    """Initializer name -> param name, checked against ``hpk`` (the rules hashpack-java applies).

    Raises ``ValueError`` naming ``source`` when the metadata is missing or malformed, names an
    unknown param or a wrong shape, repeats a name or a param, or the graph came from another .hpk.
    """
    values = [p.value for p in model.metadata_props if p.key == MAPPING_KEY]
    if len(values) != 1:
        raise ValueError(
            f"{source}: {'no' if not values else 'more than one'} {MAPPING_KEY!r} metadata entry: "
            "export the .hpk with --weights external"
        )
    try:
        document = json.loads(values[0])
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source}: {MAPPING_KEY} is not valid JSON ({exc})") from None
    if not isinstance(document, dict) or type(document.get("version")) is not int or document["version"] != 1:
        raise ValueError(f"{source}: {MAPPING_KEY} is not a version-{MAPPING_VERSION} mapping object")
    if document.get("hpk_sha256") != hpk_sha256(hpk):
        raise ValueError(f"{source}: was exported from another .hpk than {hpk.source} (hpk_sha256 differs)")
    entries = document.get("initializers")
    if not isinstance(entries, list):
        raise ValueError(f"{source}: {MAPPING_KEY}.initializers is not a list")
    mapping: dict[str, str] = {}
    for index, entry in enumerate(entries):
        where = f"{source}: {MAPPING_KEY}.initializers[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"]:
            raise ValueError(f"{where}: not an object with a non-empty 'name'")
        param = hpk.params.get(entry.get("param")) if isinstance(entry.get("param"), str) else None
        if param is None:
            raise ValueError(f"{where}: 'param' names no param of {hpk.source}")
        shape = entry.get("shape")
        if (
            not isinstance(shape, list)
            or any(type(d) is not int for d in shape)
            or shape != list(param.shape)
        ):
            raise ValueError(
                f"{where}: shape {entry.get('shape')} is not param {param.name!r}'s {list(param.shape)}"
            )
        if entry["name"] in mapping or param.name in mapping.values():
            raise ValueError(f"{where}: initializer or param listed twice")
        mapping[entry["name"]] = param.name
    return mapping


def external_session(
    onnx_path: str | os.PathLike[str],
    hpk: HpkFile | str | os.PathLike[str],
    sess_options: Any = None,
    providers: Sequence[str] = ("CPUExecutionProvider",),
) -> Any:
    """An ``onnxruntime.InferenceSession`` for an external-mode export, the weights decoded by numpy.

    What an app does with hashpack-java, in Python: read the mapping, decode each param
    (``decode_param``, the numpy runtime's decoder), pass the arrays with
    ``add_external_initializers``. ``sess_options`` receives the weights: pass a fresh one per call.
    """
    import onnxruntime as ort

    file = hpk if isinstance(hpk, HpkFile) else read_hpk(hpk)
    model = onnx.load(str(onnx_path), load_external_data=False)
    mapping = read_mapping(model, file, str(onnx_path))
    arrays = {
        name: np.ascontiguousarray(decode_param(file, param), dtype=np.float32).reshape(
            file.params[param].shape
        )
        for name, param in mapping.items()
    }
    options = sess_options if sess_options is not None else ort.SessionOptions()
    values = [ort.OrtValue.ortvalue_from_numpy(array) for array in arrays.values()]
    if arrays:
        options.add_external_initializers(list(arrays), values)
    session = ort.InferenceSession(model.SerializeToString(), options, providers=list(providers))
    session._hashpack_weights = (arrays, values)  # ORT may read them in place: keep them alive
    return session

"""Write the static web demo for one .hpk model: the page, onnxruntime-web's WebAssembly build and the data.

The page (index.html, app.js, style.css beside this file) runs a compact ONNX export in the browser, so
the weights are decompressed on the user's device when onnxruntime-web creates the session. This
module writes everything the page fetches into one directory that any static file server can serve:

    index.html app.js style.css                         the page
    ort.wasm.min.js ort-wasm-simd-threaded.{mjs,wasm}   onnxruntime-web (pinned in package.json; npm ci)
    model.onnx model.expanded.onnx                      compact and dense exports of the model
    manifest.json golden.json samples.json              sizes, golden I/O, test images

Golden inputs/outputs are read through ``hashpack.runtime`` (``Model.golden_inputs``/``golden_outputs``),
so they come out the same whichever way the .hpk stores them. Used by ``hashpack export --web-demo DIR``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from hashpack.exporter.onnx import export_onnx
from hashpack.runtime import load
from hashpack.runtime.container import atomic_write_bytes
from hashpack.runtime.summary import summarize

HERE = Path(__file__).resolve().parent
PAGE_FILES = ("app.js", "style.css", "index.html")  # index.html last: a half-written directory has no page
ORT_PACKAGE = HERE / "node_modules" / "onnxruntime-web"
# The WebAssembly-only build: no WebGPU/WebGL code, and the one .mjs/.wasm pair it imports.
ORT_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
# Same tolerance as the other runtimes' golden checks against PyTorch-recorded outputs.
GOLDEN_ATOL = GOLDEN_RTOL = 1e-4
COMPACT_FILE, EXPANDED_FILE = "model.onnx", "model.expanded.onnx"

# How a drawing becomes an input, per input size (see padToInput in app.js): grid pixels per input pixel,
# the square the digit is fitted into, stroke width (grid pixels). scikit-learn's digits (UCI optdigits)
# are 32×32 binary bitmaps counted in 4×4 blocks, strokes ~7 px wide; MNIST fits the digit in 20×20 of 28×28.
DRAW_SPECS: dict[tuple[int, int], dict[str, Any]] = {
    (8, 8): {"block": 4, "box": 32, "stroke": 7, "binary": True, "threshold": 0.5},
    (28, 28): {"block": 1, "box": 20, "stroke": 2.5, "binary": False, "threshold": 0.5},
}
# Test images shipped with the page, per input size: the dataset and the split seed.
SAMPLE_DATASETS = {(8, 8): "digits", (28, 28): "mnist5k"}


class WebDemoError(ValueError):
    """The web demo cannot be written (missing npm install, unsupported model): a one-line message."""


def ort_version() -> str:
    """The installed onnxruntime-web version (pinned in web_demo/package.json)."""
    return str(json.loads((ORT_PACKAGE / "package.json").read_text())["version"])


def _check_ort_files() -> None:
    missing = [name for name in ORT_FILES if not (ORT_PACKAGE / "dist" / name).is_file()]
    if missing:
        raise WebDemoError(
            f"{ORT_PACKAGE / 'dist'} lacks {', '.join(missing)}: run `make web-demo-deps` "
            f"(npm ci --omit=dev in {HERE})"
        )


def _image_shape(shape: tuple[int | None, ...], path: Path) -> tuple[int, int, int]:
    dims = shape[1:] if shape and shape[0] is None else shape
    if len(dims) != 3 or dims[0] != 1 or not all(isinstance(d, int) and d > 0 for d in dims):
        raise WebDemoError(
            f"{path}: the web demo needs a single-channel image input [N, 1, H, W]; this model's input is "
            f"{list(shape)}"
        )
    return int(dims[0]), int(dims[1]), int(dims[2])


def default_samples(image_shape: tuple[int, int, int], per_class: int = 1) -> list[dict[str, Any]]:
    """Test images (seed-0 split) of the dataset that matches the input size, ``per_class`` of each class."""
    name = SAMPLE_DATASETS.get(image_shape[1:])
    if name is None:
        return []
    from hashpack.data import load_dataset

    data = load_dataset(name, seed=0)
    samples = []
    for label in range(data.num_classes):
        for index in np.flatnonzero(data.y_test == label)[:per_class]:
            samples.append({"label": label, "index": int(index), "values": _floats(data.x_test[index])})
    return samples


def _floats(array: np.ndarray) -> list[float]:
    return [float(v) for v in np.asarray(array, dtype=np.float32).ravel()]


def _json_bytes(payload: Any) -> bytes:
    return (json.dumps(payload, sort_keys=True, separators=(",", ":")) + "\n").encode()


def _title(path: Path, summary: dict[str, Any]) -> str:
    schemes = sorted({layer["scheme"] for layer in summary["layers"]})
    return (
        f"{path.name}: {len(summary['layers'])} layers ({', '.join(schemes)}), "
        f"{summary['virtual_params']:,} weights rebuilt from {summary['stored_bytes']:,} stored bytes"
    )


def write_web_demo(
    hpk_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    samples: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Write the page for ``hpk_path`` into ``out_dir`` (created if missing); returns the manifest.

    ``samples`` ([{"label": int, "values": [floats]}]) overrides the test images chosen by input size.
    Raises ``WebDemoError`` when onnxruntime-web is not installed or the model is not an image classifier,
    ``HpkFormatError`` for a bad .hpk.
    """
    source = Path(hpk_path)
    out = Path(out_dir)
    _check_ort_files()
    model = load(source)
    image_shape = _image_shape(model.input_shape, source)
    classes = model.output_shape[-1]
    if len(model.output_shape) != 2 or not isinstance(classes, int):
        raise WebDemoError(
            f"{source}: the web demo needs a class-score output [N, C]; got {list(model.output_shape)}"
        )
    out.mkdir(parents=True, exist_ok=True)

    export_onnx(model.hpk, out / COMPACT_FILE, weights="compact")
    export_onnx(model.hpk, out / EXPANDED_FILE, weights="expanded")

    golden_in, golden_out = model.golden_inputs, model.golden_outputs
    golden: dict[str, Any] = {"inputs": None, "outputs": None}
    if golden_in is not None and golden_out is not None:
        golden = {
            "input_shape": list(golden_in.shape),
            "inputs": _floats(golden_in),
            "output_shape": list(golden_out.shape),
            "outputs": _floats(golden_out),
            "atol": GOLDEN_ATOL,
            "rtol": GOLDEN_RTOL,
        }
    atomic_write_bytes(out / "golden.json", _json_bytes(golden))
    shipped = default_samples(image_shape) if samples is None else samples
    atomic_write_bytes(out / "samples.json", _json_bytes({"samples": shipped}))

    h, w = image_shape[1:]
    manifest = {
        "title": _title(source, summarize(model.hpk)),
        "source": source.name,
        "model": COMPACT_FILE,
        "expanded": EXPANDED_FILE,
        "model_bytes": (out / COMPACT_FILE).stat().st_size,
        "expanded_bytes": (out / EXPANDED_FILE).stat().st_size,
        "hpk_bytes": source.stat().st_size,
        "input_shape": list(image_shape),
        "labels": [str(i) for i in range(classes)],
        "draw": DRAW_SPECS.get(
            (h, w),
            {"block": 4, "box": 4 * min(h, w), "stroke": min(h, w) / 2, "binary": False, "threshold": 0.5},
        ),
        "onnxruntime_web": ort_version(),
        "runtime_bytes": sum((ORT_PACKAGE / "dist" / name).stat().st_size for name in ORT_FILES),
        "golden_inputs": 0 if golden["inputs"] is None else golden["input_shape"][0],
    }
    atomic_write_bytes(out / "manifest.json", _json_bytes(manifest))
    for name in ORT_FILES:
        atomic_write_bytes(out / name, (ORT_PACKAGE / "dist" / name).read_bytes())
    for name in PAGE_FILES:
        atomic_write_bytes(out / name, (HERE / name).read_bytes())
    return manifest

"""Import torchvision's model definitions even where its compiled extension cannot load.

torchvision's model zoo is pure Python, but ``import torchvision`` also registers fake kernels for
two detection ops (``torchvision::nms``, ``torchvision::qnms``). When the wheel's C++ extension
does not match the installed torch (here: PyPI's CUDA-built torchvision beside a CPU torch), those
ops were never defined and the import fails with "operator torchvision::nms does not exist".
:func:`import_torchvision` defines the two schemas (no kernels) in that case and retries, so the
model definitions load unchanged; detection ops stay unavailable, which hashpack never uses.
With a matching torch/torchvision pair this does nothing beyond a plain import.
"""

from __future__ import annotations

import importlib
from types import ModuleType

_NMS_SCHEMA = "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"
_library = None  # the Library fragment must outlive the call, or its definitions are dropped


def import_torchvision() -> ModuleType:
    """``import torchvision`` (defining its two detection-op schemas first if the extension is absent)."""
    global _library
    try:
        return importlib.import_module("torchvision")
    except RuntimeError as exc:
        if "torchvision::nms does not exist" not in str(exc):
            raise
    import sys

    import torch

    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]  # the failed import left half-initialised modules behind
    _library = torch.library.Library("torchvision", "DEF")  # schemas only, no kernels
    _library.define("nms" + _NMS_SCHEMA)
    _library.define("qnms" + _NMS_SCHEMA)
    return importlib.import_module("torchvision")


def torchvision_models() -> ModuleType:
    """``torchvision.models`` (see :func:`import_torchvision`)."""
    import_torchvision()
    return importlib.import_module("torchvision.models")

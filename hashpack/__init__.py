"""hashpack: hashed weight-sharing compression that decompresses on the device.

``hashpack.runtime`` needs numpy only. The torch-side entry points (``compress``, ``pack``,
``finetune`` ...) are loaded lazily so that ``import hashpack.runtime`` never imports torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"
_LAZY = {
    "compress": "hashpack.nn.compress",
    "pack": "hashpack.packer",
    "compress_pretrained": "hashpack.finetuning",
    "finetune": "hashpack.finetuning",
    "recalibrate_batchnorm": "hashpack.finetuning",
    "distillation_loss": "hashpack.distill",
    "Distiller": "hashpack.distill",
    "allocate_budget": "hashpack.nn.ratios",
}
__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hashpack' has no attribute {name!r}")

"""hashpack: hashed weight-sharing compression that decompresses on the device.

``hashpack.runtime`` needs numpy only. The torch-side entry points (``compress``, ``pack``) are
loaded lazily so that ``import hashpack.runtime`` never imports torch.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "compress", "pack"]


def __getattr__(name: str) -> Any:
    if name == "compress":
        from hashpack.nn.compress import compress

        return compress
    if name == "pack":
        from hashpack.packer import pack

        return pack
    raise AttributeError(f"module 'hashpack' has no attribute {name!r}")

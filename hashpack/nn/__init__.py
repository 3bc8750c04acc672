"""hashpack.nn — the torch side: compressed layers, ``compress`` and bucket quantization.

Importing this package imports torch (``hashpack.runtime`` never does).
"""

from .attention import HashedMultiheadAttention
from .compress import compress
from .fresh import FreshConv2d
from .fsnet import FSConv2d, FSLinear
from .funhash import FunHashConv2d, FunHashLinear
from .layers import HashedConv2d, HashedEmbedding, HashedLinear
from .quantize import fake_quantize, quantize

__all__ = [
    "FSConv2d",
    "FSLinear",
    "FreshConv2d",
    "FunHashConv2d",
    "FunHashLinear",
    "HashedConv2d",
    "HashedEmbedding",
    "HashedLinear",
    "HashedMultiheadAttention",
    "compress",
    "fake_quantize",
    "quantize",
]

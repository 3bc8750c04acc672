"""The protocol between compressed torch layers and ``pack``: what a layer writes into a .hpk.

A compressed layer says which op it computes (``hpk_op``: "Linear" or "Conv2d", with the same
attributes as the torch layer of that name) and returns its spaces, params and raw tensors. A new
compression method implements this and needs no change to ``pack``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from hashpack.runtime.hpk import Param, Space


@dataclass
class HpkEntries:
    """What one layer contributes: ``params`` maps the op's slot ("weight", "bias") to its Param."""

    params: dict[str, Param] = field(default_factory=dict)
    spaces: list[Space] = field(default_factory=list)
    tensors: dict[str, np.ndarray] = field(default_factory=dict)

    def add_space(self, name: str, values: torch.Tensor) -> str:
        """A space from a trained parameter; returns its name.

        float32 unless ``quantize()`` tagged the parameter (``hpk_quant = (dtype, scale)``): then
        float16 or int8 with that scale. The values must still lie exactly on that grid, so the
        file holds precisely what torch computes with (a space trained further after
        ``quantize()`` is an error, not a silent re-rounding).
        """
        array = values.detach().cpu().float().numpy().copy()
        dtype, scale = getattr(values, "hpk_quant", None) or ("float32", None)
        tensor = f"spaces/{name}"
        self.tensors[tensor] = encode_space(name, array, dtype, scale)
        self.spaces.append(Space(name, int(array.shape[0]), dtype, tensor, scale))
        return name

    def add_dense(self, name: str, values: torch.Tensor) -> Param:
        array = values.detach().cpu().float().numpy().copy()
        self.tensors[f"params/{name}"] = array
        return Param(name, "dense", tuple(array.shape), {"tensor": f"params/{name}"})


def encode_space(name: str, values: np.ndarray, dtype: str, scale: float | None) -> np.ndarray:
    """The stored array of a space whose float32 ``values`` lie on the ``dtype`` grid (FORMAT §3)."""
    if dtype == "float32":
        return values
    if dtype == "float16":
        stored = values.astype(np.float16)
        exact = np.array_equal(stored.astype(np.float32), values)
    elif dtype == "int8":
        if scale is None:
            raise ValueError(f"space {name!r}: int8 needs a scale")
        scale32 = np.float32(scale)
        codes = np.clip(np.rint(values / scale32), -127, 127)
        stored = codes.astype(np.int8)
        exact = np.array_equal(stored.astype(np.float32) * scale32, values)
    else:
        raise ValueError(f"space {name!r}: unknown bucket dtype {dtype!r}")
    if not exact:
        raise ValueError(
            f"space {name!r} no longer lies on its {dtype} grid (trained after quantize()?); "
            "call hashpack.nn.quantize.quantize(model, ...) again before packing"
        )
    return stored


_MISSING = object()


class CompressedLayer(nn.Module):
    """Base of every compressed layer that ``pack`` can write.

    ``hpk_bucket_names``: the parameters holding bucket values (what quantization rounds); other
    parameters (e.g. FunHashNN's g, dense biases) stay float32.
    """

    hpk_op: ClassVar[str]
    hpk_bucket_names: ClassVar[tuple[str, ...]] = ("space",)

    def __getattr__(self, name: str) -> object:
        """``.weight``/``.bias`` of a compressed Linear: the virtual tensors, regenerated.

        Parents such as ``nn.TransformerEncoderLayer`` read ``linear1.weight`` on their inference
        fast path instead of calling the layer; this keeps them running (and computing the same).
        """
        try:
            value = super().__getattr__(name)
        except AttributeError:
            value = _MISSING
        # a registered-but-None "bias" means the bias lives in the space (HashedLinear without separate_bias)
        linear_like = getattr(type(self), "hpk_op", None) in ("Linear", "Embedding")
        if (value is None or value is _MISSING) and name in ("weight", "bias") and linear_like:
            if hasattr(type(self), "virtual_tensors"):
                return self.virtual_tensors().get(name)
            if name == "weight" and hasattr(type(self), "filters"):
                return self.filters()
        if value is _MISSING:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return value

    def hpk_entries(self, path: str) -> HpkEntries:  # pragma: no cover - abstract
        raise NotImplementedError

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
        """A float32 space from a trained parameter; returns its name."""
        array = values.detach().cpu().float().numpy().copy()
        self.tensors[f"spaces/{name}"] = array
        self.spaces.append(Space(name, int(array.shape[0]), "float32", f"spaces/{name}"))
        return name

    def add_dense(self, name: str, values: torch.Tensor) -> Param:
        array = values.detach().cpu().float().numpy().copy()
        self.tensors[f"params/{name}"] = array
        return Param(name, "dense", tuple(array.shape), {"tensor": f"params/{name}"})


class CompressedLayer(nn.Module):
    """Base of every compressed layer that ``pack`` can write."""

    hpk_op: ClassVar[str]

    def hpk_entries(self, path: str) -> HpkEntries:  # pragma: no cover - abstract
        raise NotImplementedError

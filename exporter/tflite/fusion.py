"""Fusions planned before translation: BatchNorm folded into its layer, activations into their op.

Why: LiteRT runs what the file says; unlike the TF converter nobody else folds BatchNorm or fuses
activations for us. Folding ``Conv2d → BatchNorm`` into one convolution (weights scaled per
output channel, the shift in the bias) and fusing ``Relu``/``Relu6`` into the op before them
removes two to three elementwise ops per layer. In once/inline mode it matters more: there the
convolutions run on LiteRT's builtin kernels (XNNPACK only takes constant filters) and every
small delegated op between two of them splits the XNNPACK partitions.

A fold changes float rounding a little (``x·(w·s)`` instead of ``(x·w)·s``): within the
documented tolerance. The weights a folded layer uses are ``view(w) · scale`` with the numpy
runtime's ``w``; tests check them bit for bit (a float32 multiply is exact to reproduce).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from hashpack.runtime import HpkFile, Node
from hashpack.runtime.schemes import decode_param

from .schema import schema

__all__ = ["FOLDS_INTO", "FUSES_INTO", "Fusions", "batch_norm_affine", "node_key", "plan_fusions"]

FOLDS_INTO = ("Conv2d", "Linear")  # ops a following BatchNorm folds into
FUSES_INTO = ("Conv2d", "Linear", "Add", "Mul")  # ops whose TFLite op takes a fused activation
ACTIVATIONS = {"Relu": "RELU", "Relu6": "RELU6"}


@dataclass
class Fusions:
    """What was planned: folded BatchNorms, fused activations, and the nodes they replace."""

    # layer -> (scale, shift) of the BatchNorm folded into it
    batch_norm: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    activation: dict[str, str] = field(default_factory=dict)  # node -> TFLite activation name
    absorbed: dict[str, str] = field(default_factory=dict)  # skipped node -> node that computes it

    def fused_activation(self, node: Node) -> int:
        """The ``ActivationFunctionType`` code to put in ``node``'s options."""
        name = self.activation.get(node_key(node), "NONE")
        return int(getattr(schema.ActivationFunctionType, name))


def node_key(node: Node) -> str:
    """How the plan names a node: its output, unique in a valid file (FORMAT.md §5; names need not be)."""
    return node.outputs[0]


def plan_fusions(hpk: HpkFile, is_constant: Callable[[str], bool]) -> Fusions:
    """Plan folds and fusions for ``hpk``'s graph; ``is_constant(param)`` says which params are constants.

    A BatchNorm folds into the Conv2d/Linear before it when that layer's output feeds only the
    BatchNorm and its four params are constants (folded at export time). A Relu/Relu6 fuses
    into the op computing its input (through a folded BatchNorm) under the same single-consumer
    rule. The graph output is never folded away.
    """
    consumers: dict[str, int] = {hpk.output.name: 1}
    for node in hpk.nodes:
        for name in node.inputs:
            consumers[name] = consumers.get(name, 0) + 1
    producer = {node.outputs[0]: node for node in hpk.nodes}
    fusions = Fusions()

    def computed_by(value: str) -> Node | None:
        node = producer.get(value)
        while node is not None and node_key(node) in fusions.absorbed:
            node = producer[fusions.absorbed[node_key(node)]]
        return node

    for node in hpk.nodes:
        source = computed_by(node.inputs[0]) if node.inputs else None
        single = bool(node.inputs) and consumers.get(node.inputs[0], 0) == 1
        if source is None or not single:
            continue
        into, this = node_key(source), node_key(node)
        if node.op == "BatchNorm" and source.op in FOLDS_INTO and into not in fusions.activation:
            params = [node.params[s] for s in ("weight", "bias", "running_mean", "running_var")]
            if into not in fusions.batch_norm and all(is_constant(p) for p in params):
                fusions.batch_norm[into] = _fold(hpk, params, node.attrs["eps"])
                fusions.absorbed[this] = into
        elif node.op in ACTIVATIONS and source.op in FUSES_INTO and into not in fusions.activation:
            fusions.activation[into] = ACTIVATIONS[node.op]
            fusions.absorbed[this] = into
    return fusions


def batch_norm_affine(
    weight: np.ndarray, bias: np.ndarray, mean: np.ndarray, var: np.ndarray, eps: float
) -> tuple[np.ndarray, np.ndarray]:
    """(scale, shift) of an inference BatchNorm, y = x · scale + shift, in float32.

    ``scale`` is computed as the numpy runtime does (``weight / sqrt(var + eps)``, eps read as
    float32 like torch); ``shift = bias - mean · scale`` in float64, rounded once.
    """
    scale = (weight / np.sqrt(var + np.float32(eps))).astype(np.float32)
    shift = (bias.astype(np.float64) - mean.astype(np.float64) * scale).astype(np.float32)
    return scale, shift


def _fold(hpk: HpkFile, params: list[str], eps: float) -> tuple[np.ndarray, np.ndarray]:
    arrays = [np.asarray(decode_param(hpk, p), dtype=np.float32) for p in params]
    return batch_norm_affine(*arrays, eps)

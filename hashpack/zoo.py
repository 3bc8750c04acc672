"""The torchvision mobile zoo as tests/test_zoo.py and benchmarks/zoo.py build it, in one place.

Both must measure the same models: torchvision's own definitions, unchanged (``num_classes=10``,
3×64×64 inputs, random init), compressed ``from_dense`` with seed 1, then rescaled by
:func:`unit_scale`. Random init leaves a compressed zoo model's logits tiny (1e-3 down to 1e-18
with fsnet), where an absolute tolerance would prove nothing and sizes say nothing about accuracy,
so each compressed layer is rescaled to unit output std on a calibration batch (LSUV-style; every
scheme used here is linear in its stored values).
"""

from __future__ import annotations

import torch
from torch import nn

from hashpack.nn.compress import compress
from hashpack.nn.entries import CompressedLayer
from hashpack.torchvision_compat import torchvision_models

INPUT_SHAPE = (3, 64, 64)
NUM_CLASSES = 10
MODELS = [
    "resnet18",
    "resnet50",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "squeezenet1_1",
    "shufflenet_v2_x0_5",
    "efficientnet_b0",
]
# 128 M virtual weights (its classifier is 25088→4096→4096 whatever the input size): beyond CI
LARGE_MODELS = ["vgg11_bn"]


def build(name: str, seed: int = 0) -> nn.Module:
    """torchvision's definition, unchanged, with a reproducible random init."""
    torch.manual_seed(seed)
    return getattr(torchvision_models(), name)(num_classes=NUM_CLASSES)


@torch.no_grad()
def unit_scale(model: nn.Module, x: torch.Tensor) -> None:
    """Rescale every compressed layer (all its own params) so its output has unit std on ``x``.

    One forward pass: each layer's hook rescales the layer, then hands the rescaled output on, so
    later layers are calibrated on what they will see.
    """

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        std = output.std()
        if not torch.isfinite(std) or std == 0:
            return output
        for param in module.parameters(recurse=False):
            param.div_(std)
        return output / std

    layers = [m for m in model.modules() if isinstance(m, CompressedLayer)]
    handles = [layer.register_forward_hook(hook) for layer in layers]
    try:
        model.eval()(x)
    finally:
        for handle in handles:
            handle.remove()


def compressed_model(
    name: str,
    method: str,
    compression: float,
    generator: torch.Generator,
    input_shape: tuple[int, ...] = INPUT_SHAPE,
) -> nn.Module:
    """:func:`build`, compress (seed 1, from the dense weights), then :func:`unit_scale`.

    The calibration batch (8 inputs) is drawn from ``generator``, which the caller keeps drawing
    from for its own inputs, so both callers see the same model and the same data.
    """
    model = build(name)
    compress(model, method, compression=compression, seed=1, from_dense=True)
    unit_scale(model, torch.randn(8, *input_shape, generator=generator))
    return model

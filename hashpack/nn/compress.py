"""``compress(model, method=..., compression=...)``: swap a model's layers for compressed ones.

Like torchao's ``quantize_``: one call on an ordinary model, modules replaced in place, no change
to the user's model code. Each method is a function that turns one dense layer into its
compressed twin (or returns None to leave it dense); adding a method is adding an entry to METHODS.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from hashpack.runtime.hashing import derive_seed

from .layers import HashedConv2d, HashedLinear

# (dense layer, compression, layer seed) -> compressed layer, or None to keep it dense
Converter = Callable[[nn.Module, float, int], nn.Module | None]


def _hashed(layer: nn.Module, compression: float, seed: int) -> nn.Module | None:
    if isinstance(layer, nn.Linear):
        return HashedLinear(
            layer.in_features, layer.out_features, layer.bias is not None, compression=compression, seed=seed
        )
    if isinstance(layer, nn.Conv2d):
        if layer.padding_mode != "zeros" or isinstance(layer.padding, str):
            raise ValueError(f"Conv2d with padding={layer.padding!r}/{layer.padding_mode!r} is not supported")
        return HashedConv2d(
            layer.in_channels,
            layer.out_channels,
            layer.kernel_size,
            layer.stride,
            layer.padding,
            layer.dilation,
            layer.groups,
            layer.bias is not None,
            compression=compression,
            seed=seed,
        )
    return None


METHODS: dict[str, Converter] = {"hashed": _hashed}


def compress(
    model: nn.Module,
    method: str = "hashed",
    compression: float = 1 / 8,
    *,
    seed: int = 0,
    from_dense: bool = True,
    filter_fn: Callable[[nn.Module, str], bool] | None = None,
) -> nn.Module:
    """Replace every ``nn.Linear``/``nn.Conv2d`` of ``model`` (in place) by a compressed layer.

    compression: stored values / virtual weights (e.g. 1/8). seed: the model seed; each layer's
    seed is derived from it and the layer's path, so two layers never share a bucket map.
    from_dense: initialise buckets from the dense weights (mean of what hashes to each bucket),
    so a trained model can be compressed and fine-tuned. filter_fn(module, path): False keeps a
    layer dense. Returns ``model``.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r} (known: {', '.join(METHODS)})")
    convert = METHODS[method]
    for path, module in list(model.named_modules()):
        if not isinstance(module, (nn.Linear, nn.Conv2d)) or (filter_fn and not filter_fn(module, path)):
            continue
        replacement = convert(module, compression, derive_seed(seed, path))
        if replacement is None:
            continue
        if from_dense and hasattr(replacement, "init_from_dense"):
            replacement.init_from_dense({n: p for n, p in module.named_parameters(recurse=False)})
        _set_submodule(model, path, replacement)
    return model


def _set_submodule(model: nn.Module, path: str, module: nn.Module) -> None:
    parent_path, _, name = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    setattr(parent, name, module)

"""``compress(model, method=..., compression=...)``: swap a model's layers for compressed ones.

Like torchao's ``quantize_``: one call on an ordinary model, modules replaced in place, no change
to the user's model code. Each method is a function that turns one dense layer into its
compressed twin (or returns None to leave it dense); adding a method is adding an entry to METHODS.
"""

from __future__ import annotations

import inspect
import re
import warnings
from collections.abc import Callable
from functools import cache
from typing import Any

from torch import nn

from hashpack.runtime.hashing import derive_seed

from .attention import HashedMultiheadAttention
from .conv_geometry import numeric_padding
from .entries import CompressedLayer
from .fresh import FreshConv2d
from .fsnet import FSConv2d, FSLinear
from .funhash import FunHashConv2d, FunHashLinear
from .layers import HashedConv2d, HashedEmbedding, HashedLinear

# (dense layer, compression, layer seed, **method options) -> compressed layer, or None to keep it dense
Converter = Callable[..., nn.Module | None]


def _conv_args(layer: nn.Conv2d) -> tuple:
    padding = numeric_padding(layer)
    if layer.padding_mode != "zeros" or padding is None:
        raise ValueError(
            f"Conv2d with padding={layer.padding!r}, padding_mode={layer.padding_mode!r} cannot be compressed "
            "(zero padding, the same on both sides, only); keep it dense with filter_fn"
        )
    return (
        layer.in_channels,
        layer.out_channels,
        layer.kernel_size,
        layer.stride,
        padding,
        layer.dilation,
        layer.groups,
        layer.bias is not None,
    )


def _hashed(
    layer: nn.Module, compression: float, seed: int, *, separate_bias: bool = False
) -> nn.Module | None:
    """HashedNets: every Linear and Conv2d; ``separate_bias`` keeps biases dense (same budget)."""
    if isinstance(layer, nn.Linear):
        return HashedLinear(
            layer.in_features,
            layer.out_features,
            layer.bias is not None,
            compression=compression,
            seed=seed,
            separate_bias=separate_bias,
        )
    if isinstance(layer, nn.Conv2d):
        return HashedConv2d(
            *_conv_args(layer), compression=compression, seed=seed, separate_bias=separate_bias
        )
    return None


def _fresh(
    layer: nn.Module,
    compression: float,
    seed: int,
    *,
    allocation: str = "beta",
    bands: int | None = None,
    alpha: float = 1.0,
    beta: float = 2.0,
) -> nn.Module | None:
    """FreshNets: Conv2d → FreshConv2d (DCT-domain hashing, per-band pools); Linear → HashedNets."""
    if allocation == "uniform" and bands not in (None, 1):
        raise ValueError(
            f"allocation='uniform' is one band (HashedNets in the DCT domain), so bands={bands} "
            "cannot apply: drop the bands or use allocation='beta'"
        )
    if isinstance(layer, nn.Conv2d):
        return FreshConv2d(
            *_conv_args(layer),
            compression=compression,
            allocation=allocation,
            bands=bands,
            alpha=alpha,
            beta=beta,
            seed=seed,
        )
    return _hashed(layer, compression, seed)


def _funhash(
    layer: nn.Module,
    compression: float,
    seed: int,
    *,
    hashes: int = 4,
    hidden: int = 8,
    hops: int = 1,
    dual_space: bool = False,
) -> nn.Module | None:
    """FunHashNN: every Linear and Conv2d, U = ``hashes`` fetches decoded by a per-layer MLP g."""
    options = {"hashes": hashes, "hidden": hidden, "hops": hops, "dual_space": dual_space}
    if isinstance(layer, nn.Linear):
        return FunHashLinear(
            layer.in_features,
            layer.out_features,
            layer.bias is not None,
            compression=compression,
            seed=seed,
            **options,
        )
    if isinstance(layer, nn.Conv2d):
        return FunHashConv2d(*_conv_args(layer), compression=compression, seed=seed, **options)
    return None


def _fsnet(layer: nn.Module, compression: float, seed: int, *, fc: str = "hashed") -> nn.Module | None:
    """FSNet: Conv2d → FSConv2d; Linear → HashedNets (``fc="hashed"``, the default: the paper
    summarizes convolution filters only) or a filter summary of its rows (``fc="fs"``, an extension)."""
    if fc not in ("fs", "hashed"):
        raise ValueError(f"fsnet option fc={fc!r} must be 'fs' or 'hashed'")
    if isinstance(layer, nn.Conv2d):
        return FSConv2d(*_conv_args(layer), compression=compression)
    if isinstance(layer, nn.Linear):
        if fc == "hashed":
            return _hashed(layer, compression, seed)
        return FSLinear(
            layer.in_features, layer.out_features, layer.bias is not None, compression=compression
        )
    return None


METHODS: dict[str, Converter] = {"hashed": _hashed, "fresh": _fresh, "funhash": _funhash, "fsnet": _fsnet}


def method_options(method: str) -> dict[str, Any]:
    """The keyword options of ``method`` and their defaults (what a CLI can expose)."""
    signature = inspect.signature(METHODS[method])
    return {
        name: p.default
        for name, p in signature.parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


def compress(
    model: nn.Module,
    method: str = "hashed",
    compression: float = 1 / 8,
    *,
    seed: int = 0,
    from_dense: bool = True,
    filter_fn: Callable[[nn.Module, str], bool] | None = None,
    **options: Any,
) -> nn.Module:
    """Replace every ``nn.Linear``/``nn.Conv2d`` of ``model`` (in place) by a compressed layer.

    ``nn.Embedding`` becomes ``HashedEmbedding`` (for every method), ``nn.MultiheadAttention``
    becomes ``HashedMultiheadAttention`` with its in-projection and ``out_proj`` converted by the
    method, and ``nn.TransformerEncoderLayer``'s self_attn, linear1 and linear2 are converted.

    compression: stored values / virtual weights (e.g. 1/8). seed: the model seed; each layer's
    seed is derived from it and the layer's path, so two layers never share a bucket map.
    from_dense: initialise buckets from the dense weights (mean of what hashes to each bucket),
    so a trained model can be compressed and fine-tuned. filter_fn(module, path): False keeps a
    layer dense. options: the method's own (``method_options(method)``), e.g. ``hashes=4`` for
    funhash. Returns ``model``, which still runs: a Linear whose parent reads its ``.weight``
    directly (``nn.TransformerDecoderLayer``'s children) stays dense, and so does every layer no
    method converts (ConvTranspose2d, Conv1d, LSTM, …); each kind gets one warning naming the layers.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r} (known: {', '.join(METHODS)})")
    convert = METHODS[method]
    unknown = set(options) - set(method_options(method))
    if unknown:
        known = ", ".join(method_options(method)) or "none"
        raise ValueError(f"method {method!r} has no option {sorted(unknown)[0]!r} (its options: {known})")
    direct_readers, uncompressible, replaced = [], [], []
    for path, module in list(model.named_modules()):
        if any(path.startswith(prefix + ".") for prefix in replaced):
            continue  # a child of an attention layer already converted as a whole
        if filter_fn and not filter_fn(module, path):
            continue
        parent_path, _, name = path.rpartition(".")
        parent = model.get_submodule(parent_path) if parent_path else model
        if isinstance(module, (nn.MultiheadAttention, nn.Embedding)):
            if parent is not module and _reads_weights_directly(parent, name):
                direct_readers.append(f"{path} (read by {type(parent).__name__})")
                continue
            reason = _why_not_convertible(module)
            if reason:
                uncompressible.append(f"{path} ({type(module).__name__}: {reason})")
                continue

            def convert_child(linear: nn.Module, part: str, prefix: str = path) -> nn.Module:
                child = f"{prefix}.{part}"
                if filter_fn and not filter_fn(linear, child):
                    return linear
                compressed = convert(linear, compression, derive_seed(seed, child), **options)
                if compressed is None:
                    return linear
                if from_dense and hasattr(compressed, "init_from_dense"):
                    compressed.init_from_dense({n: p for n, p in linear.named_parameters(recurse=False)})
                return compressed

            if isinstance(module, nn.MultiheadAttention):
                replacement = HashedMultiheadAttention.from_dense(module, convert_child)
            else:
                replacement = _hashed_embedding(module, compression, derive_seed(seed, path), from_dense)
            _set_submodule(model, path, replacement)
            replaced.append(path)
            continue
        if not isinstance(module, (nn.Linear, nn.Conv2d)):
            if _has_matrix_weights(module):
                uncompressible.append(f"{path or 'model'} ({type(module).__name__})")
            continue
        if parent is not module and _reads_weights_directly(parent, name):
            direct_readers.append(f"{path} (read by {type(parent).__name__})")
            continue
        replacement = convert(module, compression, derive_seed(seed, path), **options)
        if replacement is None:
            continue
        if from_dense and hasattr(replacement, "init_from_dense"):
            replacement.init_from_dense({n: p for n, p in module.named_parameters(recurse=False)})
        _set_submodule(model, path, replacement)
    if direct_readers:
        warnings.warn(
            f"compress: left dense because the parent reads their .weight/.bias directly instead of calling "
            f"them: {', '.join(direct_readers)}",
            stacklevel=2,
        )
    if uncompressible:
        warnings.warn(
            f"compress: left dense ({method} compresses nn.Linear, nn.Conv2d, nn.Embedding and "
            f"nn.MultiheadAttention only): {', '.join(uncompressible)}; "
            "pass filter_fn to silence this",
            stacklevel=2,
        )
    return model


# Layers whose forward reads a child Linear's weight itself (F.multi_head_attention_forward, the
# decoder layer's cross attention): swapping that child for a compressed layer would break the model.
# nn.MultiheadAttention is replaced as a whole (HashedMultiheadAttention) before its children are seen.
_DIRECT_READERS = (nn.MultiheadAttention, nn.TransformerDecoderLayer)
# Layers that read .weight only on an inference fast path whose checks compressed layers satisfy
# (CompressedLayer.weight/.bias and HashedMultiheadAttention.in_proj_weight are regenerated tensors).
_FAST_PATH_READERS = (nn.TransformerEncoderLayer,)


def _why_not_convertible(module: nn.Module) -> str | None:
    if isinstance(module, nn.MultiheadAttention):
        return HashedMultiheadAttention.supports(module)
    if module.max_norm is not None or module.scale_grad_by_freq or module.sparse:
        return "max_norm / scale_grad_by_freq / sparse are not supported by HashedEmbedding"
    return None


def _hashed_embedding(
    module: nn.Embedding, compression: float, seed: int, from_dense: bool
) -> HashedEmbedding:
    """Every method compresses embedding tables the HashedNets way (docs/METHODS.md says why)."""
    table = HashedEmbedding(
        module.num_embeddings, module.embedding_dim, module.padding_idx, compression=compression, seed=seed
    )
    if from_dense:
        table.init_from_dense({"weight": module.weight})
    return table


def _reads_weights_directly(parent: nn.Module, name: str) -> bool:
    """Whether ``parent`` uses ``parent.<name>.weight``/``.bias`` instead of calling ``parent.<name>``."""
    if isinstance(parent, _FAST_PATH_READERS):
        return False
    if isinstance(parent, _DIRECT_READERS):
        return True
    return (
        re.search(rf"\bself\.{re.escape(name)}\.(weight|bias)\b", _forward_source(type(parent))) is not None
    )


@cache
def _forward_source(cls: type) -> str:
    try:
        return inspect.getsource(cls.forward)
    except (OSError, TypeError):  # built in, or defined where there is no source
        return ""


def _has_matrix_weights(module: nn.Module) -> bool:
    """A layer with its own weight matrices (Embedding, LSTM, ConvTranspose2d, …) that no method converts."""
    if isinstance(module, CompressedLayer) or any(True for _ in module.children()):
        return False  # a container's own tensors are tokens or position tables, not a layer's weights
    return any(p.dim() >= 2 for p in module.parameters(recurse=False))


def _set_submodule(model: nn.Module, path: str, module: nn.Module) -> None:
    parent_path, _, name = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    setattr(parent, name, module)

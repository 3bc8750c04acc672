"""``pack(model, example_input, path)``: capture a torch model's graph into a .hpk file.

torch.fx traces the model with every ``nn`` layer (and hashpack's compressed layers) as a leaf;
shapes come from running the example input through the traced graph. Each fx node is translated
by one small handler into the op vocabulary of docs/FORMAT.md §5; shape arithmetic on
``x.size()`` is folded away (reshapes take their recorded target shape), identity ops in eval mode
(Dropout, StochasticDepth, ``.contiguous()``) vanish, and anything else is a one-line error naming
the op, the module whose forward made the call, and what to do.
"""

from __future__ import annotations

import functools
import math
import operator
import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp, TensorMetadata

import hashpack
from hashpack.runtime.golden import (
    GENERATOR_NAME,
    MAX_GENERATED_COUNT,
    MAX_GENERATED_VALUES,
    generated_inputs,
)
from hashpack.runtime.hashing import derive_seed
from hashpack.runtime.hpk import HpkFile, Node, Param, Space, ValueInfo, write_hpk

from .nn.attention import dense_attention_forward, encoder_forward, encoder_layer_forward
from .nn.conv_geometry import numeric_padding
from .nn.entries import CompressedLayer

NOT_IN_FORMAT = "not yet in the .hpk op set (docs/FORMAT.md §5)"
DEFAULT_GOLDEN = 8  # generated golden samples by default, fewer if their outputs exceed the budget
GOLDEN_BUDGET_FLOOR = 16 * 1024  # default golden bytes <= max(16 KiB, 1% of the stored values' bytes)
GOLDEN_BUDGET_FRACTION = 0.01
MAX_STORED_GOLDEN_SAMPLES = 64  # cap on user-supplied golden inputs (pack(..., golden=array))
MAX_STORED_GOLDEN_BYTES = 16 * 1024 * 1024
GOLDEN_SEED = derive_seed(0, "golden")
Golden = int | np.ndarray | torch.Tensor | None


class UnsupportedModelError(ValueError):
    """The model uses an op or layer configuration that .hpk cannot represent (message names it)."""


# torch.nn layers fx would keep as opaque leaves, traced instead through the same math written
# without fused fast paths or data-dependent checks (hashpack/nn/attention.py)
_TRACED_THROUGH: dict[type, Callable[..., Any]] = {
    nn.MultiheadAttention: dense_attention_forward,
    nn.TransformerEncoderLayer: encoder_layer_forward,
    nn.TransformerEncoder: encoder_forward,
}


class _LeafTracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if type(m) in _TRACED_THROUGH:
            return False
        return isinstance(m, CompressedLayer) or super().is_leaf_module(m, qualname)

    def call_module(self, m: nn.Module, forward: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        substitute = _TRACED_THROUGH.get(type(m))
        if substitute is not None:
            forward = functools.partial(substitute, m)
        return super().call_module(m, forward, args, kwargs)


def _is_tensor_node(arg: Any) -> bool:
    return isinstance(arg, fx.Node) and isinstance(arg.meta.get("tensor_meta"), TensorMetadata)


@dataclass
class _Builder:
    """Accumulates the .hpk graph while the fx nodes are visited."""

    model: nn.Module
    spaces: dict[str, Space] = field(default_factory=dict)
    params: dict[str, Param] = field(default_factory=dict)
    tensors: dict[str, np.ndarray] = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)
    alias: dict[str, str] = field(default_factory=dict)  # fx value -> .hpk value (identity ops)
    # chunk/split nodes: fx name -> (input value, axis, [(start, end)] per piece); getitem makes Slices
    pieces: dict[str, tuple[str, int, list[tuple[int, int]]]] = field(default_factory=dict)
    # tensors known at pack time (get_attr parameters and what is computed from them alone)
    consts: dict[str, torch.Tensor] = field(default_factory=dict)
    const_names: dict[str, str] = field(default_factory=dict)  # fx const -> param name (get_attr target)
    constants: dict[tuple[str, int], str] = field(default_factory=dict)  # (const, rank) -> Constant node
    ids_input: str | None = None  # the graph input when it holds token ids (int32)
    # fx values torch holds as [L, N, …] (after transpose(0, 1), batch_first=False attention) while
    # the .hpk value stays [N, L, …]: only layout-independent ops may consume them
    swapped: set[str] = field(default_factory=set)
    float_value: str | None = None  # a float value computed so far: a Constant's batch source

    def value(self, arg: Any, where: str, rank: int | None = None) -> str:
        """The .hpk value of a tensor argument; a pack-time constant becomes a ``Constant`` node
        (repeated over the batch; ``rank``: the rank to give it, leading 1s added)."""
        if isinstance(arg, fx.Node) and arg.name in self.consts:
            return self.constant(arg, where, rank)
        if not isinstance(arg, fx.Node):
            raise UnsupportedModelError(
                f"{where}: expected a tensor input, got the constant {arg!r}; arithmetic with constants is "
                f"{NOT_IN_FORMAT}"
            )
        if not _is_tensor_node(arg):
            raise UnsupportedModelError(
                f"{where}: uses {arg.name} (a shape value or tuple, not a tensor) as a tensor; only reshapes "
                "may consume x.size()"
            )
        return self.alias.get(arg.name, arg.name)

    def add(self, op: str, fx_node: fx.Node, inputs: list[str], params=None, attrs=None) -> None:
        if self.ids_input is not None and op != "Embedding" and self.ids_input in inputs:
            raise UnsupportedModelError(
                f"{fx_node.name}: {op} on the integer input: token ids (int32 in the .hpk graph) may only "
                "feed nn.Embedding directly (docs/FORMAT.md §5)"
            )
        self.nodes.append(Node(op, fx_node.name, tuple(inputs), (fx_node.name,), params or {}, attrs or {}))
        self.float_value = fx_node.name

    def const(self, arg: Any, where: str) -> torch.Tensor:
        if not isinstance(arg, fx.Node) or arg.name not in self.consts:
            raise UnsupportedModelError(
                f"{where}: expected a parameter (a weight known when packing), got {arg}; "
                f"computed weights are {NOT_IN_FORMAT}"
            )
        return self.consts[arg.name]

    def const_param(
        self, arg: Any, where: str, transform: Callable[[torch.Tensor], torch.Tensor] | None = None
    ) -> str:
        """A dense param holding a pack-time constant (named after its attribute when it is one)."""
        tensor = self.const(arg, where)
        name = self.const_names.get(arg.name, arg.name)
        if transform is not None:
            tensor, name = transform(tensor), f"{name}.T"
        return name if name in self.params else self.dense(name, tensor)

    def constant(self, arg: fx.Node, where: str, rank: int | None = None) -> str:
        tensor = self.consts[arg.name]
        return self.constant_tensor(arg.name, self.const_names.get(arg.name, arg.name), tensor, where, rank)

    def scalar(self, value: float, rank: int, where: str) -> str:
        """A Python number in an elementwise op: a Constant of shape [N, 1, …, 1]."""
        tensor = torch.full((1,) * rank, float(value))
        return self.constant_tensor(f"scalar{value!r}", f"scalar.{value!r}", tensor, where, rank)

    def constant_tensor(
        self, key: str, source: str, tensor: torch.Tensor, where: str, rank: int | None
    ) -> str:
        rank = tensor.dim() if rank is None else rank
        if (key, rank) in self.constants:
            return self.constants[(key, rank)]
        if tensor.dim() > rank or rank < 2:
            raise UnsupportedModelError(f"{where}: constant tensor {list(tensor.shape)} cannot be used here")
        tensor = tensor.reshape((1,) * (rank - tensor.dim()) + tuple(tensor.shape))
        if tensor.shape[0] != 1:
            raise UnsupportedModelError(
                f"{where}: a constant tensor of shape {list(tensor.shape)} used as a batch value must have "
                "size 1 in dim 0 (it is repeated over the batch)"
            )
        if self.float_value is None:
            raise UnsupportedModelError(
                f"{where}: a constant tensor is used before any input-dependent value"
            )
        param = source if source not in self.params else f"{source}.rank{rank}"
        self.dense(param, tensor[0])
        name = f"{re.sub(r'[^A-Za-z0-9_]', '_', key)}_const{rank}"
        self.nodes.append(Node("Constant", name, (self.float_value,), (name,), {"value": param}, {}))
        self.constants[(key, rank)] = name
        return name

    def dense(self, name: str, tensor: torch.Tensor) -> str:
        array = tensor.detach().cpu().float().numpy().copy()
        self.tensors[f"params/{name}"] = array
        self.params[name] = Param(name, "dense", tuple(array.shape), {"tensor": f"params/{name}"})
        return name

    def layer_params(self, path: str, module: nn.Module) -> dict[str, str]:
        """Params of a Linear/Conv2d-like layer: dense, or whatever its compressed form declares."""
        if isinstance(module, CompressedLayer):
            entries = module.hpk_entries(path)
            self.spaces.update({space.name: space for space in entries.spaces})
            self.params.update({param.name: param for param in entries.params.values()})
            self.tensors.update(entries.tensors)
            return {slot: param.name for slot, param in entries.params.items()}
        slots = {"weight": self.dense(f"{path}.weight", module.weight)}
        if module.bias is not None:
            slots["bias"] = self.dense(f"{path}.bias", module.bias)
        return slots


def _pair_attr(value: Any) -> list[int]:
    return list(nn.modules.utils._pair(value))


def _shape(node: Any) -> tuple[int, ...]:
    meta = node.meta.get("tensor_meta") if isinstance(node, fx.Node) else None
    if not isinstance(meta, TensorMetadata):
        raise UnsupportedModelError(f"{node}: no tensor shape recorded (is it a tensor?)")
    return tuple(meta.shape)


def _arg(node: fx.Node, index: int, name: str, default: Any) -> Any:
    return node.args[index] if len(node.args) > index else node.kwargs.get(name, default)


def _unary_input(b: _Builder, node: fx.Node, where: str) -> list[str]:
    return [b.value(node.args[0], where)]


# ---------------------------------------------------------------------------------- module handlers


def _linear(b: _Builder, node: fx.Node, path: str, m: nn.Module) -> None:
    b.add("Linear", node, _unary_input(b, node, path), b.layer_params(path, m))


def _conv2d(b: _Builder, node: fx.Node, path: str, m: nn.Module) -> None:
    padding = numeric_padding(m)
    if padding is None or getattr(m, "padding_mode", "zeros") != "zeros":
        raise UnsupportedModelError(
            f"{path}: Conv2d padding={m.padding!r} padding_mode={m.padding_mode!r} is {NOT_IN_FORMAT}; "
            "use zero padding, the same on both sides"
        )
    attrs = {
        "stride": _pair_attr(m.stride),
        "padding": _pair_attr(padding),
        "dilation": _pair_attr(m.dilation),
        "groups": int(m.groups),
    }
    b.add("Conv2d", node, _unary_input(b, node, path), b.layer_params(path, m), attrs)


def _batch_norm(b: _Builder, node: fx.Node, path: str, m: nn.Module) -> None:
    if not m.track_running_stats or m.running_mean is None or not m.affine:
        raise UnsupportedModelError(
            f"{path}: {type(m).__name__} needs affine=True and running statistics (track_running_stats=True)"
        )
    params = {
        slot: b.dense(f"{path}.{slot}", getattr(m, slot))
        for slot in ("weight", "bias", "running_mean", "running_var")
    }
    b.add("BatchNorm", node, _unary_input(b, node, path), params, {"eps": float(m.eps)})


def _pool_attrs(kernel: Any, stride: Any, padding: Any) -> dict[str, Any]:
    return {
        "kernel": _pair_attr(kernel),
        "stride": _pair_attr(stride if stride is not None and stride != [] else kernel),
        "padding": _pair_attr(padding),
    }


def _max_pool(b: _Builder, node: fx.Node, path: str, m: nn.Module) -> None:
    if m.return_indices:
        raise UnsupportedModelError(f"{path}: MaxPool2d(return_indices=True) is {NOT_IN_FORMAT}")
    attrs = {**_pool_attrs(m.kernel_size, m.stride, m.padding), "dilation": _pair_attr(m.dilation)}
    if m.ceil_mode:  # absent means false: files of models without ceil_mode stay byte-identical
        attrs["ceil_mode"] = True
    b.add("MaxPool2d", node, _unary_input(b, node, path), attrs=attrs)


def _avg_pool(b: _Builder, node: fx.Node, path: str, m: nn.Module) -> None:
    if m.divisor_override is not None:
        raise UnsupportedModelError(f"{path}: AvgPool2d(divisor_override=...) is {NOT_IN_FORMAT}")
    attrs = {
        **_pool_attrs(m.kernel_size, m.stride, m.padding),
        "count_include_pad": bool(m.count_include_pad),
    }
    if m.ceil_mode:
        attrs["ceil_mode"] = True
    b.add("AvgPool2d", node, _unary_input(b, node, path), attrs=attrs)


def _adaptive(op: str) -> Callable[[_Builder, fx.Node, str], None]:
    """Adaptive pooling to the output size torch recorded (``None`` entries resolved by it)."""

    def handle(b: _Builder, node: fx.Node, where: str) -> None:
        if len(_shape(node.args[0])) != 4:
            raise UnsupportedModelError(
                f"{where}: {op} takes an NCHW input, got rank {len(_shape(node.args[0]))}"
            )
        output = list(_shape(node)[2:])
        if op == "AdaptiveAvgPool2d" and output == [1, 1]:
            b.add("GlobalAvgPool", node, _unary_input(b, node, where))
        else:
            b.add(op, node, _unary_input(b, node, where), attrs={"output": output})

    return handle


def _adaptive_max_module(b: _Builder, node: fx.Node, path: str, m: nn.Module) -> None:
    if m.return_indices:
        raise UnsupportedModelError(f"{path}: AdaptiveMaxPool2d(return_indices=True) is {NOT_IN_FORMAT}")
    _adaptive("AdaptiveMaxPool2d")(b, node, path)


def _unary(op: str) -> Callable[[_Builder, fx.Node, str, nn.Module], None]:
    def handle(b: _Builder, node: fx.Node, path: str, m: nn.Module) -> None:
        b.add(op, node, _unary_input(b, node, path))

    return handle


def _identity(b: _Builder, node: fx.Node, where: str, m: nn.Module | None = None) -> None:
    b.alias[node.name] = b.value(node.args[0], where)


def _flatten_module(b: _Builder, node: fx.Node, path: str, m: nn.Module) -> None:
    _flatten(b, node, path, m.start_dim, m.end_dim)


def _softmax_module(b: _Builder, node: fx.Node, path: str, m: nn.Module) -> None:
    _softmax(b, node, path, m.dim)


def _relu6_or_hardtanh(b: _Builder, node: fx.Node, path: str, m: nn.Module) -> None:
    if (m.min_val, m.max_val) != (0.0, 6.0):
        raise UnsupportedModelError(
            f"{path}: Hardtanh({m.min_val}, {m.max_val}) is {NOT_IN_FORMAT} (ReLU6 = Hardtanh(0, 6) is)"
        )
    b.add("Relu6", node, _unary_input(b, node, path))


def _embedding(b: _Builder, node: fx.Node, path: str, m: nn.Module) -> None:
    """nn.Embedding / HashedEmbedding on the integer graph input (FORMAT.md §5 Embedding)."""
    if getattr(m, "max_norm", None) is not None:
        raise UnsupportedModelError(
            f"{path}: Embedding(max_norm=...) renormalizes rows at lookup; {NOT_IN_FORMAT}"
        )
    ids = b.value(node.args[0], path)
    if ids != b.ids_input:
        raise UnsupportedModelError(
            f"{path}: Embedding must read the model's integer input directly (token ids, int64 in torch, "
            "int32 in the .hpk graph); pass the ids as the model input"
        )
    params = (
        b.layer_params(path, m)
        if isinstance(m, CompressedLayer)
        else {"weight": b.dense(f"{path}.weight", m.weight)}
    )
    attrs = {}
    padding = m.padding_idx
    # a dense table's padding row is what torch reads; it is zero unless the user wrote to it
    if padding is not None and (isinstance(m, CompressedLayer) or not m.weight[padding].any()):
        attrs["padding_idx"] = int(padding)
    b.add("Embedding", node, [ids], params, attrs)


def _layer_norm_module(b: _Builder, node: fx.Node, path: str, m: nn.Module) -> None:
    _layer_norm(b, node, path, m.normalized_shape, m.weight, m.bias, m.eps, path)


def _layer_norm(
    b: _Builder, node: fx.Node, where: str, shape: Any, weight: Any, bias: Any, eps: float, prefix: str
) -> None:
    """LayerNorm over the last ``len(shape)`` dims; weight/bias are module tensors or pack-time
    constants (F.layer_norm); a missing one of the two is written as ones / zeros."""
    dims = len(shape) if isinstance(shape, (list, tuple, torch.Size)) else 1

    def tensor(value: Any) -> torch.Tensor | None:
        return value if value is None or isinstance(value, torch.Tensor) else b.const(value, where)

    w, c = tensor(weight), tensor(bias)
    params = {}
    if w is not None or c is not None:
        w = torch.ones(c.shape) if w is None else w  # type: ignore[union-attr]
        c = torch.zeros(w.shape) if c is None else c  # LayerNorm(bias=False): the op takes both or neither
        params = {"weight": b.dense(f"{prefix}.weight", w), "bias": b.dense(f"{prefix}.bias", c)}
    b.add("LayerNorm", node, _unary_input(b, node, where), params, {"dims": dims, "eps": float(eps)})


def _gelu(b: _Builder, node: fx.Node, where: str, approximate: str) -> None:
    if approximate not in ("none", "tanh"):
        raise UnsupportedModelError(f"{where}: gelu(approximate={approximate!r}) is {NOT_IN_FORMAT}")
    b.add("Gelu", node, _unary_input(b, node, where), attrs={"approximate": approximate == "tanh"})


MODULE_HANDLERS: dict[type, Callable[[_Builder, fx.Node, str, nn.Module], None]] = {
    nn.Linear: _linear,
    nn.Conv2d: _conv2d,
    nn.BatchNorm1d: _batch_norm,
    nn.BatchNorm2d: _batch_norm,
    nn.ReLU: _unary("Relu"),
    nn.ReLU6: _relu6_or_hardtanh,
    nn.Hardtanh: _relu6_or_hardtanh,
    nn.Sigmoid: _unary("Sigmoid"),
    nn.Tanh: _unary("Tanh"),
    nn.Hardswish: _unary("Hardswish"),
    nn.Hardsigmoid: _unary("Hardsigmoid"),
    nn.SiLU: _unary("Silu"),
    nn.MaxPool2d: _max_pool,
    nn.AvgPool2d: _avg_pool,
    nn.AdaptiveAvgPool2d: lambda b, n, p, m: _adaptive("AdaptiveAvgPool2d")(b, n, p),
    nn.AdaptiveMaxPool2d: _adaptive_max_module,
    nn.Flatten: _flatten_module,
    nn.Dropout: _identity,
    nn.Dropout2d: _identity,
    nn.Identity: _identity,
    nn.Softmax: _softmax_module,
    nn.modules.linear.NonDynamicallyQuantizableLinear: _linear,  # nn.MultiheadAttention.out_proj
    nn.Embedding: _embedding,
    nn.LayerNorm: _layer_norm_module,
    nn.GELU: lambda b, n, p, m: _gelu(b, n, p, m.approximate),
}


# ------------------------------------------------------------------------------- function handlers


def _flatten(b: _Builder, node: fx.Node, where: str, start_dim: int = 0, end_dim: int = -1) -> None:
    rank = len(_shape(node.args[0]))
    start = start_dim % rank
    if end_dim % rank != rank - 1 or start == 0:
        raise UnsupportedModelError(
            f"{where}: flatten({start_dim}, {end_dim}) must keep the batch dimension and run to the last one"
        )
    b.add("Flatten", node, _unary_input(b, node, where), attrs={"start_dim": start})


def _softmax(b: _Builder, node: fx.Node, where: str, dim: int | None) -> None:
    rank = len(_shape(node.args[0]))
    if dim is None or dim % rank == 0:
        raise UnsupportedModelError(
            f"{where}: softmax over dim={dim} (the batch dimension) is {NOT_IN_FORMAT}"
        )
    b.add("Softmax", node, _unary_input(b, node, where), attrs={"axis": dim % rank})


def _batch_dependent(arg: Any) -> bool:
    """Whether a folded shape value came from the batch size (``x.size(0)``, ``x.shape[0]``, …)."""
    if not isinstance(arg, fx.Node) or _is_tensor_node(arg):
        return False
    if arg.op == "call_method" and arg.target == "size":
        dim = _arg(arg, 1, "dim", None)
        return dim is None or dim == 0
    if arg.op == "call_function" and arg.target is getattr and arg.args[1] == "shape":
        return True
    if arg.op == "call_function" and arg.target is operator.getitem and not _is_tensor_node(arg.args[0]):
        source, index = arg.args
        if isinstance(source, fx.Node) and _is_shape_source(source):
            return index == 0 or (isinstance(index, slice) and (index.start or 0) == 0)
        return _batch_dependent(source)
    return any(_batch_dependent(a) for a in (*arg.args, *arg.kwargs.values()))


def _is_shape_source(node: fx.Node) -> bool:
    """``x.size()`` or ``x.shape``: the whole shape tuple, batch first."""
    if node.op == "call_method" and node.target == "size":
        return _arg(node, 1, "dim", None) is None
    return node.op == "call_function" and node.target is getattr and node.args[1] == "shape"


def _reshape(b: _Builder, node: fx.Node, where: str) -> None:
    source, target = _shape(node.args[0]), _shape(node)
    sizes = node.args[1:] if node.op == "call_method" else node.args[1:2]
    if len(sizes) == 1 and isinstance(sizes[0], (list, tuple)):
        sizes = tuple(sizes[0])
    sizes = sizes or tuple(node.kwargs.get("shape", ()))
    batch_elsewhere = any(_batch_dependent(s) for s in sizes[1:])
    if target[0] != source[0] or batch_elsewhere:
        raise UnsupportedModelError(
            f"{where}: reshape to {list(target)} mixes the batch dimension into others; keep dim 0 the batch"
        )
    b.add("Reshape", node, _unary_input(b, node, where), attrs={"shape": list(target[1:])})


def _transpose(b: _Builder, node: fx.Node, where: str) -> None:
    rank = len(_shape(node.args[0]))
    dim0, dim1 = _arg(node, 1, "dim0", None), _arg(node, 2, "dim1", None)
    perm = list(range(rank))
    perm[dim0 % rank], perm[dim1 % rank] = perm[dim1 % rank], perm[dim0 % rank]
    _permute_to(b, node, where, perm)


def _permute(b: _Builder, node: fx.Node, where: str) -> None:
    dims = node.args[1:] if node.op == "call_method" else node.args[1:2]
    if len(dims) == 1 and isinstance(dims[0], (list, tuple)):
        dims = tuple(dims[0])
    dims = dims or tuple(node.kwargs.get("dims", ()))
    rank = len(_shape(node.args[0]))
    _permute_to(b, node, where, [int(d) % rank for d in dims])


def _permute_to(b: _Builder, node: fx.Node, where: str, perm: list[int]) -> None:
    source = node.args[0]
    if perm == [1, 0, *range(2, len(perm))]:  # batch_first=False plumbing: [N, L, …] <-> [L, N, …]
        # no node: the .hpk value stays batch-first; the swap is tracked (see _SEQUENCE_FIRST_SAFE)
        _identity(b, node, where)
        if source.name not in b.swapped:
            b.swapped.add(node.name)
        return
    if source.name in b.swapped or perm[0] != 0:
        raise UnsupportedModelError(f"{where}: permute {perm} moves the batch dimension; keep dim 0 first")
    if perm == sorted(perm):
        _identity(b, node, where)
        return
    b.add("Transpose", node, _unary_input(b, node, where), attrs={"perm": perm})


def _mean(b: _Builder, node: fx.Node, where: str) -> None:
    rank = len(_shape(node.args[0]))
    dims = _arg(node, 1, "dim", None)
    keepdim = bool(_arg(node, 2, "keepdim", False))
    if dims is None or dims == [] or dims == ():
        raise UnsupportedModelError(f"{where}: mean over all dimensions includes the batch; pass dims")
    dims = [dims] if isinstance(dims, int) else list(dims)
    axes = [d % rank for d in dims]
    if 0 in axes:
        raise UnsupportedModelError(f"{where}: mean over the batch dimension is {NOT_IN_FORMAT}")
    if node.kwargs.get("dtype") is not None:
        raise UnsupportedModelError(f"{where}: mean(dtype=...) is {NOT_IN_FORMAT}")
    b.add("Mean", node, _unary_input(b, node, where), attrs={"dims": axes, "keepdim": keepdim})


def _binary(op: str) -> Callable[[_Builder, fx.Node, str], None]:
    """Add (b broadcast to a, either order) or Mul (two-way broadcast) of two tensors of equal rank;
    a parameter or a Python number as either operand becomes a Constant (``x / 8`` is ``x * 0.125``)."""

    def handle(b: _Builder, node: fx.Node, where: str) -> None:
        if len(node.args) != 2 or node.kwargs.get("alpha", 1) != 1:
            raise UnsupportedModelError(f"{where}: only a {_SYMBOLS[op]} b of two operands is supported")
        rank = len(_shape(node))
        inputs, shapes = [], []
        for position, arg in enumerate(node.args):
            if isinstance(arg, (int, float)) and not isinstance(arg, bool):
                if op == "Div" and (position == 0 or arg == 0):
                    raise UnsupportedModelError(f"{where}: only division by a nonzero number is supported")
                inputs.append(b.scalar(1.0 / arg if op == "Div" else arg, rank, where))
                shapes.append((None,) + (1,) * (rank - 1))
            elif isinstance(arg, fx.Node) and arg.name in b.consts:
                if op == "Div":
                    raise UnsupportedModelError(f"{where}: division by a tensor is {NOT_IN_FORMAT}")
                inputs.append(b.value(arg, where, rank))
                const = b.consts[arg.name]
                shapes.append((None, *((1,) * (rank - const.dim()) + tuple(const.shape))[1:]))
            else:
                if op == "Div" and position == 1:
                    raise UnsupportedModelError(f"{where}: division by a tensor is {NOT_IN_FORMAT}")
                inputs.append(b.value(arg, where))
                shapes.append(_shape(arg))
        if len(shapes[0]) != len(shapes[1]):
            raise UnsupportedModelError(
                f"{where}: {op} of ranks {len(shapes[0])} and {len(shapes[1])} (broadcast to a higher rank) "
                f"is {NOT_IN_FORMAT}"
            )
        out = tuple(_shape(node)[1:])
        if op == "Add" and out != tuple(shapes[0][1:]):
            inputs.reverse()
            if out != tuple(shapes[1][1:]):
                raise UnsupportedModelError(
                    f"{where}: Add broadcasting both inputs is {NOT_IN_FORMAT} (one must have the output shape)"
                )
        b.add("Mul" if op == "Div" else op, node, inputs)

    return handle


_SYMBOLS = {"Add": "+", "Mul": "*", "Div": "/"}


def _cat(b: _Builder, node: fx.Node, where: str) -> None:
    tensors = _arg(node, 0, "tensors", ())
    dim = _arg(node, 1, "dim", 0)
    rank = len(_shape(node))
    if dim % rank == 0:
        raise UnsupportedModelError(f"{where}: concatenation along the batch dimension is {NOT_IN_FORMAT}")
    b.add("Concat", node, [b.value(t, where) for t in tensors], attrs={"axis": dim % rank})


def _chunk_or_split(b: _Builder, node: fx.Node, where: str) -> None:
    """Record the pieces' ranges (from the recorded shapes); each used piece becomes a Slice at getitem."""
    source = node.args[0]
    dim = _arg(node, 2, "dim", 0)
    rank = len(_shape(source))
    axis = dim % rank
    if axis == 0:
        raise UnsupportedModelError(f"{where}: {node.target} along the batch dimension is {NOT_IN_FORMAT}")
    metas = node.meta.get("tensor_meta")
    if not isinstance(metas, (list, tuple)) or not all(isinstance(m, TensorMetadata) for m in metas):
        raise UnsupportedModelError(f"{where}: {node.target} did not produce a tuple of tensors")
    ranges, start = [], 0
    for meta in metas:
        ranges.append((start, start + meta.shape[axis]))
        start += meta.shape[axis]
    b.pieces[node.name] = (b.value(source, where), axis, ranges)


def _getitem(b: _Builder, node: fx.Node, where: str) -> None:
    source, index = node.args
    if _is_tensor_node(source) and source.name not in b.pieces:
        _index(b, node, where, index)
        return
    if not isinstance(source, fx.Node) or source.name not in b.pieces or not isinstance(index, int):
        raise UnsupportedModelError(
            f"{where}: tensor indexing ({source}[{index!r}]) is {NOT_IN_FORMAT}; use chunk/split/narrow"
        )
    value, axis, ranges = b.pieces[source.name]
    start, end = ranges[index]
    if (start, end) == (0, _shape(source.args[0])[axis]):
        b.alias[node.name] = value
        return
    b.add("Slice", node, [value], attrs={"axis": axis, "start": start, "end": end})


def _narrow(b: _Builder, node: fx.Node, where: str) -> None:
    rank = len(_shape(node.args[0]))
    axis, start, length = (
        _arg(node, 1, "dim", 0) % rank,
        _arg(node, 2, "start", 0),
        _arg(node, 3, "length", 0),
    )
    if axis == 0 or not all(isinstance(v, int) for v in (start, length)):
        raise UnsupportedModelError(
            f"{where}: narrow along the batch or by a computed start is {NOT_IN_FORMAT}"
        )
    size = _shape(node.args[0])[axis]
    start %= size
    b.add(
        "Slice",
        node,
        _unary_input(b, node, where),
        attrs={"axis": axis, "start": start, "end": start + length},
    )


def _dropout_function(b: _Builder, node: fx.Node, where: str) -> None:
    if _arg(node, 2, "training", True) and _arg(node, 1, "p", 0.5) > 0:
        raise UnsupportedModelError(
            f"{where}: F.dropout(training=True) is random; pass training=self.training"
        )
    _identity(b, node, where)


def _stochastic_depth(b: _Builder, node: fx.Node, where: str) -> None:
    """torchvision.ops.stochastic_depth(input, p, mode, training): the identity in eval mode."""
    if _arg(node, 3, "training", True) and _arg(node, 1, "p", 0.0) > 0:
        raise UnsupportedModelError(
            f"{where}: stochastic_depth in training mode is random; pack in eval mode"
        )
    _identity(b, node, where)


def _functional_linear(b: _Builder, node: fx.Node, where: str) -> None:
    """F.linear(x, weight, bias) with pack-time weights (a dense nn.MultiheadAttention's in-projection)."""
    params = {"weight": b.const_param(_arg(node, 1, "weight", None), where)}
    bias = _arg(node, 2, "bias", None)
    if bias is not None:
        params["bias"] = b.const_param(bias, where)
    b.add("Linear", node, _unary_input(b, node, where), params)


def _matmul(b: _Builder, node: fx.Node, where: str) -> None:
    """a @ b of two values (MatMul), or of a value and a [K, P] parameter (a Linear without bias)."""
    left, right = node.args[0], _arg(node, 1, "other", None)
    if isinstance(right, fx.Node) and right.name in b.consts and b.consts[right.name].dim() == 2:
        weight = b.const_param(right, where, lambda t: t.t().contiguous())
        b.add("Linear", node, [b.value(left, where)], {"weight": weight})
        return
    shapes = [_shape(left), _shape(right)]
    if len(shapes[0]) != len(shapes[1]) or len(shapes[0]) < 3:
        raise UnsupportedModelError(
            f"{where}: matmul of shapes {list(shapes[0])} and {list(shapes[1])} (broadcasting, or rank < 3) "
            f"is {NOT_IN_FORMAT}; the .hpk MatMul multiplies equal-rank batched matrices"
        )
    b.add("MatMul", node, [b.value(left, where), b.value(right, where)])


def _sdpa(b: _Builder, node: fx.Node, where: str) -> None:
    """F.scaled_dot_product_attention(q, k, v, ...) without mask or dropout."""
    names = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")
    call = dict(zip(names, node.args, strict=False)) | dict(node.kwargs)
    if call.get("attn_mask") is not None or call.get("dropout_p", 0.0) or call.get("enable_gqa", False):
        raise UnsupportedModelError(
            f"{where}: scaled_dot_product_attention with attn_mask, dropout_p or enable_gqa is {NOT_IN_FORMAT}"
        )
    shapes = [_shape(call[k]) for k in ("query", "key", "value")]
    if any(len(shape) != 4 for shape in shapes):
        raise UnsupportedModelError(f"{where}: attention inputs must be [N, heads, length, width]")
    scale = call.get("scale")
    scale = 1.0 / math.sqrt(shapes[0][-1]) if scale is None else float(scale)
    attrs = {"scale": scale, "causal": bool(call.get("is_causal", False))}
    b.add("Attention", node, [b.value(call[k], where) for k in ("query", "key", "value")], attrs=attrs)


def _expand(b: _Builder, node: fx.Node, where: str) -> None:
    """``param.expand(n, -1, -1)`` (a class token repeated over the batch) becomes a Constant."""
    source = node.args[0]
    before, after = _shape(source), _shape(node)
    if isinstance(source, fx.Node) and source.name in b.consts and before[1:] == after[1:] and before[0] == 1:
        b.alias[node.name] = b.value(source, where)
        return
    if before == after:
        _identity(b, node, where)
        return
    raise UnsupportedModelError(
        f"{where}: expand from {list(before)} to {list(after)} is {NOT_IN_FORMAT} (only a batch-1 parameter "
        "repeated over the batch, such as a class token)"
    )


def _index(b: _Builder, node: fx.Node, where: str, index: Any) -> None:
    """``x[:, 0]``, ``x[..., 1:3]``, ``x[:, None]``: Slices on non-batch axes, then one Reshape."""
    source = node.args[0]
    shape = _shape(source)
    items = list(index) if isinstance(index, tuple) else [index]
    if sum(item is Ellipsis for item in items) > 1:
        raise UnsupportedModelError(f"{where}: indexing with several ... is not supported")
    if Ellipsis in items:
        at = items.index(Ellipsis)
        real = sum(item is not None for item in items) - 1
        items[at : at + 1] = [slice(None)] * (len(shape) - real)
    value, axis = b.value(source, where), 0
    if value == b.ids_input:
        raise UnsupportedModelError(
            f"{where}: indexing the integer input is {NOT_IN_FORMAT}; feed nn.Embedding the ids"
        )
    sliced = list(shape)
    for item in items:
        if item is None:
            continue
        if axis >= len(shape):
            raise UnsupportedModelError(f"{where}: too many indices for shape {list(shape)}")
        if isinstance(item, int):
            start, end = item % shape[axis], item % shape[axis] + 1
        elif (
            isinstance(item, slice)
            and item.step in (None, 1)
            and all(v is None or isinstance(v, int) for v in (item.start, item.stop))
        ):
            start, end, _ = item.indices(shape[axis])
        else:
            raise UnsupportedModelError(
                f"{where}: indexing with {item!r} (tensor, stepped or computed index) is {NOT_IN_FORMAT}"
            )
        if (start, end) != (0, shape[axis]):
            if axis == 0:
                raise UnsupportedModelError(f"{where}: indexing the batch dimension is {NOT_IN_FORMAT}")
            if end <= start:
                raise UnsupportedModelError(f"{where}: empty slice [{start}:{end}] on axis {axis}")
            name = f"{node.name}_axis{axis}"
            b.nodes.append(
                Node("Slice", name, (value,), (name,), {}, {"axis": axis, "start": start, "end": end})
            )
            value, sliced[axis] = name, end - start
        axis += 1
    target = _shape(node)
    if tuple(sliced) == tuple(target):
        b.alias[node.name] = value
        b.float_value = value
        return
    if target[0] != shape[0]:
        raise UnsupportedModelError(f"{where}: indexing that moves the batch dimension is {NOT_IN_FORMAT}")
    b.nodes.append(Node("Reshape", node.name, (value,), (node.name,), {}, {"shape": list(target[1:])}))
    b.float_value = node.name


def _select(b: _Builder, node: fx.Node, where: str) -> None:
    rank = len(_shape(node.args[0]))
    dim, index = _arg(node, 1, "dim", 0) % rank, _arg(node, 2, "index", 0)
    if dim == 0 or not isinstance(index, int):
        raise UnsupportedModelError(
            f"{where}: select on the batch dimension or by a computed index is {NOT_IN_FORMAT}"
        )
    _index(b, node, where, (slice(None),) * dim + (index,))


def _reshape_to_recorded(b: _Builder, node: fx.Node, where: str) -> None:
    """unsqueeze/squeeze on non-batch axes: a Reshape to the recorded shape."""
    source, target = _shape(node.args[0]), _shape(node)
    if target[0] != source[0] or (node.target == "unsqueeze" and _arg(node, 1, "dim", 0) % len(target) == 0):
        raise UnsupportedModelError(f"{where}: {node.target} on the batch dimension is {NOT_IN_FORMAT}")
    if source == target:
        _identity(b, node, where)
        return
    b.add("Reshape", node, _unary_input(b, node, where), attrs={"shape": list(target[1:])})


def _simple(op: str) -> Callable[[_Builder, fx.Node, str], None]:
    return lambda b, n, w: b.add(op, n, _unary_input(b, n, w))


FUNCTION_HANDLERS: dict[Any, Callable[[_Builder, fx.Node, str], None]] = {
    F.relu: _simple("Relu"),
    torch.relu: _simple("Relu"),
    F.relu6: _simple("Relu6"),
    torch.sigmoid: _simple("Sigmoid"),
    F.sigmoid: _simple("Sigmoid"),
    torch.tanh: _simple("Tanh"),
    F.tanh: _simple("Tanh"),
    F.hardswish: _simple("Hardswish"),
    F.hardsigmoid: _simple("Hardsigmoid"),
    F.silu: _simple("Silu"),
    F.adaptive_avg_pool2d: _adaptive("AdaptiveAvgPool2d"),
    F.adaptive_max_pool2d: _adaptive("AdaptiveMaxPool2d"),
    torch.flatten: lambda b, n, w: _flatten(b, n, w, _arg(n, 1, "start_dim", 0), _arg(n, 2, "end_dim", -1)),
    F.softmax: lambda b, n, w: _softmax(b, n, w, _arg(n, 1, "dim", None)),
    torch.softmax: lambda b, n, w: _softmax(b, n, w, _arg(n, 1, "dim", None)),
    operator.add: _binary("Add"),
    operator.iadd: _binary("Add"),
    torch.add: _binary("Add"),
    operator.mul: _binary("Mul"),
    operator.imul: _binary("Mul"),
    torch.mul: _binary("Mul"),
    operator.truediv: _binary("Div"),
    torch.div: _binary("Div"),
    torch.cat: _cat,
    torch.concat: _cat,
    torch.reshape: _reshape,
    torch.transpose: _transpose,
    torch.permute: _permute,
    torch.mean: _mean,
    torch.chunk: _chunk_or_split,
    torch.split: _chunk_or_split,
    torch.narrow: _narrow,
    operator.getitem: _getitem,
    F.dropout: _dropout_function,
    F.linear: _functional_linear,
    F.layer_norm: lambda b, n, w: _layer_norm(
        b,
        n,
        w,
        _arg(n, 1, "normalized_shape", None),
        _arg(n, 2, "weight", None),
        _arg(n, 3, "bias", None),
        _arg(n, 4, "eps", 1e-5),
        n.name,
    ),
    F.gelu: lambda b, n, w: _gelu(b, n, w, n.kwargs.get("approximate", "none")),
    operator.matmul: _matmul,
    torch.matmul: _matmul,
    torch.bmm: _matmul,
    F.scaled_dot_product_attention: _sdpa,
    torch.select: _select,
    torch.unsqueeze: _reshape_to_recorded,
    torch.squeeze: _reshape_to_recorded,
}

METHOD_HANDLERS: dict[str, Callable[[_Builder, fx.Node, str], None]] = {
    "relu": _simple("Relu"),
    "sigmoid": _simple("Sigmoid"),
    "tanh": _simple("Tanh"),
    "view": _reshape,
    "reshape": _reshape,
    "flatten": FUNCTION_HANDLERS[torch.flatten],
    "softmax": lambda b, n, w: _softmax(b, n, w, _arg(n, 1, "dim", None)),
    "add": _binary("Add"),
    "mul": _binary("Mul"),
    "div": _binary("Div"),
    "transpose": _transpose,
    "permute": _permute,
    "mean": _mean,
    "chunk": _chunk_or_split,
    "split": _chunk_or_split,
    "narrow": _narrow,
    "contiguous": _identity,
    "matmul": _matmul,
    "bmm": _matmul,
    "expand": _expand,
    "select": _select,
    "unsqueeze": _reshape_to_recorded,
    "squeeze": _reshape_to_recorded,
}


def _stochastic_depth_function() -> Any:
    """torchvision.ops.stochastic_depth when torchvision is imported (fx traces into StochasticDepth)."""
    import sys

    module = sys.modules.get("torchvision.ops.stochastic_depth")
    return getattr(module, "stochastic_depth", None)


def _is_shape_value(node: fx.Node) -> bool:
    """Integer plumbing (x.size(), x.shape[1] // 2, …): folded, since reshapes use recorded shapes."""
    if node.op == "call_method" and node.target in ("size", "dim"):
        return True
    if node.op == "call_function" and node.target is getattr and node.args[1] in ("shape", "ndim"):
        return True
    if node.op != "call_function" or _is_tensor_node(node) or "tensor_meta" in node.meta:
        return False
    # a result that is not a tensor and was computed only from shape values and constants
    inputs = [a for a in (*node.args, *node.kwargs.values()) if isinstance(a, fx.Node)]
    return bool(inputs) and all(not _is_tensor_node(a) and a.op != "placeholder" for a in inputs)


def module_path(node: fx.Node) -> str:
    """The qualified path of the module whose forward made this call (fx's nn_module_stack), or "model"."""
    stack = node.meta.get("nn_module_stack") or {}
    if stack:
        path, _ = list(stack.values())[-1]
        return str(path) or "model"
    return "model"


def _describe_call(node: fx.Node) -> str:
    """``torch.nn.functional.gelu``, ``.unsqueeze()``: what the user wrote."""
    if node.op == "call_method":
        return f"tensor method .{node.target}()"
    target = node.target
    module = getattr(target, "__module__", None) or ""
    name = getattr(target, "__name__", str(target))
    if module in ("_operator", "operator"):
        return f"operator {name}"
    if module.startswith("torch._C._nn"):
        module = "torch.nn.functional"
    elif module.startswith("torch._C") or not module:
        module = "torch"
    return f"function {module}.{name}"


# ------------------------------------------------------------------------------------------ pack


def _trace(model: nn.Module) -> fx.GraphModule:
    try:
        return fx.GraphModule(model, _LeafTracer().trace(model))
    except Exception as exc:  # fx raises many types for untraceable code
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnsupportedModelError(
            f"torch.fx cannot trace {type(model).__name__} ({type(exc).__name__}: {first}); data-dependent "
            "control flow in forward is not supported"
        ) from exc


def _module_handler(module: nn.Module) -> Callable[[_Builder, fx.Node, str, nn.Module], None] | None:
    handler = MODULE_HANDLERS.get(type(module))
    if handler is None and isinstance(module, CompressedLayer):
        handler = {"Linear": _linear, "Embedding": _embedding}.get(module.hpk_op, _conv2d)
    return handler


def capture(model: nn.Module, example_input: torch.Tensor) -> tuple[fx.GraphModule, list[Node], _Builder]:
    """Trace ``model`` (which should be in eval mode) and translate it into .hpk nodes (no file written)."""
    graph_module = _trace(model)
    modules = dict(graph_module.named_modules())
    for node in graph_module.graph.nodes:  # name an unsupported layer before the input's dtype matters
        if node.op == "call_module" and _module_handler(modules[node.target]) is None:
            layer = type(modules[node.target]).__name__
            raise UnsupportedModelError(f"{node.target}: layer {layer} is not supported: {NOT_IN_FORMAT}")
    integer = not example_input.dtype.is_floating_point and example_input.dtype != torch.bool
    if example_input.dtype != torch.float32 and not integer:
        raise UnsupportedModelError(
            f"example_input has dtype {example_input.dtype}: the .hpk graph input is float32, or int32 "
            "token ids given as an integer tensor (docs/FORMAT.md §3)"
        )
    if integer and example_input.numel() and example_input.abs().max() >= 2**24:
        raise UnsupportedModelError(
            "example_input holds token ids of magnitude >= 2^24; .hpk int32 inputs are recorded exactly only "
            "below 2^24 (docs/FORMAT.md §3)"
        )
    # e.g. attention weights computed but not used; an unused in-place call (x.relu_()) is kept, so
    # it still reaches its handler (and its error) instead of silently vanishing
    graph_module.graph.eliminate_dead_code(is_impure_node=_may_mutate)
    if integer:
        _check_ids_users(graph_module, modules, example_input.dtype)
    graph_module.recompile()
    with torch.no_grad():
        ShapeProp(graph_module).propagate(example_input)
    builder = _Builder(model)
    input_node = next(n for n in graph_module.graph.nodes if n.op == "placeholder")
    if integer:
        builder.ids_input = input_node.name
    else:
        builder.float_value = input_node.name
    stochastic_depth = _stochastic_depth_function()
    for node in graph_module.graph.nodes:
        if node.op in ("placeholder", "output") or _is_shape_value(node):
            continue
        if node.op == "get_attr":
            builder.consts[node.name] = _fetch_attr(graph_module, node.target)
            builder.const_names[node.name] = node.target
            continue
        if _fold_constant(builder, node):
            continue
        if node.op == "call_module":
            module = modules[node.target]
            _check_layout(builder, node, node.target, type(module), module)
            _module_handler(module)(builder, node, node.target, module)  # type: ignore[misc]
            continue
        where = f"{module_path(node)} ({node.name})"
        _check_layout(builder, node, where, node.target)
        if node.op == "call_function":
            handler = FUNCTION_HANDLERS.get(node.target)
            if handler is None and stochastic_depth is not None and node.target is stochastic_depth:
                handler = _stochastic_depth
        elif node.op == "call_method":
            handler = METHOD_HANDLERS.get(node.target)
        else:
            raise UnsupportedModelError(f"{where}: fx op {node.op} ({node.target}) is not supported")
        if handler is None:
            raise UnsupportedModelError(f"{where}: {_describe_call(node)} is not supported: {NOT_IN_FORMAT}")
        handler(builder, node, where)
    return graph_module, builder.nodes, builder


# What may consume a value held sequence-first ([L, N, …], see _Builder.swapped): ops acting on the last
# dims or elementwise, which compute the same on the batch-first .hpk value. Their output is swapped too.
_SEQUENCE_FIRST_SAFE: tuple[Any, ...] = (
    nn.Linear,
    nn.modules.linear.NonDynamicallyQuantizableLinear,
    nn.LayerNorm,
    nn.ReLU,
    nn.GELU,
    nn.Dropout,
    nn.Identity,
    F.relu,
    torch.relu,
    F.gelu,
    F.dropout,
    F.linear,
    operator.add,
    operator.iadd,
    torch.add,
    "contiguous",
    "relu",
)


def _check_layout(
    b: _Builder, node: fx.Node, where: str, target: Any, module: nn.Module | None = None
) -> None:
    """Refuse a sequence-first value where the layout matters; mark the outputs of safe ops swapped."""
    swapped = [a for a in node.all_input_nodes if a.name in b.swapped]
    if not swapped or target in (torch.transpose, torch.permute, "transpose", "permute"):
        return
    safe = target in _SEQUENCE_FIRST_SAFE or (
        isinstance(target, type) and issubclass(target, CompressedLayer) and target.hpk_op == "Linear"
    )
    if isinstance(module, nn.LayerNorm) and len(module.normalized_shape) >= len(_shape(node)) - 1:
        safe = False  # it would normalize over the batch/sequence axes, which the swap exchanges
    tensors = [a for a in node.all_input_nodes if _is_tensor_node(a) and a.name not in b.consts]
    if not safe or len(swapped) != len(tensors):
        raise UnsupportedModelError(
            f"{where}: {swapped[0].name} is laid out [sequence, batch, …] (transpose(0, 1) / batch_first=False) "
            "and this op depends on the layout; use batch_first=True, or transpose back first"
        )
    b.swapped.add(node.name)


def _may_mutate(node: fx.Node) -> bool:
    """Whether dead-code elimination must keep ``node`` (placeholders, outputs, in-place calls, modules)."""
    if node.op in ("placeholder", "output", "call_module"):
        return True
    name = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", "")
    in_place_operator = node.target in (operator.iadd, operator.isub, operator.imul, operator.itruediv)
    return node.is_impure() or in_place_operator or (name.endswith("_") and not name.endswith("__"))


def _check_ids_users(graph_module: fx.GraphModule, modules: dict[str, nn.Module], dtype: torch.dtype) -> None:
    """An integer input (token ids) may only feed embedding layers (before running anything on it)."""
    placeholder = next(n for n in graph_module.graph.nodes if n.op == "placeholder")
    for user in placeholder.users:
        module = modules.get(user.target) if user.op == "call_module" else None
        if isinstance(module, nn.Embedding) or getattr(module, "hpk_op", None) == "Embedding":
            continue
        what = type(module).__name__ if module is not None else _describe_call(user)
        raise UnsupportedModelError(
            f"example_input has dtype {dtype} (token ids) but feeds {what} ({user.name}): an integer graph "
            "input (int32 in the .hpk graph) may only feed nn.Embedding; pass float32 inputs otherwise"
        )


def _fetch_attr(module: nn.Module, target: str) -> torch.Tensor:
    value: Any = module
    for part in target.split("."):
        value = getattr(value, part)
    if not isinstance(value, torch.Tensor):
        raise UnsupportedModelError(f"{target}: attribute used in forward is not a tensor")
    return value.detach()


def _fold_constant(b: _Builder, node: fx.Node) -> bool:
    """Compute at pack time a call whose tensor arguments are all pack-time constants (a weight's
    slice, a transposed parameter); True if folded."""
    if node.op not in ("call_function", "call_method"):
        return False
    inputs = [a for a in node.all_input_nodes]
    if not inputs or not all(a.name in b.consts for a in inputs):
        return False
    args, kwargs = fx.node.map_arg((node.args, node.kwargs), lambda a: b.consts[a.name])
    with torch.no_grad():
        if node.op == "call_method":
            result = getattr(args[0], node.target)(*args[1:], **kwargs)
        else:
            result = node.target(*args, **kwargs)
    if not isinstance(result, torch.Tensor):
        return False
    b.consts[node.name] = result.detach()
    return True


def build_hpk(model: nn.Module, example_input: torch.Tensor, golden: Golden = None) -> HpkFile:
    """The HpkFile for ``model`` in eval mode (weights, graph, and ``golden`` the golden self-check, see ``pack``).

    A model in training mode is packed in eval mode (with a warning) and handed back in the modes
    its modules had.
    """
    example_input = example_input.detach()
    modes = {module: module.training for module in model.modules()}
    if model.training:
        warnings.warn(
            f"pack: {type(model).__name__} was in training mode; packing it in eval mode "
            "(Dropout off, BatchNorm running statistics) and restoring its mode afterwards",
            stacklevel=3,
        )
    model.eval()
    try:
        return _build(model, example_input, golden)
    finally:
        for module, training in modes.items():
            module.training = training


def _build(model: nn.Module, example_input: torch.Tensor, golden: Golden) -> HpkFile:
    graph_module, nodes, builder = capture(model, example_input)
    output_nodes = [n for n in graph_module.graph.nodes if n.op == "output"]
    result = output_nodes[0].args[0]
    if not _is_tensor_node(result):
        raise UnsupportedModelError("the model must return a single tensor")
    if result.name in builder.swapped:
        raise UnsupportedModelError(
            "the model returns a [sequence, batch, …] value (transpose(0, 1) / batch_first=False): the .hpk "
            "output has the batch first; transpose it back"
        )
    output_name = builder.alias.get(result.name, result.name)
    input_node = next(n for n in graph_module.graph.nodes if n.op == "placeholder")
    input_shape = (None, *example_input.shape[1:])
    output_shape = (None, *_shape(result)[1:])
    if output_name == input_node.name:
        raise UnsupportedModelError("the model returns its input unchanged")
    dtype = "int32" if builder.ids_input is not None else "float32"
    hpk = HpkFile(
        inputs=[ValueInfo(input_node.name, input_shape, dtype)],
        outputs=[ValueInfo(output_name, output_shape)],
        spaces=builder.spaces,
        params=builder.params,
        nodes=nodes,
        tensors=builder.tensors,
        producer=f"hashpack {hashpack.__version__}",
    )
    _check_unique_seeds(hpk)
    _add_golden(hpk, model, golden, example_input)
    return hpk


def golden_budget(hpk: HpkFile) -> int:
    """Bytes the default golden section may take: max(16 KiB, 1% of the stored values' bytes)."""
    stored = sum(int(array.nbytes) for array in hpk.tensors.values())
    return max(GOLDEN_BUDGET_FLOOR, int(stored * GOLDEN_BUDGET_FRACTION))


def _default_golden_count(hpk: HpkFile) -> int:
    per_sample_in = math.prod(hpk.input.shape[1:])  # type: ignore[arg-type]
    per_sample_out = math.prod(hpk.output.shape[1:]) * 4  # type: ignore[arg-type]
    count = min(DEFAULT_GOLDEN, golden_budget(hpk) // per_sample_out, MAX_GENERATED_VALUES // per_sample_in)
    if count < 1:
        warnings.warn(
            f"no golden self-check stored: one output ({per_sample_out} bytes) exceeds the golden budget of "
            f"{golden_budget(hpk)} bytes; pass golden=1 to store one anyway",
            stacklevel=4,
        )
    return count


def _run(model: nn.Module, inputs: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return model(inputs).detach().float().numpy().astype(np.float32)


def _add_golden(hpk: HpkFile, model: nn.Module, golden: Golden, example_input: torch.Tensor) -> None:
    """Record the self-check: outputs for inputs regenerated from a seed, or for the caller's inputs.

    Token ids (an int32 input) cannot come from the float generator: a count then stores the
    example input's first rows instead."""
    if hpk.input.dtype == "int32" and not isinstance(golden, (np.ndarray, torch.Tensor)):
        count = _default_golden_count(hpk) if golden is None else int(golden)
        golden = example_input[:count] if count > 0 else 0
    if isinstance(golden, (np.ndarray, torch.Tensor)):
        inputs = torch.as_tensor(np.asarray(golden, dtype=np.float32))
        expected = tuple(hpk.input.shape[1:])
        if inputs.ndim != len(expected) + 1 or tuple(inputs.shape[1:]) != expected or inputs.shape[0] < 1:
            raise ValueError(
                f"golden inputs {list(inputs.shape)} do not match the model's [N, {list(expected)}]"
            )
        if not torch.isfinite(inputs).all():
            raise ValueError("golden inputs hold NaN or infinite values")
        per_sample_out = math.prod(hpk.output.shape[1:]) * 4  # type: ignore[arg-type]
        size = inputs.numel() * 4 + inputs.shape[0] * per_sample_out
        if inputs.shape[0] > MAX_STORED_GOLDEN_SAMPLES or size > MAX_STORED_GOLDEN_BYTES:  # before running it
            raise ValueError(
                f"{inputs.shape[0]} golden inputs take {size} bytes with their outputs; stored golden inputs are "
                f"capped at {MAX_STORED_GOLDEN_SAMPLES} samples and {MAX_STORED_GOLDEN_BYTES} bytes: pass fewer"
            )
        model_inputs = inputs.long() if hpk.input.dtype == "int32" else inputs
        outputs = _run(model, model_inputs)
        hpk.tensors["golden/inputs"] = inputs.numpy().astype(np.float32)
        hpk.tensors["golden/outputs"] = outputs
        hpk.golden = {"inputs": "golden/inputs", "outputs": "golden/outputs"}
        return
    count = _default_golden_count(hpk) if golden is None else int(golden)
    if count <= 0:
        return
    if count > MAX_GENERATED_COUNT:
        raise ValueError(f"golden={count}: at most {MAX_GENERATED_COUNT} generated golden samples")
    inputs = generated_inputs(GOLDEN_SEED, count, hpk.input.shape[1:])  # type: ignore[arg-type]
    hpk.tensors["golden/outputs"] = _run(model, torch.from_numpy(inputs))
    hpk.golden = {
        "generator": GENERATOR_NAME,
        "seed": GOLDEN_SEED,
        "count": count,
        "outputs": "golden/outputs",
    }


def _check_unique_seeds(hpk: HpkFile) -> None:
    seen: dict[int, str] = {}
    for param in hpk.params.values():
        seed = param.spec.get("seed")
        if seed is None:
            continue
        if seed in seen:
            raise UnsupportedModelError(
                f"params {seen[seed]!r} and {param.name!r} share seed {seed}: they would share a bucket map; "
                "give the layers different seeds"
            )
        seen[seed] = param.name


def pack(
    model: nn.Module, example_input: torch.Tensor, path: str | os.PathLike[str], golden: Golden = None
) -> HpkFile:
    """Capture ``model`` in eval mode and write it to ``path`` (atomically); returns what was written.

    ``example_input`` is a float32 batch shaped like the model's input (or an integer tensor of token
    ids, which becomes an int32 graph input feeding nn.Embedding), used for tracing. The golden
    self-check lets any runtime check itself: by default (``golden=None``) up to 8 inputs
    regenerated from a seed (docs/FORMAT.md §3) with only the model's outputs stored, within
    max(16 KiB, 1% of the stored values' bytes); ``golden=n`` stores outputs for exactly ``n``
    generated inputs (0: none); ``golden=array`` stores those real inputs and their outputs
    (at most 64 samples and 16 MiB).
    """
    hpk = build_hpk(model, example_input, golden)
    write_hpk(hpk, path)
    return hpk

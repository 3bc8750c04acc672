"""``pack(model, example_input, path)``: capture a torch model's graph into a .hpk file.

torch.fx traces the model with every ``nn`` layer (and hashpack's compressed layers) as a leaf;
shapes come from running the example input through the traced graph. Each fx node is translated
by one small handler into the op vocabulary of docs/FORMAT.md §5; anything else is an error
naming the op and the module path.
"""

from __future__ import annotations

import math
import operator
import os
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

from .nn.entries import CompressedLayer

DEFAULT_GOLDEN = 8  # generated golden samples by default, fewer if their outputs exceed the budget
GOLDEN_BUDGET_FLOOR = 16 * 1024  # default golden bytes <= max(16 KiB, 1% of the stored values' bytes)
GOLDEN_BUDGET_FRACTION = 0.01
MAX_STORED_GOLDEN_SAMPLES = 64  # cap on user-supplied golden inputs (pack(..., golden=array))
MAX_STORED_GOLDEN_BYTES = 16 * 1024 * 1024
GOLDEN_SEED = derive_seed(0, "golden")
Golden = int | np.ndarray | torch.Tensor | None


class UnsupportedModelError(ValueError):
    """The model uses an op or layer configuration that .hpk cannot represent (message names it)."""


class _LeafTracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, CompressedLayer) or super().is_leaf_module(m, qualname)


@dataclass
class _Builder:
    """Accumulates the .hpk graph while the fx nodes are visited."""

    model: nn.Module
    spaces: dict[str, Space] = field(default_factory=dict)
    params: dict[str, Param] = field(default_factory=dict)
    tensors: dict[str, np.ndarray] = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)
    alias: dict[str, str] = field(default_factory=dict)  # fx value -> .hpk value (identity ops)

    def value(self, arg: Any, where: str) -> str:
        if not isinstance(arg, fx.Node):
            raise UnsupportedModelError(f"{where}: expected a tensor input, got constant {arg!r}")
        return self.alias.get(arg.name, arg.name)

    def add(self, op: str, fx_node: fx.Node, inputs: list[str], params=None, attrs=None) -> None:
        self.nodes.append(Node(op, fx_node.name, tuple(inputs), (fx_node.name,), params or {}, attrs or {}))

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


# ---------------------------------------------------------------------------------- module handlers


def _linear(b: _Builder, node: fx.Node, path: str, m: nn.Module) -> None:
    b.add("Linear", node, [b.value(node.args[0], path)], b.layer_params(path, m))


def _conv2d(b: _Builder, node: fx.Node, path: str, m: nn.Module) -> None:
    padding = m.padding
    if isinstance(padding, str) or getattr(m, "padding_mode", "zeros") != "zeros":
        raise UnsupportedModelError(
            f"{path}: Conv2d padding={padding!r} mode={m.padding_mode!r} is not supported"
        )
    attrs = {
        "stride": _pair_attr(m.stride),
        "padding": _pair_attr(padding),
        "dilation": _pair_attr(m.dilation),
        "groups": int(m.groups),
    }
    b.add("Conv2d", node, [b.value(node.args[0], path)], b.layer_params(path, m), attrs)


def _batch_norm(b: _Builder, node: fx.Node, path: str, m: nn.Module) -> None:
    if not m.track_running_stats or m.running_mean is None or not m.affine:
        raise UnsupportedModelError(f"{path}: BatchNorm needs affine=True and running statistics")
    params = {
        slot: b.dense(f"{path}.{slot}", getattr(m, slot))
        for slot in ("weight", "bias", "running_mean", "running_var")
    }
    b.add("BatchNorm", node, [b.value(node.args[0], path)], params, {"eps": float(m.eps)})


def _max_pool(b: _Builder, node: fx.Node, path: str, m: nn.Module) -> None:
    if m.ceil_mode or m.return_indices:
        raise UnsupportedModelError(f"{path}: MaxPool2d with ceil_mode/return_indices is not supported")
    attrs = {
        "kernel": _pair_attr(m.kernel_size),
        "stride": _pair_attr(m.stride if m.stride is not None else m.kernel_size),
        "padding": _pair_attr(m.padding),
        "dilation": _pair_attr(m.dilation),
    }
    b.add("MaxPool2d", node, [b.value(node.args[0], path)], attrs=attrs)


def _avg_pool(b: _Builder, node: fx.Node, path: str, m: nn.Module) -> None:
    if m.ceil_mode or m.divisor_override is not None:
        raise UnsupportedModelError(f"{path}: AvgPool2d with ceil_mode/divisor_override is not supported")
    attrs = {
        "kernel": _pair_attr(m.kernel_size),
        "stride": _pair_attr(m.stride if m.stride is not None else m.kernel_size),
        "padding": _pair_attr(m.padding),
        "count_include_pad": bool(m.count_include_pad),
    }
    b.add("AvgPool2d", node, [b.value(node.args[0], path)], attrs=attrs)


def _adaptive_avg_pool(b: _Builder, node: fx.Node, path: str, m: nn.Module) -> None:
    if _pair_attr(m.output_size) != [1, 1]:
        raise UnsupportedModelError(
            f"{path}: AdaptiveAvgPool2d supports output_size=1 only, got {m.output_size}"
        )
    b.add("GlobalAvgPool", node, [b.value(node.args[0], path)])


def _unary(op: str) -> Callable[[_Builder, fx.Node, str, nn.Module], None]:
    def handle(b: _Builder, node: fx.Node, path: str, m: nn.Module) -> None:
        b.add(op, node, [b.value(node.args[0], path)])

    return handle


def _identity(b: _Builder, node: fx.Node, path: str, m: nn.Module) -> None:
    b.alias[node.name] = b.value(node.args[0], path)


def _flatten_module(b: _Builder, node: fx.Node, path: str, m: nn.Module) -> None:
    _flatten(b, node, path, m.start_dim, m.end_dim)


def _softmax_module(b: _Builder, node: fx.Node, path: str, m: nn.Module) -> None:
    _softmax(b, node, path, m.dim)


def _relu6_or_hardtanh(b: _Builder, node: fx.Node, path: str, m: nn.Module) -> None:
    if (m.min_val, m.max_val) != (0.0, 6.0):
        raise UnsupportedModelError(f"{path}: Hardtanh({m.min_val}, {m.max_val}) is not supported (ReLU6 is)")
    b.add("Relu6", node, [b.value(node.args[0], path)])


MODULE_HANDLERS: dict[type, Callable[[_Builder, fx.Node, str, nn.Module], None]] = {
    nn.Linear: _linear,
    nn.Conv2d: _conv2d,
    nn.BatchNorm1d: _batch_norm,
    nn.BatchNorm2d: _batch_norm,
    nn.ReLU: _unary("Relu"),
    nn.ReLU6: _relu6_or_hardtanh,
    nn.Sigmoid: _unary("Sigmoid"),
    nn.Tanh: _unary("Tanh"),
    nn.MaxPool2d: _max_pool,
    nn.AvgPool2d: _avg_pool,
    nn.AdaptiveAvgPool2d: _adaptive_avg_pool,
    nn.Flatten: _flatten_module,
    nn.Dropout: _identity,
    nn.Identity: _identity,
    nn.Softmax: _softmax_module,
}


# ------------------------------------------------------------------------------- function handlers


def _flatten(b: _Builder, node: fx.Node, where: str, start_dim: int = 0, end_dim: int = -1) -> None:
    rank = len(_shape(node.args[0]))
    start = start_dim % rank
    if end_dim % rank != rank - 1 or start == 0:
        raise UnsupportedModelError(f"{where}: flatten({start_dim}, {end_dim}) must keep the batch dimension")
    b.add("Flatten", node, [b.value(node.args[0], where)], attrs={"start_dim": start})


def _softmax(b: _Builder, node: fx.Node, where: str, dim: int | None) -> None:
    rank = len(_shape(node.args[0]))
    if dim is None or dim % rank == 0:
        raise UnsupportedModelError(f"{where}: softmax over dim={dim} (the batch dimension) is not supported")
    b.add("Softmax", node, [b.value(node.args[0], where)], attrs={"axis": dim % rank})


def _reshape(b: _Builder, node: fx.Node, where: str) -> None:
    source, target = _shape(node.args[0]), _shape(node)
    if target[0] != source[0]:
        raise UnsupportedModelError(f"{where}: reshape to {list(target)} changes the batch dimension")
    b.add("Reshape", node, [b.value(node.args[0], where)], attrs={"shape": list(target[1:])})


def _binary_add(b: _Builder, node: fx.Node, where: str) -> None:
    inputs = [b.value(arg, where) for arg in node.args[:2]]
    if len(node.args) != 2 or node.kwargs.get("alpha", 1) != 1:
        raise UnsupportedModelError(f"{where}: only a + b of two tensors is supported")
    if _shape(node) != _shape(node.args[0]):
        inputs.reverse()
        if _shape(node) != _shape(node.args[1]):
            raise UnsupportedModelError(f"{where}: add with broadcasting of both inputs is not supported")
    b.add("Add", node, inputs)


def _cat(b: _Builder, node: fx.Node, where: str) -> None:
    tensors = node.args[0]
    dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
    rank = len(_shape(node))
    if dim % rank == 0:
        raise UnsupportedModelError(f"{where}: concatenation along the batch dimension is not supported")
    b.add("Concat", node, [b.value(t, where) for t in tensors], attrs={"axis": dim % rank})


def _shape(node: Any) -> tuple[int, ...]:
    meta = node.meta.get("tensor_meta") if isinstance(node, fx.Node) else None
    if meta is None or not hasattr(meta, "shape"):
        raise UnsupportedModelError(f"{node}: no tensor shape recorded (is it a tensor?)")
    return tuple(meta.shape)


def _arg(node: fx.Node, index: int, name: str, default: Any) -> Any:
    return node.args[index] if len(node.args) > index else node.kwargs.get(name, default)


FUNCTION_HANDLERS: dict[Any, Callable[[_Builder, fx.Node, str], None]] = {
    F.relu: lambda b, n, w: b.add("Relu", n, [b.value(n.args[0], w)]),
    torch.relu: lambda b, n, w: b.add("Relu", n, [b.value(n.args[0], w)]),
    F.relu6: lambda b, n, w: b.add("Relu6", n, [b.value(n.args[0], w)]),
    torch.sigmoid: lambda b, n, w: b.add("Sigmoid", n, [b.value(n.args[0], w)]),
    F.sigmoid: lambda b, n, w: b.add("Sigmoid", n, [b.value(n.args[0], w)]),
    torch.tanh: lambda b, n, w: b.add("Tanh", n, [b.value(n.args[0], w)]),
    F.tanh: lambda b, n, w: b.add("Tanh", n, [b.value(n.args[0], w)]),
    torch.flatten: lambda b, n, w: _flatten(b, n, w, _arg(n, 1, "start_dim", 0), _arg(n, 2, "end_dim", -1)),
    F.softmax: lambda b, n, w: _softmax(b, n, w, _arg(n, 1, "dim", None)),
    torch.softmax: lambda b, n, w: _softmax(b, n, w, _arg(n, 1, "dim", None)),
    operator.add: _binary_add,
    torch.add: _binary_add,
    torch.cat: _cat,
    torch.reshape: _reshape,
    F.dropout: lambda b, n, w: _identity(b, n, w, None),  # type: ignore[arg-type]
}

METHOD_HANDLERS: dict[str, Callable[[_Builder, fx.Node, str], None]] = {
    "relu": FUNCTION_HANDLERS[torch.relu],
    "sigmoid": FUNCTION_HANDLERS[torch.sigmoid],
    "tanh": FUNCTION_HANDLERS[torch.tanh],
    "view": _reshape,
    "reshape": _reshape,
    "flatten": lambda b, n, w: _flatten(b, n, w, _arg(n, 1, "start_dim", 0), _arg(n, 2, "end_dim", -1)),
    "softmax": lambda b, n, w: _softmax(b, n, w, _arg(n, 1, "dim", None)),
    "add": _binary_add,
    "contiguous": lambda b, n, w: _identity(b, n, w, None),  # type: ignore[arg-type]
}

# Integer plumbing (x.size(0), x.shape[0]) only feeds reshapes, whose target shape is recorded.
_SHAPE_QUERIES = {"size", "dim"}


def _is_shape_query(node: fx.Node) -> bool:
    if node.op == "call_method" and node.target in _SHAPE_QUERIES:
        return True
    if node.op == "call_function" and node.target in (getattr, operator.getitem):
        return not isinstance(node.meta.get("tensor_meta"), TensorMetadata)
    return False


# ------------------------------------------------------------------------------------------ pack


def capture(model: nn.Module, example_input: torch.Tensor) -> tuple[fx.GraphModule, list[Node], _Builder]:
    """Trace ``model`` and translate it into .hpk nodes (no file written)."""
    model.eval()
    try:
        graph_module = fx.GraphModule(model, _LeafTracer().trace(model))
    except Exception as exc:  # fx raises many types for untraceable code
        raise UnsupportedModelError(f"torch.fx cannot trace {type(model).__name__}: {exc}") from exc
    with torch.no_grad():
        ShapeProp(graph_module).propagate(example_input)
    builder = _Builder(model)
    modules = dict(graph_module.named_modules())
    for node in graph_module.graph.nodes:
        if node.op in ("placeholder", "output") or _is_shape_query(node):
            continue
        if node.op == "call_module":
            module = modules[node.target]
            handler = MODULE_HANDLERS.get(type(module))
            if handler is None and isinstance(module, CompressedLayer):
                handler = _linear if module.hpk_op == "Linear" else _conv2d
            if handler is None:
                raise UnsupportedModelError(f"{node.target}: layer {type(module).__name__} is not supported")
            handler(builder, node, node.target, module)
        elif node.op == "call_function":
            handler = FUNCTION_HANDLERS.get(node.target)
            if handler is None:
                name = getattr(node.target, "__name__", str(node.target))
                raise UnsupportedModelError(f"{node.name}: function {name} is not supported")
            handler(builder, node, node.name)
        elif node.op == "call_method":
            handler = METHOD_HANDLERS.get(node.target)
            if handler is None:
                raise UnsupportedModelError(f"{node.name}: tensor method .{node.target}() is not supported")
            handler(builder, node, node.name)
        else:
            raise UnsupportedModelError(f"{node.name}: fx op {node.op} ({node.target}) is not supported")
    return graph_module, builder.nodes, builder


def build_hpk(model: nn.Module, example_input: torch.Tensor, golden: Golden = None) -> HpkFile:
    """The HpkFile for ``model`` (weights, graph, and the golden self-check, see ``pack``)."""
    example_input = example_input.detach().float()
    graph_module, nodes, builder = capture(model, example_input)
    output_nodes = [n for n in graph_module.graph.nodes if n.op == "output"]
    result = output_nodes[0].args[0]
    if not isinstance(result, fx.Node):
        raise UnsupportedModelError("the model must return a single tensor")
    output_name = builder.alias.get(result.name, result.name)
    input_node = next(n for n in graph_module.graph.nodes if n.op == "placeholder")
    input_shape = (None, *example_input.shape[1:])
    output_shape = (None, *_shape(result)[1:])
    if output_name == input_node.name:
        raise UnsupportedModelError("the model returns its input unchanged")
    hpk = HpkFile(
        inputs=[ValueInfo(input_node.name, input_shape)],
        outputs=[ValueInfo(output_name, output_shape)],
        spaces=builder.spaces,
        params=builder.params,
        nodes=nodes,
        tensors=builder.tensors,
        producer=f"hashpack {hashpack.__version__}",
    )
    _check_unique_seeds(hpk)
    _add_golden(hpk, model, golden)
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


def _add_golden(hpk: HpkFile, model: nn.Module, golden: Golden) -> None:
    """Record the self-check: outputs for inputs regenerated from a seed, or for the caller's inputs."""
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
        outputs = _run(model, inputs)
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
    """Capture ``model`` and write it to ``path`` (atomically); returns what was written.

    ``example_input`` is a batch shaped like the model's input (used for tracing). The golden
    self-check lets any runtime check itself: by default (``golden=None``) up to 8 inputs
    regenerated from a seed (docs/FORMAT.md §3) with only the model's outputs stored, within
    max(16 KiB, 1% of the stored values' bytes); ``golden=n`` stores outputs for exactly ``n``
    generated inputs (0: none); ``golden=array`` stores those real inputs and their outputs
    (at most 64 samples and 16 MiB).
    """
    hpk = build_hpk(model, example_input, golden)
    write_hpk(hpk, path)
    return hpk

"""Write the fixtures the Java decoder's tests check against (android_demo/hashpack-java).

Usage: ``python tests/java_fixtures.py OUT_DIR``. Torch models are compressed and packed into
``.hpk`` files; for each, the numpy runtime (``hashpack.runtime``) supplies the reference the Java
side must match: every decompressed param (raw float32, compared bit for bit) and the outputs for a
fixed input batch (compared within 1e-5). Everything is deterministic (fixed seeds).

Files written, all raw arrays little-endian float32 (or uint32 where noted):

- ``manifest.json``: ``{"models": [...], "f16_table": ..., "parity": ...}``; per model its files, input shape
  and batch, and ``params``: name, shape, offset and count (in floats) into the weights file;
- ``<model>.hpk``, ``<model>.weights.bin``, ``<model>.input.bin``, ``<model>.output.bin``;
- ``f16_table.bin``: the float32 bits (uint32) of every float16 bit pattern 0..65535, converted by
  numpy (the Java half-to-float conversion is checked against all of them);
- ``parity/``: damaged copies of the fixtures (random edits of the metadata or the tensor table,
  re-signed so the edit, not the checksum, decides) with the Python reader's verdict in
  ``parity.json``, and for files it accepts, the numpy outputs for a random batch: both readers must
  accept the same files and compute the same outputs.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import struct
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import hashpack
from hashpack.nn.layers import HashedModule
from hashpack.runtime import HpkFormatError, Model, load, parse_hpk, read_hpk, write_hpk

BATCH = 3
PARITY_BASES = ("mlp", "lenet5", "mixed", "rescnn", "lenet5_int8")
PARITY_PER_BASE = 50
PARITY_MAX_VIRTUAL = 20_000_000  # accepted files above this are not run (too slow for a test)
# values the parity edits put into the JSON trees: wrong types, edge integers, near-miss strings
_SCALARS = (None, True, False, 0.5, -0.0, 1e39, 1e-45, 1e300)
_INTEGERS = (0, 1, -1, 2, 3, 7, 64, 2**31 - 1, 2**31, 2**32, 2**63, 10**29, -(2**31))
_STRINGS = (
    "",
    "x",
    "Relu",
    "Gelu",
    "hashed",
    "dense",
    "float16",
    "int8",
    "F16",
    "I8",
    "golden/inputs",
    "fc1",
)
_STRUCTURES = ([], {}, [0, 1], [None, 10], [2, 2])
PALETTE: tuple[Any, ...] = _SCALARS + _INTEGERS + _STRINGS + _STRUCTURES


class MLP(nn.Module):
    """Hashed Linear layers with a dense last layer."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(64, 300)
        self.fc2 = nn.Linear(300, 100)
        self.fc3 = nn.Linear(100, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class LeNet5(nn.Module):
    """LeNet-5 with BatchNorm, a depthwise residual conv, view() and tanh."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(1, 6, 5, padding=2)
        self.b1 = nn.BatchNorm2d(6)
        self.pool = nn.MaxPool2d(2)
        self.c2 = nn.Conv2d(6, 16, 5)
        self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.b1(self.c1(x))))
        x = self.pool(F.relu(self.c2(x)))
        x = x + self.dw(x)
        x = x.view(x.size(0), -1)
        x = F.relu(self.fc1(x))
        x = torch.tanh(self.fc2(x))
        return self.fc3(x)


class ResCNN(nn.Module):
    """A small residual CNN on a non-square input: BatchNorm, depthwise, dilated, strided,
    grouped and asymmetric convs, ReLU6, global average pooling, BatchNorm1d."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.pw = nn.Conv2d(16, 16, 1)  # kept dense
        self.bn3 = nn.BatchNorm2d(16)
        self.down = nn.Conv2d(16, 32, 3, stride=2, padding=2, dilation=2)
        self.grouped = nn.Conv2d(32, 32, 3, padding=1, groups=4)
        self.asym = nn.Conv2d(32, 24, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(24, 10)
        self.bn_fc = nn.BatchNorm1d(10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.stem(x)))
        y = F.relu6(self.bn2(self.dw(x)))
        y = self.bn3(self.pw(y))
        x = F.relu(x + y)
        x = F.relu(self.down(x))
        x = x + self.grouped(x)
        x = F.relu(self.asym(x))
        x = torch.flatten(self.pool(x), 1)
        return self.bn_fc(self.fc(x))


class Mixed(nn.Module):
    """AvgPool2d (both count_include_pad), dilated MaxPool2d, Sigmoid, Concat, broadcast Add,
    Reshape with -1, Softmax over an inner axis and over the classes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.avg_excl = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.avg_incl = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=True)
        self.maxp = nn.MaxPool2d(3, stride=2, padding=1)
        self.maxd = nn.MaxPool2d(2, stride=1, padding=1, dilation=2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(24 * 8 * 8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        a = torch.sigmoid(self.avg_excl(x))
        b = torch.tanh(self.avg_incl(x))
        c = self.maxp(x)
        h = torch.cat([a, b, c], dim=1)
        h = h + self.gap(h)
        h = self.maxd(h)
        s = torch.softmax(h.reshape(h.size(0), 24, -1), dim=-1)
        s = s.reshape(s.size(0), -1)
        return F.softmax(self.fc(s), dim=1)


def _randomise_batchnorm(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.5, 0.5)


def _hashed_spaces(model: nn.Module) -> dict[str, HashedModule]:
    return {path: m for path, m in model.named_modules() if isinstance(m, HashedModule)}


def _quantize_spaces(model: nn.Module, dtype: str) -> dict[str, tuple[np.ndarray, float | None]]:
    """Round every hashed space of ``model`` to ``dtype`` storage, in place (so torch's golden
    outputs are those of the stored values); returns the stored array and scale per space name."""
    stored: dict[str, tuple[np.ndarray, float | None]] = {}
    for path, module in _hashed_spaces(model).items():
        values = module.space.detach().numpy().astype(np.float32)
        if dtype == "float16":
            raw: np.ndarray = values.astype(np.float16)
            scale = None
            dequantized = raw.astype(np.float32)
        else:
            scale32 = np.float32(np.abs(values).max() / 127)
            raw = np.clip(np.round(values / scale32), -127, 127).astype(np.int8)
            scale = float(scale32)
            dequantized = raw.astype(np.float32) * scale32
        with torch.no_grad():
            module.space.copy_(torch.from_numpy(dequantized))
        stored[path] = (raw, scale)
    return stored


def _store_spaces(path: Path, dtype: str, stored: dict[str, tuple[np.ndarray, float | None]]) -> None:
    """Rewrite the (float32) spaces of the .hpk at ``path`` as ``dtype`` storage."""
    hpk = read_hpk(path)
    for name, (raw, scale) in stored.items():
        space = hpk.spaces[name]
        hpk.spaces[name] = replace(space, dtype=dtype, scale=scale)
        hpk.tensors[space.tensor] = raw
    write_hpk(hpk, path)


def _model_cases() -> list[tuple[str, Callable[[], nn.Module], tuple[int, ...], dict]]:
    """(name, constructor, sample input shape, options)."""
    return [
        ("mlp", MLP, (64,), {"keep_dense": {"fc3"}}),
        ("lenet5", LeNet5, (1, 28, 28), {}),
        ("rescnn", ResCNN, (3, 16, 12), {"keep_dense": {"pw"}}),
        ("mixed", Mixed, (3, 16, 16), {}),
        ("mlp_fp16", MLP, (64,), {"space_dtype": "float16"}),
        ("lenet5_int8", LeNet5, (1, 28, 28), {"space_dtype": "int8"}),
        ("mlp_nogolden", MLP, (64,), {"golden": 0}),
    ]


def write_model(
    out: Path, name: str, make: Callable[[], nn.Module], shape: tuple[int, ...], options: dict
) -> dict:
    """Compress, pack and reference one model; returns its manifest entry."""
    torch.manual_seed(sum(map(ord, name)))
    model = make()
    _randomise_batchnorm(model)
    keep_dense = options.get("keep_dense", set())
    hashpack.compress(model, compression=1 / 8, filter_fn=lambda _m, path: path not in keep_dense)
    model.eval()
    space_dtype = options.get("space_dtype")
    stored = _quantize_spaces(model, space_dtype) if space_dtype else {}
    example = torch.randn(8, *shape)
    hpk_path = out / f"{name}.hpk"
    hashpack.pack(model, example, hpk_path, golden=options.get("golden", 8))
    if space_dtype:
        _store_spaces(hpk_path, space_dtype, stored)

    runtime = load(hpk_path)
    params = []
    chunks = []
    offset = 0
    for param_name, param in runtime.hpk.params.items():
        values = np.ascontiguousarray(runtime.weights[param_name], dtype="<f4").reshape(-1)
        params.append(
            {"name": param_name, "shape": list(param.shape), "offset": offset, "count": values.size}
        )
        chunks.append(values.tobytes())
        offset += values.size
    (out / f"{name}.weights.bin").write_bytes(b"".join(chunks))
    x = np.random.default_rng(len(name)).standard_normal((BATCH, *shape)).astype("<f4")
    y = runtime.run(x).astype("<f4")
    (out / f"{name}.input.bin").write_bytes(x.tobytes())
    (out / f"{name}.output.bin").write_bytes(y.tobytes())
    golden_error = None
    if runtime.golden_inputs is not None:
        golden_error = float(np.abs(runtime.run(runtime.golden_inputs) - runtime.golden_outputs).max())
    return {
        "name": name,
        "hpk": hpk_path.name,
        "weights": f"{name}.weights.bin",
        "input": f"{name}.input.bin",
        "output": f"{name}.output.bin",
        "batch": BATCH,
        "input_shape": list(shape),
        "output_shape": list(y.shape[1:]),
        "ops": sorted({node.op for node in runtime.hpk.nodes}),
        "space_dtypes": sorted({space.dtype for space in runtime.hpk.spaces.values()}),
        "schemes": sorted({param.scheme for param in runtime.hpk.params.values()}),
        "has_golden": runtime.golden_inputs is not None,
        "numpy_golden_max_error": golden_error,
        "params": params,
    }


def write_f16_table(out: Path) -> str:
    bits = np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float32).view("<u4")
    (out / "f16_table.bin").write_bytes(bits.tobytes())
    return "f16_table.bin"


def _pick(rng: random.Random) -> Any:
    return copy.deepcopy(rng.choice(PALETTE))


def _mutate(tree: dict[str, Any], rng: random.Random) -> str:
    """One random edit (add, remove or replace) somewhere in a JSON tree; returns a description."""
    container: Any = tree
    path: list[Any] = []
    key: Any = None
    while True:
        keys = list(container) if isinstance(container, dict) else list(range(len(container)))
        if not keys:
            break
        key = rng.choice(keys)
        child = container[key]
        if not isinstance(child, dict | list) or rng.random() < 0.25:
            break
        path.append(key)
        container, key = child, None
    action = rng.randrange(4)
    if key is None or action == 0:
        value = _pick(rng)
        if isinstance(container, dict):
            container[f"k{rng.randrange(3)}"] = value
        else:
            container.append(value)
        return f"add {value!r} at {path}"
    if action == 1:
        del container[key]
        return f"remove {[*path, key]}"
    value = _pick(rng)
    container[key] = value
    return f"set {[*path, key]} = {value!r}"


def _container_bytes(table: dict[str, Any], meta_text: str, data: bytes) -> bytes:
    """A signed .hpk container around an (edited) metadata text and tensor table."""
    digest = hashlib.sha256(meta_text.encode("utf-8"))
    digest.update(data)
    header = {"__metadata__": {"hashpack": meta_text, "hashpack.sha256": digest.hexdigest()}, **table}
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-(8 + len(raw)) % 8)
    return struct.pack("<Q", len(raw)) + raw + data


def write_parity_corpus(out: Path) -> str:
    """Damaged fixtures with the Python reader's verdict (and outputs when it accepts)."""
    corpus = out / "parity"
    corpus.mkdir(exist_ok=True)
    rng = random.Random(20240601)
    cases = []
    for base in PARITY_BASES:
        blob = (out / f"{base}.hpk").read_bytes()
        (length,) = struct.unpack_from("<Q", blob)
        header = json.loads(blob[8 : 8 + length])
        meta = json.loads(header.pop("__metadata__")["hashpack"])
        data = blob[8 + length :]
        for index in range(PARITY_PER_BASE):
            table, edited = copy.deepcopy(header), copy.deepcopy(meta)
            on_table = rng.random() < 0.25
            what = ("table: " if on_table else "") + _mutate(table if on_table else edited, rng)
            payload = _container_bytes(table, json.dumps(edited, sort_keys=True, separators=(",", ":")), data)
            name = f"{base}_{index:03d}"
            (corpus / f"{name}.hpk").write_bytes(payload)
            case: dict[str, Any] = {"file": f"parity/{name}.hpk", "edit": what}
            try:
                hpk = parse_hpk(payload, name)
            except HpkFormatError as exc:
                cases.append({**case, "accepted": False, "message": str(exc)})
                continue
            case["accepted"] = True
            if sum(p.numel for p in hpk.params.values()) <= PARITY_MAX_VIRTUAL:
                model = Model(hpk)
                x = np.random.default_rng(index).standard_normal((2, *hpk.input.shape[1:])).astype("<f4")
                try:
                    y = model.run(x)
                except HpkFormatError as exc:  # a file the reader accepted but cannot run
                    case["run_error"] = str(exc)
                else:
                    (corpus / f"{name}.input.bin").write_bytes(x.tobytes())
                    (corpus / f"{name}.output.bin").write_bytes(np.asarray(y, dtype="<f4").tobytes())
                    case["input"], case["output"] = f"parity/{name}.input.bin", f"parity/{name}.output.bin"
            cases.append(case)
    (out / "parity.json").write_text(json.dumps({"cases": cases}, indent=1) + "\n")
    return "parity.json"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} OUT_DIR", file=sys.stderr)
        return 2
    out = Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    models = [write_model(out, *case) for case in _model_cases()]
    manifest = {"models": models, "f16_table": write_f16_table(out), "parity": write_parity_corpus(out)}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    covered = sorted({op for m in models for op in m["ops"]})
    parity = json.loads((out / "parity.json").read_text())["cases"]
    accepted = sum(case["accepted"] for case in parity)
    print(f"wrote {len(models)} models to {out}; ops covered: {', '.join(covered)}")
    print(f"parity corpus: {len(parity)} damaged files, {accepted} accepted by the Python reader")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""Per-layer size accounting of a .hpk file (what ``hashpack inspect`` and ``profile`` show)."""

from __future__ import annotations

import os
from typing import Any

from .hpk import HpkFile
from .schemes import SCHEMES

FLOAT32_BYTES = 4


def _space_bytes(hpk: HpkFile, name: str) -> int:
    return int(hpk.tensors[hpk.spaces[name].tensor].nbytes)


def summarize(hpk: HpkFile, file_size: int | None = None) -> dict[str, Any]:
    """Layers (nodes with params): scheme, virtual params, stored values, bytes, compression ratio."""
    layers = []
    counted_spaces: set[str] = set()
    for node in hpk.nodes:
        if not node.params:
            continue
        virtual = stored = stored_bytes = 0
        schemes, details = [], {}
        for slot, name in node.params.items():
            param = hpk.params[name]
            virtual += param.numel
            schemes.append(param.scheme)
            scheme = SCHEMES[param.scheme]
            if param.scheme == "dense":
                stored += param.numel
                stored_bytes += param.numel * FLOAT32_BYTES
            for space in _spaces_of(scheme, param):
                if space not in counted_spaces:
                    counted_spaces.add(space)
                    stored += hpk.spaces[space].size
                    stored_bytes += _space_bytes(hpk, space)
                    details.setdefault("bucket_dtype", hpk.spaces[space].dtype)
            describe = getattr(scheme, "describe", None)
            if describe is not None:
                details[slot] = describe(param, hpk)
        layers.append(
            {
                "name": node.name,
                "op": node.op,
                "scheme": "+".join(sorted(set(schemes))),
                "virtual_params": virtual,
                "stored_values": stored,
                "stored_bytes": stored_bytes,
                "compression": (virtual * FLOAT32_BYTES) / stored_bytes if stored_bytes else None,
                "details": details,
            }
        )
    virtual_total = sum(p.numel for p in hpk.params.values())
    stored_bytes_total = sum(layer["stored_bytes"] for layer in layers)
    golden_bytes = sum(int(hpk.tensors[name].nbytes) for name in hpk.golden_tensors)
    result: dict[str, Any] = {
        "source": hpk.source,
        "producer": hpk.producer,
        "input": {"name": hpk.input.name, "shape": list(hpk.input.shape)},
        "output": {"name": hpk.output.name, "shape": list(hpk.output.shape)},
        "layers": layers,
        "virtual_params": virtual_total,
        "dense_fp32_bytes": virtual_total * FLOAT32_BYTES,
        "stored_bytes": stored_bytes_total,
        "golden_samples": hpk.golden_count,
        "golden_inputs": "none"
        if hpk.golden is None
        else ("generated" if "generator" in hpk.golden else "stored"),
        "golden_bytes": golden_bytes,
    }
    if file_size is not None:
        result["file_bytes"] = file_size
        result["compression"] = result["dense_fp32_bytes"] / file_size
    return result


def _spaces_of(scheme: Any, param: Any) -> list[str]:
    """The spaces a param reads (a scheme module may define ``spaces_of``; else its spec's fields)."""
    if hasattr(scheme, "spaces_of"):
        return list(scheme.spaces_of(param))
    spec = param.spec
    names = [spec["space"]] if isinstance(spec.get("space"), str) else []
    names += [s for s in spec.get("spaces", []) if isinstance(s, str)]
    return names


def summarize_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    from .hpk import read_hpk

    return summarize(read_hpk(path), os.path.getsize(path))

"""Per-layer compression ratios: what ``compress(..., compression=...)`` accepts, and a budget policy.

``compression`` may be one float for every layer, a mapping from module-path patterns to ratios,
or a callable ``(path, module) -> ratio | None``; all three become one rule ``(path, module) ->
ratio | None`` where None keeps the layer dense. :func:`allocate_budget` spends one total budget
unevenly across layers (rule in its docstring) and returns such a mapping.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from fnmatch import fnmatchcase

from torch import nn

RatioRule = Callable[[str, nn.Module], "float | None"]
Compression = float | Mapping[str, "float | None"] | RatioRule
DEFAULT_KEY = "default"


def _checked(ratio: float | None, where: str) -> float | None:
    if ratio is None:
        return None
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio <= 1:
        raise ValueError(f"{where}: compression {ratio!r} must be a number in (0, 1] or None (keep dense)")
    return float(ratio)


def ratio_rule(compression: Compression) -> RatioRule:
    """One rule ``(path, module) -> ratio | None`` from a float, a pattern mapping or a callable.

    Mapping: keys are exact module paths or ``fnmatch`` patterns ("features.*", "*.fc"); an exact
    path wins, then the first matching pattern in the mapping's order; a layer no key matches gets
    the ``"default"`` entry (kept dense when there is none). A value of None keeps a layer dense.
    """
    if isinstance(compression, Mapping):
        table = {str(key): _checked(value, f"compression[{key!r}]") for key, value in compression.items()}
        default = table.pop(DEFAULT_KEY, None)
        patterns = [key for key in table if any(c in key for c in "*?[")]

        def from_mapping(path: str, module: nn.Module) -> float | None:
            if path in table:
                return table[path]
            for pattern in patterns:
                if fnmatchcase(path, pattern):
                    return table[pattern]
            return default

        return from_mapping
    if callable(compression):

        def from_callable(path: str, module: nn.Module) -> float | None:
            return _checked(compression(path, module), f"compression({path!r})")

        return from_callable
    ratio = _checked(compression, "compression")
    return lambda path, module: ratio


def virtual_size(module: nn.Module) -> int:
    """Weights a compressed twin of ``module`` hashes: its weight and bias."""
    return sum(p.numel() for name, p in module.named_parameters(recurse=False) if name in ("weight", "bias"))


def allocate_budget(
    model: nn.Module,
    total: float,
    *,
    exponent: float = 0.5,
    keep_dense: Callable[[str, nn.Module], bool] | None = None,
) -> dict[str, float]:
    """Spend ``total`` (stored / virtual over all compressible layers) unevenly: small layers keep more.

    Rule ("power"): layer l with n_l virtual weights gets K_l = min(n_l, c · n_l^exponent) stored
    values, with c chosen (water-filling: layers that hit the cap n_l are fixed, the rest rescaled)
    so that Σ K_l = round(total · Σ n_l). ``exponent=1`` is the uniform ratio; 0.5 (default) gives
    each layer stored values ∝ √n_l, so a 150-weight first conv is compressed far less than a
    48,000-weight fully connected layer. Returns ``{path: K_l / n_l}``, a mapping for ``compress``
    (each layer then gets exactly round(n_l · K_l / n_l) = K_l buckets with ``hashed``).
    """
    if not 0 < total <= 1:
        raise ValueError(f"total compression {total!r} must be in (0, 1]")
    sizes = {
        path: virtual_size(module)
        for path, module in model.named_modules()
        if isinstance(module, (nn.Linear, nn.Conv2d)) and not (keep_dense and keep_dense(path, module))
    }
    if not sizes:
        return {}
    budget = max(len(sizes), round(total * sum(sizes.values())))
    stored = _water_fill(sizes, budget, exponent)
    return {path: stored[path] / sizes[path] for path in sizes}


def _water_fill(sizes: dict[str, int], budget: int, exponent: float) -> dict[str, int]:
    """Integer K_l ∝ n_l^exponent with 1 ≤ K_l ≤ n_l summing to ``budget`` (largest remainders)."""
    capped: dict[str, int] = {}
    free = dict(sizes)
    while True:
        left = budget - sum(capped.values())
        weights = {path: n**exponent for path, n in free.items()}
        scale = left / sum(weights.values())
        over = {path for path in free if scale * weights[path] >= free[path]}
        if not over:
            break
        for path in over:
            capped[path] = free.pop(path)
        if not free:
            return capped
    shares = {path: max(1.0, scale * weights[path]) for path in free}
    stored = {path: math.floor(share) for path, share in shares.items()}
    remainder = left - sum(stored.values())
    by_fraction = sorted(free, key=lambda path: (stored[path] - shares[path], path))
    for path in by_fraction[: max(0, remainder)]:
        stored[path] += 1
    return {**capped, **stored}

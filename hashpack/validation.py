"""Run a .hpk model through every backend and compare each with PyTorch (``hashpack validate``).

Two input sets, two references:

- **golden**: the inputs stored in the file and the outputs *PyTorch itself* computed for them at
  pack time (docs/FORMAT.md §3). Every backend is compared with those stored outputs, so a file
  whose buckets were altered after packing fails in every backend, PyTorch's included.
- **random**: ``count`` inputs of the model's shape; the reference is the PyTorch evaluator of the
  file (``hashpack.torch_eval``: torch hp32 + ``torch.nn.functional``, no numpy-runtime code).
  Without torch the numpy runtime is the reference, and the report says so.

Pass criterion, scale-aware (the error is judged against the reference's own scale, so a backend
returning near-zero or constant outputs cannot pass because the reference happens to be small):
``max |y - ref| <= atol + rtol * max |ref|``, defaults ``rtol = 1e-4`` (of the output scale) and
``atol = 0`` (an optional absolute floor). Backends computing the same float32 graph differ by
1e-8..1e-5 of the scale (summation order); changed weights differ by orders of magnitude more.
Reported per check: max absolute error, normalized error ``max |y - ref| / max |ref|``, the
smallest per-sample cosine similarity, the share of the tolerance used (``tolerance_ratio``, <= 1
passes) and, for classifier outputs ``[N, C]``, top-1 agreement.

A **degenerate reference** proves nothing, so it fails validation with its own message unless
``allow_degenerate``: outputs with NaN/Inf, all zero, tiny (every ``|ref| < 1e-6``: the weights
are probably near zero), or near-constant (across the inputs they vary by less than the tolerance,
so a backend that ignores its input would pass).

Backends (``Backend``/``open_backend`` from ``hashpack.backends``, ``export_model``; also used by ``hashpack.profiling``):
``pytorch``, ``numpy``, ``onnx`` (onnxruntime) and ``tflite`` (LiteRT), the last two on given
files or on exports made on the fly in every weights mode. Files the user names are untrusted: they
load and run in a child process (``hashpack.isolation``), so a file that crashes ONNX Runtime or
LiteRT is reported as bad input instead of taking the process down. A backend that cannot run here (its
runtime or exporter is missing, or the exporter does not support a scheme/op of this model) is
*skipped* with the reason; skips do not fail validation, disagreements and crashes do.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hashpack.backends import (  # noqa: F401  (re-exported: validation is where callers look)
    RUNTIME_MODULES,
    SIGNATURE_KEY,
    Backend,
    BackendUnavailable,
    Runner,
    open_backend,
    runtime_missing,
)
from hashpack.isolation import BackendCrashed, IsolatedRunner, short_error
from hashpack.runtime import HpkFile, HpkFormatError, read_hpk

DEFAULT_ATOL = 0.0  # absolute floor of the tolerance; the scale-relative part is rtol * max|ref|
DEFAULT_RTOL = 1e-4
TINY_OUTPUTS = 1e-6  # a reference whose every |value| is below this comes from near-zero weights
DEFAULT_RANDOM_INPUTS = 32
# Above this many virtual weights, ONNX compact/inline exports made by validate run with ORT's graph
# optimizations off (see open_backend): folding 2^26 weights at load would peak near 7 GB.
FOLD_LIMIT = 2**26
# The modes of ``hashpack export --weights`` (the first of each is the exporter's default), and
# tflite "materialized": a --materializable once file turned into constant weights by LiteRT and
# ``materialize()``, the model an app builds on the device (docs/TFLITE.md).
EXPORT_MODES: dict[str, tuple[str, ...]] = {
    "onnx": ("compact", "inline", "expanded"),
    "tflite": ("once", "inline", "expanded", "materialized"),
}
SUFFIXES = {"onnx": ".onnx", "tflite": ".tflite"}
ARTICLES = {"numpy": "a .hpk", "pytorch": "a .hpk", "onnx": "an ONNX", "tflite": "a TFLite"}
STORED = "stored"  # reference name of the golden outputs recorded from PyTorch at pack time

ProgressHook = Callable[[int, int, str], None]  # (done, total, what is running now)


class ValidationInputError(ValueError):
    """A file given on the command line cannot be used (exit code 2, not a validation failure)."""


# ------------------------------------------------------------------------------------- backends


def export_path(kind: str, mode: str, source: str | os.PathLike[str], directory: Path) -> Path:
    """Where ``export_model`` writes: ``directory/<stem>.<mode>.<onnx|tflite>``."""
    return directory / f"{Path(source).stem}.{mode}{SUFFIXES[kind]}"


def export_model(kind: str, mode: str, source: str | os.PathLike[str], directory: Path) -> Path:
    """Export the .hpk ``source`` as ``directory/<stem>.<mode>.<onnx|tflite>``; returns the path.

    Raises ``BackendUnavailable`` when the exporter cannot be imported or does not support what
    the model uses (an exporter's ``HpkFormatError`` saying "not supported", or
    ``NotImplementedError``); any other exporter error propagates.
    """
    if kind not in EXPORT_MODES or mode not in EXPORT_MODES[kind]:
        raise ValueError(f"unknown export {kind}:{mode}")
    target = export_path(kind, mode, source, directory)
    try:
        if kind == "onnx":
            from hashpack.exporter.onnx import export_onnx as exporter
        elif mode == "materialized":
            exporter = _export_materialized
        else:
            from hashpack.exporter.tflite import export_tflite as exporter
    except ImportError as exc:
        raise BackendUnavailable(f"the {kind} exporter cannot be imported ({exc})") from None
    try:
        exporter(source, target, weights=mode)
    except NotImplementedError as exc:
        raise BackendUnavailable(f"{kind} exporter: {exc}") from None
    except HpkFormatError as exc:
        if "not supported" not in str(exc):
            raise
        raise BackendUnavailable(_without_source(str(exc), source)) from None
    return target


def _export_materialized(source: str | os.PathLike[str], target: Path, weights: str) -> None:
    """A --materializable once export, materialized here as an app would on the device."""
    from hashpack.exporter.tflite import build_tflite
    from hashpack.exporter.tflite.materialize import TEMPLATE_METADATA, materialize, read_metadata
    from hashpack.runtime.container import atomic_write_bytes

    if weights != "materialized":
        raise ValueError(f"unexpected weights mode {weights!r}")
    once = build_tflite(source, "once", materializable=True).data
    # without a template every weight is already constant (e.g. a dense model): nothing to do
    atomic_write_bytes(target, materialize(once) if TEMPLATE_METADATA in read_metadata(once) else once)


def _without_source(message: str, source: str | os.PathLike[str]) -> str:
    prefix = f"{source}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


# ------------------------------------------------------------------------------------ comparing


@dataclass
class Check:
    """One backend's outputs on one input set, compared with a reference."""

    inputs: str  # "golden" or "random"
    reference: str  # "stored" (PyTorch at pack time), "pytorch" (torch evaluator) or "numpy"
    samples: int
    max_abs_error: float
    max_rel_error: float  # normalized error: max |y - ref| / max |ref|
    tolerance_ratio: float  # max |y - ref| / (atol + rtol max |ref|); <= 1 passes
    top1_agreement: float | None
    passed: bool
    note: str | None = None
    scale: float = 0.0  # max |ref|, what the tolerance is relative to
    min_cosine: float | None = None  # smallest cosine similarity of y and ref over the samples


def _failed(inputs: str, reference: str, samples: int, note: str) -> Check:
    return Check(inputs, reference, samples, math.inf, math.inf, math.inf, None, False, note)


def compare(
    outputs: np.ndarray, reference: np.ndarray, *, atol: float, rtol: float, inputs: str, reference_name: str
) -> Check:
    """``outputs`` against ``reference`` under the scale-aware tolerance (see the module docstring)."""
    y = np.asarray(outputs)
    ref = np.asarray(reference, dtype=np.float64)
    samples = int(ref.shape[0]) if ref.ndim else 1
    if y.shape != ref.shape:
        return _failed(
            inputs, reference_name, samples, f"output shape {list(y.shape)}, expected {list(ref.shape)}"
        )
    y = y.astype(np.float64)
    if not np.isfinite(y).all():
        return _failed(inputs, reference_name, samples, "outputs contain NaN or infinity")
    if not np.isfinite(ref).all():
        return _failed(inputs, reference_name, samples, "the reference contains NaN or infinity")
    diff = np.abs(y - ref)
    max_abs = float(diff.max()) if diff.size else 0.0
    scale = float(np.abs(ref).max()) if ref.size else 0.0
    max_rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else math.inf)
    bound = atol + rtol * scale
    ratio = 0.0 if max_abs == 0 else (max_abs / bound if bound > 0 else math.inf)
    top1 = None
    if ref.ndim == 2 and ref.shape[1] > 1:
        top1 = float(np.mean(y.argmax(axis=1) == ref.argmax(axis=1)))
    check = Check(inputs, reference_name, samples, max_abs, max_rel, ratio, top1, ratio <= 1.0)
    check.scale, check.min_cosine = scale, min_cosine(y, ref)
    return check


def min_cosine(y: np.ndarray, ref: np.ndarray) -> float | None:
    """The smallest cosine similarity between ``y[i]`` and ``ref[i]`` over the samples ``i``
    (1 when both are zero, 0 when only one is); None without samples."""
    if not ref.size:
        return None
    a, b = y.reshape(len(y), -1), ref.reshape(len(ref), -1)
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = np.einsum("ij,ij->i", a, b) / (na * nb)
    cos = np.where((na == 0) & (nb == 0), 1.0, np.where((na == 0) | (nb == 0), 0.0, cos))
    return float(np.clip(cos, -1.0, 1.0).min())


def degenerate_reason(reference: np.ndarray, *, atol: float, rtol: float) -> str | None:
    """Why validating against ``reference`` would prove nothing, or None when it is usable.

    NaN/Inf, all zero, every value below ``TINY_OUTPUTS``, or outputs that vary across the
    inputs (axis 0) by less than the tolerance, so a backend returning a constant would pass.
    """
    ref = np.asarray(reference, dtype=np.float64)
    if not ref.size:
        return None
    if not np.isfinite(ref).all():
        return "contain NaN or infinity"
    scale = float(np.abs(ref).max())
    if scale == 0:
        return "are all zero"
    if scale < TINY_OUTPUTS:
        return f"are all below {TINY_OUTPUTS:g} in magnitude (max |ref| = {scale:.1e}): the weights are probably near zero"
    if ref.ndim >= 1 and ref.shape[0] >= 2:
        half_spread = float((ref.max(axis=0) - ref.min(axis=0)).max()) / 2
        bound = atol + rtol * scale
        if half_spread <= bound:
            return (
                f"barely depend on the input: across {ref.shape[0]} inputs each output varies by at most "
                f"{2 * half_spread:.1e} (scale {scale:.1e}), within the tolerance, so a backend returning a "
                "constant would pass"
            )
    return None


def random_inputs(hpk: HpkFile, count: int, seed: int) -> np.ndarray:
    """``count`` float32 inputs of the model's shape, normal with the golden inputs' mean and
    standard deviation (the data's scale, so activations stay realistic), else N(0, 1); for an
    int32 input (token ids), int32 ids drawn uniformly from the rows of the tables it indexes."""
    if hpk.input.dtype == "int32":  # token ids: uniform over the smallest table the input indexes
        tables = [
            hpk.params[node.params["weight"]].shape[0]
            for node in hpk.nodes
            if node.op == "Embedding" and node.inputs[0] == hpk.input.name
        ]
        shape = (count, *hpk.input.shape[1:])
        return np.random.default_rng(seed).integers(0, min(tables, default=1), size=shape).astype(np.int32)
    mean, std = 0.0, 1.0
    pair = hpk.golden_arrays()
    if pair is not None and pair[0].size:
        mean, std = float(pair[0].mean()), float(pair[0].std()) or 1.0
    shape = (count, *hpk.input.shape[1:])
    return np.random.default_rng(seed).normal(mean, std, size=shape).astype(np.float32)


# ---------------------------------------------------------------------------------- the report


@dataclass
class BackendResult:
    """What happened to one backend: ``status`` is pass, fail, error or skipped."""

    name: str
    kind: str
    mode: str | None
    file: str | None
    status: str = "pass"
    reason: str | None = None  # why it was skipped or errored
    checks: list[Check] = field(default_factory=list)
    is_reference: bool = False  # its outputs are the reference for the random inputs

    def worst(self) -> Check | None:
        """The failed check that used most of its tolerance (what a one-line summary names)."""
        failed = [c for c in self.checks if not c.passed]
        return max(failed, key=lambda c: c.tolerance_ratio) if failed else None


@dataclass
class ValidationReport:
    file: str
    atol: float
    rtol: float
    golden_samples: int
    random_samples: int
    seed: int
    random_reference: str | None  # "pytorch" or "numpy"; None without random inputs
    backends: list[BackendResult]
    notes: list[str] = field(default_factory=list)
    degenerate: list[str] = field(default_factory=list)  # why a reference proves nothing
    allow_degenerate: bool = False  # --allow-degenerate: a degenerate reference does not fail

    @property
    def passed(self) -> bool:
        return not self.failed and (self.allow_degenerate or not self.degenerate)

    @property
    def failed(self) -> list[str]:
        return [b.name for b in self.backends if b.status in ("fail", "error")]

    @property
    def skipped(self) -> list[str]:
        return [b.name for b in self.backends if b.status == "skipped"]

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``hashpack validate --json`` (infinite errors become null)."""
        data = asdict(self)
        for backend in data["backends"]:
            for check in backend["checks"]:
                for key in ("max_abs_error", "max_rel_error", "tolerance_ratio", "scale"):
                    if not math.isfinite(check[key]):
                        check[key] = None
        data.update(passed=self.passed, failed=self.failed, skipped=self.skipped)
        return data


def plan_backends(
    source: Path,
    work_dir: Path,
    onnx_files: Sequence[str | os.PathLike[str]] = (),
    tflite_files: Sequence[str | os.PathLike[str]] = (),
    use_torch: bool = True,
) -> list[Backend]:
    """pytorch (when wanted), numpy, then each given file or else every export mode of each format."""
    backends = [Backend("pytorch", "pytorch", source)] if use_torch else []
    backends.append(Backend("numpy", "numpy", source))
    for kind, files in (("onnx", onnx_files), ("tflite", tflite_files)):
        if files:
            backends += [Backend(f"{kind}:{Path(f).name}", kind, Path(f), given=True) for f in files]
        else:
            backends += [
                Backend(f"{kind}:{mode}", kind, export_path(kind, mode, source, work_dir), mode)
                for mode in EXPORT_MODES[kind]
            ]
    return backends


def run_validation(
    path: str | os.PathLike[str],
    *,
    onnx_files: Sequence[str | os.PathLike[str]] = (),
    tflite_files: Sequence[str | os.PathLike[str]] = (),
    random_count: int = DEFAULT_RANDOM_INPUTS,
    atol: float = DEFAULT_ATOL,
    rtol: float = DEFAULT_RTOL,
    seed: int = 0,
    use_torch: bool | None = None,
    work_dir: str | os.PathLike[str] | None = None,
    on_progress: ProgressHook | None = None,
    allow_degenerate: bool = False,
) -> ValidationReport:
    """Validate ``path`` in every backend (see the module docstring).

    use_torch: None uses the PyTorch evaluator when torch is installed. work_dir: where exports
    made on the fly are written (default: a temporary directory, removed afterwards).
    allow_degenerate: a degenerate reference is reported but does not fail validation. Raises
    ``HpkFormatError`` for a bad .hpk and ``ValidationInputError`` for a given file that cannot
    be loaded; everything else is reported per backend.
    """
    source = Path(path)
    hpk = read_hpk(source)
    if atol < 0 or rtol < 0 or not math.isfinite(atol + rtol) or atol + rtol == 0:
        raise ValueError(f"tolerance atol={atol}, rtol={rtol}: both must be finite, >= 0, not both 0")
    notes: list[str] = []
    torch_missing = runtime_missing("pytorch")
    if use_torch is None:
        use_torch = torch_missing is None
    elif use_torch and torch_missing:
        raise ValidationInputError(f"the PyTorch reference needs torch: {torch_missing}")
    with tempfile.TemporaryDirectory(prefix="hashpack-validate-") as scratch:
        directory = Path(work_dir) if work_dir is not None else Path(scratch)
        backends = plan_backends(source, directory, onnx_files, tflite_files, use_torch)
        session = _Session(hpk, source, directory, random_count, seed, atol, rtol)
        results = []
        if not use_torch:
            why = torch_missing or "not requested"
            results.append(BackendResult("pytorch", "pytorch", None, None, "skipped", why))
            notes.append(
                f"PyTorch evaluator not used ({why}): random inputs are compared with the numpy runtime"
            )
        for index, backend in enumerate(backends):
            if on_progress:
                on_progress(index, len(backends), backend.name)
            results.append(session.run(backend))
        if on_progress:
            on_progress(len(backends), len(backends), "done")
    if session.golden is None:
        notes.append("the file has no golden samples: only random inputs were compared")
    if session.fallback_note:
        notes.append(session.fallback_note)
    notes += diagnose(results)
    degenerate = []
    references = [
        ("golden outputs recorded at pack time", None if session.golden is None else session.golden[1])
    ]
    references.append((f"{session.reference_name} outputs on the random inputs", session.reference))
    for what, reference in references:
        reason = None if reference is None else degenerate_reason(reference, atol=atol, rtol=rtol)
        if reason:
            degenerate.append(f"{what} {reason}")
    return ValidationReport(
        file=str(source),
        atol=atol,
        rtol=rtol,
        golden_samples=0 if session.golden is None else int(session.golden[0].shape[0]),
        random_samples=random_count,
        seed=seed,
        random_reference=session.reference_name if random_count else None,
        backends=results,
        notes=notes,
        degenerate=degenerate,
        allow_degenerate=allow_degenerate,
    )


def diagnose(results: Sequence[BackendResult]) -> list[str]:
    """A hint at the likely cause when the pattern of failures points at one."""
    ran = [r for r in results if r.status in ("pass", "fail")]
    golden = [c for r in ran for c in r.checks if c.inputs == "golden"]
    random = [c for r in ran for c in r.checks if c.inputs == "random"]
    if len(ran) >= 2 and golden and not any(c.passed for c in golden) and all(c.passed for c in random):
        return [
            "every backend disagrees with the outputs PyTorch recorded at pack time but agrees with the "
            "others on random inputs: the file's weights (or its golden outputs) changed after packing"
        ]
    return []


class _Session:
    """Runs backends one by one; the first that runs becomes the reference for random inputs."""

    def __init__(
        self, hpk: HpkFile, source: Path, directory: Path, count: int, seed: int, atol: float, rtol: float
    ) -> None:
        self.hpk, self.source, self.directory = hpk, source, directory
        self.golden = hpk.golden_arrays()
        self.virtual_weights = sum(param.numel for param in hpk.params.values())
        if self.golden is not None and hpk.input.dtype == "int32":  # stored as F32, run as int32 ids
            self.golden = (self.golden[0].astype(np.int32), self.golden[1])
        self.x_random = random_inputs(hpk, count, seed) if count else None
        self.tolerance = {"atol": atol, "rtol": rtol}
        self.reference_name: str | None = None
        self.reference: np.ndarray | None = None
        self.fallback_note: str | None = None

    def run(self, backend: Backend) -> BackendResult:
        file = str(backend.path) if backend.given else None
        result = BackendResult(backend.name, backend.kind, backend.mode, file)
        missing = runtime_missing(backend.kind)
        if missing:
            if backend.given:
                raise ValidationInputError(f"{backend.path}: cannot run {backend.kind} files: {missing}")
            return self._skip(result, missing)
        try:
            if backend.mode is not None:
                export_model(backend.kind, backend.mode, self.source, self.directory)
        except BackendUnavailable as exc:
            return self._skip(result, str(exc))
        except Exception as exc:  # an exporter crash is a failure of that backend
            return self._error(result, f"export failed: {short_error(exc)}")
        try:
            runner = IsolatedRunner(backend.kind, backend.path) if backend.given else None
            optimize = not self._unfolded(backend)
            if not optimize:
                result.reason = (
                    f"run with ORT graph optimizations off: {self.virtual_weights:,} virtual weights "
                    f"exceed {FOLD_LIMIT:,}, above which folding at load needs ~100 bytes per weight"
                )
            run = runner or open_backend(backend.kind, backend.path, optimize=optimize)
        except BackendCrashed as exc:  # a user's file took the runtime down: bad input
            raise ValidationInputError(f"{exc}: the file is corrupt or hostile") from None
        except Exception as exc:
            if backend.given:
                raise ValidationInputError(
                    f"{backend.path}: cannot be loaded as {ARTICLES[backend.kind]} model ({short_error(exc)})"
                ) from None
            if backend.kind == "pytorch":  # torch is installed here, so this import is cheap
                from hashpack.torch_eval import TorchEvalError

                if isinstance(exc, TorchEvalError):  # a scheme or op it does not implement
                    return self._skip(result, short_error(exc))
            return self._error(result, f"load failed: {short_error(exc)}")
        try:
            if self.golden is not None:
                outputs = run(np.array(self.golden[0]))
                result.checks.append(self._compare(outputs, self.golden[1], "golden", STORED))
            if self.x_random is not None:
                outputs = run(self.x_random.copy())
                if self.reference is None:
                    self.reference, self.reference_name = np.asarray(outputs), backend.kind
                    result.is_reference = True
                else:
                    result.checks.append(
                        self._compare(outputs, self.reference, "random", self.reference_name)
                    )
        except BackendCrashed as exc:
            raise ValidationInputError(f"{exc}: the file is corrupt or hostile") from None
        except Exception as exc:
            return self._error(result, f"run failed: {short_error(exc)}")
        finally:
            if runner is not None:
                runner.close()
        result.status = "pass" if all(c.passed for c in result.checks) else "fail"
        return result

    def _unfolded(self, backend: Backend) -> bool:
        """Whether an ONNX export made here is too large for ORT to constant-fold at load."""
        large = self.virtual_weights > FOLD_LIMIT
        return (
            large and backend.kind == "onnx" and not backend.given and backend.mode in ("compact", "inline")
        )

    def _compare(self, outputs: np.ndarray, reference: np.ndarray, inputs: str, name: str | None) -> Check:
        return compare(outputs, reference, inputs=inputs, reference_name=name or "?", **self.tolerance)

    def _skip(self, result: BackendResult, reason: str) -> BackendResult:
        if result.kind == "pytorch":
            self.fallback_note = (
                f"PyTorch evaluator skipped ({reason}): random inputs are compared with the numpy runtime"
            )
        result.status, result.reason = "skipped", reason
        return result

    def _error(self, result: BackendResult, reason: str) -> BackendResult:
        result.status, result.reason = "error", reason
        return result

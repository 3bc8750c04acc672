"""``hashpack validate`` and ``hashpack profile``: check a .hpk file in every backend, and measure it.

Registered on the ``hashpack`` group at the end of hashpack/cli.py. Importing this module loads
click and numpy only; torch, onnxruntime, LiteRT, rich and matplotlib load when a command runs.
The shared helpers (one-line errors, path checks, JSON output) come from ``hashpack.cli_support``,
never from ``hashpack.cli``, which imports this module.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from hashpack.profiling import DEFAULT_BACKENDS, DEFAULT_BATCHES, DEFAULT_RUNS
from hashpack.validation import DEFAULT_ATOL, DEFAULT_RANDOM_INPUTS, DEFAULT_RTOL, STORED

REFERENCE_LABELS = {STORED: "PyTorch, pack time", "pytorch": "PyTorch evaluator", "numpy": "numpy runtime"}
WIDE = 124  # table width when stdout is not a terminal (pipes, files, READMEs)


@contextmanager
def _progress(quiet: bool) -> Iterator[Callable[[int, int, str], None] | None]:
    """A transient rich progress bar on stderr fed by (done, total, label); nothing when quiet or
    when stderr is not a terminal (logs and pipes get no control codes)."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("{task.description:<36}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=Console(stderr=True), transient=True,
    )  # fmt: skip
    task = bar.add_task("starting", total=None)

    def on_progress(done: int, total: int, label: str) -> None:
        if not bar.live.is_started:  # started on the first report: early input errors print alone
            bar.start()
        bar.update(task, completed=done, total=total, description=label)

    try:
        yield on_progress
    finally:
        if bar.live.is_started:
            bar.stop()


def _console() -> Any:
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=WIDE)


def _cosine(value: float | None) -> str:
    """1 - the smallest per-sample cosine similarity (0 for identical directions)."""
    return "" if value is None else f"{max(1.0 - value, 0.0):.0e}"


def _sci(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "inf"
    return f"{value:.1e}"


# --------------------------------------------------------------------------------------- validate


@click.command()
@click.argument("model")
@click.option(
    "--onnx", "onnx_files", multiple=True, metavar="FILE",
    help="An ONNX file to check (repeatable). Default: export every weights mode on the fly.",
)  # fmt: skip
@click.option(
    "--tflite", "tflite_files", multiple=True, metavar="FILE",
    help="A TFLite file to check (repeatable). Default: export every weights mode on the fly.",
)  # fmt: skip
@click.option(
    "--inputs", "random_count", default=DEFAULT_RANDOM_INPUTS, show_default=True,
    type=click.IntRange(0, 100_000), help="Random inputs checked besides the golden ones.",
)  # fmt: skip
@click.option(
    "--rtol", default=DEFAULT_RTOL, show_default=True, type=click.FloatRange(0, None),
    help="Tolerance relative to the output scale: pass when max|y - ref| <= atol + rtol·max|ref|.",
)  # fmt: skip
@click.option("--atol", default=DEFAULT_ATOL, show_default=True, type=click.FloatRange(0, None),
              help="Absolute floor added to the tolerance (see --rtol).")  # fmt: skip
@click.option(
    "--allow-degenerate", is_flag=True,
    help="Do not fail when the reference is degenerate (NaN/Inf, all zero, tiny or input-independent).",
)  # fmt: skip
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**32 - 1),
              help="Seed of the random inputs.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON document.")
def validate(
    model: str,
    onnx_files: tuple[str, ...],
    tflite_files: tuple[str, ...],
    random_count: int,
    rtol: float,
    atol: float,
    allow_degenerate: bool,
    seed: int,
    as_json: bool,
) -> None:
    """Check MODEL in PyTorch, the numpy runtime, ONNX Runtime and LiteRT against PyTorch.

    The golden inputs stored in the file are compared with the outputs PyTorch recorded at pack
    time; random inputs with the PyTorch evaluator of the file (the numpy runtime without torch).
    The error is judged against the reference's own scale, and a degenerate reference (NaN/Inf,
    all zero, tiny, or outputs that ignore the input) fails unless --allow-degenerate.
    Exit code 0 when every backend that runs passes, 1 when any disagrees or crashes or the
    reference is degenerate, 2 on bad input. Backends that cannot run here are skipped and say why.
    """
    from hashpack.cli_support import UserError, _emit_json, _existing_file
    from hashpack.native_logs import native_stderr_silenced
    from hashpack.validation import ValidationInputError, run_validation

    source = _existing_file(model, ".hpk file")
    for option, files in (("--onnx", onnx_files), ("--tflite", tflite_files)):
        for file in files:
            _existing_file(file, f"{option} file")
    if atol + rtol == 0:
        raise UserError("--atol and --rtol cannot both be 0 (no float32 backend is bit-exact)")
    try:
        context = click.get_current_context()
        debug = bool(context.find_root().obj and context.find_root().obj.get("debug"))
        with native_stderr_silenced(not debug), _progress(quiet=as_json) as on_progress:
            report = run_validation(
                source, onnx_files=onnx_files, tflite_files=tflite_files, random_count=random_count,
                atol=atol, rtol=rtol, seed=seed, on_progress=on_progress, allow_degenerate=allow_degenerate,
            )  # fmt: skip
    except ValidationInputError as exc:
        raise UserError(str(exc)) from None
    if as_json:
        _emit_json(report.to_dict())
    else:
        _print_validation(report)
    if not report.passed:
        sys.exit(1)


def _print_validation(report: Any) -> None:
    from rich.table import Table

    console = _console()
    golden = (
        f"{report.golden_samples} inputs, outputs recorded from PyTorch at pack time"
        if report.golden_samples
        else "none stored in the file"
    )
    random = (
        f"{report.random_samples} inputs (seed {report.seed}), reference: the "
        f"{REFERENCE_LABELS.get(report.random_reference, report.random_reference)}"
        if report.random_samples
        else "none (--inputs 0)"
    )
    table = Table()
    numeric = ("max abs err", "err/scale", "1-cos", "top-1", "err/tol")
    for name in ("backend", "inputs", "reference", *numeric, "result"):
        right = name in numeric
        table.add_column(name, justify="right" if right else "left", no_wrap=True)
    notes: list[str] = []
    reasons: dict[str, list[str]] = {}  # one line per distinct skip/error reason
    for backend in report.backends:
        if not backend.checks:
            result = {"skipped": "[yellow]skipped[/]", "error": "[bold red]ERROR[/]"}.get(
                backend.status, "pass"
            )
            table.add_row(backend.name, "-", "-", "", "", "", "", "", result)
            table.add_section()
            if backend.reason:
                reasons.setdefault(backend.reason, []).append(backend.name)
            continue
        for index, check in enumerate(backend.checks):
            top1 = (
                ""
                if check.top1_agreement is None
                else f"{round(check.top1_agreement * check.samples)}/{check.samples}"
            )
            result = "[green]pass[/]" if check.passed else "[bold red]FAIL[/]"
            table.add_row(
                backend.name if index == 0 else "", f"{check.inputs} ({check.samples})",
                REFERENCE_LABELS.get(check.reference, check.reference), _sci(check.max_abs_error),
                _sci(check.max_rel_error), _cosine(check.min_cosine), top1, f"{check.tolerance_ratio:.2g}",
                result,
            )  # fmt: skip
            if check.note:
                notes.append(f"{backend.name} {check.inputs}: {check.note}")
        if backend.reason:
            reasons.setdefault(backend.reason, []).append(backend.name)
        if backend.is_reference:
            notes.append(f"{backend.name} is the reference for the random inputs")
        table.add_section()
    console.print(report.file, highlight=False)
    console.print(f"  golden  {golden}", highlight=False)
    console.print(f"  random  {random}", highlight=False)
    floor = f"{report.atol:g} + " if report.atol else ""
    console.print(f"  pass    max|y - ref| <= {floor}{report.rtol:g}·max|ref| (the reference's own scale)")
    console.print(table)
    notes += [f"{', '.join(names)}: {reason}" for reason, names in reasons.items()]
    for line in notes + report.notes:
        console.print(f"  [dim]{line}[/]", highlight=False)
    ran = [b for b in report.backends if b.status != "skipped"]
    skipped = f", {len(report.skipped)} skipped" if report.skipped else ""
    if report.degenerate and report.allow_degenerate:
        for line in report.degenerate:
            console.print(f"  [yellow]degenerate reference (allowed)[/]: {line}", highlight=False)
    elif report.degenerate:
        console.print(
            "[bold red]FAIL[/]: degenerate reference, agreement with it proves nothing: "
            + "; ".join(report.degenerate)
            + ". Check the model's weights, or pass --allow-degenerate to accept it",
            highlight=False,
        )
        if not report.failed:
            return
    if report.passed:
        console.print(f"[bold green]PASS[/]: {len(ran)} backends agree with PyTorch{skipped}")
        return
    worst = max(
        ((b, b.worst()) for b in report.backends if b.worst() is not None),
        key=lambda pair: pair[1].tolerance_ratio,
        default=None,
    )
    summary = (
        f"[bold red]FAIL[/]: {len(report.failed)} of {len(ran)} backends disagree with PyTorch{skipped}: "
    )
    summary += ", ".join(report.failed)
    if worst is not None:
        backend, check = worst
        summary += (
            f"; worst {backend.name} on {check.inputs} inputs: max abs err {_sci(check.max_abs_error)}, "
            f"{check.tolerance_ratio:.3g}x the tolerance"
        )
    errors = [b for b in report.backends if b.status == "error"]
    console.print(summary + "".join(f"; {b.name}: {b.reason}" for b in errors), highlight=False)


# ---------------------------------------------------------------------------------------- profile


def _parse_batches(text: str) -> list[int]:
    from hashpack.cli_support import UserError

    try:
        batches = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"--batch {text!r}: expected comma-separated sizes like 1,32") from None
    if not batches or min(batches) < 1 or max(batches) > 65_536:
        raise UserError(f"--batch {text!r}: sizes must be integers in [1, 65536]")
    return list(dict.fromkeys(batches))


@click.command()
@click.argument("model")
@click.option(
    "--backends", "backends_text", default=",".join(DEFAULT_BACKENDS), show_default=True,
    help="Comma-separated: numpy, pytorch, onnx[:compact|inline|expanded], tflite[:once|inline|expanded].",
)  # fmt: skip
@click.option("--batch", "batch_text", default=",".join(map(str, DEFAULT_BATCHES)), show_default=True,
              help="Comma-separated batch sizes.")  # fmt: skip
@click.option("--runs", default=None, type=click.IntRange(1, 100_000),
              help=f"Timed runs per backend and batch size (after 2 warm-up runs). "
              f"Default: 3-{DEFAULT_RUNS} within about a second.")  # fmt: skip
@click.option("--plot", default=None, metavar="OUT.png", help="Also write size and latency bar charts.")
@click.option("--export-dir", default=None, metavar="DIR", help="Keep the exported files here.")
@click.option("--no-memory", is_flag=True, help="Skip the peak-memory child processes.")
@click.option(
    "--all-sizes", is_flag=True, help="Export and size every weights mode, not only the profiled ones."
)
@click.option("--json", "as_json", is_flag=True, help="Print the measurements as one JSON document.")
def profile(
    model: str,
    backends_text: str,
    batch_text: str,
    runs: int | None,
    plot: str | None,
    export_dir: str | None,
    no_memory: bool,
    all_sizes: bool,
    as_json: bool,
) -> None:
    """Measure MODEL: sizes (dense, .hpk, every export, gzipped), per-layer breakdown, load time,
    first-run time, steady-state latency and peak memory per backend and batch size."""
    from hashpack.cli_support import UserError, _emit_json, _existing_file, _writable_target
    from hashpack.profiling import parse_backends, plot_profile, run_profile

    source = _existing_file(model, ".hpk file")
    try:
        backends = parse_backends(backends_text)
    except ValueError as exc:
        raise UserError(f"--backends: {exc}") from None
    batches = _parse_batches(batch_text)
    if plot is not None:
        _writable_target(plot)
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise UserError("--plot needs matplotlib (pip install 'hashpack[plot]')") from None
    if export_dir is not None:
        directory = Path(export_dir)
        if directory.exists() and not directory.is_dir():
            raise UserError(f"--export-dir {export_dir}: not a directory")
        if not directory.parent.is_dir():
            raise UserError(f"--export-dir {export_dir}: directory {directory.parent} does not exist")
    with _progress(quiet=as_json) as on_progress:
        report = run_profile(
            source, backends=backends, batches=batches, runs=runs, export_dir=export_dir,
            memory=not no_memory, on_progress=on_progress, all_sizes=all_sizes,
        )  # fmt: skip
    report["plot"] = str(plot_profile(report, plot)) if plot is not None else None
    if as_json:
        _emit_json(report)
    else:
        _print_profile(report)


def _print_profile(report: dict[str, Any]) -> None:
    from rich.table import Table

    console = _console()
    model = report["model"]
    shape = ", ".join("N" if d is None else str(d) for d in model["input"]["shape"])
    out_shape = ", ".join("N" if d is None else str(d) for d in model["output"]["shape"])
    console.print(report["file"], highlight=False)
    console.print(
        f"  input [{shape}] -> output [{out_shape}], {model['virtual_params']:,} virtual params; "
        f"{report['environment']['cpus']} CPUs",
        highlight=False,
    )
    sizes = Table(title="Sizes", title_justify="left")
    for name in ("artifact", "bytes", "gzip -9 bytes", "dense fp32 / size"):
        sizes.add_column(name, justify="left" if name == "artifact" else "right")
    for row in report["sizes"]:
        sizes.add_row(
            row["name"], f"{row['bytes']:,}", f"{row['gzip_bytes']:,}", f"{row['dense_over_size']:.1f}x"
        )
    layers = Table(title="Layers", title_justify="left")
    for name in ("layer", "op", "scheme", "virtual params", "stored params", "bytes", "compression"):
        layers.add_column(name, justify="left" if name in ("layer", "op", "scheme") else "right")
    for row in report["layers"]:
        ratio = f"{row['compression']:.1f}x" if row["compression"] else "-"
        layers.add_row(row["name"], row["op"], row["scheme"], f"{row['virtual_params']:,}",
                       f"{row['stored_params']:,}", f"{row['bytes']:,}", ratio)  # fmt: skip
    speed = Table(title="Speed (ms)", title_justify="left")
    for name in ("backend", "batch", "load", "first run", "median", "p10", "p90", "per sample", "runs"):
        speed.add_column(name, justify="left" if name == "backend" else "right")
    previous = None
    for row in report["speed"]:
        speed.add_row(
            row["backend"] if row["backend"] != previous else "", str(row["batch"]), f"{row['load_ms']:.2f}",
            f"{row['first_run_ms']:.2f}", f"{row['median_ms']:.3f}", f"{row['p10_ms']:.3f}",
            f"{row['p90_ms']:.3f}", f"{row['median_ms'] / row['batch']:.4f}", str(row["runs"]),
        )  # fmt: skip
        previous = row["backend"]
    memory = Table(title="Peak resident memory (MiB, child process)", title_justify="left")
    for name in ("backend", "batch", "after imports", "peak", "model (peak - imports)"):
        memory.add_column(name, justify="left" if name == "backend" else "right")
    for row in report["memory"]:
        memory.add_row(row["backend"], str(row["batch"]), f"{row['imports_mib']:.1f}", f"{row['peak_mib']:.1f}",
                       f"{row['model_mib']:.1f}")  # fmt: skip
    for table in (sizes, layers, speed, memory):
        if table.row_count:
            console.print(table)
    for item in report["skipped"]:
        console.print(f"  [dim]skipped {item['what']}: {item['reason']}[/]", highlight=False)
    if report.get("plot"):
        console.print(f"wrote {report['plot']}")

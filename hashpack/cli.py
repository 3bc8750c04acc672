"""The ``hashpack`` command line: verbs that read as sentences, ``--json`` for machines.

Usage mistakes and bad files print one line and exit with code 2 (``--debug`` shows the
traceback); checks that run and fail exit with 1.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import click

from hashpack.cli_support import (
    UserError,
    _emit_json,
    _existing_file,
    _fail,
    _writable_target,
)
from hashpack.runtime import HpkFormatError


def _known_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [HpkFormatError, OSError]
    # Only code that imported these modules can raise their errors: looking them up in
    # sys.modules keeps the error path from importing torch (slow, and absent for `inspect`).
    for module, name in (("hashpack.data", "DatasetError"), ("hashpack.packer", "UnsupportedModelError")):
        if module in sys.modules:
            errors.append(getattr(sys.modules[module], name))
    return tuple(errors)


class _Group(click.Group):
    """Turns hashpack's documented errors and click's usage errors into one-line messages, exit 2."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            raise _one_line(exc) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:  # bad option values, missing arguments, unknown commands
            raise _one_line(exc) from None
        except click.ClickException:
            raise
        except _known_errors() as exc:
            if ctx.obj and ctx.obj.get("debug"):
                traceback.print_exc()
            message = (
                str(exc)
                if not isinstance(exc, OSError) or not exc.filename
                else f"{exc.filename}: {exc.strerror}"
            )
            raise UserError(message) from None


def _one_line(exc: click.UsageError) -> click.ClickException:
    """click's usage error (usage, hint, message on three lines) as one line; help stays help."""
    if type(exc).__name__ == "NoArgsIsHelpError":  # `hashpack` alone prints the help
        return exc
    hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
    return UserError(exc.format_message().rstrip(".") + hint)


def parse_compression(text: str, flag: str = "--compression") -> float:
    """'1/64', '0.125' or '64x' -> stored/virtual fraction in (0, 1]."""
    try:
        value = float(1 / Fraction(text[:-1])) if text.endswith("x") else float(Fraction(text))
    except (ValueError, ZeroDivisionError, OverflowError):
        _fail(f"{flag} {text!r}: expected a fraction like 1/64, 0.125 or 64x")
    if not 0 < value <= 1:
        _fail(f"{flag} {text!r}: must be in (0, 1] (stored/virtual)")
    return value


def parse_layer_compression(items: tuple[str, ...]) -> list[tuple[str, float]]:
    """Repeated 'PATTERN=RATIO' (e.g. 'features.0=1/2') -> [(pattern, ratio)] in the given order."""
    parsed = []
    for item in items:
        pattern, sep, ratio = item.rpartition("=")
        if not sep or not pattern:
            _fail(f"--layer-compression {item!r}: expected PATTERN=RATIO, e.g. 'classifier.*=1/4'")
        parsed.append((pattern, parse_compression(ratio, f"--layer-compression {pattern}=")))
    return parsed


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(package_name="hashpack")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """hashpack: hashed weight-sharing compression that decompresses on the device."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


# ------------------------------------------------------------------------------------------ train


@main.command()
@click.option("--arch", default=None, help="mlp (LeNet-300-100, the default), lenet5, resnet20, mobilenet.")
@click.option(
    "--model",
    "model_factory",
    default=None,
    metavar="MODULE:FACTORY",
    help="Your own model instead of --arch: an importable factory, e.g. torchvision.models:resnet18.",
)
@click.option(
    "--model-kwargs",
    default=None,
    metavar="JSON",
    help="Keyword arguments of --model, e.g. '{\"num_classes\": 10}'.",
)
@click.option(
    "--init",
    default=None,
    metavar="FILE",
    help="Start from trained dense weights (.safetensors or a weights-only .pt state dict).",
)
@click.option(
    "--distill/--no-distill",
    default=None,
    help="Distil from the dense model (default: on with --init or --teacher).",
)
@click.option(
    "--teacher", "teacher_factory", default=None, metavar="MODULE:FACTORY", help="A separate teacher model."
)
@click.option("--teacher-kwargs", default=None, metavar="JSON", help="Keyword arguments of --teacher.")
@click.option("--teacher-weights", default=None, metavar="FILE", help="The teacher's trained state dict.")
@click.option(
    "--temperature",
    default=4.0,
    show_default=True,
    type=click.FloatRange(0, None, min_open=True),
    help="Distillation temperature T.",
)
@click.option(
    "--distill-alpha",
    default=0.9,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Weight of the soft (teacher) term; 1 - it weighs the labels.",
)
@click.option(
    "--layer-compression",
    multiple=True,
    metavar="PATTERN=RATIO",
    help="Per-layer ratio for module paths matching PATTERN (fnmatch; repeatable; first match wins).",
)
@click.option(
    "--keep-dense", multiple=True, metavar="PATTERN", help="Leave matching layers dense (repeatable)."
)
@click.option(
    "--budget",
    type=click.Choice(["uniform", "power"]),
    default="uniform",
    show_default=True,
    help="How --compression is spent: every layer alike, or stored values ∝ √(layer size).",
)
@click.option(
    "--schedule",
    type=click.Choice(["cosine", "constant"]),
    default="cosine",
    show_default=True,
    help="Learning-rate schedule.",
)
@click.option(
    "--weight-decay",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, None),
    help="Decoupled weight decay (AdamW).",
)
@click.option(
    "--val-fraction",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 0.5),
    help="Share of the training set held out; the best-validation epoch is packed.",
)
@click.option("--method", default="hashed", show_default=True, help="Compression method, or 'dense'.")
@click.option(
    "--compression", "compression_text", default="1/8", show_default=True, help="Stored/virtual, e.g. 1/64."
)
@click.option(
    "--dataset", default="digits", show_default=True, help="digits, mnist5k, fashion, or a .npz path."
)
@click.option("--epochs", default=10, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1, 65_536))
@click.option("--lr", default=1e-3, show_default=True, type=click.FloatRange(0, None, min_open=True))
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**32 - 1))
@click.option(
    "--golden",
    default=None,
    type=click.IntRange(0, 1024),
    help="Golden self-check samples (inputs regenerated from a seed, outputs stored). "
    "Default: up to 8 within max(16 KiB, 1% of the stored values).",
)
@click.option("--quantize", type=click.Choice(["none", "fp16", "int8"]), default="none", show_default=True,
              help="Bucket storage: float32, float16, or int8 with a per-layer scale.")  # fmt: skip
@click.option(
    "--fake-quant", is_flag=True, help="Train through straight-through quantization (with --quantize)."
)
@click.option(
    "--separate-bias", is_flag=True, default=False,
    help="hashed: biases as separate dense values (same budget) instead of in the hashed space.",
)  # fmt: skip
@click.option(
    "--bands",
    type=click.IntRange(1, 64),
    default=None,
    help="fresh: frequency bands (with --allocation beta; uniform is one band).",
)
@click.option(
    "--allocation", type=click.Choice(["beta", "uniform"]), default=None, help="fresh: bucket allocation."
)
@click.option("--alpha", type=float, default=None, help="fresh: Beta-curve alpha of the band allocation.")
@click.option("--beta", type=float, default=None, help="fresh: Beta-curve beta of the band allocation.")
@click.option(
    "--hashes", type=click.IntRange(1, 16), default=None, help="funhash: hash functions U per weight."
)
@click.option(
    "--hidden", type=click.IntRange(0, 256), default=None, help="funhash: hidden width of g (0: identity)."
)
@click.option("--hops", type=click.IntRange(1, 2), default=None, help="funhash: 2 for multi-hop hashing.")
@click.option("--dual-space", is_flag=True, default=False, help="funhash: fetch from two compression spaces.")
@click.option(
    "--fc",
    type=click.Choice(["fs", "hashed"]),
    default=None,
    help="fsnet: how Linear layers compress (default hashed, as in the paper; fs: filter summaries too).",
)
@click.option("-o", "--output", required=True, help="The .hpk file to write.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def train(
    arch: str | None,
    model_factory: str | None,
    model_kwargs: str | None,
    init: str | None,
    distill: bool | None,
    teacher_factory: str | None,
    teacher_kwargs: str | None,
    teacher_weights: str | None,
    temperature: float,
    distill_alpha: float,
    layer_compression: tuple[str, ...],
    keep_dense: tuple[str, ...],
    budget: str,
    schedule: str,
    weight_decay: float,
    val_fraction: float,
    method: str,
    compression_text: str,
    dataset: str,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    golden: int | None,
    quantize: str,
    fake_quant: bool,
    output: str,
    as_json: bool,
    **method_flags: Any,
) -> None:
    """Train a compressed model, or compress a trained one and fine-tune it; write it as a .hpk file.

    Under `torchrun --nproc_per_node=N -m hashpack train ...` the processes train together
    (DistributedDataParallel, gloo) and only rank 0 writes the file and prints.
    """
    from hashpack.distributed import leave, world_from_env
    from hashpack.model_source import InitWeightsError, ModelFactoryError, parse_model_kwargs
    from hashpack.models import ARCHITECTURES
    from hashpack.nn.compress import METHODS
    from hashpack.workflow import ModelOptionError, method_options_from_flags, train_and_pack

    if arch and model_factory:
        _fail("give --arch or --model, not both")
    arch = arch or "mlp"
    if arch not in ARCHITECTURES:
        _fail(f"--arch {arch!r}: unknown architecture (choose from {', '.join(ARCHITECTURES)})")
    if method != "dense" and method not in METHODS:
        _fail(f"--method {method!r}: unknown method (choose from dense, {', '.join(METHODS)})")
    compression = parse_compression(compression_text)
    layers = parse_layer_compression(layer_compression)
    try:
        options = method_options_from_flags(method, method_flags)
        factory_kwargs = parse_model_kwargs(model_kwargs) if model_factory else {}
        teacher_factory_kwargs = parse_model_kwargs(teacher_kwargs) if teacher_factory else {}
    except ValueError as exc:
        _fail(str(exc))
    if fake_quant and quantize == "none":
        _fail("--fake-quant needs --quantize fp16 or int8")
    for given, flag in ((init, "--init"), (teacher_weights, "--teacher-weights")):
        if given:
            _existing_file(given, f"{flag} file")
    target = _writable_target(output)
    world = world_from_env()
    try:
        with _progress(quiet=as_json or not world.is_main) as progress:
            report = train_and_pack(
                arch=arch, method=method, compression=compression, dataset=dataset, epochs=epochs,
                batch_size=batch_size, lr=lr, seed=seed, golden=golden, path=target,
                on_step=progress.on_step, on_epoch=progress.on_epoch, options=options, quantize=quantize,
                fake_quant=fake_quant, model_factory=model_factory, model_kwargs=factory_kwargs, init=init,
                distill=distill, teacher_factory=teacher_factory, teacher_kwargs=teacher_factory_kwargs,
                teacher_weights=teacher_weights, temperature=temperature, alpha=distill_alpha,
                layer_compression=layers, keep_dense=keep_dense, budget=budget, schedule=schedule,
                weight_decay=weight_decay, val_fraction=val_fraction, world=world,
            )  # fmt: skip
    except (ModelOptionError, ModelFactoryError, InitWeightsError) as exc:
        leave(world, clean=False)
        _fail(str(exc))
    except BaseException:
        leave(world, clean=False)  # no final barrier: the other processes may never reach it
        raise
    leave(world)
    if not world.is_main:
        return
    if as_json:
        _emit_json(report)
        return
    if report["init"]:
        click.echo(
            f"dense {report['dense_test_accuracy']:.4f} -> compressed before fine-tuning "
            f"{report['initial_test_accuracy']:.4f} (test accuracy)"
        )
    best = f", best validation epoch {report['best_epoch']}" if report["best_epoch"] else ""
    click.echo(
        f"wrote {target} ({report['file_bytes']:,} bytes, {report['compression']:.1f}x smaller than dense fp32); "
        f"test accuracy {report['test_accuracy']:.4f} after {epochs} epochs{best} ({report['train_seconds']:.1f} s)"
    )


class _progress:
    """A rich progress bar fed by the training loop's hooks: steps, loss, and the last epoch's metrics.

    ``on_step``/``on_epoch`` are None when quiet.
    """

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar: Any = None
        self.on_step: Callable[[int, int, float], None] | None = None
        self.on_epoch: Callable[[int, int, dict[str, float]], None] | None = None

    def __enter__(self) -> _progress:
        if self.quiet:
            return self
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn("training"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"),
            TextColumn("loss {task.fields[loss]:.4f}"), TextColumn("{task.fields[metrics]}"),
            TimeRemainingColumn(), transient=True,
        )  # fmt: skip
        task = self.bar.add_task("train", total=None, loss=float("nan"), metrics="")

        def on_step(step: int, total: int, loss: float) -> None:
            if not self.bar.live.is_started:  # started on the first step: early errors print alone
                self.bar.start()
            self.bar.update(task, completed=step, total=total, loss=loss)

        def on_epoch(epoch: int, epochs: int, metrics: dict[str, float]) -> None:
            text = f"epoch {epoch}/{epochs} train acc {metrics['train_accuracy']:.3f}"
            if "val_accuracy" in metrics:
                text += f" val acc {metrics['val_accuracy']:.3f}"
            self.bar.update(task, metrics=text)

        self.on_step, self.on_epoch = on_step, on_epoch
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None and self.bar.live.is_started:
            self.bar.stop()


# ---------------------------------------------------------------------------------------- inspect


@main.command()
@click.argument("file")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def inspect(file: str, as_json: bool) -> None:
    """Show a .hpk file's layers: scheme, virtual params, buckets, bytes, ratio."""
    from hashpack.runtime.summary import summarize_file

    summary = summarize_file(_existing_file(file, ".hpk file"))
    if as_json:
        _emit_json(summary)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{file}  (input {summary['input']['shape']}, output {summary['output']['shape']})")
    for column in ("layer", "op", "scheme"):
        table.add_column(column, no_wrap=True)
    for column in ("virtual params", "stored values", "bytes", "ratio"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("details")
    for layer in summary["layers"]:
        ratio = f"{layer['compression']:.1f}x" if layer["compression"] else "-"
        table.add_row(
            layer["name"], layer["op"], layer["scheme"], f"{layer['virtual_params']:,}",
            f"{layer['stored_values']:,}", f"{layer['stored_bytes']:,}", ratio, _details_text(layer["details"]),
        )  # fmt: skip
    if summary["golden_samples"]:
        table.add_section()
        table.add_row("golden", "-", "-", "-", "-", f"{summary['golden_bytes']:,}", "-", "")
    console = Console()
    console.print(table)
    console.print(
        f"file {summary['file_bytes']:,} bytes · dense fp32 {summary['dense_fp32_bytes']:,} bytes · "
        f"{summary['compression']:.1f}x smaller · golden samples {summary['golden_samples']}"
        + (f" (inputs {summary['golden_inputs']})" if summary["golden_samples"] else "")
    )


def _details_text(details: dict[str, Any]) -> str:
    """Scheme parameters as short ``key=value`` lines, one per param slot (seeds and repeats left out)."""
    lines = []
    for key, value in details.items():
        if isinstance(value, dict):
            fields = [f"{k}={_compact(v)}" for k, v in value.items() if k not in ("scheme", "seed", "space")]
            if fields:
                lines.append(f"{key}: " + " ".join(fields))
        else:
            lines.append(f"{key}={_compact(value)}")
    return "\n".join(lines)


def _compact(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ",".join(map(str, value)) + "]"
    return str(value)


# ----------------------------------------------------------------------------------------- export

EXPORT_MODES = {
    "onnx": ("compact", "inline", "expanded", "external"),
    "tflite": ("once", "inline", "expanded"),
}


@main.command()
@click.argument("file")
@click.option(
    "--format", "fmt", type=click.Choice(sorted(EXPORT_MODES)), required=True, help="Target format."
)
@click.option(
    "--weights",
    default=None,
    help="onnx: compact (default) | inline | expanded | external (the app supplies the weights from "
    "the .hpk, docs/ONNX.md). tflite: once (default) | inline | expanded.",
)
@click.option("-o", "--output", default=None, help="Output file (default: FILE with the format's suffix).")
@click.option("--save-optimized", default=None, help="onnx: also write the model as ONNX Runtime folded it.")
@click.option(
    "--materializable/--no-materializable",
    default=None,
    help="tflite once: also store what an app needs to turn the file into constant weights on the "
    "device (XNNPACK speed; see docs/TFLITE.md). Default: on for once.",
)
@click.option(
    "--android-assets",
    default=None,
    help="Also copy the .hpk and the export into this directory as model.hpk / model.onnx / model.tflite.",
)
@click.option(
    "--web-demo",
    default=None,
    help="onnx: also write a static page that runs the compact export in the browser into this directory.",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
def export(
    file: str,
    fmt: str,
    weights: str | None,
    output: str | None,
    save_optimized: str | None,
    materializable: bool | None,
    android_assets: str | None,
    web_demo: str | None,
    as_json: bool,
) -> None:
    """Export a .hpk file to ONNX or TFLite (weights decompressed on the device by default)."""
    source = _existing_file(file, ".hpk file")
    mode = weights or EXPORT_MODES[fmt][0]
    if mode not in EXPORT_MODES[fmt]:
        _fail(f"--weights {mode!r} is not a {fmt} mode (choose from {', '.join(EXPORT_MODES[fmt])})")
    if save_optimized and fmt != "onnx":
        _fail("--save-optimized applies to --format onnx only")
    if save_optimized and mode == "external":
        _fail("--save-optimized needs the weights in the file: not with --weights external")
    if materializable and (fmt, mode) != ("tflite", "once"):
        _fail("--materializable applies to --format tflite --weights once only")
    if web_demo and fmt != "onnx":
        _fail("--web-demo applies to --format onnx only")
    target = _writable_target(output or str(source.with_suffix(f".{fmt}")))
    written = {"source": str(source), "format": fmt, "weights": mode, "output": str(target)}
    if fmt == "onnx":
        from hashpack.exporter.onnx import export_onnx
        from hashpack.exporter.onnx import save_optimized as write_optimized

        export_onnx(source, target, weights=mode)
        if save_optimized:
            optimized = _writable_target(save_optimized)
            write_optimized(target, optimized)
            written["optimized"] = str(optimized)
            written["optimized_bytes"] = optimized.stat().st_size
    else:
        from hashpack.exporter.tflite import export_tflite

        materializable = mode == "once" if materializable is None else materializable
        export_tflite(source, target, weights=mode, materializable=materializable)
        written["materializable"] = materializable
    written["bytes"] = target.stat().st_size
    written["hpk_bytes"] = source.stat().st_size
    if android_assets:
        written["assets"] = _copy_assets(source, target, Path(android_assets))
    if web_demo:
        written["web_demo"] = _write_web_demo(source, Path(web_demo))
    if as_json:
        _emit_json(written)
    else:
        click.echo(
            f"wrote {target} ({written['bytes']:,} bytes; .hpk {written['hpk_bytes']:,} bytes; weights={mode})"
        )
        if "optimized" in written:
            click.echo(
                f"wrote {written['optimized']} ({written['optimized_bytes']:,} bytes, folded by ONNX Runtime)"
            )
        if web_demo:
            click.echo(
                f"wrote the web demo to {web_demo} (serve it: python -m http.server --bind 127.0.0.1 -d {web_demo})"
            )


def _copy_assets(source: Path, exported: Path, directory: Path) -> list[str]:
    """Place the files the Android demo app loads (model.hpk, model.onnx / model.tflite)."""
    from hashpack.runtime.container import atomic_write_bytes

    if not directory.is_dir():
        _fail(f"--android-assets {directory}: not a directory")
    copies = [(source, directory / "model.hpk"), (exported, directory / f"model{exported.suffix}")]
    for origin, destination in copies:
        atomic_write_bytes(destination, origin.read_bytes())
    return [str(destination) for _, destination in copies]


def _write_web_demo(source: Path, directory: Path) -> str:
    """Run web_demo/build.py of this source checkout (the page and its npm files live there, not in the wheel)."""
    import importlib.util

    builder = Path(__file__).resolve().parent.parent / "web_demo" / "build.py"
    if not builder.is_file():
        _fail(f"--web-demo needs hashpack's source checkout ({builder} not found)")
    spec = importlib.util.spec_from_file_location("hashpack_web_demo_build", builder)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    try:
        module.write_web_demo(source, directory)
    except module.WebDemoError as exc:
        _fail(str(exc))
    return str(directory)


# ------------------------------------------------------------------------------------------- demo


@main.command()
@click.option(
    "--out", "out_dir", default="out/demo", show_default=True, help="Directory for the demo's files."
)
@click.option("--epochs", default=30, show_default=True, type=click.IntRange(1, 1000))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def demo(out_dir: str, epochs: int, as_json: bool) -> None:
    """Train a compressed LeNet-300-100 on the shipped digits, pack it, run it in numpy, compare."""
    from hashpack.workflow import run_demo

    with _progress(quiet=as_json) as progress:
        report = run_demo(Path(out_dir), epochs=epochs, on_step=progress.on_step)
    if as_json:
        _emit_json(report)
        return
    click.echo(
        "\n".join(
            [
                f"model            LeNet-300-100, HashedNets at 1/8, {report['epochs']} epochs on scikit-learn digits "
                f"({report['train_seconds']:.1f} s)",
                f"file             {report['path']}",
                f"test accuracy    torch {report['torch_accuracy']:.4f} · numpy runtime {report['runtime_accuracy']:.4f}",
                f"max |torch - numpy runtime| over the test set: {report['max_abs_diff']:.2e}",
                f"size             .hpk {report['file_bytes']:,} bytes vs dense fp32 {report['dense_bytes']:,} bytes "
                f"({report['dense_bytes'] / report['file_bytes']:.1f}x smaller)",
                f"golden check     {'pass' if report['golden_ok'] else 'FAIL'}",
            ]
        )
    )
    if not report["golden_ok"]:
        sys.exit(1)


from hashpack.cli_checks import profile, validate  # noqa: E402  (after main: cli_checks registers on it)

main.add_command(validate)
main.add_command(profile)


def run() -> None:
    """Entry point for ``python -m hashpack``."""
    main(prog_name="hashpack")

"""What every ``hashpack`` command shares: the one-line user error, path checks, JSON output.

Why its own module: ``hashpack.cli`` (the registry of commands) imports the modules that define
commands (``hashpack.cli_checks``); those need these helpers, and must not import the registry back.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, NoReturn

import click

USAGE_ERROR = 2


class UserError(click.ClickException):
    """A one-line error for the user; exit code 2."""

    exit_code = USAGE_ERROR

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def _fail(message: str) -> NoReturn:
    raise UserError(message)


def _emit_json(payload: Any) -> None:
    click.echo(json.dumps(payload, indent=2, sort_keys=True, default=_json_default))


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _existing_file(path: str, what: str = "file") -> Path:
    p = Path(path)
    if not p.exists():
        _fail(f"{path}: no such {what}")
    if p.is_dir():
        _fail(f"{path}: is a directory, expected a {what}")
    return p


def _writable_target(path: str) -> Path:
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        _fail(f"{path}: is a directory, expected an output file path")
    if not parent.is_dir():
        _fail(f"{path}: directory {parent} does not exist")
    try:  # fail now, not after minutes of training
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as exc:
        _fail(f"{path}: cannot write in {parent} ({exc.strerror or exc})")
    return p

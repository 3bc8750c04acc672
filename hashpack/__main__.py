"""``python -m hashpack`` runs the CLI."""

from hashpack.cli import run

run()

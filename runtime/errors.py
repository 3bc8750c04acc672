"""The one exception type every hashpack reader raises for a bad file."""

from __future__ import annotations


class HpkFormatError(ValueError):
    """A .hpk file (or a graph/file given to an exporter) is truncated, corrupt, hostile or unsupported.

    The message names the file and says what is wrong.
    """


class IdsOutOfRange(ValueError):
    """A token id outside an Embedding's ``[0, V)`` rows was given to a model: the caller's input is
    wrong, not the file, so this is a plain ``ValueError`` (FORMAT.md §6), never ``HpkFormatError``."""

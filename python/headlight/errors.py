"""Exceptions raised by the headlight package.

Every problem with a run file is a `RunFileError` that names the file and, where there is one,
the HDF5 key (``/retrieval_heads/scores``, ``/@complete`` for a root attribute): a reader never
lets a bare ``KeyError`` or ``OSError`` from h5py escape.
"""
from __future__ import annotations

from typing import Optional, Sequence


class HeadlightError(Exception):
    """Base class of every exception raised by this package."""


class RunFileError(HeadlightError):
    """A run file that cannot be read: missing, not HDF5, truncated, corrupted, not a Headlight
    run file, of an unknown format version, or lacking a group/dataset/attribute it should have.

    Attributes: ``path`` (the file), ``key`` (the HDF5 object or ``/path@attribute``, or None),
    ``reason`` (what is wrong) and ``hint`` (what to do, or None).
    """

    def __init__(self, path: str, reason: str, key: Optional[str] = None, hint: Optional[str] = None):
        self.path = str(path)
        self.key = key
        self.reason = reason
        self.hint = hint
        where = f"{self.path}: {key}: " if key else f"{self.path}: "
        message = where + reason
        if hint:
            message += f" (hint: {hint})"
        super().__init__(message)


class IncompleteRunError(RunFileError):
    """The run file was never finalized (root attribute ``complete = 0``): an interrupted or
    still-running command left it, usually as ``<output>.partial`` or ``<output>.tmp-<pid>``."""


class HeadlightNotFoundError(HeadlightError):
    """The ``headlight`` binary was not found (``binary=``, ``$HEADLIGHT_BIN`` or ``PATH``)."""


class HeadlightCommandError(HeadlightError):
    """The ``headlight`` CLI exited with an error. ``returncode``, ``args`` (the argv) and
    ``stderr`` (its full standard error) are kept; the message ends with the stderr text."""

    def __init__(self, args: Sequence[str], returncode: int, stderr: str):
        self.args_list = list(args)
        self.returncode = returncode
        self.stderr = stderr
        tail = stderr.strip() or "(no output on stderr)"
        super().__init__(f"`{' '.join(self.args_list[:2])} ...` exited with status {returncode}:\n{tail}")

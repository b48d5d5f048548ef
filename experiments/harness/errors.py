"""Errors the experiment CLIs turn into a one-line message and exit code 2."""

from __future__ import annotations


class UsageError(Exception):
    """A bad flag value, input file or output directory, found before any training.

    The message is one line that names the offending value and what was expected.
    """


class CheckpointError(Exception):
    """A checkpoint that cannot be read or does not fit the run; the message names the directory."""

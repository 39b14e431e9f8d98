"""Argument parsing for the ``gan-suite`` sub-commands: errors are one-line UsageErrors, values checked on parsing.

Every check runs while the command line is parsed, before any work starts.
"""

from __future__ import annotations

import argparse
import os
from typing import Callable

from gan_suite.errors import UsageError


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose errors raise :class:`~gan_suite.errors.UsageError` (printed as one line by the CLI)."""

    def error(self, message: str):
        raise UsageError(message)


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer >= ``minimum``."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {value!r}") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {number}")
        return number

    parse.__name__ = f"integer >= {minimum}"
    return parse


def existing_file(value: str) -> str:
    """An argparse ``type``: a path to an existing file."""
    if not os.path.isfile(value):
        raise argparse.ArgumentTypeError(f"{'is a folder, not a file' if os.path.isdir(value) else 'file not found'}: {value}")
    return value


def existing_dir(value: str) -> str:
    """An argparse ``type``: a path to an existing folder."""
    if not os.path.isdir(value):
        raise argparse.ArgumentTypeError(f"folder not found: {value}")
    return value


def writable_dir(value: str) -> str:
    """An argparse ``type``: a folder that exists and is writable, or can be created (its nearest existing parent is)."""
    problem = unwritable(value)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return value


def unwritable(path: str) -> str | None:
    """Why ``path`` cannot be used as an output folder, or None when it can."""
    path = os.path.abspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        return f"not a folder: {path}"
    probe = path
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        return f"cannot create {path}: {probe} is not a folder"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"cannot write to {probe}" + ("" if probe == path else f" (to create {path})")
    return None


def probability(value: str) -> float:
    """An argparse ``type``: a number strictly between 0 and 1 (a test level, a quantile)."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number between 0 and 1, got {value!r}") from None
    if not 0 < number < 1:
        raise argparse.ArgumentTypeError(f"must be a number between 0 and 1 (exclusive), got {number}")
    return number

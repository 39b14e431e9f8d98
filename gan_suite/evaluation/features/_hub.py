"""Where torch.hub keeps downloaded weights, and the one-line error when they are missing offline."""

from __future__ import annotations

import os
from typing import Optional

import torch

from gan_suite.errors import WeightsUnavailableError


def hub_checkpoints_dir() -> str:
    """``torch.hub.get_dir()/checkpoints`` (``$TORCH_HOME/hub/checkpoints``), read at call time."""
    return os.path.join(torch.hub.get_dir(), "checkpoints")


def cached_checkpoint(filename: str) -> Optional[str]:
    """Path of `filename` in the hub checkpoints dir if it is there, else None."""
    path = os.path.join(hub_checkpoints_dir(), filename)
    return path if os.path.isfile(path) else None


def network_cause(exc: BaseException) -> Optional[BaseException]:
    """The network error (URLError, socket error, ...) behind `exc`, following __cause__/__context__; else None.

    torch.hub raises URLError for a failed weights download and RuntimeError("...no internet
    connection...") from a URLError when a hub repository is neither online nor cached.
    """
    chain, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    local = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)
    for link in chain:
        if isinstance(link, OSError) and not isinstance(link, local):
            return link
    for link in chain:
        if isinstance(link, RuntimeError) and "internet connection" in str(link):
            return link
    return None


def reason(exc: BaseException) -> str:
    """Short one-line description of a network error."""
    text = getattr(exc, "reason", None) or exc
    return f"{type(exc).__name__}: {str(text).splitlines()[0] if str(text) else ''}".rstrip(": ")


def weights_unavailable(
    what: str, filename: str, cause: Optional[BaseException] = None
) -> WeightsUnavailableError:
    """WeightsUnavailableError with one line naming the file and both ways to provide it."""
    why = f" ({reason(cause)})" if cause is not None else ""
    return WeightsUnavailableError(
        f"{what} weights file {filename} is not on disk and could not be downloaded{why}; "
        f"pass --weights-path FILE or place it in {hub_checkpoints_dir()}/"
    )


def missing_weights_file(what: str, path: str) -> WeightsUnavailableError:
    return WeightsUnavailableError(f"{what} weights file not found: {path}")

"""Reading files without running code named inside them.

A pickle (``torch.save`` files, Python pickles) can name any function to call on load, so a
checkpoint or weights file from elsewhere could run code. Every file the suite reads goes through
here: :func:`load_tensors` is ``torch.load(weights_only=True)`` (tensors, numbers, strings and
plain containers only) and :func:`load_pickle_allowing` unpickles with an explicit allow-list of
classes. Anything else is refused with a one-line :class:`~gan_suite.errors.UnsafeFileError`
naming the file and what it asked for; unreadable files give a one-line ``ConfigError``.
"""

from __future__ import annotations

import io
import os
import pickle
import pickletools
import re
from typing import Any, Iterable

from gan_suite.errors import ConfigError, UnsafeFileError


def first_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (no ANSI codes), for one-line errors."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


#: byte values that are pickle opcodes (a file starting otherwise is no pickle at all)
_PICKLE_OPCODES = {ord(op.code) for op in pickletools.opcodes}


def _refusal(path: str, what: str, exc: BaseException, kind: str = "a PyTorch tensors file") -> Exception:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    found = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if found:
        return UnsafeFileError(
            f"refusing {what} {path}: loading it would call {found.group(1)}; only data (tensors, arrays, "
            "plain containers) is read from files"
        )
    found = re.search(r"Unsupported operand (\d+)", text)
    if found and int(found.group(1)) in _PICKLE_OPCODES:
        return UnsafeFileError(
            f"refusing {what} {path}: it is a pickle that needs more than data (tensors, plain containers) to load"
        )
    detail = f"byte {int(found.group(1)):#04x} is no pickle opcode" if found else _first_sentence(exc)
    return ConfigError(f"cannot read {what} {path}: not {kind} ({detail})")


def _first_sentence(exc: BaseException) -> str:
    line = first_line(exc)
    return line.split(". ", 1)[0].rstrip(".")


def load_tensors(path: str, what: str) -> Any:
    """``torch.load(path, map_location='cpu', weights_only=True)`` with one-line errors.

    Args:
        path: the file.
        what: how the error names the file ("checkpoint", "Inception weights file", ...).
    Raises:
        ConfigError: missing or unreadable file. UnsafeFileError: a pickle asking for more than tensors.
    """
    import torch

    if not os.path.isfile(path):
        raise ConfigError(f"{what} not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise _refusal(path, what, exc) from None
    except Exception as exc:  # a truncated or foreign file: KeyError, RuntimeError, EOFError...
        raise _refusal(path, what, exc) from None


def load_state_dict_file(path: str, what: str) -> dict:
    """A ``{name: tensor}`` state dict from ``path`` (see :func:`load_tensors`); anything else is refused."""
    import torch

    state = load_tensors(path, what)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not state or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ConfigError(f"{what} {path} is not a state dict (a mapping of parameter names to tensors)")
    return state


class _AllowListUnpickler(pickle.Unpickler):
    def __init__(self, file, allowed: set, **kwargs) -> None:
        super().__init__(file, **kwargs)
        self._allowed = allowed

    def find_class(self, module: str, name: str):
        if (module, name) not in self._allowed:
            raise pickle.UnpicklingError(f"Unsupported global: GLOBAL {module}.{name}")
        return super().find_class(module, name)


def load_pickle_allowing(path: str, allowed: Iterable[tuple[str, str]], what: str, encoding: str = "ASCII") -> Any:
    """Unpickle ``path`` calling only the ``(module, name)`` globals in ``allowed``.

    For published datasets shipped as Python pickles (CIFAR-10 batches: dicts of numpy arrays).
    Raises UnsafeFileError naming the first global outside the list, ConfigError when unreadable.
    """
    try:
        with open(path, "rb") as f:
            return _AllowListUnpickler(io.BufferedReader(f), set(allowed), encoding=encoding).load()
    except pickle.UnpicklingError as exc:
        raise _refusal(path, what, exc, kind="a readable pickle") from None
    except (OSError, EOFError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ConfigError(f"cannot read {what} {path}: {first_line(exc)}") from None

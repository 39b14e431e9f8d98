"""Networks that can describe how to rebuild themselves (for checkpoints read outside Lightning)."""

from __future__ import annotations

import importlib
from typing import Any

from torch import nn


class RebuildableMixin:
    """Records the constructor arguments so that :func:`build_from_spec` can rebuild the network."""

    def record_spec(self, **init_args: Any) -> None:
        self._spec_init_args = {k: (list(v) if isinstance(v, tuple) else v) for k, v in init_args.items()}

    def spec(self) -> dict:
        cls = type(self)
        return {"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": dict(self._spec_init_args)}


def build_from_spec(spec: dict) -> nn.Module:
    """Instantiate ``spec['class_path'](**spec['init_args'])``.

    Only classes that are both an ``nn.Module`` and a :class:`RebuildableMixin` are instantiated, so
    a spec read from a file cannot call any other importable callable with arguments of its choosing.
    Raises ValueError for any other ``class_path``.
    """
    module_name, _, class_name = str(spec.get("class_path", "")).rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module) and issubclass(cls, RebuildableMixin)):
        raise ValueError(f"refusing class_path {spec.get('class_path')!r}: not a rebuildable network")
    return cls(**(spec.get("init_args") or {}))

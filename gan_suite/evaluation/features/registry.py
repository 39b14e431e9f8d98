"""Feature extractors by name: ``@register_extractor("name")`` on a class, ``build_extractor("name", ...)``."""

from __future__ import annotations

import inspect
from typing import Callable, Dict, List, Type, TypeVar

from gan_suite.errors import ConfigError

from .base import FeatureExtractor

_REGISTRY: Dict[str, Type[FeatureExtractor]] = {}

T = TypeVar("T", bound=Type[FeatureExtractor])


def register_extractor(name: str) -> Callable[[T], T]:
    """Class decorator: make a FeatureExtractor subclass buildable as ``build_extractor(name)``.

    Sets the class attribute ``name``. Registering a different class under a taken name raises ValueError.
    """

    def decorator(cls: T) -> T:
        if not (isinstance(cls, type) and issubclass(cls, FeatureExtractor)):
            raise TypeError(f"register_extractor({name!r}) expects a FeatureExtractor subclass, got {cls!r}")
        known = _REGISTRY.get(name)
        if known is not None and known.__qualname__ != cls.__qualname__:
            raise ValueError(f"feature extractor name {name!r} is already taken by {known.__qualname__}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorator


def available_extractors() -> List[str]:
    """Sorted names of the registered extractors."""
    return sorted(_REGISTRY)


def build_extractor(name: str, **kwargs) -> FeatureExtractor:
    """Instantiate the extractor registered as `name` with `kwargs` (e.g. weights_path=...).

    Unknown names and unknown arguments raise ConfigError with a one-line message.
    """
    cls = _REGISTRY.get(name)
    if cls is None:
        raise ConfigError(
            f"unknown feature extractor {name!r}; known: {', '.join(available_extractors()) or '(none)'}"
        )
    try:
        inspect.signature(cls).bind(**kwargs)
    except TypeError as exc:
        accepted = ", ".join(p for p in inspect.signature(cls).parameters if p not in ("args", "kwargs"))
        raise ConfigError(f"feature extractor {name!r}: {exc}; accepted arguments: {accepted or '(none)'}") from None
    return cls(**kwargs).freeze()

"""The metric registry: every metric is declared once, where it is computed.

A metric is one file of pure arithmetic plus one ``@register_metric`` declaration that says
  * its name (what ``--metrics`` and configs use),
  * what it needs besides the generated set (``real``, ``train``, ``heldout``, ``logits``,
    ``labels``, ``pixels``),
  * when it is on by default (a predicate over :class:`EvaluationContext`),
  * its outputs: each key with its direction (higher/lower is better, or neither) and display,
  * its verdict, if it gives one (a flag with the evidence behind it),
  * how its bootstrap interval is made (:mod:`gan_suite.evaluation.bootstrap`): by running it
    again on each resample of the generated set (the default), by a cheaper function of the
    resamples' counts, or not at all (then a sentence that says why).
The ``evaluate`` command, the in-training callback, the benchmark runner and the report read
names, defaults, directions and labels from here; nothing else lists metrics.

To add a metric: write ``metrics/<name>.py`` with the arithmetic and a decorated adapter
``compute(inputs: MetricInputs) -> dict``, and import the module in ``metrics/__init__.py``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional, Sequence

from gan_suite.errors import ConfigError

#: why the k-NN metrics carry no bootstrap interval
KNN_NO_BOOTSTRAP = (
    "not bootstrapped: every resample would be a full k-NN search, and samples a resample duplicates "
    "become each other's nearest neighbours"
)

#: what a metric may need besides the generated samples' features
NEEDS = frozenset({"real", "train", "heldout", "logits", "labels", "pixels"})


@dataclass(frozen=True)
class Output:
    """One value a metric produces.

    Attributes:
        key: the key in ``metrics.json`` and in logs.
        higher_is_better: True / False for scores; None for values that are not scores (counts
            of samples, p-values, flags), which no table ranks.
        label: the column heading in tables.
        scale: multiply by this for display (e.g. 100 for percentages).
    """

    key: str
    higher_is_better: Optional[bool]
    label: str
    scale: float = 1.0


@dataclass(frozen=True)
class EvaluationContext:
    """What decides which metrics apply: the extractor, the data and the evaluation options."""

    extractor: str = ""
    has_logits: bool = False
    data_name: str = ""
    mixture: Optional[str] = None
    num_classes: Optional[int] = None  # classes a shipped classifier can label (None: unlabelled)
    options: dict = field(default_factory=dict)


@dataclass
class MetricInputs:
    """Feature sets handed to a metric (``real`` is the reference split).

    Each set has ``.features`` [N, D], and may have ``.logits`` [N, K], ``.labels`` [N] and
    ``.pixels`` [N, C, h, w] (images in [-1, 1] for the pixel-space copy test).
    """

    fake: Any
    real: Any
    train: Any = None
    heldout: Any = None
    context: EvaluationContext = field(default_factory=EvaluationContext)
    out_dir: Optional[str] = None  # where pictures go (None: no pictures)
    note: Callable[[str], None] = lambda msg: warnings.warn(msg, stacklevel=3)

    def option(self, name: str, default):
        return self.context.options.get(name, default)


@dataclass(frozen=True)
class MetricSpec:
    """A registered metric: see the module docstring."""

    name: str
    compute: Callable[[MetricInputs], dict]
    outputs: tuple[Output, ...]
    needs: frozenset
    default_when: Callable[[EvaluationContext], bool]
    description: str
    verdict: Optional[str] = None  # key of the flag this metric decides, if any
    #: True: recompute on each resample of the generated set; a function ``prepare(inputs)``
    #: returning ``replicate(counts [N] int) -> {key: value}`` (``counts``: how often each
    #: generated sample occurs in the resample); or the reason why the metric has no interval
    bootstrap: Any = True
    #: True when the metric needs only the streamed moments of the generated features
    streams: bool = False
    #: True when the real side may be given as moments only (a mu/sigma statistics file)
    real_moments_suffice: bool = False


_REGISTRY: dict[str, MetricSpec] = {}


def _always(ctx: EvaluationContext) -> bool:
    return True


def register_metric(
    name: str,
    *,
    outputs: Sequence[Output],
    description: str,
    needs: Iterable[str] = (),
    default_when: Callable[[EvaluationContext], bool] = _always,
    verdict: Optional[str] = None,
    bootstrap: Any = True,
    streams: bool = False,
    real_moments_suffice: bool = False,
):
    """Decorator: register ``compute(inputs: MetricInputs) -> {key: value}`` under ``name``."""
    needs = frozenset(needs)
    if needs - NEEDS:
        raise ValueError(f"metric {name!r}: unknown needs {sorted(needs - NEEDS)}")

    def decorate(compute: Callable[[MetricInputs], dict]):
        if name in _REGISTRY:
            raise ValueError(f"metric {name!r} is registered twice")
        _REGISTRY[name] = MetricSpec(name, compute, tuple(outputs), needs, default_when, description, verdict, bootstrap, streams, real_moments_suffice)
        return compute

    return decorate


def metric_names() -> list[str]:
    """Registered metric names, in registration order."""
    return list(_REGISTRY)


def get_metric(name: str) -> MetricSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown metric '{name}'; choose from: {', '.join(_REGISTRY)}") from None


def check_metric_names(names: Sequence[str]) -> list[str]:
    """The names, checked against the registry (one-line ConfigError naming the unknown ones)."""
    unknown = [n for n in names if n not in _REGISTRY]
    if unknown:
        raise ConfigError(f"unknown metric(s) {', '.join(unknown)}; choose from: {', '.join(_REGISTRY)}")
    return list(names)


def default_metrics(ctx: EvaluationContext) -> list[str]:
    """The metrics that apply by default in this context, in registration order."""
    return [spec.name for spec in _REGISTRY.values() if spec.default_when(ctx)]


def need_kept_features(names: Sequence[str], bootstrap: int = 0) -> bool:
    """Whether the generated features must be kept (not only their moments): some metric needs
    them, or bootstrap resamples are asked for."""
    return bootstrap > 0 or not all(get_metric(n).streams for n in names)


def needs_of(names: Sequence[str]) -> frozenset:
    """Union of what the named metrics need."""
    return frozenset().union(*(get_metric(n).needs for n in names)) if names else frozenset()


def _outputs() -> dict[str, Output]:
    return {out.key: out for spec in _REGISTRY.values() for out in spec.outputs}


def output_spec(key: str) -> Optional[Output]:
    """The declaration of an output key (a ``prefix/key`` is looked up by its last part)."""
    return _outputs().get(key.rsplit("/", 1)[-1])


def direction(key: str) -> Optional[bool]:
    """True if larger values of ``key`` are better, False if smaller, None if not a score."""
    out = output_spec(key)
    return None if out is None else out.higher_is_better


def compute_metrics(names: Sequence[str], inputs: MetricInputs) -> dict:
    """Run the named metrics; returns one flat dict of their outputs (plus ``verdicts`` and
    ``files`` entries when a metric gives a verdict or writes a picture). A metric whose inputs
    are missing notes why (``inputs.note``) and returns nothing."""
    out: dict = {}
    for name in check_metric_names(names):
        spec = _REGISTRY[name]
        values = dict(spec.compute(inputs))
        for key in ("verdicts", "files"):
            if key in values:
                out.setdefault(key, {}).update(values.pop(key))
        out.update(values)
    return out


def format_value(value) -> str:
    """A metric value as shown in terminal tables."""
    if isinstance(value, bool):
        return "YES" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if value != 0 and abs(value) < 1e-3:
            return f"{value:.2e}"
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:.1f}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {format_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]" if value else "-"
    return str(value)

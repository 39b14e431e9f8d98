"""Benchmark definitions (``benchmarks/*.yaml``) and their expansion into runs.

A definition names a base config, the variants (dotted overrides, optionally a cartesian grid),
the seeds, the training length, the evaluation protocol(s), the main metric and the published
numbers to print beside ours::

    name: toy2d_ring
    base_config: configs/gan_ring8.yaml
    variants: {gan: {}, pacgan2: {model.init_args.pack: 2}}
    grid: {model.init_args.loss: [non_saturating, hinge]}     # optional: variants x grid
    seeds: [0, 1, 2]
    train: {steps: 30000, vectorise: true, overrides: {trainer.log_every_n_steps: 200}}
    evaluation: {features: raw2d, metrics: [modes], num_samples: 2500, real_split: heldout, every_n_steps: 2000}
    main_metric: {name: modes_covered, higher_is_better: true}
    columns: [{key: modes_covered, label: modes /8}, {key: high_quality, label: high-quality %, scale: 100}]
    published: {"PacGAN2": {modes_covered: "7.9 +- 0.1"}}

Keys: ``variants`` (name -> dotted overrides; a value may be a whole section such as ``model:
{class_path: ..., init_args: ...}``), ``grid`` (key -> list of values; variants are named
``<variant>-<values>``), ``seeds`` (list or count), ``train.steps`` (training steps, converted to
``trainer.max_steps = steps * (d_steps + 1)``), ``train.overrides`` (for every run) and
``train.vectorise`` (true: the runner trains the pending seeds of a variant together as
one stacked-seeds `gan-suite fit` run, where the variant's config allows it),
``evaluation`` (one protocol inline, or ``protocols: [{name, features, metrics, num_samples,
real_split, ...}]`` whose metric keys become ``<name>/<metric>``; ``every_n_steps`` and
``curve_num_samples`` for the curve of the main metric; ``keep_checkpoints``; ``seed``;
``batch_size``; ``${ENV}`` values that are unset are left out), ``main_metric``, ``columns``
(report columns: key, label, scale, higher_is_better), ``published`` (label -> metric -> quoted
value), ``logger`` (wandb | csv | none) and ``wandb`` (extra WandbLogger arguments: project, entity).

Each variant x seed is one run with the stable id ``<variant>__seed<k>``. Nothing here imports
torch: expansion is cheap and testable alone.
"""

from __future__ import annotations

import itertools
import os
import re
import zlib
from dataclasses import dataclass, field
from typing import Any, Optional

import yaml

from gan_suite.errors import ConfigError

#: keys a definition may have
TOP_LEVEL_KEYS = (
    "name", "description", "base_config", "variants", "grid", "seeds", "train", "evaluation",
    "main_metric", "columns", "published", "logger", "wandb",
)
#: protocol keys the runner itself uses (every other key goes to the evaluation function)
_PROTOCOL_RUNNER_KEYS = ("name",)
_EVALUATION_KEYS = ("protocols", "every_n_steps", "curve_num_samples", "keep_checkpoints", "seed", "device", "batch_size")

#: where relative base configs are looked up last: the repository (or installation) root
PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclass(frozen=True)
class RunSpec:
    """One training run: a variant trained with one seed.

    ``overrides``: dotted config keys -> values (variant, grid and ``train.overrides`` merged).
    ``index``: position in the expansion (sharding takes ``index % num_shards``).
    """

    run_id: str
    variant: str
    seed: int
    overrides: dict
    index: int


@dataclass(frozen=True)
class Column:
    """A metric column of the report: result key, header label, display scale, direction."""

    key: str
    label: str
    scale: float = 1.0
    higher_is_better: Optional[bool] = None


@dataclass
class Protocol:
    """One evaluation protocol: a name (prefix of its metric keys when there are several) and the
    keyword arguments of ``evaluate_checkpoint`` (features, metrics, num_samples, real_split, ...)."""

    name: str
    kwargs: dict


@dataclass
class BenchmarkDefinition:
    name: str
    base_config: str
    variants: dict  # variant name -> overrides, in definition order
    seeds: list
    steps: Optional[int]
    train_overrides: dict
    protocols: list
    curve_every_n_steps: Optional[int]
    curve_num_samples: Optional[int]
    main_metric: str
    higher_is_better: Optional[bool]
    columns: list
    published: dict
    logger: str = "wandb"
    vectorise: bool = False
    keep_checkpoints: bool = False
    evaluation_seed: int = 0
    evaluation_batch_size: Optional[int] = None
    wandb: dict = field(default_factory=dict)
    description: str = ""
    raw: dict = field(default_factory=dict)
    source: Optional[str] = None

    def runs(self) -> list[RunSpec]:
        """Every run, variants in definition order, seeds inner: ``<variant>__seed<k>``."""
        out = []
        for variant, overrides in self.variants.items():
            for seed in self.seeds:
                merged = {**self.train_overrides, **overrides}
                out.append(RunSpec(f"{variant}__seed{seed}", variant, int(seed), merged, len(out)))
        return out

    def metric_key(self, protocol: Protocol, key: str) -> str:
        """The result key of metric ``key`` of ``protocol`` (prefixed when there are several protocols)."""
        return key if len(self.protocols) == 1 else f"{protocol.name}/{key}"

    def main_protocol(self) -> Protocol:
        """The protocol that produces the main metric (its curves are evaluated over training)."""
        if len(self.protocols) == 1:
            return self.protocols[0]
        prefix = self.main_metric.split("/", 1)[0]
        for protocol in self.protocols:
            if protocol.name == prefix:
                return protocol
        raise ConfigError(f"main_metric {self.main_metric!r} names no protocol (use '<protocol>/<metric>')")

    def direction(self, key: str) -> Optional[bool]:
        """True if larger is better for result key ``key``, False if smaller, None if unknown."""
        for column in self.columns:
            if column.key == key and column.higher_is_better is not None:
                return column.higher_is_better
        if key == self.main_metric and self.higher_is_better is not None:
            return self.higher_is_better
        from gan_suite.evaluation.metrics.registry import direction  # imported here: torch is slow to import

        return direction(key)


def select_shard(runs: list[RunSpec], shard: int, num_shards: int) -> list[RunSpec]:
    """The runs of shard ``shard`` of ``num_shards``: those with ``index % num_shards == shard``."""
    if num_shards < 1 or not 0 <= shard < num_shards:
        raise ConfigError(f"shard {shard} of {num_shards} does not exist (need 0 <= shard < num_shards)")
    return [run for run in runs if run.index % num_shards == shard]


def select_shard_by_variant(runs: list[RunSpec], shard: int, num_shards: int) -> list[RunSpec]:
    """The runs of shard ``shard`` of ``num_shards`` when seeds train together (``train.vectorise``).

    The units are the variants, each cut into ``ceil(num_shards / variants)`` slices of its seeds
    (seeds k, k + c, k + 2c, ... for slice k of c) when there are more shards than variants; unit
    ``i`` (variants in definition order, slices inner) goes to shard ``i % num_shards``. So a
    shard holds whole slices of a variant's seeds, which train as one group, instead of the
    scattered single seeds that :func:`select_shard` would give it. Every shard of one output
    directory must use the same rule (all vectorised, or none).
    """
    if num_shards < 1 or not 0 <= shard < num_shards:
        raise ConfigError(f"shard {shard} of {num_shards} does not exist (need 0 <= shard < num_shards)")
    by_variant: dict = {}
    for run in runs:
        by_variant.setdefault(run.variant, []).append(run)
    slices = max(1, -(-num_shards // max(1, len(by_variant))))
    units = []
    for variant_runs in by_variant.values():
        count = min(slices, len(variant_runs))
        units += [variant_runs[k::count] for k in range(count)]
    mine = {run.run_id for i, unit in enumerate(units) if i % num_shards == shard for run in unit}
    return [run for run in runs if run.run_id in mine]


def load_definition(path: str) -> BenchmarkDefinition:
    """Read and check a benchmark YAML; relative ``base_config`` paths are resolved (see :func:`resolve_config`)."""
    if not os.path.isfile(path):
        raise ConfigError(f"benchmark definition not found: {path}")
    with open(path) as f:
        raw = yaml.safe_load(f)
    return parse_definition(raw, source=path)


def parse_definition(raw: Any, source: Optional[str] = None, resolve_base: bool = True) -> BenchmarkDefinition:
    """A :class:`BenchmarkDefinition` from the loaded YAML mapping (errors name the offending key).

    ``resolve_base=False`` keeps ``base_config`` as written (the report needs no config file)."""
    where = source or "benchmark definition"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping at the top level")
    unknown = sorted(set(raw) - set(TOP_LEVEL_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(TOP_LEVEL_KEYS)}")
    for key in ("name", "base_config", "evaluation", "main_metric"):
        if key not in raw:
            raise ConfigError(f"{where}: missing required key {key!r}")
    name = str(raw["name"])
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ConfigError(f"{where}: name {name!r} may only hold letters, digits, '_', '.', '-'")
    base_config = str(raw["base_config"])
    if resolve_base:
        base_config = resolve_config(base_config, os.path.dirname(os.path.abspath(source)) if source else None)

    variants = _expand_variants(raw.get("variants"), raw.get("grid"), where)
    seeds = raw.get("seeds", [0])
    if isinstance(seeds, int):
        seeds = list(range(seeds))
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds) or len(set(seeds)) != len(seeds):
        raise ConfigError(f"{where}: seeds must be a non-empty list of distinct integers (or a count)")

    train = raw.get("train") or {}
    _check_keys(train, ("steps", "overrides", "vectorise"), f"{where}: train")
    steps = train.get("steps")
    if steps is not None and (not isinstance(steps, int) or steps < 1):
        raise ConfigError(f"{where}: train.steps must be a positive integer (training steps), got {steps!r}")
    train_overrides = _check_overrides(train.get("overrides") or {}, f"{where}: train.overrides")
    vectorise = train.get("vectorise", False)
    if not isinstance(vectorise, bool):
        raise ConfigError(f"{where}: train.vectorise must be true or false, got {vectorise!r}")

    evaluation = raw["evaluation"]
    if not isinstance(evaluation, dict):
        raise ConfigError(f"{where}: evaluation must be a mapping")
    protocols = _parse_protocols(evaluation, where)
    every = evaluation.get("every_n_steps")
    if every is not None and (not isinstance(every, int) or every < 1):
        raise ConfigError(f"{where}: evaluation.every_n_steps must be a positive integer, got {every!r}")

    main = raw["main_metric"]
    higher = None
    if isinstance(main, dict):
        _check_keys(main, ("name", "higher_is_better"), f"{where}: main_metric")
        higher = main.get("higher_is_better")
        main = main.get("name")
    if not isinstance(main, str) or not main:
        raise ConfigError(f"{where}: main_metric must be a metric name or {{name: ..., higher_is_better: ...}}")

    columns = _parse_columns(raw.get("columns"), main, higher, where)
    published = raw.get("published") or {}
    if not isinstance(published, dict) or not all(isinstance(v, dict) for v in published.values()):
        raise ConfigError(f"{where}: published must map a label to {{metric: value}}")
    logger = str(raw.get("logger", "wandb"))
    if logger not in ("wandb", "csv", "none"):
        raise ConfigError(f"{where}: logger must be 'wandb', 'csv' or 'none', got {logger!r}")
    definition = BenchmarkDefinition(
        name=name, base_config=base_config, variants=variants, seeds=list(seeds), steps=steps,
        train_overrides=train_overrides, protocols=protocols, curve_every_n_steps=every,
        curve_num_samples=evaluation.get("curve_num_samples"), main_metric=main, higher_is_better=higher,
        columns=columns, published={str(k): {str(m): str(v) for m, v in row.items()} for k, row in published.items()},
        logger=logger, vectorise=vectorise, keep_checkpoints=bool(evaluation.get("keep_checkpoints", False)),
        evaluation_seed=int(evaluation.get("seed", 0)), evaluation_batch_size=evaluation.get("batch_size"),
        wandb=dict(raw.get("wandb") or {}), description=str(raw.get("description", "")), raw=raw, source=source,
    )
    definition.main_protocol()  # validates the main metric's protocol prefix
    return definition


def resolve_config(path: str, definition_dir: Optional[str] = None) -> str:
    """An existing config file: ``path`` as given (absolute or from the working directory), else
    relative to the definition's folder and its parent, else to the repository root."""
    path = os.path.expandvars(os.path.expanduser(path))
    candidates = [path]
    if not os.path.isabs(path):
        if definition_dir:
            candidates += [os.path.join(definition_dir, path), os.path.join(os.path.dirname(definition_dir), path)]
        candidates += [os.path.join(PACKAGE_ROOT, path), os.path.join(PACKAGE_ROOT, "configs", path)]
    for candidate in candidates:
        if os.path.isfile(candidate):
            return os.path.abspath(candidate)
    raise ConfigError(f"base_config {path!r} not found (looked in: {', '.join(dict.fromkeys(candidates))})")


def read_d_steps(base_config: str, overrides: dict) -> int:
    """Discriminator updates per training step of a run (overrides, else the base config, else 1)."""
    if "model.init_args.d_steps" in overrides:
        return int(overrides["model.init_args.d_steps"])
    model = overrides.get("model")
    if not isinstance(model, dict):  # no whole-model override: the base config's model
        with open(base_config) as f:
            model = (yaml.safe_load(f) or {}).get("model") or {}
    init_args = model.get("init_args") if isinstance(model, dict) else None
    return int((init_args or {}).get("d_steps", 1))


def safe_name(text: str) -> str:
    """``text`` with every character outside [A-Za-z0-9_.=+-] replaced by '_' (folder-safe)."""
    return re.sub(r"[^A-Za-z0-9_.=+-]", "_", text)


# ---------------------------------------------------------------------- helpers
def _check_keys(mapping: Any, allowed: tuple, where: str) -> None:
    if not isinstance(mapping, dict):
        raise ConfigError(f"{where} must be a mapping")
    unknown = sorted(set(mapping) - set(allowed))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")


def _check_overrides(overrides: Any, where: str) -> dict:
    if not isinstance(overrides, dict):
        raise ConfigError(f"{where} must map dotted config keys to values")
    for key in overrides:
        if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", key):
            raise ConfigError(f"{where}: {key!r} is not a dotted config key like model.init_args.loss")
    return dict(overrides)


def _grid_label(key: str, value: Any) -> str:
    leaf = key.rsplit(".", 1)[-1]
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return f"{leaf}{'1' if value else '0'}"
    if isinstance(value, (int, float)):
        return f"{leaf}{value:g}" if isinstance(value, float) else f"{leaf}{value}"
    return f"{leaf}{zlib.crc32(yaml.safe_dump(value, sort_keys=True).encode()) % 10_000}"  # stable across processes


def _expand_variants(variants: Any, grid: Any, where: str) -> dict:
    """Variants x grid combinations, named ``<variant>-<grid labels>`` (or either part alone)."""
    if variants is None:
        variants = {} if grid else {"base": {}}
    if not isinstance(variants, dict):
        raise ConfigError(f"{where}: variants must map a name to dotted overrides")
    base = {str(name): _check_overrides(overrides or {}, f"{where}: variants.{name}") for name, overrides in variants.items()}
    for name in base:
        if safe_name(name) != name:
            raise ConfigError(f"{where}: variant name {name!r} may only hold letters, digits and _ . = + -")
    combos: list[tuple[str, dict]] = [("", {})]
    if grid:
        grid = _check_overrides(grid, f"{where}: grid")
        for key, values in grid.items():
            if not isinstance(values, list) or not values:
                raise ConfigError(f"{where}: grid.{key} must be a non-empty list of values")
        keys = list(grid)
        combos = [
            ("-".join(safe_name(_grid_label(k, v)) for k, v in zip(keys, values)), dict(zip(keys, values)))
            for values in itertools.product(*(grid[k] for k in keys))
        ]
    out: dict = {}
    for (name, overrides), (label, grid_overrides) in itertools.product(base.items() or [("", {})], combos):
        full = "-".join(part for part in (name, label) if part) or "base"
        if full in out:
            raise ConfigError(f"{where}: two variants are both named {full!r}")
        out[full] = {**overrides, **grid_overrides}
    return out


def _parse_protocols(evaluation: dict, where: str) -> list:
    inline = {k: v for k, v in evaluation.items() if k not in _EVALUATION_KEYS}
    listed = evaluation.get("protocols")
    if listed is not None and inline:
        raise ConfigError(f"{where}: evaluation has both 'protocols' and inline protocol keys ({', '.join(sorted(inline))})")
    specs = listed if listed is not None else [{"name": "eval", **inline}]
    if not isinstance(specs, list) or not specs:
        raise ConfigError(f"{where}: evaluation.protocols must be a non-empty list")
    protocols, names = [], set()
    for i, spec in enumerate(specs):
        if not isinstance(spec, dict):
            raise ConfigError(f"{where}: evaluation.protocols[{i}] must be a mapping")
        pname = str(spec.get("name", f"p{i}"))
        if pname in names or safe_name(pname) != pname:
            raise ConfigError(f"{where}: evaluation protocol name {pname!r} is repeated or not folder-safe")
        names.add(pname)
        kwargs = {}
        for key, value in spec.items():
            if key in _PROTOCOL_RUNNER_KEYS:
                continue
            if isinstance(value, str):
                value = os.path.expandvars(value)
                if "${" in value or value.startswith("$"):
                    continue  # an unset environment variable: leave the argument to its default
            kwargs[key] = value
        protocols.append(Protocol(pname, kwargs))
    return protocols


def _parse_columns(columns: Any, main: str, higher: Optional[bool], where: str) -> list:
    if columns is None:
        return [Column(main, main, 1.0, higher)]
    if not isinstance(columns, list):
        raise ConfigError(f"{where}: columns must be a list of metric keys or {{key, label, scale, higher_is_better}}")
    out = []
    for column in columns:
        if isinstance(column, str):
            column = {"key": column}
        _check_keys(column, ("key", "label", "scale", "higher_is_better"), f"{where}: columns entry")
        if "key" not in column:
            raise ConfigError(f"{where}: every columns entry needs a 'key'")
        key = str(column["key"])
        direction = column.get("higher_is_better", higher if key == main else None)
        out.append(Column(key, str(column.get("label", key)), float(column.get("scale", 1.0)), direction))
    return out

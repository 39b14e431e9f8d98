"""Benchmarks: definitions (benchmarks/*.yaml) -> runs in subprocesses -> result files -> report.

    gan-suite benchmark benchmarks/smoke.yaml --out runs/bench/smoke     # resumable, shardable
    gan-suite report runs/bench/smoke                                    # table.md/csv/tex, plots

Modules: :mod:`.definition` (YAML, expansion), :mod:`.launch` (training subprocess),
:mod:`.evaluation` (checkpoints -> metrics and curves), :mod:`.runner` (scheduling, resume,
shards), :mod:`.results` (files, atomic writes), :mod:`.report` and :mod:`.plots`.
Nothing here knows the networks: a run is a config plus overrides.
"""

from gan_suite.benchmark.definition import BenchmarkDefinition, RunSpec, load_definition, parse_definition, select_shard

__all__ = ["BenchmarkDefinition", "RunSpec", "load_definition", "parse_definition", "select_shard"]

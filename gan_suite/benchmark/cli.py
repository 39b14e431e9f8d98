"""``gan-suite benchmark DEF.yaml --out DIR`` and ``gan-suite report DIR`` (argparse programs)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence


def build_benchmark_parser() -> argparse.ArgumentParser:
    from gan_suite.arguments import ArgumentParser, existing_file, int_at_least, writable_dir

    p = ArgumentParser(
        prog="gan-suite benchmark",
        description="Train and evaluate every run (variant x seed) of a benchmark definition; rerun to resume.",
    )
    p.add_argument("definition", type=existing_file, help="benchmark YAML, e.g. benchmarks/smoke.yaml")
    p.add_argument("--out", required=True, type=writable_dir, help="output directory (results, logs, checkpoints); shards share it")
    p.add_argument("--shard", type=int_at_least(0), default=None, help="this shard's index (default: $SLURM_ARRAY_TASK_ID or 0)")
    p.add_argument("--num-shards", type=int_at_least(1), default=None, help="number of shards (default: $SLURM_ARRAY_TASK_COUNT or 1)")
    p.add_argument("--jobs", type=int_at_least(1), default=None, help="runs in parallel (default: one per GPU, or 1 on CPU)")
    p.add_argument("--devices", default="auto", help="'auto' (all visible GPUs, else CPU), 'cpu', or GPU indices like 0,1")
    p.add_argument("--logger", choices=["wandb", "csv", "none"], default=None, help="training logger (default: the definition's, wandb)")
    p.add_argument("--retry-failed", action="store_true", help="rerun runs recorded as failed (diverged ones are kept)")
    p.add_argument("--no-vectorise", action="store_true",
                   help="train every run in its own `gan-suite fit` process even where the definition says train.vectorise")
    p.add_argument("--dry-run", action="store_true", help="list the runs of this shard, their state and command, and exit")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def benchmark_main(argv: Sequence[str]) -> int:
    from gan_suite.benchmark.definition import load_definition
    from gan_suite.benchmark.runner import BenchmarkRunner

    args = build_benchmark_parser().parse_args(list(argv))
    if (args.shard is None) != (args.num_shards is None):
        from gan_suite.errors import ConfigError

        raise ConfigError("give both --shard and --num-shards (or neither)")
    if args.shard is not None and args.shard >= args.num_shards:
        from gan_suite.errors import UsageError

        raise UsageError(f"--shard must be < --num-shards ({args.num_shards}), got {args.shard}")
    definition = load_definition(args.definition)
    runner = BenchmarkRunner(
        definition, args.out, shard=args.shard, num_shards=args.num_shards, jobs=args.jobs, devices=args.devices,
        logger=args.logger, retry_failed=args.retry_failed, progress=not args.quiet,
        vectorise=False if args.no_vectorise else None,
    )
    runner.check_commands()  # every variant's overrides against the base config, before any work
    if args.dry_run:
        import shlex

        grouped = set()
        if runner.vectorise:
            for item in runner.work_items(runner.pending()):
                refusal = runner.vectorise_refusal(item[0].variant)
                if refusal is None:
                    grouped.update(run.run_id for run in item)
                    print(f"vectorised group {item[0].variant} ({len(item)} seeds)\n    {shlex.join(runner.group_command(item))}")
                elif item[0] is next(r for r in runner.pending() if r.variant == item[0].variant):
                    print(f"{item[0].variant}: not vectorised, {refusal}")
        for run in runner.runs:
            state = runner.status_of(run) or "to do"
            command = "" if run.run_id in grouped or state != "to do" else f"\n    {shlex.join(runner.command(run))}"
            print(f"{run.run_id}  [{state}{', in its vectorised group' if run.run_id in grouped else ''}]{command}")
        print(f"{len(runner.runs)} runs in shard {runner.shard}/{runner.num_shards}, {len(runner.pending())} to do, "
              f"slots: {', '.join(s.name for s in runner.slots)}")
        return 0
    try:
        counts = runner.run()
    except KeyboardInterrupt:
        print("gan-suite benchmark: interrupted; finished results are kept, rerun the same command to resume", file=sys.stderr)
        sys.stderr.flush()
        os._exit(130)  # an abandoned in-process evaluation must not keep the process alive
    summary = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
    print(f"{definition.name}: shard {runner.shard}/{runner.num_shards}: {summary}")
    print(f"table and plots: gan-suite report {args.out}")
    failed = counts.get("failed", 0) + counts.get("missing", 0)
    if failed:
        print(
            f"gan-suite benchmark: {failed} run(s) failed (reasons in their result.json and "
            f"{os.path.join(args.out, 'runs', '<run id>', 'stderr.log')}); rerun with --retry-failed",
            file=sys.stderr,
        )
    return 1 if failed else 0


def report_main(argv: Sequence[str]) -> int:
    from gan_suite.arguments import ArgumentParser, existing_dir
    from gan_suite.benchmark.report import write_report

    p = ArgumentParser(prog="gan-suite report", description="Tables (md, csv, tex) and plots of a benchmark directory.")
    p.add_argument("out", type=existing_dir, help="the benchmark's --out directory")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--wandb", dest="wandb", action="store_true", default=None, help="log the table to W&B")
    group.add_argument("--no-wandb", dest="wandb", action="store_false", help="do not log to W&B")
    p.add_argument("--no-plots", action="store_true")
    args = p.parse_args(list(argv))
    written = write_report(args.out, wandb=args.wandb, plots=not args.no_plots)
    table = os.path.join(args.out, "report", "table.md")
    with open(table) as f:
        print(f.read())
    for name, path in written.items():
        print(f"written: {path}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:  # pragma: no cover - convenience
    return benchmark_main(sys.argv[1:] if argv is None else argv)

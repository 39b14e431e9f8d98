"""``gan-suite benchmark DEF.yaml --out DIR``: train and evaluate every run of a benchmark.

Each run (variant x seed) trains in its own subprocess (the ordinary ``gan-suite fit`` command),
then its checkpoints are evaluated in this process and ``DIR/runs/<run_id>/result.json`` is
written atomically with status ``finished``, ``diverged`` (NaN / inf loss or samples, or a
divergence stopping rule) or ``failed`` (reason: the last line of stderr). Why training stopped
(``stop_reason``: the training run's ``status.json``) and its mode history are recorded too. A run that fails does not stop the benchmark.

Resuming: runs with a result are skipped (``retry_failed`` reruns the failed ones); a run folder
without a result is wiped and the run restarts. Killing the runner therefore loses at most the
runs in progress. Sharding (``shard`` of ``num_shards``, default from SLURM_ARRAY_TASK_ID /
SLURM_ARRAY_TASK_COUNT) picks runs by index modulo (vectorised: slices of each variant's seeds,
see :func:`~gan_suite.benchmark.definition.select_shard_by_variant`); all shards write into the
same DIR.

Devices: one run per GPU at a time (CUDA_VISIBLE_DEVICES set per training process, evaluation
on the same GPU); on CPU one run at a time unless ``jobs`` says otherwise.

Vectorised groups (``train.vectorise: true``): the pending runs of a variant train together as
one ``gan-suite fit`` run with stacked seeds (``--model.init_args.seeds``, see
:mod:`gan_suite.training.module`) in ``<first run>/stacked``; its checkpoints are then split into
each seed's training directory (``<run>/train``: the config.yaml that reproduces the seed alone,
checkpoints; :func:`gan_suite.training.stacked_runs.split_run`), and each seed is evaluated and its
``result.json`` written as for any run (plus ``"trainer": "stacked"``). A variant that cannot
train stacked (class-conditional, compile, several devices, a callback that watches one seed, ...)
is trained run by run instead, with a printed note. A killed group loses its seeds without a
result; a rerun trains those (and only those) again, resuming the stacked run from its last
checkpoint when the same seeds are pending (a long group loses at most one checkpoint interval).
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Optional

from gan_suite.benchmark import results as R
from gan_suite.benchmark.console import ProgressBoard
from gan_suite.benchmark.definition import BenchmarkDefinition, RunSpec, read_d_steps, select_shard, select_shard_by_variant
from gan_suite.benchmark.run_evaluation import default_evaluate_fn, evaluate_run, log_to_wandb
from gan_suite.benchmark.launch import (
    NO_LOGGER_DIR, STACKED_DIR, ProcessRegistry, classify_failure, find_training_dir, run_training, stacked_argv,
    stop_stale_owner, training_argv,
)
from gan_suite.errors import ConfigError, NonFiniteSamplesError


@dataclass(frozen=True)
class Slot:
    """Where one run at a time executes: ``name`` for messages, ``env`` for the training process,
    ``device`` for the evaluation in this process."""

    name: str
    env: dict
    device: str


def plan_slots(devices: str = "auto", jobs: Optional[int] = None) -> list[Slot]:
    """The parallel slots.

    Args:
        devices: 'auto' (every visible GPU, else CPU), 'cpu', or GPU indices like '0,1'.
        jobs: CPU: runs in parallel (default 1; each gets cores / jobs threads). GPU: at most this
            many of the GPUs (default all).
    """
    gpus: list[int] = []
    if devices == "auto":
        gpus = list(range(_visible_gpu_count()))
    elif devices != "cpu":
        try:
            gpus = [int(x) for x in devices.split(",") if x.strip()]
        except ValueError:
            raise ConfigError(f"--devices must be 'auto', 'cpu' or GPU indices like 0,1; got {devices!r}") from None
    if gpus:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        physical = [x.strip() for x in visible.split(",")] if visible else [str(i) for i in range(max(gpus) + 1)]
        if max(gpus) >= len(physical):
            raise ConfigError(f"GPU {max(gpus)} is not visible (CUDA_VISIBLE_DEVICES={visible})")
        gpus = gpus[: jobs] if jobs else gpus
        return [Slot(f"cuda:{i}", {"CUDA_VISIBLE_DEVICES": physical[i]}, f"cuda:{i}") for i in gpus]
    jobs = max(1, jobs or 1)
    threads = str(max(1, (os.cpu_count() or 1) // jobs))
    env = {"CUDA_VISIBLE_DEVICES": ""}
    if "OMP_NUM_THREADS" not in os.environ:
        env["OMP_NUM_THREADS"] = threads
    return [Slot("cpu" if jobs == 1 else f"cpu#{i}", dict(env), "cpu") for i in range(jobs)]


def _visible_gpu_count() -> int:
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) == "":
        return 0
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:
        return 0


def shard_from_environment() -> tuple[int, int]:
    """(shard, num_shards) of a SLURM job array (0-based), or (0, 1)."""
    task, count = os.environ.get("SLURM_ARRAY_TASK_ID"), os.environ.get("SLURM_ARRAY_TASK_COUNT")
    if task is None or count is None:
        return 0, 1
    return int(task) - int(os.environ.get("SLURM_ARRAY_TASK_MIN", "0")), int(count)


class BenchmarkRunner:
    """Runs the (shard of the) benchmark ``definition`` into ``out_dir``.

    Args:
        shard, num_shards: which runs this process does (index % num_shards == shard).
        jobs, devices: see :func:`plan_slots`.
        logger: 'wandb' | 'csv' | 'none' (default: the definition's ``logger``).
        evaluate_fn: the evaluation function (default
            :func:`gan_suite.evaluation.evaluate.evaluate_checkpoint`); tests inject a fast one.
        train_command: the program before ``fit`` (default ``[python, -m, gan_suite]``).
        retry_failed: rerun runs whose result is ``failed`` (``diverged`` ones are kept).
        progress: print progress lines.
        vectorise: train the pending seeds of a variant at once, as stacked seeds (default: the
            definition's ``train.vectorise``).
        vectorise_check: ``fit arguments -> reason or None``, asked once per variant before its
            group is launched (default :func:`stacked_refusal`).
    """

    def __init__(
        self,
        definition: BenchmarkDefinition,
        out_dir: str,
        *,
        shard: Optional[int] = None,
        num_shards: Optional[int] = None,
        jobs: Optional[int] = None,
        devices: str = "auto",
        logger: Optional[str] = None,
        evaluate_fn: Optional[Callable] = None,
        train_command: Optional[list] = None,
        retry_failed: bool = False,
        progress: bool = True,
        stream=None,
        vectorise: Optional[bool] = None,
        vectorise_check: Optional[Callable] = None,
    ) -> None:
        if shard is None or num_shards is None:
            env_shard, env_count = shard_from_environment()
            shard = env_shard if shard is None else shard
            num_shards = env_count if num_shards is None else num_shards
        self.definition = definition
        self.out_dir = os.path.abspath(out_dir)
        self.vectorise = definition.vectorise if vectorise is None else bool(vectorise)
        # vectorised: a shard takes slices of a variant's seeds (they train together), else runs by index
        self.runs = (select_shard_by_variant if self.vectorise else select_shard)(definition.runs(), shard, num_shards)
        self.shard, self.num_shards = shard, num_shards
        self.slots = plan_slots(devices, jobs)
        self.logger = logger or definition.logger
        if self.logger not in ("wandb", "csv", "none"):
            raise ConfigError(f"logger must be 'wandb', 'csv' or 'none', got {self.logger!r}")
        self._evaluate_fn = evaluate_fn
        self.train_command = train_command
        self.retry_failed = retry_failed
        self.progress = progress
        self.stream = stream
        self.registry = ProcessRegistry()
        self.stop = threading.Event()
        self._vectorise_check = vectorise_check
        self._refusals: dict = {}  # variant -> reason or None

    # ------------------------------------------------------------------ planning
    def status_of(self, run: RunSpec) -> Optional[str]:
        result = R.read_result(self.out_dir, run.run_id)
        return None if result is None else result["status"]

    def pending(self) -> list[RunSpec]:
        """Runs of this shard still to do (no result, or failed with ``retry_failed``)."""
        todo = []
        for run in self.runs:
            status = self.status_of(run)
            if status is None or (status == R.FAILED and self.retry_failed):
                todo.append(run)
        return todo

    def command(self, run: RunSpec) -> list:
        return training_argv(self.definition, run, self.out_dir, self.logger, self.train_command)

    def check_commands(self) -> None:
        """Refuse, before any work, a variant whose overrides ``gan-suite fit`` would refuse
        (unknown keys, bad values), resolved against the base config: one-line ConfigError naming it."""
        from gan_suite.errors import GanSuiteError
        from gan_suite.training.lightning_cli import check_fit_arguments

        checked = set()
        for run in self.runs:
            if run.variant in checked:
                continue
            checked.add(run.variant)
            argv = self.command(run)
            try:
                check_fit_arguments(argv[argv.index("fit") + 1:])
            except GanSuiteError as err:
                raise ConfigError(f"benchmark variant {run.variant!r}: {err}") from None

    def group_command(self, runs: list) -> list:
        return stacked_argv(self.definition, runs, self.out_dir, self.train_command)

    def vectorise_refusal(self, variant: str) -> Optional[str]:
        """Why ``variant`` cannot train as stacked seeds (None: it can); asked once per variant."""
        if variant not in self._refusals:
            check = self._vectorise_check or stacked_refusal
            runs = [run for run in self.runs if run.variant == variant]
            argv = self.group_command(runs[:2])
            self._refusals[variant] = check(argv[argv.index("fit") + 1:])
        return self._refusals[variant]

    def work_items(self, todo: list, board: Optional[ProgressBoard] = None) -> list:
        """What the slots do: lists of runs, one run each, or (vectorised) the pending seeds of a
        variant that the vectorised trainer can train, in definition order."""
        if not self.vectorise:
            return [[run] for run in todo]
        groups: dict = {}
        for run in todo:
            groups.setdefault(run.variant, []).append(run)
        items = []
        for variant, runs in groups.items():
            reason = self.vectorise_refusal(variant)
            if reason is None:
                items.append(runs)
                continue
            if board is not None:
                board.note(f"{variant}: {reason}; its {len(runs)} run(s) train one by one")
            items += [[run] for run in runs]
        return items

    # ------------------------------------------------------------------ running
    def run(self) -> dict:
        """Do every pending run; returns {status: count} over this shard's runs (skipped included).

        A SIGINT / SIGTERM stops the training processes, writes nothing for the interrupted runs
        and raises KeyboardInterrupt.
        """
        os.makedirs(R.runs_dir(self.out_dir), exist_ok=True)
        if os.path.isfile(os.path.join(self.out_dir, R.DEFINITION_FILE)):
            previous = R.read_definition_copy(self.out_dir) or {}
            if previous.get("name") != self.definition.name:
                raise ConfigError(
                    f"{self.out_dir} holds the benchmark {previous.get('name')!r}, not {self.definition.name!r}: use another --out"
                )
        R.write_definition_copy(self.out_dir, self.definition.raw)
        todo = self.pending()
        board = ProgressBoard(len(self.runs), len(self.slots), stream=self.stream, enabled=self.progress)
        for run in self.runs:
            if run not in todo:
                board.skipped(run.run_id, self.status_of(run) or "done")
        free: queue.Queue = queue.Queue()
        for slot in self.slots:
            free.put(slot)

        def work(item: list) -> None:
            if self.stop.is_set():
                return
            slot = free.get()
            try:
                if self.stop.is_set():  # stopped while this item waited for a slot: start nothing
                    return
                if self.vectorise and item[0].variant not in refused:
                    self.execute_group(item, slot, board)
                else:
                    self.execute(item[0], slot, board, note=self._refusals.get(item[0].variant) if self.vectorise else None)
            finally:
                free.put(slot)

        restore = self._install_signal_handlers()
        pool = ThreadPoolExecutor(max_workers=len(self.slots), thread_name_prefix="benchmark")
        try:
            items = self.work_items(todo, board)
            refused = {variant for variant, reason in self._refusals.items() if reason is not None}
            futures = [pool.submit(work, item) for item in items]
            for future in futures:
                while not future.done():
                    time.sleep(0.2)
                    if self.stop.is_set():
                        raise KeyboardInterrupt
                future.result()
        except KeyboardInterrupt:
            # stop the training processes; an evaluation in progress is abandoned (the caller may
            # exit at once: every written result is complete, the interrupted runs have none)
            self.stop.set()
            pool.shutdown(wait=False, cancel_futures=True)
            self.registry.terminate_all()
            raise
        finally:
            restore()
            board.close()
        pool.shutdown(wait=True)
        counts: dict = {}
        for run in self.runs:
            status = self.status_of(run) or "missing"
            counts[status] = counts.get(status, 0) + 1
        return counts

    def _install_signal_handlers(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {}

        def handler(signum, frame):
            self.stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)

        def restore():
            for sig, old in previous.items():
                signal.signal(sig, old)

        return restore

    def execute(self, run: RunSpec, slot: Slot, board: Optional[ProgressBoard] = None, note: Optional[str] = None) -> Optional[dict]:
        """Train and evaluate one run from scratch; returns its result (None when interrupted).

        ``note``: why a run of a vectorised benchmark trains alone (kept as ``vectorise_refused``)."""
        board = board or ProgressBoard(1, 1, enabled=False)
        folder = self._fresh_folder(run)
        argv = self.command(run)
        env = {**os.environ, **slot.env, "PYTHONUNBUFFERED": "1"}
        d_steps = read_d_steps(self.definition.base_config, run.overrides)
        record = self._new_record(run, argv, d_steps, slot, self.logger)
        if note:
            record["vectorise_refused"] = note
        started = time.time()
        board.started(run.run_id, slot.name)
        code, stderr = run_training(argv, env, folder, self.registry, lambda i, n: board.progress(run.run_id, i, n))
        record["train_seconds"] = round(time.time() - started, 2)
        if self.stop.is_set():
            return None
        failure = classify_failure(stderr) if code != 0 else None
        return self._complete(run, record, failure, find_training_dir(self.out_dir, run.run_id), slot, board, started)

    def execute_group(self, runs: list, slot: Slot, board: Optional[ProgressBoard] = None) -> Optional[list]:
        """Train the seeds ``runs`` of one variant as one stacked-seeds ``gan-suite fit`` run, split
        it into each seed's training directory, then evaluate each and write its result (as it is
        done); returns the results (None when interrupted)."""
        from gan_suite.training.stacked_runs import split_run

        board = board or ProgressBoard(len(runs), 1, enabled=False)
        resume = self._stacked_checkpoint(runs)
        folders = [self._fresh_folder(run, keep=STACKED_DIR if resume and i == 0 else None) for i, run in enumerate(runs)]
        argv = self.group_command(runs)
        if resume:
            argv.append(f"--ckpt_path={resume}")
        env = {**os.environ, **slot.env, "PYTHONUNBUFFERED": "1"}
        d_steps = read_d_steps(self.definition.base_config, runs[0].overrides)
        started = time.time()
        for run in runs:
            board.started(run.run_id, f"{slot.name}, stacked with {len(runs) - 1} other seed(s)" if len(runs) > 1 else f"{slot.name}, stacked")

        def on_progress(iteration: int, total: Optional[int]) -> None:
            for run in runs:
                board.progress(run.run_id, iteration, total)

        code, stderr = run_training(argv, env, folders[0], self.registry, on_progress, more_folders=folders[1:])
        train_seconds = round(time.time() - started, 2)
        if self.stop.is_set():
            return None
        failure = classify_failure(stderr) if code != 0 else None
        stacked_dir = os.path.join(folders[0], STACKED_DIR)
        train_dirs = [os.path.join(folder, NO_LOGGER_DIR) for folder in folders]
        statuses = [None] * len(runs)
        if os.path.isfile(os.path.join(stacked_dir, "config.yaml")) and (failure is None or failure[0] == R.DIVERGED):
            try:
                statuses = split_run(stacked_dir, train_dirs)
            except Exception as err:  # recorded per seed, the benchmark goes on
                failure = (R.FAILED, f"splitting the stacked run: {type(err).__name__}: {err}")
            else:
                if not self.definition.keep_checkpoints:  # each seed's run holds them now
                    shutil.rmtree(os.path.join(stacked_dir, "checkpoints"), ignore_errors=True)
        results = []
        for run, train_dir, status in zip(runs, train_dirs, statuses):
            if self.stop.is_set():
                return None
            record = self._new_record(run, argv, d_steps, slot, "none")
            record["train_seconds"] = train_seconds
            record["trainer"] = "stacked"
            seed_failure = failure  # the run stops on a divergence only when every seed has diverged
            if status is not None and status["status"] == "diverged":
                seed_failure = (R.DIVERGED, str(status["reason"]))
            has_run = os.path.isfile(os.path.join(train_dir, "config.yaml"))
            result = self._complete(run, record, seed_failure, train_dir if has_run else None, slot, board, started,
                                    share=1.0 / len(runs), wandb=False)
            if result is None:
                return None
            results.append(result)
        return results

    def _fresh_folder(self, run: RunSpec, keep: Optional[str] = None) -> str:
        """``DIR/runs/<run_id>``, emptied but for its sub-folder ``keep`` (a training process left by
        a killed runner is stopped first)."""
        folder = R.run_dir(self.out_dir, run.run_id)
        stop_stale_owner(folder)
        if keep is None:
            shutil.rmtree(folder, ignore_errors=True)
        for name in os.listdir(folder) if os.path.isdir(folder) else []:
            if name != keep:
                path = os.path.join(folder, name)
                shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else os.unlink(path)
        os.makedirs(folder, exist_ok=True)
        return folder

    def _stacked_checkpoint(self, runs: list) -> Optional[str]:
        """The ``last.ckpt`` a killed group of exactly these seeds left in its stacked run (its fit
        resumes from it), or None."""
        from gan_suite.safe_files import load_tensors
        from gan_suite.training.stacked_runs import stacked_seeds

        path = os.path.join(R.run_dir(self.out_dir, runs[0].run_id), STACKED_DIR, "checkpoints", "last.ckpt")
        if not os.path.isfile(path):
            return None
        try:
            seeds = stacked_seeds(load_tensors(path, "checkpoint"))
        except Exception:  # unreadable: trained again from the start
            return None
        return path if seeds == [run.seed for run in runs] else None

    def _new_record(self, run: RunSpec, argv: list, d_steps: int, slot: Slot, logger: str) -> dict:
        return {
            "run_id": run.run_id, "variant": run.variant, "seed": run.seed, "status": None, "reason": None,
            "main_metric": self.definition.main_metric, "metrics": {}, "curve": [], "overrides": run.overrides,
            "steps": self.definition.steps, "d_steps": d_steps, "command": argv, "device": slot.name,
            "host": socket.gethostname(), "logger": logger, "shard": [self.shard, self.num_shards],
        }

    def _complete(
        self, run: RunSpec, record: dict, failure: Optional[tuple], train_dir: Optional[str], slot: Slot,
        board: ProgressBoard, started: float, share: float = 1.0, wandb: bool = True,
    ) -> Optional[dict]:
        """Evaluate a trained run (unless ``failure``: (status, reason)) and write its result."""
        folder = R.run_dir(self.out_dir, run.run_id)
        d_steps = record["d_steps"]
        record["train_dir"] = os.path.relpath(train_dir, self.out_dir) if train_dir else None
        record["samples"] = _last_sample(train_dir, self.out_dir)
        record.update(training_outcome(train_dir, self.out_dir) if failure is None else {})
        if failure is None and record.get("stop_reason") == R.DIVERGED:
            failure = (R.DIVERGED, f"stopping rule: {record.get('stop_message')}")
        if failure is not None:
            record["status"], record["reason"] = failure
        else:
            board.evaluating(run.run_id)
            eval_started = time.time()
            try:
                evaluation = evaluate_run(self.definition, train_dir or folder, folder, d_steps, self.evaluate_fn, slot.device)
            except NonFiniteSamplesError as err:
                record["status"], record["reason"] = R.DIVERGED, f"evaluation: {err}"
            except Exception as err:  # recorded, the benchmark goes on
                record["status"], record["reason"] = R.FAILED, f"evaluation: {type(err).__name__}: {err}"
            else:
                record.update(status=R.FINISHED, metrics=evaluation["metrics"], curve=evaluation["curve"],
                              protocols=evaluation["protocols"], files=evaluation["files"],
                              final_iteration=evaluation["final_iteration"])
                if evaluation["evaluation_errors"]:
                    record["evaluation_errors"] = evaluation["evaluation_errors"]
                if wandb and self.logger == "wandb" and train_dir:
                    warning = log_to_wandb(train_dir, folder, evaluation, self.definition.main_metric, d_steps)
                    if warning:
                        record["warnings"] = [warning]
            record["eval_seconds"] = round(time.time() - eval_started, 2)
            if self.stop.is_set():
                return None
        record["wall_seconds"] = round(time.time() - started, 2)
        record["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        R.write_result(self.out_dir, run.run_id, record)
        detail = record["reason"] or _main_value_text(record)
        board.finished(run.run_id, record["status"], detail, share=share)
        return record

    @property
    def evaluate_fn(self) -> Callable:
        if self._evaluate_fn is None:
            self._evaluate_fn = default_evaluate_fn()
        return self._evaluate_fn


def _last_sample(train_dir: Optional[str], out_dir: str) -> Optional[str]:
    if not train_dir:
        return None
    folder = os.path.join(train_dir, "samples")
    pngs = sorted(f for f in os.listdir(folder) if f.endswith(".png")) if os.path.isdir(folder) else []
    return os.path.relpath(os.path.join(folder, pngs[-1]), out_dir) if pngs else None


def training_outcome(train_dir: Optional[str], out_dir: str) -> dict:
    """What the in-training callbacks left in ``train_dir``, for ``result.json``: why training
    stopped (``stop_reason``: 'finished' / 'plateau' / 'diverged', ``stop_message``,
    ``stop_iteration``, ``best_checkpoint`` and ``best_in_training``) and the mode history
    (``mode_history``: file, heatmap, hops, mean total variation). Paths relative to ``out_dir``."""
    from gan_suite.run_layout import MODE_HEATMAP_FILE, MODE_HISTORY_FILE, RUN_STATUS_FILE

    if not train_dir:
        return {}
    out: dict = {}
    status = _read_json(os.path.join(train_dir, RUN_STATUS_FILE))
    if status is not None:
        out.update(stop_reason=status.get("status"), stop_message=status.get("reason"), stop_iteration=status.get("iteration"))
        best = status.get("best")
        if isinstance(best, dict) and best.get("checkpoint"):
            out["best_checkpoint"] = os.path.relpath(os.path.join(train_dir, best["checkpoint"]), out_dir)
            out["best_in_training"] = {k: best.get(k) for k in ("metric", "value", "iteration")}
    history = _read_json(os.path.join(train_dir, MODE_HISTORY_FILE))
    if history is not None:
        heatmap = os.path.join(train_dir, MODE_HEATMAP_FILE)
        out["mode_history"] = {
            "file": os.path.relpath(os.path.join(train_dir, MODE_HISTORY_FILE), out_dir),
            "heatmap": os.path.relpath(heatmap, out_dir) if os.path.isfile(heatmap) else None,
            "hops": history.get("hops"), "mean_total_variation": history.get("mean_total_variation"),
        }
    return out


def _read_json(path: str) -> Optional[dict]:
    try:
        with open(path) as f:
            value = json.load(f)
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _main_value_text(record: dict) -> str:
    value = record["metrics"].get(record["main_metric"])
    return f"{record['main_metric']} {value:.4g}" if isinstance(value, (int, float)) else ""


def run_benchmark(definition_path: str, out_dir: str, **kwargs) -> dict:
    """Load ``definition_path`` and run it into ``out_dir`` (keyword arguments: :class:`BenchmarkRunner`)."""
    from gan_suite.benchmark.definition import load_definition

    runner = BenchmarkRunner(load_definition(definition_path), out_dir, **kwargs)
    return runner.run()


def stacked_refusal(fit_args: list) -> Optional[str]:
    """Why the ``gan-suite fit`` arguments ``fit_args`` (with ``--model.init_args.seeds``) cannot
    train as stacked seeds, or None: what the model and data refuse (one line), a callback that
    watches one seed (``supports_stacked_seeds = False``), or an in-training evaluation that keeps a
    best checkpoint."""
    import importlib

    from gan_suite.errors import GanSuiteError
    from gan_suite.evaluation.callback import EvaluationCallback
    from gan_suite.training.lightning_cli import check_fit_arguments, parse_fit_config

    try:
        check_fit_arguments(fit_args)
        config = parse_fit_config(fit_args)
    except GanSuiteError as err:
        return f"stacked seeds: {err}"
    for callback in (config.get("trainer") or {}).get("callbacks") or []:
        path = str(callback.get("class_path", "")) if isinstance(callback, dict) else ""
        module_name, _, name = path.rpartition(".")
        try:
            cls = getattr(importlib.import_module(module_name), name)
        except (ImportError, AttributeError, ValueError):
            continue
        if not getattr(cls, "supports_stacked_seeds", True):
            return f"stacked seeds: the callback {name} watches one seed"
        best = (callback.get("init_args") or {}).get("best_metric")  # resolved: defaults filled in, nulls left out
        if isinstance(cls, type) and issubclass(cls, EvaluationCallback) and best is not None:
            return f"stacked seeds: the callback {name} keeps a best checkpoint (best_metric: {best}); set best_metric: null"
    return None

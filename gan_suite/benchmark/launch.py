"""One training run as a subprocess: its command line, its environment, and how it ended.

The command is the ordinary CLI (``python -m gan_suite fit --config BASE --key=value ...``), so a
run can be repeated by hand from ``result.json["command"]``. Progress comes back as lines on
stdout (:mod:`gan_suite.benchmark.progress_callback`); stderr goes to ``stderr.log``, whose last
line is the failure reason.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Callable, Optional, Sequence

from gan_suite.benchmark.definition import BenchmarkDefinition, RunSpec, read_d_steps
from gan_suite.benchmark.results import atomic_write_text, run_dir, runs_dir

#: the callback added to every training process, and the prefix of its stdout lines
PROGRESS_CALLBACK = "gan_suite.benchmark.progress_callback.ProgressLines"
PROGRESS_PREFIX = "@gan-suite-progress "

#: the stderr of a run that stopped on a NaN / inf loss or NaN samples
DIVERGED_PATTERN = re.compile(
    r"NonFinite(Loss|Samples)Error|loss is -?(nan|inf)\b|\b(NaN|nan) or inf\b|contain NaN", re.IGNORECASE
)
#: folder of the training run when no logger is used (``trainer.default_root_dir``)
NO_LOGGER_DIR = "train"


def cli_value(value) -> str:
    """A config value as jsonargparse reads it on the command line (YAML floats keep a '.')."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value != value:
            return ".nan"
        if value in (float("inf"), float("-inf")):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value)
        mantissa, _, exponent = text.partition("e")
        if exponent and "." not in mantissa:
            text = f"{mantissa}.0e{exponent}"
        return text
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return str(value)


def training_argv(
    definition: BenchmarkDefinition, run: RunSpec, out_dir: str, logger: str, command: Optional[list] = None
) -> list:
    """The full command line of ``run``.

    Order: training length, then the run's overrides (a variant may set anything), then what the
    runner must control (seeds, checkpoints, logger location, progress lines).
    """
    d_steps = read_d_steps(definition.base_config, run.overrides)
    argv = list(command or [sys.executable, "-m", "gan_suite"]) + ["fit", "--config", definition.base_config]
    if definition.steps:
        argv.append(f"--trainer.max_steps={definition.steps * (d_steps + 1)}")
    argv += [f"--{key}={cli_value(value)}" for key, value in run.overrides.items()]
    # one seed drives everything: global RNG, the model's noise streams, the data order (and
    # synthetic data); model and data seeds must agree or Lightning refuses to merge the hparams
    argv += [f"--seed_everything={run.seed}", f"--model.init_args.seed={run.seed}", f"--data.init_args.seed={run.seed}"]
    if definition.curve_every_n_steps:
        argv += [f"--checkpoint.every_n_train_steps={definition.curve_every_n_steps * (d_steps + 1)}", "--checkpoint.save_top_k=-1"]
    argv += ["--checkpoint.save_last=true", "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
    argv.append(f"--trainer.callbacks+={PROGRESS_CALLBACK}")
    argv += logger_args(definition, run, out_dir, logger)
    return argv


#: where a group of stacked seeds trains, inside the folder of its first run
STACKED_DIR = "stacked"


def stacked_argv(definition: BenchmarkDefinition, runs: Sequence[RunSpec], out_dir: str, command: Optional[list] = None) -> list:
    """The ``gan-suite fit`` command line that trains ``runs`` (seeds of one variant) at once, as
    stacked seeds (``--model.init_args.seeds``), without logger, into
    ``DIR/runs/<first run>/stacked``; :func:`gan_suite.training.stacked_runs.split_run` then
    writes each seed's run."""
    variants = {run.variant for run in runs}
    if len(variants) != 1:
        raise ValueError(f"a stacked group holds the seeds of one variant, got {sorted(variants)}")
    argv = training_argv(definition, runs[0], out_dir, "none", command)
    root = os.path.join(os.path.abspath(run_dir(out_dir, runs[0].run_id)), STACKED_DIR)
    return argv + [f"--model.init_args.seeds={json.dumps([run.seed for run in runs])}", f"--trainer.default_root_dir={root}"]


def logger_args(definition: BenchmarkDefinition, run: RunSpec, out_dir: str, logger: str) -> list:
    """Logger overrides: every run's training directory lies under ``DIR/runs/<run_id>/``."""
    root = os.path.abspath(runs_dir(out_dir))
    if logger == "none":
        return ["--trainer.logger=false", f"--trainer.default_root_dir={os.path.join(root, run.run_id, NO_LOGGER_DIR)}"]
    if logger == "csv":
        cls, extra = "gan_suite.tracking.CSVLogger", ["--trainer.logger.init_args.version=train"]
    elif logger == "wandb":
        cls = "gan_suite.tracking.WandbLogger"
        extra = [
            f"--trainer.logger.init_args.group={definition.name}",
            "--trainer.logger.init_args.job_type=train",
            f"--trainer.logger.init_args.tags={json.dumps([run.variant, definition.name])}",
        ]
        extra += [f"--trainer.logger.init_args.{key}={cli_value(value)}" for key, value in definition.wandb.items()]
    else:
        raise ValueError(f"unknown logger {logger!r}")
    return [f"--trainer.logger={cls}", f"--trainer.logger.init_args.save_dir={root}", f"--trainer.logger.init_args.name={run.run_id}", *extra]


def find_training_dir(out_dir: str, run_id: str) -> Optional[str]:
    """The training run's own directory (the one holding config.yaml) under ``DIR/runs/<run_id>``."""
    base = run_dir(out_dir, run_id)
    if not os.path.isdir(base):
        return None
    candidates = [os.path.join(base, name) for name in sorted(os.listdir(base))]
    found = [c for c in candidates if os.path.isfile(os.path.join(c, "config.yaml"))]
    if not found:
        return None
    return max(found, key=lambda c: os.path.getmtime(os.path.join(c, "config.yaml")))


def classify_failure(stderr_text: str) -> tuple[str, str]:
    """('diverged' | 'failed', reason) from a failed run's stderr; the reason is its last line."""
    lines = [line.strip() for line in stderr_text.splitlines() if line.strip()]
    reason = lines[-1] if lines else "the training process exited without a message"
    tail = "\n".join(lines[-30:])
    return ("diverged" if DIVERGED_PATTERN.search(tail) else "failed"), reason


def read_tail(path: str, max_bytes: int = 64_000) -> str:
    """The last ``max_bytes`` of a text file ('' if missing)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - max_bytes))
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


class ProcessRegistry:
    """The training processes now running, so that a signal to the runner can stop them all."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._procs: set = set()

    def add(self, proc) -> None:
        with self._lock:
            self._procs.add(proc)

    def discard(self, proc) -> None:
        with self._lock:
            self._procs.discard(proc)

    def terminate_all(self, grace: float = 10.0) -> None:
        with self._lock:
            procs = list(self._procs)
        for proc in procs:
            kill_group(proc.pid, signal.SIGTERM)
        deadline = time.time() + grace
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                kill_group(proc.pid, signal.SIGKILL)


def kill_group(pid: int, sig: int) -> None:
    """Send ``sig`` to the process group led by ``pid`` (training processes start their own)."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError, OSError):
        pass


def run_training(
    argv: list,
    env: dict,
    folder: str,
    registry: ProcessRegistry,
    on_progress: Optional[Callable[[int, Optional[int]], None]] = None,
    more_folders: Sequence[str] = (),
) -> tuple[int, str]:
    """Run one training process to its end; returns (exit code, stderr text tail).

    Writes ``stdout.log``, ``stderr.log`` and, while the process lives, ``owner.json`` (its pid)
    into ``folder``; ``more_folders`` (the other runs of a vectorised group) get the same
    ``owner.json`` and, at the end, copies of the logs.
    """
    os.makedirs(folder, exist_ok=True)
    owners = [folder, *more_folders]
    with open(os.path.join(folder, "stdout.log"), "w") as out_log, open(os.path.join(folder, "stderr.log"), "w") as err_log:
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=err_log, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True, text=True, bufsize=1, errors="replace",
        )
        registry.add(proc)
        try:
            owner = {"pid": proc.pid, "host": socket.gethostname(), "started": time.time(), "folder": os.path.abspath(folder)}
            for where in owners:
                atomic_write_text(os.path.join(where, "owner.json"), json.dumps({**owner, "folder": os.path.abspath(where)}))
            assert proc.stdout is not None
            for line in proc.stdout:
                out_log.write(line)
                if line.startswith(PROGRESS_PREFIX) and on_progress is not None:
                    try:
                        info = json.loads(line[len(PROGRESS_PREFIX):])
                        on_progress(int(info["iteration"]), info.get("max_iterations"))
                    except (ValueError, KeyError, TypeError):
                        pass
            code = proc.wait()
        finally:
            if proc.poll() is None:
                kill_group(proc.pid, signal.SIGKILL)
                proc.wait()
            registry.discard(proc)
    for where in owners:
        try:
            os.unlink(os.path.join(where, "owner.json"))
        except FileNotFoundError:
            pass
    for where in more_folders:
        for name in ("stdout.log", "stderr.log"):
            shutil.copyfile(os.path.join(folder, name), os.path.join(where, name))
    return code, read_tail(os.path.join(folder, "stderr.log"))


def stop_stale_owner(folder: str) -> None:
    """Kill a training process left behind by a killed runner before its folder is wiped.

    Only a process on this host whose command line still names ``folder``'s run is killed.
    """
    path = os.path.join(folder, "owner.json")
    try:
        with open(path) as f:
            owner = json.load(f)
        pid = int(owner["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return
    if owner.get("host") != socket.gethostname():
        return
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().decode(errors="replace")
    except OSError:
        return  # gone (or not Linux: nothing we can check safely)
    if os.path.basename(os.path.normpath(folder)) not in cmdline:
        return
    kill_group(pid, signal.SIGTERM)
    for _ in range(100):
        if not _alive(pid):
            return
        time.sleep(0.1)
    kill_group(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie nobody has reaped yet counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False

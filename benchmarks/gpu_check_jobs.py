"""The GPU check's jobs: one perf script in its own process group, under a timeout.

A job runs ``benchmarks/perf/<script>`` through a wrapper that records the process's CUDA memory
peak (``torch.cuda.max_memory_allocated`` at its end) in a side file; the env job is a snippet
that reports the interpreter, torch, the device and where each needed module is imported from.
Standard library only.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PERF = os.path.join(ROOT, "benchmarks", "perf")
#: modules the jobs import, with the package that provides each (reported by the env job)
NEEDED = {
    "torch": "torch", "pytorch_lightning": "pytorch-lightning", "torchmetrics": "torchmetrics", "torchvision": "torchvision",
    "torch_fidelity": "torch-fidelity", "mlxtend": "mlxtend", "jsonargparse": "jsonargparse", "wandb": "wandb",
    "gan_suite": "gan_suite",
}


@dataclass
class Job:
    """One measurement: ``script`` with ``args`` in its own process, within ``timeout`` seconds."""

    name: str
    part: str
    script: Optional[str]  # a benchmarks/perf script, or None for the env job
    args: list
    timeout: float
    rows: Callable[[dict, "Job"], list] = field(default=lambda data, job: [])
    status: str = "not run"
    seconds: Optional[float] = None
    gpu_peak_mb: Optional[float] = None
    error: Optional[str] = None
    result: Optional[dict] = None

    @property
    def json_path(self) -> str:
        return self.args[self.args.index("--json") + 1] if "--json" in self.args else ""


ENV_SNIPPET = r"""
import importlib, json, os, platform, sys
needed = json.loads(sys.argv[2])
out = {"python": sys.version.split()[0], "executable": sys.executable, "platform": platform.platform(),
       "cpus": os.cpu_count(), "modules": {}}
for module, package in needed.items():
    try:
        m = importlib.import_module(module)
        out["modules"][module] = {"version": getattr(m, "__version__", None), "file": getattr(m, "__file__", None)}
    except Exception as exc:  # noqa: BLE001 - reported, not fatal
        out["modules"][module] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
try:
    import torch
    out["cuda_available"] = torch.cuda.is_available()
    out["torch_cuda"] = torch.version.cuda
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        out["device"] = {"name": p.name, "memory_gb": round(p.total_memory / 2**30, 1), "capability": f"{p.major}.{p.minor}",
                         "multiprocessors": p.multi_processor_count}
        out["bf16_supported"] = torch.cuda.is_bf16_supported()
except Exception as exc:  # noqa: BLE001
    out["torch_error"] = f"{type(exc).__name__}: {exc}"[:300]
json.dump(out, open(sys.argv[1], "w"), indent=1)
"""

PEAK_SNIPPET = r"""
import json, os, runpy, sys
peak_file, script = sys.argv[1], sys.argv[2]
sys.argv = [script] + sys.argv[3:]
sys.path[0] = os.path.dirname(script)
code = 0
try:
    runpy.run_path(script, run_name="__main__")
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    if exc.code not in (None, 0) and not isinstance(exc.code, int):
        print(exc.code, file=sys.stderr)
finally:
    torch = sys.modules.get("torch")
    peak = None
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        peak = torch.cuda.max_memory_allocated() / 2**20
    with open(peak_file, "w") as f:
        json.dump({"gpu_peak_mb": peak}, f)
sys.exit(code)
"""


def job_command(job: Job, tmp: str) -> list:
    """argv of ``job``: a perf script run by a wrapper that records the process's GPU memory peak."""
    if job.script is None:
        return [sys.executable, "-c", ENV_SNIPPET, job.json_path, json.dumps(NEEDED)]
    peak_file = os.path.join(tmp, f"{job.name}.peak.json")
    return [sys.executable, "-c", PEAK_SNIPPET, peak_file, os.path.join(PERF, job.script), *job.args]


def _kill_group(proc: subprocess.Popen) -> None:
    """End the job's process group (its workers too): SIGTERM, then SIGKILL after 5 s."""
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _tail(path: str, start: int, chars: int = 1500) -> str:
    with open(path, errors="replace") as f:
        f.seek(start)
        return f.read()[-chars:]


#: the job's process while it runs (a SIGTERM or SIGINT of this driver ends its group too)
running: Optional[subprocess.Popen] = None


def stop(signum, frame) -> None:
    """Signal handler of the driver: end the running job's group, then exit with 128 + signum."""
    if running is not None:
        _kill_group(running)
    raise SystemExit(128 + signum)


def run_job(job: Job, timeout: float, env: dict, log_path: str, tmp: str) -> None:
    """Run ``job`` within ``timeout`` s; fill its status, seconds, GPU peak, result or error.

    The job runs in a process group of its own (the same session), so that a timeout ends it with
    every process it started."""
    global running
    argv = job_command(job, tmp)
    with open(log_path, "a") as log:
        shown = f"python benchmarks/perf/{job.script} {shlex.join(job.args)}" if job.script else "the environment report"
        log.write(f"\n===== {job.name} (timeout {timeout:.0f} s): {shown}\n")
        log.flush()
        start_at = log.tell()
        t0 = time.perf_counter()
        proc = running = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT, preexec_fn=os.setpgrp)
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            code = None
        finally:
            running = None
        job.seconds = time.perf_counter() - t0
    peak_file = os.path.join(tmp, f"{job.name}.peak.json")
    if os.path.isfile(peak_file):
        with open(peak_file) as f:
            job.gpu_peak_mb = json.load(f).get("gpu_peak_mb")
    if code is None:
        job.status, job.error = f"timeout after {timeout:.0f} s", _tail(log_path, start_at)
        return
    if code != 0:
        job.status, job.error = f"failed (exit {code})", _tail(log_path, start_at)
        return
    try:
        with open(job.json_path) as f:
            job.result = json.load(f)
        job.status = "ok"
    except (OSError, ValueError) as exc:
        job.status, job.error = "failed (no JSON)", f"{exc}\n{_tail(log_path, start_at)}"

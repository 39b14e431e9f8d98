"""The GPU check: every performance measurement a GPU machine is needed for, in one command.

Run through ``benchmarks/gpu_check.sh`` (see docs/performance.md, "Running the GPU check"). Steps:

1. ``--wheels DIR``: install every wheel of DIR (``make gpu-wheels`` fills ``.whl/``) into an
   empty folder (``--site``) with ``pip install --no-index --no-deps`` (no network), and check
   that each installed package's requirements are met by that folder and the interpreter's own
   packages (unmet ones are reported, not fatal). The jobs then import from that folder and from
   this tree (``PYTHONPATH``), so the suite itself needs no installing.
2. The jobs of the chosen ``--parts``, in order of priority, each in its own process under its own
   timeout, so that a failure, a hang or a timeout loses that job alone:

   * ``env``: interpreter, torch, CUDA device, and where each needed package is imported from;
   * ``train``: the training step of GANModule vs the plain PyTorch loop
     (``benchmarks/perf/train_step.py``): the quickstart DCGAN and DCGAN 64 px (batch 128) in
     fp32, bf16-mixed, channels_last, fused Adam, data held on the device, all of them together,
     and with torch.compile (separate jobs: compiling may fail or take long);
   * ``seeds``: 10 vectorised seeds of PacGAN's ring networks vs 10 sequential runs
     (``benchmarks/perf/seeds_vectorised.py``);
   * ``knn``: the k-NN search 50k x 50k x 2048 vs the bare matmul (``benchmarks/perf/knn.py``);
   * ``eval``: generate -> Inception-v3 (random weights) -> FID/KID/PR at 10k and 50k samples,
     gan_suite vs ``torch_fidelity.calculate_metrics`` (``benchmarks/perf/evaluate_vs_fidelity.py``).

   ``--budget`` (default 540 s) bounds the whole run: a job's timeout is cut to what is left and
   a job is skipped when too little is left, so the jobs at the end of the order are the ones lost.
3. After every job, ``--out DIR`` gets ``gpu_check.md`` (the tables), ``gpu_check.json`` (the same
   rows and every job's status, seconds, GPU memory peak and error) and ``gpu_check.log`` (every
   job's output).

GPU memory: each job's process peak (``torch.cuda.max_memory_allocated`` at its end), and per row
where the script measures it (training: each segment's peak above what the process held when it
started; k-NN: each contender's peak above its inputs; evaluation: each worker's peak); "n/a" on a
CPU. ``--quick``: tiny sizes and no compile jobs, seconds on a CPU (a test runs
``--device cpu --quick``).

This file imports nothing beyond the standard library, so that it reports, rather than dies of,
a broken torch.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PERF = os.path.join(HERE, "perf")
PARTS = ("env", "train", "seeds", "knn", "eval")
#: modules the jobs import, with the package that provides each (reported by the env job)
NEEDED = {
    "torch": "torch", "pytorch_lightning": "pytorch-lightning", "torchmetrics": "torchmetrics", "torchvision": "torchvision",
    "torch_fidelity": "torch-fidelity", "mlxtend": "mlxtend", "jsonargparse": "jsonargparse", "wandb": "wandb",
    "gan_suite": "gan_suite",
}
#: train_step.py variants of the eager jobs (each toggles one option; the last, all of them)
TRAIN_VARIANTS = [
    "lightning", "lightning+bf16", "lightning+channels_last", "lightning+fused", "lightning+device_cache",
    "lightning+device_cache+nocheck+channels_last+bf16+fused",
]
ALL_COMPILED = "lightning+device_cache+nocheck+channels_last+bf16+fused+compile"
#: a job is skipped when less than this is left of the budget, seconds
MIN_START_S = 15.0


# ----------------------------------------------------------------------------- jobs
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


def _train_rows(data: dict, job: Job) -> list:
    clock = "wall" if str(data["args"]["device"]).startswith("cuda") else "cpu"
    rows = []
    for r in data["rows"]:
        v = r[clock]
        rows.append({
            "case": r["case"], "variant": r["variant"], "baseline": r["baseline"], "clock": clock,
            "plain_ms": v["plain_ms"], "lightning_ms": v["lightning_ms"], "ratio": v["ratio"], "ratio_q1_q3": v["ratio_q1_q3"],
            "lightning_peak_mb": r.get("lightning_peak_mb"), "plain_peak_mb": r.get("plain_peak_mb"), "job": job.name,
        })
    return rows


def _knn_rows(data: dict, job: Job) -> list:
    return [{**r, "job": job.name} for r in data["rows"]]


def _eval_rows(data: dict, job: Job) -> list:
    return [{**r, "job": job.name} for r in data["rows"]]


def _generic_rows(data, job: Job) -> list:
    """Rows of a JSON whose layout this file does not fix: its ``rows`` (or the list itself) with
    nested dicts flattened to dotted keys; otherwise its scalars as key/value rows."""

    def flat(d: dict, prefix: str = "") -> dict:
        out = {}
        for k, v in d.items():
            if isinstance(v, dict):
                out.update(flat(v, f"{prefix}{k}."))
            elif isinstance(v, (int, float, str, bool)) or v is None:
                out[f"{prefix}{k}"] = v
        return out

    items = data.get("rows") if isinstance(data, dict) else data
    if isinstance(items, list) and all(isinstance(r, dict) for r in items):
        return [flat(r) for r in items]
    if isinstance(data, dict):
        return [{"key": k, "value": v} for k, v in flat(data).items()]
    return [{"value": json.dumps(data)[:200]}]


def plan(args, tmp: str) -> list:
    """The jobs of ``args.parts`` in the order they run (most wanted first)."""
    q, dev, thr = args.quick, args.device, str(args.threads)
    seed_threads = str(args.threads or os.cpu_count() or 1)  # (that script takes a count, not 0)
    out = lambda name: os.path.join(tmp, f"{name}.json")  # noqa: E731
    jobs = []
    if "env" in args.parts:
        jobs.append(Job("env", "env", None, ["--json", out("env")], 60))
    if "train" in args.parts:
        cases = ["quickstart"] if q else ["quickstart", "dcgan64"]
        timing = ["--steps", "3", "--warmup", "1", "--repeats", "2"] if q else ["--steps", "40", "--warmup", "5", "--repeats", "5"]
        variants = ["lightning", "lightning+device_cache+nocheck+channels_last+bf16+fused"] if q else TRAIN_VARIANTS
        for case in cases:
            jobs.append(Job(
                f"train-{case}", "train", "train_step.py",
                ["--device", dev, "--cases", case, "--variants", *variants, *timing, "--threads", thr, "--json", out(f"train-{case}")],
                60 if q else 100, _train_rows,
            ))
    if "seeds" in args.parts:
        steps, warmup = ("2", "1") if q else ("100", "10")
        jobs.append(Job(
            "seeds", "seeds", "seeds_vectorised.py",
            ["--device", dev, "--steps", steps, "--warmup", warmup, "--threads", seed_threads, "--json", out("seeds")], 60 if q else 75,
            _generic_rows,
        ))
    if "knn" in args.parts:
        shape, repeats = ("256x256x64", "2") if q else ("50000x50000x2048", "3")
        jobs.append(Job(
            "knn", "knn", "knn.py",
            ["--device", dev, "--shapes", shape, "--ks", "3", "--contenders", "gemm", "knn", "radius", "--repeats", repeats,
             "--threads", thr, "--json", out("knn")], 60 if q else 75, _knn_rows,
        ))
    if "eval" in args.parts:
        sizes = ["4"] if q else ["10000", "50000"]  # (4: the fewest that precision/recall's 3rd neighbour allows)
        real = ["--real-count", "4", "--no-warm"] if q else []
        jobs.append(Job(
            "eval", "eval", "evaluate_vs_fidelity.py",
            ["--device", dev, "--extractor", "inception", "--sizes", *sizes, *real, "--metrics", "fid", "kid", "pr", "--repeats", "1",
             "--no-image-side", "--threads", thr, "--json", out("eval")], 90 if q else 200, _eval_rows,
        ))
    if "train" in args.parts and not q:  # compiling: last, one job per case, then compile alone
        timing = ["--steps", "40", "--warmup", "5", "--repeats", "3"]
        for case in ("quickstart", "dcgan64"):
            jobs.append(Job(
                f"train-{case}-compiled", "train", "train_step.py",
                ["--device", dev, "--cases", case, "--variants", ALL_COMPILED, *timing, "--threads", thr, "--json", out(f"train-{case}-compiled")],
                150, _train_rows,
            ))
        jobs.append(Job(
            "train-compile-alone", "train", "train_step.py",
            ["--device", dev, "--cases", "quickstart", "dcgan64", "--variants", "lightning+compile", *timing, "--threads", thr,
             "--json", out("train-compile-alone")], 150, _train_rows,
        ))
    return jobs


# ----------------------------------------------------------------------------- running
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
_running: Optional[subprocess.Popen] = None


def _stop(signum, frame) -> None:
    if _running is not None:
        _kill_group(_running)
    raise SystemExit(128 + signum)


def run_job(job: Job, timeout: float, env: dict, log_path: str, tmp: str) -> None:
    """Run ``job`` within ``timeout`` s; fill its status, seconds, GPU peak, result or error.

    The job runs in a process group of its own (the same session), so that a timeout ends it with
    every process it started."""
    global _running
    argv = job_command(job, tmp)
    with open(log_path, "a") as log:
        shown = f"python benchmarks/perf/{job.script} {shlex.join(job.args)}" if job.script else "the environment report"
        log.write(f"\n===== {job.name} (timeout {timeout:.0f} s): {shown}\n")
        log.flush()
        start_at = log.tell()
        t0 = time.perf_counter()
        proc = _running = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT, preexec_fn=os.setpgrp)
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            code = None
        finally:
            _running = None
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


# ----------------------------------------------------------------------------- install
def _clean_pip_env() -> dict:
    """This environment without pip's settings: no config file, index, find-links or constraints."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    return env


def install_wheels(wheels: str, site: str) -> dict:
    """``pip install --no-index --no-deps --target site`` of every wheel in ``wheels``; then the
    requirements of the installed packages that neither ``site`` nor this interpreter meets."""
    files = sorted(os.path.join(wheels, f) for f in os.listdir(wheels) if f.endswith(".whl")) if os.path.isdir(wheels) else []
    info = {"wheels": wheels, "site": site, "files": [os.path.basename(f) for f in files], "status": "not run"}
    if not files:
        info.update(status="failed", error=f"no .whl files in {wheels}")
        return info
    if os.path.isdir(site) and os.listdir(site):
        info.update(status="failed", error=f"--site {site} is not empty (the wheels go into an empty folder)")
        return info
    os.makedirs(site, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--no-compile", "--no-cache-dir", "--quiet",
           "--target", site, *files]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=_clean_pip_env())
    except subprocess.TimeoutExpired:
        info.update(status="failed", error="pip install took over 300 s", seconds=time.perf_counter() - t0)
        return info
    info["seconds"] = time.perf_counter() - t0
    if proc.returncode != 0:
        info.update(status=f"failed (exit {proc.returncode})", error=(proc.stderr or proc.stdout)[-1500:])
        return info
    info["status"] = "ok"
    info["installed"], info["unmet"] = installed_and_unmet(site)
    return info


def installed_and_unmet(site: str) -> tuple[dict, list]:
    """({name: version} installed in ``site``, ["name spec (needed by X; have Y)"] unmet)."""
    import importlib.metadata as md

    installed = {_norm(d.metadata["Name"]): d.version for d in md.distributions(path=[site])}
    available = {}
    for d in md.distributions(path=[site] + sys.path):  # site first: what the jobs will import
        available.setdefault(_norm(d.metadata["Name"]), d.version)
    try:
        from packaging.requirements import Requirement
        from packaging.version import Version
    except ImportError:
        return installed, ["(not checked: the packaging module is missing)"]
    unmet = []
    for d in md.distributions(path=[site]):
        for text in d.requires or []:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            have = available.get(_norm(req.name))
            if have is None:
                unmet.append(f"{req} (needed by {d.metadata['Name']}; missing)")
            elif req.specifier and not req.specifier.contains(Version(have), prereleases=True):
                unmet.append(f"{req} (needed by {d.metadata['Name']}; have {have})")
    return installed, sorted(set(unmet))


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# ----------------------------------------------------------------------------- report
def _fmt(v, spec: str = ".2f") -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return format(v, spec)
    return str(v)


def _table(header: list, rows: list) -> list:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "/").replace("\n", " ") for c in row) + " |" for row in rows]
    return lines


def tables(jobs: list) -> dict:
    """Rows of each part from the jobs that succeeded; training rows get ``vs_plain_fp32``."""
    out = {p: [] for p in PARTS if p != "env"}
    for job in jobs:
        if job.status == "ok" and job.part in out:
            try:
                out[job.part] += job.rows(job.result, job)
            except (KeyError, TypeError, ValueError) as exc:
                job.status, job.error = "failed (unexpected JSON)", f"{type(exc).__name__}: {exc}"
    fp32 = {r["case"]: r["plain_ms"] for r in out["train"] if r["baseline"] == "plain"}
    for r in out["train"]:
        r["vs_plain_fp32"] = r["lightning_ms"] / fp32[r["case"]] if r["case"] in fp32 else None
    return out


def write_report(out_dir: str, args, install: Optional[dict], jobs: list, started: float, finished: bool) -> None:
    wall = time.perf_counter() - started
    parts = tables(jobs)
    env = next((j.result for j in jobs if j.name == "env" and j.result), None)
    data = {
        "command": args.command_line, "device": args.device, "quick": args.quick, "budget_s": args.budget, "wall_s": wall,
        "finished": finished, "install": install, "env": env,
        "jobs": [{k: getattr(j, k) for k in ("name", "part", "status", "seconds", "timeout", "gpu_peak_mb", "error")} for j in jobs],
        "tables": parts,
    }
    with open(os.path.join(out_dir, "gpu_check.json.tmp"), "w") as f:
        json.dump(data, f, indent=1)
    os.replace(os.path.join(out_dir, "gpu_check.json.tmp"), os.path.join(out_dir, "gpu_check.json"))

    md = ["# GPU check", "", f"`{args.command_line}`", ""]
    if env:
        dev = env.get("device") or {}
        md.append(f"Python {env.get('python')}, torch {env.get('modules', {}).get('torch', {}).get('version')} (CUDA {env.get('torch_cuda')}), "
                  f"{env.get('cpus')} CPUs; device: {dev.get('name', 'none')} {dev.get('memory_gb', '')}{' GB' if dev else ''}.")
    md.append(f"Wall time {wall:.0f} s of a {args.budget:.0f} s budget{'' if finished else ' (still running)'}; "
              f"device {args.device}{', quick sizes' if args.quick else ''}.")
    md.append("")
    if install is not None:
        md.append(f"Install from `{install['wheels']}` into `{install['site']}`: {install['status']}"
                  + (f", {len(install.get('installed', {}))} packages in {install.get('seconds', 0):.1f} s" if install["status"] == "ok" else "")
                  + (f"; unmet requirements: {', '.join(install['unmet'])}" if install.get("unmet") else "")
                  + (f"; error: {install['error'].splitlines()[-1] if install.get('error') else ''}" if install["status"] != "ok" else "") + ".")
        md.append("")
    md.append("## Jobs")
    md.append("")
    md += _table(["job", "part", "status", "seconds", "timeout s", "GPU peak MB (process)", "last error line"], [
        [j.name, j.part, j.status, _fmt(j.seconds, ".1f"), _fmt(j.timeout, ".0f"), _fmt(j.gpu_peak_mb, ".0f"),
         (j.error or "").strip().splitlines()[-1][:160] if j.error else ""] for j in jobs])
    if env:
        md += ["", "Imported: " + "; ".join(f"{m} {v.get('version') or ''} ({'error: ' + v['error'] if 'error' in v else v.get('file')})"
                                            for m, v in env.get("modules", {}).items())]
    if parts["train"]:
        clock = parts["train"][0]["clock"]
        md += ["", f"## Training step: GANModule vs the plain PyTorch loop ({clock} clock, ms per training step)", ""]
        md += _table(["case", "variant", "plain ms", "Lightning ms", "ratio (q1-q3)", "vs plain fp32", "peak MB Lightning / plain", "job"], [
            [r["case"], r["variant"], _fmt(r["plain_ms"]), _fmt(r["lightning_ms"]),
             f"{r['ratio']:.3f} ({r['ratio_q1_q3'][0]:.3f}-{r['ratio_q1_q3'][1]:.3f})", _fmt(r["vs_plain_fp32"], ".3f"),
             f"{_fmt(r['lightning_peak_mb'], '.0f')} / {_fmt(r['plain_peak_mb'], '.0f')}", r["job"]] for r in parts["train"]])
        md += ["", "ratio: Lightning / the plain loop with the same compute options (median over rounds of the same-round ratio); "
               "vs plain fp32: Lightning / the plain loop without options; peak MB: the most memory a segment allocated above "
               "what the process held when it started (CUDA only)."]
    if parts["seeds"]:
        keys = list(dict.fromkeys(k for r in parts["seeds"] for k in r))
        md += ["", "## Vectorised seeds (as benchmarks/perf/seeds_vectorised.py reports them)", ""]
        md += _table(keys, [[_fmt(r.get(k), ".4g") for k in keys] for r in parts["seeds"]])
    if parts["knn"]:
        md += ["", "## k-NN vs the bare matmul (float32, seconds: median over rounds)", ""]
        md += _table(["shape", "k", "gemm s", "knn s", "radius s", "knn / gemm", "radius / gemm", "peak MB gemm / knn / radius"], [
            [r["shape"], r["k"], _fmt(r.get("gemm"), ".4f"), _fmt(r.get("knn"), ".4f"), _fmt(r.get("radius"), ".4f"),
             _fmt(r.get("knn/gemm"), ".3f"), _fmt(r.get("radius/gemm"), ".3f"),
             " / ".join(_fmt((r.get("peak_mb") or {}).get(c), ".0f") for c in ("gemm", "knn", "radius"))] for r in parts["knn"]])
    if parts["eval"]:
        md += ["", "## Evaluation: generate -> Inception-v3 (random weights) -> FID/KID/PR", ""]
        md += _table(["N", "tool", "seconds", "samples/s", "gan_suite / torch-fidelity", "GPU peak MB", "peak RSS MB", "FID", "KID", "precision", "recall"], [
            [r["n"], r["tool"], _fmt(r["seconds"]), _fmt(r["samples_per_s"], ".0f"), _fmt(r["ratio"], ".3f"), _fmt(r.get("gpu_peak_mb"), ".0f"),
             _fmt(r["peak_rss_mb"], ".0f")] + [_fmt(r["values"].get(k), ".4g") for k in ("fid", "kid", "precision", "recall")]
            for r in parts["eval"]])
        md += ["", "seconds: generate N samples + their features + the cached real features + the metrics, one fresh process per "
               "measurement; the metric values are meaningless with random weights (the speed does not depend on them)."]
    with open(os.path.join(out_dir, "gpu_check.md"), "w") as f:
        f.write("\n".join(md) + "\n")


# ----------------------------------------------------------------------------- main
def main(argv: Optional[list] = None) -> int:
    p = argparse.ArgumentParser(
        prog="gpu_check.sh", description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    p.add_argument("--quick", action="store_true", help="tiny sizes, no compile jobs (seconds on a CPU)")
    p.add_argument("--out", default=None, help="folder for gpu_check.md, gpu_check.json and gpu_check.log (required)")
    p.add_argument("--wheels", default=None, help="install the wheels of this folder first (make gpu-wheels: .whl)")
    p.add_argument("--site", default=None, help="the empty folder they go into (default: a new temporary folder)")
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="default: all, in the order "
                   "env, train (eager), seeds, knn, eval, train (compiled)")
    p.add_argument("--budget", type=float, default=540.0, help="seconds for the whole run (default 540)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads of each job; 0: torch's default, all cores (default: 1 on cpu, 0 on cuda)")
    p.add_argument("--dry-run", action="store_true", help="print the jobs (timeout and command) and stop")
    args = p.parse_args(argv)
    if args.threads is None:
        args.threads = 1 if args.device == "cpu" else 0
    if args.dry_run:
        for job in plan(args, "TMP"):
            shown = f"python benchmarks/perf/{job.script} {shlex.join(job.args)}" if job.script else "(the environment report)"
            print(f"{job.name:<26} {job.timeout:4.0f} s  {shown}")
        return 0
    if not args.out:
        p.error("--out DIR is required")
    args.command_line = shlex.join(["bash", "benchmarks/gpu_check.sh", *(sys.argv[1:] if argv is None else argv)])
    saved = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return _run_all(args)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _run_all(args) -> int:
    started = time.perf_counter()
    os.makedirs(args.out, exist_ok=True)
    log_path = os.path.join(args.out, "gpu_check.log")
    open(log_path, "w").close()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "WANDB_MODE": "disabled"}
    install, site = None, None
    if args.wheels:
        site = args.site or tempfile.mkdtemp(prefix="gan_suite_site_")
        install = install_wheels(args.wheels, site)
        print(f"install: {install['status']}" + (f" ({len(install.get('installed', {}))} packages)" if install["status"] == "ok" else f": {install.get('error', '')}"),
              file=sys.stderr, flush=True)
        if install["status"] != "ok":
            site = None
    env["PYTHONPATH"] = os.pathsep.join(x for x in (site, ROOT, os.environ.get("PYTHONPATH")) if x)
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        jobs = plan(args, tmp)
        for job in jobs:
            left = args.budget - (time.perf_counter() - started)
            if left < MIN_START_S:
                job.status = f"skipped: {max(left, 0):.0f} s of the budget left"
                continue
            timeout = min(job.timeout, left)
            print(f"[{time.perf_counter() - started:5.0f} s] {job.name} (timeout {timeout:.0f} s)", file=sys.stderr, flush=True)
            try:
                run_job(job, timeout, env, log_path, tmp)
            except SystemExit:  # SIGTERM / SIGINT: the job's group is ended; keep what was measured
                job.status = "interrupted (the check was stopped)"
                write_report(args.out, args, install, jobs, started, finished=False)
                raise
            if timeout < job.timeout and job.status.startswith("timeout"):
                job.status += f" (the budget cut it from {job.timeout:.0f} s)"
            job.timeout = timeout
            print(f"[{time.perf_counter() - started:5.0f} s] {job.name}: {job.status} in {job.seconds:.1f} s", file=sys.stderr, flush=True)
            write_report(args.out, args, install, jobs, started, finished=False)
        write_report(args.out, args, install, jobs, started, finished=True)
    print(f"tables: {os.path.join(args.out, 'gpu_check.md')}, {os.path.join(args.out, 'gpu_check.json')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

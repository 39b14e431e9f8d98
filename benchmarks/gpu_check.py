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

The jobs (``gpu_check_jobs.py``), the wheel install (``gpu_check_wheels.py``) and the tables
(``gpu_check_report.py``) are beside this file; none of them imports anything beyond the standard
library, so that the check reports, rather than dies of, a broken torch.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import tempfile
import time
from typing import Optional

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from gpu_check_jobs import ROOT, Job, run_job, stop  # noqa: E402
from gpu_check_report import PARTS, eval_rows, generic_rows, knn_rows, train_rows, write_report  # noqa: E402
from gpu_check_wheels import install_wheels, installed_and_unmet  # noqa: E402,F401

#: train_step.py variants of the eager jobs (each toggles one option; the last, all of them)
TRAIN_VARIANTS = [
    "lightning", "lightning+bf16", "lightning+channels_last", "lightning+fused", "lightning+device_cache",
    "lightning+device_cache+nocheck+channels_last+bf16+fused",
]
ALL_COMPILED = "lightning+device_cache+nocheck+channels_last+bf16+fused+compile"
#: a job is skipped when less than this is left of the budget, seconds
MIN_START_S = 15.0


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
                60 if q else 100, train_rows,
            ))
    if "seeds" in args.parts:
        steps, warmup = ("2", "1") if q else ("100", "10")
        size = ["--g-width", "32", "--d-width", "16", "--rounds", "1"] if q else []
        jobs.append(Job(
            "seeds", "seeds", "seeds_vectorised.py",
            ["--device", dev, "--steps", steps, "--warmup", warmup, "--threads", seed_threads, *size, "--json", out("seeds")], 60 if q else 75,
            generic_rows,
        ))
    if "knn" in args.parts:
        shape, repeats = ("256x256x64", "2") if q else ("50000x50000x2048", "3")
        jobs.append(Job(
            "knn", "knn", "knn.py",
            ["--device", dev, "--shapes", shape, "--ks", "3", "--contenders", "gemm", "knn", "radius", "--repeats", repeats,
             "--threads", thr, "--json", out("knn")], 60 if q else 75, knn_rows,
        ))
    if "eval" in args.parts:
        sizes = ["4"] if q else ["10000", "50000"]  # (4: the fewest that precision/recall's 3rd neighbour allows)
        real = ["--real-count", "4", "--no-warm"] if q else []
        jobs.append(Job(
            "eval", "eval", "evaluate_vs_fidelity.py",
            ["--device", dev, "--extractor", "inception", "--sizes", *sizes, *real, "--metrics", "fid", "kid", "pr", "--repeats", "1",
             "--no-image-side", "--threads", thr, "--json", out("eval")], 90 if q else 200, eval_rows,
        ))
    if "train" in args.parts and not q:  # compiling: last, one job per case, then compile alone
        timing = ["--steps", "40", "--warmup", "5", "--repeats", "3"]
        for case in ("quickstart", "dcgan64"):
            jobs.append(Job(
                f"train-{case}-compiled", "train", "train_step.py",
                ["--device", dev, "--cases", case, "--variants", ALL_COMPILED, *timing, "--threads", thr, "--json", out(f"train-{case}-compiled")],
                150, train_rows,
            ))
        jobs.append(Job(
            "train-compile-alone", "train", "train_step.py",
            ["--device", dev, "--cases", "quickstart", "dcgan64", "--variants", "lightning+compile", *timing, "--threads", thr,
             "--json", out("train-compile-alone")], 150, train_rows,
        ))
    return jobs


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
    saved = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
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

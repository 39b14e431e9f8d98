"""Seconds per training step: gan_suite's Lightning GANModule vs a plain PyTorch loop.

Both sides train the same networks with the same optimizers, batch, k and loss
(``benchmarks/perf/plain_loop.py`` defines the cases). The Lightning side is a real
``Trainer.fit`` of the suite's model and data module; the plain side is ``PlainLoop``. Everything
runs in ONE process, in rounds; each round fits every Lightning variant once (in a rotated
order) for ``--steps`` timed steps, paired with the same number of plain-loop steps:

* ``--interleave step`` (default on CPU): the plain steps run inside the fit, one after each
  Lightning step (from a callback, timed and subtracted from the Lightning cycle), so both sides
  see the same moments of a shared machine;
* ``--interleave segment`` (default on CUDA, where a sync between the two would break the
  asynchronous queue under test): the plain segment runs right after the fit's segment.

A Lightning segment is timed from the start of batch ``warmup`` to the start of batch
``warmup + steps`` of a fresh Trainer: whole cycles of fetch + hooks + training_step, without
start-up and tear-down (on CUDA after a synchronise). Every segment, on both sides, starts from
the same initial weights with fresh optimizers, so each round times the same first steps.
Times are per training step, by the wall clock and (CPU) by this process's CPU time, which other
jobs on a shared machine disturb less. The ratio is the median over rounds of
Lightning / plain of the same round. On CUDA each row also gives the most memory a segment
allocated above what the process held when it started (``torch.cuda.max_memory_allocated``),
for the Lightning fit and for the plain steps, the most over rounds.

Variants are ``lightning[+option...]`` or ``floor``; each is compared with the plain loop with
the same compute options. ``floor`` is Lightning's own floor: the plain loop's step written as a
bare manual-optimization LightningModule fed from memory (no gan_suite), so that
lightning - floor is what the suite adds and floor - plain what Lightning itself costs.
``before`` is the same model built with the GANModule of another version of module.py
(``--before FILE``, e.g. from ``git show COMMIT:gan_suite/training/module.py``), for
before/after comparisons in one run. Options:

  log            Lightning's defaults: CSV logger (tensorboard is not installed here) +
                 progress bar, logging every ``--log-every`` steps (otherwise: no logger, no bar)
  device_cache   GANDataModule(device_cache=True): data held on the device, no DataLoader
  nocheck        check_finite_every_n_steps=0 (default 1: a NaN test, i.e. a sync, per step)
  channels_last  channels_last conv nets and batches (both sides)
  bf16           bf16 autocast (Trainer precision 'bf16-mixed'; plain: torch.autocast)
  fused          fused optimizer kernels (both sides)
  foreach        foreach optimizer kernels (both sides; torch's default on CUDA)
  compile        torch.compile of G and D (both sides)
  reuse_fakes    G's update reuses the last D update's fakes: one G forward fewer (both sides)

Examples:
  python benchmarks/perf/train_step.py                       # CPU, the three cases
  python benchmarks/perf/train_step.py --device cuda --gpu-options --sync-debug
  python benchmarks/perf/train_step.py --cases ring8 --variants lightning lightning+device_cache
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

from common import load, machine  # noqa: E402
from plain_loop import CASES, PlainLoop  # noqa: E402

LIGHTNING_ONLY = {"log", "device_cache", "nocheck"}
COMPUTE_OPTIONS = {"channels_last", "bf16", "fused", "foreach", "compile", "reuse_fakes"}
DEFAULT_VARIANTS = ["lightning", "lightning+log", "lightning+device_cache", "lightning+device_cache+nocheck", "floor"]
GPU_VARIANTS = [
    "lightning", "lightning+log", "lightning+nocheck", "lightning+device_cache", "lightning+device_cache+nocheck",
    "lightning+channels_last", "lightning+bf16", "lightning+fused", "lightning+compile",
    "lightning+device_cache+nocheck+channels_last+bf16+fused",
    "lightning+device_cache+nocheck+channels_last+bf16+fused+compile",
]


def parse_variant(spec: str) -> frozenset:
    kind, *options = spec.split("+")
    if kind in ("floor", "before"):
        if options:
            raise SystemExit(f"the {kind!r} variant takes no options")
        return frozenset({kind})
    if kind != "lightning":
        raise SystemExit(f"variant {spec!r} must start with 'lightning' or be 'floor' (the plain loop is the implicit baseline)")
    unknown = set(options) - LIGHTNING_ONLY - COMPUTE_OPTIONS
    if unknown:
        raise SystemExit(f"variant {spec!r}: unknown options {sorted(unknown)}")
    return frozenset(options)


def baseline_name(options: frozenset) -> str:
    return "+".join(["plain", *sorted(options & COMPUTE_OPTIONS)])


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


class _PeakMemory:
    """CUDA: the most memory allocated inside a ``with`` block above what was allocated at its
    start (``torch.cuda.max_memory_allocated`` after a reset), MB; ``mb`` stays None on a CPU."""

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith("cuda")
        self.mb = None

    def __enter__(self) -> "_PeakMemory":
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._start = torch.cuda.memory_allocated()
        return self

    def __exit__(self, *exc) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            self.mb = (torch.cuda.max_memory_allocated() - self._start) / 2**20


class _Clock:
    """Accumulated wall and process-CPU seconds."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    def add(self, wall: float, cpu: float) -> None:
        self.wall += wall
        self.cpu += cpu


# ----------------------------------------------------------------------------- plain side
class PlainRunner:
    """The plain loop with ``options``; steps are timed by the caller."""

    def __init__(self, case, device: str, options: frozenset) -> None:
        self.device = device
        self.loop = PlainLoop(
            case, device, channels_last="channels_last" in options, bf16="bf16" in options,
            fused=True if "fused" in options else None, foreach=True if "foreach" in options else None,
            compile="compile" in options, reuse_fakes="reuse_fakes" in options,
        )
        self.steps(10 if "compile" in options else 3)  # first allocations (and compilation)

    def steps(self, n: int) -> tuple[float, float]:
        """Run ``n`` steps; (wall, CPU) seconds, synchronised on CUDA."""
        # Lightning sets PYTORCH_NVML_BASED_CUDA_CHECK=1 when imported, which turns every
        # torch.cuda.is_available() (Adam.step asks it) into an NVML query while CUDA is not
        # initialised; a plain-PyTorch process has no such variable.
        saved = os.environ.pop("PYTORCH_NVML_BASED_CUDA_CHECK", None)
        try:
            _sync(self.device)
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(n):
                self.loop.step()
            _sync(self.device)
            return time.perf_counter() - t0, time.process_time() - c0
        finally:
            if saved is not None:
                os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = saved


# ----------------------------------------------------------------------------- Lightning side
def model_options(options: frozenset, conv: bool) -> dict:
    out = {}
    if "nocheck" in options:
        out["check_finite_every_n_steps"] = 0
    if "channels_last" in options and conv:  # (only DCGAN takes it: MLPs have no 4-D tensors)
        out["channels_last"] = True
    if "compile" in options:
        out["compile"] = True
    if "fused" in options:
        out["optimizer_kernels"] = "fused"
    if "foreach" in options:
        out["optimizer_kernels"] = "foreach"
    if "reuse_fakes" in options:
        out["reuse_fakes"] = True
    return out


class LightningRunner:
    """One Lightning variant: a module and data module that every segment's fresh Trainer continues."""

    def __init__(self, case, device: str, options: frozenset, args, root: str) -> None:
        self.case, self.device, self.options, self.args, self.root = case, device, options, args, root
        torch.manual_seed(0)
        if "floor" in options:
            from plain_loop import floor_batches, floor_module

            self.model, self.data = floor_module(case), floor_batches(case)
        elif "before" in options:
            self.model, self.data = _before_model(case, args.before), case.data()
        else:
            self.model = case.model(**model_options(options, case.conv))
            self.data = case.data()
            self.data.device_cache = "device_cache" in options
        self.initial = copy.deepcopy(self.model.state_dict())
        self._fit(10 if "compile" in options else 3, [])  # start-up, first allocations, compilation

    def _fit(self, n_steps: int, callbacks: list) -> None:
        import pytorch_lightning as pl

        log = "log" in self.options
        logger = False
        if log:
            from pytorch_lightning.loggers import CSVLogger

            logger = CSVLogger(self.root, name="train_step")
        trainer = pl.Trainer(
            accelerator="cuda" if self.device.startswith("cuda") else "cpu", devices=1,
            max_steps=(self.case.k + 1) * n_steps, logger=logger, enable_progress_bar=log,
            enable_checkpointing=False, enable_model_summary=False, log_every_n_steps=self.args.log_every,
            precision="bf16-mixed" if "bf16" in self.options else "32-true", default_root_dir=self.root,
            callbacks=callbacks,
        )
        if "floor" in self.options:
            trainer.fit(self.model, train_dataloaders=self.data)
        else:
            trainer.fit(self.model, self.data)

    def segment(self, steps: int, plain: PlainRunner, interleave: str) -> tuple[tuple[float, float], tuple[float, float], tuple]:
        """((wall, CPU) s/step of Lightning, (wall, CPU) s/step of the paired plain steps,
        (Lightning, plain) peak MB: CUDA memory the fit and the plain segment allocate above what
        the process held when each started (activations, gradients, optimizer state), None on CPU)."""
        warmup = self.args.warmup
        # Every segment trains the same first steps from the same weights (a fresh Trainer also
        # means fresh optimizers), on both sides: long runs of the paper's SGD set-up can diverge.
        self.model.load_state_dict(self.initial)
        self.model.iteration = 0
        plain.loop.reset()
        plain.steps(warmup)  # the plain side's first steps (optimizer state allocation) untimed too
        plain_clock = _Clock()
        # --sync-debug: the timed steps of a variant that should never wait for the GPU
        # (device_cache + nocheck, no logging) run with torch.cuda.set_sync_debug_mode("error").
        strict = self.args.sync_debug and {"device_cache", "nocheck"} <= self.options and "log" not in self.options
        timer = _segment_timer(warmup, warmup + steps, self.device, plain if interleave == "step" else None, plain_clock, strict)
        with _PeakMemory(self.device) as light_peak:
            self._fit(warmup + steps + 1, [timer])
        wall = timer.t1 - timer.t0 - plain_clock.wall
        cpu = timer.c1 - timer.c0 - plain_clock.cpu
        plain_peak = _PeakMemory(self.device)
        if interleave == "segment":
            with plain_peak:
                plain_clock.add(*plain.steps(steps))
        return (wall / steps, cpu / steps), (plain_clock.wall / steps, plain_clock.cpu / steps), (light_peak.mb, plain_peak.mb)


def _before_model(case, path: str):
    """The case's model built with the GANModule class of another version of module.py (``path``)."""
    import importlib.util

    if not path:
        raise SystemExit("the 'before' variant needs --before PATH (an older gan_suite/training/module.py)")
    spec = importlib.util.spec_from_file_location("gan_suite_module_before", path)
    old = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old)
    G, D = case.make_nets()
    return old.GANModule(
        G, D, loss=case.loss, d_steps=case.k, g_optimizer=case.make_optimizer, d_optimizer=case.make_optimizer,
        g_scheduler=case.scheduler, d_scheduler=case.scheduler,
    )


def _segment_timer(first: int, last: int, device: str, plain, plain_clock: _Clock, strict: bool = False):
    import pytorch_lightning as pl

    class SegmentTimer(pl.Callback):
        """Clock at the start of batch ``first`` and of batch ``last``; with ``plain``, one plain
        step (timed into ``plain_clock``) before each batch in (first, last]."""

        def __init__(self) -> None:
            self.seen = 0
            self.t0 = self.t1 = self.c0 = self.c1 = None

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            if plain is not None and first < self.seen <= last:
                plain_clock.add(*plain.steps(1))
            if self.seen in (first, last):
                if strict and self.seen == last:
                    torch.cuda.set_sync_debug_mode(0)
                _sync(device)
                now, cpu = time.perf_counter(), time.process_time()
                if self.seen == first:
                    self.t0, self.c0 = now, cpu
                    if strict:
                        torch.cuda.set_sync_debug_mode("error")  # any host synchronisation now raises
                else:
                    self.t1, self.c1 = now, cpu
            self.seen += 1

    return SegmentTimer()


# ----------------------------------------------------------------------------- report
def run_case(name: str, variants: list[str], args, root: str) -> list[dict]:
    case = CASES[name]()
    options = {spec: parse_variant(spec) for spec in variants}
    plains, runners = {}, {}
    for spec in variants:
        t0 = time.perf_counter()
        base = baseline_name(options[spec])
        if base not in plains:
            plains[base] = PlainRunner(case, args.device, options[spec] & COMPUTE_OPTIONS)
        runners[spec] = LightningRunner(case, args.device, options[spec], args, root)
        print(f"  [{name}] set up {spec} (and {base}) in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    pairs = {spec: [] for spec in variants}  # per round: ((L wall, L cpu), (P wall, P cpu), (L MB, P MB))
    for r in range(args.repeats):
        order = variants[r % len(variants):] + variants[: r % len(variants)]  # rotate the order each round
        for spec in order:
            pairs[spec].append(runners[spec].segment(args.steps, plains[baseline_name(options[spec])], args.interleave))
        print(
            f"  [{name}] round {r + 1}/{args.repeats}, ms/step wall|cpu, lightning vs plain: "
            + "; ".join(f"{s} {p[-1][0][0] * 1e3:.1f}|{p[-1][0][1] * 1e3:.1f} vs {p[-1][1][0] * 1e3:.1f}|{p[-1][1][1] * 1e3:.1f}" for s, p in pairs.items()),
            file=sys.stderr, flush=True,
        )
    rows = []
    for spec in variants:
        row = {"case": name, "variant": spec, "baseline": baseline_name(options[spec])}
        for side, key in ((0, "lightning_peak_mb"), (1, "plain_peak_mb")):  # the most over rounds (CUDA)
            peaks = [p[2][side] for p in pairs[spec] if p[2][side] is not None]
            row[key] = max(peaks) if peaks else None
        for c, clock in enumerate(("wall", "cpu")):
            light = [p[0][c] for p in pairs[spec]]
            plain = [p[1][c] for p in pairs[spec]]
            ratios = [a / b for a, b in zip(light, plain)]
            row[clock] = {
                "lightning_ms": statistics.median(light) * 1e3,
                "plain_ms": statistics.median(plain) * 1e3,
                "ratio": statistics.median(ratios),
                "ratio_q1_q3": statistics.quantiles(ratios, n=4)[::2] if len(ratios) > 1 else [ratios[0]] * 2,
                "overhead_ms": statistics.median([(a - b) * 1e3 for a, b in zip(light, plain)]),
                "rounds": [[a * 1e3, b * 1e3] for a, b in zip(light, plain)],
            }
        rows.append(row)
    first = rows[0]
    for row in rows:
        for clock in ("wall", "cpu"):
            row[clock]["vs_first"] = row[clock]["lightning_ms"] / first[clock]["lightning_ms"]
    return rows


def print_table(rows: list[dict], args, started_load: str) -> None:
    print(f"\nmachine: {machine()}; device {args.device}")
    print(f"{started_load} at start, {load()} at end; {args.repeats} rounds x {args.steps} steps (+{args.warmup} warm-up), "
          f"interleave {args.interleave}, log_every_n_steps {args.log_every}")
    clocks = ("cpu", "wall") if not args.device.startswith("cuda") else ("wall",)
    head = f"{'case':<11} {'variant':<40}"
    for clock in clocks:
        head += f" | {clock + ': plain':>11} {'lightning':>9} {'ratio':>6} {'(q1-q3)':>13} {'+ms':>7} {'vs 1st':>6}"
    cuda = args.device.startswith("cuda")
    print(head + (f" | {'peak MB L/P':>13}" if cuda else "") + " | baseline")
    for r in rows:
        line = f"{r['case']:<11} {r['variant']:<40}"
        for clock in clocks:
            v = r[clock]
            q1, q3 = v["ratio_q1_q3"]
            line += (f" | {v['plain_ms']:11.2f} {v['lightning_ms']:9.2f} {v['ratio']:6.3f} ({q1:5.3f}-{q3:5.3f})"
                     f" {v['overhead_ms']:+7.2f} {v['vs_first']:6.3f}")
        if cuda:
            peaks = [f"{r[k]:.0f}" if r[k] is not None else "-" for k in ("lightning_peak_mb", "plain_peak_mb")]
            line += f" | {'/'.join(peaks):>13}"
        print(line + f" | {r['baseline']}")
    print("plain / lightning: median ms per training step over rounds (cpu: this process's CPU time; wall: wall clock); "
          "ratio: median over rounds of lightning / plain of the same round, (q1-q3) its quartiles over rounds; "
          "+ms: median per-round difference; vs 1st: lightning ms / the case's first variant's"
          + ("; peak MB L/P: the most CUDA memory a segment allocated above what the process held when it started, "
             "Lightning fit / plain steps (activations, gradients, optimizer state; not the weights or data held before)" if cuda else ""))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--cases", nargs="+", default=["quickstart", "goodfellow", "ring8"], choices=list(CASES),
                   help="'tiny' is an overhead probe (networks that cost almost nothing)")
    p.add_argument("--variants", nargs="+", default=None, help=f"default: {' '.join(DEFAULT_VARIANTS)}")
    p.add_argument("--gpu-options", action="store_true", help=f"the GPU option matrix: {' '.join(GPU_VARIANTS)}")
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=9, help="rounds (each times every variant once)")
    p.add_argument("--steps", type=int, default=25, help="timed training steps per segment")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps before each segment")
    p.add_argument("--log-every", type=int, default=25, help="log_every_n_steps of the Trainer (the quickstart's 25)")
    p.add_argument("--interleave", choices=["step", "segment"], default=None, help="default: step on CPU, segment on CUDA")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (0: leave torch's default)")
    p.add_argument("--sync-debug", action="store_true", help="CUDA: fail if a device_cache+nocheck variant's timed step synchronises with the host")
    p.add_argument("--before", default=None, help="for the 'before' variant: an older gan_suite/training/module.py")
    p.add_argument("--json", default=None, help="also write the rows (with every round) to this file")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.interleave is None:
        args.interleave = "segment" if args.device.startswith("cuda") else "step"
    if args.sync_debug and (not args.device.startswith("cuda") or args.interleave != "segment"):
        raise SystemExit("--sync-debug needs --device cuda and --interleave segment")
    variants = args.variants or (GPU_VARIANTS if args.gpu_options else DEFAULT_VARIANTS)
    warnings.filterwarnings("ignore")
    import logging

    for logger_name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(logger_name).setLevel(logging.ERROR)
    started = load()
    rows = []
    with tempfile.TemporaryDirectory() as root:
        for name in args.cases:
            rows += run_case(name, variants, args, root)
    print_table(rows, args, started)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine(), "args": vars(args), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()

"""What the benchmark runner shows while it works: a line per event and an ETA.

On a terminal a tqdm bar counts finished runs and shows the running ones; otherwise (logs,
SLURM) plain lines are printed, one per run start / end and one per 10 % of a run's training.
The ETA is the mean duration of the runs finished in this session times the work left, divided
by the number of parallel slots.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Optional


def format_seconds(seconds: Optional[float]) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class ProgressBoard:
    """Thread-safe progress of a benchmark shard.

    Args:
        total: runs of this shard (skipped ones included).
        slots: runs in parallel.
        stream: where lines go (default stderr).
        enabled: False prints nothing.
    """

    def __init__(self, total: int, slots: int, stream=None, enabled: bool = True) -> None:
        self.total = total
        self.slots = max(1, slots)
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.done = 0
        self.durations: list[float] = []
        self.running: dict[str, tuple[float, float]] = {}  # run id -> (start time, fraction)
        self._printed_tenth: dict[str, int] = {}
        self._lock = threading.Lock()
        self._bar = None
        if enabled and getattr(self.stream, "isatty", lambda: False)():
            try:
                from tqdm import tqdm

                self._bar = tqdm(total=total, file=self.stream, unit="run", dynamic_ncols=True)
            except ImportError:
                self._bar = None

    # -------------------------------------------------------------- events
    def skipped(self, run_id: str, status: str) -> None:
        with self._lock:
            self.done += 1
            self._line(f"{run_id}: already {status}, skipped")
            if self._bar is not None:
                self._bar.update(1)

    def started(self, run_id: str, where: str) -> None:
        with self._lock:
            self.running[run_id] = (time.time(), 0.0)
            self._printed_tenth[run_id] = 0
            self._line(f"{run_id}: training on {where}")

    def progress(self, run_id: str, iteration: int, total: Optional[int]) -> None:
        with self._lock:
            start, _ = self.running.get(run_id, (time.time(), 0.0))
            fraction = min(1.0, iteration / total) if total else 0.0
            self.running[run_id] = (start, fraction)
            tenth = int(fraction * 10)
            if self._bar is not None:
                self._bar.set_postfix_str(self._running_text(), refresh=True)
            elif tenth > self._printed_tenth.get(run_id, 0):
                self._printed_tenth[run_id] = tenth
                self._line(f"{run_id}: step {iteration}/{total} ({100 * fraction:.0f}%)")

    def evaluating(self, run_id: str) -> None:
        with self._lock:
            self._line(f"{run_id}: evaluating")

    def finished(self, run_id: str, status: str, detail: str = "", share: float = 1.0) -> None:
        """``share``: the part of the elapsed time that was this run's (1 / seeds of a vectorised group)."""
        with self._lock:
            start, _ = self.running.pop(run_id, (time.time(), 0.0))
            duration = time.time() - start
            self.durations.append(duration * share)
            self.done += 1
            self._line(f"{run_id}: {status} in {format_seconds(duration)}{' - ' + detail if detail else ''}")
            if self._bar is not None:
                self._bar.update(1)

    def note(self, text: str) -> None:
        """A line that is not about one run's progress (e.g. a variant that cannot train vectorised)."""
        with self._lock:
            if self.enabled:
                self._line(f"note: {text}")
            else:  # shown even without progress lines
                print(f"note: {text}", file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    # -------------------------------------------------------------- estimates
    def eta(self) -> Optional[float]:
        """Seconds left: (runs not started + unfinished parts of running ones) x mean run time / slots."""
        if not self.durations:
            return None
        mean = sum(self.durations) / len(self.durations)
        waiting = self.total - self.done - len(self.running)
        left_running = sum(1.0 - fraction for _, fraction in self.running.values())
        return mean * (waiting + left_running) / self.slots

    def _running_text(self) -> str:
        parts = [f"{run_id} {100 * fraction:.0f}%" for run_id, (_, fraction) in sorted(self.running.items())]
        return f"{', '.join(parts)} | ETA {format_seconds(self.eta())}"

    def _line(self, text: str) -> None:
        if not self.enabled:
            return
        message = f"[{self.done}/{self.total}] {text} | ETA {format_seconds(self.eta())}"
        if self._bar is not None:
            self._bar.write(message, file=self.stream)
        else:
            print(message, file=self.stream, flush=True)

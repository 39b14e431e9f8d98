"""What every performance benchmark prints about where it ran."""

from __future__ import annotations

import os
import platform


def machine() -> str:
    """CPU model, cores, torch version and threads (and the GPU, if any) in one line."""
    import torch  # (here: a driver that only calls load() need not import it)

    cpu = platform.processor() or "cpu"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    text = f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} intra-op thread(s)"
    if torch.cuda.is_available():
        text += f", GPU {torch.cuda.get_device_name()}"
    return text


def load() -> str:
    """The load average: other jobs on a shared machine skew timings."""
    try:
        return "load average %.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "load average n/a"

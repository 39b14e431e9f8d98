"""A file gate for kill tests, imported by the fake training and evaluation processes (no torch).

With FAKE_GATE=<folder> set (or the variable named by ``variable``), every process that reaches
``pass_gate()`` takes the next ticket (1, 2, ...). From ticket FAKE_GATE_FROM (``<variable>_FROM``)
on it creates ``waiting<ticket>`` in the folder and waits until the test creates ``open`` there, so a test can kill the runner at a known point instead of
inside a time window.
"""

import itertools
import os
import time


def pass_gate(variable: str = "FAKE_GATE") -> None:
    folder = os.environ.get(variable)
    if not folder:
        return
    for ticket in itertools.count(1):
        try:
            os.close(os.open(os.path.join(folder, f"ticket{ticket}"), os.O_CREAT | os.O_EXCL))
            break
        except FileExistsError:
            continue
    if ticket < int(os.environ.get(f"{variable}_FROM", "1")):
        return
    open(os.path.join(folder, f"waiting{ticket}"), "w").close()
    while not os.path.exists(os.path.join(folder, "open")):
        time.sleep(0.01)


def wait_for(condition, timeout_s: float = 120.0) -> None:
    """Poll ``condition()`` until it holds; fail after ``timeout_s`` (a hang, not a timing window)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {timeout_s} s")
        time.sleep(0.01)

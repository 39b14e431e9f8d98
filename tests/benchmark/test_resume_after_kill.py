"""Kill the runner process mid-benchmark, rerun it: no run lost, none duplicated, finished ones untouched."""

import os
import signal
import subprocess
import sys

import pytest

from gan_suite.benchmark.definition import load_definition
from gan_suite.benchmark.results import read_all_results
from tests.benchmark.gate import wait_for
from tests.benchmark.helpers import definition_dict, write_definition

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "run_fake_benchmark.py")


def _results_on_disk(out):
    found = {}
    for run_id in os.listdir(out / "runs"):
        path = out / "runs" / run_id / "result.json"
        if path.exists():
            found[run_id] = (path.read_bytes(), os.path.getmtime(path))
    return found


def _training_after_two_results(out):
    if not (out / "runs").exists():
        return False
    done = _results_on_disk(out)
    running = [d for d in os.listdir(out / "runs") if d not in done and (out / "runs" / d / "owner.json").exists()]
    return len(done) >= 2 and bool(running)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_kill_then_resume(tmp_path, sig):
    definition = write_definition(tmp_path / "def.yaml", definition_dict(seeds=[0, 1], steps=4, every=2))
    out = tmp_path / "out"
    gate = tmp_path / "gate"
    gate.mkdir()
    env = {**os.environ, "FAKE_GATE": str(gate), "FAKE_GATE_FROM": "3"}  # the third training waits at the gate
    runner = subprocess.Popen([sys.executable, SCRIPT, definition, str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(lambda: (gate / "waiting3").exists())
    assert _training_after_two_results(out)
    runner.send_signal(sig)  # now inside the third run's training
    runner.wait(timeout=30)
    assert runner.returncode != 0
    before = _results_on_disk(out)
    assert 2 <= len(before) < 4
    in_progress = [d for d in os.listdir(out / "runs") if d not in before]
    assert in_progress  # a run folder without result.json: the interrupted run

    # the interrupted training still waits at the gate: the rerun must stop it before redoing its run
    rerun_env = {k: v for k, v in env.items() if not k.startswith("FAKE_GATE")}
    try:
        rerun = subprocess.run([sys.executable, SCRIPT, definition, str(out)], env=rerun_env, capture_output=True, text=True, timeout=120)
    finally:
        (gate / "open").touch()  # lets any process still waiting finish
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    after = _results_on_disk(out)
    planned = {run.run_id for run in load_definition(definition).runs()}
    assert set(after) == planned == set(os.listdir(out / "runs"))  # none lost, none extra
    for run_id, (content, mtime) in before.items():
        assert after[run_id] == (content, mtime), run_id  # finished results untouched, not rerun
    assert all(r["status"] == "finished" for r in read_all_results(str(out)).values())
    for run_id in in_progress:  # the interrupted run was redone from a clean folder
        ckpts = os.listdir(out / "runs" / run_id / "train" / "checkpoints")
        assert ckpts == ["last.ckpt"]

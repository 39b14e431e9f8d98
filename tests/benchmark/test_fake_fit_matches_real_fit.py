"""tests/benchmark/fake_fit.py stands in for `gan-suite fit` in the runner tests: this checks, on
tiny networks, that it writes what the real command writes where the runner looks (the training
folder, checkpoint names, progress lines, the message of a diverged run)."""

import json
import os
import re
import subprocess

import pytest

from gan_suite.benchmark.definition import parse_definition
from gan_suite.benchmark.run_evaluation import final_checkpoint, periodic_checkpoints
from gan_suite.benchmark.launch import PROGRESS_PREFIX, classify_failure, find_training_dir, training_argv
from tests.benchmark.helpers import FAKE_FIT, definition_dict

TINY = {
    "model.init_args.g_hidden": [8], "model.init_args.d_hidden": [8], "data.init_args.num_samples": 200,
    "trainer.log_every_n_steps": 2, "samples.every_n_steps": 3,
}
# Both programs diverge on this variant: the real one because the penalty weight makes the
# Wasserstein critic's loss nan, the fake one because it checks for a nan gp_weight.
VARIANTS = {"ok": {}, "nan": {"model.init_args.loss": "wgan_gp", "model.init_args.gp_weight": float("nan")}}


def _run(command, out, run):
    definition = parse_definition(
        definition_dict(variants=VARIANTS, seeds=[0], steps=6, every=3, logger="none", train={"steps": 6, "overrides": TINY})
    )
    spec = next(r for r in definition.runs() if r.variant == run)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(training_argv(definition, spec, str(out), "none", command), capture_output=True, text=True, env=env, timeout=300)
    progress = [json.loads(line[len(PROGRESS_PREFIX):]) for line in proc.stdout.splitlines() if line.startswith(PROGRESS_PREFIX)]
    folder = find_training_dir(str(out), spec.run_id)
    return proc, progress, folder


@pytest.mark.slow
def test_finished_run_writes_the_same_checkpoints_and_progress(tmp_path):
    real = _run(None, tmp_path / "real", "ok")
    fake = _run(FAKE_FIT, tmp_path / "fake", "ok")
    for proc, progress, folder in (real, fake):
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert folder is not None and os.path.isfile(os.path.join(folder, "config.yaml"))
        assert progress[0] == {"iteration": 0, "max_iterations": 6} and progress[-1] == {"iteration": 6, "max_iterations": 6}
        # what the runner's evaluation reads: periodic checkpoints every 3 training steps (6
        # optimizer steps) by the step in their names, and the final one
        assert [step for step, _ in periodic_checkpoints(folder)] == [6, 12]
        assert final_checkpoint(folder) == os.path.join(folder, "checkpoints", "last.ckpt")
    assert os.path.relpath(real[2], tmp_path / "real") == os.path.relpath(fake[2], tmp_path / "fake")


@pytest.mark.slow
def test_diverged_run_ends_with_the_same_message(tmp_path):
    reasons = []
    for command, out in ((None, tmp_path / "real"), (FAKE_FIT, tmp_path / "fake")):
        proc, *_ = _run(command, out, "nan")
        assert proc.returncode != 0
        status, reason = classify_failure(proc.stderr)
        assert status == "diverged", reason
        reasons.append(reason)
    # the same sentence, up to the step numbers
    assert re.sub(r"\d+", "N", reasons[0]) == re.sub(r"\d+", "N", reasons[1]), reasons

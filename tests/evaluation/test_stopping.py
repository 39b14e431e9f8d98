"""Stopping rules on the in-training metric: plateau (Lightning's EarlyStopping after each
evaluation) and divergence (metric worse M times in a row, or D saturating M checks in a row)."""

import json
import math
import os

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import CSVLogger

from gan_suite.data import Toy2D
from gan_suite.errors import ConfigError
from gan_suite.evaluation.callback import EvaluationCallback
from gan_suite.evaluation.stopping import DivergenceStopping, PlateauStopping
from scripted_gans import ScriptedGAN
from tests.conftest import REPO_ROOT

EVERY = 5


def _fit(tmp_path, module, rule, max_steps=100, best_metric="fid"):
    evaluation = EvaluationCallback(every_n_steps=EVERY, num_samples=500, metrics=["fid"], best_metric=best_metric, batch_size=500)
    trainer = pl.Trainer(
        accelerator="cpu", max_steps=max_steps, logger=CSVLogger(str(tmp_path), name="run", version="v"), enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False, callbacks=[evaluation, rule], log_every_n_steps=50,
    )
    trainer.fit(module, Toy2D(num_samples=2000, batch_size=16))
    status = json.loads((tmp_path / "run" / "v" / "status.json").read_text())
    return evaluation, status


def _plateau_stop_by_hand(values, patience, min_delta):
    """The step at which a rule "no improvement > min_delta for `patience` evaluations" stops."""
    best, wait = math.inf, 0
    for step, value in values:
        if value < best - min_delta:
            best, wait = value, 0
        else:
            wait += 1
            if wait >= patience:
                return step
    return None


@pytest.mark.parametrize("min_delta, expected", [(0.0, 20 + 3 * EVERY), (0.03, 15 + 3 * EVERY)])
def test_a_metric_made_to_plateau_stops_the_run_at_the_step_the_rule_says(tmp_path, min_delta, expected):
    # ring points scaled by s(t) = 1.5 -> 1 until step 20, then exactly 1: FID ~ (1 - s)^2 falls
    # (0.14, 0.06, 0.016, ~0 at steps 5..20) and then repeats the same value (the same noise each time)
    module = ScriptedGAN(scale_at=lambda t: 1 + 0.5 * max(0, 20 - t) / 20)
    evaluation, status = _fit(tmp_path, module, PlateauStopping(metric="fid", patience=3, min_delta=min_delta))
    values = [(h["iteration"], h["fid"]) for h in evaluation.history]
    assert _plateau_stop_by_hand(values, 3, min_delta) == expected
    assert module.iteration == expected and values[-1][0] == expected
    assert status["status"] == "plateau" and status["iteration"] == expected
    assert status["best"]["iteration"] == 20  # the best value, whether or not the rule counted its gain


def test_a_diverging_metric_stops_with_status_diverged_and_keeps_the_best_checkpoint(tmp_path):
    # FID falls until step 20 and rises after it: worse at 25 and 30 -> stop at 30 with worse_for=2
    module = ScriptedGAN(scale_at=lambda t: 1 + 0.5 * abs(20 - t) / 20)
    rule = DivergenceStopping(metric="fid", worse_for=2, saturation_for=0)
    evaluation, status = _fit(tmp_path, module, rule)
    assert module.iteration == 30 and [h["iteration"] for h in evaluation.history][-1] == 30
    assert status["status"] == "diverged" and "worse" in status["reason"] and status["iteration"] == 30
    assert evaluation.best_step == 20 and status["best"]["iteration"] == 20
    ckpt = torch.load(tmp_path / "run" / "v" / status["best"]["checkpoint"], weights_only=True)
    assert ckpt["gan_suite"]["iteration"] == 20


def test_a_saturating_discriminator_stops_the_run_after_m_saturated_checks(tmp_path):
    # G puts its points at radius 0.1, the data is at radius 1; D(x) = sigmoid(t * (|x| - 0.5)):
    # saturated (D(x) >= 0.99 and D(G(z)) <= 0.01) from the first check with 0.4 t >= logit(0.99)
    level = 0.99
    first = next(t for t in range(EVERY, 100, EVERY) if 0.4 * t >= math.log(level / (1 - level)) + 0.05)
    module = ScriptedGAN(scale_at=lambda t: 0.1, gain_at=lambda t: float(t))
    rule = DivergenceStopping(metric=None, saturation_for=3, saturation_level=level)
    _, status = _fit(tmp_path, module, rule, best_metric=None)
    assert first == 15
    assert module.iteration == first + 2 * EVERY
    assert status["status"] == "diverged" and "saturated" in status["reason"]
    d_real, d_fake = rule.last_saturation
    assert d_real >= level and d_fake <= 1 - level


def test_a_run_no_rule_stops_reaches_max_steps_with_status_finished(tmp_path):
    module = ScriptedGAN(scale_at=lambda t: 1 + 1.0 / t)  # improves at every evaluation
    _, status = _fit(tmp_path, module, PlateauStopping(metric="fid", patience=2), max_steps=20)
    assert module.iteration == 20 and status["status"] == "finished"


def test_rules_refuse_metrics_without_a_direction_or_not_computed(tmp_path):
    with pytest.raises(ConfigError, match="direction"):
        PlateauStopping(metric="modes_total")
    with pytest.raises(ConfigError, match="computes no 'kid_mean'"):
        _fit(tmp_path, ScriptedGAN(scale_at=lambda t: 1.0), PlateauStopping(metric="kid_mean"), max_steps=5)


@pytest.mark.parametrize("callbacks, culprit", [
    (["gan_suite.evaluation.stopping.PlateauStopping", "--trainer.callbacks.metric=modes_total"], "metric 'modes_total' is not a score"),
    (["gan_suite.evaluation.mode_history.ModeHistory"], "ModeHistory needs an EvaluationCallback"),
])
def test_bad_monitoring_options_are_one_line_errors(tmp_path, capsys, callbacks, culprit):
    from gan_suite.cli import main

    code = main([
        "fit", "--config", os.path.join(REPO_ROOT, "configs", "gan_ring8.yaml"), "--trainer.logger=false",
        f"--trainer.default_root_dir={tmp_path}", "--trainer.max_steps=2", "--trainer.enable_progress_bar=false",
        "--model.init_args.g_hidden=[8]", "--model.init_args.d_hidden=[8]", "--data.init_args.num_samples=200",
        f"--trainer.callbacks+={callbacks[0]}", *callbacks[1:],
    ])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("gan-suite: error: ") and culprit in err[0], err

"""Mode histogram over training: the matrix behind the heatmap and the mode-hopping statistics."""

import json
import math

import numpy as np
import pytorch_lightning as pl
from pytorch_lightning.loggers import CSVLogger

from gan_suite.data import MNISTBundled
from gan_suite.evaluation.callback import EvaluationCallback
from gan_suite.evaluation.mode_history import ModeHistory, mode_hopping
from gan_suite.evaluation.replay import ReplayGenerator
from scripted_gans import SwitchingReplay


def test_hopping_statistics_of_a_hand_made_history():
    shares = np.array([
        [0.8, 0.1, 0.0, 0.6],
        [0.2, 0.9, 0.0, 0.4],
    ])
    stats = mode_hopping(shares)
    # the empty third step has no most frequent mode and no histogram
    assert stats["most_frequent"] == [0, 1, None, 0]
    assert stats["hops"] == 2
    tv = stats["total_variation"]
    assert math.isclose(tv[0], 0.5 * (0.7 + 0.7)) and math.isnan(tv[1]) and math.isnan(tv[2])
    assert math.isclose(stats["mean_total_variation"], 0.7)
    # histograms are compared as distributions: the same shape at half the mass is no change
    assert mode_hopping(np.array([[0.5, 0.25], [0.5, 0.25]]))["total_variation"] == [0.0]


def test_heatmap_of_a_replay_generator_switching_mode_every_k_steps_shows_the_switches(tmp_path):
    classes, k, every, steps = [1, 7, 3], 10, 5, 40
    data_spec = {"class_path": "gan_suite.data.MNISTBundled", "init_args": {}}
    replays = [ReplayGenerator(data_spec=data_spec, classes=[c], latent_dim=8) for c in classes]
    module = SwitchingReplay(replays, switch_every=k)
    evaluation = EvaluationCallback(every_n_steps=every, num_samples=200, metrics=["modes"], best_metric=None, batch_size=200)
    history = ModeHistory()
    trainer = pl.Trainer(
        accelerator="cpu", max_steps=steps, logger=CSVLogger(str(tmp_path), name="run", version="v"), enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False, callbacks=[evaluation, history], log_every_n_steps=1,
    )
    trainer.fit(module, MNISTBundled(batch_size=8))

    evaluated = list(range(every, steps + 1, every))
    expected = [classes[(t // k) % len(classes)] for t in evaluated]
    switches = sum(1 for a, b in zip(expected, expected[1:]) if a != b)
    assert history.steps == evaluated
    shares = history.shares  # the matrix the PNG shows: [10 digits, 8 evaluations]
    assert shares.shape == (10, len(evaluated))
    assert [int(np.argmax(shares[:, t])) for t in range(len(evaluated))] == expected
    assert all(shares[c, t] > 0.9 for t, c in enumerate(expected))  # the classifier errs on a few digits
    stats = history.statistics()
    assert stats["hops"] == switches == 4
    # a switch between one-class generators moves (almost) all the mass; no switch moves little
    for t, tv in enumerate(stats["total_variation"], start=1):
        assert (tv > 0.8) if expected[t] != expected[t - 1] else (tv < 0.1)
    # the other digits are dropped (statistically), the replayed one is not
    dropped = history.dropped
    assert all(not dropped[c, t] and dropped[[d for d in range(10) if d != c], t].all() for t, c in enumerate(expected))

    run = tmp_path / "run" / "v" / "evaluation"
    assert (run / "mode_history.png").is_file()
    saved = json.loads((run / "mode_history.json").read_text())
    assert saved["hops"] == 4 and np.allclose(saved["shares"], shares)
    logged = (tmp_path / "run" / "v" / "metrics.csv").read_text()
    assert "modes/hops" in logged and "modes/total_variation" in logged

"""In-training evaluation in one process: logged metrics, history, best checkpoint."""

import json
import os

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import CSVLogger

from gan_suite.data import MNISTBundled
from gan_suite.evaluation.callback import EvaluationCallback
from gan_suite.models import DCGAN


def test_callback_logs_keeps_history_and_the_best_checkpoint_without_extractor_weights(tmp_path):
    evaluation = EvaluationCallback(every_n_steps=10, num_samples=300, metrics=["fid", "modes"], best_metric="fid", batch_size=150)
    module = DCGAN(image_size=28, channels=1, g_width=16, d_width=16)
    logger = CSVLogger(str(tmp_path), name="run", version="v")
    trainer = pl.Trainer(
        accelerator="cpu", max_steps=2 * 30, logger=logger, enable_progress_bar=False, enable_model_summary=False,
        enable_checkpointing=False, callbacks=[evaluation], log_every_n_steps=10,
    )
    trainer.fit(module, MNISTBundled(batch_size=32))
    run = tmp_path / "run" / "v"
    history = [json.loads(line) for line in (run / "evaluation" / "history.jsonl").read_text().splitlines()]
    assert [h["iteration"] for h in history] == [10, 20, 30]
    assert all("fid" in h and "modes_covered" in h for h in history)
    assert history == evaluation.history
    best = min(history, key=lambda h: h["fid"])
    assert evaluation.best_step == best["iteration"] and evaluation.best_value == best["fid"]
    ckpt = torch.load(run / "checkpoints" / "best_fid.ckpt", weights_only=False)
    assert ckpt["gan_suite"]["iteration"] == best["iteration"]
    keys = list(ckpt["state_dict"])
    assert all(k.startswith(("generator", "discriminator", "fixed_noise")) for k in keys), "extractor weights leaked"
    metrics_csv = (run / "metrics.csv").read_text()
    assert "eval/fid" in metrics_csv
    assert os.path.getsize(run / "checkpoints" / "best_fid.ckpt") < 5_000_000

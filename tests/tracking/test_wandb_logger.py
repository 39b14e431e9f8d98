"""The W&B logger, checked with W&B's own reader of offline runs (``wandb leet inspect``).

No mocks: a real offline run is written and read back.
"""

import glob
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from gan_suite.cli import main
from gan_suite.tracking import WandbLogger, log_evaluation, reopen_run_logger, resolve_offline
from gan_suite.tracking.credentials import has_credentials
from gan_suite.tracking.wandb_logger import _displayable
from tests.conftest import REPO_ROOT

QUICKSTART = os.path.join(REPO_ROOT, "configs", "quickstart.yaml")
WANDB = os.path.join(os.path.dirname(sys.executable), "wandb")
TRAINING_KEYS = ("loss_d", "loss_g", "d_real", "d_fake", "grad_norm_d", "grad_norm_g")


@pytest.fixture
def offline_env(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_dir"))
    monkeypatch.setenv("NETRC", str(tmp_path / "no_netrc"))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    (tmp_path / "wandb_dir").mkdir()


def _inspect(path, summary):
    args = [WANDB, "leet", "inspect", "--json"] + (["--summary"] if summary else []) + [str(path)]
    out = subprocess.run(args, capture_output=True, text=True, timeout=120, check=True).stdout
    return json.loads(out) if summary else [json.loads(line) for line in out.splitlines() if line.strip()]


def _tiny_fit(save_dir, *extra):
    return main([
        "fit", "--config", QUICKSTART, "--trainer.logger=gan_suite.tracking.WandbLogger",
        f"--trainer.logger.init_args.save_dir={save_dir}", "--trainer.logger.init_args.name=wb",
        "--trainer.max_steps=8", "--trainer.log_every_n_steps=1", "--trainer.enable_progress_bar=false",
        "--model.init_args.g_width=8", "--model.init_args.d_width=8", "--model.init_args.loss=hinge",
        "--data.init_args.batch_size=16", "--samples.every_n_steps=2", *extra,
    ])


def test_offline_run_logs_config_scalars_images_and_summary(tmp_path, offline_env):
    assert _tiny_fit(tmp_path / "runs") == 0
    (run_dir,) = glob.glob(str(tmp_path / "runs" / "wb" / "*"))
    # one directory per run: resolved config, checkpoints, sample PNGs, W&B's files
    assert os.path.isfile(os.path.join(run_dir, "config.yaml"))
    assert os.path.isfile(os.path.join(run_dir, "checkpoints", "last.ckpt"))
    assert glob.glob(os.path.join(run_dir, "samples", "step_*.png"))
    (wandb_run,) = glob.glob(os.path.join(run_dir, "wandb", "offline-run-*"))
    assert wandb_run.endswith(os.path.basename(run_dir))  # run id = run directory name

    state = _inspect(wandb_run, summary=True)
    assert state["state"] == "finished" and state["exit_code"] == 0  # finalize finished the run
    config = state["config"]
    assert config["model"]["init_args"]["loss"] == "hinge"  # the resolved config ...
    assert config["loss"] == "hinge" and config["d_width"] == 8  # ... and the module's hyper-parameters
    assert config["trainer"]["max_steps"] == 8
    for key in TRAINING_KEYS:
        assert isinstance(state["summary"][key], (int, float)), key
    assert state["summary"]["trainer/global_step"] == 8

    records = _inspect(wandb_run, summary=False)
    history = [r["history"]["item"] for r in records if r["type"] == "history"]
    assert sum("loss_d" in item for item in history) >= 4  # every training step (log_every_n_steps=1)
    images = [item for item in history if item.get("samples._type") == "images/separated"]
    assert len(images) >= 2
    picture = np.asarray(Image.open(os.path.join(wandb_run, "files", images[0]["samples.filenames"][0])))
    assert picture.dtype == np.uint8 and picture.max() > 0 and picture.mean() > 10  # not the black float grid

    # afterwards: evaluation results appended to the same run (a resumed offline segment)
    nn_png = tmp_path / "nn.png"
    Image.fromarray(np.full((12, 20, 3), 200, np.uint8)).save(nn_png)
    logger = reopen_run_logger(run_dir, silent=True)
    assert logger.version == os.path.basename(run_dir)
    try:
        log_evaluation(logger, {"metrics": {"fid": 12.5, "is_mean": 2.0, "note": "x"}, "files": {"copy_gallery": str(nn_png)}}, step=8, summary=True)
        import pandas as pd

        logger.log_table("table", pd.DataFrame({"variant": ["a", "b"], "fid": [1.0, 2.0]}))
    finally:
        logger.finalize("success")
    segments = sorted(glob.glob(os.path.join(run_dir, "wandb", "offline-run-*")))
    assert len(segments) == 2
    second = _inspect(segments[-1], summary=True)
    assert second["run_id"] == state["run_id"]
    assert second["summary"]["eval/fid"] == 12.5 and second["summary"]["eval/is_mean"] == 2.0
    assert second["summary"]["eval/copy_gallery"]["_type"] == "images/separated"
    assert second["summary"]["table"]["_type"] == "table-file"


def test_other_loggers_still_work(tmp_path):
    """--trainer.logger=false: config.yaml, checkpoints and samples land in default_root_dir."""
    code = main([
        "fit", "--config", QUICKSTART, "--trainer.logger=false", f"--trainer.default_root_dir={tmp_path}",
        "--trainer.max_steps=4", "--trainer.enable_progress_bar=false", "--model.init_args.g_width=8",
        "--model.init_args.d_width=8", "--data.init_args.batch_size=16", "--samples.every_n_steps=1",
    ])
    assert code == 0
    assert (tmp_path / "config.yaml").is_file() and (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert list((tmp_path / "samples").glob("*.png"))


def test_run_directory_is_where_model_checkpoint_writes(tmp_path, offline_env):
    import pytorch_lightning as pl
    from pytorch_lightning.loggers import CSVLogger

    from gan_suite.run_layout import run_directory

    wandb_logger = WandbLogger(save_dir=str(tmp_path), name="group", version="abc123")
    for logger, expected in (
        (wandb_logger, tmp_path / "group" / "abc123"),
        (CSVLogger(str(tmp_path), name="csv"), tmp_path / "csv" / "version_0"),
        (False, tmp_path / "root"),
    ):
        trainer = pl.Trainer(logger=logger, default_root_dir=str(tmp_path / "root"), enable_progress_bar=False)
        assert run_directory(trainer) == str(expected)
        ckpt_dir = trainer.checkpoint_callback._ModelCheckpoint__resolve_ckpt_dir(trainer)
        assert os.path.dirname(ckpt_dir) == str(expected)
    assert wandb_logger._experiment is None  # nothing above started W&B


def test_offline_unless_credentials(tmp_path):
    netrc = tmp_path / "netrc"
    assert resolve_offline(None, {"NETRC": str(netrc)}) is True  # nothing: offline
    assert resolve_offline(None, {"WANDB_API_KEY": "k" * 40}) is False
    assert resolve_offline(None, {"WANDB_API_KEY": "k" * 40, "WANDB_MODE": "offline"}) is True
    assert resolve_offline(True, {"WANDB_API_KEY": "k" * 40}) is True
    netrc.write_text("machine api.wandb.ai\n  login user\n  password " + "p" * 40 + "\n")
    assert has_credentials({"NETRC": str(netrc)})
    assert not has_credentials({"NETRC": str(netrc), "WANDB_BASE_URL": "https://wandb.example.com"})
    assert resolve_offline(None, {"NETRC": str(netrc)}) is False


def test_images_become_uint8():
    import torch

    grey = _displayable(np.full((4, 4, 3), 0.5, np.float32))
    assert grey.dtype == np.uint8 and int(grey[0, 0, 0]) == 128
    chw = _displayable(torch.ones(3, 5, 4))
    assert chw.shape == (5, 4, 3) and chw.max() == 255
    kept = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    assert _displayable(kept) is kept


@pytest.mark.slow
def test_unreachable_server_falls_back_to_offline(tmp_path, monkeypatch):
    """Credentials but no server: the run goes on offline after init_timeout, with a warning."""
    import wandb

    wandb.teardown()  # forget the settings W&B cached from the offline runs of earlier tests
    monkeypatch.setenv("WANDB_API_KEY", "a" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.delenv("WANDB_MODE", raising=False)
    logger = WandbLogger(save_dir=str(tmp_path), name="x", init_timeout=3, silent=True)
    assert logger.offline is False
    with pytest.warns(UserWarning, match="logging offline instead"):
        logger.log_metrics({"a": 1.0}, step=1)
    logger.finalize("success")
    assert logger.offline is True
    (segment,) = glob.glob(str(tmp_path / "x" / logger.version / "wandb" / "offline-run-*"))
    assert _inspect(segment, summary=True)["summary"]["a"] == 1


def test_wandb_mode_disabled_writes_no_wandb_files(tmp_path, offline_env, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert _tiny_fit(tmp_path / "runs") == 0
    (run_dir,) = glob.glob(str(tmp_path / "runs" / "wb" / "*"))
    assert os.path.isfile(os.path.join(run_dir, "checkpoints", "last.ckpt"))  # training itself is unchanged
    assert not glob.glob(str(tmp_path / "**" / "*.wandb"), recursive=True)
    assert not os.path.exists(os.path.join(run_dir, "wandb")) and os.listdir(tmp_path / "wandb_dir") == []


def test_resuming_a_wandb_run_continues_its_run_id(tmp_path, offline_env, capsys):
    assert _tiny_fit(tmp_path / "runs") == 0
    (run_dir,) = glob.glob(str(tmp_path / "runs" / "wb" / "*"))
    assert _tiny_fit(tmp_path / "runs", "--trainer.max_steps=12", f"--ckpt_path={run_dir}/checkpoints/last.ckpt") == 0
    assert f"resuming {run_dir} at training step 4" in capsys.readouterr().err
    assert glob.glob(str(tmp_path / "runs" / "wb" / "*")) == [run_dir]
    segments = sorted(glob.glob(os.path.join(run_dir, "wandb", "offline-run-*")))
    # one id, two segments (wandb adds -1 to the second folder's name when both start in one second)
    run_id = re.escape(os.path.basename(run_dir))
    assert len(segments) == 2 and all(re.fullmatch(rf"offline-run-\d{{8}}_\d{{6}}-{run_id}(-\d+)?", os.path.basename(s)) for s in segments)
    steps = [r for r in _inspect(segments[1], summary=False) if "history" in json.dumps(r)]
    assert steps  # the second segment holds the resumed steps

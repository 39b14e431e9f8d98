"""The gan-suite command: configs, overrides, and one-line errors."""

import os
import subprocess
import sys

import pytest
import yaml

from gan_suite.cli import main
from tests.conftest import REPO_ROOT

CONFIGS = os.path.join(REPO_ROOT, "configs")


def _fit_args(tmp_path, config="quickstart.yaml", steps=4, *extra):
    return [
        "fit", "--config", os.path.join(CONFIGS, config), f"--trainer.max_steps={steps}",
        f"--trainer.logger.init_args.save_dir={tmp_path}", "--trainer.enable_progress_bar=false", *extra,
    ]


def test_quickstart_config_runs_end_to_end(tmp_path):
    assert main(_fit_args(tmp_path, "quickstart.yaml", 4, "--samples.every_n_steps=1")) == 0
    run = tmp_path / "quickstart" / "version_0"
    assert (run / "config.yaml").exists() and (run / "checkpoints" / "last.ckpt").exists()
    pngs = sorted(os.listdir(run / "samples"))
    assert pngs[-1] == "step_0000002.png"
    resolved = yaml.safe_load((run / "config.yaml").read_text())
    assert resolved["model"]["class_path"] == "gan_suite.models.DCGAN"
    assert resolved["trainer"]["max_steps"] == 4


def test_last_checkpoint_holds_the_final_step_between_periodic_ones(tmp_path):
    """10 updates with a checkpoint every 4: last.ckpt is the model after update 10, not 8."""
    import torch

    assert main(_fit_args(tmp_path, "quickstart.yaml", 10, "--checkpoint.every_n_train_steps=4")) == 0
    run = tmp_path / "quickstart" / "version_0"
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 10 and last["gan_suite"]["iteration"] == 5
    periodic = torch.load(run / "checkpoints" / "epoch=0-step=8.ckpt", weights_only=True)
    changed = [k for k, v in last["state_dict"].items() if v.is_floating_point() and not torch.equal(v, periodic["state_dict"][k])]
    assert changed  # the weights of updates 9 and 10 are in it


def test_ckpt_path_resumes_the_run_in_its_own_folder(tmp_path, capsys):
    import csv

    import torch

    logging = ["--trainer.log_every_n_steps=1", "--checkpoint.every_n_train_steps=2"]
    assert main(_fit_args(tmp_path, "quickstart.yaml", 4, *logging)) == 0
    run = tmp_path / "quickstart" / "version_0"
    ckpt = run / "checkpoints" / "last.ckpt"
    capsys.readouterr()
    with _no_warning_about("deleted", "not empty", "not resumable"):
        assert main(_fit_args(tmp_path, "quickstart.yaml", 8, *logging, f"--ckpt_path={ckpt}")) == 0
    assert f"gan-suite: resuming {run} at training step 2" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path / "quickstart")) == ["version_0"]  # no second run folder
    resumed = torch.load(ckpt, weights_only=True)
    assert resumed["gan_suite"]["iteration"] == 4 and resumed["global_step"] == 8
    # every periodic checkpoint is kept (updates 2, 4, 6, 8), and metrics.csv holds both segments
    assert sorted(f for f in os.listdir(run / "checkpoints") if f != "last.ckpt") == [
        f"epoch=0-step={n}.ckpt" for n in (2, 4, 6, 8)
    ]
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert sorted({int(float(r["iteration"])) for r in rows if r.get("iteration")}) == [1, 2, 3, 4]


class _no_warning_about:
    """Fails when a warning containing any of the words is issued inside the block."""

    def __init__(self, *words):
        self.words = words

    def __enter__(self):
        import warnings

        self._catch = warnings.catch_warnings(record=True)
        self.caught = self._catch.__enter__()
        warnings.simplefilter("always")

    def __exit__(self, *exc):
        self._catch.__exit__(*exc)
        bad = [str(w.message) for w in self.caught if any(word in str(w.message) for word in self.words)]
        assert not bad, bad


@pytest.mark.parametrize("config", sorted(f for f in os.listdir(CONFIGS) if f.endswith(".yaml")))
def test_every_shipped_config_parses(config, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", os.path.join(CONFIGS, config), "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["class_path"].startswith("gan_suite.")


def test_a_typo_in_a_key_is_an_error_naming_the_key(tmp_path, capsys):
    assert main(_fit_args(tmp_path, "quickstart.yaml", 4, "--model.init_args.los=hinge")) == 2
    err = capsys.readouterr().err.strip()
    assert err == "gan-suite: error: Parser key \"model\": Problem with given class_path 'gan_suite.models.DCGAN': Option 'los' is not accepted"


def test_a_typo_inside_a_config_file_names_the_key(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    cfg = yaml.safe_load(open(os.path.join(CONFIGS, "quickstart.yaml")))
    cfg["model"]["init_args"]["g_widht"] = 16
    bad.write_text(yaml.safe_dump(cfg))
    assert main(["fit", "--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("gan-suite: error:") and "g_widht" in err


def test_model_data_mismatch_is_one_line_exit_2(tmp_path, capsys):
    code = main(_fit_args(tmp_path, "quickstart.yaml", 4, "--model.init_args.image_size=32"))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("gan-suite: error: the data gives samples of shape (1, 28, 28)")


def test_console_entry_point_runs():
    proc = subprocess.run([sys.executable, "-m", "gan_suite", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "fit" in proc.stdout


def test_missing_dataset_is_one_line_exit_2(tmp_path, capsys):
    code = main(_fit_args(tmp_path, "dcgan_mnist.yaml", 4, f"--data.init_args.root={tmp_path / 'data'}", "--data.init_args.download=false"))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("gan-suite: error: MNIST is not in") and str(tmp_path / "data") in err[-1]


def test_the_progress_bar_counts_training_steps(tmp_path, capsys):
    # d_steps = 2: 9 optimizer updates are 3 training steps; Lightning's own bar would show 3/9
    args = _fit_args(tmp_path, "quickstart.yaml", 9, "--model.init_args.d_steps=2")
    args = [a for a in args if a != "--trainer.enable_progress_bar=false"]
    assert main(args) == 0
    captured = capsys.readouterr()
    err = (captured.out + captured.err).replace("\r", "\n")
    final = [line for line in err.splitlines() if "it/s" in line or "s/it" in line][-1]
    assert "100%" in final and " 3/3 " in final, final

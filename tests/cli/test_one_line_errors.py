"""Bad command-line input ends in one line ``gan-suite: error: ...`` naming the culprit, exit 2, no
traceback, before any work starts; ``--debug`` / ``GAN_SUITE_DEBUG=1`` show the traceback instead."""

import os
import subprocess
import sys

import pytest

import gan_suite.cli as cli
from gan_suite.cli import main
from gan_suite.errors import DataUnavailableError, one_line
from tests.conftest import REPO_ROOT

QUICKSTART = os.path.join(REPO_ROOT, "configs", "quickstart.yaml")
SMOKE = os.path.join(REPO_ROOT, "benchmarks", "smoke.yaml")


def one_error_line(capsys, code, expected_code=2):
    err = capsys.readouterr().err
    assert code == expected_code, err
    assert "Traceback" not in err, err
    lines = [line for line in err.strip().splitlines() if line.startswith("gan-suite: error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "a_file"
    path.write_text("x")
    return str(path)


# ------------------------------------------------------------------ fit (LightningCLI)

FIT_CASES = [
    (["--trainer.max_steps", "-5"], "gan-suite: error: --trainer.max_steps must be -1 (no limit) or >= 1, got -5"),
    (["--trainer.max_steps", "0"], "gan-suite: error: --trainer.max_steps must be -1 (no limit) or >= 1, got 0"),
    (["--trainer.max_epochs", "-2"], "gan-suite: error: --trainer.max_epochs must be -1 (no limit) or >= 1, got -2"),
    (["--model.init_args.d_steps", "0"], "gan-suite: error: --model.init_args.d_steps must be >= 1, got 0"),
    (["--samples.every_n_steps", "0"], "gan-suite: error: --samples.every_n_steps must be >= 1, got 0"),
    (["--checkpoint.every_n_train_steps", "-1"], "gan-suite: error: --checkpoint.every_n_train_steps must be >= 0, got -1"),
    (["--data.init_args.batch_size", "0"], "gan-suite: error: --data.init_args.batch_size must be >= 1, got 0"),
    (["--trainer.max_steps", "abc"], 'gan-suite: error: Parser key "trainer.max_steps": Expected a <class \'int\'>. Got value: abc'),
    (["--model.init_args.loss", "foo"], "gan-suite: error: gan_suite.models.DCGAN: unknown loss 'foo'; choose one of: "
                                       "minimax, non_saturating, least_squares, hinge, wgan_gp"),
    (["--model.init_args.ema_decay", "1.5"], "gan-suite: error: gan_suite.models.DCGAN: ema_decay must be in [0, 1), got 1.5"),
    (["--model.init_args.loss=hinj"], "gan-suite: error: gan_suite.models.DCGAN: unknown loss 'hinj'; choose one of: "
                                      "minimax, non_saturating, least_squares, hinge, wgan_gp"),
    (["--trainer.max_stepz=3"], "gan-suite: error: unrecognized arguments: --trainer.max_stepz=3"),
    (["--optimizer=torch.optim.SGD"], "gan-suite: error: unrecognized arguments: --optimizer=torch.optim.SGD"),
    (["--model.init_args.g_optimizer=torch.optim.Nope"], "gan-suite: error: Parser key \"model\": Problem with given class_path "
     "'gan_suite.models.DCGAN': Parser key \"g_optimizer\": Expected a path but torch.optim.Nope either not accessible or invalid"),
    (["--model.init_args.seeds=[1, 1]"], "gan-suite: error: gan_suite.models.DCGAN: seeds must be distinct, got [1, 1]"),
    (["--model.init_args.seeds=[0, 1]", "--model.init_args.num_classes=10"],
     "gan-suite: error: gan_suite.models.DCGAN: stacked seeds do not train class-conditional models: train each seed as its own run"),
    (["--model.init_args.optimizer_kernels=fast"], "gan-suite: error: gan_suite.models.DCGAN: optimizer_kernels must be one of "
                                                  "['for_loop', 'foreach', 'fused'] or None, got 'fast'"),
]


@pytest.mark.parametrize("extra,expected", FIT_CASES, ids=[" ".join(c[0]) for c in FIT_CASES])
def test_fit_option_errors(tmp_path, capsys, extra, expected):
    code = main(["fit", "--config", QUICKSTART, f"--trainer.logger.init_args.save_dir={tmp_path}", *extra])
    assert one_error_line(capsys, code) == expected
    assert not (tmp_path / "quickstart").exists(), "no work may start"


def test_fit_ckpt_path_and_output_folder(tmp_path, capsys, a_file):
    code = main(["fit", "--config", QUICKSTART, f"--trainer.logger.init_args.save_dir={tmp_path}", f"--ckpt_path={tmp_path / 'no.ckpt'}"])
    assert one_error_line(capsys, code) == f"gan-suite: error: --ckpt_path: checkpoint not found: {tmp_path / 'no.ckpt'}"
    code = main(["fit", "--config", QUICKSTART, f"--trainer.logger.init_args.save_dir={a_file}/runs"])
    assert one_error_line(capsys, code) == (
        f"gan-suite: error: --trainer.logger.init_args.save_dir: cannot create {a_file}/runs: {a_file} is not a folder"
    )


# ------------------------------------------------------------------ evaluate, benchmark, report (argparse)

def _argparse_cases(tmp, a_file):
    ckpt = ["--ckpt", a_file]
    return [
        (["evaluate", *ckpt, "--num-samples", "0"], "argument --num-samples: must be an integer >= 1, got 0"),
        (["evaluate", *ckpt, "--num-samples", "-3"], "argument --num-samples: must be an integer >= 1, got -3"),
        (["evaluate", *ckpt, "--num-samples", "many"], "argument --num-samples: must be an integer >= 1, got 'many'"),
        (["evaluate", *ckpt, "--num-real", "0"], "argument --num-real: must be an integer >= 1, got 0"),
        (["evaluate", *ckpt, "--batch-size", "0"], "argument --batch-size: must be an integer >= 1, got 0"),
        (["evaluate", *ckpt, "--kid-subset-size", "1"], "argument --kid-subset-size: must be an integer >= 2, got 1"),
        (["evaluate", *ckpt, "--weights-path", f"{tmp}/no.pth"], f"argument --weights-path: file not found: {tmp}/no.pth"),
        (["evaluate", *ckpt, "--weights-path", tmp], f"argument --weights-path: is a folder, not a file: {tmp}"),
        (["evaluate", *ckpt, "--out", f"{a_file}/out"], f"argument --out: cannot create {a_file}/out: {a_file} is not a folder"),
        (["evaluate", *ckpt, "--real-split", "test"], "argument --real-split: invalid choice: 'test' (choose from 'heldout', 'train')"),
        (["evaluate"], "give --ckpt, or --samples with --real, or --real with --export-real-stats"),
        (["evaluate", "--samples", tmp], "--samples needs --real (a folder, an array file, DATA-MODULE[:split] or a statistics .npz)"),
        (["evaluate", "--ckpt", f"{tmp}/no.ckpt"], f"checkpoint not found: {tmp}/no.ckpt"),
        (["evaluate", "--ckpt", a_file], f"cannot read checkpoint {a_file}: not a PyTorch tensors file (byte 0x78 is no pickle opcode)"),
        (["benchmark", f"{tmp}/no.yaml", "--out", tmp], f"argument definition: file not found: {tmp}/no.yaml"),
        (["benchmark", a_file, "--out", tmp, "--jobs", "0"], "argument --jobs: must be an integer >= 1, got 0"),
        (["benchmark", a_file, "--out", tmp, "--shard", "2", "--num-shards", "2"], "--shard must be < --num-shards (2), got 2"),
        (["benchmark", a_file, "--out", tmp, "--num-shards", "0", "--shard", "0"], "argument --num-shards: must be an integer >= 1, got 0"),
        (["benchmark", a_file, "--out", f"{a_file}/o"], f"argument --out: cannot create {a_file}/o: {a_file} is not a folder"),
        (["report", f"{tmp}/nothing"], f"argument out: folder not found: {tmp}/nothing"),
        (["report", tmp, "--no-such"], "unrecognized arguments: --no-such"),
        (["evaluate", *ckpt, "--significance", "1.5"], "argument --significance: must be a number between 0 and 1 (exclusive), got 1.5"),
        (["evaluate", *ckpt, "--copy-quantile", "zero"], "argument --copy-quantile: must be a number between 0 and 1, got 'zero'"),
        (["evaluate", *ckpt, "--metrics", "fid,fidd"], "unknown metric(s) fidd; choose from: fid, fd_inf, is, kid, pr, dc, memorisation, modes, intra_fid, parzen"),
        (["benchmark", SMOKE, "--out", tmp, "--devices", "gpu7"], "--devices must be 'auto', 'cpu' or GPU indices like 0,1; got 'gpu7'"),
        (["benchmark", a_file, "--out", tmp, "--logger", "tensorboard"],
         "argument --logger: invalid choice: 'tensorboard' (choose from 'wandb', 'csv', 'none')"),
        (["benchmark", a_file, "--out", tmp, "--shard", "0"], "give both --shard and --num-shards (or neither)"),
        (["validate", "--config", QUICKSTART], "unknown command 'validate'; commands: fit, evaluate, benchmark, report (gan-suite --help)"),
        (["trian"], "unknown command 'trian'; commands: fit, evaluate, benchmark, report (gan-suite --help)"),
    ]


def _variant_definition(tmp, overrides):
    import yaml

    path = os.path.join(tmp, "variant.yaml")
    with open(path, "w") as f:
        yaml.safe_dump({
            "name": "bad_variant", "base_config": os.path.join(REPO_ROOT, "configs", "gan_ring8.yaml"),
            "variants": {"gan": {}, "pacgan2": overrides}, "seeds": 1, "train": {"steps": 10},
            "evaluation": {"features": "raw2d", "metrics": ["modes"], "num_samples": 200},
            "main_metric": {"name": "modes_covered", "higher_is_better": True}, "logger": "none",
        }, f)
    return path


@pytest.mark.parametrize("overrides,expected", [
    ({"model.init_args.pak": 2}, "benchmark variant 'pacgan2': Parser key \"model\": Problem with given class_path "
                                 "'gan_suite.models.VanillaGAN': Option 'pak' is not accepted"),
    ({"model.init_args.loss": "hinj"}, "benchmark variant 'pacgan2': gan_suite.models.VanillaGAN: unknown loss 'hinj'; "
                                       "choose one of: minimax, non_saturating, least_squares, hinge, wgan_gp"),
    ({"model.init_args.d_steps": 0}, "benchmark variant 'pacgan2': --model.init_args.d_steps must be >= 1, got 0"),
], ids=["misspelt key", "bad value", "out of range"])
@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry-run"])
def test_benchmark_variant_overrides_are_checked_before_any_work(tmp_path, capsys, overrides, expected, dry_run):
    out = tmp_path / "out"
    argv = ["benchmark", _variant_definition(str(tmp_path), overrides), "--out", str(out)] + (["--dry-run"] if dry_run else [])
    assert one_error_line(capsys, main(argv)) == f"gan-suite: error: {expected}"
    assert not out.exists(), "no run may start"


def test_argparse_command_errors(tmp_path, capsys, a_file):
    for argv, expected in _argparse_cases(str(tmp_path), a_file):
        assert one_error_line(capsys, main(argv)) == f"gan-suite: error: {expected}", argv


# ------------------------------------------------------------------ one error path, --debug

def _raise_runtime_error(argv):
    raise RuntimeError("boom\nsecond line")


@pytest.fixture
def broken_command(monkeypatch):
    monkeypatch.setitem(cli.COMMANDS, "broken", f"{__name__}:_raise_runtime_error")
    monkeypatch.delenv("GAN_SUITE_DEBUG", raising=False)


def test_an_unexpected_error_is_one_line_exit_1(broken_command, capsys):
    line = one_error_line(capsys, main(["broken"]), expected_code=1)
    assert line == "gan-suite: error: unexpected RuntimeError: boom (rerun with --debug or GAN_SUITE_DEBUG=1 for the traceback)"


def test_debug_flag_and_variable_show_the_traceback(broken_command, monkeypatch):
    with pytest.raises(RuntimeError, match="boom"):
        main(["--debug", "broken"])
    with pytest.raises(RuntimeError, match="boom"):
        main(["broken", "--debug"])
    monkeypatch.setenv("GAN_SUITE_DEBUG", "1")
    with pytest.raises(RuntimeError, match="boom"):
        main(["broken"])
    monkeypatch.setenv("GAN_SUITE_DEBUG", "0")
    assert main(["broken"]) == 1


def test_an_error_from_a_data_loader_worker_keeps_its_own_line():
    """PyTorch re-raises a worker's exception with the worker's traceback inside the message."""
    message = (
        "Caught DataUnavailableError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
        '  File "x.py", line 1, in f\ngan_suite.errors.DataUnavailableError: cannot decode image /d/a.png: truncated\n'
    )
    assert one_line(DataUnavailableError(message)) == (2, "cannot decode image /d/a.png: truncated")


def test_the_console_command_prints_one_line_and_exits_2(tmp_path):
    """The real process: stderr holds the one line only, with the exit code (one subprocess for all paths)."""
    proc = subprocess.run(
        [sys.executable, "-m", "gan_suite", "evaluate", "--ckpt", str(tmp_path / "x.ckpt"), "--num-samples", "-3"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "GAN_SUITE_DEBUG": ""},
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "gan-suite: error: argument --num-samples: must be an integer >= 1, got -3"


def _interrupt(argv):
    raise KeyboardInterrupt


def test_an_interrupt_is_one_line_exit_130(monkeypatch, capsys):
    monkeypatch.setitem(cli.COMMANDS, "interrupted", f"{__name__}:_interrupt")
    monkeypatch.delenv("GAN_SUITE_DEBUG", raising=False)
    assert main(["interrupted"]) == 130
    assert capsys.readouterr().err == "gan-suite: interrupted\n"

"""End to end with the real pieces: `gan-suite fit` subprocesses, the real evaluation, the report.

Two tiny runs on the ring in parallel: one trains, one has an absurd learning rate and diverges.
"""

import os

import pytest

from gan_suite.benchmark.report import write_report
from gan_suite.benchmark.results import read_all_results
from gan_suite.benchmark.runner import run_benchmark
from tests.benchmark.helpers import definition_dict, write_definition

ABSURD_SGD = {"class_path": "torch.optim.SGD", "init_args": {"lr": 1.0e6}}


@pytest.mark.slow
def test_real_runs_finish_or_diverge_and_are_reported(tmp_path):
    pytest.importorskip("gan_suite.evaluation.evaluate")
    raw = definition_dict(
        variants={"ok": {}, "lr1e6": {"model.init_args.g_optimizer": ABSURD_SGD, "model.init_args.d_optimizer": ABSURD_SGD}},
        seeds=[0], steps=12, every=6, logger="csv",
        train={"steps": 12, "overrides": {
            "model.init_args.g_hidden": [16, 16], "model.init_args.d_hidden": [16], "data.init_args.num_samples": 1000,
            "trainer.log_every_n_steps": 4, "samples.every_n_steps": 6,
        }},
        evaluation={"features": "raw2d", "metrics": ["modes"], "num_samples": 200, "every_n_steps": 6},
    )
    out = tmp_path / "out"
    counts = run_benchmark(write_definition(tmp_path / "real.yaml", raw), str(out), devices="cpu", jobs=2, progress=False)
    assert counts == {"finished": 1, "diverged": 1}
    results = read_all_results(str(out))
    ok, bad = results["ok__seed0"], results["lr1e6__seed0"]
    assert bad["status"] == "diverged" and "loss is nan" in bad["reason"]
    assert ok["status"] == "finished" and ok["metrics"]["modes_total"] == 8
    assert [step for step, _ in ok["curve"]] == [6, 12]
    assert ok["protocols"]["eval"]["n_generated"] == 200
    train_dir = out / ok["train_dir"]
    assert (train_dir / "config.yaml").is_file() and (train_dir / "metrics.csv").is_file()  # CSV logger, base config's W&B replaced

    written = write_report(str(out), wandb=False)
    assert "| lr1e6 | ours | 0/1 | 1 | 0 |" in open(written["table.md"]).read()
    assert os.path.getsize(written["curves.png"]) > 0 and os.path.getsize(written["samples_ok.png"]) > 0

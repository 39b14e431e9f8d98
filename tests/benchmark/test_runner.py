"""The runner with a stand-in training program (tests/benchmark/fake_fit.py) and evaluation."""

import json
import os

from gan_suite.benchmark.definition import parse_definition
from gan_suite.benchmark.report import write_report
from gan_suite.benchmark.results import read_all_results
from gan_suite.benchmark.runner import BenchmarkRunner
from tests.benchmark.helpers import FAKE_FIT, definition_dict, fake_evaluate


def _runner(raw, out, **kwargs):
    kwargs.setdefault("devices", "cpu")
    kwargs.setdefault("progress", False)
    return BenchmarkRunner(parse_definition(raw), str(out), evaluate_fn=fake_evaluate, train_command=FAKE_FIT, **kwargs)


def test_diverged_and_failed_variants_are_recorded_and_the_rest_finishes(tmp_path):
    raw = definition_dict(
        variants={"ok": {}, "nan": {"model.init_args.gp_weight": float("nan")}, "crash": {"model.init_args.loss": "crash"}},
        seeds=[0], steps=10, every=5,
    )
    counts = _runner(raw, tmp_path, jobs=2).run()
    assert counts == {"finished": 1, "diverged": 1, "failed": 1}
    results = read_all_results(str(tmp_path))
    ok, nan, crash = results["ok__seed0"], results["nan__seed0"], results["crash__seed0"]
    assert ok["status"] == "finished" and ok["metrics"]["modes_covered"] == 3
    assert ok["curve"] == [[5, 2], [10, 3]]  # periodic checkpoint at step 5, then the final one
    assert ok["seed"] == 0 and ok["overrides"] == {} and ok["wall_seconds"] > 0 and ok["samples"].endswith(".png")
    assert not [f for f in os.listdir(tmp_path / "runs" / "ok__seed0" / "train" / "checkpoints") if "step=" in f]  # periodic ones removed
    assert nan["status"] == "diverged" and "loss is nan" in nan["reason"] and nan["metrics"] == {}
    assert crash["status"] == "failed" and crash["reason"] == "ValueError: boom: a crashing variant"
    # the report counts them and keeps going
    table = open(write_report(str(tmp_path), wandb=False, plots=False)["table.md"]).read()
    assert "| crash | ours | 0/1 | 0 | 1 |" in table and "| nan | ours | 0/1 | 1 | 0 |" in table


def test_rerun_skips_finished_runs_and_restarts_unfinished_ones(tmp_path):
    raw = definition_dict(seeds=[0, 1], steps=6, every=3)
    assert _runner(raw, tmp_path).run() == {"finished": 4}
    before = {p: open(tmp_path / "runs" / p / "result.json").read() for p in os.listdir(tmp_path / "runs")}
    mtimes = {p: os.path.getmtime(tmp_path / "runs" / p / "result.json") for p in before}
    # an interrupted run: its folder has leftovers but no result.json
    os.unlink(tmp_path / "runs" / "pacgan2__seed0" / "result.json")
    (tmp_path / "runs" / "pacgan2__seed0" / "leftover.txt").write_text("half-written")
    runner = _runner(raw, tmp_path)
    assert [r.run_id for r in runner.pending()] == ["pacgan2__seed0"]
    assert runner.run() == {"finished": 4}
    assert not (tmp_path / "runs" / "pacgan2__seed0" / "leftover.txt").exists()
    for run_id, text in before.items():
        if run_id != "pacgan2__seed0":
            assert open(tmp_path / "runs" / run_id / "result.json").read() == text
            assert os.path.getmtime(tmp_path / "runs" / run_id / "result.json") == mtimes[run_id]
    assert json.loads(before["pacgan2__seed0"])["metrics"] == read_all_results(str(tmp_path))["pacgan2__seed0"]["metrics"]


def test_failed_runs_are_retried_only_on_request(tmp_path):
    raw = definition_dict(variants={"crash": {"model.init_args.loss": "crash"}}, seeds=[0], steps=4, every=2)
    assert _runner(raw, tmp_path).run() == {"failed": 1}
    assert _runner(raw, tmp_path).pending() == []
    assert len(_runner(raw, tmp_path, retry_failed=True).pending()) == 1


def test_two_shards_merge_into_the_table_of_one(tmp_path):
    raw = definition_dict(seeds=[0, 1, 2], steps=4, every=2)
    merged, single = tmp_path / "sharded", tmp_path / "single"
    counts = [_runner(raw, merged, shard=i, num_shards=2).run() for i in range(2)]
    assert sum(c.get("finished", 0) for c in counts) == 6 and counts[0] == {"finished": 3}
    _runner(raw, single, shard=0, num_shards=1).run()
    a = write_report(str(merged), wandb=False, plots=False)
    b = write_report(str(single), wandb=False, plots=False)
    for name in ("table.md", "table.csv", "table.tex"):
        assert open(a[name]).read() == open(b[name]).read(), name
    assert sorted(os.listdir(merged / "runs")) == sorted(os.listdir(single / "runs"))


def test_slurm_array_variables_pick_the_shard(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    monkeypatch.setenv("SLURM_ARRAY_TASK_MIN", "1")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "4")
    runner = _runner(definition_dict(seeds=[0, 1, 2, 3]), tmp_path)
    assert (runner.shard, runner.num_shards) == (2, 4)
    assert [r.index for r in runner.runs] == [2, 6]


def test_a_protocol_that_cannot_run_is_recorded_and_the_others_kept(tmp_path):
    from gan_suite.errors import WeightsUnavailableError

    def evaluate(ckpt_path, *, features="auto", **kwargs):
        if features == "inception":
            raise WeightsUnavailableError("Inception weights are not on disk and cannot be downloaded")
        return fake_evaluate(ckpt_path, features=features, **kwargs)

    raw = definition_dict(
        variants={"gan": {}}, seeds=[0], steps=4, every=2,
        evaluation={"every_n_steps": 2, "protocols": [
            {"name": "inception", "features": "inception", "metrics": ["fid"]},
            {"name": "classifier", "features": "mnist_classifier", "metrics": ["fid", "modes"]},
        ]},
        main_metric="inception/fid", columns=["inception/fid", "classifier/fid"], published={},
    )
    runner = BenchmarkRunner(parse_definition(raw), str(tmp_path), evaluate_fn=evaluate, train_command=FAKE_FIT, devices="cpu", progress=False)
    assert runner.run() == {"finished": 1}
    result = read_all_results(str(tmp_path))["gan__seed0"]
    assert "WeightsUnavailableError" in result["evaluation_errors"]["inception"]
    assert "classifier/fid" in result["metrics"] and "inception/fid" not in result["metrics"]
    assert result["curve"] == []  # the curve follows the main metric, which is missing


def test_one_slot_per_gpu_with_the_physical_ids(monkeypatch):
    from gan_suite.benchmark.runner import plan_slots

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")
    slots = plan_slots("0,1")
    assert [(s.name, s.env["CUDA_VISIBLE_DEVICES"], s.device) for s in slots] == [("cuda:0", "4", "cuda:0"), ("cuda:1", "6", "cuda:1")]
    assert len(plan_slots("0,1", jobs=1)) == 1
    cpu = plan_slots("cpu", jobs=2)
    assert [s.name for s in cpu] == ["cpu#0", "cpu#1"] and all(s.env["CUDA_VISIBLE_DEVICES"] == "" for s in cpu)


def test_stopping_rules_are_recorded_counted_and_mode_histories_drawn(tmp_path):
    raw = definition_dict(
        variants={
            "plain": {"fake.mode_history": True},
            "plateau": {"fake.stop": "plateau", "fake.mode_history": True},
            "diverged": {"fake.stop": "diverged"},
        },
        seeds=[0, 1], steps=10, every=5,
    )
    counts = _runner(raw, tmp_path).run()
    assert counts == {"finished": 4, "diverged": 2}
    results = read_all_results(str(tmp_path))
    plateau, diverged, plain = results["plateau__seed0"], results["diverged__seed1"], results["plain__seed0"]
    assert plateau["status"] == "finished" and plateau["stop_reason"] == "plateau" and plateau["stop_iteration"] == 4
    assert plateau["final_iteration"] == 4 and plateau["metrics"]["modes_covered"] == 2  # evaluated where it stopped
    assert diverged["status"] == "diverged" and diverged["reason"] == "stopping rule: fake diverged" and diverged["metrics"] == {}
    assert diverged["best_in_training"] == {"metric": "fid", "value": 1.0, "iteration": 2}
    assert os.path.isfile(tmp_path / diverged["best_checkpoint"])  # the best checkpoint stays
    assert "stop_reason" not in plain and plain["mode_history"]["hops"] == 9
    assert plateau["mode_history"]["hops"] == 3
    written = write_report(str(tmp_path), wandb=False)
    table = open(written["table.md"]).read()
    assert "Stopped early by a stopping rule: diverged 2 (diverged 2); plateau 2 (plateau 2)." in table
    assert "| diverged | ours | 0/2 | 2 | 0 |" in table
    assert set(k for k in written if k.startswith("mode_history_")) == {"mode_history_plain.png", "mode_history_plateau.png"}

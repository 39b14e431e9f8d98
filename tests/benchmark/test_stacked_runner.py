"""The benchmark runner's stacked path: the pending seeds of a variant train as one stacked-seeds
``gan-suite fit`` run, split into per-seed runs.

* benchmarks/smoke_vectorised.yaml end to end (real fit, real evaluation, report);
* in float64 each seed's run equals a single-seed ``gan-suite fit --config <run>/train/config.yaml``;
* a variant that cannot train stacked falls back to per-seed runs; refusals are one line; NaN seeds
  are recorded as diverged;
* killing the runner loses only the seeds without a result (stand-in fit and evaluation).
"""

import io
import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from gan_suite.benchmark.definition import load_definition, parse_definition
from gan_suite.benchmark.report import write_report
from gan_suite.benchmark.results import read_all_results
from gan_suite.benchmark.runner import BenchmarkRunner, stacked_refusal
from tests.benchmark.gate import wait_for
from tests.benchmark.helpers import REPO_ROOT, RING8, definition_dict, write_definition

SMOKE = os.path.join(REPO_ROOT, "benchmarks", "smoke_vectorised.yaml")
TINY = {"model.init_args.g_hidden": [16, 16], "model.init_args.d_hidden": [16], "data.init_args.num_samples": 1000,
        "trainer.log_every_n_steps": 2, "samples.every_n_steps": 3}
#: the keys of a per-seed run's result (tests/benchmark/test_real_benchmark.py makes one)
RESULT_KEYS = {
    "run_id", "variant", "seed", "status", "reason", "main_metric", "metrics", "curve", "overrides", "steps", "d_steps",
    "command", "device", "host", "logger", "shard", "train_seconds", "train_dir", "samples", "protocols", "files",
    "final_iteration", "eval_seconds", "wall_seconds", "finished_at",
}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke_vectorised")
    counts = BenchmarkRunner(load_definition(SMOKE), str(out), devices="cpu", jobs=2, progress=False).run()
    return out, counts


@pytest.mark.slow
def test_every_seed_gets_a_finished_result_from_one_fit_per_variant(smoke):
    out, counts = smoke
    assert counts == {"finished": 4}
    results = read_all_results(str(out))
    assert sorted(results) == ["gan__seed0", "gan__seed1", "pacgan2__seed0", "pacgan2__seed1"]
    for run_id, result in results.items():
        assert set(result) == RESULT_KEYS | {"trainer"}, run_id
        assert result["trainer"] == "stacked" and result["status"] == "finished"
        assert result["metrics"]["modes_total"] == 8 and result["final_iteration"] == 60
        assert [step for step, _ in result["curve"]] == [20, 40, 60]
        assert result["command"][2:4] == ["gan_suite", "fit"] and "--model.init_args.seeds=[0, 1]" in result["command"]
        ckpts = os.listdir(out / "runs" / run_id / "train" / "checkpoints")
        assert ckpts == ["last.ckpt"]  # periodic ones evaluated for the curve, then removed
    for variant in ("gan", "pacgan2"):  # the stacked run: its sample grid (a row per seed), no checkpoints left
        stacked = out / "runs" / f"{variant}__seed0" / "stacked"
        assert (stacked / "samples" / "step_0000060.png").is_file() and not (stacked / "checkpoints").exists()


@pytest.mark.slow
def test_each_seed_is_reproduced_by_a_single_seed_fit_of_its_config(tmp_path):
    """In float64 (rounding of the batched kernels aside, the arithmetic is the same) the per-seed
    checkpoint of a stacked group equals the run its config.yaml trains alone, to 1e-8."""
    raw = definition_dict(
        variants={"pacgan2": {"model.init_args.pack": 2}}, seeds=[3, 4], logger="none",
        train={"steps": 8, "vectorise": True, "overrides": {**TINY, "trainer.precision": "64-true", "model.init_args.g_batch_norm": True}},
        evaluation={"features": "raw2d", "metrics": ["modes"], "num_samples": 200},
    )
    runner = BenchmarkRunner(parse_definition(raw), str(tmp_path / "out"), devices="cpu", progress=False)
    assert runner.run() == {"finished": 2}
    for seed in (3, 4):
        train = tmp_path / "out" / "runs" / f"pacgan2__seed{seed}" / "train"
        alone = tmp_path / f"alone{seed}"
        subprocess.run([sys.executable, "-m", "gan_suite", "fit", "--config", str(train / "config.yaml"),
                        f"--trainer.default_root_dir={alone}"], check=True, capture_output=True, cwd=REPO_ROOT)
        ours = torch.load(train / "checkpoints" / "last.ckpt", weights_only=True)
        theirs = torch.load(alone / "checkpoints" / "last.ckpt", weights_only=True)
        assert ours["state_dict"].keys() == theirs["state_dict"].keys()
        for key, value in theirs["state_dict"].items():
            assert torch.allclose(ours["state_dict"][key], value, atol=1e-8, rtol=0), key
        assert ours["gan_suite"]["seed"] == theirs["gan_suite"]["seed"] == seed
        assert ours["gan_suite"]["data_spec"] == theirs["gan_suite"]["data_spec"]
        assert ours["gan_suite"]["iteration"] == theirs["gan_suite"]["iteration"] == 8


def test_report_reads_the_stacked_results(smoke):
    out, _ = smoke
    written = write_report(str(out), wandb=False)
    table = open(written["table.md"]).read()
    assert "| gan | ours | 2/2 |" in table and "| pacgan2 | ours | 2/2 |" in table
    for name in ("curves.png", "samples_gan.png", "samples_pacgan2.png"):
        assert os.path.getsize(written[name]) > 0


@pytest.mark.slow
def test_a_conditional_variant_falls_back_to_runs_of_its_own(tmp_path):
    raw = definition_dict(
        variants={"cond": {"model.init_args.num_classes": 8}}, seeds=[0], logger="none",
        train={"steps": 6, "vectorise": True, "overrides": TINY},
        evaluation={"features": "raw2d", "metrics": ["modes"], "num_samples": 200, "every_n_steps": 3},
    )
    stream = io.StringIO()
    runner = BenchmarkRunner(parse_definition(raw), str(tmp_path), devices="cpu", progress=False, stream=stream)
    assert runner.run() == {"finished": 1}
    result = read_all_results(str(tmp_path))["cond__seed0"]
    assert "trainer" not in result and result["command"][2:4] == ["gan_suite", "fit"]
    assert "class-conditional" in result["vectorise_refused"] and [step for step, _ in result["curve"]] == [3, 6]
    assert "note: cond: stacked seeds: " in stream.getvalue()


@pytest.mark.parametrize("overrides,expected", [
    ({}, None),
    ({"model.init_args.ema_decay": 0.99, "model.init_args.grad_clip_norm": 1.0, "model.init_args.goodfellow_schedule": True}, None),
    ({"model": {"class_path": "gan_suite.models.DCGAN", "init_args": {"image_size": 28, "channels": 1}},
      "data": {"class_path": "gan_suite.data.MNISTBundled"}}, None),
    ({"model.init_args.num_classes": 8}, "class-conditional"),
    ({"model.init_args.compile": True}, "compile"),
    ({"trainer.callbacks": [{"class_path": "gan_suite.evaluation.callback.EvaluationCallback", "init_args": {"best_metric": None}},
                            {"class_path": "gan_suite.evaluation.stopping.PlateauStopping", "init_args": {"metric": "mode_kl"}}]},
     "watches one seed"),
    ({"trainer.callbacks": [{"class_path": "gan_suite.evaluation.callback.EvaluationCallback"}]}, "best_metric: fid"),
    ({"trainer.callbacks": [{"class_path": "gan_suite.evaluation.callback.EvaluationCallback", "init_args": {"best_metric": None}}]}, None),
])
def test_what_cannot_train_stacked_is_refused_in_one_line(overrides, expected):
    from gan_suite.benchmark.launch import cli_value

    argv = ["--config", RING8, *[f"--{k}={cli_value(v)}" for k, v in overrides.items()], "--model.init_args.seeds=[0, 1]"]
    reason = stacked_refusal(argv)
    if expected is None:
        assert reason is None
    else:
        assert reason.startswith("stacked seeds: ") and expected in reason and "\n" not in reason, reason


@pytest.mark.slow
def test_seeds_with_nan_losses_are_diverged(tmp_path):
    raw = definition_dict(
        variants={"nan": {"model.init_args.loss": "wgan_gp", "model.init_args.gp_weight": float("nan")}}, seeds=[0, 1],
        logger="none", train={"steps": 4, "vectorise": True, "overrides": TINY},
        evaluation={"features": "raw2d", "metrics": ["modes"], "num_samples": 200, "every_n_steps": 2},
    )
    assert BenchmarkRunner(parse_definition(raw), str(tmp_path), devices="cpu", progress=False).run() == {"diverged": 2}
    for seed in (0, 1):
        result = read_all_results(str(tmp_path))[f"nan__seed{seed}"]
        assert result["trainer"] == "stacked"
        assert result["status"] == "diverged" and "discriminator loss is nan at training step 0" in result["reason"], result["reason"]


def test_vectorised_shards_hold_slices_of_a_variants_seeds():
    from gan_suite.benchmark.definition import select_shard_by_variant

    raw = definition_dict(variants={"a": {}, "b": {}, "c": {}}, seeds=list(range(10)), train={"steps": 4, "vectorise": True})
    runs = parse_definition(raw).runs()
    for num_shards, slices in ((1, 1), (2, 1), (3, 1), (6, 2), (30, 10)):
        shards = [select_shard_by_variant(runs, i, num_shards) for i in range(num_shards)]
        assert sorted(r.run_id for shard in shards for r in shard) == sorted(r.run_id for r in runs)  # a partition
        for shard in shards:
            sizes = {}
            for run in shard:
                sizes[run.variant] = sizes.get(run.variant, 0) + 1
            assert all(size == 10 // slices for size in sizes.values()), (num_shards, sizes)
    runner = BenchmarkRunner(parse_definition(raw), "unused", shard=1, num_shards=6, devices="cpu", progress=False)
    assert [r.run_id for r in runner.runs] == [f"a__seed{s}" for s in (1, 3, 5, 7, 9)]
    assert len(BenchmarkRunner(parse_definition(raw), "unused", shard=1, num_shards=6, devices="cpu", vectorise=False).runs) == 5


# ---------------------------------------------------------------------------- kill and resume
FAKE_FIT = r'''
import json, os, sys
import torch
import yaml
argv = sys.argv[1:]

def value(prefix, default=None):
    found = [a.split("=", 1)[1] for a in argv if a.startswith(prefix + "=")]
    return found[-1] if found else default

seeds = json.loads(value("--model.init_args.seeds"))
root = value("--trainer.default_root_dir")
steps = int(value("--trainer.max_steps")) // 2
every = int(value("--checkpoint.every_n_train_steps")) // 2
pack = int(value("--model.init_args.pack", "1"))
resume = value("--ckpt_path")
first = torch.load(resume, weights_only=True)["gan_suite"]["iteration"] + 1 if resume else 1
with open(os.environ["FAKE_FIT_LOG"], "a") as f:
    f.write(os.path.basename(os.path.dirname(root)).split("__")[0] + " " + ",".join(map(str, seeds)) + " from %d\n" % first)
os.makedirs(os.path.join(root, "checkpoints"), exist_ok=True)
config = {"seed_everything": seeds[0], "model": {"init_args": {"seeds": seeds, "pack": pack}}, "data": {"init_args": {}}}
open(os.path.join(root, "config.yaml"), "w").write(yaml.safe_dump(config))
sys.path.insert(0, {gate_dir!r})
from gate import pass_gate
S = len(seeds)
for it in range(first, steps + 1):
    if it == every + 1:
        pass_gate("FAKE_FIT_GATE")  # after the first periodic checkpoint (and its last.ckpt)
    state = {"state_dict": {"generator.w": torch.arange(S, dtype=torch.float32).unsqueeze(1) * it, "diverged_at": torch.full((S,), -1)},
             "gan_suite": {"iteration": it, "seed": seeds[0], "seeds": seeds, "pack": pack, "divergences": {}}}
    if it % every == 0:
        torch.save(state, os.path.join(root, "checkpoints", "epoch=0-step=%d.ckpt" % (2 * it)))
    if it % every == 0 or it == steps:
        torch.save(state, os.path.join(root, "checkpoints", "last.ckpt"))
    print("@gan-suite-progress " + json.dumps({"iteration": it, "max_iterations": steps}), flush=True)
'''

RUNNER = r'''
import os, sys
sys.path.insert(0, {root!r})
from gan_suite.benchmark.definition import load_definition
from gan_suite.benchmark.runner import BenchmarkRunner
from tests.benchmark.gate import pass_gate
import torch

def slow_evaluate(path, **kwargs):
    pass_gate("FAKE_EVAL_GATE")
    meta = torch.load(path, weights_only=True)["gan_suite"]
    it, s, pack = meta["iteration"], meta["seed"], meta["pack"]
    return {{"metrics": {{"modes_covered": min(8, pack * 2 + s % 3 + it // 10)}}, "protocol": {{"iteration": it}}, "files": {{}}}}

runner = BenchmarkRunner(load_definition(sys.argv[1]), sys.argv[2], evaluate_fn=slow_evaluate, devices="cpu", jobs=1,
                         train_command=[sys.executable, {launch!r}], vectorise_check=lambda *args: None)
try:
    print(runner.run(), flush=True)
except KeyboardInterrupt:
    os._exit(130)
'''


def _results(out):
    found = {}
    for run_id in os.listdir(out / "runs") if (out / "runs").exists() else []:
        path = out / "runs" / run_id / "result.json"
        if path.exists():
            found[run_id] = (path.read_bytes(), os.path.getmtime(path))
    return found


def _group_training(out):
    folders = [out / "runs" / f"gan__seed{s}" for s in (0, 1)]
    return all((f / "owner.json").exists() for f in folders)


@pytest.mark.parametrize("when", ["training", "evaluation"])
def test_killed_group_loses_only_its_seeds_without_a_result(tmp_path, when):
    launch, script = tmp_path / "fake_fit.py", tmp_path / "runner.py"
    launch.write_text(FAKE_FIT.replace("{gate_dir!r}", repr(os.path.dirname(os.path.abspath(__file__)))))
    script.write_text(RUNNER.format(root=REPO_ROOT, launch=str(launch)))
    raw = definition_dict(seeds=[0, 1], train={"steps": 4, "vectorise": True}, evaluation={"features": "raw2d", "every_n_steps": 2})
    definition = write_definition(tmp_path / "def.yaml", raw)
    out, log = tmp_path / "out", tmp_path / "launches.txt"
    gate = tmp_path / "gate"
    gate.mkdir()
    # training: the first group launch waits at the gate; evaluation: the third evaluation (seed 1's
    # first, after both of seed 0's) waits there
    gated = {"FAKE_FIT_GATE": str(gate)} if when == "training" else {"FAKE_EVAL_GATE": str(gate), "FAKE_EVAL_GATE_FROM": "3"}
    env = {**os.environ, "FAKE_FIT_LOG": str(log), **gated}
    runner = subprocess.Popen([sys.executable, str(script), definition, str(out)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(lambda: any(gate.glob("waiting*")))
    assert _group_training(out) if when == "training" else set(_results(out)) == {"gan__seed0"}
    runner.send_signal(signal.SIGKILL)  # the group's process lives on in its own session
    runner.wait(timeout=30)
    before = _results(out)
    assert set(before) == (set() if when == "training" else {"gan__seed0"})

    rerun_env = {k: v for k, v in env.items() if k not in gated}
    try:
        rerun = subprocess.run([sys.executable, str(script), definition, str(out)], env=rerun_env, capture_output=True, text=True, timeout=120)
    finally:
        (gate / "open").touch()  # lets any process still waiting finish
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    after = _results(out)
    assert set(after) == {"gan__seed0", "gan__seed1", "pacgan2__seed0", "pacgan2__seed1"} == set(os.listdir(out / "runs"))
    for run_id, (content, mtime) in before.items():
        assert after[run_id] == (content, mtime), run_id  # untouched, not retrained
    results = read_all_results(str(out))
    assert all(r["status"] == "finished" and r["trainer"] == "stacked" for r in results.values())
    assert [step for step, _ in results["gan__seed1"]["curve"]] == [2, 4]
    launches = log.read_text().split("\n")[:-1]
    # the rerun's gan group trains the seeds without a result, and only those; a group killed in
    # training resumes from its stacked run's last checkpoint
    expected = ["gan 0,1 from 1", "gan 0,1 from 3", "pacgan2 0,1 from 1"] if when == "training" else ["gan 0,1 from 1", "gan 1 from 1", "pacgan2 0,1 from 1"]
    assert launches == expected
    for run_id in ("gan__seed0", "gan__seed1"):
        if run_id not in before:
            assert os.listdir(out / "runs" / run_id / "train" / "checkpoints") == ["last.ckpt"]

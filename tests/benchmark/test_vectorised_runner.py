"""The benchmark runner's vectorised path: one process trains all pending seeds of a variant.

* benchmarks/smoke_vectorised.yaml end to end (real launcher, real evaluation, report); each seed's
  final generator equals a direct ``train_seeds_vectorised`` call;
* a variant the vectorised trainer cannot train (EMA) falls back to per-seed `gan-suite fit` runs;
* refusals are one line; a NaN seed is recorded as diverged;
* killing the runner loses only the seeds without a result (stand-in launcher and evaluation).
"""

import io
import json
import os
import signal
import subprocess
import sys
from functools import partial

import pytest
import torch

from gan_suite.benchmark.definition import load_definition, parse_definition
from gan_suite.benchmark.report import write_report
from gan_suite.benchmark.results import read_all_results
from gan_suite.benchmark.runner import BenchmarkRunner
from gan_suite.benchmark.vectorised_launch import (
    UNSUPPORTED_EXIT, EpochSampler, main as launch_main, parse_config, plan_from_config, train, vectorise_refusal,
)
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
def test_every_seed_gets_a_finished_result_from_one_process_per_variant(smoke):
    out, counts = smoke
    assert counts == {"finished": 4}
    results = read_all_results(str(out))
    assert sorted(results) == ["gan__seed0", "gan__seed1", "pacgan2__seed0", "pacgan2__seed1"]
    for run_id, result in results.items():
        assert set(result) == RESULT_KEYS | {"trainer"}, run_id
        assert result["trainer"] == "vectorised" and result["status"] == "finished"
        assert result["metrics"]["modes_total"] == 8 and result["final_iteration"] == 60
        assert [step for step, _ in result["curve"]] == [20, 40, 60]
        assert result["command"][result["command"].index("--seeds") + 1:][:2] == ["0", "1"]  # one group per variant
        assert result["samples"].endswith("step_0000060.png") and os.path.isfile(out / result["samples"])
        ckpts = os.listdir(out / "runs" / run_id / "train" / "checkpoints")
        assert ckpts == ["last.ckpt"]  # periodic ones evaluated for the curve, then removed


@pytest.mark.slow
@pytest.mark.parametrize("variant,pack", [("gan", 1), ("pacgan2", 2)])
def test_each_seed_equals_a_direct_vectorised_call(smoke, variant, pack):
    from gan_suite.data.toy2d import Toy2D
    from gan_suite.nets.mlp import MaxoutDiscriminator, MLPGenerator
    from gan_suite.training.vectorised import train_seeds_vectorised

    out, _ = smoke
    # configs/gan_ring8.yaml with the overrides of smoke_vectorised.yaml
    g = partial(MLPGenerator, 2, [2], [32, 32], True, "linear")
    d = partial(MaxoutDiscriminator, [2], [32], 5, 0.0, 0.0, pack)
    samplers = [EpochSampler(Toy2D("ring8", num_samples=5000, batch_size=100, seed=s).split("train")) for s in (0, 1)]
    runs = train_seeds_vectorised(g, d, [0, 1], samplers, 60, g_lr=1e-4, d_lr=1e-4, betas=(0.8, 0.999),
                                  loss="non_saturating", d_steps=1, batch_size=100, progress=False)
    for run in runs:
        ckpt = torch.load(out / "runs" / f"{variant}__seed{run.seed}" / "train" / "checkpoints" / "last.ckpt", weights_only=False)
        assert ckpt["gan_suite"]["iteration"] == 60 and ckpt["gan_suite"]["data_spec"]["init_args"]["seed"] == run.seed
        saved = {k[len("generator."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("generator.")}
        assert saved.keys() == run.generator_state.keys()
        for key, value in run.generator_state.items():
            assert torch.allclose(saved[key].double(), value.double(), atol=1e-5, rtol=0), (run.seed, key)


@pytest.mark.slow
def test_report_reads_the_vectorised_results(smoke):
    out, _ = smoke
    written = write_report(str(out), wandb=False)
    table = open(written["table.md"]).read()
    assert "| gan | ours | 2/2 |" in table and "| pacgan2 | ours | 2/2 |" in table
    for name in ("curves.png", "samples_gan.png", "samples_pacgan2.png"):
        assert os.path.getsize(written[name]) > 0


@pytest.mark.slow
def test_a_variant_with_ema_falls_back_to_runs_of_its_own(tmp_path):
    raw = definition_dict(
        variants={"ema": {"model.init_args.ema_decay": 0.9}}, seeds=[0], logger="none",
        train={"steps": 6, "vectorise": True, "overrides": TINY},
        evaluation={"features": "raw2d", "metrics": ["modes"], "num_samples": 200, "every_n_steps": 3},
    )
    stream = io.StringIO()
    runner = BenchmarkRunner(parse_definition(raw), str(tmp_path), devices="cpu", progress=False, stream=stream)
    assert runner.run() == {"finished": 1}
    result = read_all_results(str(tmp_path))["ema__seed0"]
    assert "trainer" not in result and result["command"][2:4] == ["gan_suite", "fit"]
    assert "EMA" in result["vectorise_refused"] and [step for step, _ in result["curve"]] == [3, 6]
    assert "note: ema: vectorised training does not support EMA" in stream.getvalue()


@pytest.mark.parametrize("overrides,expected", [
    ({}, None),
    ({"model.init_args.ema_decay": 0.99}, "EMA"),
    ({"model.init_args.grad_clip_norm": 1.0}, "gradient clipping"),
    ({"model.init_args.g_optimizer": {"class_path": "torch.optim.SGD", "init_args": {"lr": 0.1}}}, "torch.optim.SGD"),
    ({"model.init_args.d_scheduler": {"class_path": "torch.optim.lr_scheduler.ExponentialLR", "init_args": {"gamma": 0.9}}}, "schedules"),
    ({"model.init_args.goodfellow_schedule": True}, "schedules"),
    ({"model": {"class_path": "gan_suite.models.DCGAN", "init_args": {"image_size": 28, "channels": 1}}}, "gan_suite.models.DCGAN"),
    ({"trainer.callbacks": [{"class_path": "gan_suite.evaluation.callback.EvaluationCallback"},
                            {"class_path": "gan_suite.evaluation.stopping.PlateauStopping", "init_args": {"metric": "mode_kl"}}]},
     "gan_suite.evaluation.stopping.PlateauStopping"),
])
def test_what_the_vectorised_trainer_cannot_do_is_refused_in_one_line(overrides, expected):
    reason = vectorise_refusal(RING8, overrides, 10)
    if expected is None:
        assert reason is None
    else:
        assert reason.startswith("vectorised training does not support") and expected in reason and "\n" not in reason


def test_the_launcher_refuses_with_its_own_exit_code(tmp_path, capsys):
    code = launch_main(["--seeds", "0", "--run-dirs", str(tmp_path / "r0"), "--steps", "2", "--", "--config", RING8,
                        "--model.init_args.ema_decay=0.5"])
    assert code == UNSUPPORTED_EXIT
    assert capsys.readouterr().err.strip().startswith("gan-suite: vectorised training does not support EMA")
    assert not (tmp_path / "r0").exists()


def test_a_seed_with_nan_losses_is_diverged(tmp_path):
    config = parse_config(["--config", RING8, "--model.init_args.loss=wgan_gp", "--model.init_args.gp_weight=.nan",
                           *[f"--{k}={json.dumps(v)}" for k, v in TINY.items()]])
    statuses = train(plan_from_config(config, steps=4), [0, 1], [str(tmp_path / "a"), str(tmp_path / "b")], checkpoint_every=2)
    for status, folder in zip(statuses, ("a", "b")):
        assert status["status"] == "diverged" and status["reason"].startswith("discriminator loss is nan at training step 0")
        assert json.load(open(tmp_path / folder / "train" / "vectorised.json")) == status
        assert not os.listdir(tmp_path / folder / "train" / "checkpoints")


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
FAKE_LAUNCH = r'''
import json, os, sys
argv = sys.argv[1:]
fit = argv[argv.index("--") + 1:]
seeds = argv[argv.index("--seeds") + 1:argv.index("--run-dirs")]
dirs = argv[argv.index("--run-dirs") + 1:argv.index("--run-dirs") + 1 + len(seeds)]
steps = int([a for a in argv if a.startswith("--steps=")][0].split("=")[1])
every = int([a for a in argv if a.startswith("--checkpoint-every=")][0].split("=")[1])
pack = int(([a.split("=")[1] for a in fit if a.startswith("--model.init_args.pack=")] or ["1"])[0])
with open(os.environ["FAKE_LAUNCH_LOG"], "a") as f:
    f.write(os.path.basename(dirs[0]).split("__")[0] + " " + ",".join(seeds) + "\n")
for d in dirs:
    os.makedirs(os.path.join(d, "train", "checkpoints"))
    open(os.path.join(d, "train", "config.yaml"), "w").write("{}")
sys.path.insert(0, {gate_dir!r})
from gate import pass_gate
pass_gate("FAKE_FIT_GATE")
for it in range(1, steps + 1):
    for s, d in zip(seeds, dirs):
        state = json.dumps({"iteration": it, "seed": int(s), "pack": pack})
        if it % every == 0:
            open(os.path.join(d, "train", "checkpoints", "epoch=0-step=%d.ckpt" % (2 * it)), "w").write(state)
        if it == steps:
            open(os.path.join(d, "train", "checkpoints", "last.ckpt"), "w").write(state)
    print("@gan-suite-progress " + json.dumps({"iteration": it, "max_iterations": steps}), flush=True)
for d in dirs:
    open(os.path.join(d, "train", "vectorised.json"), "w").write(json.dumps({"status": "trained"}))
'''

RUNNER = r'''
import os, sys
sys.path.insert(0, {root!r})
from gan_suite.benchmark.definition import load_definition
from gan_suite.benchmark.runner import BenchmarkRunner
from tests.benchmark.gate import pass_gate
from tests.benchmark.helpers import fake_evaluate

def slow_evaluate(path, **kwargs):
    pass_gate("FAKE_EVAL_GATE")
    return fake_evaluate(path, **kwargs)

runner = BenchmarkRunner(load_definition(sys.argv[1]), sys.argv[2], evaluate_fn=slow_evaluate, devices="cpu", jobs=1,
                         vectorised_command=[sys.executable, {launch!r}], vectorise_check=lambda *args: None)
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
    launch, script = tmp_path / "fake_launch.py", tmp_path / "runner.py"
    launch.write_text(FAKE_LAUNCH.replace("{gate_dir!r}", repr(os.path.dirname(os.path.abspath(__file__)))))
    script.write_text(RUNNER.format(root=REPO_ROOT, launch=str(launch)))
    raw = definition_dict(seeds=[0, 1], train={"steps": 4, "vectorise": True}, evaluation={"features": "raw2d", "every_n_steps": 2})
    definition = write_definition(tmp_path / "def.yaml", raw)
    out, log = tmp_path / "out", tmp_path / "launches.txt"
    gate = tmp_path / "gate"
    gate.mkdir()
    # training: the first group launch waits at the gate; evaluation: the third evaluation (seed 1's
    # first, after both of seed 0's) waits there
    gated = {"FAKE_FIT_GATE": str(gate)} if when == "training" else {"FAKE_EVAL_GATE": str(gate), "FAKE_EVAL_GATE_FROM": "3"}
    env = {**os.environ, "FAKE_LAUNCH_LOG": str(log), **gated}
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
    assert all(r["status"] == "finished" and r["trainer"] == "vectorised" for r in results.values())
    assert [step for step, _ in results["gan__seed1"]["curve"]] == [2, 4]
    launches = log.read_text().split("\n")[:-1]
    # the rerun's gan group trains the seeds without a result, and only those
    assert launches == ["gan 0,1", "gan 0,1", "pacgan2 0,1"] if when == "training" else ["gan 0,1", "gan 1", "pacgan2 0,1"]
    for run_id in ("gan__seed0", "gan__seed1"):
        if run_id not in before:
            assert os.listdir(out / "runs" / run_id / "train" / "checkpoints") == ["last.ckpt"]

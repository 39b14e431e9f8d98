"""Benchmark definitions: expansion into runs, command lines, shards, the shipped files."""

import glob
import os

import pytest

from gan_suite.benchmark.definition import load_definition, parse_definition, select_shard
from gan_suite.benchmark.launch import classify_failure, cli_value, training_argv
from gan_suite.errors import ConfigError
from tests.benchmark.helpers import definition_dict
from tests.conftest import REPO_ROOT

BENCHMARKS = sorted(glob.glob(os.path.join(REPO_ROOT, "benchmarks", "*.yaml")))


def test_grid_is_the_cartesian_product_times_variants_times_seeds():
    raw = definition_dict(
        variants={"ring": {"data.init_args.mixture": "ring8"}, "grid": {"data.init_args.mixture": "grid25"}},
        grid={"model.init_args.loss": ["non_saturating", "hinge", "wgan_gp"], "model.init_args.pack": [1, 2, 4]},
        seeds=[3, 7],
    )
    definition = parse_definition(raw)
    assert len(definition.variants) == 2 * 3 * 3
    runs = definition.runs()
    assert len(runs) == 2 * 9 * 2 and len({r.run_id for r in runs}) == len(runs)
    run = next(r for r in runs if r.run_id == "grid-hinge-pack4__seed7")
    assert run.seed == 7 and run.variant == "grid-hinge-pack4"
    assert run.overrides == {"data.init_args.mixture": "grid25", "model.init_args.loss": "hinge", "model.init_args.pack": 4}
    assert [r.index for r in runs] == list(range(len(runs)))
    # the grid alone names variants by its values
    raw = definition_dict(grid={"model.init_args.pack": [1, 2]})
    del raw["variants"]
    assert list(parse_definition(raw).variants) == ["pack1", "pack2"]


def test_expansion_is_stable_and_train_overrides_merge_under_variants():
    raw = definition_dict(train={"steps": 10, "overrides": {"trainer.log_every_n_steps": 5, "model.init_args.pack": 1}})
    first, second = parse_definition(raw).runs(), parse_definition(raw).runs()
    assert first == second
    assert [r.run_id for r in first] == ["gan__seed0", "gan__seed1", "pacgan2__seed0", "pacgan2__seed1"]
    assert first[2].overrides == {"trainer.log_every_n_steps": 5, "model.init_args.pack": 2}


def test_steps_become_optimizer_steps_and_seeds_reach_model_and_data(tmp_path):
    raw = definition_dict(variants={"k2": {"model.init_args.d_steps": 2}}, seeds=[5], steps=30, every=10)
    run = parse_definition(raw).runs()[0]
    argv = training_argv(parse_definition(raw), run, str(tmp_path), "csv")
    assert "--trainer.max_steps=90" in argv  # 30 training steps x (2 D + 1 G) updates
    assert "--checkpoint.every_n_train_steps=30" in argv and "--checkpoint.save_top_k=-1" in argv
    for arg in ("--seed_everything=5", "--model.init_args.seed=5", "--data.init_args.seed=5", "--model.init_args.d_steps=2"):
        assert arg in argv
    assert f"--trainer.logger.init_args.save_dir={tmp_path / 'runs'}" in argv
    assert "--trainer.logger.init_args.name=k2__seed5" in argv


def test_values_on_the_command_line():
    assert cli_value(1e-6) == "1.0e-06" and cli_value(0.5) == "0.5" and cli_value(float("nan")) == ".nan"
    assert cli_value(True) == "true" and cli_value(None) == "null" and cli_value([400, 400]) == "[400, 400]"
    assert cli_value({"class_path": "torch.optim.Adam"}) == '{"class_path": "torch.optim.Adam"}'


def test_shards_partition_the_runs():
    runs = parse_definition(definition_dict(seeds=[0, 1, 2])).runs()
    shards = [select_shard(runs, i, 4) for i in range(4)]
    assert sorted(r.run_id for shard in shards for r in shard) == sorted(r.run_id for r in runs)
    assert all(r.index % 4 == i for i, shard in enumerate(shards) for r in shard)
    with pytest.raises(ConfigError):
        select_shard(runs, 4, 4)


def test_mistakes_are_one_line_errors():
    with pytest.raises(ConfigError, match="unknown key.*variantz"):
        parse_definition({**definition_dict(), "variantz": {}})
    with pytest.raises(ConfigError, match="base_config"):
        parse_definition(definition_dict(base_config="configs/nope.yaml"))
    with pytest.raises(ConfigError, match="names no protocol"):
        parse_definition(definition_dict(evaluation={"protocols": [{"name": "a", "features": "raw2d"}, {"name": "b"}]}, main_metric="fid"))


def test_failures_are_classified_from_stderr():
    assert classify_failure("noise\ngan-suite: error: generator loss is inf at training step 9 (optimizer step 18)\n") == (
        "diverged", "gan-suite: error: generator loss is inf at training step 9 (optimizer step 18)")
    status, reason = classify_failure("Traceback (most recent call last):\n  ...\nValueError: boom\n")
    assert status == "failed" and reason == "ValueError: boom"


@pytest.mark.parametrize("path", BENCHMARKS, ids=os.path.basename)
def test_shipped_benchmarks_expand(path):
    definition = load_definition(path)
    runs = definition.runs()
    assert runs and os.path.isfile(definition.base_config)
    assert definition.main_protocol() is not None
    for label, row in definition.published.items():
        assert set(row) <= {c.key for c in definition.columns}, label


def test_shipped_benchmark_commands_parse(tmp_path, capsys):
    """The last run of every shipped benchmark (the most overridden one) is a valid `gan-suite fit` command line."""
    from gan_suite.cli import main

    for path in BENCHMARKS:
        definition = load_definition(path)
        for run in definition.runs()[-1:]:
            argv = training_argv(definition, run, str(tmp_path), definition.logger)
            with pytest.raises(SystemExit) as exit_info:
                main(argv[argv.index("fit"):] + ["--print_config"])
            assert exit_info.value.code in (0, None), (path, run.run_id, capsys.readouterr().err[-2000:])
            capsys.readouterr()

"""The evaluation pipeline end to end: checkpoints in, metrics.json and pictures out."""

import json
import os

import pytest
import torch

from gan_suite.cli import main
from gan_suite.errors import NonFiniteSamplesError
from gan_suite.evaluation.evaluate import evaluate_checkpoint
from gan_suite.evaluation.replay import ReplayGenerator, replay_checkpoint
from gan_suite.evaluation.streaming import evaluation_noise
from tests.conftest import REPO_ROOT, SHARED_MNIST_TEST

BUNDLED = {"class_path": "gan_suite.data.MNISTBundled", "init_args": {"image_size": 28}}


@pytest.fixture(scope="module")
def quickstart_ckpt(tmp_path_factory):
    out = tmp_path_factory.mktemp("qs")
    args = [
        "fit", "--config", os.path.join(REPO_ROOT, "configs", "quickstart.yaml"), "--trainer.max_steps=60",
        f"--trainer.logger.init_args.save_dir={out}", "--trainer.enable_progress_bar=false",
    ]
    assert main(args) == 0
    return str(out / "quickstart" / "version_0" / "checkpoints" / "last.ckpt")


def test_evaluate_command_on_a_quickstart_checkpoint(quickstart_ckpt, tmp_path, capsys):
    code = main(["evaluate", "--ckpt", quickstart_ckpt, "--num-samples", "600", "--out", str(tmp_path), "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "mnist_classifier features, 600 generated vs 500 real" in printed and "fid" in printed
    result = json.loads((tmp_path / "metrics.json").read_text())
    m = result["metrics"]
    for key in ("fid", "is_mean", "kid_mean", "precision", "recall", "density", "coverage", "C_T", "modes_covered", "mode_kl"):
        assert key in m and m[key] == m[key], key  # present and not NaN
    p = result["protocol"]
    assert p["n_generated"] == 600 and p["n_real"] == 500 and p["n_train"] == 4500 and p["iteration"] == 30
    assert p["extractor"]["name"] == "mnist_classifier" and p["extractor"]["weights_sha256"]
    assert result["files"]["copy_gallery"] == str(tmp_path / "copy_gallery.png")
    assert os.path.getsize(tmp_path / "copy_gallery.png") > 1000
    assert any("KID subset size" in w for w in result["warnings"])
    # every verdict states its evidence, in the file and on the terminal
    copying, collapse = result["metrics"]["verdicts"]["copying"], result["metrics"]["verdicts"]["mode_collapse"]
    assert copying["n_generated"] == 600 and copying["n_null"] == 500 and copying["null"] == "held-out real (500), per class of the classifier"
    assert 0 <= copying["p_value"] <= 1 and copying["flagged"] == (copying["p_value"] < copying["level"])
    assert copying["interval_95"][0] <= copying["estimated_copy_share"] <= copying["interval_95"][1]
    assert collapse["n_generated"] == 600 and collapse["n_reference"] == 4500 and 0 < collapse["kl_p_value"] <= 1
    assert len(m["mode_table"]) == 10 and sum(row["observed"] for row in m["mode_table"]) == 600
    assert "copying: " in printed and "p_value" in printed and "mode_collapse: " in printed


def test_real_features_are_cached_and_reused(quickstart_ckpt, tmp_path):
    cache = tmp_path / "cache"
    kwargs = dict(num_samples=200, metrics=["fid"], out_dir=str(tmp_path), cache_dir=str(cache), progress=False)
    first = evaluate_checkpoint(quickstart_ckpt, **kwargs)
    files = os.listdir(cache)
    assert len(files) == 1
    second = evaluate_checkpoint(quickstart_ckpt, **kwargs)
    assert os.listdir(cache) == files
    assert second["metrics"]["fid"] == pytest.approx(first["metrics"]["fid"], rel=1e-9)
    # the second run must have read the file: features moved in the file move the FID
    path = cache / files[0]
    stored = torch.load(path, weights_only=True)
    torch.save({**stored, "features": stored["features"] + 3.0}, path)
    moved = evaluate_checkpoint(quickstart_ckpt, **kwargs)
    assert moved["metrics"]["fid"] > first["metrics"]["fid"] + 100
    other = evaluate_checkpoint(quickstart_ckpt, **{**kwargs, "real_split": "train"})
    assert len(os.listdir(cache)) == 2 and other["protocol"]["n_real"] == 4500


def test_evaluate_with_inception_from_a_weights_file(quickstart_ckpt, tmp_path):
    from gan_suite.evaluation.features.inception import write_random_weights

    weights = write_random_weights(str(tmp_path / "inception.pth"))
    result = evaluate_checkpoint(
        quickstart_ckpt, features="inception", weights_path=weights, num_samples=16, num_real=16,
        metrics=["fid", "is", "kid"], batch_size=16, out_dir=str(tmp_path), progress=False, kid_subset_size=8,
        bootstrap=0,  # 2048-d FID replicates take seconds each here; tests/evaluation/test_uncertainty.py covers them
    )
    assert result["protocol"]["extractor"]["feature_dim"] == 2048
    assert all(v == v for v in result["metrics"].values())


def test_evaluation_noise_does_not_depend_on_how_the_range_is_split():
    whole = evaluation_noise(3, 8, 0, 2500)
    parts = torch.cat([evaluation_noise(3, 8, 0, 999), evaluation_noise(3, 8, 999, 1700), evaluation_noise(3, 8, 1700, 2500)])
    assert torch.equal(whole, parts)


def _replay(tmp_path, name, **kwargs):
    gen = ReplayGenerator(**kwargs)
    return replay_checkpoint(str(tmp_path / f"{name}.ckpt"), gen, BUNDLED)


def _memorisation_and_modes(ckpt, tmp_path, n=1000):
    return evaluate_checkpoint(ckpt, num_samples=n, metrics=["memorisation", "modes"], out_dir=str(tmp_path), progress=False)["metrics"]


def test_copying_generators_are_flagged(tmp_path):
    exact = _memorisation_and_modes(_replay(tmp_path, "copy", data_spec=BUNDLED, split="train"), tmp_path)
    noisy = _memorisation_and_modes(_replay(tmp_path, "noisy", data_spec=BUNDLED, split="train", noise_std=0.02), tmp_path)
    for m in (exact, noisy):
        assert m["copying_flagged"] and m["C_T"] < -3 and m["copy_excess"] > 0.97
        assert m["modes_covered"] == 10 and not m["mode_collapse_flagged"]


@pytest.mark.skipif(not os.path.isdir(SHARED_MNIST_TEST), reason="needs ../shared/data/mnist-test (real held-out digits)")
def test_held_out_real_digits_are_not_flagged(tmp_path):
    m = _memorisation_and_modes(_replay(tmp_path, "real", idx_folder=SHARED_MNIST_TEST), tmp_path, n=2000)
    assert not m["copying_flagged"] and abs(m["C_T"]) < 3 and m["copy_p_value"] > 0.05
    assert m["modes_covered"] == 10 and not m["mode_collapse_flagged"] and m["dropped_modes"] == []


def test_one_class_generator_is_flagged(tmp_path):
    m = _memorisation_and_modes(_replay(tmp_path, "ones", data_spec=BUNDLED, split="heldout", classes=[1]), tmp_path)
    assert m["modes_covered"] <= 2 and m["mode_collapse_flagged"] and m["mode_kl"] > 1.5
    assert sorted(m["dropped_modes"]) == ["0", "2", "3", "4", "5", "6", "7", "8", "9"]


def test_nan_samples_are_refused(tmp_path):
    class NaNGenerator(ReplayGenerator):
        def forward(self, z):
            x = super().forward(z)
            x[0, 0, 0, 0] = float("nan")
            return x

    import gan_suite.evaluation.evaluate as ev

    gen = NaNGenerator(data_spec=BUNDLED, split="heldout")
    with pytest.raises(NonFiniteSamplesError, match="NaN or inf"):
        ev.generated_features(gen, 100, torch.nn.Identity(), 10, progress=False)


def test_a_missing_checkpoint_is_a_one_line_error(tmp_path, capsys):
    assert main(["evaluate", "--ckpt", str(tmp_path / "nope.ckpt")]) == 2
    assert capsys.readouterr().err.strip() == f"gan-suite: error: checkpoint not found: {tmp_path / 'nope.ckpt'}"


def test_stacked_mnist_modes_are_counted_over_1000_classes(tmp_path):
    spec = {"class_path": "gan_suite.data.StackedMNIST", "init_args": {"num_samples": 3000, "heldout_samples": 500}}
    real = replay_checkpoint(str(tmp_path / "stacked.ckpt"), ReplayGenerator(data_spec=spec, split="train"), spec)
    m = evaluate_checkpoint(real, num_samples=2000, metrics=["modes"], out_dir=str(tmp_path), progress=False, bootstrap=0)["metrics"]
    # 2,000 draws (with replacement) from 3,000 stacked digits spread over 1000 classes cover
    # most but not all classes (761 with these seeds)
    assert m["modes_total"] == 1000 and 600 < m["modes_covered"] < 940
    one = replay_checkpoint(str(tmp_path / "one.ckpt"), ReplayGenerator(data_spec=spec, split="train", classes=[123]), spec)
    m1 = evaluate_checkpoint(one, num_samples=500, metrics=["modes"], out_dir=str(tmp_path), progress=False, bootstrap=0)["metrics"]
    assert m1["modes_covered"] <= 5 and m1["mode_collapse_flagged"]


def test_each_protocol_gets_its_own_folder_beside_the_run_with_an_index(quickstart_ckpt, tmp_path, capsys):
    import shutil

    run_dir = os.path.dirname(os.path.dirname(quickstart_ckpt))
    root = os.path.join(run_dir, "evaluation")
    shutil.rmtree(root, ignore_errors=True)
    base = ["evaluate", "--ckpt", quickstart_ckpt, "--metrics", "fid", "--no-progress"]
    assert main(base + ["--num-samples", "200"]) == 0
    assert main(base + ["--num-samples", "300"]) == 0
    folders = sorted(f for f in os.listdir(root) if os.path.isdir(os.path.join(root, f)))
    assert [f.split("-")[:5] for f in folders] == [
        ["last", "step30", "mnist_classifier", "n200", "seed0"], ["last", "step30", "mnist_classifier", "n300", "seed0"],
    ]
    index = [json.loads(line) for line in open(os.path.join(root, "index.jsonl"))]
    assert [e["folder"] for e in index] == folders and [e["n_generated"] for e in index] == [200, 300]
    for folder, n in zip(folders, (200, 300)):
        assert json.load(open(os.path.join(root, folder, "metrics.json")))["protocol"]["n_generated"] == n
    capsys.readouterr()
    # the same protocol again is refused before any work, unless --overwrite
    assert main(base + ["--num-samples", "200"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"gan-suite: error: already evaluated with this protocol: {os.path.join(root, folders[0], 'metrics.json')} "
        "(pass --overwrite to replace it)"
    )
    assert main(base + ["--num-samples", "200", "--overwrite"]) == 0
    assert len(open(os.path.join(root, "index.jsonl")).readlines()) == 3
    # another setting (here the real split) is another folder
    assert main(base + ["--num-samples", "200", "--real-split", "train"]) == 0
    assert len([f for f in os.listdir(root) if os.path.isdir(os.path.join(root, f))]) == 3


def test_a_checkpoint_outside_a_run_directory_gets_a_folder_named_after_it(quickstart_ckpt, tmp_path):
    import shutil

    loose = tmp_path / "downloads" / "model.ckpt"
    loose.parent.mkdir()
    shutil.copy(quickstart_ckpt, loose)
    result = evaluate_checkpoint(str(loose), num_samples=200, metrics=["fid"], progress=False)
    folder = os.path.dirname(result["files"]["metrics"])
    assert os.path.dirname(folder) == str(tmp_path / "downloads" / "model_evaluation")
    assert os.path.basename(folder).startswith("model-step30-mnist_classifier-n200-seed0-")


def test_parzen_through_evaluate_uses_the_generated_pixels_and_the_two_halves_of_the_heldout_split(tmp_path):
    from gan_suite.data import MNISTBundled
    from gan_suite.evaluation.metrics.parzen import parzen_log_likelihood

    ckpt = _replay(tmp_path, "copy", data_spec=BUNDLED, split="train")
    m = evaluate_checkpoint(ckpt, num_samples=1000, metrics=["parzen"], out_dir=str(tmp_path), progress=False)["metrics"]
    fake = ReplayGenerator(data_spec=BUNDLED, split="train")(evaluation_noise(0, 100, 0, 1000))
    held, _ = MNISTBundled().split("heldout").__getitems__(list(range(500)))
    px = lambda x: x.double().add(1).div(2).flatten(1)  # noqa: E731
    want = parzen_log_likelihood(px(fake), px(held)[:250], px(held)[250:])
    assert (m["parzen_n_samples"], m["parzen_n_validation"], m["parzen_n_test"]) == (1000, 250, 250)
    assert m["parzen_sigma"] == want["parzen_sigma"]
    assert m["parzen_ll"] == pytest.approx(want["parzen_ll"], abs=0.05)  # images pass through float16

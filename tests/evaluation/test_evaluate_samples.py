"""Evaluate anything: folders, array files, checkpoints and callables of the same images agree."""

import os

import numpy as np
import pytest
import torch
from PIL import Image

from gan_suite.data.base import unit_range_to_uint8
from gan_suite.errors import ConfigError
from gan_suite.evaluation.checkpoint import load_generator
from gan_suite.evaluation.evaluate import evaluate_checkpoint
from gan_suite.evaluation.evaluate_samples import evaluate_generator, evaluate_samples, export_statistics
from gan_suite.evaluation.replay import ReplayGenerator, replay_checkpoint
from gan_suite.evaluation.sample_sources import read_array_file, read_statistics
from gan_suite.evaluation.streaming import evaluation_noise

BUNDLED = {"class_path": "gan_suite.data.MNISTBundled", "init_args": {"image_size": 28}}
N = 300
OPTIONS = dict(features="mnist_classifier", metrics=["fid", "fd_inf", "is", "kid", "pr"], batch_size=64, kid_subset_size=100, bootstrap=10, progress=False)


@pytest.fixture(scope="module")
def same_images(tmp_path_factory):
    """A replay checkpoint (real training digits, exact uint8 levels), and its N samples as an
    .npz [N, H, W, C], an .npy [N, C, H, W] and a folder of PNGs."""
    folder = tmp_path_factory.mktemp("samples")
    ckpt = replay_checkpoint(str(folder / "replay.ckpt"), ReplayGenerator(data_spec=BUNDLED, split="train"), BUNDLED)
    trained = load_generator(ckpt)
    with torch.no_grad():
        images = unit_range_to_uint8(trained.generator.eval()(evaluation_noise(0, trained.latent_dim, 0, N)))
    np.savez(folder / "samples.npz", images=images.permute(0, 2, 3, 1).numpy())
    np.save(folder / "samples.npy", images.numpy())
    pngs = folder / "pngs"
    pngs.mkdir()
    for i, image in enumerate(images):
        Image.fromarray(image[0].numpy()).save(pngs / f"{i:05d}.png")
    return ckpt, trained, folder


def test_folder_npz_npy_checkpoint_and_callable_give_identical_metrics(same_images, tmp_path):
    ckpt, trained, folder = same_images
    # a fresh feature cache: real features cached by other runs at another batch size differ in float32 rounding
    reference = evaluate_checkpoint(ckpt, num_samples=N, out_dir=str(tmp_path / "ckpt"), cache_dir=str(tmp_path / "cache"), **OPTIONS)
    runs = {
        "npz": evaluate_samples(str(folder / "samples.npz"), "mnist_bundled:heldout", **OPTIONS),
        "npy": evaluate_samples(str(folder / "samples.npy"), "mnist_bundled", **OPTIONS),
        "folder": evaluate_samples(str(folder / "pngs"), "mnist_bundled:heldout", out_dir=str(tmp_path / "folder"), **OPTIONS),
        "callable": evaluate_generator(trained.generator.eval(), trained.latent_dim, N, "mnist_bundled:heldout", **OPTIONS),
    }
    assert reference["metrics"]["fid"] > 0
    for name, result in runs.items():
        assert result["metrics"] == reference["metrics"], name
        assert result["intervals"] == reference["intervals"], name
        assert result["protocol"]["n_generated"] == N
    assert os.path.isfile(tmp_path / "folder" / "metrics.json")


def test_real_statistics_round_trip_and_are_checked(same_images, tmp_path):
    ckpt, _, folder = same_images
    stats = export_statistics("mnist_bundled:heldout", str(tmp_path / "real.npz"), features="mnist_classifier", progress=False)
    saved = read_statistics(stats)
    assert saved.extractor == "mnist_classifier" and len(saved.weights_sha256) == 64 and saved.mu.shape == (128,)
    options = {**OPTIONS, "metrics": None, "bootstrap": 0}
    from_stats = evaluate_samples(str(folder / "samples.npz"), stats, **options)
    from_images = evaluate_samples(str(folder / "samples.npz"), "mnist_bundled:heldout", **{**options, "metrics": ["fid", "fd_inf"]})
    assert from_stats["protocol"]["metrics"] == ["fid", "fd_inf"]  # statistics only: moment metrics
    assert from_stats["metrics"]["fid"] == pytest.approx(from_images["metrics"]["fid"], rel=1e-7)  # float64 sums in another order: 1.3e-9 apart on AVX2 kernels
    assert any("training set" in w for w in evaluate_samples(str(folder / "samples.npz"), "mnist_bundled", **{**options, "metrics": ["memorisation", "fid"]})["warnings"])
    with pytest.raises(ConfigError, match="statistics only: kid"):
        evaluate_samples(str(folder / "samples.npz"), stats, **{**options, "metrics": ["fid", "kid"]})
    with pytest.raises(ConfigError, match="holds mnist_classifier statistics"):
        evaluate_samples(str(folder / "samples.npz"), stats, **{**options, "features": "raw2d", "metrics": ["fid"]})


def test_array_layouts_and_bad_arrays(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    np.save(tmp_path / "nhwc.npy", images)
    np.save(tmp_path / "nchw.npy", images.transpose(0, 3, 1, 2))
    assert torch.equal(read_array_file(str(tmp_path / "nhwc.npy")), read_array_file(str(tmp_path / "nchw.npy")))
    np.save(tmp_path / "float.npy", images.astype(np.float32))
    with pytest.raises(ConfigError, match="must be uint8"):
        read_array_file(str(tmp_path / "float.npy"))
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ConfigError, match="cannot read"):
        read_array_file(str(tmp_path / "objects.npy"))


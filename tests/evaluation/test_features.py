"""Feature extractors: registry, shapes, offline errors, and the shipped MNIST classifier's accuracy.

Pretrained Inception / DINOv2 / CLIP weights cannot be downloaded here, so those tests load
randomly initialised weights written by the test (plumbing only, never values). The network is
blocked for every test (torch.hub's urlopen raises URLError), so they behave the same online.
"""

from __future__ import annotations

import gzip
import json
import os
import textwrap
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch

from gan_suite.errors import ConfigError, DataUnavailableError, GanSuiteError, WeightsUnavailableError
from gan_suite.evaluation.features import FeatureExtractor, available_extractors, build_extractor
from gan_suite.evaluation.features import clip as clip_module
from gan_suite.evaluation.features import dinov2 as dinov2_module
from gan_suite.evaluation.features import inception as inception_module
from gan_suite.evaluation.features.base import to_uint8_rgb
from gan_suite.evaluation.features.idx import read_idx, read_mnist_split

REPO_ROOT = Path(__file__).resolve().parents[2]
MNIST_TEST_DIR = REPO_ROOT.parent / "shared" / "data" / "mnist-test"


# ---------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No network for any test: torch.hub's downloads and GitHub lookups fail like they do here."""

    def refuse(*args, **kwargs):
        raise URLError("network disabled in tests")

    monkeypatch.setattr(torch.hub, "urlopen", refuse)


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty $TORCH_HOME; returns its hub dir (torch.hub.get_dir())."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    hub = tmp_path / "torch" / "hub"
    assert torch.hub.get_dir() == str(hub)
    return hub


@pytest.fixture(scope="module")
def inception_weights(tmp_path_factory):
    """A randomly initialised state dict of torch-fidelity's Inception (91 MB) in a tmp file."""
    path = tmp_path_factory.mktemp("inception") / "random-inception.pth"
    return inception_module.write_random_weights(str(path))


@pytest.fixture(scope="module")
def inception(inception_weights):
    return build_extractor("inception", weights_path=inception_weights)


@pytest.fixture(scope="module")
def clip_weights(tmp_path_factory):
    """A tiny random CLIP ViT (width 64, 1 layer, 32 px, 16 px patches, embedding 32) as TorchScript,
    the format of OpenAI's release files; torch-fidelity rebuilds the architecture from its shapes."""
    from torch_fidelity.feature_extractor_clip import CLIPVisual

    class TinyClip(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.visual = CLIPVisual(32, 32, 1, 64, 16).visual
            self.text_projection = torch.nn.Parameter(torch.randn(64, 32))

        def forward(self, x):
            return x

    path = tmp_path_factory.mktemp("clip") / "tiny-clip.pt"
    with pytest.warns(FutureWarning):  # torch.jit is deprecated in favour of torch.export
        torch.jit.script(TinyClip()).save(str(path))
    return str(path)


FAKE_DINOV2_HUBCONF = textwrap.dedent(
    '''
    """Stand-in for the facebookresearch/dinov2 hub repo: same entry point, a tiny network."""
    import torch

    dependencies = ["torch"]


    class TinyViT(torch.nn.Module):
        def __init__(self, embed_dim):
            super().__init__()
            self.embed_dim = embed_dim
            self.patch_embed = torch.nn.Conv2d(3, embed_dim, kernel_size=14, stride=14)

        def forward(self, x):  # [N, 3, 224, 224] -> [N, embed_dim]
            return self.patch_embed(x).mean(dim=(2, 3))


    def dinov2_vits14(*, pretrained=True, **kwargs):
        model = TinyViT(384)
        if pretrained:
            url = "https://dl.fbaipublicfiles.com/dinov2/dinov2_vits14/dinov2_vits14_pretrain.pth"
            model.load_state_dict(torch.hub.load_state_dict_from_url(url, map_location="cpu"))
        return model
    '''
)


@pytest.fixture
def fake_dinov2_repo(torch_home, tmp_path):
    """A fake cached hub repo (the real DINOv2 code cannot be fetched offline) plus a weights file for it.
    Returns the weights file, which is not in the hub checkpoints dir."""
    repo = torch_home / "facebookresearch_dinov2_main"
    repo.mkdir(parents=True)
    (repo / "hubconf.py").write_text(FAKE_DINOV2_HUBCONF)
    namespace = {}
    exec(FAKE_DINOV2_HUBCONF, namespace)
    path = tmp_path / "dinov2-small-random.pth"
    torch.save(namespace["dinov2_vits14"](pretrained=False).state_dict(), path)
    return str(path)


def mnist_test_or_skip():
    if not (MNIST_TEST_DIR / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"real MNIST test split not found at {MNIST_TEST_DIR} (../shared/data/mnist-test)")
    images, labels = read_mnist_split(MNIST_TEST_DIR)
    return torch.from_numpy(images).float().unsqueeze(1) / 127.5 - 1.0, torch.from_numpy(labels)


@pytest.fixture(scope="module")
def mnist_classifier():
    return build_extractor("mnist_classifier")


def assert_one_line_without_traceback_chain(exc_info, *needles):
    message = str(exc_info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message
    chained = exc_info.value.__cause__ is not None or (
        exc_info.value.__context__ is not None and not exc_info.value.__suppress_context__
    )
    assert not chained, "the error would print a chained traceback"


# ---------------------------------------------------------------- registry


def test_available_extractors_lists_every_extractor():
    assert available_extractors() == ["clip", "dinov2", "inception", "mnist_classifier", "mnist_classifier_stacked", "raw2d"]


def test_every_name_builds(inception_weights, clip_weights, fake_dinov2_repo):
    kwargs = {
        "inception": dict(weights_path=inception_weights),
        "dinov2": dict(model="dinov2-vit-s-14", weights_path=fake_dinov2_repo),
        "clip": dict(weights_path=clip_weights),
        "mnist_classifier": {},
        "mnist_classifier_stacked": {},
        "raw2d": {},
    }
    assert sorted(kwargs) == available_extractors(), "add the new extractor to this test"
    for name, kw in kwargs.items():
        extractor = build_extractor(name, **kw)
        assert isinstance(extractor, FeatureExtractor) and extractor.name == name
        assert not extractor.training and not any(p.requires_grad for p in extractor.parameters())
        extractor.train()  # frozen: stays in eval mode
        assert not any(m.training for m in extractor.modules())
        described = json.loads(json.dumps(extractor.describe()))
        assert described["name"] == name and described["feature_dim"] == extractor.feature_dim
        if name != "raw2d":
            assert len(described["weights_sha256"]) == 64


def test_unknown_name_lists_known_names_in_one_line():
    with pytest.raises(ConfigError) as exc_info:
        build_extractor("inceptoin")
    assert_one_line_without_traceback_chain(exc_info, "inceptoin", *available_extractors())


def test_unknown_argument_is_a_config_error():
    with pytest.raises(ConfigError, match="raw2d.*weights_path"):
        build_extractor("raw2d", weights_path="x.pt")


# ---------------------------------------------------------------- inception


@pytest.mark.parametrize("channels,size", [(1, 28), (3, 28), (1, 32), (3, 32)])
def test_inception_shapes(inception, channels, size):
    images = torch.rand(2, channels, size, size) * 2 - 1
    out = inception(images)
    assert out["features"].shape == (2, 2048) and out["features"].dtype == torch.float32
    assert out["logits"].shape == (2, 1008) and out["logits"].dtype == torch.float32
    assert torch.isfinite(out["features"]).all() and torch.isfinite(out["logits"]).all()
    assert out["features"].abs().mean() > 1e-3  # random weights still give O(1) features for plumbing tests
    assert (inception.feature_dim, inception.num_classes) == (2048, 1008)


def test_inception_tiles_gray_to_rgb(inception):
    gray = torch.rand(2, 1, 32, 32) * 2 - 1
    assert torch.equal(inception(gray)["features"], inception(gray.expand(-1, 3, -1, -1))["features"])


def test_inception_rejects_wrong_channels(inception):
    with pytest.raises(ConfigError, match="1 or 3 channel"):
        inception(torch.zeros(2, 2, 32, 32))


def test_inception_offline_without_file_names_the_file(torch_home):
    with pytest.raises(WeightsUnavailableError) as exc_info:
        build_extractor("inception")
    assert_one_line_without_traceback_chain(
        exc_info, inception_module.WEIGHTS_FILE, "--weights-path", str(torch_home / "checkpoints"), "URLError"
    )
    with pytest.raises(WeightsUnavailableError, match=inception_module.WEIGHTS_FILE):
        build_extractor("inception", allow_download=False)


def test_inception_finds_weights_in_hub_checkpoints(torch_home, inception_weights):
    (torch_home / "checkpoints").mkdir(parents=True)
    cached = torch_home / "checkpoints" / inception_module.WEIGHTS_FILE
    os.symlink(inception_weights, cached)
    extractor = build_extractor("inception", allow_download=False)
    assert extractor.weights_path == str(cached)
    assert extractor.describe()["weights"] == inception_module.WEIGHTS_FILE


def test_inception_missing_weights_path():
    with pytest.raises(WeightsUnavailableError, match="not found: /nonexistent.pth"):
        build_extractor("inception", weights_path="/nonexistent.pth")


def test_to_uint8_rgb_round_trips_uint8_data():
    levels = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    converted = to_uint8_rgb(levels.float() / 127.5 - 1.0)
    assert converted.shape == (1, 3, 16, 16) and converted.dtype == torch.uint8
    assert torch.equal(converted[:, 0:1], levels) and torch.equal(converted[:, 2:3], levels)


# ---------------------------------------------------------------- dinov2 / clip


def test_dinov2_offline_without_code_or_file_names_both(torch_home):
    with pytest.raises(WeightsUnavailableError) as exc_info:
        build_extractor("dinov2")
    assert_one_line_without_traceback_chain(
        exc_info, "dinov2_vitl14_pretrain.pth", "facebookresearch_dinov2_main", "--weights-path", str(torch_home)
    )


def test_dinov2_weights_path(fake_dinov2_repo):
    extractor = build_extractor("dinov2", model="dinov2-vit-s-14", weights_path=fake_dinov2_repo)
    assert extractor.feature_dim == 384 and extractor.num_classes is None
    out = extractor(torch.rand(2, 1, 28, 28) * 2 - 1)
    assert set(out) == {"features"} and out["features"].shape == (2, 384)
    reference = torch.load(fake_dinov2_repo)["patch_embed.bias"]
    assert torch.equal(extractor.net.model.patch_embed.bias, reference)


def test_dinov2_uses_cached_hub_repo_and_checkpoint_offline(fake_dinov2_repo, torch_home):
    (torch_home / "checkpoints").mkdir(parents=True)
    os.replace(fake_dinov2_repo, torch_home / "checkpoints" / dinov2_module.weights_file("dinov2-vit-s-14"))
    extractor = build_extractor("dinov2", model="dinov2-vit-s-14")
    assert extractor.describe()["weights"] == "dinov2_vits14_pretrain.pth"
    assert extractor(torch.rand(3, 3, 32, 32) * 2 - 1)["features"].shape == (3, 384)


def test_dinov2_weights_path_without_hub_code(torch_home, tmp_path):
    path = tmp_path / "w.pth"
    torch.save({}, path)
    with pytest.raises(WeightsUnavailableError, match="facebookresearch_dinov2_main"):
        build_extractor("dinov2", weights_path=str(path))


def test_clip_offline_without_file_names_the_file(torch_home):
    with pytest.raises(WeightsUnavailableError) as exc_info:
        build_extractor("clip")
    assert_one_line_without_traceback_chain(
        exc_info, clip_module.weights_file("clip-vit-l-14"), "--weights-path", str(torch_home / "checkpoints")
    )


def test_clip_with_weights_file(clip_weights):
    extractor = build_extractor("clip", weights_path=clip_weights)
    assert extractor.feature_dim == 32 and extractor.num_classes is None
    for channels in (1, 3):
        out = extractor(torch.rand(2, channels, 28, 28) * 2 - 1)
        assert set(out) == {"features"} and out["features"].shape == (2, 32)


def test_clip_unreadable_file_is_one_line(tmp_path):
    path = tmp_path / "not-clip.pt"
    torch.save({"a": torch.zeros(1)}, path)
    with pytest.raises(WeightsUnavailableError) as exc_info:
        build_extractor("clip", weights_path=str(path))
    assert_one_line_without_traceback_chain(exc_info, str(path))


@pytest.mark.parametrize("name", ["dinov2", "clip"])
def test_unknown_model_variant(name):
    with pytest.raises(ConfigError, match="unknown"):
        build_extractor(name, model="vit-huge")


# ---------------------------------------------------------------- raw2d


def test_raw2d_is_identity():
    extractor = build_extractor("raw2d")
    points = torch.randn(5, 2, dtype=torch.float64)
    out = extractor(points)
    assert set(out) == {"features"} and out["features"].dtype == torch.float32
    assert torch.allclose(out["features"], points.float())
    assert extractor.describe()["weights"] == "none"
    with pytest.raises(ConfigError, match=r"\[N, 2\]"):
        extractor(torch.zeros(5, 3))


# ---------------------------------------------------------------- mnist classifier


def test_mnist_classifier_loads_shipped_weights(mnist_classifier):
    shipped = Path(mnist_classifier.weights_path)
    assert shipped.name == "mnist_classifier.pt" and shipped.stat().st_size < 2 * 1024 * 1024
    assert shipped.parent.parent == Path(inception_module.__file__).parent  # inside the package
    out = mnist_classifier(torch.rand(4, 1, 28, 28) * 2 - 1)
    assert out["features"].shape == (4, 128) and out["logits"].shape == (4, 10)


def test_mnist_classifier_accuracy_on_real_test_digits(mnist_classifier):
    images, labels = mnist_test_or_skip()
    images, labels = images[:2000], labels[:2000]
    accuracy = (mnist_classifier.classify(images) == labels).float().mean().item()
    assert accuracy >= 0.97
    padded = torch.nn.functional.pad(images[:500], (2, 2, 2, 2), value=-1.0)  # 32 x 32, resized back to 28
    assert (mnist_classifier.classify(padded) == labels[:500]).float().mean().item() >= 0.95


def test_mnist_classifier_classify_channels_reads_each_digit(mnist_classifier):
    images, labels = mnist_test_or_skip()
    picks = [int((labels == digit).nonzero()[0]) for digit in (3, 7, 1)]
    stacked = torch.cat([images[i] for i in picks], dim=0).unsqueeze(0)  # [1, 3, 28, 28]
    assert mnist_classifier.classify_channels(stacked).tolist() == [[3, 7, 1]]


def test_mnist_classifier_rejects_three_channels_in_forward(mnist_classifier):
    with pytest.raises(ConfigError, match="classify_channels"):
        mnist_classifier(torch.zeros(2, 3, 28, 28))
    with pytest.raises(ConfigError):
        mnist_classifier.classify_channels(torch.zeros(2, 1, 28, 28))


def test_mnist_classifier_random_init_is_described_as_random():
    extractor = build_extractor("mnist_classifier", pretrained=False)
    assert extractor.describe()["weights"] == "random" and extractor.describe()["weights_sha256"] is None


# ---------------------------------------------------------------- idx reader


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trip(tmp_path, compress):
    data = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    raw = bytes([0, 0, 0x08, 3]) + np.array(data.shape, dtype=">u4").tobytes() + data.tobytes()
    path = tmp_path / ("x-idx3-ubyte.gz" if compress else "x-idx3-ubyte")
    path.write_bytes(gzip.compress(raw) if compress else raw)
    assert np.array_equal(read_idx(path), data)


def test_read_idx_errors(tmp_path):
    with pytest.raises(DataUnavailableError, match="not found"):
        read_idx(tmp_path / "missing")
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(DataUnavailableError, match="magic"):
        read_idx(tmp_path / "bad")
    assert issubclass(DataUnavailableError, GanSuiteError)


def test_stacked_classifier_joint_logits_match_the_per_channel_digits():
    from gan_suite.data import StackedMNIST

    dm = StackedMNIST(num_samples=200, heldout_samples=50)
    x, y = dm.split("train").__getitems__(list(range(200)))
    ext = build_extractor("mnist_classifier_stacked")
    out = ext(x)
    assert out["features"].shape == (200, 384) and out["logits"].shape == (200, 1000)
    digits = build_extractor("mnist_classifier").classify_channels(x)
    joint = digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]
    assert torch.equal(out["logits"].argmax(1), joint)
    assert (joint == y).float().mean() > 0.95
    assert torch.allclose(out["logits"].exp().sum(1), torch.ones(200), atol=1e-4)

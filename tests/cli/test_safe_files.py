"""No file the suite reads can run code: every entry point that reads a file, fed a file whose
unpickling would create a marker file. The marker must never appear and the error is one line.

Each planted file is first shown to be live: an unrestricted unpickler does create the marker.
"""

import os
import pathlib
import pickle
import textwrap

import pytest
import torch

from gan_suite.cli import main
from gan_suite.errors import GanSuiteError, UnsafeFileError
from gan_suite.evaluation.replay import ReplayGenerator, replay_checkpoint
from tests.conftest import REPO_ROOT

QUICKSTART = os.path.join(REPO_ROOT, "configs", "quickstart.yaml")
BUNDLED = {"class_path": "gan_suite.data.MNISTBundled", "init_args": {"image_size": 28}}


class Planted:
    """Unpickling calls ``pathlib.Path.touch(marker)``: the stand-in for any code in a file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "code-ran"
    yield path
    assert not path.exists(), "unpickling ran code from a file"


def _live(path, marker, torch_file=True):
    """Check that the planted file does run code when unpickled without restrictions."""
    if torch_file:
        torch.load(path, weights_only=False)
    else:
        with open(path, "rb") as f:
            pickle.load(f)
    assert marker.exists()
    marker.unlink()
    return str(path)


def planted_torch_file(path, marker, payload=None):
    torch.save(payload if payload is not None else {"state_dict": {"w": Planted(marker)}}, path)
    return _live(path, marker)


def _one_line_error(capsys, code, *needles, expected_code=2):
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.startswith("gan-suite: error:")]
    assert code == expected_code, err
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def replay_ckpt(tmp_path_factory):
    """A valid checkpoint (replays real digits) for the commands that read a second file."""
    path = tmp_path_factory.mktemp("replay") / "replay.ckpt"
    return replay_checkpoint(str(path), ReplayGenerator(data_spec=BUNDLED, split="heldout"), BUNDLED)


# ---------------------------------------------------------------- checkpoints


def test_evaluate_refuses_a_checkpoint_that_runs_code(tmp_path, marker, capsys):
    ckpt = planted_torch_file(tmp_path / "evil.ckpt", marker)
    line = _one_line_error(capsys, main(["evaluate", "--ckpt", ckpt]), ckpt, "refusing checkpoint")
    assert "pathlib" in line or "getattr" in line  # names what the file asked to call


def test_evaluate_refuses_a_plain_python_pickle(tmp_path, marker, capsys):
    path = tmp_path / "evil.pkl"
    with open(path, "wb") as f:
        pickle.dump(Planted(marker), f)
    _live(path, marker, torch_file=False)
    _one_line_error(capsys, main(["evaluate", "--ckpt", str(path)]), str(path))


@pytest.mark.parametrize("which", ["generator_spec", "data_spec"])
def test_class_paths_in_a_checkpoint_cannot_call_other_code(tmp_path, marker, capsys, which):
    """A tensors-only checkpoint can still name a callable: only the suite's networks and data modules are built."""
    gen = ReplayGenerator(data_spec=BUNDLED, split="heldout")
    meta = {"iteration": 0, "generator_spec": gen.spec(), "data_spec": BUNDLED}
    meta[which] = {"class_path": "subprocess.run", "init_args": {"args": ["touch", str(marker)]}}
    ckpt = str(tmp_path / "spec.ckpt")
    torch.save({"state_dict": {}, "gan_suite": meta}, ckpt)
    code = main(["evaluate", "--ckpt", ckpt, "--features", "raw2d", "--num-samples", "10", "--out", str(tmp_path / "o")])
    _one_line_error(capsys, code, "subprocess.run")


def test_fit_refuses_a_resume_checkpoint_that_runs_code(tmp_path, marker, capsys):
    ckpt = planted_torch_file(tmp_path / "evil.ckpt", marker)
    code = main(["fit", "--config", QUICKSTART, f"--trainer.logger.init_args.save_dir={tmp_path}", f"--ckpt_path={ckpt}"])
    _one_line_error(capsys, code, "--ckpt_path", ckpt)
    assert not (tmp_path / "quickstart").exists(), "the run must not start"


def test_fit_refuses_weights_only_false(tmp_path, capsys, replay_ckpt):
    code = main(["fit", "--config", QUICKSTART, f"--trainer.logger.init_args.save_dir={tmp_path}",
                 f"--ckpt_path={replay_ckpt}", "--weights_only=false"])
    _one_line_error(capsys, code, "--weights_only")


# ---------------------------------------------------------------- extractor weights


def test_evaluate_refuses_inception_weights_that_run_code(tmp_path, marker, capsys, replay_ckpt):
    weights = planted_torch_file(tmp_path / "evil-inception.pth", marker, {"fc.weight": Planted(marker)})
    code = main(["evaluate", "--ckpt", replay_ckpt, "--features", "inception", "--weights-path", weights, "--out", str(tmp_path / "o")])
    _one_line_error(capsys, code, weights, "refusing Inception weights file")


def test_inception_weights_planted_in_the_hub_cache_are_refused(tmp_path, marker, monkeypatch):
    from gan_suite.evaluation.features import build_extractor
    from gan_suite.evaluation.features.inception import WEIGHTS_FILE

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    cached = tmp_path / "torch" / "hub" / "checkpoints" / WEIGHTS_FILE
    cached.parent.mkdir(parents=True)
    planted_torch_file(cached, marker, {"fc.weight": Planted(marker)})
    with pytest.raises(UnsafeFileError) as info:
        build_extractor("inception", allow_download=False)
    assert str(cached) in str(info.value) and "\n" not in str(info.value)


def test_inception_weights_of_another_network_are_refused_before_torch_fidelity(tmp_path):
    from gan_suite.evaluation.features import build_extractor

    path = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.weight": torch.zeros(1000, 2048)}, path)
    with pytest.raises(GanSuiteError) as info:
        build_extractor("inception", weights_path=str(path))
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    assert "missing" in message and "unexpected (e.g. conv1.weight)" in message and "fc.weight: [1000, 2048] instead of [1008, 2048]" in message


def test_evaluate_names_an_inception_file_that_is_no_weights_file(tmp_path, capsys, replay_ckpt):
    path = tmp_path / "notes.pth"
    path.write_text("these are not weights\n")
    code = main(["evaluate", "--ckpt", replay_ckpt, "--features", "inception", "--weights-path", str(path), "--out", str(tmp_path / "o")])
    _one_line_error(capsys, code, str(path), "Inception weights file")


def test_mnist_classifier_weights_that_run_code_are_refused(tmp_path, marker):
    from gan_suite.evaluation.features import build_extractor

    weights = planted_torch_file(tmp_path / "evil-mnist.pt", marker, {"conv.weight": Planted(marker)})
    with pytest.raises(UnsafeFileError, match="refusing MNIST classifier weights file"):
        build_extractor("mnist_classifier", weights_path=weights)


FAKE_DINOV2_HUBCONF = textwrap.dedent(
    """
    import torch

    dependencies = ["torch"]


    def dinov2_vits14(*, pretrained=True, **kwargs):
        return torch.nn.Conv2d(3, 384, kernel_size=14, stride=14)
    """
)


def test_dinov2_weights_that_run_code_are_refused(tmp_path, marker, monkeypatch):
    from gan_suite.evaluation.features import build_extractor

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    repo = tmp_path / "torch" / "hub" / "facebookresearch_dinov2_main"
    repo.mkdir(parents=True)
    (repo / "hubconf.py").write_text(FAKE_DINOV2_HUBCONF)
    weights = planted_torch_file(tmp_path / "evil-dinov2.pth", marker, {"weight": Planted(marker)})
    with pytest.raises(UnsafeFileError, match="refusing DINOv2 weights file") as info:
        build_extractor("dinov2", model="dinov2-vit-s-14", weights_path=weights)
    assert "\n" not in str(info.value)


def test_clip_weights_that_are_a_pickle_are_refused(tmp_path, marker):
    from gan_suite.errors import WeightsUnavailableError
    from gan_suite.evaluation.features import build_extractor

    weights = planted_torch_file(tmp_path / "evil-clip.pt", marker)
    with pytest.raises(WeightsUnavailableError, match="not a TorchScript archive") as info:
        build_extractor("clip", model="clip-vit-b-32", weights_path=weights)
    assert weights in str(info.value) and "\n" not in str(info.value)


def test_clip_torchscript_with_setstate_is_refused(tmp_path):
    """TorchScript runs a module's ``__setstate__`` on load: such archives are not handed to torch.jit.load."""
    from gan_suite.evaluation.features import build_extractor

    class WithSetstate(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(2))

        def forward(self, x):
            return x

        @torch.jit.export
        def __getstate__(self):
            return (self.w, self.training)

        @torch.jit.export
        def __setstate__(self, state: tuple[torch.Tensor, bool]):
            self.w = state[0]
            self.training = state[1]

    path = tmp_path / "setstate.pt"
    with pytest.warns(FutureWarning):
        torch.jit.script(WithSetstate()).save(str(path))
    with pytest.raises(UnsafeFileError, match="__setstate__"):
        build_extractor("clip", model="clip-vit-b-32", weights_path=str(path))


# ---------------------------------------------------------------- cached features, datasets


def test_a_planted_feature_cache_file_is_recomputed_not_run(tmp_path, marker):
    from gan_suite.evaluation.real_cache import cached_features
    from gan_suite.evaluation.streaming import FeatureSet

    planted_torch_file(tmp_path / "key.pt", marker, {"features": Planted(marker), "logits": None, "labels": None})
    fresh = FeatureSet(torch.ones(3, 2), None, None)
    got, hit = cached_features("key", lambda: fresh, str(tmp_path))
    assert not hit and torch.equal(got.features, fresh.features)
    again, hit = cached_features("key", lambda: None, str(tmp_path))  # the recomputed file is now used
    assert hit and torch.equal(again.features, fresh.features)


def test_cifar10_batches_are_unpickled_as_data_only(tmp_path, marker):
    import numpy as np

    from gan_suite.data.torchvision_sets import load_cifar10

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    names = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]
    for name in names:  # well-formed batches (numpy arrays, as published) ...
        with open(folder / name, "wb") as f:
            pickle.dump({"data": np.full((2, 3072), 7, np.uint8), "labels": [1, 2]}, f, protocol=2)
    images, labels = load_cifar10(str(tmp_path), train=False, download=False)
    assert images.shape == (2, 3, 32, 32) and int(images.max()) == 7 and labels.tolist() == [1, 2]
    with open(folder / "test_batch", "wb") as f:  # ... and one that runs code
        pickle.dump(Planted(marker), f)
    _live(folder / "test_batch", marker, torch_file=False)
    with pytest.raises(UnsafeFileError, match="test_batch") as info:
        load_cifar10(str(tmp_path), train=False, download=False)
    assert "\n" not in str(info.value)

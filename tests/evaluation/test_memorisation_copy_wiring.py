"""The registered memorisation metric's copy test, wired: which space its distances are taken in
(pixels with shifts and flips, or features), which null it is calibrated on (held-out real, or
leave-one-out training), when it is stratified by class, and which options reach it.

The training sets hold 16 images, no more than the copy search's candidate lists, so the
suite's search is exhaustive and its distances must equal a brute-force numpy search over every
shift (edge-replicated) and flip, written here independently. Every expected value is the copy
test applied to those brute-force distances: a set swapped, a space or null mixed up, or an
option dropped changes the counts below the threshold.
"""

import numpy as np
import pytest
import torch

from gan_suite.evaluation.metrics.copy_detection import copy_test, null_rank
from gan_suite.evaluation.metrics.memorisation import memorisation_report
from gan_suite.evaluation.metrics.registry import EvaluationContext, default_metrics, get_metric
from gan_suite.evaluation.protocol import compute_metrics
from gan_suite.evaluation.streaming import FeatureSet

SIDE = 8


def _images(n: int, channels: int, seed: int, contrast: float = 1.0) -> torch.Tensor:
    """[n, channels, 8, 8] float16 images with values uniform in [-contrast, contrast]."""
    g = torch.Generator().manual_seed(seed)
    return ((torch.rand(n, channels, SIDE, SIDE, generator=g) * 2 - 1) * contrast).half()


def _features(n: int, seed: int, offset: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(1000 + seed)
    return torch.randn(n, 5, generator=g) + offset


def _shift(images: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Images translated by (dy, dx) pixels, the vacated border filled with the edge (numpy)."""
    x = images.double().numpy()
    p = max(abs(dy), abs(dx))
    padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), mode="edge")
    return torch.from_numpy(padded[..., p - dy : p - dy + SIDE, p - dx : p - dx + SIDE].copy()).half()


def _brute_distances(queries, refs, max_shift: int, flips: bool, exclude_self: bool = False) -> np.ndarray:
    """Each query's smallest RMS difference to a reference over every shift up to max_shift
    (edge-replicated) and, with flips, of the mirrored query too: [Q] float64."""
    q, r = queries.double().numpy(), refs.double().numpy()
    variants = [q, q[..., ::-1]] if flips else [q]
    s = max_shift
    best = np.full((len(q), len(r)), np.inf)
    for v in variants:
        padded = np.pad(v, ((0, 0), (0, 0), (s, s), (s, s)), mode="edge")
        for dy in range(2 * s + 1):
            for dx in range(2 * s + 1):
                crop = padded[..., dy : dy + SIDE, dx : dx + SIDE].reshape(len(q), 1, -1)
                rms = np.sqrt(((crop - r.reshape(1, len(r), -1)) ** 2).mean(-1))
                best = np.minimum(best, rms)
    if exclude_self:
        np.fill_diagonal(best, np.inf)
    return best.min(1)


def _brute_feature_distances(queries, refs, exclude_self: bool = False) -> np.ndarray:
    d = np.sqrt(((queries.double().numpy()[:, None] - refs.double().numpy()[None]) ** 2).sum(-1))
    if exclude_self:
        np.fill_diagonal(d, np.inf)
    return d.min(1)


def _expected(gen: np.ndarray, null: np.ndarray, gen_groups=None, null_groups=None, **options) -> dict:
    """copy_test on the brute-force distances, after checking that no distance sits so close to
    a threshold that float32 rounding could move it across."""
    gg = np.zeros(len(gen), int) if gen_groups is None else np.asarray(gen_groups)
    ng = np.zeros(len(null), int) if null_groups is None else np.asarray(null_groups)
    for group in np.unique(gg):
        pool = np.sort(null[ng == group])
        if len(pool):
            threshold = pool[null_rank(len(pool), options.get("quantile", 0.01)) - 1]
            assert np.abs(gen[gg == group] - threshold).min() > 1e-4, "a distance ties the threshold"
    as_tensor = (lambda a: None if a is None else torch.as_tensor(np.asarray(a)))
    return copy_test(torch.from_numpy(gen), torch.from_numpy(null), generated_groups=as_tensor(gen_groups),
                     null_groups=as_tensor(null_groups), **options)


def _run(fake, train, heldout=None, options=None, out_dir=None):
    notes = []
    values = compute_metrics(
        ["memorisation"], fake=fake, real=heldout if heldout is not None else train, train=train, heldout=heldout,
        context=EvaluationContext(options=options or {}), out_dir=out_dir, log=notes.append,
    )
    return values, notes


def _assert_copy_test(values: dict, expected: dict) -> None:
    for key in ("copy_rate", "copy_rate_null", "copy_excess", "copy_p_value", "copying_flagged"):
        assert values[key] == pytest.approx(expected[key], rel=1e-12, abs=0), key
    assert values["copy_excess_ci"] == pytest.approx(expected["copy_excess_ci"], rel=1e-12, abs=0)
    verdict = values["verdicts"]["copying"]
    assert verdict["n_generated"] == expected["n_generated"] and verdict["n_null"] == expected["n_null"]
    assert verdict["n_untested"] == expected["n_untested"]
    assert verdict["samples_below_threshold"] == round(expected["copy_rate"] * expected["n_generated"])


@pytest.fixture(scope="module")
def grey():
    """16 training, 99 held-out and 40 generated one-channel images: the first 8 generated are
    the training images 0-7 shifted by one pixel; their features say nothing about it (far off)."""
    train_px, heldout_px = _images(16, 1, seed=0), _images(99, 1, seed=1)
    fake_px = torch.cat([_shift(train_px[:8], 1, 0), _images(32, 1, seed=2)])
    return {
        "train": FeatureSet(_features(16, 0), pixels=train_px),
        "heldout": FeatureSet(_features(99, 1), pixels=heldout_px),
        "fake": FeatureSet(_features(40, 2, offset=30.0), pixels=fake_px),
    }


def test_pixel_copies_are_found_in_pixel_space_against_the_held_out_null(grey):
    values, notes = _run(grey["fake"], grey["train"], grey["heldout"])
    gen = _brute_distances(grey["fake"].pixels, grey["train"].pixels, 2, False)
    null = _brute_distances(grey["heldout"].pixels, grey["train"].pixels, 2, False)
    assert (gen[:8] < np.sort(null)[0]).all()  # the shifted copies sit below every fresh image
    _assert_copy_test(values, _expected(gen, null))
    assert values["copy_rate"] >= 8 / 40 and values["copying_flagged"]
    verdict = values["verdicts"]["copying"]
    assert verdict["space"] == "pixels 8x8, shifts up to 2 px"  # one channel: no flips by default
    assert verdict["null"] == "held-out real (99)" and verdict["level"] == 0.01
    assert verdict["threshold_distance"] == pytest.approx(np.sort(null)[0], abs=1e-3)
    assert notes == []
    # the set-level statistics come from the features, each set in its place
    report = memorisation_report(grey["train"].features, grey["heldout"].features, grey["fake"].features)
    for key, value in report.items():
        assert values[key] == value, key
    for internal in ("n_generated", "n_null", "n_untested", "stratified", "copy_threshold"):
        assert internal not in values


def test_without_pixels_the_copies_are_sought_among_the_features(grey):
    fake_features = torch.cat([grey["train"].features[4:10], _features(34, 3)])  # 6 feature copies
    fake, train, heldout = FeatureSet(fake_features), FeatureSet(grey["train"].features), FeatureSet(grey["heldout"].features)
    values, _ = _run(fake, train, heldout)
    gen = _brute_feature_distances(fake_features, train.features)
    null = _brute_feature_distances(heldout.features, train.features)
    _assert_copy_test(values, _expected(gen, null))
    assert values["copy_rate"] >= 6 / 40
    assert values["verdicts"]["copying"]["space"] == "features (Euclidean)"
    # the pixel-copy set's features are far from everything: no copies there
    far, _ = _run(FeatureSet(grey["fake"].features), train, heldout)
    assert far["copy_rate"] == 0.0 and not far["copying_flagged"]


def test_shifts_and_quantile_and_level_reach_the_copy_test(grey):
    options = {"copy_max_shift": 0, "copy_quantile": 0.05, "significance": 0.2}
    values, _ = _run(grey["fake"], grey["train"], grey["heldout"], options)
    gen = _brute_distances(grey["fake"].pixels, grey["train"].pixels, 0, False)
    null = _brute_distances(grey["heldout"].pixels, grey["train"].pixels, 0, False)
    _assert_copy_test(values, _expected(gen, null, quantile=0.05, level=0.2))
    assert values["copy_rate_null"] == 5 / 100  # r = round(0.05 * 100)
    verdict = values["verdicts"]["copying"]
    assert verdict["space"] == "pixels 8x8, shifts up to 0 px" and verdict["level"] == 0.2
    assert verdict["statistic"].endswith("the 0.05 quantile of the null distances")
    # a level no p-value reaches: the copies are counted but not flagged
    strict, _ = _run(grey["fake"], grey["train"], grey["heldout"], {"significance": 1e-300})
    assert strict["copy_rate"] >= 8 / 40 and not strict["copying_flagged"]


def test_the_interval_seed_is_the_evaluation_seed(grey):
    gen = _brute_distances(grey["fake"].pixels, grey["train"].pixels, 2, False)
    null = _brute_distances(grey["heldout"].pixels, grey["train"].pixels, 2, False)
    seeded, _ = _run(grey["fake"], grey["train"], grey["heldout"], {"seed": 7})
    _assert_copy_test(seeded, _expected(gen, null, seed=7))
    default, _ = _run(grey["fake"], grey["train"], grey["heldout"])
    assert default["copy_excess_ci"] != seeded["copy_excess_ci"]


@pytest.mark.parametrize("channels, flips_option, flips_used", [(3, None, True), (1, None, False), (4, None, False), (3, False, False), (1, True, True)])
def test_mirrored_copies_count_where_flips_are_natural(channels, flips_option, flips_used):
    train_px = _images(16, channels, seed=4)
    fake_px = torch.cat([train_px[:8].flip(-1), _images(32, channels, seed=5)])
    heldout_px = _images(99, channels, seed=6)
    sets = [FeatureSet(_features(len(p), i), pixels=p) for i, p in enumerate([fake_px, train_px, heldout_px])]
    options = {} if flips_option is None else {"copy_flips": flips_option}
    values, _ = _run(*sets, options)
    gen = _brute_distances(fake_px, train_px, 2, flips_used)
    null = _brute_distances(heldout_px, train_px, 2, flips_used)
    _assert_copy_test(values, _expected(gen, null))
    space = values["verdicts"]["copying"]["space"]
    assert space == f"pixels 8x8, shifts up to 2 px{', horizontal flips' if flips_used else ''}"
    assert (values["copy_rate"] >= 8 / 40) == flips_used  # random images are not their own mirror


@pytest.mark.parametrize("heldout_pixels", [False, True])
def test_without_usable_held_out_images_the_null_is_leave_one_out_training(grey, heldout_pixels):
    # held-out data without pixels cannot calibrate a pixel-space distance; no held-out data neither
    heldout = FeatureSet(grey["heldout"].features) if not heldout_pixels else None
    values, notes = _run(grey["fake"], grey["train"], heldout)
    gen = _brute_distances(grey["fake"].pixels, grey["train"].pixels, 2, False)
    null = _brute_distances(grey["train"].pixels, grey["train"].pixels, 2, False, exclude_self=True)
    _assert_copy_test(values, _expected(gen, null))
    assert values["copy_rate_null"] == 1 / 17
    kind = "leave-one-out training (16; no held-out split)"
    assert values["verdicts"]["copying"]["null"] == kind
    assert notes == [f"copy test: no held-out real data, the null is the {kind}"]
    assert ("C_T" in values) == (heldout is not None)  # the set-level statistics need held-out features


def test_leave_one_out_null_in_feature_space(grey):
    fake_features = torch.cat([grey["train"].features[:5], _features(35, 13)])
    values, notes = _run(FeatureSet(fake_features), FeatureSet(grey["train"].features))
    gen = _brute_feature_distances(fake_features, grey["train"].features)
    null = _brute_feature_distances(grey["train"].features, grey["train"].features, exclude_self=True)
    _assert_copy_test(values, _expected(gen, null))
    assert values["verdicts"]["copying"]["null"] == "leave-one-out training (16; no held-out split)" and len(notes) == 1


@pytest.fixture(scope="module")
def two_classes():
    """Class 0 has low contrast, so its images sit much closer to each other than class 1's;
    the 40 generated images are fresh class-0 images (no copies)."""
    train_px = torch.cat([_images(8, 1, seed=8, contrast=0.2), _images(8, 1, seed=9)])
    heldout_px = torch.cat([_images(50, 1, seed=10, contrast=0.2), _images(50, 1, seed=11)])
    fake_px = _images(40, 1, seed=12, contrast=0.2)
    labels = {"train": torch.tensor([0] * 8 + [1] * 8), "heldout": torch.tensor([0] * 50 + [1] * 50), "fake": torch.zeros(40, dtype=torch.long)}
    pixels = {"train": train_px, "heldout": heldout_px, "fake": fake_px}
    return {k: FeatureSet(_features(len(pixels[k]), i), pixels=pixels[k], labels=labels[k]) for i, k in enumerate(pixels)}


def test_labelled_sets_are_judged_against_their_own_class(two_classes):
    s = two_classes
    gen = _brute_distances(s["fake"].pixels, s["train"].pixels, 2, False)
    null = _brute_distances(s["heldout"].pixels, s["train"].pixels, 2, False)
    options = {"copy_quantile": 0.2}
    values, _ = _run(s["fake"], s["train"], s["heldout"], options)
    expected = _expected(gen, null, s["fake"].labels.numpy(), s["heldout"].labels.numpy(), quantile=0.2)
    _assert_copy_test(values, expected)
    assert values["copy_rate_null"] == 10 / 51  # r = round(0.2 * 51) of class 0's 50
    verdict = values["verdicts"]["copying"]
    assert verdict["null"] == "held-out real (100), per class of the classifier"
    assert set(verdict["threshold_distance"]) == {0}
    # pooled, the class-1 distances lift the threshold and the fresh class-0 images look like copies
    pooled, _ = _run(s["fake"], s["train"], s["heldout"], {**options, "copy_stratify": False})
    _assert_copy_test(pooled, _expected(gen, null, quantile=0.2))
    assert pooled["copy_rate_null"] == 20 / 101 and pooled["verdicts"]["copying"]["null"] == "held-out real (100)"
    assert pooled["copy_rate"] > values["copy_rate"] + 0.1


@pytest.mark.parametrize("unlabelled", ["heldout", "fake"])
def test_stratification_needs_labels_on_both_sides(two_classes, unlabelled):
    s = dict(two_classes)
    s[unlabelled] = FeatureSet(s[unlabelled].features, pixels=s[unlabelled].pixels)
    values, _ = _run(s["fake"], s["train"], s["heldout"], {"copy_quantile": 0.2})
    gen = _brute_distances(s["fake"].pixels, s["train"].pixels, 2, False)
    null = _brute_distances(s["heldout"].pixels, s["train"].pixels, 2, False)
    _assert_copy_test(values, _expected(gen, null, quantile=0.2))
    verdict = values["verdicts"]["copying"]
    assert verdict["null"] == "held-out real (100)" and isinstance(verdict["threshold_distance"], float)


def test_leave_one_out_null_keeps_the_training_labels(two_classes):
    s = two_classes
    values, _ = _run(s["fake"], s["train"], None, {"copy_quantile": 0.2})
    gen = _brute_distances(s["fake"].pixels, s["train"].pixels, 2, False)
    null = _brute_distances(s["train"].pixels, s["train"].pixels, 2, False, exclude_self=True)
    _assert_copy_test(values, _expected(gen, null, s["fake"].labels.numpy(), s["train"].labels.numpy(), quantile=0.2))
    assert values["copy_rate_null"] == pytest.approx(2 / 9, rel=1e-12)  # r = round(0.2 * 9) of class 0's 8 training images
    assert values["verdicts"]["copying"]["null"].endswith(", per class of the classifier")


def test_pixels_on_one_side_only_fall_back_to_features(grey):
    train = FeatureSet(grey["train"].features)  # a training split without images
    values, _ = _run(grey["fake"], train, grey["heldout"])
    gen = _brute_feature_distances(grey["fake"].features, train.features)
    null = _brute_feature_distances(grey["heldout"].features, train.features)
    _assert_copy_test(values, _expected(gen, null))
    assert values["verdicts"]["copying"]["space"] == "features (Euclidean)"


@pytest.mark.parametrize("n_heldout", [1, 2])
def test_set_level_statistics_need_two_held_out_samples(grey, n_heldout):
    heldout = FeatureSet(grey["heldout"].features[:n_heldout])
    values, _ = _run(FeatureSet(grey["fake"].features), FeatureSet(grey["train"].features), heldout)
    assert values["verdicts"]["copying"]["n_null"] == n_heldout
    assert ("C_T" in values) == (n_heldout == 2)


def test_one_training_sample_is_enough_for_the_copy_test(grey):
    fake, train = FeatureSet(grey["train"].features[:1].repeat(30, 1)), FeatureSet(grey["train"].features[:1])
    values, _ = _run(fake, train, FeatureSet(grey["heldout"].features[:1]))
    assert values["copy_rate"] == 1.0 and "C_T" not in values  # 30 exact copies of the only image


def test_leave_one_out_null_of_two_training_samples(grey):
    train = grey["train"].features[:2]
    values, _ = _run(FeatureSet(torch.cat([train, _features(28, 14)])), FeatureSet(train))
    assert values["verdicts"]["copying"]["n_null"] == 2
    assert values["verdicts"]["copying"]["threshold_distance"] == pytest.approx(float((train[0] - train[1]).norm()), rel=1e-6)


def test_gallery_title_tells_the_verdict(grey, monkeypatch):
    import gan_suite.evaluation.metrics.gallery as gallery

    titles = []
    monkeypatch.setattr(gallery, "copy_gallery", lambda *args, title, **kwargs: titles.append(title) or "gallery.png")
    copied, _ = _run(grey["fake"], grey["train"], grey["heldout"], out_dir="unused")
    fresh_fake = FeatureSet(grey["fake"].features[8:], pixels=grey["fake"].pixels[8:])
    fresh, _ = _run(fresh_fake, grey["train"], grey["heldout"], out_dir="unused")
    assert copied["copying_flagged"] and not fresh["copying_flagged"]
    assert titles[0].endswith("copying FLAGGED") and titles[1].endswith("copying not flagged")
    assert titles[0].startswith(f"copy test: rate {copied['copy_rate']:.2%} (fresh data: 1.00%), p = ")


def test_gallery_only_with_pictures_and_a_folder(grey, tmp_path):
    values, _ = _run(grey["fake"], grey["train"], grey["heldout"], out_dir=str(tmp_path))
    assert values["files"]["copy_gallery"] == str(tmp_path / "copy_gallery.png") and (tmp_path / "copy_gallery.png").is_file()
    no_pixels, _ = _run(FeatureSet(grey["fake"].features), FeatureSet(grey["train"].features), FeatureSet(grey["heldout"].features),
                        out_dir=str(tmp_path / "features"))
    assert "files" not in no_pixels and not (tmp_path / "features").exists()
    no_folder, _ = _run(grey["fake"], grey["train"], grey["heldout"])
    assert "files" not in no_folder


def test_without_a_training_split_nothing_is_computed(grey):
    values, notes = _run(grey["fake"], None, grey["heldout"])
    assert values == {} and notes == ["memorisation skipped: needs the training split (the checkpoint's data module)"]


def test_memorisation_declaration():
    spec = get_metric("memorisation")
    outputs = {o.key: (o.higher_is_better, o.scale) for o in spec.outputs}
    assert outputs["copy_rate"] == (False, 100) and outputs["copy_excess"] == (False, 100)
    assert outputs["copy_rate_null"] == (None, 100) and outputs["copy_excess_ci"] == (None, 100)
    assert all(outputs[k] == (None, 1) for k in ("copy_p_value", "copying_flagged", "C_T", "unauthentic_generated"))
    assert spec.verdict == "copying_flagged" and spec.needs == {"train", "heldout", "pixels", "labels"}
    assert isinstance(spec.bootstrap, str)  # no resampling: the copy test has its own interval
    assert "memorisation" in default_metrics(EvaluationContext(extractor="mnist_classifier"))
    assert "memorisation" in default_metrics(EvaluationContext(extractor="vgg16"))  # a plug-in extractor
    assert "memorisation" not in default_metrics(EvaluationContext(extractor="raw2d"))

"""The real-feature cache: a stored file is read back instead of recomputing; damaged files are recomputed."""

import torch

from gan_suite.evaluation.real_cache import cached_features
from gan_suite.evaluation.streaming import FeatureSet


def _features(value: float) -> FeatureSet:
    return FeatureSet(torch.full((4, 3), value), logits=torch.full((4, 2), -value), labels=torch.arange(4))


def test_second_call_reads_the_file_and_does_not_compute(tmp_path):
    computed = []

    def compute(value):
        computed.append(value)
        return _features(value)

    first, hit = cached_features("k", lambda: compute(1.0), str(tmp_path))
    assert not hit and computed == [1.0] and torch.equal(first.features, torch.full((4, 3), 1.0))
    second, hit = cached_features("k", lambda: compute(2.0), str(tmp_path))
    assert hit and computed == [1.0]
    assert torch.equal(second.features, first.features) and torch.equal(second.logits, first.logits)
    assert torch.equal(second.labels, first.labels)
    other, hit = cached_features("other", lambda: compute(3.0), str(tmp_path))
    assert not hit and computed == [1.0, 3.0] and other.features[0, 0] == 3.0


def test_a_damaged_or_foreign_file_is_recomputed(tmp_path):
    (tmp_path / "k.pt").write_bytes(b"not a tensor file")
    fs, hit = cached_features("k", lambda: _features(5.0), str(tmp_path))
    assert not hit and fs.features[0, 0] == 5.0
    torch.save({"something": torch.zeros(1)}, tmp_path / "j.pt")
    fs, hit = cached_features("j", lambda: _features(6.0), str(tmp_path))
    assert not hit and fs.features[0, 0] == 6.0
    again, hit = cached_features("j", lambda: _features(7.0), str(tmp_path))
    assert hit and again.features[0, 0] == 6.0  # the recomputed features replaced the foreign file

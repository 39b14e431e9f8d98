"""StepIndexedSampler: rank partition of the global batch, and resumption at a training step."""

import pytest
import torch

from gan_suite.data.sampler import StepIndexedSampler
from gan_suite.errors import ConfigError

N, B = 103, 8  # dataset size not a multiple of the batch: the tail of each permutation is skipped


def per_step(sampler, steps_counter):
    """Run one iter() of ``sampler``; returns {step: indices}, advancing ``steps_counter`` like training does."""
    out, it = {}, iter(sampler)
    for _ in range(sampler.steps_per_epoch):
        step = steps_counter[0]
        out[step] = [next(it) for _ in range(sampler.per_rank_batch)]
        steps_counter[0] += 1
    return out


def test_two_ranks_partition_the_single_process_batch():
    single = StepIndexedSampler(N, 2 * B, 1, 0, seed=3, start_step=lambda: 0)
    ranks = [StepIndexedSampler(N, B, 2, r, seed=3, start_step=lambda: 0) for r in (0, 1)]
    assert single.steps_per_epoch == ranks[0].steps_per_epoch == N // (2 * B)
    got_single = per_step(single, [0])
    got_ranks = [per_step(s, [0]) for s in ranks]
    for step, batch in got_single.items():
        a, b = set(got_ranks[0][step]), set(got_ranks[1][step])
        assert len(a) == len(b) == B
        assert not a & b
        assert a | b == set(batch)
        assert sorted(batch) == sorted(single.global_batch_indices(step).tolist())


def test_resume_at_step_t_matches_uninterrupted_run():
    counter = [0]
    uninterrupted = StepIndexedSampler(N, B, 1, 0, seed=7, start_step=lambda: counter[0])
    seen = {}
    for _ in range(3):  # three passes: crosses two permutation boundaries
        seen.update(per_step(uninterrupted, counter))
    for t in (0, 5, uninterrupted.steps_per_epoch, 2 * uninterrupted.steps_per_epoch + 3):
        resumed = StepIndexedSampler(N, B, 1, 0, seed=7, start_step=lambda t=t: t)
        first = per_step(resumed, [t])
        for step, batch in first.items():
            if step in seen:
                assert batch == seen[step], step


def test_epoch_is_a_permutation_without_repeats():
    sampler = StepIndexedSampler(N, B, 1, 0, seed=0, start_step=lambda: 0)
    indices = list(iter(sampler))
    assert len(indices) == len(sampler) == (N // B) * B
    assert len(set(indices)) == len(indices)
    assert set(indices) <= set(range(N))
    other_seed = list(iter(StepIndexedSampler(N, B, 1, 0, seed=1, start_step=lambda: 0)))
    assert indices != other_seed


def test_batch_larger_than_dataset_is_a_config_error():
    with pytest.raises(ConfigError):
        StepIndexedSampler(10, 8, 2, 0, seed=0, start_step=lambda: 0)


def test_set_epoch_does_not_change_the_order():
    sampler = StepIndexedSampler(N, B, 1, 0, seed=2, start_step=lambda: 0)
    before = list(iter(sampler))
    sampler.set_epoch(5)
    assert list(iter(sampler)) == before
    assert torch.equal(sampler.global_batch_indices(1), torch.tensor(before[B : 2 * B]))

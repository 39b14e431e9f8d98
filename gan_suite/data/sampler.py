"""Index sampler whose output depends only on (seed, training step, rank).

Lightning resumes a map-style DataLoader at the start of the interrupted epoch, so a run that is
stopped and resumed would see different minibatches than an uninterrupted run. GAN training is
step-based, so this sampler derives the data order from the global training step instead of
Lightning's epoch counter: the data stream is a concatenation of seeded permutations of the
dataset, and step ``t`` consumes the slice ``[t * G, (t + 1) * G)`` of that stream, where
``G = per_rank_batch * world_size``. Rank ``r`` takes every ``world_size``-th element of the
slice (like ``DistributedSampler``), so the union of all ranks' batches at step ``t`` is exactly
the batch a single process with ``G`` samples would draw.

It subclasses ``DistributedSampler`` only so that Lightning recognises it as distributed-aware and
does not replace it.
"""

from __future__ import annotations

from typing import Callable, Iterator

import torch
from torch.utils.data import DistributedSampler

from gan_suite.errors import ConfigError
from gan_suite.seeding import DATA_ORDER, derive_seed


class StepIndexedSampler(DistributedSampler):
    """Yields the per-rank sample indices of one pass of ``steps_per_epoch`` training steps.

    Args:
        dataset_size: number of samples N in the dataset.
        per_rank_batch: samples one rank consumes per training step (``k * B``).
        world_size: number of ranks.
        rank: this rank.
        seed: seed of the permutations.
        start_step: callable returning the training step the next ``iter()`` starts at
            (read at ``iter()`` time so that resumed runs continue where they stopped).
    """

    def __init__(
        self,
        dataset_size: int,
        per_rank_batch: int,
        world_size: int,
        rank: int,
        seed: int,
        start_step: Callable[[], int],
    ) -> None:
        # DistributedSampler.__init__ is not called: it wants a dataset and a process group.
        self.num_replicas = world_size
        self.rank = rank
        self.seed = seed
        self.epoch = 0
        self.shuffle = True
        self.drop_last = True
        self.dataset_size = dataset_size
        self.per_rank_batch = per_rank_batch
        self.global_batch = per_rank_batch * world_size
        self.start_step = start_step
        if self.global_batch > dataset_size:
            raise ConfigError(
                f"a training step needs {self.global_batch} samples (batch x d_steps x ranks) "
                f"but the dataset has only {dataset_size}"
            )
        self.steps_per_epoch = dataset_size // self.global_batch

    def set_epoch(self, epoch: int) -> None:
        """Ignored: the order is a function of the training step, not of Lightning's epoch."""
        self.epoch = epoch

    def _permutation(self, data_epoch: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(derive_seed(self.seed, DATA_ORDER, data_epoch))
        return torch.randperm(self.dataset_size, generator=gen)

    def global_batch_indices(self, step: int) -> torch.Tensor:
        """Indices of all ranks' samples at training ``step``: shape [G]."""
        data_epoch, offset = divmod(step, self.steps_per_epoch)
        start = offset * self.global_batch
        return self._permutation(data_epoch)[start : start + self.global_batch]

    def __iter__(self) -> Iterator[int]:
        first = self.start_step()
        perm_epoch, perm = -1, None
        for step in range(first, first + self.steps_per_epoch):
            data_epoch, offset = divmod(step, self.steps_per_epoch)
            if data_epoch != perm_epoch:
                perm_epoch, perm = data_epoch, self._permutation(data_epoch)
            start = offset * self.global_batch
            chunk = perm[start : start + self.global_batch]
            yield from chunk[self.rank :: self.num_replicas].tolist()

    def __len__(self) -> int:
        return self.steps_per_epoch * self.per_rank_batch

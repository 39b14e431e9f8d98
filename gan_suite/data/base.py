"""Base LightningDataModule of the suite: in-memory tensors, step-indexed sampling.

Every data module yields batches ``(x, y)`` with ``x`` float32 in [-1, 1] of shape
``[k * B, *sample_shape]`` (``k`` discriminator steps per training step, ``B`` the minibatch) and
``y`` the integer labels ``[k * B]`` (``-1`` where a dataset has none).

Two ways to serve them, with the same batches (the order is a function of (seed, step, rank),
see :mod:`gan_suite.data.sampler`): a DataLoader over a :class:`StepIndexedSampler` (the
default), or, with ``device_cache=True``, :class:`DeviceCachedBatches`, which keeps the samples
on the training device and gathers each batch there with one indexing operation: no DataLoader,
no per-sample indices in Python, no host-to-device copy per step.

Stacked seeds (a training module that trains S seeds at once sets ``stacked_seeds``): the
batches are [S, k * B, ...] and [S, k * B], seed ``s``'s slice the batch of this data module built
with ``seed=s`` (its own synthetic data and order), see :class:`StackedBatches`.
"""

from __future__ import annotations

import copy
import inspect
from typing import Optional, Sequence

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from gan_suite.data.sampler import StepIndexedSampler


def uint8_to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N,C,H,W] in 0..255 -> float32 in [-1, 1]."""
    return images.float().div_(127.5).sub_(1.0)


def unit_range_to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [N,C,H,W] in [-1, 1] -> uint8 0..255 (values outside are clamped)."""
    return images.add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)


def resize_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize uint8 images [N,C,H,W] to [N,C,size,size] with antialiased bilinear interpolation."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    from torchvision.transforms.v2 import functional as F

    return F.resize(images, [size, size], antialias=True)


class TensorSampleDataset(Dataset):
    """Samples held in memory; fetched a whole batch at a time.

    Args:
        samples: uint8 images [N,C,H,W] (converted to [-1, 1] when fetched) or float [N, D]
            points (returned as they are).
        labels: int64 [N] or None (then -1 is returned).
    """

    def __init__(self, samples: torch.Tensor, labels: Optional[torch.Tensor] = None) -> None:
        self.samples = samples
        self.labels = labels if labels is not None else torch.full((len(samples),), -1, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.samples)

    def _convert(self, x: torch.Tensor) -> torch.Tensor:
        return uint8_to_unit_range(x) if x.dtype == torch.uint8 else x.float()

    def __getitem__(self, index: int):
        return self._convert(self.samples[index]), self.labels[index]

    def __getitems__(self, indices: Sequence[int]):
        # Batched fetching: one gather per batch instead of one Python call per sample.
        idx = torch.as_tensor(indices, dtype=torch.long)
        return self._convert(self.samples[idx]), self.labels[idx]


def _pass_through(batch):
    return batch


class GANDataModule(pl.LightningDataModule):
    """Base class. Subclasses implement :meth:`load_split` and set ``sample_shape``.

    Args:
        batch_size: minibatch size B of one discriminator or generator update (per rank).
        num_workers: DataLoader worker processes (0 loads in the main process).
        seed: seed of the data order (and of synthetic data).
        device_cache: hold the training split on the training device and gather batches there
            instead of using a DataLoader (for data that fits in device memory: the samples are
            stored as the dataset holds them, uint8 images take 1 byte a pixel). Same batches in
            the same order, DDP sharding included; ``num_workers`` is then unused. Subclasses
            that do not take the argument can set the attribute ``device_cache`` before fitting.
    """

    #: shape of one sample: (C, H, W) for images, (D,) for points. Set by subclasses.
    sample_shape: tuple = ()
    #: number of label classes, or None for unlabelled data.
    num_classes: Optional[int] = None
    #: short name used in metrics files and caches.
    name: str = "data"

    #: serve batches from a copy of the training split on the training device (see above).
    device_cache: bool = False

    def __init__(self, batch_size: int = 64, num_workers: int = 0, seed: int = 0, device_cache: bool = False) -> None:
        super().__init__()
        if batch_size < 1:
            from gan_suite.errors import ConfigError

            raise ConfigError(f"data.batch_size must be >= 1, got {batch_size}")
        # records the subclass arguments too (rebuilt for evaluation); logger=False keeps them out of
        # the logged hyper-parameters, where a data "seed" would clash with the model's "seed"
        self.save_hyperparameters(logger=False)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.device_cache = device_cache
        self._device_copy: Optional[DeviceCachedBatches] = None
        #: discriminator updates per training step; the training module sets it in ``setup``.
        self.minibatches_per_step = 1
        #: seeds trained at once (stacked); the training module sets it in ``setup``.
        self.stacked_seeds: Optional[list] = None
        self._splits: dict = {}

    # -- what subclasses provide --------------------------------------------------------------
    def load_split(self, split: str) -> TensorSampleDataset:
        """Return the dataset of ``split`` ('train' or 'heldout')."""
        raise NotImplementedError

    # -- shared machinery ----------------------------------------------------------------------
    def split(self, split: str) -> TensorSampleDataset:
        """The cached dataset of ``split`` ('train' or 'heldout')."""
        if split not in self._splits:
            self._splits[split] = self.load_split(split)
        return self._splits[split]

    def setup(self, stage: Optional[str] = None) -> None:
        self.split("train")

    def describe(self) -> dict:
        """Identification of the data for protocols and caches."""
        return {"name": self.name, "sample_shape": list(self.sample_shape)}

    def train_dataloader(self):
        if self.stacked_seeds:
            return StackedBatches([self._seed_copy(seed).train_dataloader() for seed in self.stacked_seeds])
        dataset = self.split("train")
        trainer = self.trainer
        world_size = trainer.world_size if trainer is not None else 1
        rank = trainer.global_rank if trainer is not None else 0
        module = trainer.lightning_module if trainer is not None else None

        def start_step() -> int:
            return int(getattr(module, "iteration", 0)) if module is not None else 0

        per_rank = self.batch_size * self.minibatches_per_step
        sampler = StepIndexedSampler(len(dataset), per_rank, world_size, rank, self.seed, start_step)
        if self.device_cache:
            device = trainer.strategy.root_device if trainer is not None else torch.device("cpu")
            if self._device_copy is None or self._device_copy.dataset is not dataset or self._device_copy.device != device:
                self._device_copy = DeviceCachedBatches(dataset, device)
            return self._device_copy.with_sampler(sampler)
        return DataLoader(
            dataset,
            batch_size=per_rank,
            sampler=sampler,
            drop_last=True,
            num_workers=self.num_workers,
            collate_fn=_pass_through,
            persistent_workers=False,
        )


    def _seed_copy(self, seed: int) -> "GANDataModule":
        """This data module as built with ``seed`` (same arguments otherwise), attached to the same
        trainer; a training split equal to one already loaded is shared, not held twice."""
        params = inspect.signature(type(self).__init__).parameters
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        args = {k: v for k, v in self.hparams.items() if not k.startswith("_") and (takes_any or k in params)}
        clone = type(self)(**{**args, "seed": int(seed)})
        clone.trainer = self.trainer
        clone.minibatches_per_step = self.minibatches_per_step
        clone.device_cache = self.device_cache
        train = clone.split("train")
        shared = getattr(self, "_shared_train_splits", None)
        if shared is None:
            shared = self._shared_train_splits = []
        for other in shared:
            if _same_samples(other, train):
                clone._splits["train"] = other
                break
        else:
            shared.append(train)
        return clone


def _same_samples(a: Dataset, b: Dataset) -> bool:
    sa, sb = getattr(a, "samples", None), getattr(b, "samples", None)
    if not (isinstance(sa, torch.Tensor) and isinstance(sb, torch.Tensor)) or sa.shape != sb.shape or sa.dtype != sb.dtype:
        return False
    return torch.equal(sa, sb) and torch.equal(a.labels, b.labels)


class StackedBatches:
    """The batches of S seeds' loaders, stacked: iterating yields ``(x [S, k * B, ...], y [S, k * B])``,
    slice i from ``loaders[i]``; as long as the shortest loader."""

    def __init__(self, loaders: Sequence) -> None:
        self.loaders = list(loaders)

    def __len__(self) -> int:
        return min(len(loader) for loader in self.loaders)

    def __iter__(self):
        for batches in zip(*self.loaders):
            yield torch.stack([b[0] for b in batches]), torch.stack([b[1] for b in batches])


class DeviceCachedBatches:
    """The training batches of a :class:`TensorSampleDataset`, gathered on ``device`` (no DataLoader).

    Iterating yields one data epoch of ``sampler.steps_per_epoch`` batches ``(x, y)`` from the
    training step ``sampler.start_step()`` on, exactly the batches (values, order and this rank's
    share) a DataLoader over ``sampler`` yields: step ``t`` takes this rank's every
    ``world_size``-th index of the slice ``[t * G, (t + 1) * G)`` of the seeded permutation
    stream. The permutation is drawn on the CPU (with the sampler's generator) once per data
    epoch and copied to the device (from pinned memory, without waiting for the device); a batch
    is then one gather and, for uint8 images, one conversion to [-1, 1], on the device: nothing
    per step makes the host wait for the GPU.

    Args:
        dataset: the split; its ``samples`` and ``labels`` are copied to ``device`` once.
        device: where batches are made (the training device).
    """

    def __init__(self, dataset: TensorSampleDataset, device: torch.device) -> None:
        self.dataset = dataset
        self.device = torch.device(device)
        self.samples = dataset.samples.to(self.device)
        self.labels = dataset.labels.to(self.device)
        self.sampler: Optional[StepIndexedSampler] = None

    def with_sampler(self, sampler: StepIndexedSampler) -> "DeviceCachedBatches":
        """A view of the same device copy that iterates in ``sampler``'s order."""
        view = copy.copy(self)
        view.sampler = sampler
        return view

    def __len__(self) -> int:
        return self.sampler.steps_per_epoch

    def _to_device(self, indices: torch.Tensor) -> torch.Tensor:
        # from pinned memory, so that the copy does not make the host wait for the GPU's queue
        if self.device.type == "cuda":
            return indices.pin_memory().to(self.device, non_blocking=True)
        return indices.to(self.device)

    def __iter__(self):
        s = self.sampler
        first = s.start_step()
        perm_epoch, perm = -1, None
        for step in range(first, first + s.steps_per_epoch):
            data_epoch, offset = divmod(step, s.steps_per_epoch)
            if data_epoch != perm_epoch:
                perm_epoch, perm = data_epoch, self._to_device(s._permutation(data_epoch))
            start = offset * s.global_batch
            idx = perm[start + s.rank : start + s.global_batch : s.num_replicas]
            yield self.dataset._convert(self.samples[idx]), self.labels[idx]

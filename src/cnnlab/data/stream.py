"""The streaming loader of folder datasets. DataLoader worker processes decode (or read the decoded cache)
and apply the geometric augmentation with torchvision.transforms.v2. For a GPU, batches travel as uint8 (a
quarter of float32's bytes) through pinned memory to the device, where colour jitter, normalisation and
random erasing run batched (data/augment.py), as for the in-memory datasets; for the CPU the workers
finish the batches themselves (the main process only trains).

Reproducibility: the sampler hands each worker (epoch, index, batch) keys; the worker seeds its transform
from (seed, epoch, index) and the batched photometric draws come from (seed, epoch, batch). So a sample's
augmentation does not depend on which worker draws it or on how many workers there are, and a resumed run
sees the same crops.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .augment import AugmentPlan, epoch_draws, erase
from .base import FileList
from .cache import DecodedCache
from .images import decode
from .loader import Normalizer, epoch_permutation


class FolderDataset(Dataset):
    """Indexable by (epoch, index, batch) keys: the image of `files[index]` transformed with a per-sample
    seed; returns (uint8 image, label, epoch, batch)."""

    def __init__(self, files: FileList, transform, channels: int, max_pixels: int, seed: int,
                 cache: DecodedCache | None = None, draft: int | None = None) -> None:
        self.files, self.transform, self.channels = files, transform, channels
        self.max_pixels, self.seed, self.draft = max_pixels, seed, draft
        self.rows = cache.row_indices(files) if cache is not None else None
        self.cache_path = cache.path if cache is not None else None
        self._array = None

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, key: tuple[int, int, int]) -> tuple[torch.Tensor, int, int, int]:
        epoch, index, batch = key
        # the CPU generator only: torch.manual_seed would also queue a lazy CUDA seed, with a formatted
        # stack trace, costing ~1 ms per image
        torch.random.default_generator.manual_seed((self.seed * 1_000_003 + epoch) * 10_000_019 + index)
        if self.rows is not None:
            image = torch.from_numpy(self._cached()[self.rows[index]].copy())
        else:
            image = decode(self.files.path(index), self.channels, self.max_pixels, self.draft)
        return self.transform(image), int(self.files.labels[index]), epoch, batch

    def _cached(self):
        if self._array is None:  # opened lazily, once per worker process
            import numpy as np

            self._array = np.load(self.cache_path, mmap_mode="r")
        return self._array


class EpochBatchSampler(Sampler):
    """Batches of (epoch, index, batch) keys for the epoch and start batch set before iterating."""

    def __init__(self, num_samples: int, batch_size: int, shuffle: bool, drop_last: bool, seed: int) -> None:
        self.num_samples, self.batch_size = num_samples, batch_size
        self.shuffle, self.drop_last, self.seed = shuffle, drop_last, seed
        self.epoch, self.start = 0, 0

    def total(self) -> int:
        if self.drop_last:
            return self.num_samples // self.batch_size
        return -(-self.num_samples // self.batch_size)

    def __len__(self) -> int:
        return self.total() - self.start

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        if self.shuffle:
            order = epoch_permutation(self.num_samples, self.seed, self.epoch).tolist()
        else:
            order = list(range(self.num_samples))
        for batch in range(self.start, self.total()):
            lo = batch * self.batch_size
            yield [(self.epoch, i, batch) for i in order[lo : lo + self.batch_size]]


class BatchFinisher:
    """The collate function. Stacks a batch as uint8; when the batches are for the CPU it also finishes
    them right there in the worker (colour jitter, normalisation, erasing), as torchvision's workers do,
    so the main process only trains. For a GPU the uint8 batch travels and `finish` runs on the device.
    Either way the random draws are a pure function of (seed, epoch, batch)."""

    def __init__(self, plan: AugmentPlan | None, mean: Sequence[float], std: Sequence[float], seed: int,
                 channels_last: bool, in_worker: bool, pca: tuple | None = None) -> None:
        self.pca = pca
        self.plan, self.mean, self.std, self.seed = plan, tuple(mean), tuple(std), seed
        self.channels_last, self.in_worker = channels_last, in_worker
        self._normalizers: dict[str, Normalizer] = {}

    def __call__(self, samples: list) -> tuple:
        labels = torch.tensor([sample[1] for sample in samples], dtype=torch.int64)
        epoch, batch = samples[0][2], samples[0][3]
        if self.in_worker and not (self.plan and (self.plan.color_jitter > 0 or self.plan.pca_lighting > 0)):
            return self._normalized(samples, epoch, batch), labels
        images = torch.stack([sample[0] for sample in samples])
        if self.in_worker:
            return self.finish(images, epoch, batch), labels
        return images, labels, epoch, batch

    def _normalized(self, samples: list, epoch: int, batch: int) -> torch.Tensor:
        """Normalise image by image into the batch: each image stays in the CPU cache for its multiply,
        add and (for channels_last) transposing copy, 2x faster than passes over a 38 MB batch."""
        channels, height, width = samples[0][0].shape
        std = torch.tensor(self.std, dtype=torch.float32).view(-1, 1, 1)
        scale, shift = 1.0 / (255.0 * std), -torch.tensor(self.mean, dtype=torch.float32).view(-1, 1, 1) / std
        memory = torch.channels_last if self.channels_last else torch.contiguous_format
        out = torch.empty(len(samples), channels, height, width, dtype=torch.float32, memory_format=memory)
        for row, sample in zip(out, samples):
            row.copy_(sample[0].float().mul_(scale).add_(shift))
        if self.plan is not None and self.plan.erasing > 0:
            draws = epoch_draws(self.plan, len(samples), self.seed, epoch * 1_000_003 + batch, out.device)
            out = erase(out, self.plan.erasing, draws.need("erase"))
        return out

    def finish(self, images: torch.Tensor, epoch: int, batch: int) -> torch.Tensor:
        device = images.device
        normalize = self._normalizers.get(str(device))
        if normalize is None:
            normalize = self._normalizers[str(device)] = Normalizer(self.mean, self.std, device, self.channels_last,
                                                                       self.pca)
        if self.plan is None:
            return normalize(images)
        draws = epoch_draws(self.plan, images.shape[0], self.seed, epoch * 1_000_003 + batch, device)
        return normalize(images, self.plan, draws)


class StreamBatches:
    """The `Batches` interface over a folder dataset, through DataLoader workers."""

    def __init__(
        self,
        dataset: FolderDataset,
        mean: Sequence[float],
        std: Sequence[float],
        batch_size: int,
        device: torch.device | str = "cpu",
        *,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int = 0,
        channels_last: bool = False,
        augment: AugmentPlan | None = None,
        workers: int = 0,
        pca: tuple | None = None,
    ) -> None:
        self.device = torch.device(device)
        self.batch_size, self.seed = batch_size, seed
        self.dataset = dataset
        self.sampler = EpochBatchSampler(len(dataset), batch_size, shuffle, drop_last, seed)
        plan = augment if augment is not None and augment.active else None
        self.finisher = BatchFinisher(plan, mean, std, seed, channels_last, in_worker=self.device.type == "cpu",
                                      pca=pca)
        self.loader = DataLoader(
            dataset, batch_sampler=self.sampler, num_workers=workers, collate_fn=self.finisher,
            pin_memory=self.device.type == "cuda", persistent_workers=workers > 0,
            prefetch_factor=2 if workers > 0 else None,
        )

    @property
    def num_samples(self) -> int:
        return len(self.dataset)

    def __len__(self) -> int:
        return self.sampler.total()

    def batches(self, epoch: int = 0, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self.sampler.epoch, self.sampler.start = epoch, start
        for item in self.loader:
            if self.finisher.in_worker:
                yield item
                continue
            images, labels, item_epoch, batch = item
            images = images.to(self.device, non_blocking=True)
            yield self.finisher.finish(images, item_epoch, batch), labels.to(self.device, non_blocking=True)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.batches()

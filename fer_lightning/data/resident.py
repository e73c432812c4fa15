"""Batches cut from splits that live on the training device, for GPUs: no DataLoader, no copy per step.

FER-2013 is 83 MB as uint8, so each split goes to the device once and every batch is an index into it. A
DataLoader on a GPU costs a collate of 128 small tensors and a host-to-device copy per step, which at the speed
of the study's small CNN is most of the step. Here the only copy per epoch is the shuffled order (a few hundred
kB), drawn on the CPU from the DataModule's own generator, which every checkpoint saves, so a resumed run draws
the batches an uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch


class ResidentBatches:
    """(uint8 images, labels) batches from tensors already on their device, in ``order()``'s order.

    ``order`` returns the epoch's face indices on the CPU (None: in row order, for validation and testing).
    ``shard`` = (rank, world size) keeps every world-size-th index from the rank's own on, as a
    DistributedSampler does without padding, so DDP processes train on disjoint faces.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int,
                 order: Callable[[], torch.Tensor] | None = None, drop_last: bool = False,
                 shard: tuple[int, int] = (0, 1)) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.images, self.labels, self.batch_size = images, labels, batch_size
        self.order, self.drop_last, (self.rank, self.world_size) = order, drop_last, shard

    def _faces(self) -> int:
        return len(range(self.rank, len(self.labels), self.world_size))

    def __len__(self) -> int:
        faces = self._faces()
        return faces // self.batch_size if self.drop_last else -(-faces // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        index = None
        if self.order is not None:
            index = self.order()[self.rank::self.world_size].to(self.images.device, non_blocking=True)
        for batch in range(len(self)):
            start, stop = batch * self.batch_size, min((batch + 1) * self.batch_size, self._faces())
            if index is None:
                step = slice(self.rank + start * self.world_size, self.rank + stop * self.world_size, self.world_size)
                yield self.images[step], self.labels[step]
            else:
                chosen = index[start:stop]
                yield self.images[chosen], self.labels[chosen]

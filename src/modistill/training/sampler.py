"""The order of training clips and the seed of each clip's augmentation, as a function of (seed, epoch) only.

A resumed step then sees exactly the batches and flips of the uninterrupted run, whatever happened to the global
random generators, the loader's workers or the process in between. Under DDP each rank takes its shard of the
same list, padded with repeats like ``DistributedSampler``.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.distributed as dist
from torch.utils.data import Sampler


def _rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class EpochSampler(Sampler):
    """Yields ``(index, item_seed)`` when ``shuffle`` (training), plain indices otherwise (evaluation).

    Lightning calls :meth:`set_epoch` at the start of every epoch, also after a resume."""

    def __init__(self, n: int, seed: int, shuffle: bool):
        self.n, self.seed, self.shuffle = n, seed, shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        _, world = _rank_world()
        return -(-self.n // world)

    def __iter__(self) -> Iterator:
        rank, world = _rank_world()
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.n, generator=g).tolist() if self.shuffle else list(range(self.n))
        seeds = torch.randint(0, 2**62, (self.n,), generator=g).tolist()
        total = -(-self.n // world) * world
        order = (order * (-(-total // max(len(order), 1))))[:total]
        for i in order[rank:total:world]:
            yield (i, seeds[i]) if self.shuffle else i

"""Several training processes under ``torchrun``: the process group, data shards, one writer.

``torchrun --nproc_per_node=N -m hashpack train ...`` sets RANK / WORLD_SIZE / MASTER_ADDR; then
:func:`world_from_env` joins the group (gloo: hashpack trains on the CPU), each process trains on
its ``DistributedSampler`` shard, DistributedDataParallel averages the gradients, and only rank 0
writes files and prints. Without those variables everything runs in one process, unchanged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class World:
    """This process's place among the training processes (rank 0 of 1 when not distributed)."""

    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes files and prints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def wrap(self, model: nn.Module) -> nn.Module:
        """``model`` itself, or a DistributedDataParallel wrapper that averages its gradients."""
        if not self.distributed:
            return model
        return nn.parallel.DistributedDataParallel(model)

    def steps_per_epoch(self, samples: int, batch_size: int) -> int:
        shard = -(-samples // self.size)  # DistributedSampler pads every shard to the same length
        return -(-shard // batch_size)

    def epoch_order(
        self, samples: int, epoch: int, seed: int, generator: np.random.Generator
    ) -> torch.Tensor:
        """This process's sample order for ``epoch``: a seeded permutation, or its shard of one."""
        if not self.distributed:
            return torch.from_numpy(generator.permutation(samples))
        from torch.utils.data import DistributedSampler

        sampler = DistributedSampler(
            range(samples), num_replicas=self.size, rank=self.rank, shuffle=True, seed=seed
        )
        sampler.set_epoch(epoch)
        return torch.tensor(list(sampler), dtype=torch.int64)

    def barrier(self) -> None:
        if self.distributed:
            torch.distributed.barrier()


def world_from_env() -> World:
    """Join the process group ``torchrun`` describes in the environment (WORLD_SIZE > 1), else one process."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="gloo")
    return World(dist.get_rank(), dist.get_world_size())


def leave(world: World, clean: bool = True) -> None:
    """Wait for every process (``clean``), then leave the group; a no-op in one process."""
    if world.distributed and torch.distributed.is_initialized():
        if clean:
            torch.distributed.barrier()
        torch.distributed.destroy_process_group()

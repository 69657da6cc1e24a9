"""One process or many under ``torchrun``: what the training loops need to know about their place in the group."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Ranks:
    rank: int
    world: int
    distributed: bool  # more than one rank: wrap models in DDP, synchronise before returning
    device: torch.device
    bf16: bool  # autocast to bfloat16

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


@contextmanager
def training_ranks(
    *, batch_size: int, device: str | torch.device | None = None, bf16: bool | None = None
) -> Iterator[Ranks]:
    """Join the torchrun group (NCCL on GPUs, gloo on CPUs) unless one exists, and leave it afterwards.

    ``batch_size`` is global and must split evenly over the ranks; ``device`` defaults to this rank's GPU, else the
    CPU; ``bf16`` defaults to on where the device supports it.
    """
    owns_group = not dist.is_initialized() and int(os.environ.get("WORLD_SIZE", "1")) > 1
    if owns_group:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    try:
        distributed = dist.is_initialized() and dist.get_world_size() > 1
        rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
        if batch_size % world:
            raise ValueError(f"batch_size {batch_size} must be divisible by the {world} ranks")
        if device is None:
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if torch.cuda.is_available() else "cpu"
        device = torch.device(device)
        if bf16 is None:
            bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        yield Ranks(rank, world, distributed, device, bf16)
    finally:
        if owns_group:
            dist.destroy_process_group()

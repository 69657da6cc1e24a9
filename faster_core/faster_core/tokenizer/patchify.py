"""Action patchifier (paper §3.1): temporal groups of h steps x non-uniform groups of action dimensions.

Grouping similar physical quantities a priori (arm joints apart from the gripper, the base apart from the torso)
keeps dimensions with very different distributions out of one patch; temporal grouping raises the information per
token. Each dimension group is zero-padded to the widest group so every patch has the same size ``h * width``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor


@dataclass(frozen=True)
class PatchLayout:
    """How one chunk [H, D] is cut into m x n patches of h steps x ``group_width`` (padded) dimensions."""

    chunk_length: int  # H
    patch_length: int  # h
    group_sizes: tuple[int, ...]  # dimensions per group, in action order; they sum to D

    def __post_init__(self):
        if self.patch_length < 1 or self.chunk_length % self.patch_length:
            raise ValueError(f"patch_length {self.patch_length} must divide chunk_length {self.chunk_length}")
        if not self.group_sizes or any(size < 1 for size in self.group_sizes):
            raise ValueError(f"group_sizes must be positive, got {self.group_sizes}")

    @property
    def action_dim(self) -> int:
        return sum(self.group_sizes)

    @property
    def num_groups(self) -> int:  # n
        return len(self.group_sizes)

    @property
    def group_width(self) -> int:  # the paper's d: every group is padded to the largest
        return max(self.group_sizes)

    @property
    def time_patches(self) -> int:  # m
        return self.chunk_length // self.patch_length

    @property
    def num_patches(self) -> int:  # m * n
        return self.time_patches * self.num_groups

    @property
    def patch_dim(self) -> int:  # h * d
        return self.patch_length * self.group_width

    @cached_property
    def _columns(self) -> Tensor:
        """For each of the n * width padded columns, the action dimension it holds, or D for padding."""
        columns = torch.full((self.num_groups, self.group_width), self.action_dim, dtype=torch.long)
        start = 0
        for group, size in enumerate(self.group_sizes):
            columns[group, :size] = torch.arange(start, start + size)
            start += size
        return columns.flatten()

    @cached_property
    def _valid(self) -> Tensor:
        """Positions of the real dimensions among the padded columns, in action order."""
        return torch.nonzero(self._columns < self.action_dim).squeeze(1)


def patchify(actions: Tensor, layout: PatchLayout) -> Tensor:
    """[B, H, D] -> [B, m*n, h*width]; patch index = time_patch * n + group, each patch row-major (step, dim)."""
    batch = actions.shape[0]
    padded = torch.cat([actions, actions.new_zeros(batch, layout.chunk_length, 1)], dim=2)
    grouped = padded[:, :, layout._columns.to(actions.device)]  # [B, H, n*width]
    grouped = grouped.view(batch, layout.time_patches, layout.patch_length, layout.num_groups, layout.group_width)
    return grouped.permute(0, 1, 3, 2, 4).reshape(batch, layout.num_patches, layout.patch_dim)


def unpatchify(patches: Tensor, layout: PatchLayout) -> Tensor:
    """Exact inverse of ``patchify``: [B, m*n, h*width] -> [B, H, D], padding dropped."""
    batch = patches.shape[0]
    grouped = patches.reshape(batch, layout.time_patches, layout.num_groups, layout.patch_length, layout.group_width)
    grouped = grouped.permute(0, 1, 3, 2, 4).reshape(batch, layout.chunk_length, -1)
    return grouped[:, :, layout._valid.to(patches.device)]

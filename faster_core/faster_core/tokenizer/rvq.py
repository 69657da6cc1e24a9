"""Residual vector quantisation with EMA codebooks (paper §3.1), after lucidrains/vector-quantize-pytorch.

r_1 = z, r_{i+1} = r_i - Q_i(r_i), z_q = sum_i Q_i(r_i): each level quantises what the previous ones left, which
gives the coarse-to-fine code structure. Codebooks are not trained by gradients but as exponential moving averages
of the vectors assigned to them (stable, no codebook loss); codes that fall out of use are re-initialised from the
batch, without which the first level collapses onto a few codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
import torch.distributed as dist
from torch import Tensor, nn


class StatSync(Protocol):
    """How EMA statistics and re-initialised codes are made identical across data-parallel ranks."""

    def all_reduce(self, tensor: Tensor) -> None:
        """Sum ``tensor`` in place over ranks."""

    def broadcast(self, tensor: Tensor) -> None:
        """Overwrite ``tensor`` in place with rank 0's."""


class TorchDistributedSync:
    """torch.distributed when a process group is initialised (DDP under torchrun), otherwise a no-op."""

    @staticmethod
    def _active() -> bool:
        return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1

    def all_reduce(self, tensor: Tensor) -> None:
        if self._active():
            dist.all_reduce(tensor)

    def broadcast(self, tensor: Tensor) -> None:
        if self._active():
            dist.broadcast(tensor, src=0)


class EMACodebook(nn.Module):
    """One quantiser: nearest-code lookup, EMA update with Laplace smoothing, dead-code re-initialisation."""

    def __init__(
        self,
        *,
        dim: int,
        codebook_size: int,
        decay: float = 0.99,  # EMA decay of counts and sums
        eps: float = 1e-5,  # Laplace smoothing of the counts
        dead_code_threshold: float = 0.1,  # dead below this fraction of a uniform code's EMA count
        sync: StatSync | None = None,  # defaults to torch.distributed when initialised
    ):
        super().__init__()
        self.dim, self.codebook_size = dim, codebook_size
        self.decay, self.eps, self.dead_code_threshold = decay, eps, dead_code_threshold
        self.sync: StatSync = sync or TorchDistributedSync()
        # Zero sums and counts: their ratio needs no bias correction, and every code starts dead, so the first
        # training batch re-initialises the random codebook from data.
        self.register_buffer("embed", torch.randn(codebook_size, dim))
        self.register_buffer("embed_avg", torch.zeros(codebook_size, dim))
        self.register_buffer("cluster_size", torch.zeros(codebook_size))

    def indices(self, x: Tensor) -> Tensor:
        """Nearest code (squared l2) for each row of x [N, dim]."""
        distance = x.pow(2).sum(1, keepdim=True) - 2 * x @ self.embed.T + self.embed.pow(2).sum(1)[None]
        return distance.argmin(dim=1)

    def lookup(self, indices: Tensor) -> Tensor:
        return self.embed[indices]

    @torch.no_grad()
    def update(self, x: Tensor, indices: Tensor) -> None:
        """One EMA step on rows x [N, dim] assigned to ``indices``; statistics are summed over ranks first."""
        stats = x.new_zeros(self.codebook_size, 1 + self.dim)  # per code: count, sum of its vectors
        stats.index_add_(0, indices, torch.cat([x.new_ones(x.shape[0], 1), x], dim=1))
        self.sync.all_reduce(stats)
        counts, sums = stats[:, 0], stats[:, 1:]
        self.cluster_size.lerp_(counts, 1 - self.decay)
        self.embed_avg.lerp_(sums, 1 - self.decay)
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (total + self.codebook_size * self.eps) * total
        self.embed.copy_(self.embed_avg / smoothed[:, None])
        self._revive_dead_codes(x, uniform_share=counts.sum() / self.codebook_size)

    def _revive_dead_codes(self, x: Tensor, uniform_share: Tensor) -> None:
        threshold = self.dead_code_threshold * uniform_share
        dead = self.cluster_size < threshold
        if not dead.any():  # the same on every rank, as cluster_size is
            return
        samples = x[torch.randint(x.shape[0], (int(dead.sum()),), device=x.device)]
        self.sync.broadcast(samples)
        self.embed[dead] = samples
        self.embed_avg[dead] = samples * threshold
        self.cluster_size[dead] = threshold


@dataclass(frozen=True)
class RVQOutput:
    quantized: Tensor  # z + sg(z_q - z): z_q forward, identity gradient to z (straight-through)
    codes: Tensor  # [..., N_c] int64
    levels: Tensor  # [N_c, ..., dim]: Q_i(r_i); their sum is z_q


class ResidualVQ(nn.Module):
    """N_c EMA codebooks applied to successive residuals of vectors [..., dim]."""

    def __init__(
        self,
        *,
        dim: int,
        num_quantizers: int = 3,  # N_c
        codebook_size: int = 1024,  # K
        decay: float = 0.99,
        eps: float = 1e-5,
        dead_code_threshold: float = 0.1,
        sync: StatSync | None = None,
    ):
        super().__init__()
        sync = sync or TorchDistributedSync()
        self.layers = nn.ModuleList(
            EMACodebook(
                dim=dim,
                codebook_size=codebook_size,
                decay=decay,
                eps=eps,
                dead_code_threshold=dead_code_threshold,
                sync=sync,
            )
            for _ in range(num_quantizers)
        )

    def set_sync(self, sync: StatSync) -> None:
        for layer in self.layers:
            layer.sync = sync

    def forward(self, z: Tensor, *, update: bool | None = None) -> RVQOutput:
        """Quantise z [..., dim]; EMA-update the codebooks when ``update`` (default: in training mode)."""
        update = self.training if update is None else update
        with torch.autocast(device_type=z.device.type, enabled=False):  # distances in fp32, not bf16
            flat = z.detach().float().reshape(-1, z.shape[-1])
            residual, levels, codes = flat, [], []
            for layer in self.layers:
                indices = layer.indices(residual)
                quantized = layer.lookup(indices)
                if update:
                    layer.update(residual, indices)
                levels.append(quantized)
                codes.append(indices)
                residual = residual - quantized
            z_q = torch.stack(levels).sum(0).view(z.shape)
        return RVQOutput(
            quantized=z + (z_q.to(z.dtype) - z).detach(),
            codes=torch.stack(codes, dim=-1).view(*z.shape[:-1], len(self.layers)),
            levels=torch.stack(levels).view(len(self.layers), *z.shape),
        )

    def decode(self, codes: Tensor) -> Tensor:
        """z_q from codes [..., L] for the first L <= N_c levels (fewer levels: a coarser reconstruction)."""
        return sum(layer.lookup(codes[..., i]) for i, layer in enumerate(self.layers[: codes.shape[-1]]))

"""FASTerVQ training objective (paper Eq. 1) and the orthonormal DCT-II it uses.

The l1 term reconstructs each step; the l1 term on DCT coefficients along time weighs the chunk's overall trend
(low frequencies) on its own; the commitment term keeps the encoder close to the EMA-updated codebooks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor


@lru_cache(maxsize=32)
def _dct_matrix(length: int) -> Tensor:
    n = torch.arange(length, dtype=torch.float64)
    basis = torch.cos(math.pi * (2 * n[None, :] + 1) * n[:, None] / (2 * length)) * math.sqrt(2 / length)
    basis[0] /= math.sqrt(2)
    return basis


def dct_matrix(length: int, *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> Tensor:
    """Orthonormal DCT-II as a [length, length] matrix C: coefficients = C @ signal, signal = C.T @ coefficients.

    C[k, t] = s_k cos(pi (2t + 1) k / (2N)), s_0 = sqrt(1/N), s_k = sqrt(2/N): scipy's ``dct(norm="ortho")``.
    """
    return _dct_matrix(length).to(dtype=dtype, device=device, copy=True)  # the cache must stay unmodified


def dct(x: Tensor, dim: int = -2) -> Tensor:
    """Orthonormal DCT-II of ``x`` along ``dim`` (time, for [B, H, D] actions)."""
    x = x.movedim(dim, -1)
    return (x @ dct_matrix(x.shape[-1], dtype=x.dtype, device=x.device).T).movedim(-1, dim)


def idct(coefficients: Tensor, dim: int = -2) -> Tensor:
    """Inverse of ``dct`` (the orthonormal DCT-III)."""
    c = coefficients.movedim(dim, -1)
    return (c @ dct_matrix(c.shape[-1], dtype=c.dtype, device=c.device)).movedim(-1, dim)


@dataclass(frozen=True)
class LossTerms:
    total: Tensor
    l1: Tensor  # mean |a - a_hat|
    dct_l1: Tensor  # mean |DCT(a) - DCT(a_hat)| along time
    commit: Tensor  # mean (z - sg(z_q))^2, before lambda


def faster_loss(
    actions: Tensor,
    recon: Tensor,
    z: Tensor,
    z_q: Tensor,
    *,
    commitment_weight: float = 0.25,  # lambda (the paper's beta)
    dct_weight: float = 1.0,  # 1 in Eq. 1; 0 ablates the DCT term
) -> LossTerms:
    """Eq. 1 on [B, H, D] normalised actions; norms are means so that terms do not scale with H, D or the batch."""
    actions, recon = actions.float(), recon.float()
    l1 = F.l1_loss(recon, actions)
    dct_l1 = F.l1_loss(dct(recon, dim=1), dct(actions, dim=1))
    commit = F.mse_loss(z.float(), z_q.detach().float())
    return LossTerms(l1 + dct_weight * dct_l1 + commitment_weight * commit, l1, dct_l1, commit)

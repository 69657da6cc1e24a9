"""Transformer Action AutoEncoder (paper §3.1): patches [B, m*n, h*width] <-> latent z [B, C_h, C_a, d].

Transformer blocks give every patch a global receptive field; a strided convolution along time relates
neighbouring patches and downsamples the m time patches to C_h latent steps (a transposed one upsamples back).

Beside this learned path runs a linear skip path initialised as a truncated DCT basis: the encoder skip maps each
latent token's signal (its dimensions over its time segment) to its lowest DCT-II coefficients, the decoder skip is
its transpose. With the learned path's output layers zero-initialised the autoencoder starts as a DCT codec and
learns the residual; without it a small VQ tokenizer stayed below FAST in our calibration experiments.

Action tokens (C_a): each dimension group owns ``group_tokens[g]`` consecutive latent tokens, its dimensions split
evenly between them. C_a = D gives one token per action dimension (paper Table 4, C_a = DoF), C_a = n one token per
group. The learned path computes one token per group and time step, repeats it over the group's tokens with a
learned per-token embedding, and the decoder mean-pools them back; the skip path carries each token's own
dimensions, so per-dimension detail needs no learning to pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from faster_core.tokenizer.loss import dct_matrix
from faster_core.tokenizer.patchify import PatchLayout


@dataclass(frozen=True)
class LatentLayout:
    """Where latent tokens sit: C_h time tokens x C_a action tokens, ``group_tokens[g]`` of them per group."""

    patches: PatchLayout
    time_tokens: int  # C_h
    group_tokens: tuple[int, ...]  # action tokens per dimension group; they sum to C_a

    def __post_init__(self):
        m = self.patches.time_patches
        if self.time_tokens < 1 or m % self.time_tokens:
            raise ValueError(f"time_tokens (C_h) {self.time_tokens} must divide the {m} time patches (H / h)")
        if len(self.group_tokens) != self.patches.num_groups or not all(
            1 <= k <= size for k, size in zip(self.group_tokens, self.patches.group_sizes, strict=True)
        ):
            raise ValueError(
                f"group_tokens {self.group_tokens} must give each of the groups {self.patches.group_sizes} "
                "between 1 and its size tokens"
            )

    @classmethod
    def for_action_tokens(cls, patches: PatchLayout, *, time_tokens: int, action_tokens: int) -> LatentLayout:
        """C_a = D: one token per dimension; C_a = n: one token per group; nothing else is defined."""
        if action_tokens == patches.action_dim:
            group_tokens = patches.group_sizes
        elif action_tokens == patches.num_groups:
            group_tokens = (1,) * patches.num_groups
        else:
            raise ValueError(
                f"action_tokens (C_a) must be the number of action dimensions ({patches.action_dim}) or of "
                f"dimension groups ({patches.num_groups}), got {action_tokens}"
            )
        return cls(patches, time_tokens, tuple(group_tokens))

    @property
    def action_tokens(self) -> int:  # C_a
        return sum(self.group_tokens)

    @property
    def patches_per_token(self) -> int:  # r: time patches merged into one latent time step
        return self.patches.time_patches // self.time_tokens

    @property
    def segment_length(self) -> int:  # actions per latent time step
        return self.patches_per_token * self.patches.patch_length

    @property
    def token_group(self) -> Tensor:
        """Group index of each of the C_a action tokens."""
        return torch.repeat_interleave(torch.arange(len(self.group_tokens)), torch.tensor(self.group_tokens))

    def segments(self, patches: Tensor) -> Tensor:
        """[B, m*n, h*width] -> [B, C_h, n, segment_length*width]: each group's signal per latent time step."""
        p = self.patches
        x = patches.reshape(-1, self.time_tokens, self.patches_per_token, p.num_groups, p.patch_length, p.group_width)
        return x.permute(0, 1, 3, 2, 4, 5).reshape(
            -1, self.time_tokens, p.num_groups, self.segment_length * p.group_width
        )

    def unsegment(self, segments: Tensor) -> Tensor:
        """Inverse of ``segments``."""
        p = self.patches
        x = segments.reshape(-1, self.time_tokens, p.num_groups, self.patches_per_token, p.patch_length, p.group_width)
        return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, p.num_patches, p.patch_dim)

    def dct_basis(self, group: int, latent_dim: int) -> Tensor:
        """[group_tokens[g] * d, segment_length * width]: per token, its d lowest (frequency, dimension) DCT rows.

        Coefficients are ordered by frequency, then dimension, so a token holding several dimensions keeps the same
        number of frequencies for each; channels beyond segment_length * dims stay zero (for the learned path).
        """
        length, width = self.segment_length, self.patches.group_width
        dct = dct_matrix(length)
        tokens = self.group_tokens[group]
        basis = torch.zeros(tokens, latent_dim, length, width)
        for token, dims in enumerate(np.array_split(np.arange(self.patches.group_sizes[group]), tokens)):
            pairs = [(f, int(j)) for f in range(length) for j in dims][:latent_dim]
            for channel, (f, j) in enumerate(pairs):
                basis[token, channel, :, j] = dct[f]
        return basis.reshape(tokens * latent_dim, length * width)


class Attention(nn.Module):
    def __init__(self, *, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        batch, tokens, dim = x.shape
        q, k, v = self.qkv(x).view(batch, tokens, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        return self.out(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(batch, tokens, dim))


class Block(nn.Module):
    """Pre-norm transformer block (bidirectional: a chunk is encoded as a whole)."""

    def __init__(self, *, dim: int, heads: int, mlp_ratio: int):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim=dim, heads=heads)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def _blocks(depth: int, *, dim: int, heads: int, mlp_ratio: int) -> nn.Sequential:
    return nn.Sequential(*(Block(dim=dim, heads=heads, mlp_ratio=mlp_ratio) for _ in range(depth)))


def _zero_linear(dim_in: int, dim_out: int) -> nn.Linear:
    layer = nn.Linear(dim_in, dim_out)
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class TAAEEncoder(nn.Module):
    """patches [B, m*n, h*width] -> z [B, C_h, C_a, d] = DCT skip + learned residual."""

    def __init__(
        self,
        *,
        layout: LatentLayout,
        latent_dim: int,  # d
        width: int = 64,  # transformer width
        depth: int = 1,  # blocks before and after downsampling
        heads: int = 4,
        mlp_ratio: int = 4,
    ):
        super().__init__()
        p = layout.patches
        self.layout, self.latent_dim = layout, latent_dim
        self.embed = nn.Linear(p.patch_dim, width)
        self.group_embed = nn.Parameter(torch.randn(p.num_groups, width) * 0.02)
        self.time_embed = nn.Parameter(torch.randn(p.time_patches, 1, width) * 0.02)
        self.patch_blocks = _blocks(depth, dim=width, heads=heads, mlp_ratio=mlp_ratio)
        self.down = nn.Conv1d(width, width, kernel_size=layout.patches_per_token, stride=layout.patches_per_token)
        self.token_embed = nn.Parameter(torch.randn(layout.time_tokens, layout.action_tokens, width) * 0.02)
        self.token_blocks = _blocks(depth, dim=width, heads=heads, mlp_ratio=mlp_ratio)
        self.norm = nn.LayerNorm(width)
        self.proj = _zero_linear(width, latent_dim)
        self.skip = nn.ModuleList(
            nn.Linear(layout.segment_length * p.group_width, k * latent_dim, bias=False) for k in layout.group_tokens
        )
        with torch.no_grad():
            for group, skip in enumerate(self.skip):
                skip.weight.copy_(layout.dct_basis(group, latent_dim))
        self.register_buffer("token_group", layout.token_group, persistent=False)

    def forward(self, patches: Tensor) -> Tensor:
        layout, p = self.layout, self.layout.patches
        batch, width = patches.shape[0], self.group_embed.shape[1]
        x = self.embed(patches).view(batch, p.time_patches, p.num_groups, width) + self.group_embed + self.time_embed
        x = self.patch_blocks(x.view(batch, p.num_patches, width))
        x = x.view(batch, p.time_patches, p.num_groups, width).permute(0, 2, 3, 1).reshape(-1, width, p.time_patches)
        x = self.down(x).view(batch, p.num_groups, width, layout.time_tokens).permute(0, 3, 1, 2)
        x = x[:, :, self.token_group] + self.token_embed  # [B, C_h, C_a, width]
        x = self.token_blocks(x.reshape(batch, -1, width))
        z = self.proj(self.norm(x)).view(batch, layout.time_tokens, layout.action_tokens, self.latent_dim)
        with torch.autocast(device_type=patches.device.type, enabled=False):  # the DCT path carries most of the
            segments = layout.segments(patches.float())  # signal: fp32 even under bf16 autocast
            skip = [s(segments[:, :, g]).view(*z.shape[:2], -1, self.latent_dim) for g, s in enumerate(self.skip)]
            return z.float() + torch.cat(skip, dim=2)


class TAAEDecoder(nn.Module):
    """z_q [B, C_h, C_a, d] -> patches [B, m*n, h*width]; mirrors ``TAAEEncoder``."""

    def __init__(
        self,
        *,
        layout: LatentLayout,
        latent_dim: int,
        width: int = 64,
        depth: int = 1,
        heads: int = 4,
        mlp_ratio: int = 4,
    ):
        super().__init__()
        p = layout.patches
        self.layout, self.latent_dim = layout, latent_dim
        self.embed = nn.Linear(latent_dim, width)
        self.token_embed = nn.Parameter(torch.randn(layout.time_tokens, layout.action_tokens, width) * 0.02)
        self.token_blocks = _blocks(depth, dim=width, heads=heads, mlp_ratio=mlp_ratio)
        self.up = nn.ConvTranspose1d(
            width, width, kernel_size=layout.patches_per_token, stride=layout.patches_per_token
        )
        self.group_embed = nn.Parameter(torch.randn(p.num_groups, width) * 0.02)
        self.time_embed = nn.Parameter(torch.randn(p.time_patches, 1, width) * 0.02)
        self.patch_blocks = _blocks(depth, dim=width, heads=heads, mlp_ratio=mlp_ratio)
        self.norm = nn.LayerNorm(width)
        self.proj = _zero_linear(width, p.patch_dim)
        self.skip = nn.ModuleList(
            nn.Linear(k * latent_dim, layout.segment_length * p.group_width, bias=False) for k in layout.group_tokens
        )
        with torch.no_grad():
            for group, skip in enumerate(self.skip):
                skip.weight.copy_(layout.dct_basis(group, latent_dim).T)
        self.register_buffer("token_group", layout.token_group, persistent=False)
        self.register_buffer("group_count", torch.tensor(layout.group_tokens, dtype=torch.float32), persistent=False)

    def forward(self, z_q: Tensor) -> Tensor:
        layout, p = self.layout, self.layout.patches
        batch, width = z_q.shape[0], self.group_embed.shape[1]
        x = self.embed(z_q) + self.token_embed
        x = self.token_blocks(x.view(batch, -1, width)).view(batch, layout.time_tokens, layout.action_tokens, width)
        pooled = x.new_zeros(batch, layout.time_tokens, p.num_groups, width).index_add_(2, self.token_group, x)
        x = (pooled / self.group_count[:, None]).permute(0, 2, 3, 1).reshape(-1, width, layout.time_tokens)
        x = self.up(x).view(batch, p.num_groups, width, p.time_patches).permute(0, 3, 1, 2)
        x = self.patch_blocks((x + self.group_embed + self.time_embed).reshape(batch, p.num_patches, width))
        out = self.proj(self.norm(x))
        with torch.autocast(device_type=z_q.device.type, enabled=False):  # fp32 DCT path, as in the encoder
            per_group = torch.split(z_q.float(), list(layout.group_tokens), dim=2)
            skip = [s(t.reshape(batch, layout.time_tokens, -1)) for s, t in zip(self.skip, per_group, strict=True)]
            return out.float() + layout.unsegment(torch.stack(skip, dim=2))

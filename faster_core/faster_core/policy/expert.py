"""The action expert: a narrow transformer that decodes action tokens against the backbone's cached prefix.

It has the backbone's layer count, query heads, KV heads and head dim, so at layer l its queries attend to the
backbone's layer-l keys/values of the prefix (computed once per control step) followed by its own action tokens'
keys/values. Only the width and MLP are smaller; its rotary embedding is the backbone's, continued past the prefix.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn
from transformers.activations import ACT2FN

from faster_core.policy.backbone import Prefix
from faster_core.policy.configuration import ExpertConfig


class RMSNorm(nn.Module):
    def __init__(self, width: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        normed = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps)
        return (normed * self.weight.float()).to(x.dtype)


def _rotate_half(x: Tensor) -> Tensor:
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


class ExpertCache:
    """Per-layer key/value buffers for decoding: the prefix's, then the action tokens fed so far.

    Buffers are allocated once for the whole chunk, so a decode step writes in place instead of concatenating.
    """

    def __init__(self, prefix: Prefix, capacity: int):
        self.length = prefix.mask.shape[1]  # tokens held so far: the prefix, then each block as it is fed
        self.keys = [torch.cat([k, k.new_empty(*k.shape[:2], capacity, k.shape[3])], dim=2) for k, _ in prefix.kv]
        self.values = [torch.cat([v, v.new_empty(*v.shape[:2], capacity, v.shape[3])], dim=2) for _, v in prefix.kv]
        # Only prefix padding is ever masked: every action token fed so far is visible (block-causal by order).
        padding = torch.cat([prefix.mask, prefix.mask.new_ones(prefix.mask.shape[0], capacity)], dim=1)
        self.mask = None if prefix.mask.all() else padding

    def update(self, layer: int, keys: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
        end = self.length + keys.shape[2]
        self.keys[layer][:, :, self.length : end] = keys
        self.values[layer][:, :, self.length : end] = values
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]

    def attention_mask(self, new: int) -> Tensor | None:
        return None if self.mask is None else self.mask[:, None, None, : self.length + new]


class ExpertLayer(nn.Module):
    def __init__(
        self,
        *,
        width: int,
        intermediate_size: int,
        num_heads: int,
        num_kv_heads: int,
        head_dim: int,
        hidden_act: str,
        eps: float,
    ):
        super().__init__()
        self.num_heads, self.num_kv_heads, self.head_dim = num_heads, num_kv_heads, head_dim
        self.input_norm = RMSNorm(width, eps)
        self.q_proj = nn.Linear(width, num_heads * head_dim, bias=False)
        self.k_proj = nn.Linear(width, num_kv_heads * head_dim, bias=False)
        self.v_proj = nn.Linear(width, num_kv_heads * head_dim, bias=False)
        self.o_proj = nn.Linear(num_heads * head_dim, width, bias=False)
        self.post_norm = RMSNorm(width, eps)
        self.gate_proj = nn.Linear(width, intermediate_size, bias=False)
        self.up_proj = nn.Linear(width, intermediate_size, bias=False)
        self.down_proj = nn.Linear(intermediate_size, width, bias=False)
        self.act = ACT2FN[hidden_act]

    def forward(
        self,
        x: Tensor,
        rotary: tuple[Tensor, Tensor],
        *,
        mask: Tensor | None,
        context: tuple[Tensor, Tensor] | None = None,
        cache: ExpertCache | None = None,
        layer: int = 0,
    ) -> Tensor:
        """``context``: the prefix keys/values (training, full sequence) or None when ``cache`` holds them."""
        batch, length, _ = x.shape
        h = self.input_norm(x)
        q = self.q_proj(h).view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(h).view(batch, length, self.num_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(h).view(batch, length, self.num_kv_heads, self.head_dim).transpose(1, 2)
        cos, sin = rotary
        q, k = q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin
        if cache is not None:
            keys, values = cache.update(layer, k, v)
        else:
            keys, values = torch.cat([context[0], k], dim=2), torch.cat([context[1], v], dim=2)
        attended = F.scaled_dot_product_attention(
            q, keys, values, attn_mask=mask, enable_gqa=self.num_heads != self.num_kv_heads
        )
        x = x + self.o_proj(attended.transpose(1, 2).reshape(batch, length, -1))
        h = self.post_norm(x)
        return x + self.down_proj(self.act(self.gate_proj(h)) * self.up_proj(h))


class ActionExpert(nn.Module):
    def __init__(
        self,
        config: ExpertConfig,
        *,
        vocab_size: int,
        num_layers: int,
        num_heads: int,
        num_kv_heads: int,
        head_dim: int,
        backbone_width: int,
        hidden_act: str,
        inv_freq: Tensor,
        rotary_scaling: float = 1.0,
    ):
        super().__init__()
        width = config.width or backbone_width // 2
        intermediate = config.intermediate_size or 4 * width
        self.embed = nn.Embedding(vocab_size, width)
        self.layers = nn.ModuleList(
            ExpertLayer(
                width=width,
                intermediate_size=intermediate,
                num_heads=num_heads,
                num_kv_heads=num_kv_heads,
                head_dim=head_dim,
                hidden_act=hidden_act,
                eps=config.rms_norm_eps,
            )
            for _ in range(num_layers)
        )
        self.norm = RMSNorm(width, config.rms_norm_eps)
        self.head = nn.Linear(width, vocab_size, bias=False)
        self.register_buffer("inv_freq", inv_freq.detach().float().clone(), persistent=False)
        self.rotary_scaling = rotary_scaling
        self.forward_passes = 0  # counts calls, so tests and benchmarks can check J
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, std=config.initializer_range)

    def forward(
        self,
        ids: Tensor,
        positions: Tensor,
        *,
        prefix: Prefix | None = None,
        action_mask: Tensor | None = None,
        cache: ExpertCache | None = None,
    ) -> Tensor:
        """Expert ids and positions [B, T] -> logits [B, T, vocab].

        Full sequence (training, checks): ``prefix`` and ``action_mask`` [T, T] over the action tokens.
        Decoding: ``cache`` holds the prefix and earlier blocks; the new tokens see all of it and each other.
        """
        self.forward_passes += 1
        x = self.embed(ids)
        freqs = positions[..., None].float() * self.inv_freq
        angles = torch.cat([freqs, freqs], dim=-1)
        cos = (angles.cos() * self.rotary_scaling).to(x.dtype)[:, None]  # [B, 1, T, head_dim]: broadcast over heads
        sin = (angles.sin() * self.rotary_scaling).to(x.dtype)[:, None]
        if cache is not None:
            mask = cache.attention_mask(ids.shape[1])
        else:
            batch, length = ids.shape
            mask = torch.cat(
                [
                    prefix.mask[:, None, None, :].expand(batch, 1, length, -1),
                    action_mask[None, None].expand(batch, 1, length, length),
                ],
                dim=-1,
            )
        for index, layer in enumerate(self.layers):
            context = None if cache is not None else prefix.kv[index]
            x = layer(x, (cos, sin), mask=mask, context=context, cache=cache, layer=index)
        if cache is not None:
            cache.length += ids.shape[1]
        return self.head(self.norm(x))

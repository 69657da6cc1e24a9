"""Block-wise autoregression (paper §3.2, Eq. 3): the action vocabulary, block layout, mask, positions, sampling.

Token order is the tokenizer's: for FASTerVQ codebook level first (coarse to fine), then the horizon groups, then
the action groups, i.e. codes [N_c, C_h, C_a] read row-major. The N tokens of a chunk are cut into J = ceil(N / B)
blocks of B. Training feeds ``<BoBlk> x B, C_1, ..., C_{J-1}`` and predicts ``C_1, ..., C_J`` (labels shifted by
one block) under a block-causal mask: bidirectional inside a block, causal across blocks. At inference the expert
takes ``<BoBlk> x B`` and returns block 1, takes block 1 and returns block 2, and so on: J forward passes.

When B does not divide N the last block is partial (r = N - (J - 1) B tokens): the inputs are still J full blocks
(the last one input is C_{J-1}, which is full), only the first r outputs of the last pass are targets or are
kept, the rest are ignored. B = 1 is plain token-wise autoregression with a causal mask.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

IGNORE = -100  # label of positions that predict nothing


@dataclass(frozen=True)
class ActionVocabulary:
    """The expert's token space: ``<BoBlk>``, ``<EoBlk>``, then one slot per code of each level.

    Code c of level l is token ``2 + l K + c``, so a token names its level and decoding can be restricted to the
    level due at each position. These slots extend the backbone's vocabulary but live in the expert's own table,
    so the backbone's text embeddings stay untouched and can be frozen. Tokenizers other than FASTerVQ are one
    level; a variable-length one (FAST) ends its tokens with ``<EoBlk>``.
    """

    levels: int  # N_c (1 for FAST and bins)
    codes_per_level: int  # K
    tokens_per_level: int  # C_h x C_a for FASTerVQ, H x D for bins, 0 for variable length
    BOS_BLOCK: ClassVar[int] = 0
    EOS_BLOCK: ClassVar[int] = 1
    FIRST_CODE: ClassVar[int] = 2

    @classmethod
    def for_tokenizer(cls, tokenizer) -> ActionVocabulary:
        """From the tokenizer's public config: FASTerVQ's ``tokenize`` gives codes in [0, K) for every level, so
        the level offsets are added here."""
        if tokenizer.kind == "fastervq":
            config = tokenizer.config
            return cls(config.codebooks, config.codebook_size, config.time_tokens * config.action_tokens)
        per_level = tokenizer.tokens_per_chunk if tokenizer.fixed_length else 0
        return cls(1, tokenizer.vocab_size, per_level)

    @property
    def size(self) -> int:
        return self.FIRST_CODE + self.levels * self.codes_per_level

    @property
    def fixed_length(self) -> bool:
        return self.tokens_per_level > 0

    @property
    def tokens_per_chunk(self) -> int:
        """N for fixed-length tokenizers."""
        return self.levels * self.tokens_per_level

    def to_expert(self, tokens: list[int]) -> list[int]:
        """Tokenizer ids of one chunk -> expert ids (level offsets added)."""
        if not self.fixed_length:
            return [self.FIRST_CODE + t for t in tokens]
        if len(tokens) != self.tokens_per_chunk:
            raise ValueError(f"expected {self.tokens_per_chunk} tokens per chunk, got {len(tokens)}")
        return [self.FIRST_CODE + (i // self.tokens_per_level) * self.codes_per_level + t for i, t in enumerate(tokens)]

    def from_expert(self, ids: Tensor) -> Tensor:
        """Expert ids [B, n] -> tokenizer ids; raises if a token is not a code of the level due at its position
        (constrained decoding makes that impossible, so this guards the construction itself)."""
        codes = ids - self.FIRST_CODE
        level = codes.div(self.codes_per_level, rounding_mode="floor")
        expected = torch.arange(ids.shape[-1], device=ids.device) // max(1, self.tokens_per_level)
        if not self.fixed_length:
            expected = torch.zeros_like(expected)
        bad = (codes < 0) | (level != expected)
        if bad.any():
            row, position = (int(v) for v in bad.nonzero()[0])
            raise RuntimeError(
                f"token {int(ids[row, position])} at position {position} is not a level-{int(expected[position])} code"
            )
        return codes - level * self.codes_per_level

    def allowed(self, length: int, device: torch.device | None = None) -> Tensor:
        """[length, size] bool: the tokens allowed at each output position. Fixed length: the codes of the
        position's level only; variable length: any code or ``<EoBlk>``. Positions past N allow everything (they
        are ignored), so a masked row is never empty."""
        allowed = torch.zeros(length, self.size, dtype=torch.bool, device=device)
        if not self.fixed_length:
            allowed[:, self.FIRST_CODE :] = True
            allowed[:, self.EOS_BLOCK] = True
            return allowed
        for position in range(length):
            if position >= self.tokens_per_chunk:
                allowed[position] = True
                continue
            start = self.FIRST_CODE + (position // self.tokens_per_level) * self.codes_per_level
            allowed[position, start : start + self.codes_per_level] = True
        return allowed


def num_blocks(tokens: int, block_size: int) -> int:
    """J = ceil(N / B): expert forward passes per chunk."""
    return math.ceil(tokens / block_size)


def block_causal_mask(length: int, block_size: int, device: torch.device | None = None) -> Tensor:
    """[length, length] bool, True where query i may attend to key j: block(j) <= block(i)."""
    block = torch.arange(length, device=device) // block_size
    return block[None, :] <= block[:, None]


def teacher_forcing(tokens: Tensor, block_size: int) -> tuple[Tensor, Tensor]:
    """Expert ids [B, N] -> inputs and labels [B, J x B]: ``<BoBlk> x B, C_1..C_{J-1}`` -> ``C_1..C_J``.

    Fixed-length chunks only; ``IGNORE`` pads the labels of a partial last block.
    """
    batch, count = tokens.shape
    span = num_blocks(count, block_size) * block_size
    start = tokens.new_full((batch, block_size), ActionVocabulary.BOS_BLOCK)
    inputs = torch.cat([start, tokens[:, : span - block_size]], dim=1)
    labels = torch.cat([tokens, tokens.new_full((batch, span - count), IGNORE)], dim=1)
    return inputs, labels


def teacher_forcing_variable(tokens: Tensor) -> tuple[Tensor, Tensor]:
    """Variable-length chunks (FAST), token-wise: expert ids [B, L] padded with -1 -> ``<BoBlk>, t_1..t_n`` ->
    ``t_1..t_n, <EoBlk>``, both [B, L + 1]; padding inputs are ``<EoBlk>`` (never attended by real tokens)."""
    batch = tokens.shape[0]
    lengths = (tokens >= 0).sum(1)
    padded = torch.cat([tokens, tokens.new_full((batch, 1), -1)], dim=1)
    labels = padded.clone()
    labels[torch.arange(batch), lengths] = ActionVocabulary.EOS_BLOCK
    labels[labels < 0] = IGNORE
    start = tokens.new_full((batch, 1), ActionVocabulary.BOS_BLOCK)
    inputs = torch.cat([start, tokens], dim=1)
    inputs[inputs < 0] = ActionVocabulary.EOS_BLOCK
    return inputs, labels


def action_positions(
    last_prefix_position: Tensor,
    length: int,
    *,
    spacing: int,
    jitter: int = 0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Rotary positions [B, length] of the action tokens after the prefix: p_i = p_{i-1} + spacing, or with
    ``jitter`` k > 0 (spacing augmentation, training) p_i = p_{i-1} + 1 + U{0..k}, p_{-1} the last prefix token."""
    batch, device = last_prefix_position.shape[0], last_prefix_position.device
    if jitter:
        steps = 1 + torch.randint(0, jitter + 1, (batch, length), generator=generator, device=device)
    else:
        steps = torch.full((batch, length), spacing, device=device)
    return last_prefix_position[:, None] + steps.cumsum(1)


def sample(
    logits: Tensor,
    allowed: Tensor,
    *,
    greedy: bool,
    top_k: int,
    temperature: float,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Logits [B, T, V] -> tokens [B, T], only ever among ``allowed`` [T, V]: top-k, then temperature."""
    logits = logits.float().masked_fill(~allowed, float("-inf"))
    if greedy:
        return logits.argmax(-1)
    values, indices = logits.topk(min(top_k, logits.shape[-1]), dim=-1)
    probs = torch.softmax(values / temperature, dim=-1)  # disallowed entries in the top k have probability 0
    choice = torch.multinomial(probs.flatten(0, 1), 1, generator=generator).view(probs.shape[:2])
    return indices.gather(-1, choice[..., None])[..., 0]

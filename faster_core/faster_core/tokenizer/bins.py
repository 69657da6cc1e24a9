"""Uniform binning baseline (RT-2/OpenVLA style): every normalised value is one of 256 bins on [-1, 1].

One token per action dimension and step (H x D per chunk) with no compression at all: the floor the compressed
tokenizers are compared against.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faster_core.data.chunks import check_action_mode
from faster_core.tokenizer.interface import check_actions, config_from_dict, read_config, write_config
from faster_core.tokenizer.normalize import normalize, quantile_stats, unnormalize


@dataclass(frozen=True, kw_only=True)
class BinConfig:
    chunk_length: int  # H
    action_dim: int  # D
    q01: tuple[float, ...]
    q99: tuple[float, ...]
    bins: int = 256
    action_mode: str = "absolute"  # the chunks it was fitted on: "absolute" targets or "delta" (minus the state)

    def __post_init__(self):
        check_action_mode(self.action_mode)


class BinTokenizer:
    kind = "bins"

    def __init__(self, config: BinConfig):
        self.config = config
        self._q01, self._q99 = np.asarray(config.q01), np.asarray(config.q99)

    @classmethod
    def fit(cls, chunks: np.ndarray, *, bins: int = 256, action_mode: str = "absolute") -> BinTokenizer:
        """Fit q01/q99 on chunks [N, H, D] in robot units, in ``action_mode`` (``faster_core.data.chunks``)."""
        chunks = np.asarray(chunks)
        if chunks.ndim != 3:
            raise ValueError(f"chunks must have shape [N, H, D], got {list(chunks.shape)}")
        chunks, _ = check_actions(chunks, chunk_length=chunks.shape[1], action_dim=chunks.shape[2])
        q01, q99 = quantile_stats(chunks)
        shape = {"chunk_length": chunks.shape[1], "action_dim": chunks.shape[2]}
        return cls(BinConfig(**shape, q01=q01, q99=q99, bins=bins, action_mode=action_mode))

    @property
    def vocab_size(self) -> int:
        return self.config.bins

    @property
    def tokens_per_chunk(self) -> int:
        return self.config.chunk_length * self.config.action_dim

    @property
    def fixed_length(self) -> bool:
        return True

    def encode(self, actions: np.ndarray) -> np.ndarray:
        """Actions [H, D] or [B, H, D] in robot units -> int64 bins [H*D] or [B, H*D], row-major over (step, dim)."""
        actions, batched = check_actions(
            actions, chunk_length=self.config.chunk_length, action_dim=self.config.action_dim
        )
        x = normalize(np.asarray(actions, dtype=np.float64), self._q01, self._q99)
        bins = np.clip(np.floor((x + 1) / 2 * self.config.bins), 0, self.config.bins - 1).astype(np.int64)
        bins = bins.reshape(len(bins), -1)
        return bins if batched else bins[0]

    def decode(self, bins: np.ndarray) -> np.ndarray:
        """Bins [H*D] or [B, H*D] -> bin centres as actions [H, D] or [B, H, D] in robot units (float32)."""
        bins = np.asarray(bins)
        if bins.size and not np.issubdtype(bins.dtype, np.integer):
            raise ValueError(f"bins must be integers, got dtype {bins.dtype}")
        if bins.ndim not in (1, 2) or bins.shape[-1] != self.tokens_per_chunk:
            raise ValueError(
                f"bins must have shape [{self.tokens_per_chunk}] or [B, {self.tokens_per_chunk}] (H*D per chunk), "
                f"got {list(bins.shape)}"
            )
        if bins.size and (bins.min() < 0 or bins.max() >= self.config.bins):
            raise ValueError(f"bins must lie in [0, {self.config.bins})")
        batched = bins.ndim == 2
        x = (bins.reshape(-1, self.config.chunk_length, self.config.action_dim) + 0.5) / self.config.bins * 2 - 1
        actions = unnormalize(x, self._q01, self._q99).astype(np.float32)
        return actions if batched else actions[0]

    def tokenize(self, actions: np.ndarray) -> list[list[int]]:
        bins = self.encode(actions)
        return bins.reshape(-1, self.tokens_per_chunk).tolist()

    def detokenize(self, tokens: Sequence[Sequence[int]]) -> np.ndarray:
        return self.decode(np.asarray(tokens, dtype=np.int64).reshape(-1, self.tokens_per_chunk))

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        write_config(directory, self.kind, dataclasses.asdict(self.config))

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> BinTokenizer:
        return cls(config_from_dict(BinConfig, read_config(directory, cls.kind), str(Path(directory))))

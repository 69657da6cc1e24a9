"""Action chunks: the H future actions from each step, padded at the episode's end, and their [-1, 1] scaling.

Padding repeats the last action (the robot holds its final command), and a mask marks which entries were real
so a loss can ignore the padding if it wants to.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from faster_core.data.episodes import EpisodeDataset
from faster_core.data.stats import ArrayStats

# A dimension whose q01 and q99 are closer than this is treated as constant (see QuantileNormalizer).
CONSTANT_RANGE = 1e-8


@dataclass(frozen=True)
class ActionWindows:
    chunks: np.ndarray  # [T, H, D]: chunks[t, k] = action[min(t + k, T - 1)]
    mask: np.ndarray  # [T, H] bool: True where t + k < T (a real action, not padding)


def action_windows(actions: np.ndarray, horizon: int) -> ActionWindows:
    """Windows of ``horizon`` future actions starting at every step of one episode ([T, D] -> [T, H, D])."""
    actions = np.asarray(actions)
    if actions.ndim != 2 or actions.shape[0] == 0:
        raise ValueError(f"actions must be [T>0, D], got {actions.shape}")
    if horizon < 1:
        raise ValueError(f"horizon must be positive, got {horizon}")
    length = actions.shape[0]
    future = np.arange(length)[:, None] + np.arange(horizon)[None, :]
    return ActionWindows(chunks=actions[np.minimum(future, length - 1)], mask=future < length)


@dataclass(frozen=True)
class QuantileNormalizer:
    """Maps q01 to -1 and q99 to +1 per dimension, clipping outside.

    A dimension with no spread (q01 == q99, e.g. a gripper never used) is only centred: its recorded value
    maps to 0 and other values keep their offset in robot units, instead of dividing by zero.
    """

    center: np.ndarray
    half_range: np.ndarray

    @classmethod
    def from_stats(cls, stats: ArrayStats) -> QuantileNormalizer:
        half_range = (stats.q99 - stats.q01) / 2
        return cls(
            center=(stats.q99 + stats.q01) / 2,
            half_range=np.where(half_range > CONSTANT_RANGE, half_range, 1.0),
        )

    def normalize(self, values: np.ndarray) -> np.ndarray:
        """Robot units -> [-1, 1] (values beyond q01/q99 are clipped); works on any [..., D] array."""
        return np.clip((np.asarray(values) - self.center) / self.half_range, -1.0, 1.0)

    def denormalize(self, normalized: np.ndarray) -> np.ndarray:
        """[-1, 1] -> robot units; the inverse of ``normalize`` for values inside [q01, q99]."""
        return np.asarray(normalized) * self.half_range + self.center


def action_chunks(
    dataset: EpisodeDataset, episodes: Iterable[int], horizon: int, *, include_padded: bool = True
) -> np.ndarray:
    """Every action chunk of the given episodes as one float32 [N, H, D] array in robot units.

    With ``include_padded=False`` only windows that lie wholly inside their episode are kept.
    """
    chunks = []
    for i in episodes:
        windows = action_windows(dataset.episode(i).action, horizon)
        chunks.append(windows.chunks if include_padded else windows.chunks[windows.mask.all(axis=1)])
    if not chunks:
        return np.zeros((0, horizon, len(dataset.joint_names)), dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32)

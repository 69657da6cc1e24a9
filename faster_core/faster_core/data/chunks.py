"""Action chunks: the H future actions from each step, padded at the episode's end.

Padding repeats the last action (the robot holds its final command), and a mask marks which entries were real
so a loss can ignore the padding if it wants to.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from faster_core.data.episodes import EpisodeDataset


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

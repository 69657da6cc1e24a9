"""Action chunks: the H future actions from each step, padded at the episode's end.

Padding repeats the last action (the robot holds its final command), and a mask marks which entries were real
so a loss can ignore the padding if it wants to. A chunk is tokenized in one of two action modes: ``absolute``
joint targets, or ``delta`` targets minus the joint state observed when the chunk starts (pi0-FAST's "-D" chunks);
the tokenizer records the mode it was fitted in, so a policy always returns absolute targets.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from faster_core.data.episodes import EpisodeDataset

ACTION_MODES = ("absolute", "delta")


def check_action_mode(action_mode: str) -> str:
    if action_mode not in ACTION_MODES:
        raise ValueError(f"action_mode must be one of {ACTION_MODES}, got {action_mode!r}")
    return action_mode


def to_action_mode(chunks: np.ndarray, states: np.ndarray, action_mode: str) -> np.ndarray:
    """Absolute chunks [N, H, D] -> the mode's chunks, given the state [N, D] observed when each starts."""
    if check_action_mode(action_mode) == "absolute":
        return chunks
    return chunks - np.asarray(states, dtype=chunks.dtype)[:, None, :]


def from_action_mode(chunks: np.ndarray, states: np.ndarray, action_mode: str) -> np.ndarray:
    """The inverse of ``to_action_mode``: the mode's chunks [N, H, D] -> absolute joint targets."""
    if check_action_mode(action_mode) == "absolute":
        return chunks
    return chunks + np.asarray(states, dtype=chunks.dtype)[:, None, :]


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
    dataset: EpisodeDataset,
    episodes: Iterable[int],
    horizon: int,
    *,
    include_padded: bool = True,
    action_mode: str = "absolute",  # or "delta": each chunk minus the state at its first step
) -> np.ndarray:
    """Every action chunk of the given episodes as one float32 [N, H, D] array in robot units.

    With ``include_padded=False`` only windows that lie wholly inside their episode are kept.
    """
    check_action_mode(action_mode)
    chunks = []
    for i in episodes:
        episode = dataset.episode(i)
        windows = action_windows(episode.action, horizon)
        episode_chunks = to_action_mode(windows.chunks, episode.state, action_mode)
        chunks.append(episode_chunks if include_padded else episode_chunks[windows.mask.all(axis=1)])
    if not chunks:
        return np.zeros((0, horizon, len(dataset.joint_names)), dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32)

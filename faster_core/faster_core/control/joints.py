"""Latest joint positions in the embodiment's order, merged from JointState messages that may each carry a subset.

Drivers often publish arms, grippers and bases as separate JointState messages, and include joints the policy does
not control. Each configured joint keeps its own latest value and time; other names are remembered (for the error
that explains a mismatch) and ignored. A message with NaN or mismatched lengths is refused whole.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class MissingJointsError(ValueError):
    """Some configured joints never had a state."""


class StaleJointsError(ValueError):
    """Some configured joints have no state newer than the allowed age."""


class JointStateCache:
    def __init__(self, joint_names: Sequence[str]):
        self.joint_names = tuple(joint_names)
        self._index = {name: i for i, name in enumerate(self.joint_names)}
        self._positions = np.full(len(self.joint_names), np.nan)
        self._times = np.full(len(self.joint_names), -np.inf)
        self.unknown_names: set[str] = set()

    def update(self, names: Sequence[str], positions: Sequence[float], received_at: float) -> int:
        """Merge one message; returns how many configured joints it updated. Raises ValueError for a bad message."""
        if len(names) != len(positions):
            raise ValueError(f"joint state has {len(names)} names but {len(positions)} positions")
        values = np.asarray(positions, dtype=np.float64)
        bad = [name for name, value in zip(names, values, strict=True) if not np.isfinite(value)]
        if bad:
            raise ValueError(f"joint state has NaN/inf positions for {bad}")
        if len(set(names)) != len(names):
            raise ValueError(f"joint state repeats joint names: {list(names)}")
        known = [(self._index[name], value) for name, value in zip(names, values, strict=True) if name in self._index]
        self.unknown_names.update(name for name in names if name not in self._index)
        for index, value in known:
            self._positions[index] = value
            self._times[index] = received_at
        return len(known)

    def missing(self) -> list[str]:
        return [name for name, t in zip(self.joint_names, self._times, strict=True) if t == -np.inf]

    def positions(self, now: float, max_age: float) -> np.ndarray:
        """All configured positions, or ValueError naming the joints that are missing or older than ``max_age``."""
        missing = self.missing()
        if missing:
            hint = f"; joint states carry other names {sorted(self.unknown_names)}" if self.unknown_names else ""
            raise MissingJointsError(f"no joint state yet for {missing}{hint}")
        stale = [name for name, t in zip(self.joint_names, self._times, strict=True) if now - t > max_age]
        if stale:
            age = now - self._times.min()
            raise StaleJointsError(f"joint states stale for {stale} (oldest {age:.3f} s > {max_age:.3f} s)")
        return self._positions.copy()

    def oldest(self) -> float:
        """Receive time of the oldest configured joint's latest state (-inf if one never arrived)."""
        return float(self._times.min())

    def clear(self) -> None:
        """Forget every state (after the clock jumped backwards, their times mean nothing)."""
        self._positions[:] = np.nan
        self._times[:] = -np.inf

"""joint_trajectory_controller semantics: a simulated robot obeys the same commands as hardware, and the policy
node knows what the controller is commanding between its trajectories.

A trajectory starts when it arrives (header stamp 0), its points are reached at ``time_from_start``, positions
are interpolated linearly from the command in force at arrival (no jump), the last point is held, and a new
trajectory replaces the running one. An empty trajectory holds the current command (the controller's stop).
"""

from __future__ import annotations

import numpy as np


class TrajectoryFollower:
    def __init__(self, initial: np.ndarray):
        self._times = np.zeros(1)
        self._positions = np.asarray(initial, dtype=np.float64)[None].copy()
        self._start = 0.0

    def accept(self, times: np.ndarray, positions: np.ndarray, *, received_at: float) -> None:
        """Replace the running trajectory; raises ValueError (and keeps the old one) for a malformed one."""
        dof = self._positions.shape[1]
        times = np.asarray(times, dtype=np.float64)
        positions = np.asarray(positions, dtype=np.float64)
        held = self.target(received_at)
        if len(times) == 0:
            self._times, self._positions, self._start = np.zeros(1), held[None], received_at
            return
        if positions.shape != (len(times), dof):
            raise ValueError(f"trajectory positions are {positions.shape}, expected [{len(times)}, {dof}]")
        if not (np.all(np.isfinite(times)) and np.all(np.isfinite(positions))):
            raise ValueError("trajectory holds NaN or infinite values")
        if times[0] < 0 or np.any(np.diff(times) <= 0):
            raise ValueError("time_from_start must be non-negative and strictly increasing")
        self._times = np.concatenate([[0.0], times]) if times[0] > 0 else times
        self._positions = np.concatenate([held[None], positions]) if times[0] > 0 else positions
        self._start = received_at

    def target(self, now: float) -> np.ndarray:
        """The commanded positions at ``now``."""
        elapsed = now - self._start
        return np.array(
            [np.interp(elapsed, self._times, self._positions[:, d]) for d in range(self._positions.shape[1])]
        )

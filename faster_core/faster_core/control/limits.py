"""Joint limits applied to every command before it reaches a robot, and trajectory timing for ros2_control.

Positions are clipped to the joint range, then each step's change is limited by the joint's velocity limit times
the time since the previous point, starting from the measured joint positions (so the velocity limit holds even
for a joint measured outside its range). Velocities for cubic interpolation
come from the limited positions, so the trajectory a controller receives is consistent and inside the limits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from faster_core.embodiment import JointLimits


@dataclass(frozen=True)
class TrajectoryPoints:
    time_from_start: np.ndarray  # [N] seconds, strictly increasing, > 0
    positions: np.ndarray  # [N, D]
    velocities: np.ndarray  # [N, D]
    clipped: bool  # whether any limit changed a position


class CommandLimiter:
    def __init__(self, limits: JointLimits, *, velocity_scale: float = 1.0):
        if not 0 < velocity_scale <= 1:
            raise ValueError(f"velocity_scale must be in (0, 1], got {velocity_scale}")
        self.lower = limits.position_lower
        self.upper = limits.position_upper
        self.max_velocity = limits.velocity * velocity_scale  # fraction of the joint's velocity limit to allow

    def apply(self, times: np.ndarray, positions: np.ndarray, current: np.ndarray) -> TrajectoryPoints:
        """Limit ``positions`` [N, D] due at ``times`` seconds from now, starting from ``current`` [D]."""
        times = np.asarray(times, dtype=np.float64)
        positions = np.asarray(positions, dtype=np.float64)
        current = np.asarray(current, dtype=np.float64)
        dof = self.lower.shape[0]
        if positions.ndim != 2 or positions.shape[1] != dof or times.shape != (positions.shape[0],):
            raise ValueError(f"expected positions [N, {dof}] and times [N], got {positions.shape} and {times.shape}")
        if current.shape != (dof,):
            raise ValueError(f"expected current joint positions [{dof}], got {current.shape}")
        for name, array in (("positions", positions), ("times", times), ("current joint positions", current)):
            if not np.all(np.isfinite(array)):
                raise ValueError(f"{name} hold NaN or infinite values")
        if len(times) and (times[0] <= 0 or np.any(np.diff(times) <= 0)):
            raise ValueError("times must be positive and strictly increasing")

        # Range first, then speed from where the joint really is: a joint found outside its range is brought
        # back at its velocity limit, never made to jump.
        limited = np.clip(positions, self.lower, self.upper)
        previous, previous_time = current, 0.0
        for i, t in enumerate(times):
            step = self.max_velocity * (t - previous_time)
            limited[i] = np.clip(limited[i], previous - step, previous + step)
            previous, previous_time = limited[i], t
        return TrajectoryPoints(
            time_from_start=times,
            positions=limited,
            velocities=self._velocities(times, limited, current),
            clipped=bool(np.any(np.abs(limited - positions) > 1e-12)),
        )

    def _velocities(self, times: np.ndarray, positions: np.ndarray, current: np.ndarray) -> np.ndarray:
        """Central differences through the points (the last point comes to rest), within the velocity limits."""
        if len(times) == 0:
            return np.empty((0, current.shape[0]))
        padded_t = np.concatenate([[0.0], times])
        padded_p = np.concatenate([current[None], positions])
        velocities = np.zeros_like(positions)
        if len(times) > 1:
            velocities[:-1] = (padded_p[2:] - padded_p[:-2]) / (padded_t[2:] - padded_t[:-2])[:, None]
        return np.clip(velocities, -self.max_velocity, self.max_velocity)

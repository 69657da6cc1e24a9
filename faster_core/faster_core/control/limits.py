"""Joint limits applied to every command before it reaches a robot, and trajectory timing for ros2_control.

Positions are clipped to the joint range and to the measured joint positions +- (tracking error + velocity limit x
time to the point, at least one control period). Then each step's change is limited by the joint's velocity limit
times the time since the previous point, starting from the command the controller follows now
(joint_trajectory_controller interpolates a new trajectory from there), or from the measured positions when that is
unknown. The velocity limit so bounds how fast the command moves, never how far it may lead a joint that cannot
follow: a jaw closed on a cube is commanded past it, as in the demonstrations, by at most its tracking error.
Velocities for cubic interpolation come from the limited positions, so the trajectory a controller receives is
consistent and inside the limits.
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
    def __init__(self, limits: JointLimits, *, period: float, velocity_scale: float = 1.0):
        if not 0 < velocity_scale <= 1:
            raise ValueError(f"velocity_scale must be in (0, 1], got {velocity_scale}")
        if not period > 0:
            raise ValueError(f"period must be positive, got {period}")
        self.period = period  # seconds between trajectories (the control period)
        self.lower = limits.position_lower
        self.upper = limits.position_upper
        self.max_velocity = limits.velocity * velocity_scale  # fraction of the joint's velocity limit to allow
        self.tracking_error = limits.tracking_error

    def apply(
        self, times: np.ndarray, positions: np.ndarray, *, measured: np.ndarray, commanded: np.ndarray | None = None
    ) -> TrajectoryPoints:
        """Limit ``positions`` [N, D] due at ``times`` seconds from now, for joints ``measured`` [D] where they are
        and the controller's command now ``commanded`` [D] (None: unknown)."""
        times = np.asarray(times, dtype=np.float64)
        positions = np.asarray(positions, dtype=np.float64)
        measured = np.asarray(measured, dtype=np.float64)
        start = measured if commanded is None else np.asarray(commanded, dtype=np.float64)
        dof = self.lower.shape[0]
        if positions.ndim != 2 or positions.shape[1] != dof or times.shape != (positions.shape[0],):
            raise ValueError(f"expected positions [N, {dof}] and times [N], got {positions.shape} and {times.shape}")
        for name, array in (("measured joint positions", measured), ("commanded joint positions", start)):
            if array.shape != (dof,):
                raise ValueError(f"expected {name} [{dof}], got {array.shape}")
        for name, array in (
            ("positions", positions),
            ("times", times),
            ("measured joint positions", measured),
            ("commanded joint positions", start),
        ):
            if not np.all(np.isfinite(array)):
                raise ValueError(f"{name} hold NaN or infinite values")
        if len(times) and (times[0] <= 0 or np.any(np.diff(times) <= 0)):
            raise ValueError("times must be positive and strictly increasing")

        # Range and lead first, then speed from the command in force: a joint found outside its range, or a command
        # found too far ahead, is brought back at the velocity limit, never made to jump. The lead allows at least a
        # period's travel, as the previous trajectory's first point did, so a steady lead is not pulled back and
        # pushed out again every period.
        lead = self.tracking_error + self.max_velocity * np.maximum(times, self.period)[:, None]
        limited = np.clip(np.clip(positions, measured - lead, measured + lead), self.lower, self.upper)
        previous, previous_time = start, 0.0
        for i, t in enumerate(times):
            step = self.max_velocity * (t - previous_time)
            limited[i] = np.clip(limited[i], previous - step, previous + step)
            previous, previous_time = limited[i], t
        return TrajectoryPoints(
            time_from_start=times,
            positions=limited,
            velocities=self._velocities(times, limited, start),
            clipped=bool(np.any(np.abs(limited - positions) > 1e-12)),
        )

    def _velocities(self, times: np.ndarray, positions: np.ndarray, start: np.ndarray) -> np.ndarray:
        """Central differences through the points (the last point comes to rest), within the velocity limits."""
        if len(times) == 0:
            return np.empty((0, start.shape[0]))
        padded_t = np.concatenate([[0.0], times])
        padded_p = np.concatenate([start[None], positions])
        velocities = np.zeros_like(positions)
        if len(times) > 1:
            velocities[:-1] = (padded_p[2:] - padded_p[:-2]) / (padded_t[2:] - padded_t[:-2])[:, None]
        return np.clip(velocities, -self.max_velocity, self.max_velocity)

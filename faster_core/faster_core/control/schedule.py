"""Actions of the latest chunk on the robot's time axis.

Action i of a chunk computed from an observation taken at ``t_obs`` is the position target of control step i, so
the arm is meant to be there at the step's end, ``t_obs + (i + 1) * dt``. That is what demonstrations record: a
servo's target (or a JointTrajectory's first point, due one step later) matches the joint positions of the next
step, not the current one; placing action i at ``t_obs + i * dt`` would run the policy one step ahead of its data.
By the time the chunk is ready, inference latency may have consumed the first actions (those due at or before
``t_ready``): they are skipped, not replayed late. The remaining actions replace the previous chunk's future,
cross-faded over ``blend_steps`` actions (weights ramp linearly from old to new) so that a new chunk never makes the
command jump; ``blend_steps=0`` switches at once. The previous chunk's values at the new chunk's times are linearly
interpolated. With ``replan_steps`` > 1 a running chunk is replaced only after that many of its actions are due (or
all of them, if it has fewer): newer chunks offered before then are declined. Executing several actions of one chunk
is what carries a policy through the pauses of its demonstrations (a jaw closing while the arm stands still), where
one observation cannot tell how long the pause has lasted and every fresh chunk would start it again.

With ``ensemble_coeff`` set, a new chunk is not cross-faded in but averaged with every earlier prediction still
covering the same times (ACT's temporal ensembling, Zhao et al. 2023): the k-th prediction of a time (k = 0 the
oldest) weighs exp(-ensemble_coeff * k), so a positive coefficient favours older predictions. Each command is then a
mean over up to a chunk's worth of observations, which smooths out the errors of single predictions and carries
the pauses along as replanning every 5 does, while every new observation still moves the plan at once.
"""

from __future__ import annotations

import math

import numpy as np


def default_replan_steps(horizon: int, *, ensemble: bool) -> int:
    """Every action when ensembling (each prediction joins the average, as in ACT); otherwise half a chunk, as
    openpi's LIBERO client runs 5 of 10: re-predicting every action without ensembling did worst here (README)."""
    return 1 if ensemble else max(1, horizon // 2)


class ActionSchedule:
    def __init__(self, *, dt: float, blend_steps: int = 3, replan_steps: int = 1, ensemble_coeff: float | None = None):
        if not dt > 0:
            raise ValueError(f"dt must be positive, got {dt}")
        if blend_steps < 0:
            raise ValueError(f"blend_steps must be >= 0, got {blend_steps}")
        if replan_steps < 1:
            raise ValueError(f"replan_steps must be >= 1, got {replan_steps}")
        if ensemble_coeff is not None and not math.isfinite(ensemble_coeff):
            raise ValueError(f"ensemble_coeff must be finite, got {ensemble_coeff}")
        self.dt = dt
        self.blend_steps = blend_steps  # actions over which a new chunk fades in over the previous one
        self.replan_steps = replan_steps  # actions of a chunk due before a newer one may replace it
        self.ensemble_coeff = ensemble_coeff  # None: cross-fade; else temporal ensembling, ACT's m (0.01 there)
        self._times = np.empty(0)
        self._actions: np.ndarray | None = None
        self._weights = np.empty(0)  # per time: summed weight of the predictions averaged, the newest's being 1

    def push(self, actions: np.ndarray, *, observed_at: float, ready_at: float) -> int | None:
        """Adopt a new chunk; returns how many of its leading actions latency made obsolete, or None when the running
        chunk has not yet had ``replan_steps`` actions due by ``ready_at`` and the new one is declined."""
        actions = np.asarray(actions, dtype=np.float64)
        if actions.ndim != 2 or actions.shape[0] == 0:
            raise ValueError(f"a chunk must be [horizon, dim] with horizon > 0, got shape {actions.shape}")
        if not np.all(np.isfinite(actions)):
            raise ValueError("chunk holds NaN or infinite actions")
        if self._actions is not None and actions.shape[1] != self._actions.shape[1]:
            raise ValueError(f"chunk dim {actions.shape[1]} differs from the running chunk's {self._actions.shape[1]}")
        if not self._due(ready_at):
            return None
        skipped = min(max(0, math.floor((ready_at - observed_at) / self.dt + 1e-9)), actions.shape[0])
        times = observed_at + self.dt * np.arange(skipped + 1, actions.shape[0] + 1)
        fresh = actions[skipped:]
        weights = np.ones(len(times))
        previous = self._values_at(times)
        if previous is not None and self.ensemble_coeff is not None:
            values, covered, earlier = previous
            earlier = np.where(covered, earlier * math.exp(self.ensemble_coeff), 0.0)
            weights = earlier + 1.0
            fresh = (earlier[:, None] * values + fresh) / weights[:, None]
        elif previous is not None and self.blend_steps:
            values, covered, _ = previous
            weight = np.minimum(1.0, np.arange(1, len(times) + 1) / (self.blend_steps + 1))[:, None]
            fresh = np.where(covered[:, None], weight * fresh + (1 - weight) * values, fresh)
        self._times, self._actions, self._weights = times, fresh, weights
        return skipped

    def upcoming(self, now: float, *, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Seconds from ``now`` (strictly positive, increasing) and the actions due then; empty when exhausted."""
        if self._actions is None:
            return np.empty(0), np.empty((0, 0))
        keep = self._times > now + 1e-9
        times, actions = self._times[keep] - now, self._actions[keep]
        return times[:limit], actions[:limit]

    def _due(self, now: float) -> bool:
        """No running chunk, or ``replan_steps`` of its actions (all, if it has fewer) are due by ``now``."""
        executed = np.count_nonzero(self._times <= now + 1e-9)
        return self._actions is None or executed >= min(self.replan_steps, len(self._times))

    def clear(self) -> None:
        self._times, self._actions, self._weights = np.empty(0), None, np.empty(0)

    def _values_at(self, times: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """The running plan interpolated at ``times``, a mask of the times it still covers, and its summed weights
        there."""
        if self._actions is None or len(self._times) == 0:
            return None
        covered = (times >= self._times[0]) & (times <= self._times[-1])
        values = np.stack(
            [np.interp(times, self._times, self._actions[:, d]) for d in range(self._actions.shape[1])], axis=1
        )
        return values, covered, np.interp(times, self._times, self._weights)

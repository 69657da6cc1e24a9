"""Per-dimension normalisation statistics of states and actions.

Quantiles (q01/q99) rather than min/max drive the [-1, 1] action normalisation: one outlier step in a
demonstration must not squash every other action into a sliver of the range.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

STAT_FIELDS = ("q01", "q99", "mean", "std")


class StatsError(ValueError):
    """Statistics that cannot normalise data; the message names the field."""


@dataclass(frozen=True)
class ArrayStats:
    """Per-dimension q01, q99, mean and (population) std of samples shaped [N, D]."""

    q01: np.ndarray
    q99: np.ndarray
    mean: np.ndarray
    std: np.ndarray

    @property
    def dim(self) -> int:
        return self.q01.shape[0]

    @classmethod
    def from_samples(cls, samples: np.ndarray) -> ArrayStats:
        samples = np.asarray(samples, dtype=np.float64)
        if samples.ndim != 2 or samples.shape[0] == 0:
            raise StatsError(f"statistics need samples shaped [N>0, D], got {samples.shape}")
        q01, q99 = np.quantile(samples, [0.01, 0.99], axis=0)
        return cls(q01=q01, q99=q99, mean=samples.mean(axis=0), std=samples.std(axis=0))

    def to_json(self) -> dict[str, list[float]]:
        return {name: getattr(self, name).tolist() for name in STAT_FIELDS}

    @classmethod
    def from_json(cls, document: Any, where: str, dim: int) -> ArrayStats:
        """Parse ``{"q01": [...], ...}``; ``where`` names the place in the file for error messages."""
        if not isinstance(document, Mapping):
            raise StatsError(f"{where} must map {list(STAT_FIELDS)} to lists of numbers")
        values = {}
        for name in STAT_FIELDS:
            value = document.get(name)
            try:
                array = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError) as error:
                raise StatsError(f"{where}.{name} is not a list of numbers: {error}") from error
            if array.shape != (dim,) or not np.all(np.isfinite(array)):
                raise StatsError(f"{where}.{name} must list {dim} finite numbers, got {value!r}")
            values[name] = array
        return cls(**values)


@dataclass(frozen=True)
class DatasetStats:
    """Statistics of a dataset's joint-position observations and actions, over ``steps`` steps."""

    state: ArrayStats
    action: ArrayStats
    steps: int

    @classmethod
    def from_episodes(cls, states: Sequence[np.ndarray], actions: Sequence[np.ndarray]) -> DatasetStats:
        state = np.concatenate(states)
        return cls(
            state=ArrayStats.from_samples(state),
            action=ArrayStats.from_samples(np.concatenate(actions)),
            steps=state.shape[0],
        )

    def to_json(self) -> dict[str, Any]:
        return {"steps": self.steps, "state": self.state.to_json(), "action": self.action.to_json()}

    @classmethod
    def from_json(cls, document: Any, where: str, dim: int) -> DatasetStats:
        if not isinstance(document, Mapping):
            raise StatsError(f"{where} must be an object with steps, state and action")
        steps = document.get("steps")
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
            raise StatsError(f"{where}.steps must be a positive integer, got {steps!r}")
        return cls(
            state=ArrayStats.from_json(document.get("state"), f"{where}.state", dim),
            action=ArrayStats.from_json(document.get("action"), f"{where}.action", dim),
            steps=steps,
        )

"""Training samples from an episode dataset (``faster_core.data``): one per step with the next H actions."""

from __future__ import annotations

import numpy as np
import pytest

from faster_core.data.episodes import DatasetWriter, EpisodeDataset
from faster_core.policy.episodes import EpisodeSamples
from faster_core.policy.training import train_policy

from policy_helpers import (
    EMBODIMENT,
    make_policy,
    one_thread,  # noqa: F401 -- fixture
)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_episode_samples_feed_training(tmp_path):
    rng = np.random.default_rng(0)
    lengths = (6, 4)
    limits = EMBODIMENT.limits
    cameras = EMBODIMENT.camera_names
    with DatasetWriter(
        tmp_path, fps=20, embodiment=EMBODIMENT.name, joint_names=EMBODIMENT.joint_names, cameras=cameras
    ) as writer:
        for i, length in enumerate(lengths):
            writer.add_episode(
                timestamps=np.arange(length) / 20,
                state=rng.normal(size=(length, EMBODIMENT.dof)),
                action=rng.uniform(limits.position_lower, limits.position_upper, (length, EMBODIMENT.dof)),
                instruction=f"task {i}",
                success=True,
                frames={c: rng.integers(0, 256, (length, 12, 12, 3), dtype=np.uint8) for c in cameras},
            )
    dataset = EpisodeDataset(tmp_path)
    data = EpisodeSamples(dataset, EMBODIMENT)
    assert len(data) == sum(lengths)
    last = data[lengths[0] - 1]  # final step of episode 0: the chunk repeats its last action
    np.testing.assert_array_equal(last.actions, np.repeat(dataset.episode(0).action[-1:], EMBODIMENT.chunk_length, 0))
    assert last.instruction == "task 0" and last.images["wrist"].shape == (12, 12, 3)
    policy = make_policy()
    result = train_policy(policy, data, steps=2, batch_size=2, learning_rate=1e-3, progress=False)
    assert len(result.losses) == 2 and all(np.isfinite(result.losses))
    assert data.state_normalizer().q01 == tuple(dataset.stats.state.q01.tolist())

"""ALOHA (gym-aloha) demonstrations: recorded in the optional .venv-aloha, read back in this environment."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from faster_core.data.episodes import EpisodeDataset
from faster_core.data.sim.aloha_expert import EPISODE_STEPS, quat_from_axis_angle, transfer_cube_policy
from faster_core.embodiment import Embodiment

from repo_paths import CONFIG_DIR, REPO

pytest.importorskip("mujoco")  # faster_core.data.sim imports it (in .venv-aloha it is MuJoCo 2.3.7)
from faster_core.data.sim import aloha

ALOHA_PYTHON = REPO / ".venv-aloha" / "bin" / "python"
needs_aloha_env = pytest.mark.skipif(
    not ALOHA_PYTHON.exists(),
    reason=".venv-aloha is not set up (`make aloha` or `bash tools/setup_aloha.sh`): gym-aloha needs MuJoCo 2.3.7",
)


@needs_aloha_env
@pytest.mark.slow
def test_aloha_transfer_cube_is_recorded_as_a_bimanual_dataset(tmp_path):
    out = tmp_path / "aloha"
    # A clean environment: the aloha venv's own packages and its default (this checkout's) bimanual.yaml.
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "AMENT_PREFIX_PATH", "VIRTUAL_ENV"}}
    command = [str(ALOHA_PYTHON), "-m", "faster_core.data.sim.aloha", "--episodes", "1", "--task", "transfer-cube"]
    command += ["--out", str(out), "--cameras", "top", "--image-size", "32", "--seed", "3", "--quiet"]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1/1" in result.stdout and "s/episode" in result.stdout  # the success-rate summary

    dataset = EpisodeDataset(out)
    bimanual = Embodiment.from_yaml(CONFIG_DIR / "bimanual.yaml")
    assert (dataset.embodiment, dataset.joint_names, dataset.fps) == ("bimanual", bimanual.joint_names, 50.0)
    assert len(dataset) == 1 and dataset.camera_shapes == {"top": (32, 32, 3)}
    episode = dataset.episode(0)
    assert episode.success and episode.instruction == aloha.TASKS["transfer-cube"].instruction
    assert episode.length == EPISODE_STEPS
    assert episode.state.shape == episode.action.shape == (EPISODE_STEPS, 14)
    np.testing.assert_allclose(np.diff(episode.timestamps), 1 / 50)
    # the joint env tracks the commanded targets once the first step's jump is absorbed
    assert np.abs(episode.action[5:-1] - episode.state[6:]).max() < 0.3
    assert np.ptp(episode.state[:, :6], axis=0).max() > 0.3 and np.ptp(episode.state[:, 7:13], axis=0).max() > 0.3
    grippers = episode.action[:, [6, 13]]  # finger position in metres, within the actuator's range
    assert grippers.min() >= 0.021 - 1e-6 and grippers.max() <= 0.057 + 1e-6
    assert np.all(np.ptp(grippers, axis=0) > 0.03)  # both grippers opened and closed
    assert dataset.frame(0, "top", EPISODE_STEPS - 1).std() > 5  # a rendered scene, not a blank buffer


def test_aloha_outside_its_environment_says_what_to_run(tmp_path):
    try:
        import gym_aloha  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("gym-aloha is importable here")
    with pytest.raises(aloha.AlohaUnavailableError, match=r"make aloha.*\.venv-aloha/bin/python -m"):
        aloha.generate(1, [], tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="unknown ALOHA tasks"):
        aloha.generate(1, [], tmp_path / "out", tasks=["stack"])
    result = subprocess.run(
        [sys.executable, "-m", "faster_core.data.sim.aloha", "--episodes", "1", "--out", str(tmp_path / "cli")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2 and "make aloha" in result.stderr


def test_gripper_units_round_trip_and_the_expert_follows_its_waypoints():
    np.testing.assert_allclose(aloha.gripper_to_normalized(aloha.gripper_to_metres([0.0, 0.5, 1.0])), [0, 0.5, 1])
    start_left = np.array([-0.3, 0.5, 0.3, 1, 0, 0, 0])
    start_right = np.array([0.3, 0.5, 0.3, 1, 0, 0, 0])
    cube = np.array([0.1, 0.5, 0.05])
    policy = transfer_cube_policy(start_left, start_right, cube)
    first, last = policy.action(0), policy.action(EPISODE_STEPS + 5)
    assert first.shape == (16,)
    np.testing.assert_allclose(first[:7], start_left)
    np.testing.assert_allclose(first[8:15], start_right)
    assert last[7] == 0 and last[15] == 1  # left holds the cube, right has let go
    for t in range(EPISODE_STEPS):
        action = policy.action(t)
        np.testing.assert_allclose(np.linalg.norm(action[[3, 4, 5, 6]]), 1, atol=1e-9)
        np.testing.assert_allclose(np.linalg.norm(action[[11, 12, 13, 14]]), 1, atol=1e-9)
    right_at_grasp = policy.action(150)[8:11]  # the right gripper is down at the cube while it closes
    np.testing.assert_allclose(right_at_grasp, cube + np.array([0, 0, -0.015]))
    half_turn = quat_from_axis_angle([1, 0, 0], 180)
    np.testing.assert_allclose(np.abs(half_turn), [0, 1, 0, 0], atol=1e-12)

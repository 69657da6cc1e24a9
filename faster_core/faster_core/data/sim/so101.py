"""SO-101 pick-and-place demonstrations from lerobot-env-so101's scripted ``PickPlaceController``.

The expert commands end-effector deltas that the environment turns into joint targets with IK; we record
those targets, so the dataset is joint-space like a real SO-101 driven by position servos:

* state[t]  = joint positions (``data.qpos``) of shoulder_pan .. wrist_roll and the gripper jaw before step t;
* action[t] = the position-actuator targets (``data.ctrl``) commanded during step t, same order, radians.

Block and goal positions are randomised per episode; 10 Hz (the environment's control_dt).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from lerobot_env_so101 import GymRenderingSpec, SO101PickPlaceGymEnv
from lerobot_env_so101.policy import DEFAULT_ACTION_SCALE
from lerobot_env_so101.scripted import PickPlaceController

from faster_core.data.episodes import DatasetWriter
from faster_core.data.sim.common import CameraRig, GenerationReport, Rollout, collect
from faster_core.embodiment import Embodiment

EMBODIMENT = "so101"  # faster_bringup/config/so101.yaml
TASK_NAME = "pick-place"
INSTRUCTION = "pick up the cube and place it on the goal"
MAX_STEPS = 300  # the registered environment's episode limit


class So101PickPlaceTask:
    """The pick-place environment with its scripted controller and an optional camera rig."""

    name = TASK_NAME
    instruction = INSTRUCTION

    def __init__(self, embodiment: Embodiment, seed: int, cameras: Sequence[str], image_size: int):
        self._env = SO101PickPlaceGymEnv(
            seed=seed,
            action_scale=DEFAULT_ACTION_SCALE,
            random_block_position=True,
            render_spec=GymRenderingSpec(height=image_size, width=image_size),
        )
        if not np.isclose(1.0 / self._env.control_dt, embodiment.control_rate_hz):
            raise RuntimeError(
                f"SO-101 env steps at {1 / self._env.control_dt:g} Hz, the {embodiment.name} embodiment says otherwise"
            )
        self._env.reset(seed=seed)
        model = self._env.model
        self._joint_addresses = [model.joint(j).qposadr[0] for j in embodiment.joint_names]
        self._actuator_ids = [model.actuator(j).id for j in embodiment.joint_names]
        self._controller = PickPlaceController(DEFAULT_ACTION_SCALE)
        self._rig = CameraRig(model, self._env.data, cameras, image_size) if cameras else None

    def rollout(self, rng: np.random.Generator) -> Rollout:
        env = self._env
        observation, _ = env.reset(seed=int(rng.integers(2**31)))
        self._controller.reset()
        states, actions, success = [], [], False
        frames: dict[str, list[np.ndarray]] = {c: [] for c in self._rig.cameras} if self._rig else {}
        for _ in range(MAX_STEPS):
            states.append(env.data.qpos[self._joint_addresses].copy())
            if self._rig:
                for camera, image in self._rig.capture(env.data).items():
                    frames[camera].append(image)
            block_position = observation["environment_state"][:3]
            expert_action = self._controller.act(env.ik_point_pos, block_position, env.goal_pos)
            observation, _, terminated, _, info = env.step(expert_action)
            actions.append(env.data.ctrl[self._actuator_ids].copy())
            success = bool(info["succeed"])
            if terminated:
                break
        return Rollout(np.asarray(states), np.asarray(actions), frames, success)

    def close(self) -> None:
        if self._rig:
            self._rig.close()
        self._env.close()


def generate(
    episodes: int,
    cameras: Sequence[str],
    out_dir: str | Path,
    seed: int = 0,
    *,
    image_size: int = 128,
    image_format: str = "jpeg",
    max_attempts: int | None = None,
    progress: bool = True,
) -> GenerationReport:
    """``episodes`` successful pick-and-place demonstrations; ``max_attempts`` defaults to 3 x episodes + 5."""
    embodiment = Embodiment.load(EMBODIMENT)
    with DatasetWriter(
        out_dir,
        fps=embodiment.control_rate_hz,
        embodiment=embodiment.name,
        joint_names=embodiment.joint_names,
        cameras=cameras,
        image_format=image_format,
    ) as writer:
        task = So101PickPlaceTask(embodiment, seed, cameras, image_size)
        try:
            rng = np.random.default_rng(seed)
            attempts = max_attempts or 3 * episodes + 5
            report = collect(writer, task, episodes=episodes, max_attempts=attempts, rng=rng, progress=progress)
        finally:
            task.close()
    return GenerationReport("so101", str(out_dir), (report,))

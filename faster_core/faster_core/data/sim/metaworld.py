"""Meta-World demonstrations from its scripted experts, recorded in joint space as the single_arm embodiment.

Meta-World's experts command end-effector deltas through a mocap weld; we record what the arm's joints did
instead, so the data matches a robot driven by joint-position trajectories:

* state[t]  = [right_j0 .. right_j6, gripper] before step t, from ``data.qpos``;
* action[t] = the same vector after step t: the joint targets that reproduce the expert's motion.
* Sawyer ``right_j0..right_j6`` become single_arm ``joint1..joint7`` (radians, same order);
  ``gripper`` is the finger closure ``r_close - l_close`` in metres (0 = open, about 0.07 = closed).

Sawyer joint ranges are not the single_arm (Franka-class) limits: the data is for normalisation and tokenizer
work, not for replay on that arm. The rate is Meta-World's own, 80 Hz (frame_skip 5 x 2.5 ms).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import metaworld
import numpy as np
from metaworld.policies import ENV_POLICY_MAP

from faster_core.data.episodes import DatasetWriter
from faster_core.data.sim.common import CameraRig, GenerationReport, Rollout, collect

EMBODIMENT = "single_arm"
JOINT_NAMES = ("joint1", "joint2", "joint3", "joint4", "joint5", "joint6", "joint7", "gripper")
SAWYER_ARM_JOINTS = ("right_j0", "right_j1", "right_j2", "right_j3", "right_j4", "right_j5", "right_j6")
SAWYER_FINGERS = ("r_close", "l_close")
CONTROL_RATE_HZ = 80.0  # 1 / (frame_skip 5 x timestep 2.5 ms), checked against each environment
DEFAULT_TASKS = (  # Meta-World's MT10 set
    "reach-v3",
    "push-v3",
    "pick-place-v3",
    "door-open-v3",
    "drawer-open-v3",
    "drawer-close-v3",
    "button-press-topdown-v3",
    "peg-insert-side-v3",
    "window-open-v3",
    "window-close-v3",
)
TASK_INSTRUCTIONS = {
    "assembly-v3": "pick up the nut and place it onto the peg",
    "basketball-v3": "dunk the basketball into the basket",
    "bin-picking-v3": "grasp the puck from one bin and place it into the other bin",
    "box-close-v3": "grasp the cover and close the box with it",
    "button-press-topdown-v3": "press the button from the top",
    "button-press-topdown-wall-v3": "reach past the wall and press the button from the top",
    "button-press-v3": "press the button",
    "button-press-wall-v3": "reach past the wall and press the button",
    "coffee-button-v3": "push the button on the coffee machine",
    "coffee-pull-v3": "pull the mug out from the coffee machine",
    "coffee-push-v3": "push the mug under the coffee machine",
    "dial-turn-v3": "rotate the dial 180 degrees",
    "disassemble-v3": "pick the nut off the peg",
    "door-close-v3": "close the door",
    "door-lock-v3": "lock the door by rotating the lock clockwise",
    "door-open-v3": "open the door",
    "door-unlock-v3": "unlock the door by rotating the lock counter-clockwise",
    "hand-insert-v3": "insert the gripper into the hole",
    "drawer-close-v3": "push the drawer closed",
    "drawer-open-v3": "pull the drawer open",
    "faucet-open-v3": "rotate the faucet counter-clockwise",
    "faucet-close-v3": "rotate the faucet clockwise",
    "hammer-v3": "hammer the nail into the wall",
    "handle-press-side-v3": "press the handle down sideways",
    "handle-press-v3": "press the handle down",
    "handle-pull-side-v3": "pull the handle up sideways",
    "handle-pull-v3": "pull the handle up",
    "lever-pull-v3": "pull the lever down 90 degrees",
    "pick-place-wall-v3": "pick up the puck, reach past the wall and place it at the goal",
    "pick-out-of-hole-v3": "pick the puck up out of the hole",
    "pick-place-v3": "pick up the puck and place it at the goal",
    "plate-slide-v3": "slide the plate into the cabinet",
    "plate-slide-side-v3": "slide the plate sideways into the cabinet",
    "plate-slide-back-v3": "slide the plate back out of the cabinet",
    "plate-slide-back-side-v3": "slide the plate sideways out of the cabinet",
    "peg-insert-side-v3": "insert the peg sideways into the hole",
    "peg-unplug-side-v3": "unplug the peg sideways",
    "soccer-v3": "kick the soccer ball into the goal",
    "stick-push-v3": "grasp the stick and push the box with it",
    "stick-pull-v3": "grasp the stick and pull the box with it",
    "push-v3": "push the puck to the goal",
    "push-wall-v3": "push the puck past the wall to the goal",
    "push-back-v3": "pull the puck back to the goal",
    "reach-v3": "reach the goal position",
    "reach-wall-v3": "reach past the wall to the goal position",
    "shelf-place-v3": "pick up the puck and place it onto the shelf",
    "sweep-into-v3": "sweep the puck into the hole",
    "sweep-v3": "sweep the puck off the table",
    "window-open-v3": "push the window open",
    "window-close-v3": "push the window closed",
}


class MetaWorldTask:
    """One Meta-World task (its 50 goal variations) with its scripted expert and an optional camera rig."""

    def __init__(self, name: str, seed: int, cameras: Sequence[str], image_size: int):
        if name not in ENV_POLICY_MAP:
            raise ValueError(f"unknown Meta-World task {name!r}; known: {sorted(ENV_POLICY_MAP)}")
        self.name = name
        self.instruction = TASK_INSTRUCTIONS[name]
        benchmark = metaworld.MT1(name, seed=seed)
        self._variations = benchmark.train_tasks
        self._env = benchmark.train_classes[name]()
        self._env.set_task(self._variations[0])
        self._env.reset(seed=seed)
        rate = 1.0 / (self._env.frame_skip * self._env.model.opt.timestep)
        if not np.isclose(rate, CONTROL_RATE_HZ):
            raise RuntimeError(f"Meta-World {name} steps at {rate:g} Hz, this recorder assumes {CONTROL_RATE_HZ:g}")
        self._policy = ENV_POLICY_MAP[name]()
        model = self._env.model
        self._arm_addresses = [model.joint(j).qposadr[0] for j in SAWYER_ARM_JOINTS]
        self._finger_addresses = [model.joint(j).qposadr[0] for j in SAWYER_FINGERS]
        self._rig = CameraRig(model, self._env.data, cameras, image_size) if cameras else None

    def joint_positions(self) -> np.ndarray:
        """[7 arm joints, finger closure] in single_arm order."""
        qpos = self._env.data.qpos
        right, left = qpos[self._finger_addresses]
        return np.append(qpos[self._arm_addresses], right - left)

    def rollout(self, rng: np.random.Generator) -> Rollout:
        env = self._env
        env.set_task(self._variations[rng.integers(len(self._variations))])
        observation, _ = env.reset(seed=int(rng.integers(2**31)))
        states, actions, success = [], [], False
        frames: dict[str, list[np.ndarray]] = {c: [] for c in self._rig.cameras} if self._rig else {}
        for _ in range(env.max_path_length):
            states.append(self.joint_positions())
            if self._rig:
                for camera, image in self._rig.capture(env.data).items():
                    frames[camera].append(image)
            with warnings.catch_warnings():  # the experts warn about their own gains being clipped
                warnings.simplefilter("ignore", UserWarning)
                expert_action = self._policy.get_action(observation)
            observation, _, _, truncated, info = env.step(np.clip(expert_action, -1.0, 1.0))
            actions.append(self.joint_positions())
            success = bool(info["success"])
            if success or truncated:
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
    tasks: Sequence[str] = DEFAULT_TASKS,
    image_size: int = 128,
    image_format: str = "jpeg",
    max_attempts: int | None = None,
    progress: bool = True,
) -> GenerationReport:
    """``episodes`` successful demonstrations per task; ``max_attempts`` per task defaults to 3 x episodes + 5."""
    unknown = [t for t in tasks if t not in ENV_POLICY_MAP]
    if unknown:
        raise ValueError(f"unknown Meta-World tasks {unknown}; known: {sorted(ENV_POLICY_MAP)}")
    reports = []
    with DatasetWriter(
        out_dir,
        fps=CONTROL_RATE_HZ,
        embodiment=EMBODIMENT,
        joint_names=JOINT_NAMES,
        cameras=cameras,
        image_format=image_format,
    ) as writer:
        for index, name in enumerate(tasks):
            task = MetaWorldTask(name, seed + index, cameras, image_size)
            try:
                rng = np.random.default_rng([seed, index])
                attempts = max_attempts or 3 * episodes + 5
                reports.append(
                    collect(writer, task, episodes=episodes, max_attempts=attempts, rng=rng, progress=progress)
                )
            finally:
                task.close()
    return GenerationReport("metaworld", str(out_dir), tuple(reports))

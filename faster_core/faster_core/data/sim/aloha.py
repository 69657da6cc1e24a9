"""ALOHA bimanual demonstrations (gym-aloha 0.1.5) from our own waypoint expert, as the bimanual embodiment.

Runs only in the optional ``.venv-aloha`` (``make aloha`` / ``bash tools/setup_aloha.sh``): gym-aloha's mocap
end-effector environment needs MuJoCo 2.3.x, and the main environment pins MuJoCo 3. This module imports
gym_aloha and dm_control inside functions only, so importing it anywhere is safe; ``generate`` says what to
run where they are missing::

    .venv-aloha/bin/python -m faster_core.data.sim.aloha --episodes 50 --task transfer-cube --out DIR \\
        [--cameras top --image-size 128]

Each attempt (as in the ACT authors' recording scheme):

1. the waypoint expert (``aloha_expert``) drives gym-aloha's end-effector env, where mocap bodies pull the
   grippers along the waypoints, and the arm joints it produces are recorded;
2. those joints are replayed as joint-position targets in gym-aloha's joint env (the one a policy controls)
   from the same object poses; only replays that end at gym-aloha's full reward (4: cube held by the left
   gripper off the table / peg touching the socket's pin, at the last step) are written.

Recorded per step t of the 400 (8 s at 50 Hz), in the bimanual embodiment's order:

* state[t]  = joint positions of the joint env before step t;
* action[t] = the 14-D joint target commanded at step t (arm joints: the end-effector run's joints after its
  step t; grippers: the expert's gripper command, clipped to the finger actuator's range).

Joint mapping, per arm (``left_`` = vx300s_left, ``right_`` = vx300s_right), radians:
joint1 waist, joint2 shoulder, joint3 elbow, joint4 forearm_roll, joint5 wrist_angle, joint6 wrist_rotate.
``gripper`` is the finger slide position in METRES (joint ``left_finger``; 0.021 = closed, 0.057 = open), the
unit of the finger's position actuator, not gym-aloha's normalised 0..1 gripper. To replay an action in
gym-aloha's joint env: ``normalised = (metres - 0.01844) / (0.058 - 0.01844)`` (``gripper_to_normalized``).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faster_core.data.episodes import DatasetWriter
from faster_core.data.sim.aloha_expert import EPISODE_STEPS, WaypointPolicy, insertion_policy, transfer_cube_policy
from faster_core.data.sim.common import CameraRig, GenerationReport, Rollout, TaskReport, collect
from faster_core.embodiment import Embodiment, EmbodimentError, resolve_config

ENV_NAME = "aloha"
EMBODIMENT = "bimanual"  # faster_bringup/config/bimanual.yaml
CONTROL_RATE_HZ = 50.0  # gym-aloha's DT = 0.02 s
ARM_JOINTS = ("waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate", "left_finger")
ARMS = ("vx300s_left", "vx300s_right")
# gym-aloha's normalisation of the finger position (constants.PUPPET_GRIPPER_POSITION_CLOSE / _OPEN), metres
GRIPPER_CLOSED = 0.01844
GRIPPER_OPEN = 0.05800
FULL_REWARD = 4  # gym-aloha's success: its env terminates with is_success at this reward
SETUP_HINT = (
    "gym-aloha runs in its own environment (it needs MuJoCo 2.3.7; the main env pins MuJoCo 3): run `make aloha` "
    "(or `bash tools/setup_aloha.sh`), then `.venv-aloha/bin/python -m faster_core.data.sim.aloha --episodes N "
    "--task transfer-cube --out DIR`"
)


@dataclass(frozen=True)
class AlohaTaskSpec:
    instruction: str
    ee_xml: str  # gym-aloha asset of the mocap end-effector env
    joint_xml: str  # gym-aloha asset of the joint-position env
    ee_task: str  # gym_aloha.tasks.sim_end_effector class
    joint_task: str  # gym_aloha.tasks.sim class


TASKS = {
    "transfer-cube": AlohaTaskSpec(
        instruction="pick up the red cube with the right arm and hand it over to the left arm",
        ee_xml="bimanual_viperx_end_effector_transfer_cube.xml",
        joint_xml="bimanual_viperx_transfer_cube.xml",
        ee_task="TransferCubeEndEffectorTask",
        joint_task="TransferCubeTask",
    ),
    "insertion": AlohaTaskSpec(
        instruction="pick up the red peg and the blue socket and insert the peg into the socket",
        ee_xml="bimanual_viperx_end_effector_insertion.xml",
        joint_xml="bimanual_viperx_insertion.xml",
        ee_task="InsertionEndEffectorTask",
        joint_task="InsertionTask",
    ),
}
DEFAULT_TASKS = ("transfer-cube",)


class AlohaUnavailableError(RuntimeError):
    """gym-aloha, dm_control or MuJoCo 2.3 is missing from this Python environment."""


def gripper_to_normalized(metres: np.ndarray) -> np.ndarray:
    """Finger position in metres to gym-aloha's normalised gripper (0 closed, 1 open)."""
    return (np.asarray(metres) - GRIPPER_CLOSED) / (GRIPPER_OPEN - GRIPPER_CLOSED)


def gripper_to_metres(normalized: np.ndarray) -> np.ndarray:
    return np.asarray(normalized) * (GRIPPER_OPEN - GRIPPER_CLOSED) + GRIPPER_CLOSED


def default_embodiment_file() -> Path:
    """``bimanual`` under AMENT_PREFIX_PATH (a sourced workspace), else this checkout's faster_bringup file."""
    try:
        return resolve_config(EMBODIMENT)
    except EmbodimentError:
        pass
    repo_file = Path(__file__).resolve().parents[4] / "faster_bringup" / "config" / f"{EMBODIMENT}.yaml"
    if repo_file.is_file():
        return repo_file
    raise EmbodimentError(f"no {EMBODIMENT} embodiment installed or at {repo_file}: pass --embodiment PATH")


def _import_aloha() -> dict[str, Any]:
    """gym-aloha's pieces we use, or an AlohaUnavailableError that says what to run."""
    try:
        import mujoco
        from dm_control import mujoco as dm_mujoco
        from gym_aloha import constants
        from gym_aloha.tasks import sim, sim_end_effector
        from gym_aloha.utils import sample_box_pose, sample_insertion_pose
    except ImportError as error:
        raise AlohaUnavailableError(f"cannot import gym-aloha ({error}). {SETUP_HINT}") from error
    if not mujoco.__version__.startswith("2.3."):
        raise AlohaUnavailableError(
            f"MuJoCo {mujoco.__version__} is installed; gym-aloha's end-effector env only tracks on 2.3.x. {SETUP_HINT}"
        )
    return {
        "Physics": dm_mujoco.Physics,
        "constants": constants,
        "sim": sim,
        "sim_end_effector": sim_end_effector,
        "sample_box_pose": sample_box_pose,
        "sample_insertion_pose": sample_insertion_pose,
    }


class AlohaTask:
    """One gym-aloha task: its end-effector and joint physics, the waypoint expert, an optional camera rig.

    The environments are driven at the physics level with gym-aloha's own task objects (``before_step`` maps
    actions to controls, ``get_reward`` judges success), which skips the stock observation's three 640x480
    renders per step; frames come only from the cameras asked for, at the size asked for.
    """

    def __init__(self, name: str, embodiment: Embodiment, cameras: Sequence[str], image_size: int):
        aloha = _import_aloha()
        spec = TASKS[name]
        self.name = name
        self.instruction = spec.instruction
        self._aloha = aloha
        constants = aloha["constants"]
        if not np.isclose(1.0 / constants.DT, embodiment.control_rate_hz) or embodiment.dof != 2 * len(ARM_JOINTS):
            raise RuntimeError(
                f"gym-aloha is 14 joints at {1 / constants.DT:g} Hz; the {embodiment.name} embodiment has "
                f"{embodiment.dof} at {embodiment.control_rate_hz:g} Hz"
            )
        self._start_arm_pose = np.asarray(constants.START_ARM_POSE, dtype=float)
        self._ee = aloha["Physics"].from_xml_path(str(constants.ASSETS_DIR / spec.ee_xml))
        self._joint = aloha["Physics"].from_xml_path(str(constants.ASSETS_DIR / spec.joint_xml))
        self._ee_task = getattr(aloha["sim_end_effector"], spec.ee_task)()
        self._joint_task = getattr(aloha["sim"], spec.joint_task)()
        self._substeps = round(constants.DT / self._joint.model.opt.timestep)
        # qpos addresses of the 14 recorded joints and the finger actuators' control ranges, embodiment order
        self._ee_qpos = _joint_addresses(self._ee)
        self._joint_qpos = _joint_addresses(self._joint)
        model = self._joint.model
        fingers = [model.name2id(f"{arm}/{ARM_JOINTS[-1]}", "joint") for arm in ARMS]
        finger_range = model.actuator_ctrlrange[np.isin(model.actuator_trnid[:, 0], fingers)]  # actuators unnamed
        self._finger_low, self._finger_high = finger_range[:, 0].max(), finger_range[:, 1].min()
        self._rig = CameraRig(self._joint.model.ptr, self._joint.data.ptr, cameras, image_size) if cameras else None

    def _object_poses(self, seed: int) -> np.ndarray:
        """Object pose(s) as gym-aloha samples them for ``seed``: the cube, or the peg then the socket (7 each)."""
        if self.name == "transfer-cube":
            return self._aloha["sample_box_pose"](seed)
        return np.concatenate(self._aloha["sample_insertion_pose"](seed))

    def _expert(self, objects: np.ndarray, left_start: np.ndarray, right_start: np.ndarray) -> WaypointPolicy:
        if self.name == "transfer-cube":
            return transfer_cube_policy(left_start, right_start, objects[:3])
        return insertion_policy(left_start, right_start, objects[:3], objects[7:10])

    def _run_expert(self, objects: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
        """End-effector run: the joints after each step [T, 14] (gripper column unused), the gripper command
        of each step [T, 2] in metres, and whether it reached the full reward."""
        physics, task = self._ee, self._ee_task
        with physics.reset_context():
            task.initialize_robots(physics)  # start pose, mocap aligned with the grippers, grippers closed
            physics.data.qpos[16:] = objects
        expert = self._expert(objects, _mocap_pose(physics, 0), _mocap_pose(physics, 1))
        joints, grippers, reward = [], [], 0
        for t in range(EPISODE_STEPS):
            command = expert.action(t)
            task.before_step(command, physics)
            physics.step(self._substeps)
            joints.append(physics.data.qpos[self._ee_qpos].copy())
            grippers.append(gripper_to_metres(command[[7, 15]]))
            reward = max(reward, task.get_reward(physics))
        return np.asarray(joints), np.asarray(grippers), reward == FULL_REWARD

    def rollout(self, rng: np.random.Generator) -> Rollout:
        objects = self._object_poses(int(rng.integers(2**31)))
        joints, grippers, expert_success = self._run_expert(objects)
        actions = joints.copy()
        actions[:, [6, 13]] = np.clip(grippers, self._finger_low, self._finger_high)
        frames: dict[str, list[np.ndarray]] = {c: [] for c in self._rig.cameras} if self._rig else {}
        if not expert_success:  # its joints would not succeed either: skip the replay
            return Rollout(actions[:0], actions[:0], frames, False)

        physics, task = self._joint, self._joint_task
        with physics.reset_context():
            physics.data.qpos[:16] = self._start_arm_pose
            physics.data.ctrl[:] = self._start_arm_pose
            physics.data.qpos[16:] = objects
        states, rewards = [], []
        for action in actions:
            states.append(physics.data.qpos[self._joint_qpos].copy())
            if self._rig:
                for camera, image in self._rig.capture(physics.data.ptr).items():
                    frames[camera].append(image)
            command = action.copy()
            command[[6, 13]] = gripper_to_normalized(action[[6, 13]])
            task.before_step(command, physics)
            physics.step(self._substeps)
            rewards.append(task.get_reward(physics))
        success = rewards[-1] == FULL_REWARD  # still held / inserted at the end, not only touched once
        return Rollout(np.asarray(states), actions, frames, success)

    def close(self) -> None:
        if self._rig:
            with contextlib.suppress(AttributeError):  # MuJoCo 2.3's Renderer has no close(): freed with it
                self._rig.close()


def _mocap_pose(physics: Any, index: int) -> np.ndarray:
    return np.concatenate([physics.data.mocap_pos[index], physics.data.mocap_quat[index]]).copy()


def _joint_addresses(physics: Any) -> list[int]:
    """qpos index of each recorded joint, in the bimanual order (left arm 6 + gripper, right arm 6 + gripper)."""
    return [
        int(physics.model.jnt_qposadr[physics.model.name2id(f"{arm}/{j}", "joint")]) for arm in ARMS for j in ARM_JOINTS
    ]


def generate(
    episodes: int,
    cameras: Sequence[str],
    out_dir: str | Path,
    seed: int = 0,
    *,
    tasks: Sequence[str] | None = None,
    image_size: int = 128,
    image_format: str = "jpeg",
    max_attempts: int | None = None,
    progress: bool = True,
    embodiment: str | Path | None = None,
) -> GenerationReport:
    """``episodes`` successful demonstrations per task into one dataset; ``max_attempts`` per task defaults to
    3 x episodes + 5. Raises AlohaUnavailableError (what to run) outside the ALOHA environment."""
    if episodes < 1:
        raise ValueError(f"episodes must be positive, got {episodes}")
    tasks = tuple(tasks or DEFAULT_TASKS)
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ValueError(f"unknown ALOHA tasks {unknown}; choose from {list(TASKS)}")
    _import_aloha()  # fail before creating the output directory
    spec = Embodiment.load(embodiment or default_embodiment_file())
    reports: list[TaskReport] = []
    with DatasetWriter(
        out_dir,
        fps=spec.control_rate_hz,
        embodiment=spec.name,
        joint_names=spec.joint_names,
        cameras=cameras,
        image_format=image_format,
    ) as writer:
        rng = np.random.default_rng(seed)
        for name in tasks:
            task = AlohaTask(name, spec, cameras, image_size)
            try:
                attempts = max_attempts or 3 * episodes + 5
                reports.append(
                    collect(writer, task, episodes=episodes, max_attempts=attempts, rng=rng, progress=progress)
                )
            finally:
                task.close()
    return GenerationReport(ENV_NAME, str(out_dir), tuple(reports))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m faster_core.data.sim.aloha",
        description="Record successful ALOHA (gym-aloha) waypoint-expert episodes as the bimanual embodiment, "
        "in joint space at 50 Hz. Run with .venv-aloha/bin/python (make aloha).",
    )
    parser.add_argument("--episodes", type=int, required=True, help="successful episodes to record per task")
    parser.add_argument(
        "--task",
        "--tasks",
        dest="tasks",
        nargs="+",
        choices=tuple(TASKS),
        default=list(DEFAULT_TASKS),
        help="task(s) (default transfer-cube)",
    )
    parser.add_argument("--out", type=Path, required=True, help="new dataset directory")
    parser.add_argument(
        "--cameras",
        nargs="*",
        default=[],
        help="cameras to render: top, angle, left_wrist, right_wrist, "
        "front_close, left_pillar, right_pillar (default none)",
    )
    parser.add_argument("--image-size", type=int, default=128, help="square frame side in pixels (default 128)")
    parser.add_argument("--image-format", choices=("jpeg", "png"), default="jpeg", help="frame compression")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-attempts", type=int, help="give up a task after this many tries (default 3N+5)")
    parser.add_argument(
        "--embodiment",
        help="bimanual embodiment YAML (default: installed bimanual, else this checkout's "
        "faster_bringup/config/bimanual.yaml)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        report = generate(
            args.episodes,
            args.cameras,
            args.out,
            args.seed,
            tasks=args.tasks,
            image_size=args.image_size,
            image_format=args.image_format,
            max_attempts=args.max_attempts,
            progress=not args.quiet,
            embodiment=args.embodiment,
        )
    except AlohaUnavailableError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(report.summary())
    return 0 if all(task.recorded >= args.episodes for task in report.tasks) else 1


if __name__ == "__main__":
    sys.exit(main())

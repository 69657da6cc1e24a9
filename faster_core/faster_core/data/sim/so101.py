"""SO-101 pick-and-place demonstrations from lerobot-env-so101's scripted ``PickPlaceController``.

The expert commands end-effector deltas that the environment turns into joint targets with IK; we record
those targets, so the dataset is joint-space like a real SO-101 driven by position servos:

* state[t]  = joint positions (``data.qpos``) of shoulder_pan .. wrist_roll and the gripper jaw before step t;
* action[t] = the position-actuator targets (``data.ctrl``) commanded during step t, same order, radians.

Block and goal positions are randomised per episode; 10 Hz (the environment's control_dt). The environment's
scene has no goal geometry (success is judged against a hidden random point), so a camera policy could only guess
where to place the block; the cameras therefore show a green pad of the success radius at the goal, as a real
pick-and-place cell marks its drop zone. The pad is drawn at render time and takes no part in the physics.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np
from lerobot_env_so101 import GymRenderingSpec, SO101PickPlaceGymEnv
from lerobot_env_so101.pick_place_env import _SAMPLING_BOUNDS, PLACE_SUCCESS_DISTANCE
from lerobot_env_so101.policy import DEFAULT_ACTION_SCALE
from lerobot_env_so101.scripted import PickPlaceController
from lerobot_env_so101.scripted.pick_place import Phase
from lerobot_env_so101.scripted.reach_close import GRIPPER_CLOSED

from faster_core.data.episodes import DatasetWriter
from faster_core.data.sim.common import CameraRig, GenerationReport, Marker, MountedCamera, Rollout, collect
from faster_core.embodiment import Embodiment

EMBODIMENT = "so101"  # faster_bringup/config/so101.yaml
TASK_NAME = "pick-place"
INSTRUCTION = "pick up the cube and place it on the goal"
MAX_STEPS = 300  # the registered environment's episode limit
GOAL_RGBA = (0.1, 0.75, 0.2, 1.0)  # the goal pad's colour: far from the block's purple and the floor's blues
# Where the "front" camera is mounted. The scene's own camera sits 0.8 m out, where the 4 cm block covers 12-42
# pixels of a 64 px frame depending on where it is; mounted closer and aimed at the area blocks and goals are
# sampled from, it covers 21-101, with the whole arm, a lifted block and the goal still in view.
FRONT_CAMERA_POSITION = (0.62, 0.0, 0.38)  # metres, world frame (robot base at the origin, facing +x)
FRONT_CAMERA_TARGET = (0.16, 0.0, 0.06)  # the point the optical axis passes through
# The arm's CAD meshes have 322k triangles, which software rendering draws at ~90 ms a frame whatever the frame's size;
# merged on a 2 mm grid they keep 24k and look the same at 224 px (10-15 ms). See CameraRig / coarsened_meshes.
RENDER_MESH_CELL_M = 0.002
# A wrist camera as on LeRobot SO-101 kits: screwed to the gripper 5 cm beside the jaws, looking down past their tips,
# so the block sits between the jaws while the gripper closes on it. The scene's model has no such camera; CameraRig
# renders it from the gripper's pose. Gripper frame: -z runs from the wrist to the jaw tips.
WRIST_CAMERA = MountedCamera(
    body="gripper",
    position=(0.0, -0.05, 0.0),
    target=(0.0, 0.0, -0.15),
    up=(1.0, 0.0, 0.0),
    fovy_deg=80.0,  # a wide-angle UVC module's field of view
)
MOUNTED_CAMERAS = {"wrist": WRIST_CAMERA}
CAMERAS = ("front", *MOUNTED_CAMERAS)  # what an embodiment may list: the scene's own camera and the mounted ones
# While the controller lifts, carries or lowers the block, the grasp point holds it 1.5 cm above its centre; farther
# than this the grasp missed (or the block slipped out) and the expert starts over from the hover, jaw open.
MISSED_GRASP_M = 0.035
SHUT_STEPS = 3  # control steps an early shut of the jaw lasts (a disturbance): the servo closes 1.74 -> 0.35 rad
SAMPLING_AREA = np.asarray(_SAMPLING_BOUNDS)  # [[x_min, y_min], [x_max, y_max]] metres: where blocks and goals start


@dataclass(frozen=True)
class Disturbance:
    """What goes wrong while the expert demonstrates, as DART injects noise for behaviour cloning: the arm executes
    something else than the expert commanded, and the recording keeps the expert's command. The draws are seeded by
    each episode's scene seed."""

    position_m: float = 0.0  # std of Gaussian noise on each full-speed end-effector move (scaled by the move's speed)
    shut_probability: float = 0.0  # per descent step: the jaw shuts early, for SHUT_STEPS steps

    def __post_init__(self):
        if not (np.isfinite(self.position_m) and self.position_m >= 0):
            raise ValueError(f"disturbance position_m must be >= 0 metres, got {self.position_m}")
        if not 0 <= self.shut_probability <= 1:
            raise ValueError(f"disturbance shut_probability must be in [0, 1], got {self.shut_probability}")


@dataclass(frozen=True)
class ExpertCommand:
    targets: np.ndarray  # [D] joint targets the expert decided from the observation: what a recording keeps
    executed: np.ndarray  # [D] what the arm is driven to: ``targets`` unless the execution was disturbed


class So101PickPlace:
    """The pick-place scene one control step at a time, driven by joint targets or by the scripted expert.

    ``command`` is what a robot behind joint_trajectory_controller does: position-servo targets held for one
    control step. ``expert_step`` lets the shipped controller act (end-effector deltas through the environment's
    IK) and returns the joint targets it commanded. Success and termination are the environment's own.
    """

    def __init__(
        self,
        embodiment: Embodiment,
        seed: int,
        cameras: Sequence[str] = (),
        image_size: int = 128,
        disturbance: Disturbance = Disturbance(),  # expert mode; the default disturbs nothing
    ):
        self.disturbance = disturbance
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
        model = self._env.model
        _aim_camera(model, "front", FRONT_CAMERA_POSITION, FRONT_CAMERA_TARGET)
        self._joint_addresses = [model.joint(j).qposadr[0] for j in embodiment.joint_names]
        self._actuator_ids = [model.actuator(j).id for j in embodiment.joint_names]
        self._ctrl_range = model.actuator_ctrlrange[self._actuator_ids]
        self._substeps = round(self._env.control_dt / self._env.physics_dt)
        self._targets: np.ndarray | None = None
        # env.step() applies an action then judges success; joint targets replace its IK action step (the expert's IK
        # runs in expert_targets).
        self._ee_apply = self._env.apply_action
        self._env.apply_action = self._apply
        self._controller = PickPlaceController(DEFAULT_ACTION_SCALE)
        self._rig = (
            CameraRig(
                model,
                self._env.data,
                cameras,
                image_size,
                mesh_cell_m=RENDER_MESH_CELL_M,
                mounted=MOUNTED_CAMERAS,
            )
            if cameras
            else None
        )
        self.cameras = tuple(cameras)
        self.reset(seed)

    @property
    def dt(self) -> float:
        return self._env.control_dt

    def reset(self, seed: int) -> None:
        self._observation, _ = self._env.reset(seed=seed)
        self._controller.reset()
        self._draws = np.random.default_rng(seed)  # the disturbances of this scene
        self._shut_steps_left = 0
        self.retries = 0  # missed grasps the expert started over from, this episode
        self.success = self.terminated = False
        self.closest_approach = self._gripper_to_block()

    def progress(self) -> dict[str, float | bool]:
        """How far a failed episode got: closest gripper-to-block distance so far, whether the block was lifted
        (the environment's own carried test) and where it is relative to the goal, in metres."""
        block, goal = self.object_positions()
        return {
            "closest_approach_m": round(self.closest_approach, 4),
            "lifted": bool(self._env._was_carried),
            "block_to_goal_m": round(float(np.linalg.norm(block[:2] - goal[:2])), 4),
        }

    def object_positions(self) -> tuple[np.ndarray, np.ndarray]:
        """The block's and the goal's positions (world frame, metres): what a camera policy has to infer."""
        return self._env.data.sensor("block_pos").data.copy(), self._env.goal_pos

    def _gripper_to_block(self) -> float:
        return float(np.linalg.norm(self._env.ik_point_pos - self._env.data.sensor("block_pos").data))

    def joint_positions(self) -> np.ndarray:
        return self._env.data.qpos[self._joint_addresses].copy()

    def commanded_targets(self) -> np.ndarray:
        return self._env.data.ctrl[self._actuator_ids].copy()

    def goal_pad(self) -> Marker:
        """The drop zone: a disc on the floor at the goal, as wide as the environment's success distance."""
        x, y, _ = self._env.goal_pos
        return Marker(position=np.array([x, y, 1e-3]), radius=PLACE_SUCCESS_DISTANCE, rgba=GOAL_RGBA)

    def frames(self) -> dict[str, np.ndarray]:
        return self._rig.capture(self._env.data, markers=[self.goal_pad()]) if self._rig else {}

    def command(self, targets: np.ndarray) -> None:
        """Hold joint ``targets`` (clipped to the servos' range) for one control step."""
        self._targets = np.clip(np.asarray(targets, dtype=np.float64), self._ctrl_range[:, 0], self._ctrl_range[:, 1])
        self._step()

    def expert_targets(self) -> ExpertCommand:
        """The joint targets the scripted controller commands from the current observation; nothing moves yet.

        A recording pairs each observation with the command decided from it, so a robot publishes these with the
        observation and then holds them for the step (``command``). The expert retries a missed grasp: when it
        lifts, carries or lowers while the block is not in its jaws, it starts over from the hover with the jaw
        open (the shipped controller would carry nothing to the goal).

        With a ``disturbance`` the arm is driven to something else than the expert commands (``executed``) while
        the command a recording keeps stays the expert's own (DART): each move (not a hold while the jaw closes or
        opens) gets Gaussian noise of ``position_m`` times the move's fraction of full speed, so slow moves near the
        block still reach the controller's 4 mm tolerance; and with ``shut_probability`` per descent step the jaw
        shuts early for ``SHUT_STEPS`` steps, so recordings show the expert opening a jaw that closed too soon, and
        retrying where it closed on nothing.
        The controller steers from where the gripper is: recordings hold its clean answers to states off its path.
        """
        if self._controller.phase in (Phase.LIFT, Phase.TRAVERSE, Phase.LOWER) and (
            self._gripper_to_block() > MISSED_GRASP_M
        ):
            self._controller.reset()
            self.retries += 1
        block_position = self._observation["environment_state"][:3]
        action = np.asarray(self._controller.act(self._env.ik_point_pos, block_position, self._env.goal_pos))
        executed = action.copy()
        if self.disturbance != Disturbance():
            noise, shut = self._draws.normal(0.0, 1.0, 3), self._draws.uniform()
            if np.any(action[:3] != 0):
                speed = min(1.0, float(np.abs(action[:3]).max()))
                executed[:3] += noise * self.disturbance.position_m / DEFAULT_ACTION_SCALE * speed
            if self._controller.phase is not Phase.DESCEND:
                self._shut_steps_left = 0
            elif not self._shut_steps_left and shut < self.disturbance.shut_probability:
                self._shut_steps_left = SHUT_STEPS
            if self._shut_steps_left:
                self._shut_steps_left -= 1
                executed[3] = GRIPPER_CLOSED
        if np.array_equal(executed, action):
            targets = self._solve_ik(action, keep=True)
            return ExpertCommand(targets, targets)
        return ExpertCommand(self._solve_ik(action, keep=False), self._solve_ik(executed, keep=True))

    def _solve_ik(self, action: np.ndarray, *, keep: bool) -> np.ndarray:
        """Joint targets for an end-effector ``action`` (the environment's IK). The IK integrates its target and
        recomputes the scene's kinematics (which its next seed reads), so a solve that is not kept runs on a copy of
        the scene and leaves the environment as it was."""
        env = self._env
        if not keep:
            saved = env._data, env._target_ee_pos, env._last_action_was_zero
            env._data = copy.copy(env._data)
        # The environment solves its IK and steps the physics in one call; with no substeps it only sets the targets.
        substeps, env._n_substeps = env._n_substeps, 0
        try:
            self._ee_apply(action)
            return env.data.ctrl[self._actuator_ids].copy()
        finally:
            env._n_substeps = substeps
            if not keep:
                env._data, env._target_ee_pos, env._last_action_was_zero = saved

    def expert_step(self) -> np.ndarray:
        """One step of the scripted controller (``expert_targets``, then ``command`` of what is executed); returns
        the expert's own targets (the action a recording keeps)."""
        command = self.expert_targets()
        self.command(command.executed)
        return command.targets

    def _step(self) -> None:
        self._observation, _, terminated, _, info = self._env.step(None)
        self.success = bool(info["succeed"])
        self.terminated = bool(terminated)
        self.closest_approach = min(self.closest_approach, self._gripper_to_block())

    def _apply(self, _action: None) -> None:
        self._env.data.ctrl[self._actuator_ids] = self._targets
        for _ in range(self._substeps):
            mujoco.mj_step(self._env.model, self._env.data)

    def close(self) -> None:
        if self._rig:
            self._rig.close()
        self._env.close()


def _aim_camera(model: mujoco.MjModel, camera: str, position: Sequence[float], target: Sequence[float]) -> None:
    """Mount a fixed world camera at ``position`` looking at ``target``, image "up" towards +z."""
    position = np.asarray(position, dtype=np.float64)
    forward = np.asarray(target, dtype=np.float64) - position
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, (0.0, 0.0, 1.0))
    right /= np.linalg.norm(right)
    # MuJoCo cameras look along their -z axis with +y up in the image.
    rotation = np.stack([right, np.cross(right, forward), -forward], axis=1)
    quaternion = np.empty(4)
    mujoco.mju_mat2Quat(quaternion, rotation.ravel())
    index = model.camera(camera).id
    model.cam_pos[index], model.cam_quat[index] = position, quaternion


class So101PickPlaceTask:
    """Scripted-expert episodes of the pick-place scene, for the demonstration datasets."""

    name = TASK_NAME
    instruction = INSTRUCTION

    def __init__(
        self,
        embodiment: Embodiment,
        seed: int,
        cameras: Sequence[str],
        image_size: int,
        disturbance: Disturbance = Disturbance(),  # the default: the expert executes what it commands
    ):
        self._sim = So101PickPlace(embodiment, seed, cameras, image_size, disturbance)

    def rollout(self, rng: np.random.Generator) -> Rollout:
        sim = self._sim
        sim.reset(int(rng.integers(2**31)))
        states, actions = [], []
        frames: dict[str, list[np.ndarray]] = {c: [] for c in sim.cameras}
        for _ in range(MAX_STEPS):
            states.append(sim.joint_positions())
            for camera, image in sim.frames().items():
                frames[camera].append(image)
            actions.append(sim.expert_step())
            if sim.terminated:
                break
        return Rollout(np.asarray(states), np.asarray(actions), frames, sim.success)

    def close(self) -> None:
        self._sim.close()


def generate(
    episodes: int,
    cameras: Sequence[str],
    out_dir: str | Path,
    seed: int = 0,
    *,
    image_size: int = 128,
    image_format: str = "jpeg",
    max_attempts: int | None = None,
    disturbance: Disturbance = Disturbance(),  # the default: the expert executes what it commands
    progress: bool = True,
) -> GenerationReport:
    """``episodes`` successful pick-and-place demonstrations; ``max_attempts`` defaults to 3 x episodes + 5.

    A ``disturbance`` drives the arm off what the expert commands while the recorded actions stay the expert's own
    (DART): see ``So101PickPlace.expert_targets``.
    """
    embodiment = Embodiment.load(EMBODIMENT)
    with DatasetWriter(
        out_dir,
        fps=embodiment.control_rate_hz,
        embodiment=embodiment.name,
        joint_names=embodiment.joint_names,
        cameras=cameras,
        image_format=image_format,
    ) as writer:
        task = So101PickPlaceTask(embodiment, seed, cameras, image_size, disturbance)
        try:
            rng = np.random.default_rng(seed)
            attempts = max_attempts or 3 * episodes + 5
            report = collect(writer, task, episodes=episodes, max_attempts=attempts, rng=rng, progress=progress)
        finally:
            task.close()
    return GenerationReport("so101", str(out_dir), (report,))

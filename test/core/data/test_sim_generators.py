"""Scripted-expert demonstrations from Meta-World and SO-101, and the camera rig's upright frames."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from faster_core.data.episodes import EpisodeDataset
from faster_core.embodiment import PARAMETERS, Embodiment, load_parameter_file

from repo_paths import CONFIG_DIR

mujoco = pytest.importorskip("mujoco")

# A camera looking along +x at three boxes: red above, blue below, green to the camera's left (+y).
# ``rolled`` is the same camera turned 180 degrees about its view axis, as Meta-World mounts its corner cameras.
SCENE = """
<mujoco>
  <worldbody>
    <camera name="upright" pos="0 0 0" xyaxes="0 -1 0 0 0 1" fovy="60"/>
    <camera name="rolled" pos="0 0 0" xyaxes="0 1 0 0 0 -1" fovy="60"/>
    <geom type="box" size=".1 .3 .3" pos="2 0 .6" rgba="1 0 0 1"/>
    <geom type="box" size=".1 .3 .3" pos="2 0 -.6" rgba="0 0 1 1"/>
    <geom type="box" size=".1 .3 .3" pos="2 .6 0" rgba="0 1 0 1"/>
  </worldbody>
</mujoco>
"""


def _centroid(image: np.ndarray, channel: int) -> tuple[float, float]:
    others = [c for c in range(3) if c != channel]
    rows, cols = np.nonzero((image[..., channel] > 100) & (image[..., others].max(axis=-1) < 60))
    return rows.mean() / image.shape[0], cols.mean() / image.shape[1]


def test_camera_rig_turns_rolled_cameras_upright_without_mirroring():
    from faster_core.data.sim.common import CameraRig

    model = mujoco.MjModel.from_xml_string(SCENE)
    data = mujoco.MjData(model)
    rig = CameraRig(model, data, ["upright", "rolled"], size=32)
    try:
        frames = rig.capture(data)
    finally:
        rig.close()
    assert rig.upside_down == {"rolled"}
    for camera in ("upright", "rolled"):
        red, blue, green = (_centroid(frames[camera], channel) for channel in (0, 2, 1))
        assert red[0] < 0.4 and blue[0] > 0.6, camera  # red on top, blue at the bottom
        assert green[1] < 0.4, camera  # green stays on the left: rotated, not mirrored
    with pytest.raises(ValueError, match="unknown cameras"):
        CameraRig(model, data, ["nope"], size=8)


def test_camera_rig_draws_markers_where_they_are_and_only_into_frames():
    from faster_core.data.sim.common import CameraRig, Marker

    model = mujoco.MjModel.from_xml_string(SCENE)
    data = mujoco.MjData(model)
    rig = CameraRig(model, data, ["upright"], size=32)
    try:
        plain = rig.capture(data)["upright"]
        # a flat disc below the camera's axis and to its right (-y), seen at a slant
        marked = rig.capture(data, markers=[Marker(np.array([1.5, -0.3, -0.35]), 0.3, (1.0, 1.0, 1.0, 1.0))])
        again = rig.capture(data)["upright"]
    finally:
        rig.close()
    rows, cols = np.nonzero(np.any(marked["upright"] != plain, axis=-1))
    assert rows.size > 0
    assert rows.mean() / 32 > 0.5 and cols.mean() / 32 > 0.5  # below the axis and to the camera's right (-y)
    np.testing.assert_array_equal(again, plain)  # a marker is drawn into one capture, never added to the scene
    assert model.ngeom == 3


# ``upright`` again, and a body that rolls about the cameras' line of sight (+x) carrying a mounted copy of it.
ROLLING_SCENE = SCENE.replace(
    "<worldbody>",
    '<worldbody><body name="mount"><joint name="roll" type="hinge" axis="1 0 0"/>'
    '<inertial pos="0 0 0" mass="1" diaginertia="1 1 1"/></body>',
)
UPRIGHT_MOUNT = {"position": (0.0, 0.0, 0.0), "target": (1.0, 0.0, 0.0), "up": (0.0, 0.0, 1.0), "fovy_deg": 60.0}


def test_mounted_camera_sees_what_the_same_model_camera_sees():
    from faster_core.data.sim.common import CameraRig, MountedCamera

    model = mujoco.MjModel.from_xml_string(ROLLING_SCENE)
    data = mujoco.MjData(model)
    mounted = {"copy": MountedCamera("mount", **UPRIGHT_MOUNT)}
    rig = CameraRig(model, data, ["upright", "copy"], size=32, mounted=mounted)
    try:
        frames = rig.capture(data)
    finally:
        rig.close()
    assert _centroid(frames["upright"], 0)[0] < 0.4  # the boxes are in view
    assert np.abs(frames["copy"].astype(int) - frames["upright"].astype(int)).mean() < 1.0  # same pose, same view


def test_mounted_camera_moves_with_its_body():
    from faster_core.data.sim.common import CameraRig, MountedCamera

    model = mujoco.MjModel.from_xml_string(ROLLING_SCENE)
    data = mujoco.MjData(model)
    rig = CameraRig(model, data, ["copy"], size=32, mounted={"copy": MountedCamera("mount", **UPRIGHT_MOUNT)})
    try:
        data.qpos[model.joint("roll").qposadr[0]] = np.pi  # the body rolls half a turn: so does the camera
        mujoco.mj_forward(model, data)
        rolled = rig.capture(data)["copy"]
    finally:
        rig.close()
    red, blue, green = (_centroid(rolled, channel) for channel in (0, 2, 1))
    assert red[0] > 0.6 and blue[0] < 0.4  # the world is upside down in its frames
    assert green[1] > 0.6
    with pytest.raises(ValueError, match="mounted on body 'nope'"):
        CameraRig(model, data, ["x"], size=8, mounted={"x": MountedCamera("nope", **UPRIGHT_MOUNT)})


def test_so101_wrist_camera_sees_the_block_large_while_the_gripper_closes_on_it():
    """The point of a wrist camera: at the grasp the block fills far more of its frame than of the front camera's,
    and it sits near the middle, between the jaws."""
    pytest.importorskip("lerobot_env_so101")
    from lerobot_env_so101.scripted.pick_place import Phase

    from faster_core.data.sim.so101 import So101PickPlace

    spec = Embodiment.from_yaml(CONFIG_DIR / "so101.yaml")
    sim = So101PickPlace(spec, seed=0, cameras=["front", "wrist"], image_size=64)
    try:
        for _ in range(100):
            sim.expert_step()
            if sim._controller.phase is Phase.CLOSE:
                break
        assert sim._controller.phase is Phase.CLOSE
        frames = {camera: image.astype(int) for camera, image in sim.frames().items()}
    finally:
        sim.close()

    def purple(image):
        return (image[..., 0] > image[..., 1] + 40) & (image[..., 2] > image[..., 1] + 40)

    front, wrist = purple(frames["front"]), purple(frames["wrist"])
    assert wrist.sum() > 3 * front.sum() > 0, (wrist.sum(), front.sum())  # 259 and 54 pixels at seed 0
    rows, cols = np.nonzero(wrist)
    assert 0.25 < rows.mean() / 64 < 0.75 and 0.15 < cols.mean() / 64 < 0.75


def test_coarsened_meshes_draw_the_same_robot_from_far_fewer_triangles():
    pytest.importorskip("lerobot_env_so101")
    from faster_core.data.sim.common import CameraRig, coarsened_meshes
    from faster_core.data.sim.so101 import RENDER_MESH_CELL_M, So101PickPlace

    spec = Embodiment.from_yaml(CONFIG_DIR / "so101.yaml")
    sim = So101PickPlace(spec, seed=0, cameras=["front"], image_size=128)  # renders from coarsened meshes
    model, data = sim._env.model, sim._env.data
    faces = model.mesh_facenum.copy()
    full = CameraRig(model, data, ["front"], size=128)
    try:
        for _ in range(20):  # the arm on its way down to the block
            sim.expert_step()
        coarse, exact = sim.frames()["front"].astype(int), full.capture(data)["front"].astype(int)
    finally:
        full.close()
        sim.close()
    assert coarsened_meshes(model, RENDER_MESH_CELL_M).mesh_facenum.sum() < faces.sum() / 10
    np.testing.assert_array_equal(model.mesh_facenum, faces)  # the simulated model keeps its meshes

    def arm(image):  # the SO-101 is yellow
        return (image[..., 0] > 150) & (image[..., 1] > 150) & (image[..., 2] < 100)

    assert arm(exact).sum() > 1000
    overlap = (arm(exact) & arm(coarse)).sum() / (arm(exact) | arm(coarse)).sum()
    assert overlap > 0.9, f"the coarsened arm covers other pixels (IoU {overlap:.2f}; one control step of motion: 0.94)"
    assert np.abs(exact - coarse).mean() < 3.0
    with pytest.raises(ValueError, match="positive"):
        coarsened_meshes(model, 0.0)


def test_so101_frames_show_the_goal_pad_at_the_hidden_goal():
    pytest.importorskip("lerobot_env_so101")
    from faster_core.data.sim.so101 import GOAL_RGBA, So101PickPlace

    spec = Embodiment.from_yaml(CONFIG_DIR / "so101.yaml")
    sim = So101PickPlace(spec, seed=0, cameras=["front"], image_size=64)
    try:
        pads = {}
        for seed in (0, 1):
            sim.reset(seed)
            pad = sim.goal_pad()
            np.testing.assert_allclose(pad.position[:2], sim._env.goal_pos[:2])
            assert pad.rgba == GOAL_RGBA
            image = sim.frames()["front"].astype(int)
            green = (image[..., 1] > 120) & (image[..., 1] > image[..., 0] + 60) & (image[..., 1] > image[..., 2] + 60)
            rows, cols = np.nonzero(green)
            assert rows.size >= 4, f"seed {seed}: no goal pad in the frame"
            pads[seed] = (cols.mean(), float(pad.position[1]))
        # the front camera faces the robot (looking along -x): a goal further to +y appears further right
        (col0, y0), (col1, y1) = pads[0], pads[1]
        assert abs(y0 - y1) > 0.02 and np.sign(col1 - col0) == np.sign(y1 - y0)
    finally:
        sim.close()


def test_so101_front_camera_resolves_the_block_anywhere_it_can_be():
    """The block, at every corner of the area blocks and goals are sampled from and lifted above it, is in view
    and covers at least 18 pixels of the 64 px frame the bench trains on (the scene's own camera: 12 to 42)."""
    pytest.importorskip("lerobot_env_so101")
    from faster_core.data.sim.so101 import SAMPLING_AREA, So101PickPlace

    spec = Embodiment.from_yaml(CONFIG_DIR / "so101.yaml")
    sim = So101PickPlace(spec, seed=0, cameras=["front"], image_size=64)
    try:
        model, data = sim._env.model, sim._env.data
        address = model.joint("block").qposadr[0]
        (x0, y0), (x1, y1) = SAMPLING_AREA
        for x, y, z in itertools.product((x0, x1), (y0, y1), (0.02, 0.15)):
            data.qpos[address : address + 3] = (x, y, z)
            mujoco.mj_forward(model, data)
            image = sim.frames()["front"].astype(int)
            purple = (image[..., 0] > image[..., 1] + 40) & (image[..., 2] > image[..., 1] + 40)
            assert purple.sum() >= 18, f"block at ({x}, {y}, {z}) covers {purple.sum()} pixels"
    finally:
        sim.close()


def test_metaworld_records_successful_joint_space_episodes(tmp_path):
    pytest.importorskip("metaworld")
    from faster_core.data.sim import generate, metaworld

    report = generate("metaworld", 2, [], tmp_path, seed=1, tasks=["reach-v3"], progress=False)
    assert report.recorded == 2 and report.attempts >= 2 and report.seconds_per_episode > 0
    dataset = EpisodeDataset(tmp_path)
    single_arm = Embodiment.from_yaml(CONFIG_DIR / "single_arm.yaml")
    assert (dataset.embodiment, dataset.joint_names, dataset.fps) == ("single_arm", single_arm.joint_names, 80.0)
    for i in range(len(dataset)):
        episode = dataset.episode(i)
        assert episode.success and episode.instruction == metaworld.TASK_INSTRUCTIONS["reach-v3"]
        assert 10 < episode.length < 500
        np.testing.assert_allclose(episode.action[:-1], episode.state[1:])  # the action is the next joint state
        assert np.abs(np.diff(episode.state[:, :7], axis=0)).max() > 1e-3  # the arm moved
    first, second = dataset.episode(0), dataset.episode(1)
    assert not np.allclose(first.action[-1], second.action[-1])  # different goals


def test_metaworld_frames_are_recorded_per_step_for_every_task(tmp_path):
    pytest.importorskip("metaworld")
    from faster_core.data.sim import generate

    tasks = ["reach-v3", "drawer-close-v3"]  # a second environment must still render (not black frames)
    generate("metaworld", 1, ["corner"], tmp_path, seed=0, tasks=tasks, image_size=24, progress=False)
    dataset = EpisodeDataset(tmp_path)
    assert dataset.camera_shapes == {"corner": (24, 24, 3)}
    for i in range(len(dataset)):
        frames = dataset.episode(i).frames["corner"]
        assert len(frames) == dataset.lengths[i]
        assert frames[-1].std() > 5  # a rendered scene, not a blank buffer


def test_every_metaworld_task_has_an_instruction():
    metaworld_package = pytest.importorskip("metaworld")
    from faster_core.data.sim.metaworld import DEFAULT_TASKS, TASK_INSTRUCTIONS

    assert set(TASK_INSTRUCTIONS) == set(metaworld_package.env_dict.ALL_V3_ENVIRONMENTS)
    assert set(DEFAULT_TASKS) <= set(TASK_INSTRUCTIONS)


def test_so101_yaml_is_a_complete_embodiment():

    spec = Embodiment.from_yaml(CONFIG_DIR / "so101.yaml")
    assert set(load_parameter_file(CONFIG_DIR / "so101.yaml")) == set(PARAMETERS)  # the tracking error too
    assert (spec.name, spec.dof, spec.control_rate_hz, spec.tokenizer.tokens_per_chunk) == ("so101", 6, 10.0, 18)


def test_so101_records_successful_joint_target_episodes(tmp_path):
    pytest.importorskip("lerobot_env_so101")
    from faster_core.data.sim import generate, so101

    report = generate("so101", 2, [], tmp_path, seed=0, progress=False)
    assert report.recorded == 2 and 0 < report.success_rate <= 1
    dataset = EpisodeDataset(tmp_path)
    spec = Embodiment.from_yaml(CONFIG_DIR / "so101.yaml")
    assert (dataset.embodiment, dataset.joint_names, dataset.fps) == ("so101", spec.joint_names, 10.0)
    for i in range(len(dataset)):
        episode = dataset.episode(i)
        assert episode.success and episode.instruction == so101.INSTRUCTION
        assert np.all(episode.action >= spec.limits.position_lower - 1e-6)
        assert np.all(episode.action <= spec.limits.position_upper + 1e-6)
        # position servos track their targets: the arm follows the commanded joints within a few steps
        arm_lag = np.abs(episode.action[:-3, :5] - episode.state[3:, :5]).mean()
        assert arm_lag < 0.2
        assert np.ptp(episode.action[:, 5]) > 1.0  # the jaw closed on the cube and opened again


def test_so101_expert_noise_records_recoveries_that_still_succeed(tmp_path):
    pytest.importorskip("lerobot_env_so101")
    from faster_core.data.sim import generate

    # The first episode of a seed is the same scene in both (the noise is drawn after the scene's seed).
    generate("so101", 1, [], tmp_path / "clean", seed=3, progress=False)
    generate("so101", 1, [], tmp_path / "noisy", seed=3, expert_noise=0.01, progress=False)
    clean, noisy = EpisodeDataset(tmp_path / "clean").episode(0), EpisodeDataset(tmp_path / "noisy").episode(0)
    assert clean.success and noisy.success
    steps = min(clean.length, noisy.length)
    assert np.abs(clean.state[:steps, :5] - noisy.state[:steps, :5]).max() > 0.01  # the arm left the clean path
    assert noisy.length > clean.length  # and the expert took extra steps to bring it back
    with pytest.raises(ValueError, match="so101 expert only"):
        generate("metaworld", 1, [], tmp_path / "mw", expert_shut_probability=0.1)
    with pytest.raises(ValueError, match="position_m must be >= 0"):
        generate("so101", 1, [], tmp_path / "negative", expert_noise=-0.001)


def test_so101_disturbance_moves_the_arm_but_not_the_recorded_command():
    """DART: a disturbed step records what the expert decided from the observation, and only the arm's execution
    carries the noise; a vanishing disturbance (both IK solves run) leaves the episode as the undisturbed expert's."""
    pytest.importorskip("lerobot_env_so101")
    from faster_core.data.sim.so101 import Disturbance, So101PickPlace

    spec = Embodiment.from_yaml(CONFIG_DIR / "so101.yaml")
    clean = So101PickPlace(spec, seed=5)
    disturbed = So101PickPlace(spec, seed=5, disturbance=Disturbance(position_m=0.01))
    vanishing = So101PickPlace(spec, seed=5, disturbance=Disturbance(position_m=1e-12))
    try:
        first, command = clean.expert_targets(), disturbed.expert_targets()
        np.testing.assert_array_equal(first.targets, first.executed)
        np.testing.assert_allclose(command.targets, first.targets, atol=1e-12)  # the same decision, recorded
        assert np.abs(command.executed - command.targets).max() > 0.005  # the arm is driven elsewhere
        disturbed.command(command.executed)
        clean.command(first.executed)
        assert np.abs(disturbed.joint_positions() - clean.joint_positions()).max() > 0.002

        clean.reset(5)
        while not clean.terminated:
            np.testing.assert_allclose(vanishing.expert_step(), clean.expert_step(), atol=1e-9)
        assert clean.success and vanishing.success and vanishing.retries == 0
        np.testing.assert_allclose(vanishing.joint_positions(), clean.joint_positions(), atol=1e-9)
    finally:
        for sim in (clean, disturbed, vanishing):
            sim.close()


def test_so101_early_shut_jaw_is_opened_by_the_expert_and_a_missed_grasp_retried():
    """The jaw disturbance shuts the jaw during the descent while the recorded command keeps it open; a jaw shut
    at the block makes the grasp miss, and the expert starts over from the hover with the jaw open."""
    pytest.importorskip("lerobot_env_so101")
    from lerobot_env_so101.scripted.pick_place import Phase

    from faster_core.data.sim.so101 import SHUT_STEPS, Disturbance, So101PickPlace

    spec = Embodiment.from_yaml(CONFIG_DIR / "so101.yaml")
    lower, upper = spec.limits.position_lower[5], spec.limits.position_upper[5]
    sim = So101PickPlace(spec, seed=5, disturbance=Disturbance(shut_probability=1.0))  # shut all the way down
    try:
        shut_steps, phases = 0, []
        while sim.retries == 0 and len(phases) < 200:
            command = sim.expert_targets()
            phases.append(sim._controller.phase)
            if phases[-1] is Phase.DESCEND:
                assert command.targets[5] > upper - 0.1 and command.executed[5] < lower + 0.1
                shut_steps += 1
            sim.command(command.executed)
        assert shut_steps > SHUT_STEPS and Phase.LIFT in phases and sim.retries == 1
        command = sim.expert_targets()
        assert sim._controller.phase is Phase.HOVER and command.targets[5] > upper - 0.1  # open again
        assert not sim.progress()["lifted"]
    finally:
        sim.close()
    with pytest.raises(ValueError, match="shut_probability"):
        Disturbance(shut_probability=1.5)
    with pytest.raises(ValueError, match="position_m"):
        Disturbance(position_m=-0.01)


def test_unknown_simulator_or_task_is_rejected(tmp_path):
    from faster_core.data.sim import generate

    with pytest.raises(ValueError, match="unknown simulator"):
        generate("gazebo", 1, [], tmp_path)
    with pytest.raises(ValueError, match="one task"):
        generate("so101", 1, [], tmp_path, tasks=["stack"])


def test_so101_object_positions_lie_in_the_sampling_area_and_change_per_seed():
    pytest.importorskip("lerobot_env_so101")
    from faster_core.data.sim.so101 import SAMPLING_AREA, So101PickPlace

    sim = So101PickPlace(Embodiment.from_yaml(CONFIG_DIR / "so101.yaml"), seed=3)
    try:
        starts = []
        for seed in (3, 4):
            sim.reset(seed)
            block, goal = sim.object_positions()
            for xy in (block[:2], goal[:2]):
                assert np.all(SAMPLING_AREA[0] <= xy) and np.all(xy <= SAMPLING_AREA[1])
            assert block[2] < 0.05  # resting on the floor
            block[:] = 0  # a copy: the scene is untouched
            starts.append(np.concatenate([sim.object_positions()[0], goal]))
        assert np.all(starts[0][:3] != 0) and not np.allclose(starts[0], starts[1])
    finally:
        sim.close()


def test_so101_joint_target_replay_reproduces_the_expert():
    pytest.importorskip("lerobot_env_so101")
    from faster_core.data.sim.so101 import So101PickPlace

    spec = Embodiment.from_yaml(CONFIG_DIR / "so101.yaml")
    sim = So101PickPlace(spec, seed=7)
    targets, states = [], []
    while not sim.terminated and len(targets) < 300:
        states.append(sim.joint_positions())
        targets.append(sim.expert_step())
    assert sim.success
    progress = sim.progress()
    assert progress["lifted"] and progress["closest_approach_m"] < 0.02 and progress["block_to_goal_m"] < 0.03
    sim.reset(seed=7)
    assert not sim.progress()["lifted"] and sim.progress()["closest_approach_m"] > 0.03
    replayed = []
    for target in targets:  # what a robot behind joint_trajectory_controller receives
        replayed.append(sim.joint_positions())
        sim.command(target)
    assert sim.success
    np.testing.assert_allclose(replayed, states, atol=1e-9)
    sim.close()

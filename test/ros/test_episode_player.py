"""The episode player publishes a recorded episode exactly: frames, joint states and instruction, in order."""

from __future__ import annotations

import time

import numpy as np
import pytest

from repo_paths import CONFIG_DIR

rclpy = pytest.importorskip("rclpy")
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import Image, JointState  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from faster_core.data import DatasetError, DatasetWriter  # noqa: E402
from faster_core.embodiment import Embodiment  # noqa: E402
from faster_core.images import to_rgb  # noqa: E402
from faster_ros.episode_player import EpisodePlayer  # noqa: E402

pytestmark = pytest.mark.ros
SPEC = Embodiment.from_yaml(CONFIG_DIR / "so101.yaml")
STEPS = 12


@pytest.fixture
def dataset(tmp_path):
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 255, (STEPS, 24, 32, 3), dtype=np.uint8)
    state = np.cumsum(rng.normal(0, 0.05, (STEPS, SPEC.dof)), axis=0)
    with DatasetWriter(
        tmp_path / "ds", fps=50.0, embodiment=SPEC.name, joint_names=SPEC.joint_names, cameras=["front"],
        image_format="png",
    ) as writer:  # fmt: skip
        writer.add_episode(
            timestamps=np.arange(STEPS) / 50.0, state=state, action=state, instruction="lift the cube",
            success=True, frames={"front": list(frames)},
        )  # fmt: skip
    return tmp_path / "ds", frames, state


def _context(ros_env, *parameters):
    context = rclpy.Context()
    args = ["--ros-args", "--params-file", str(CONFIG_DIR / "so101.yaml")]
    for parameter in parameters:
        args += ["-p", parameter]
    rclpy.init(args=args, context=context, domain_id=int(ros_env["ROS_DOMAIN_ID"]))
    return context


def test_plays_the_episode_in_order(ros_env, dataset):
    path, frames, state = dataset
    context = _context(ros_env, f"dataset:={path}", "loop:=true")
    try:
        listener = rclpy.create_node("listener", context=context)
        joints, images, instructions = [], [], []
        latched = QoSProfile(
            depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
        )
        listener.create_subscription(JointState, SPEC.topics.joint_states, joints.append, 50)
        listener.create_subscription(Image, SPEC.cameras[0].topic, images.append, 50)
        listener.create_subscription(String, SPEC.topics.instruction, instructions.append, latched)
        player = EpisodePlayer(context=context)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(listener)
        executor.add_node(player)
        deadline = time.monotonic() + 10.0
        while len(joints) < 3 * STEPS and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.02)
        assert [m.data for m in instructions] == ["lift the cube"]
        received = np.array([m.position for m in joints])
        assert list(joints[0].name) == list(SPEC.joint_names)
        # The first messages may go out before discovery completes; from the first restart on, it is the episode.
        start = next(i for i in range(1, len(received)) if np.allclose(received[i], state[0]))
        np.testing.assert_allclose(received[start : start + STEPS], state)
        first = next(i for i, m in enumerate(images) if np.array_equal(to_rgb(m), frames[0]) and i > 0)
        np.testing.assert_array_equal(to_rgb(images[first + 5]), frames[5])
        executor.shutdown()
        player.destroy_node()
        listener.destroy_node()
    finally:
        context.try_shutdown()


def test_refuses_a_dataset_of_another_robot(ros_env, tmp_path, dataset):
    path, _, _ = dataset
    context = rclpy.Context()
    rclpy.init(
        args=["--ros-args", "--params-file", str(CONFIG_DIR / "single_arm.yaml"), "-p", f"dataset:={path}"],
        context=context,
        domain_id=int(ros_env["ROS_DOMAIN_ID"]),
    )
    try:
        with pytest.raises(DatasetError, match="embodiment single_arm has"):
            EpisodePlayer(context=context)
    finally:
        context.try_shutdown()

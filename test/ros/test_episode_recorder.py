"""The episode recorder through real rclpy: what is published during an episode is what the bag holds."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from repo_paths import CONFIG_DIR

rclpy = pytest.importorskip("rclpy")
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.serialization import deserialize_message  # noqa: E402
from rosbags.rosbag2 import Reader  # noqa: E402
from sensor_msgs.msg import Image, JointState  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint  # noqa: E402

from faster_core.data.bags import BagConversion, convert_bags  # noqa: E402
from faster_core.data.episodes import EpisodeDataset  # noqa: E402
from faster_core.embodiment import Embodiment  # noqa: E402
from faster_msgs.srv import StartEpisode, StopEpisode  # noqa: E402

pytestmark = pytest.mark.ros
SPEC = Embodiment.from_yaml(CONFIG_DIR / "single_arm.yaml")
LEADER = "/leader/joint_states"  # a teleop leader arm: its positions are the demonstrated actions
LEADER_OFFSET = 0.05


class Robot:
    """The test's side: publishers of the embodiment's topics and clients of the recorder's services."""

    def __init__(self, context):
        self.node = rclpy.create_node("fake_robot", context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.cameras = {c.name: self.node.create_publisher(Image, c.topic, 10) for c in SPEC.cameras}
        self.joints = self.node.create_publisher(JointState, SPEC.topics.joint_states, 10)
        self.trajectory = self.node.create_publisher(JointTrajectory, SPEC.topics.trajectory, 10)
        self.leader = self.node.create_publisher(JointState, LEADER, 10)
        self.start = self.node.create_client(StartEpisode, "/episode_recorder/start")
        self.stop = self.node.create_client(StopEpisode, "/episode_recorder/stop")

    def spin_until(self, condition, timeout=15.0):
        deadline = time.monotonic() + timeout
        while not condition() and time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.02)
        return condition()

    def call(self, client, request):
        assert client.wait_for_service(timeout_sec=15.0), f"{client.srv_name} not offered"
        future = client.call_async(request)
        assert self.spin_until(future.done), f"{client.srv_name} did not answer"
        return future.result()

    def wait_for_recorder(self):
        publishers = [*self.cameras.values(), self.joints, self.trajectory, self.leader]
        assert self.spin_until(lambda: all(p.get_subscription_count() > 0 for p in publishers))

    def publish_episode(self, steps: int) -> list[list[float]]:
        positions = []
        for step in range(steps):
            q = [0.1 * step + 0.01 * j for j in range(SPEC.dof)]
            positions.append(q)
            stamp = self.node.get_clock().now().to_msg()
            self.joints.publish(JointState(name=list(SPEC.joint_names), position=q))  # effort=[] as many drivers do
            leader_q = [value + LEADER_OFFSET for value in q]
            self.leader.publish(JointState(name=list(reversed(SPEC.joint_names)), position=leader_q[::-1]))
            for index, publisher in enumerate(self.cameras.values()):
                image = Image(height=16, width=20, encoding="rgb8", step=60, data=bytes([step + index] * 960))
                image.header.stamp = stamp
                publisher.publish(image)
            if step % 2 == 0:
                point = JointTrajectoryPoint(positions=q)
                point.time_from_start.nanosec = 50_000_000
                self.trajectory.publish(JointTrajectory(joint_names=list(SPEC.joint_names), points=[point]))
            self.spin_until(lambda: False, timeout=0.03)
        return positions

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()


@pytest.fixture
def recorder(tmp_path, ros_env):
    process = subprocess.Popen(
        [sys.executable, "-m", "faster_ros.episode_recorder", "--ros-args", "--params-file",
         str(CONFIG_DIR / "single_arm.yaml"), "-p", f"output_dir:={tmp_path / 'bags'}",
         "-p", f"leader_joint_states:={LEADER}"],
        env=ros_env,
    )  # fmt: skip
    yield process
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=15)


@pytest.fixture
def robot(rclpy_context):
    robot = Robot(rclpy_context)
    yield robot
    robot.close()


def read_bag(path: Path):
    metadata = yaml.safe_load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    custom = {key.removeprefix("faster."): json.loads(value) for key, value in metadata["custom_data"].items()}
    messages: dict[str, list] = {}
    with Reader(path) as reader:
        types = {c.topic: c.msgtype for c in reader.connections}
        for connection, _, data in reader.messages():
            messages.setdefault(connection.topic, []).append(data)
    return custom, types, messages


def test_recorded_episode_matches_what_was_published(recorder, robot, tmp_path):
    robot.wait_for_recorder()
    started = robot.call(robot.start, StartEpisode.Request(instruction="put the red block in the bowl"))
    assert started.success, started.message
    assert started.episode_id == "episode_000000"
    again = robot.call(robot.start, StartEpisode.Request(instruction="another"))
    assert not again.success and "already being recorded" in again.message

    positions = robot.publish_episode(steps=12)
    robot.spin_until(lambda: False, timeout=0.3)
    stopped = robot.call(robot.stop, StopEpisode.Request(task_success=True))
    assert stopped.success, stopped.message
    assert not robot.call(robot.stop, StopEpisode.Request(task_success=True)).success

    custom, types, messages = read_bag(Path(stopped.bag_path))
    assert custom["instruction"] == "put the red block in the bowl"
    assert custom["task_success"] is True and custom["cut_by_shutdown"] is False
    assert custom["joint_names"] == list(SPEC.joint_names) and custom["embodiment"] == "single_arm"
    assert types[SPEC.topics.joint_states] == "sensor_msgs/msg/JointState"

    recorded = [list(deserialize_message(data, JointState).position) for data in messages[SPEC.topics.joint_states]]
    assert recorded == positions  # loopback delivers every message of this small episode, in order
    for camera in SPEC.cameras:
        frames = [deserialize_message(data, Image) for data in messages[camera.topic]]
        assert len(frames) == 12 and frames[-1].data.tobytes()[0] == 11 + SPEC.camera_names.index(camera.name)
    trajectories = [deserialize_message(data, JointTrajectory) for data in messages[SPEC.topics.trajectory]]
    assert [list(t.points[0].positions) for t in trajectories] == positions[::2]
    instructions = [deserialize_message(data, String).data for data in messages[SPEC.topics.instruction]]
    assert instructions == ["put the red block in the bowl"]
    events = [
        json.loads(deserialize_message(data, String).data)["event"] for data in messages["/episode_recorder/events"]
    ]
    assert events == ["start", "stop"]
    assert stopped.messages_recorded == sum(len(m) for m in messages.values())


def test_shutdown_closes_and_marks_a_running_episode(recorder, robot, tmp_path):
    robot.wait_for_recorder()
    assert not robot.call(robot.start, StartEpisode.Request(instruction="   ")).success
    started = robot.call(robot.start, StartEpisode.Request(instruction="open the drawer"))
    assert started.success
    robot.publish_episode(steps=4)
    recorder.send_signal(signal.SIGINT)
    assert recorder.wait(timeout=15) == 0
    custom, _, messages = read_bag(Path(started.bag_path))
    assert custom["cut_by_shutdown"] is True and custom["task_success"] is False
    assert len(messages[SPEC.topics.joint_states]) == 4


def test_recorded_bag_converts_back_to_the_published_episode(recorder, robot, tmp_path):
    robot.wait_for_recorder()
    assert robot.call(robot.start, StartEpisode.Request(instruction="stack the cups")).success
    positions = np.array(robot.publish_episode(steps=40))
    robot.spin_until(lambda: False, timeout=0.3)
    stopped = robot.call(robot.stop, StopEpisode.Request(task_success=True))

    config = BagConversion(embodiment=SPEC, action_topic=LEADER, max_age_s=0.2, min_steps=10)
    report = convert_bags([stopped.bag_path], tmp_path / "dataset", config, progress=False)
    assert not report.skipped, report.skipped
    dataset = EpisodeDataset(tmp_path / "dataset")
    episode = dataset.episode(0)
    assert episode.instruction == "stack the cups" and episode.success
    assert list(episode.joint_names) == list(SPEC.joint_names) and dataset.fps == SPEC.control_rate_hz
    # Each tick holds the latest published joint state, never a later one: every row is a published row, in order.
    rows = [int(np.flatnonzero(np.all(np.isclose(positions, state, atol=1e-6), axis=1))[0]) for state in episode.state]
    assert rows == sorted(rows) and len(rows) >= 20
    # Actions are the leader's positions (published reordered by name), i.e. a published row plus the offset.
    for action in episode.action:
        assert np.any(np.all(np.isclose(positions + LEADER_OFFSET, action, atol=1e-6), axis=1))
    assert episode.frames[SPEC.camera_names[0]][0].shape == (16, 20, 3)

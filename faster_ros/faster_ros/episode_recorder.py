"""Record one rosbag2 (mcap) per episode of the embodiment's topics, started and stopped by services.

Messages are written as the serialized bytes DDS delivered (as ``ros2 bag record`` does), so a bag from this node
and one from ``ros2 bag record`` convert the same way. Episode metadata (instruction, success, embodiment, joint
names, whether shutdown cut the episode) lives in the bag's ``custom_data`` and as JSON events on ``~/events``.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.serialization import serialize_message
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory

from faster_msgs.srv import StartEpisode, StopEpisode
from faster_ros.parameters import declare_embodiment
from faster_ros.qos import LATCHED
from faster_ros.spinning import run_node

EVENTS_TOPIC = "~/events"
QUEUED = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)  # commands arrive in bursts: keep them all


@dataclass
class _Stream:
    topic: str
    msg_type: type
    qos: QoSProfile

    @property
    def type_name(self) -> str:
        """rosbag2's name of the type, e.g. sensor_msgs/msg/Image."""
        return f"{self.msg_type.__module__.split('.')[0]}/msg/{self.msg_type.__name__}"


class EpisodeRecorder(Node):
    def __init__(self, **node_kwargs):
        super().__init__("episode_recorder", **node_kwargs)
        self.embodiment = declare_embodiment(self)
        self.output_dir = Path(
            self.declare_parameter(
                "output_dir", "episodes", ParameterDescriptor(description="directory that receives one bag per episode")
            ).value
        ).expanduser()
        compressed = self.declare_parameter(
            "compressed_cameras",
            False,
            ParameterDescriptor(description="record <camera topic>/compressed (CompressedImage) instead of raw Image"),
        ).value
        leader = self.declare_parameter(
            "leader_joint_states",
            "",
            ParameterDescriptor(
                description="teleop leader JointState topic whose positions are the actions; '' = none"
            ),
        ).value

        self._streams = [self._camera_stream(camera.topic, compressed) for camera in self.embodiment.cameras]
        self._streams += [
            _Stream(self.embodiment.topics.joint_states, JointState, qos_profile_sensor_data),
            # Volatile, so it matches latched and plain publishers alike; the instruction also comes with start.
            _Stream(self.embodiment.topics.instruction, String, QUEUED),
            _Stream(self.embodiment.topics.trajectory, JointTrajectory, QUEUED),
        ]
        if leader:
            self._streams.append(_Stream(leader, JointState, qos_profile_sensor_data))
        self._events_topic = self.resolve_topic_name(EVENTS_TOPIC)
        self._typestore = get_typestore(Stores.ROS2_KILTED)

        self._lock = threading.Lock()
        self._writer: Writer | None = None
        self._connections: dict[str, object] = {}
        self._episode: dict | None = None
        self._messages = 0

        self._events = self.create_publisher(String, EVENTS_TOPIC, LATCHED)
        for stream in self._streams:
            self.create_subscription(
                stream.msg_type, stream.topic, self._recorder_for(stream.topic), stream.qos, raw=True
            )
        self.create_service(StartEpisode, "~/start", self._start)
        self.create_service(StopEpisode, "~/stop", self._stop)
        self.get_logger().info(
            f"recording {[s.topic for s in self._streams]} for {self.embodiment.name} into {self.output_dir}"
        )

    @staticmethod
    def _camera_stream(topic: str, compressed: bool) -> _Stream:
        if compressed:
            return _Stream(f"{topic}/compressed", CompressedImage, qos_profile_sensor_data)
        return _Stream(topic, Image, qos_profile_sensor_data)

    @property
    def recording(self) -> bool:
        return self._writer is not None

    def _recorder_for(self, topic: str):
        def record(data: bytes) -> None:
            with self._lock:
                if self._writer is not None:
                    self._writer.write(self._connections[topic], self._now_ns(), data)
                    self._messages += 1

        return record

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _start(self, request: StartEpisode.Request, response: StartEpisode.Response) -> StartEpisode.Response:
        instruction = request.instruction.strip()
        with self._lock:
            if self._writer is not None:
                response.message = f"episode {self._episode['episode_id']} is already being recorded; stop it first"
                return response
            if not instruction:
                response.message = "instruction is empty: an episode needs the task it demonstrates"
                return response
            episode_id = self._next_episode_id()
            path = self.output_dir / episode_id
            try:
                self.output_dir.mkdir(parents=True, exist_ok=True)
                writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
                writer.open()
            except (OSError, ValueError) as error:
                response.message = f"cannot open bag {path}: {error}"
                return response
            self._connections = {
                stream.topic: writer.add_connection(stream.topic, stream.type_name, typestore=self._typestore)
                for stream in self._streams
            }
            self._connections[self._events_topic] = writer.add_connection(
                self._events_topic, "std_msgs/msg/String", typestore=self._typestore
            )
            self._writer, self._messages = writer, 0
            self._episode = {
                "episode_id": episode_id,
                "instruction": instruction,
                "embodiment": self.embodiment.name,
                "joint_names": list(self.embodiment.joint_names),
                "start_ns": self._now_ns(),
            }
            # The instruction goes into the bag on its own topic too, so a converter finds it where a robot gets it.
            self._write_message(self.embodiment.topics.instruction, String(data=instruction))
            self._emit("start")
        response.success, response.episode_id, response.bag_path = True, episode_id, str(path)
        response.message = f"recording {episode_id}"
        self.get_logger().info(f"episode {episode_id} started: {instruction!r}")
        return response

    def _stop(self, request: StopEpisode.Request, response: StopEpisode.Response) -> StopEpisode.Response:
        with self._lock:
            if self._writer is None:
                response.message = "no episode is being recorded"
                return response
            path, count = self._close(task_success=request.task_success, cut_by_shutdown=False)
        response.success, response.bag_path, response.messages_recorded = True, str(path), count
        response.message = f"closed {path.name} with {count} messages"
        self.get_logger().info(response.message)
        return response

    def destroy_node(self) -> None:
        """Close an episode that shutdown interrupted, marked as cut so converters can tell it from a clean stop."""
        with self._lock:
            if self._writer is not None:
                path, count = self._close(task_success=False, cut_by_shutdown=True)
                self.get_logger().warning(f"shutdown cut episode {path.name}; closed with {count} messages")
        super().destroy_node()

    def _close(self, *, task_success: bool, cut_by_shutdown: bool) -> tuple[Path, int]:
        episode = self._episode
        episode.update(stop_ns=self._now_ns(), task_success=task_success, cut_by_shutdown=cut_by_shutdown)
        self._emit("stop")
        for key, value in episode.items():
            self._writer.set_custom_data(f"faster.{key}", json.dumps(value))
        self._writer.close()
        path, count = self.output_dir / episode["episode_id"], self._messages
        self._writer, self._episode, self._connections = None, None, {}
        return path, count

    def _emit(self, event: str) -> None:
        message = String(data=json.dumps({"event": event, **self._episode}))
        self._events.publish(message)
        self._write_message(self._events_topic, message)

    def _write_message(self, topic: str, message) -> None:
        self._writer.write(self._connections[topic], self._now_ns(), serialize_message(message))
        self._messages += 1

    def _next_episode_id(self) -> str:
        taken = [
            int(m.group(1)) for p in self.output_dir.glob("episode_*") if (m := re.fullmatch(r"episode_(\d+)", p.name))
        ]
        return f"episode_{max(taken, default=-1) + 1:06d}"


def main(args=None) -> None:
    run_node(EpisodeRecorder, args)


if __name__ == "__main__":
    main()

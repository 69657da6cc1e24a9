"""Synthetic rosbag2 recordings for the conversion tests: known values at known receive times.

Joint j reads ``j + t`` (t in seconds since T0) so every sampled value tells which message it came from.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from faster_core.embodiment import Embodiment

from repo_paths import CONFIG_DIR

TYPES = get_typestore(Stores.ROS2_KILTED)
MSG = TYPES.types
EMBODIMENT = Embodiment.from_yaml(CONFIG_DIR / "so101.yaml")  # 6 joints, camera "front", 10 Hz
T0 = 1_700_000_000 * 10**9
MS = 10**6
LEADER = "/leader/joint_states"


@dataclass(frozen=True)
class Recording:
    """What a synthetic bag holds; joint j reads j + t (t in seconds since T0), so values identify times."""

    seconds: float = 2.0
    joint_names: tuple[str, ...] = tuple(reversed(EMBODIMENT.joint_names))  # out of order on purpose
    joint_gap: tuple[float, float] | None = None  # no joint states in this interval (s)
    camera: bool = True
    first_frame_late_ms: int = 0  # frame 0 arrives this late (a loaded machine): the frames span less than 19 periods
    silent_camera: bool = False  # the camera's topic is in the bag (as the recorder declares it) with no message
    compressed: bool = False
    trajectory: bool = False
    hold_at: float | None = None  # an empty JointTrajectory (the controller's stop) at this time (s)
    leader: bool = False
    custom: dict[str, str] = field(default_factory=dict)


def _time(ns: int):
    return MSG["builtin_interfaces/msg/Time"](sec=ns // 10**9, nanosec=ns % 10**9)


def _header(ns: int):
    return MSG["std_msgs/msg/Header"](stamp=_time(ns), frame_id="")


def _joint_state(ns: int, names: tuple[str, ...], offset: float = 0.0):
    t = (ns - T0) / 1e9
    positions = [EMBODIMENT.joint_names.index(n) + t + offset if n in EMBODIMENT.joint_names else 0.0 for n in names]
    empty = np.zeros(0, dtype=np.float64)
    return MSG["sensor_msgs/msg/JointState"](
        header=_header(ns), name=list(names), position=np.asarray(positions), velocity=empty, effort=empty
    )


def _image(ns: int, index: int, compressed: bool):
    if compressed:
        buffer = io.BytesIO()
        Image.fromarray(np.full((16, 20, 3), (255, 0, index), np.uint8)).save(buffer, format="PNG")
        data = np.frombuffer(buffer.getvalue(), dtype=np.uint8)
        return MSG["sensor_msgs/msg/CompressedImage"](header=_header(ns), format="png", data=data)
    bgr = np.zeros((16, 22, 3), np.uint8)  # step 66 > 20 * 3: rows are padded
    bgr[:, :20] = (index, 0, 255)
    return MSG["sensor_msgs/msg/Image"](
        header=_header(ns), height=16, width=20, encoding="bgr8", is_bigendian=0, step=66, data=bgr.ravel()
    )


def _trajectory(ns: int, k: int):
    """Sent every 0.5 s: reach k at 0.2 s and k + 1 at 0.6 s after receipt (joint j adds j)."""
    names = list(reversed(EMBODIMENT.joint_names))
    point = MSG["trajectory_msgs/msg/JointTrajectoryPoint"]
    duration = MSG["builtin_interfaces/msg/Duration"]
    empty = np.zeros(0, dtype=np.float64)
    points = [
        point(
            positions=np.asarray([EMBODIMENT.joint_names.index(n) + k + step for n in names], dtype=np.float64),
            velocities=empty,
            accelerations=empty,
            effort=empty,
            time_from_start=duration(sec=0, nanosec=offset),
        )
        for step, offset in ((0, 200 * MS), (1, 600 * MS))
    ]
    return MSG["trajectory_msgs/msg/JointTrajectory"](header=_header(0), joint_names=names, points=points)


def write_bag(path: Path, recording: Recording, storage: StoragePlugin = StoragePlugin.MCAP) -> Path:
    messages = []  # (ns, topic, msgtype, message)
    end = T0 + int(recording.seconds * 1e9)
    for ns in range(T0 + MS, end, 20 * MS):  # joint states at 50 Hz, 1 ms after each 20 ms boundary
        t = (ns - T0) / 1e9
        if recording.joint_gap and recording.joint_gap[0] <= t < recording.joint_gap[1]:
            continue
        messages.append((ns, "/joint_states", "sensor_msgs/msg/JointState", _joint_state(ns, recording.joint_names)))
        if recording.leader:
            leader = _joint_state(ns, EMBODIMENT.joint_names, offset=0.5)
            messages.append((ns, LEADER, "sensor_msgs/msg/JointState", leader))
    if recording.camera:
        topic, msgtype = "/camera/front/image_raw", "sensor_msgs/msg/Image"
        if recording.compressed:
            topic, msgtype = f"{topic}/compressed", "sensor_msgs/msg/CompressedImage"
        for index, on_time in enumerate(range(T0, end, 100 * MS)):  # 10 Hz, frame i at exactly i * 100 ms
            ns = on_time + (recording.first_frame_late_ms * MS if index == 0 else 0)
            messages.append((ns, topic, msgtype, _image(ns, index, recording.compressed)))
    if recording.trajectory:
        for k, ns in enumerate(range(T0 + 50 * MS, end, 500 * MS)):
            messages.append(
                (ns, "/arm_controller/joint_trajectory", "trajectory_msgs/msg/JointTrajectory", _trajectory(ns, k))
            )
    if recording.hold_at is not None:
        stop = MSG["trajectory_msgs/msg/JointTrajectory"](header=_header(0), joint_names=[], points=[])
        ns = T0 + int(recording.hold_at * 1e9)
        messages.append((ns, "/arm_controller/joint_trajectory", "trajectory_msgs/msg/JointTrajectory", stop))
    messages.append((T0, "/instruction", "std_msgs/msg/String", MSG["std_msgs/msg/String"](data="put it there")))
    with Writer(path, version=9, storage_plugin=storage) as writer:
        connections = {}
        if recording.silent_camera:
            writer.add_connection("/camera/front/image_raw", "sensor_msgs/msg/Image", typestore=TYPES)
        for ns, topic, msgtype, message in sorted(messages, key=lambda m: m[0]):
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, msgtype, typestore=TYPES)
            writer.write(connections[topic], ns, TYPES.serialize_cdr(message, msgtype))
        for key, value in recording.custom.items():
            writer.set_custom_data(key, value)
    return path

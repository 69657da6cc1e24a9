"""rosbag2 recordings -> episodes, without ROS: one bag is one episode, read with ``rosbags`` (mcap or sqlite3).

Alignment. Ticks run at the control rate over the reference camera's span, the first ``sync_window`` (half) of a
period after its first frame: the messages of one observation (frames, joint state, the command decided from them)
reach a recorder milliseconds apart, in any order and with the jitter of a loaded machine, and a tick must hold all of
them and none of the next observation's, or an episode loses its first step and its actions are paired with the
observation after the one they were decided from. Every stream contributes, at each tick, its latest message
received at or before the tick, never a later one;
a tick where some stream's latest message is older than ``max_age_s`` (or has not arrived) is dropped. Times are
the bag's receive times: what the robot had at that moment, on one clock (header stamps may come from another
clock, and a JointTrajectory stamp of 0 means "start now").

Joints are matched by name, per joint, so partial or reordered JointState messages are fine. Actions come from
the command topic: a teleop leader's JointState (its positions) or a JointTrajectory (its points interpolated
linearly in time_from_start at the tick, held at the last point), or, when the bag has no commands, from the
next tick's observed joint positions (the last tick then has no action and is dropped).
Episode metadata written by faster_ros's episode_recorder (``faster.*`` custom data) is used when present.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.interfaces import Connection
from rosbags.typesys import Stores, get_typestore
from tqdm import tqdm

from faster_core.data.episodes import DatasetError, DatasetWriter
from faster_core.embodiment import Embodiment
from faster_core.images import to_rgb

JOINT_STATE = "sensor_msgs/msg/JointState"
JOINT_TRAJECTORY = "trajectory_msgs/msg/JointTrajectory"
IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
STRING = "std_msgs/msg/String"
NS = 1_000_000_000

_log = logging.getLogger(__name__)


class BagError(ValueError):
    """Why a bag cannot become an episode."""


@dataclass(frozen=True)
class BagConversion:
    """How bags map to episodes; unset values come from the embodiment."""

    embodiment: Embodiment
    rate_hz: float | None = None  # default: embodiment.control_rate_hz
    reference_camera: str | None = None  # default: the embodiment's first camera
    max_age_s: float = 0.2
    sync_window: float = 0.5  # fraction of a control period between a reference frame and its tick
    action_topic: str | None = None  # default: topics.trajectory if the bag has messages on it, else none
    instruction: str | None = None  # used when the bag carries none
    min_steps: int = 10

    def __post_init__(self):
        if not 0 <= self.sync_window < 1:
            raise ValueError(f"sync_window is a fraction of the control period in [0, 1), got {self.sync_window}")

    @property
    def rate(self) -> float:
        return self.rate_hz or self.embodiment.control_rate_hz


@dataclass(frozen=True)
class ConvertedBag:
    """One episode made from a bag (a bag with dropped ticks inside becomes several)."""

    bag: Path
    episode_id: int
    steps: int
    dropped_ticks: int
    action_source: str


@dataclass(frozen=True)
class SkippedBag:
    bag: Path
    reason: str


@dataclass(frozen=True)
class ConversionReport:
    out_dir: Path
    converted: tuple[ConvertedBag, ...]
    skipped: tuple[SkippedBag, ...]

    def summary(self) -> str:
        lines = [
            f"{c.bag.name}: episode {c.episode_id}, {c.steps} steps, {c.dropped_ticks} ticks dropped, "
            f"actions from {c.action_source}"
            for c in self.converted
        ]
        lines += [f"{s.bag.name}: skipped: {s.reason}" for s in self.skipped]
        bags = len({c.bag for c in self.converted})
        lines.append(
            f"{bags} bags converted into {len(self.converted)} episodes in {self.out_dir}, {len(self.skipped)} skipped"
        )
        return "\n".join(lines)


@dataclass
class _Series:
    """Receive times and values of one stream (a joint's position or command, a camera's frame numbers)."""

    times: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def sample(self, ticks: np.ndarray, max_age: int) -> tuple[np.ndarray, np.ndarray]:
        """The latest value at or before each tick, and whether it exists and is at most max_age old."""
        times = np.asarray(self.times, dtype=np.int64)
        if not len(times):
            return np.zeros(len(ticks)), np.zeros(len(ticks), dtype=bool)
        latest = np.searchsorted(times, ticks, side="right") - 1
        valid = latest >= 0
        latest = np.maximum(latest, 0)
        valid &= ticks - times[latest] <= max_age
        return np.asarray(self.values)[latest], valid


@dataclass
class _TrajectorySeries:
    """One joint's commanded trajectories: receive time, then (time_from_start, position) points, or None for an
    empty trajectory (the controller's stop: no commanded motion to learn until the next trajectory)."""

    times: list[int] = field(default_factory=list)
    points: list[tuple[np.ndarray, np.ndarray] | None] = field(default_factory=list)

    def sample(self, ticks: np.ndarray, max_age: int) -> tuple[np.ndarray, np.ndarray]:
        """The target at each tick of the latest trajectory received (its first point before that point's time),
        valid until max_age after its last point."""
        times = np.asarray(self.times, dtype=np.int64)
        latest = np.searchsorted(times, ticks, side="right") - 1
        values = np.zeros(len(ticks))
        valid = np.zeros(len(ticks), dtype=bool)
        for k, (tick, index) in enumerate(zip(ticks, latest, strict=True)):
            if index < 0 or self.points[index] is None:
                continue
            offsets, positions = self.points[index]
            elapsed = int(tick - times[index])
            values[k] = np.interp(elapsed, offsets, positions)
            valid[k] = elapsed - offsets[-1] <= max_age
        return values, valid


@dataclass
class _BagContents:
    """What the first pass over a bag keeps: everything except image bytes."""

    joints: dict[str, _Series]
    commands: dict[str, _Series | _TrajectorySeries]  # empty when the bag has no command topic
    camera_times: dict[str, list[int]]
    instructions: list[str]


def convert_bags(
    bags: Sequence[str | Path],
    out_dir: str | Path,
    config: BagConversion,
    *,
    image_format: str = "jpeg",
    progress: bool = True,
) -> ConversionReport:
    """Convert each bag into one episode of a new dataset; a bag that cannot be converted is skipped with a reason."""
    embodiment = config.embodiment
    if config.reference_camera and config.reference_camera not in embodiment.camera_names:
        raise ValueError(f"reference camera {config.reference_camera!r} is not one of {embodiment.camera_names}")
    converted, skipped = [], []
    writer = DatasetWriter(
        out_dir,
        fps=config.rate,
        embodiment=embodiment.name,
        joint_names=embodiment.joint_names,
        cameras=embodiment.camera_names,
        image_format=image_format,
    )
    for bag in tqdm([Path(b) for b in bags], desc="bags", unit="bag", disable=not progress):
        try:
            converted.extend(_convert_bag(bag, writer, config))
        except (BagError, DatasetError) as error:
            skipped.append(SkippedBag(bag, str(error)))
        except (AnyReaderError, OSError, sqlite3.DatabaseError) as error:
            skipped.append(SkippedBag(bag, f"unreadable (truncated or corrupted?): {error}"))
        else:
            continue
        _log.warning("skipping bag %s: %s", bag, skipped[-1].reason)
    if converted:
        writer.close()
    return ConversionReport(Path(out_dir), tuple(converted), tuple(skipped))


def _convert_bag(bag: Path, writer: DatasetWriter, config: BagConversion) -> list[ConvertedBag]:
    embodiment = config.embodiment
    with AnyReader([bag], default_typestore=get_typestore(Stores.ROS2_KILTED)) as reader:
        custom = _custom_data(bag)
        _check_recorded_embodiment(custom, embodiment)
        by_topic: dict[str, list[Connection]] = {}
        for connection in reader.connections:
            by_topic.setdefault(connection.topic, []).append(connection)
        cameras = {camera.name: _camera_connections(by_topic, camera.topic) for camera in embodiment.cameras}
        action_topic, action_connections = _action_connections(by_topic, config)
        contents = _read_streams(
            reader,
            embodiment=embodiment,
            cameras=cameras,
            state_connections=_require(by_topic, embodiment.topics.joint_states, JOINT_STATE),
            action_connections=action_connections,
            instruction_connections=[c for c in by_topic.get(embodiment.topics.instruction, []) if c.msgtype == STRING],
        )
        aligned = _align(contents, config)
        # Dropped ticks inside a bag split it: an episode's steps are exactly one control period apart.
        segments = [run for run in _runs(aligned.keep) if len(run) >= config.min_steps]
        if not segments:
            steps = int(aligned.keep.sum())
            raise BagError(
                f"too short: {steps} aligned steps at {config.rate:g} Hz, no unbroken run of {config.min_steps}; "
                f"{len(aligned.keep) - steps} of {len(aligned.keep)} ticks dropped (a stream older than "
                f"{config.max_age_s:g} s, a hold, or no joint state at the next tick to be the action)"
            )
        instruction = _instruction(custom, contents.instructions, config)
        dropped = len(aligned.keep) - sum(len(run) for run in segments)
        converted = []
        for number, run in enumerate(segments):
            episode_id = writer.add_episode(
                timestamps=(aligned.ticks[run] - aligned.ticks[run[0]]) / NS,
                state=aligned.state[run],
                action=aligned.action[run],
                instruction=instruction,
                # Only the part that reaches the end of the recording can have reached the goal.
                success=_recorded_success(custom) and number == len(segments) - 1,
                frames={
                    camera: _frames(reader, cameras[camera], aligned.frame_indices[camera][run])
                    for camera in embodiment.camera_names
                },
            )
            source = action_topic or "future joint positions"
            converted.append(ConvertedBag(bag, episode_id, len(run), dropped, source))
    return converted


def _runs(keep: np.ndarray) -> list[np.ndarray]:
    """Index arrays of the maximal runs of consecutive True ticks."""
    indices = np.flatnonzero(keep)
    if not len(indices):
        return []
    return np.split(indices, np.flatnonzero(np.diff(indices) > 1) + 1)


@dataclass(frozen=True)
class _Aligned:
    ticks: np.ndarray  # [K] receive times, ns
    keep: np.ndarray  # [K] bool: every stream had a fresh message (and, without commands, so did the next tick)
    state: np.ndarray  # [K, D]
    action: np.ndarray  # [K, D]
    frame_indices: dict[str, np.ndarray]  # camera -> [K] message number of the frame used at each tick


def _align(contents: _BagContents, config: BagConversion) -> _Aligned:
    """Sample every stream as-of the control-rate ticks over the reference camera's span."""
    embodiment = config.embodiment
    max_age = int(config.max_age_s * NS)
    silent = [camera for camera, times in contents.camera_times.items() if not times]
    silent += [joint for joint, series in contents.joints.items() if not series.times]
    if silent:
        raise BagError(f"no messages at all for {silent}")
    reference_times = contents.camera_times[config.reference_camera or embodiment.camera_names[0]]
    period = NS / config.rate
    # Rounded, not floored: on a loaded machine the frames of N steps can span a little less than N - 1 periods, and
    # a floored count would drop the last step.
    count = round((reference_times[-1] - reference_times[0]) / period) + 1
    # offsets in integer ns before adding: receive times near 1.7e18 ns are not exact in float64
    ticks = reference_times[0] + np.round((np.arange(count) + config.sync_window) * period).astype(np.int64)

    state = np.zeros((count, embodiment.dof))
    state_valid = np.ones(count, dtype=bool)
    for d, joint in enumerate(embodiment.joint_names):
        state[:, d], valid = contents.joints[joint].sample(ticks, max_age)
        state_valid &= valid
    keep = state_valid.copy()
    frame_indices = {}
    for camera, times in contents.camera_times.items():
        numbers, valid = _Series(times, list(range(len(times)))).sample(ticks, max_age)
        frame_indices[camera] = numbers.astype(np.int64)
        keep &= valid
    action = np.zeros_like(state)
    if contents.commands:
        for d, joint in enumerate(embodiment.joint_names):
            action[:, d], valid = contents.commands[joint].sample(ticks, max_age)
            keep &= valid
    else:  # the positions observed at the next tick, which must itself have a valid joint state
        action[:-1] = state[1:]
        keep[:-1] &= state_valid[1:]
        keep[-1] = False
    return _Aligned(ticks, keep, state, action, frame_indices)


def _require(by_topic: dict[str, list[Connection]], topic: str, msgtype: str) -> list[Connection]:
    connections = by_topic.get(topic, [])
    if not connections:
        raise BagError(f"missing topic {topic} ({msgtype}); the bag has {sorted(by_topic)}")
    wrong = {c.msgtype for c in connections} - {msgtype}
    if wrong:
        raise BagError(f"topic {topic} carries {sorted(wrong)}, expected {msgtype}")
    return connections


def _camera_connections(by_topic: dict[str, list[Connection]], topic: str) -> list[Connection]:
    """A camera as raw Image on its topic or as CompressedImage on ``<topic>/compressed``."""
    if topic in by_topic:
        return _require(by_topic, topic, IMAGE)
    if f"{topic}/compressed" in by_topic:
        return _require(by_topic, f"{topic}/compressed", COMPRESSED_IMAGE)
    raise BagError(f"missing camera topic {topic} (or {topic}/compressed); the bag has {sorted(by_topic)}")


def _action_connections(
    by_topic: dict[str, list[Connection]], config: BagConversion
) -> tuple[str | None, list[Connection]]:
    """The command topic to take actions from: configured (required), else the trajectory topic if not empty."""
    topic = config.action_topic
    if topic is None:
        default = config.embodiment.topics.trajectory
        if not any(c.msgcount for c in by_topic.get(default, [])):
            return None, []
        topic = default
    connections = by_topic.get(topic, [])
    if not any(c.msgcount for c in connections):
        raise BagError(f"action topic {topic} has no messages in this bag")
    types = {c.msgtype for c in connections}
    if len(types) != 1 or not types <= {JOINT_STATE, JOINT_TRAJECTORY}:
        raise BagError(f"action topic {topic} carries {sorted(types)}, expected {JOINT_STATE} or {JOINT_TRAJECTORY}")
    return topic, connections


def _read_streams(
    reader: AnyReader,
    *,
    embodiment: Embodiment,
    cameras: dict[str, list[Connection]],
    state_connections: list[Connection],
    action_connections: list[Connection],
    instruction_connections: list[Connection],
) -> _BagContents:
    """First pass: joint positions, commands, instructions and camera receive times (image bytes are dropped)."""
    joints = {j: _Series() for j in embodiment.joint_names}
    trajectory = bool(action_connections) and action_connections[0].msgtype == JOINT_TRAJECTORY
    commands = {j: _TrajectorySeries() if trajectory else _Series() for j in embodiment.joint_names}
    camera_of = {c.id: name for name, connections in cameras.items() for c in connections}
    camera_times: dict[str, list[int]] = {name: [] for name in cameras}
    # A teleop leader publishes the same type as the follower, so roles go by connection, not by type.
    state_ids = {c.id for c in state_connections}
    action_ids = {c.id for c in action_connections}
    connections = [c for group in cameras.values() for c in group]
    connections += state_connections + action_connections + instruction_connections
    instructions = []
    seen_joints: set[str] = set()
    for connection, time, raw in reader.messages(connections=connections):
        if connection.id in camera_of:
            camera_times[camera_of[connection.id]].append(time)
            continue
        message = reader.deserialize(raw, connection.msgtype)
        if connection.id in state_ids:
            _add_positions(joints, message, time)
            seen_joints.update(message.name)
        elif connection.id in action_ids and trajectory:
            _add_trajectory(commands, message, time)
        elif connection.id in action_ids:
            _add_positions(commands, message, time)
        else:
            instructions.append(message.data)
    missing = [j for j, series in joints.items() if not series.times]
    if missing:
        raise BagError(
            f"joints {missing} never appear on {embodiment.topics.joint_states} (it names {sorted(seen_joints)})"
        )
    if not action_connections:
        return _BagContents(joints, {}, camera_times, instructions)
    missing = [j for j, series in commands.items() if not series.times]
    if missing:
        raise BagError(f"joints {missing} never appear on the action topic {action_connections[0].topic}")
    return _BagContents(joints, commands, camera_times, instructions)


def _add_positions(series: dict[str, _Series], message: object, time: int) -> None:
    if len(message.position) != len(message.name):
        raise BagError(f"a JointState at {time} ns has {len(message.name)} names but {len(message.position)} positions")
    for name, position in zip(message.name, message.position, strict=True):
        if name in series:
            series[name].times.append(time)
            series[name].values.append(float(position))


def _add_trajectory(series: dict[str, _TrajectorySeries], message: object, time: int) -> None:
    if not message.points:  # a stop applies to every joint, named or not
        for joint in series.values():
            joint.times.append(time)
            joint.points.append(None)
        return
    offsets = np.asarray([p.time_from_start.sec * NS + p.time_from_start.nanosec for p in message.points])
    if np.any(np.diff(offsets) <= 0):
        raise BagError(f"a JointTrajectory at {time} ns has time_from_start not strictly increasing")
    positions = np.asarray([p.positions for p in message.points], dtype=np.float64)
    if positions.shape != (len(message.points), len(message.joint_names)):
        raise BagError(f"a JointTrajectory at {time} ns has points without one position per joint")
    for d, name in enumerate(message.joint_names):
        if name in series:
            series[name].times.append(time)
            series[name].points.append((offsets, positions[:, d]))


def _frames(reader: AnyReader, connections: list[Connection], indices: np.ndarray) -> Iterator[np.ndarray]:
    """Second pass for one camera: decode only the frames the kept ticks use, in tick order."""
    wanted = iter(indices)
    target = next(wanted, None)
    for index, (connection, time, raw) in enumerate(reader.messages(connections=connections)):
        if target is None:
            return
        if index != target:
            continue
        image = _to_rgb(reader.deserialize(raw, connection.msgtype), connection.topic, time)
        while target == index:
            yield image
            target = next(wanted, None)


def _to_rgb(message: object, topic: str, time: int) -> np.ndarray:
    try:
        return to_rgb(message)
    except ValueError as error:
        raise BagError(f"{topic} at {time} ns: {error}") from error


def _custom_data(bag: Path) -> dict[str, str]:
    """``custom_data`` of the bag's metadata.yaml (rosbag2 format 6 and later), where the recorder puts faster.*."""
    try:
        metadata = yaml.safe_load((bag / "metadata.yaml").read_text())
    except (OSError, yaml.YAMLError) as error:
        raise BagError(f"cannot read {bag / 'metadata.yaml'}: {error}") from error
    custom = (metadata or {}).get("rosbag2_bagfile_information", {}).get("custom_data") or {}
    if not isinstance(custom, dict):
        raise BagError(f"{bag / 'metadata.yaml'}: custom_data is not a mapping")
    return custom


def _custom_json(custom: dict[str, str], key: str) -> object:
    try:
        return json.loads(custom[key])
    except json.JSONDecodeError as error:
        raise BagError(f"custom data {key} is not JSON: {error}") from error


def _check_recorded_embodiment(custom: dict[str, str], embodiment: Embodiment) -> None:
    if "faster.embodiment" in custom and _custom_json(custom, "faster.embodiment") != embodiment.name:
        raise BagError(f"recorded for embodiment {custom['faster.embodiment']}, converting for {embodiment.name!r}")
    if "faster.joint_names" in custom and _custom_json(custom, "faster.joint_names") != list(embodiment.joint_names):
        raise BagError(f"recorded joint_names {custom['faster.joint_names']} differ from {embodiment.name}'s")


def _instruction(custom: dict[str, str], messages: list[str], config: BagConversion) -> str:
    if "faster.instruction" in custom:
        return str(_custom_json(custom, "faster.instruction"))
    if messages:
        return messages[-1]
    if config.instruction:
        return config.instruction
    raise BagError(
        f"no instruction: no faster.instruction custom data, no message on {config.embodiment.topics.instruction}, "
        "and none given (--instruction)"
    )


def _recorded_success(custom: dict[str, str]) -> bool:
    """The recorder's task_success; a bag without it is taken as a successful demonstration."""
    return bool(_custom_json(custom, "faster.task_success")) if "faster.task_success" in custom else True

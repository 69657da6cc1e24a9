"""Embodiment spec: the one description of a robot that every part of the suite shares.

The source of truth is a ROS 2 parameter file, ``faster_bringup/config/<name>.yaml``. The launch files load it
as parameters for the nodes; this module reads the same file (or the same parameters, flattened with dots as
ROS names them) so the tokenizer, the policy and the data tools agree with the running robot.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

BRINGUP_PACKAGE = "faster_bringup"


# Every parameter an embodiment file holds: name -> (type, description). The ROS nodes declare exactly these.
PARAMETERS: dict[str, tuple[str, str]] = {
    "embodiment": ("string", "embodiment name, e.g. single_arm"),
    "joint_names": ("string_array", "action dimensions in order; joint states are reordered by these names"),
    "action_groups.names": ("string_array", "patchifier groups of consecutive action dimensions"),
    "action_groups.sizes": ("integer_array", "size of each group; sums to the number of joints"),
    "chunk_length": ("integer", "H: actions per predicted chunk"),
    "control_rate_hz": ("double", "rate of the actions in a chunk and of the published trajectory"),
    "cameras.names": ("string_array", "camera names the policy was trained with"),
    "cameras.topics": ("string_array", "image topic of each camera"),
    "cameras.image_size": ("integer", "square side in pixels of the images the policy sees"),
    "tokenizer.patch_length": ("integer", "h: actions per temporal patch"),
    "tokenizer.time_tokens": ("integer", "C_h: latent tokens along time"),
    "tokenizer.action_tokens": ("integer", "C_a: latent tokens along the action dimensions"),
    "tokenizer.codebooks": ("integer", "N_c: residual VQ levels"),
    "policy.block_size": ("integer", "B: tokens decoded per forward pass (BAR)"),
    "limits.position_lower": ("double_array", "lower position limit per joint (rad or m)"),
    "limits.position_upper": ("double_array", "upper position limit per joint (rad or m)"),
    "limits.velocity": ("double_array", "velocity limit per joint (rad/s or m/s)"),
    "limits.tracking_error": (
        "double_array",
        "most a command may lead the measured joint, per joint (rad or m); default: one control period at the "
        "velocity limit",
    ),
    "topics.joint_states": ("string", "sensor_msgs/JointState input"),
    "topics.instruction": ("string", "std_msgs/String language instruction input"),
    "topics.trajectory": ("string", "trajectory_msgs/JointTrajectory output (joint_trajectory_controller)"),
}


# Parameters an embodiment file may leave out; from_parameters says what stands in for each.
OPTIONAL_PARAMETERS = frozenset({"limits.tracking_error"})


class EmbodimentError(ValueError):
    """An embodiment file or parameter set that cannot describe a robot; the message names the field."""


@dataclass(frozen=True)
class ActionGroup:
    """A run of consecutive action dimensions with one physical meaning (arm joints, gripper, base...)."""

    name: str
    start: int
    size: int

    @property
    def stop(self) -> int:
        return self.start + self.size


@dataclass(frozen=True)
class Camera:
    name: str
    topic: str


@dataclass(frozen=True)
class TokenizerLayout:
    """Per-embodiment FASTerVQ layout (paper Table 4)."""

    patch_length: int  # h: actions per temporal patch
    time_tokens: int  # C_h
    action_tokens: int  # C_a
    codebooks: int  # N_c

    @property
    def tokens_per_chunk(self) -> int:
        return self.codebooks * self.time_tokens * self.action_tokens


@dataclass(frozen=True)
class JointLimits:
    position_lower: np.ndarray
    position_upper: np.ndarray
    velocity: np.ndarray
    # Beyond what the joint can travel by a point's time: a gripper squeezing an object, or an arm pressing on
    # one, is commanded past where it stands, and this bounds by how much (so how hard it pushes).
    tracking_error: np.ndarray


@dataclass(frozen=True)
class Topics:
    joint_states: str
    instruction: str
    trajectory: str


@dataclass(frozen=True)
class Embodiment:
    name: str
    joint_names: tuple[str, ...]
    action_groups: tuple[ActionGroup, ...]
    chunk_length: int  # H
    control_rate_hz: float
    cameras: tuple[Camera, ...]
    image_size: int
    tokenizer: TokenizerLayout
    block_size: int  # B, BAR block size
    limits: JointLimits
    topics: Topics

    @property
    def dof(self) -> int:
        return len(self.joint_names)

    @property
    def dt(self) -> float:
        return 1.0 / self.control_rate_hz

    @property
    def camera_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.cameras)

    @classmethod
    def from_parameters(cls, params: Mapping[str, Any]) -> Embodiment:
        """Build from ROS parameters as the node sees them: a flat mapping with dotted names."""
        reader = _ParameterReader(params)
        joint_names = tuple(reader.strings("joint_names"))
        dof = len(joint_names)
        if dof == 0:
            raise EmbodimentError("joint_names is empty")
        if len(set(joint_names)) != dof:
            raise EmbodimentError(f"joint_names has duplicates: {list(joint_names)}")

        group_names = reader.strings("action_groups.names")
        group_sizes = reader.ints("action_groups.sizes")
        if len(group_names) != len(group_sizes):
            raise EmbodimentError(
                f"action_groups.names has {len(group_names)} entries but action_groups.sizes has {len(group_sizes)}"
            )
        if any(size < 1 for size in group_sizes) or sum(group_sizes) != dof:
            raise EmbodimentError(
                f"action_groups.sizes {group_sizes} must be positive and sum to the {dof} joints in joint_names"
            )
        starts = np.cumsum([0, *group_sizes[:-1]])
        groups = tuple(ActionGroup(n, int(s), z) for n, s, z in zip(group_names, starts, group_sizes, strict=True))

        camera_names = reader.strings("cameras.names")
        camera_topics = reader.strings("cameras.topics")
        if len(camera_names) != len(camera_topics) or not camera_names:
            raise EmbodimentError(
                f"cameras.names ({len(camera_names)}) and cameras.topics ({len(camera_topics)}) must be non-empty "
                "and of equal length"
            )

        chunk_length = reader.positive_int("chunk_length")
        layout = TokenizerLayout(
            patch_length=reader.positive_int("tokenizer.patch_length"),
            time_tokens=reader.positive_int("tokenizer.time_tokens"),
            action_tokens=reader.positive_int("tokenizer.action_tokens"),
            codebooks=reader.positive_int("tokenizer.codebooks"),
        )
        if chunk_length % layout.patch_length:
            raise EmbodimentError(
                f"tokenizer.patch_length {layout.patch_length} must divide chunk_length {chunk_length}"
            )

        rate = reader.float("control_rate_hz")
        if not rate > 0:
            raise EmbodimentError(f"control_rate_hz must be positive, got {rate}")

        velocity = reader.floats("limits.velocity", dof)
        if np.any(velocity <= 0):
            raise EmbodimentError("limits.velocity must be positive for every joint")
        if "limits.tracking_error" in params:
            tracking_error = reader.floats("limits.tracking_error", dof)
        else:
            tracking_error = velocity / rate
            tracking_error.setflags(write=False)
        if np.any(tracking_error < 0):
            raise EmbodimentError("limits.tracking_error must be >= 0 for every joint")
        limits = JointLimits(
            position_lower=reader.floats("limits.position_lower", dof),
            position_upper=reader.floats("limits.position_upper", dof),
            velocity=velocity,
            tracking_error=tracking_error,
        )
        bad = np.flatnonzero(limits.position_lower >= limits.position_upper)
        if bad.size:
            raise EmbodimentError(f"limits.position_lower >= position_upper for {[joint_names[i] for i in bad]}")

        return cls(
            name=reader.string("embodiment"),
            joint_names=joint_names,
            action_groups=groups,
            chunk_length=chunk_length,
            control_rate_hz=rate,
            cameras=tuple(Camera(n, t) for n, t in zip(camera_names, camera_topics, strict=True)),
            image_size=reader.positive_int("cameras.image_size"),
            tokenizer=layout,
            block_size=reader.positive_int("policy.block_size"),
            limits=limits,
            topics=Topics(
                joint_states=reader.string("topics.joint_states"),
                instruction=reader.string("topics.instruction"),
                trajectory=reader.string("topics.trajectory"),
            ),
        )

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> Embodiment:
        return cls.from_parameters(load_parameter_file(path))

    @classmethod
    def load(cls, name_or_path: str | os.PathLike) -> Embodiment:
        """An installed embodiment by name (``single_arm``) or any parameter file by path."""
        return cls.from_yaml(resolve_config(name_or_path))

    def to_parameters(self) -> dict[str, Any]:
        """The flat, dotted parameter mapping this spec was read from (round-trips through from_parameters)."""
        return {
            "embodiment": self.name,
            "joint_names": list(self.joint_names),
            "action_groups.names": [g.name for g in self.action_groups],
            "action_groups.sizes": [g.size for g in self.action_groups],
            "chunk_length": self.chunk_length,
            "control_rate_hz": self.control_rate_hz,
            "cameras.names": list(self.camera_names),
            "cameras.topics": [c.topic for c in self.cameras],
            "cameras.image_size": self.image_size,
            "tokenizer.patch_length": self.tokenizer.patch_length,
            "tokenizer.time_tokens": self.tokenizer.time_tokens,
            "tokenizer.action_tokens": self.tokenizer.action_tokens,
            "tokenizer.codebooks": self.tokenizer.codebooks,
            "policy.block_size": self.block_size,
            "limits.position_lower": self.limits.position_lower.tolist(),
            "limits.position_upper": self.limits.position_upper.tolist(),
            "limits.velocity": self.limits.velocity.tolist(),
            "limits.tracking_error": self.limits.tracking_error.tolist(),
            "topics.joint_states": self.topics.joint_states,
            "topics.instruction": self.topics.instruction,
            "topics.trajectory": self.topics.trajectory,
        }


def load_parameter_file(path: str | os.PathLike) -> dict[str, Any]:
    """Flatten a ROS 2 parameter file into dotted names, merging every node section (``/**`` first)."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise EmbodimentError(f"cannot read embodiment file {path}: {error}") from error
    if not isinstance(document, dict):
        raise EmbodimentError(f"{path} is not a ROS parameter file (top level must map node names)")
    flat: dict[str, Any] = {}
    for node, section in sorted(document.items(), key=lambda item: item[0] != "/**"):
        if not isinstance(section, dict) or "ros__parameters" not in section:
            raise EmbodimentError(f"{path}: section {node!r} has no ros__parameters")
        _flatten(section["ros__parameters"], "", flat)
    return flat


def resolve_config(name_or_path: str | os.PathLike) -> Path:
    """A path as given, or ``share/faster_bringup/config/<name>.yaml`` under AMENT_PREFIX_PATH."""
    candidate = Path(name_or_path)
    if candidate.suffix in {".yaml", ".yml"} or candidate.is_file():  # a folder of that name is not a config
        if not candidate.is_file():
            raise EmbodimentError(f"embodiment file {candidate} does not exist")
        return candidate
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    for prefix in prefixes:
        path = Path(prefix) / "share" / BRINGUP_PACKAGE / "config" / f"{name_or_path}.yaml"
        if path.is_file():
            return path
    available = sorted({p.stem for prefix in prefixes for p in installed_configs(Path(prefix))})
    raise EmbodimentError(
        f"unknown embodiment {str(name_or_path)!r}: not a file, and no {BRINGUP_PACKAGE} config of that name under "
        f"AMENT_PREFIX_PATH (available: {available or 'none; source env.sh or pass a YAML path'})"
    )


def installed_configs(prefix: Path) -> list[Path]:
    return sorted((prefix / "share" / BRINGUP_PACKAGE / "config").glob("*.yaml"))


def _flatten(tree: Mapping[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            _flatten(value, f"{name}.", out)
        else:
            out[name] = value


class _ParameterReader:
    """Typed access to a flat parameter mapping with errors that name the parameter."""

    def __init__(self, params: Mapping[str, Any]):
        self._params = params

    def _get(self, name: str) -> Any:
        if name not in self._params:
            raise EmbodimentError(f"missing parameter {name!r}")
        return self._params[name]

    def string(self, name: str) -> str:
        value = self._get(name)
        if not isinstance(value, str) or not value:
            raise EmbodimentError(f"{name} must be a non-empty string, got {value!r}")
        return value

    def strings(self, name: str) -> list[str]:
        value = self._get(name)
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
            raise EmbodimentError(f"{name} must be a list of non-empty strings, got {value!r}")
        return list(value)

    def ints(self, name: str) -> list[int]:
        value = self._get(name)
        if not isinstance(value, list | tuple) or not all(_is_int(v) for v in value):
            raise EmbodimentError(f"{name} must be a list of integers, got {value!r}")
        return [int(v) for v in value]

    def positive_int(self, name: str) -> int:
        value = self._get(name)
        if not _is_int(value) or value < 1:
            raise EmbodimentError(f"{name} must be a positive integer, got {value!r}")
        return int(value)

    def float(self, name: str) -> float:
        value = self._get(name)
        if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
            raise EmbodimentError(f"{name} must be a finite number, got {value!r}")
        return float(value)

    def floats(self, name: str, length: int) -> np.ndarray:
        value = self._get(name)
        if not isinstance(value, list | tuple) or len(value) != length:
            raise EmbodimentError(f"{name} must list {length} numbers (one per joint), got {value!r}")
        array = np.asarray(value, dtype=np.float64)
        if not np.all(np.isfinite(array)):
            raise EmbodimentError(f"{name} must be finite, got {value!r}")
        array.setflags(write=False)
        return array


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)

"""Episode datasets on disk: one safetensors file per episode plus a JSON index, no pickle anywhere.

Layout of a dataset directory::

    dataset.json                      format, fps, embodiment, joint names, cameras, episode list, stats
    episodes/episode_000000.safetensors
        timestamps [T] float64        seconds since the episode's first step
        state      [T, D] float32     joint positions observed at each step, in joint_names order
        action     [T, D] float32     commanded joint positions at each step, same order
        frames.<camera>.bytes   [N] uint8     PNG/JPEG images back to back
        frames.<camera>.offsets [T+1] int64   image t is bytes[offsets[t]:offsets[t+1]]
        (header metadata: instruction, success, embodiment, joint_names, cameras, image_format)

Opening a dataset reads every episode's small arrays to validate them (an episode that fails is skipped and
reported in ``EpisodeDataset.skipped``); frames stay on disk until a step is indexed.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from faster_core.data.frames import IMAGE_FORMATS, FrameError, LazyFrames, encode_image, frame_keys
from faster_core.data.stats import DatasetStats, StatsError
from faster_core.embodiment import Embodiment

FORMAT_NAME = "faster-episodes"
FORMAT_VERSION = 1
INDEX_FILE = "dataset.json"
EPISODE_DIR = "episodes"
CAMERA_NAME = re.compile(r"^[A-Za-z0-9_]+$")

_log = logging.getLogger(__name__)


class DatasetError(ValueError):
    """Data that is corrupted or inconsistent; the message names the file and the field."""


@dataclass(frozen=True)
class Episode:
    """One demonstration as read back: arrays in memory, frames decoded per step on access."""

    episode_id: int  # number in the file name, stable when other episodes are skipped
    timestamps: np.ndarray  # [T] seconds
    state: np.ndarray  # [T, D] joint positions
    action: np.ndarray  # [T, D] commanded joint positions
    frames: Mapping[str, LazyFrames]
    instruction: str
    success: bool
    embodiment: str
    joint_names: tuple[str, ...]

    @property
    def length(self) -> int:
        return self.timestamps.shape[0]


@dataclass(frozen=True)
class SkippedEpisode:
    file: Path
    reason: str


@dataclass(frozen=True)
class DatasetSplit:
    """Episode positions (indices into the dataset) for training and validation; disjoint."""

    train: tuple[int, ...]
    validation: tuple[int, ...]


class DatasetWriter:
    """Writes episodes one at a time; ``close()`` writes the index and the statistics.

    Frames may be any iterable per camera (a generator reading a bag, say): each image is compressed as soon
    as it arrives, so only the encoded bytes of one episode are held in memory.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        fps: float,
        embodiment: str,
        joint_names: Sequence[str],
        cameras: Sequence[str] = (),
        image_format: str = "jpeg",
        jpeg_quality: int = 95,
    ):
        self.path = Path(path)
        if (self.path / INDEX_FILE).exists():
            raise DatasetError(f"{self.path / INDEX_FILE} already exists: refusing to overwrite a dataset")
        if not fps > 0:
            raise DatasetError(f"fps must be positive, got {fps}")
        if image_format not in IMAGE_FORMATS:
            raise DatasetError(f"image_format must be one of {sorted(IMAGE_FORMATS)}, got {image_format!r}")
        if not joint_names or len(set(joint_names)) != len(joint_names):
            raise DatasetError(f"joint_names must be non-empty and unique, got {list(joint_names)}")
        bad = [c for c in cameras if not CAMERA_NAME.match(c)]
        if bad or len(set(cameras)) != len(cameras):
            raise DatasetError(f"camera names must be unique and match {CAMERA_NAME.pattern}, got {list(cameras)}")
        self.fps = float(fps)
        self.embodiment = embodiment
        self.joint_names = tuple(joint_names)
        self.cameras = tuple(cameras)
        self.image_format = image_format
        self.jpeg_quality = jpeg_quality
        self._camera_shapes: dict[str, tuple[int, int, int]] = {}
        self._entries: list[dict[str, Any]] = []
        self._states: list[np.ndarray] = []
        self._actions: list[np.ndarray] = []
        (self.path / EPISODE_DIR).mkdir(parents=True, exist_ok=True)

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.close()

    def add_episode(
        self,
        *,
        timestamps: np.ndarray,
        state: np.ndarray,
        action: np.ndarray,
        instruction: str,
        success: bool,
        frames: Mapping[str, Iterable[np.ndarray]] | None = None,
    ) -> int:
        """Validate and write one episode; returns its episode id."""
        if not isinstance(instruction, str):
            raise DatasetError(f"instruction must be a string, got {instruction!r}")
        timestamps = np.asarray(timestamps, dtype=np.float64)
        state = np.asarray(state, dtype=np.float32)
        action = np.asarray(action, dtype=np.float32)
        arrays = _check_arrays(timestamps, state, action, len(self.joint_names), "episode")
        frames = frames or {}
        if set(frames) != set(self.cameras):
            raise DatasetError(f"episode frames are for cameras {sorted(frames)}, the dataset has {list(self.cameras)}")
        shapes = {}
        for camera in self.cameras:
            shapes[camera], encoded = self._encode_camera(camera, frames[camera], len(timestamps))
            arrays.update(encoded)

        episode_id = len(self._entries)
        relative = Path(EPISODE_DIR) / f"episode_{episode_id:06d}.safetensors"
        metadata = {
            "format": FORMAT_NAME,
            "version": str(FORMAT_VERSION),
            "instruction": instruction,
            "success": json.dumps(bool(success)),
            "embodiment": self.embodiment,
            "joint_names": json.dumps(list(self.joint_names)),
            "cameras": json.dumps(list(self.cameras)),
            "image_format": self.image_format,
        }
        temporary = self.path / relative.with_suffix(".tmp")
        save_file(arrays, str(temporary), metadata=metadata)
        temporary.replace(self.path / relative)
        self._entries.append(
            {
                "file": relative.as_posix(),
                "length": len(timestamps),
                "instruction": instruction,
                "success": bool(success),
            }
        )
        self._camera_shapes.update(shapes)
        self._states.append(state)
        self._actions.append(action)
        return episode_id

    def _encode_camera(
        self, camera: str, images: Iterable[np.ndarray], length: int
    ) -> tuple[tuple[int, int, int], dict[str, np.ndarray]]:
        """Compressed frames of one camera and their shape, which must match every earlier episode's."""
        encoded = []
        expected = self._camera_shapes.get(camera)
        for t, frame in enumerate(images):
            image = np.asarray(frame)
            expected = expected or image.shape
            if image.shape != expected:
                raise DatasetError(f"camera {camera!r} step {t}: frame is {image.shape}, earlier frames {expected}")
            try:
                encoded.append(encode_image(image, self.image_format, self.jpeg_quality))
            except FrameError as error:
                raise DatasetError(f"camera {camera!r} step {t}: {error}") from error
        if len(encoded) != length:
            raise DatasetError(f"camera {camera!r} has {len(encoded)} frames for {length} steps")
        offsets = np.cumsum([0, *(len(b) for b in encoded)], dtype=np.int64)
        data_key, offsets_key = frame_keys(camera)
        return expected, {data_key: np.frombuffer(b"".join(encoded), dtype=np.uint8), offsets_key: offsets}

    def close(self) -> Path:
        """Write ``dataset.json`` (episode list and statistics); returns its path."""
        if not self._entries:
            raise DatasetError(f"no episodes were written to {self.path}")
        missing = [c for c in self.cameras if c not in self._camera_shapes]
        if missing:
            raise DatasetError(f"cameras {missing} never received a frame")
        index = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "fps": self.fps,
            "embodiment": self.embodiment,
            "joint_names": list(self.joint_names),
            "cameras": {c: list(self._camera_shapes[c]) for c in self.cameras},
            "image_format": self.image_format,
            "episodes": self._entries,
            "stats": DatasetStats.from_episodes(self._states, self._actions).to_json(),
        }
        target = self.path / INDEX_FILE
        temporary = target.with_suffix(".tmp")
        temporary.write_text(json.dumps(index, indent=1) + "\n")
        temporary.replace(target)
        return target


class EpisodeDataset:
    """Read side of the format: validated episode list, lazy frames, statistics, splits by episode."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        index_path = self.path / INDEX_FILE
        try:
            index = json.loads(index_path.read_text())
        except FileNotFoundError as error:
            raise DatasetError(f"{index_path} not found: not an episode dataset") from error
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise DatasetError(f"{index_path}: cannot parse: {error}") from error
        header = _IndexReader(index, index_path)
        self.fps = header.positive_number("fps")
        self.embodiment = header.string("embodiment")
        self.joint_names = tuple(header.strings("joint_names"))
        self.image_format = header.choice("image_format", IMAGE_FORMATS)
        self.camera_shapes: dict[str, tuple[int, int, int]] = header.cameras()
        entries = header.episode_entries()

        self._episodes: list[tuple[int, Path, int]] = []  # (episode id, file, length)
        skipped: list[SkippedEpisode] = []
        states, actions = [], []
        for entry in entries:
            file = self.path / entry["file"]
            try:
                episode = self._read_episode(_episode_id(file), file)
                if episode.length != entry["length"]:
                    raise DatasetError(f"{file}: {episode.length} steps, {index_path} says {entry['length']}")
            except DatasetError as error:
                skipped.append(SkippedEpisode(file, str(error)))
                _log.warning("skipping episode: %s", error)
                continue
            self._episodes.append((episode.episode_id, file, episode.length))
            states.append(episode.state)
            actions.append(episode.action)
        self.skipped = tuple(skipped)
        if not self._episodes:
            raise DatasetError(f"{self.path}: none of its {len(entries)} episodes is readable")
        if skipped:  # the stored statistics include the skipped episodes' data
            self.stats = DatasetStats.from_episodes(states, actions)
        else:
            try:
                self.stats = DatasetStats.from_json(index.get("stats"), f"{index_path}: stats", len(self.joint_names))
            except StatsError as error:
                raise DatasetError(str(error)) from error

    @property
    def cameras(self) -> tuple[str, ...]:
        return tuple(self.camera_shapes)

    @property
    def lengths(self) -> tuple[int, ...]:
        return tuple(length for _, _, length in self._episodes)

    def __len__(self) -> int:
        return len(self._episodes)

    def episode(self, i: int) -> Episode:
        """The i-th readable episode (0 <= i < len); frames are not decoded."""
        episode_id, file, _ = self._episodes[i]
        return self._read_episode(episode_id, file)

    def frame(self, episode: int, camera: str, t: int) -> np.ndarray:
        """One decoded [H, W, 3] uint8 image."""
        if camera not in self.camera_shapes:
            raise KeyError(f"no camera {camera!r} in {self.path} (cameras: {list(self.camera_shapes)})")
        _, file, length = self._episodes[episode]
        return LazyFrames(file, camera, length, self.camera_shapes[camera])[t]

    def check_fits(self, embodiment: Embodiment, *, cameras: bool = True, rate: bool = True) -> None:
        """Raise DatasetError unless this data can train or drive ``embodiment``: same joints in the same order,
        frames for its cameras, and (for policies, whose actions are scheduled one period apart) its rate."""
        if tuple(self.joint_names) != embodiment.joint_names:
            raise DatasetError(
                f"dataset {self.path} has joints {list(self.joint_names)}; embodiment {embodiment.name} has "
                f"{list(embodiment.joint_names)}"
            )
        missing = [c for c in embodiment.camera_names if c not in self.cameras]
        if cameras and missing:
            raise DatasetError(f"dataset {self.path} has no frames for cameras {missing} (it has {self.cameras})")
        if rate and not np.isclose(self.fps, embodiment.control_rate_hz):
            raise DatasetError(
                f"dataset {self.path} was recorded at {self.fps:g} Hz; embodiment {embodiment.name} runs at "
                f"{embodiment.control_rate_hz:g} Hz (resample, or give the embodiment the data's rate)"
            )

    def split(self, validation_fraction: float = 0.1, seed: int = 0) -> DatasetSplit:
        """Shuffle episodes with ``seed`` and hold out ``round(fraction * len)`` of them (at least one if
        the fraction is positive and two or more episodes exist). Whole episodes only: no step of a validation
        episode is seen in training."""
        if not 0 <= validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
        count = round(validation_fraction * len(self))
        if validation_fraction > 0 and len(self) > 1:
            count = min(max(count, 1), len(self) - 1)
        order = np.random.default_rng(seed).permutation(len(self))
        return DatasetSplit(
            train=tuple(sorted(int(i) for i in order[count:])),
            validation=tuple(sorted(int(i) for i in order[:count])),
        )

    def _read_episode(self, episode_id: int, file: Path) -> Episode:
        try:
            with safe_open(str(file), framework="np") as handle:
                metadata = handle.metadata() or {}
                keys = set(handle.keys())
                missing = {"timestamps", "state", "action"} - keys
                if missing:
                    raise DatasetError(f"{file}: missing arrays {sorted(missing)}")
                timestamps = handle.get_tensor("timestamps")
                state = handle.get_tensor("state")
                action = handle.get_tensor("action")
                frame_index = {}  # camera -> (offsets, size of its byte tensor)
                for camera in self.camera_shapes:
                    bytes_key, offsets_key = frame_keys(camera)
                    if {bytes_key, offsets_key} <= keys:
                        frame_index[camera] = (
                            handle.get_tensor(offsets_key),
                            handle.get_slice(bytes_key).get_shape()[0],
                        )
        except FileNotFoundError as error:
            raise DatasetError(f"{file}: episode file is missing") from error
        except (SafetensorError, OSError) as error:
            raise DatasetError(f"{file}: corrupted episode file: {error}") from error

        _check_arrays(timestamps, state, action, len(self.joint_names), str(file))
        meta = _EpisodeMetadata(metadata, file)
        if (meta.string("format"), meta.string("version")) != (FORMAT_NAME, str(FORMAT_VERSION)):
            raise DatasetError(f"{file}: not a {FORMAT_NAME} v{FORMAT_VERSION} episode")
        joint_names = tuple(meta.json_strings("joint_names"))
        if joint_names != self.joint_names:
            raise DatasetError(f"{file}: joint_names {list(joint_names)} differ from the dataset's")
        embodiment = meta.string("embodiment")
        if embodiment != self.embodiment:
            raise DatasetError(f"{file}: embodiment {embodiment!r} differs from the dataset's {self.embodiment!r}")
        length = timestamps.shape[0]
        for camera in self.camera_shapes:
            if camera not in frame_index:
                raise DatasetError(f"{file}: no frames for camera {camera!r}")
            offsets, size = frame_index[camera]
            if (
                offsets.shape != (length + 1,)
                or offsets[0] != 0
                or np.any(np.diff(offsets) <= 0)
                or offsets[-1] != size
            ):
                raise DatasetError(f"{file}: {frame_keys(camera)[1]} does not index {length} images in its bytes")
        return Episode(
            episode_id=episode_id,
            timestamps=timestamps,
            state=state,
            action=action,
            frames={c: LazyFrames(file, c, length, shape) for c, shape in self.camera_shapes.items()},
            instruction=meta.string("instruction", allow_empty=True),
            success=meta.boolean("success"),
            embodiment=embodiment,
            joint_names=joint_names,
        )


def _check_arrays(
    timestamps: np.ndarray, state: np.ndarray, action: np.ndarray, dof: int, where: str
) -> dict[str, np.ndarray]:
    """Shapes, finiteness and time order that every episode must satisfy."""
    if timestamps.ndim != 1 or timestamps.shape[0] == 0:
        raise DatasetError(f"{where}: timestamps must be a non-empty [T] array, got shape {timestamps.shape}")
    length = timestamps.shape[0]
    for name, array in (("state", state), ("action", action)):
        if array.shape != (length, dof):
            raise DatasetError(f"{where}: {name} must be [{length}, {dof}] (steps, joints), got {array.shape}")
        if not np.all(np.isfinite(array)):
            raise DatasetError(f"{where}: {name} has non-finite values")
    if not np.all(np.isfinite(timestamps)) or np.any(np.diff(timestamps) <= 0):
        raise DatasetError(f"{where}: timestamps must be finite and strictly increasing")
    return {"timestamps": timestamps, "state": state, "action": action}


def _episode_id(file: Path) -> int:
    match = re.fullmatch(r"episode_(\d+)\.safetensors", file.name)
    if not match:
        raise DatasetError(f"{file}: episode files are named episode_<number>.safetensors")
    return int(match.group(1))


class _IndexReader:
    """Typed access to ``dataset.json`` with errors that name the file and field."""

    def __init__(self, index: Any, path: Path):
        self._path = path
        if not isinstance(index, dict):
            raise DatasetError(f"{path}: top level must be an object")
        if index.get("format") != FORMAT_NAME or index.get("version") != FORMAT_VERSION:
            raise DatasetError(
                f"{path}: format/version {index.get('format')!r}/{index.get('version')!r}, "
                f"expected {FORMAT_NAME!r}/{FORMAT_VERSION}"
            )
        self._index = index

    def _fail(self, field: str, expected: str) -> DatasetError:
        return DatasetError(f"{self._path}: {field} must be {expected}, got {self._index.get(field)!r}")

    def positive_number(self, field: str) -> float:
        value = self._index.get(field)
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise self._fail(field, "a positive number")
        return float(value)

    def string(self, field: str) -> str:
        value = self._index.get(field)
        if not isinstance(value, str) or not value:
            raise self._fail(field, "a non-empty string")
        return value

    def strings(self, field: str) -> list[str]:
        value = self._index.get(field)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            raise self._fail(field, "a non-empty list of strings")
        return value

    def choice(self, field: str, options: Mapping[str, Any]) -> str:
        value = self._index.get(field)
        if value not in options:
            raise self._fail(field, f"one of {sorted(options)}")
        return value

    def cameras(self) -> dict[str, tuple[int, int, int]]:
        value = self._index.get("cameras")
        if not isinstance(value, dict):
            raise self._fail("cameras", "an object mapping camera names to [H, W, 3]")
        shapes = {}
        for name, shape in value.items():
            valid = isinstance(shape, list) and len(shape) == 3 and all(isinstance(s, int) and s > 0 for s in shape)
            if not CAMERA_NAME.match(name) or not valid or shape[2] != 3:
                raise self._fail("cameras", "an object mapping camera names to [H, W, 3]")
            shapes[name] = (shape[0], shape[1], shape[2])
        return shapes

    def episode_entries(self) -> list[dict[str, Any]]:
        entries = self._index.get("episodes")
        if not isinstance(entries, list) or not entries:
            raise self._fail("episodes", "a non-empty list")
        for i, entry in enumerate(entries):
            valid = (
                isinstance(entry, dict)
                and isinstance(entry.get("file"), str)
                and isinstance(entry.get("length"), int)
                and not Path(entry["file"]).is_absolute()
                and ".." not in Path(entry["file"]).parts
            )
            if not valid:
                raise DatasetError(f"{self._path}: episodes[{i}] must have a relative file and an integer length")
        return entries


class _EpisodeMetadata:
    """Typed access to an episode file's header metadata (all strings in safetensors)."""

    def __init__(self, metadata: Mapping[str, str], file: Path):
        self._metadata = metadata
        self._file = file

    def string(self, field: str, *, allow_empty: bool = False) -> str:
        value = self._metadata.get(field)
        if value is None or (not value and not allow_empty):
            raise DatasetError(f"{self._file}: metadata field {field!r} is missing or empty")
        return value

    def boolean(self, field: str) -> bool:
        value = self.string(field)
        if value not in ("true", "false"):
            raise DatasetError(f"{self._file}: metadata field {field!r} must be true or false, got {value!r}")
        return value == "true"

    def json_strings(self, field: str) -> list[str]:
        try:
            value = json.loads(self.string(field))
        except json.JSONDecodeError as error:
            raise DatasetError(f"{self._file}: metadata field {field!r} is not JSON: {error}") from error
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise DatasetError(f"{self._file}: metadata field {field!r} must be a list of strings")
        return value

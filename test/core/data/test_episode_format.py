"""The episode format: round trip, lazy frames, splits, statistics and what happens to damaged files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from faster_core.data import frames as frames_module
from faster_core.data.episodes import DatasetError, DatasetWriter, EpisodeDataset
from faster_core.data.frames import FrameError
from faster_core.embodiment import Embodiment

from repo_paths import CONFIG_DIR

JOINTS = ("j1", "j2", "gripper")
CAMERAS = ("base", "wrist")


def _episode(rng: np.random.Generator, length: int, image_size: int = 8) -> dict:
    return {
        "timestamps": np.arange(length) / 10.0,
        "state": rng.normal(size=(length, len(JOINTS))),
        "action": rng.normal(size=(length, len(JOINTS))),
        "frames": {c: rng.integers(0, 256, (length, image_size, image_size, 3), dtype=np.uint8) for c in CAMERAS},
    }


def _write(path, episodes: list[dict], image_format: str = "png") -> None:
    with DatasetWriter(
        path, fps=10, embodiment="toy", joint_names=JOINTS, cameras=CAMERAS, image_format=image_format
    ) as writer:
        for i, episode in enumerate(episodes):
            writer.add_episode(**episode, instruction=f"task {i}", success=i % 2 == 0)


@pytest.fixture
def episodes() -> list[dict]:
    rng = np.random.default_rng(0)
    return [_episode(rng, length) for length in (5, 3, 7, 4, 6, 2)]


def test_round_trip_keeps_every_field_and_frame(tmp_path, episodes):
    _write(tmp_path, episodes)
    dataset = EpisodeDataset(tmp_path)
    assert len(dataset) == 6 and dataset.skipped == ()
    assert dataset.fps == 10 and dataset.embodiment == "toy" and dataset.joint_names == JOINTS
    assert dataset.camera_shapes == {"base": (8, 8, 3), "wrist": (8, 8, 3)}
    assert dataset.lengths == (5, 3, 7, 4, 6, 2)
    for i, written in enumerate(episodes):
        episode = dataset.episode(i)
        assert (episode.instruction, episode.success, episode.embodiment) == (f"task {i}", i % 2 == 0, "toy")
        assert episode.joint_names == JOINTS and episode.length == len(written["timestamps"])
        np.testing.assert_array_equal(episode.timestamps, written["timestamps"])
        np.testing.assert_allclose(episode.state, written["state"], rtol=1e-6)
        np.testing.assert_allclose(episode.action, written["action"], rtol=1e-6)
        for camera in CAMERAS:
            np.testing.assert_array_equal(np.stack(episode.frames[camera][:]), written["frames"][camera])
            np.testing.assert_array_equal(dataset.frame(i, camera, -1), written["frames"][camera][-1])


def test_jpeg_frames_round_trip_approximately(tmp_path):
    smooth = np.tile(np.linspace(0, 255, 32, dtype=np.uint8)[None, :, None], (32, 1, 3))
    episode = {
        "timestamps": np.arange(2.0),
        "state": np.zeros((2, 3)),
        "action": np.zeros((2, 3)),
        "frames": {c: [smooth, smooth[::-1]] for c in CAMERAS},
    }
    _write(tmp_path, [episode], image_format="jpeg")
    decoded = EpisodeDataset(tmp_path).frame(0, "wrist", 1)
    assert decoded.shape == (32, 32, 3)
    assert np.abs(decoded.astype(int) - smooth[::-1]).mean() < 3


def test_frames_are_decoded_only_when_indexed(tmp_path, episodes, monkeypatch):
    _write(tmp_path, episodes)
    decoded = []
    original = frames_module.decode_image
    monkeypatch.setattr(frames_module, "decode_image", lambda data: decoded.append(1) or original(data))
    dataset = EpisodeDataset(tmp_path)
    episode = dataset.episode(2)
    assert len(episode.frames["base"]) == 7 and decoded == []
    episode.frames["base"][4]
    assert len(decoded) == 1


def test_split_is_by_episode_disjoint_and_deterministic(tmp_path, episodes):
    _write(tmp_path, episodes)
    dataset = EpisodeDataset(tmp_path)
    split = dataset.split(validation_fraction=0.34, seed=3)
    assert len(split.validation) == 2 and len(split.train) == 4
    assert set(split.train).isdisjoint(split.validation)
    assert set(split.train) | set(split.validation) == set(range(6))
    assert dataset.split(0.34, seed=3) == split
    assert len({dataset.split(0.34, seed=s).validation for s in range(10)}) > 1
    assert dataset.split(0.01, seed=0).validation != ()  # a positive fraction always holds out one episode
    assert dataset.split(0.0).validation == ()


def test_stats_match_numpy(tmp_path, episodes):
    _write(tmp_path, episodes)
    stats = EpisodeDataset(tmp_path).stats
    for name, field in (("state", stats.state), ("action", stats.action)):
        values = np.concatenate([e[name] for e in episodes]).astype(np.float32).astype(np.float64)
        np.testing.assert_allclose(field.q01, np.quantile(values, 0.01, axis=0), rtol=1e-6)
        np.testing.assert_allclose(field.q99, np.quantile(values, 0.99, axis=0), rtol=1e-6)
        np.testing.assert_allclose(field.mean, values.mean(axis=0), rtol=1e-6)
        np.testing.assert_allclose(field.std, values.std(axis=0), rtol=1e-6)
    assert stats.steps == 27


def test_corrupted_episodes_are_skipped_and_reported(tmp_path, episodes):
    _write(tmp_path, episodes)
    files = sorted((tmp_path / "episodes").glob("*.safetensors"))
    files[1].write_bytes(files[1].read_bytes()[:-10])  # truncated
    files[4].unlink()  # missing
    dataset = EpisodeDataset(tmp_path)
    assert len(dataset) == 4
    assert [s.file.name for s in dataset.skipped] == [files[1].name, files[4].name]
    assert "corrupted" in dataset.skipped[0].reason and "missing" in dataset.skipped[1].reason
    assert [dataset.episode(i).episode_id for i in range(4)] == [0, 2, 3, 5]
    kept = np.concatenate([episodes[i]["action"] for i in (0, 2, 3, 5)]).astype(np.float32)
    np.testing.assert_allclose(dataset.stats.action.mean, kept.mean(axis=0), rtol=1e-6)


def test_inconsistent_episode_is_skipped_with_a_reason_naming_the_field(tmp_path, episodes):
    _write(tmp_path, episodes)
    index_path = tmp_path / "dataset.json"
    index = json.loads(index_path.read_text())
    index["episodes"][2]["length"] = 99
    index_path.write_text(json.dumps(index))
    dataset = EpisodeDataset(tmp_path)
    assert len(dataset) == 5
    assert "99" in dataset.skipped[0].reason and "episode_000002" in dataset.skipped[0].reason


def test_damaged_image_bytes_raise_an_error_naming_file_camera_and_step(tmp_path, episodes):
    _write(tmp_path, episodes)
    file = tmp_path / "episodes" / "episode_000000.safetensors"
    data = bytearray(file.read_bytes())
    png_start = data.index(b"\x89PNG")
    data[png_start : png_start + 8] = b"garbage!"
    file.write_bytes(bytes(data))
    dataset = EpisodeDataset(tmp_path)
    with pytest.raises(FrameError, match=r"episode_000000.*'base' step 0"):
        dataset.frame(0, "base", 0)
    assert dataset.frame(0, "base", 1).shape == (8, 8, 3)


def test_broken_index_is_a_clear_error(tmp_path, episodes):
    _write(tmp_path, episodes)
    index_path = tmp_path / "dataset.json"
    index = json.loads(index_path.read_text())
    index["fps"] = -1
    index_path.write_text(json.dumps(index))
    with pytest.raises(DatasetError, match=r"dataset.json: fps must be a positive number"):
        EpisodeDataset(tmp_path)
    index_path.write_text("{")
    with pytest.raises(DatasetError, match="cannot parse"):
        EpisodeDataset(tmp_path)


def test_writer_rejects_inconsistent_episodes(tmp_path):
    writer = DatasetWriter(tmp_path, fps=10, embodiment="toy", joint_names=JOINTS, cameras=("base",))
    good = {"timestamps": np.arange(3.0), "state": np.zeros((3, 3)), "action": np.zeros((3, 3))}
    frames = {"base": np.zeros((3, 4, 4, 3), np.uint8)}
    with pytest.raises(DatasetError, match=r"state must be \[3, 3\]"):
        writer.add_episode(**{**good, "state": np.zeros((3, 2))}, frames=frames, instruction="", success=True)
    with pytest.raises(DatasetError, match="strictly increasing"):
        writer.add_episode(**{**good, "timestamps": np.zeros(3)}, frames=frames, instruction="", success=True)
    with pytest.raises(DatasetError, match="2 frames for 3 steps"):
        writer.add_episode(**good, frames={"base": frames["base"][:2]}, instruction="", success=True)
    with pytest.raises(DatasetError, match="cameras"):
        writer.add_episode(**good, instruction="", success=True)
    writer.add_episode(**good, frames=frames, instruction="", success=True)
    writer.close()
    with pytest.raises(DatasetError, match="already exists"):
        DatasetWriter(tmp_path, fps=10, embodiment="toy", joint_names=JOINTS)


def _toy_embodiment(**changes) -> Embodiment:
    params = Embodiment.from_yaml(CONFIG_DIR / "single_arm.yaml").to_parameters()
    params.update(
        {
            "joint_names": list(JOINTS),
            "action_groups.names": ["arm", "gripper"],
            "action_groups.sizes": [2, 1],
            "cameras.names": list(CAMERAS),
            "cameras.topics": ["/base", "/wrist"],
            "control_rate_hz": 10.0,
            "limits.position_lower": [-1.0] * 3,
            "limits.position_upper": [1.0] * 3,
            "limits.velocity": [1.0] * 3,
            "limits.tracking_error": [0.1] * 3,
        }
    )
    params.update(changes)
    return Embodiment.from_parameters(params)


def test_check_fits_names_what_differs(tmp_path, episodes):
    _write(tmp_path, episodes)
    dataset = EpisodeDataset(tmp_path)
    dataset.check_fits(_toy_embodiment())
    with pytest.raises(DatasetError, match=r"has joints \['j1', 'j2', 'gripper'\]"):
        dataset.check_fits(_toy_embodiment(joint_names=["j2", "j1", "gripper"]))
    with pytest.raises(DatasetError, match=r"no frames for cameras \['head'\]"):
        dataset.check_fits(_toy_embodiment(**{"cameras.names": ["head", "wrist"]}))
    with pytest.raises(DatasetError, match="recorded at 10 Hz; embodiment single_arm runs at 20 Hz"):
        dataset.check_fits(_toy_embodiment(control_rate_hz=20.0))
    dataset.check_fits(_toy_embodiment(control_rate_hz=20.0), rate=False)

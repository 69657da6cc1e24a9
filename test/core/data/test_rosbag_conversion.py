"""rosbag2 (mcap and sqlite3) -> episodes: as-of alignment, joint reordering, action sources, bad bags."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from faster_core.data.episodes import EpisodeDataset

pytest.importorskip("rosbags")
from rosbags.rosbag2 import StoragePlugin

from faster_core.data.bags import BagConversion, convert_bags

from synthetic_bags import EMBODIMENT, LEADER, Recording, write_bag


def _convert(tmp_path: Path, bags: list[Path], **options) -> tuple:
    config = BagConversion(embodiment=EMBODIMENT, max_age_s=0.1, **{"min_steps": 5, **options})
    report = convert_bags(bags, tmp_path / "dataset", config, image_format="png", progress=False)
    return report, EpisodeDataset(tmp_path / "dataset") if report.converted else None


def _ticks_kept(dataset: EpisodeDataset) -> np.ndarray:
    """Tick times (s since the first frame) of the kept steps; every test bag keeps tick 0.05 s first (ticks are half
    a period after the frames: the messages of one observation arrive around its frame)."""
    return dataset.episode(0).timestamps + 0.05


@pytest.mark.parametrize("storage", [StoragePlugin.MCAP, StoragePlugin.SQLITE3])
def test_streams_are_sampled_as_of_each_tick_never_from_the_future(tmp_path, storage):
    bag = write_bag(tmp_path / "bag", Recording(), storage)
    report, dataset = _convert(tmp_path, [bag])
    assert report.skipped == ()
    converted = report.converted[0]
    # 20 ticks, 50 ms after each frame (one every 100 ms); the last has no next state to be its action: dropped
    assert (converted.steps, converted.dropped_ticks, converted.action_source) == (19, 1, "future joint positions")
    episode = dataset.episode(0)
    assert episode.instruction == "put it there" and episode.success
    ticks = _ticks_kept(dataset)
    np.testing.assert_allclose(ticks, (np.arange(19) + 0.5) * 0.1)
    latest = ticks - 0.009  # joint states arrive at 20k + 1 ms: the one 11 ms after a tick is not used
    for j in range(EMBODIMENT.dof):  # joint j reads j + t; the bag lists joints in reverse order
        np.testing.assert_allclose(episode.state[:, j], j + latest, atol=1e-6)
    np.testing.assert_allclose(episode.action[:-1], episode.state[1:], atol=1e-6)
    np.testing.assert_allclose(episode.action[-1], np.arange(6) + 1.95 - 0.009, atol=1e-6)
    frame = episode.frames["front"][4]  # tick 0.45 s shows frame 4; bgr8 rows padded to step 30 become RGB
    assert frame.shape == (16, 20, 3) and tuple(frame[0, 0]) == (255, 0, 4) and tuple(frame[-1, -1]) == (255, 0, 4)


def test_frames_that_span_a_little_less_than_their_periods_keep_every_step(tmp_path):
    """A first frame 20 ms late (a loaded recorder) leaves 20 frames 1.88 s apart: still 20 ticks, not 19."""
    bag = write_bag(tmp_path / "bag", Recording(first_frame_late_ms=20))
    report, dataset = _convert(tmp_path, [bag])
    assert (report.converted[0].steps, report.converted[0].dropped_ticks) == (19, 1)  # as on time (above)
    np.testing.assert_allclose(dataset.episode(0).timestamps, np.arange(19) * 0.1, atol=1e-9)


def test_ticks_with_stale_streams_split_the_episode(tmp_path):
    bag = write_bag(tmp_path / "bag", Recording(joint_gap=(0.5, 0.9)))
    report, dataset = _convert(tmp_path, [bag], min_steps=3)
    # joint states stop after 0.481 s and resume at 0.901 s; max_age 0.1 s drops ticks 0.65-0.85, and 0.55 too
    # because its action would be the state at 0.65. Steps stay one period apart: two episodes, not one with a hole.
    assert [c.steps for c in report.converted] == [5, 10] and len(dataset) == 2
    first, second = dataset.episode(0), dataset.episode(1)
    np.testing.assert_allclose(first.timestamps, np.arange(5) * 0.1, atol=1e-9)
    np.testing.assert_allclose(second.timestamps, np.arange(10) * 0.1, atol=1e-9)
    np.testing.assert_allclose(second.state[0, 0], 0.941, atol=1e-6)  # tick 0.95 s reads the state at 0.941 s
    assert not first.success and second.success  # only the part that reaches the end can have succeeded


def test_runs_shorter_than_min_steps_are_dropped(tmp_path):
    bag = write_bag(tmp_path / "bag", Recording(joint_gap=(0.5, 0.9)))
    report, _ = _convert(tmp_path, [bag], min_steps=6)  # runs of 5 and 10 steps (above)
    assert [c.steps for c in report.converted] == [10] and report.converted[0].dropped_ticks == 20 - 10


def test_a_stop_command_ends_the_commanded_motion(tmp_path):
    bag = write_bag(tmp_path / "bag", Recording(trajectory=True, hold_at=1.42))
    report, _ = _convert(tmp_path, [bag], min_steps=3)
    # trajectories arrive every 0.5 s from 0.05 s; the one of 1.05 s is cancelled at 1.42 s and the next comes at
    # 1.55 s, so tick 1.45 has no commanded motion: ticks 0.05-1.35 and 1.55-1.95 become two episodes
    assert [c.steps for c in report.converted] == [14, 5]


def test_actions_from_a_commanded_trajectory(tmp_path):
    bag = write_bag(tmp_path / "bag", Recording(trajectory=True, compressed=True))
    report, dataset = _convert(tmp_path, [bag])
    assert report.converted[0].action_source == "/arm_controller/joint_trajectory"
    episode = dataset.episode(0)
    ticks = _ticks_kept(dataset)
    np.testing.assert_allclose(ticks, (np.arange(20) + 0.5) * 0.1)  # with commands the last tick stays
    sent = np.floor((ticks - 0.05) / 0.5)  # trajectory k arrives at 0.05 + 0.5 k s
    elapsed = ticks - (0.05 + 0.5 * sent)
    target = sent + np.clip((elapsed - 0.2) / 0.4, 0, 1)  # k at 0.2 s, k + 1 at 0.6 s, linear in between
    for j in range(EMBODIMENT.dof):
        np.testing.assert_allclose(episode.action[:, j], j + target, atol=1e-6)
    assert tuple(episode.frames["front"][1][0, 0]) == (255, 0, 1)  # CompressedImage on <topic>/compressed


def test_actions_from_a_teleop_leader(tmp_path):
    bag = write_bag(tmp_path / "bag", Recording(leader=True, trajectory=True))
    report, dataset = _convert(tmp_path, [bag], action_topic=LEADER)
    assert report.converted[0].action_source == LEADER
    episode = dataset.episode(0)
    np.testing.assert_allclose(episode.action, episode.state + 0.5, atol=1e-6)


def test_recorder_metadata_sets_instruction_and_success(tmp_path):
    custom = {"faster.instruction": json.dumps("stack the cube"), "faster.task_success": json.dumps(False)}
    _, dataset = _convert(tmp_path, [write_bag(tmp_path / "bag", Recording(custom=custom))])
    episode = dataset.episode(0)
    assert (episode.instruction, episode.success) == ("stack the cube", False)


def _truncate(bag: Path, suffix: str) -> Path:
    (storage_file,) = bag.glob(f"*.{suffix}")
    storage_file.write_bytes(storage_file.read_bytes()[: storage_file.stat().st_size // 2])
    return bag


def test_bad_bags_are_skipped_with_a_reason(tmp_path):
    bags = {
        "good": write_bag(tmp_path / "good", Recording()),
        "truncated_mcap": _truncate(write_bag(tmp_path / "truncated_mcap", Recording()), "mcap"),
        "truncated_sqlite": _truncate(
            write_bag(tmp_path / "truncated_sqlite", Recording(), StoragePlugin.SQLITE3), "db3"
        ),
        "no_camera": write_bag(tmp_path / "no_camera", Recording(camera=False)),
        "short": write_bag(tmp_path / "short", Recording(seconds=0.4)),
        "silent_camera": write_bag(tmp_path / "silent_camera", Recording(camera=False, silent_camera=True)),
        "wrong_joints": write_bag(tmp_path / "wrong_joints", Recording(joint_names=("a", "b", "c", "d", "e", "f"))),
        "other_robot": write_bag(
            tmp_path / "other_robot", Recording(custom={"faster.embodiment": json.dumps("single_arm")})
        ),
        "not_a_bag": tmp_path / "not_a_bag",
    }
    report, dataset = _convert(tmp_path, list(bags.values()))
    assert [c.bag.name for c in report.converted] == ["good"] and len(dataset) == 1
    reasons = {s.bag.name: s.reason for s in report.skipped}
    assert set(reasons) == set(bags) - {"good"}
    assert "missing camera topic /camera/front/image_raw" in reasons["no_camera"]
    assert "too short: 3 aligned steps" in reasons["short"]
    assert "no messages at all for ['front']" in reasons["silent_camera"]
    assert "never appear on /joint_states" in reasons["wrong_joints"]
    assert "recorded for embodiment" in reasons["other_robot"]
    assert all(reasons[name] for name in ("truncated_mcap", "truncated_sqlite", "not_a_bag"))
    assert "skipped" in report.summary()


def test_a_configured_action_topic_must_have_messages(tmp_path):
    report, dataset = _convert(tmp_path, [write_bag(tmp_path / "bag", Recording())], action_topic=LEADER)
    assert dataset is None and f"action topic {LEADER} has no messages" in report.skipped[0].reason

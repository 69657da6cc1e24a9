"""Demonstrations from peer simulators' own scripted experts, written in the episode format.

Each simulator lives in its own module and is imported only when asked for, so the data package works without
any simulator installed.
"""

from __future__ import annotations

import os

# Robots and CI machines have no display: render off-screen unless the user chose a backend. This must run before
# anything imports mujoco, which picks its GL backend on import.
os.environ.setdefault("MUJOCO_GL", "egl")

from collections.abc import Sequence
from pathlib import Path

from faster_core.data.sim.common import GenerationReport

SIMULATORS = ("metaworld", "so101", "aloha")  # aloha runs in its own environment (make aloha)


def generate(
    env_name: str,
    episodes: int,
    cameras: Sequence[str],
    out_dir: str | Path,
    seed: int = 0,
    *,
    tasks: Sequence[str] | None = None,
    image_size: int = 128,
    image_format: str = "jpeg",
    max_attempts: int | None = None,
    expert_noise: float = 0.0,
    expert_shut_probability: float = 0.0,
    progress: bool = True,
) -> GenerationReport:
    """Record ``episodes`` successful episodes (per task for Meta-World) into ``out_dir``; prints the summary.

    ``tasks`` selects Meta-World tasks (default: MT10); SO-101 has the single pick-place task. ``expert_noise``
    (metres) and ``expert_shut_probability`` disturb the SO-101 arm while its expert demonstrates (DART), so episodes
    show recoveries; the other experts take none.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be positive, got {episodes}")
    if (expert_noise or expert_shut_probability) and env_name != "so101":
        raise ValueError(f"expert disturbances are implemented for the so101 expert only, not {env_name!r}")
    options = {"image_size": image_size, "image_format": image_format, "max_attempts": max_attempts}
    if env_name == "metaworld":
        from faster_core.data.sim import metaworld

        if tasks:
            options["tasks"] = tuple(tasks)
        report = metaworld.generate(episodes, cameras, out_dir, seed, progress=progress, **options)
    elif env_name == "so101":
        from faster_core.data.sim import so101

        if tasks and tuple(tasks) != (so101.TASK_NAME,):
            raise ValueError(f"SO-101 has one task, {so101.TASK_NAME!r}; got {list(tasks)}")
        disturbance = so101.Disturbance(expert_noise, expert_shut_probability)
        report = so101.generate(episodes, cameras, out_dir, seed, disturbance=disturbance, progress=progress, **options)
    elif env_name == "aloha":
        from faster_core.data.sim import aloha

        report = aloha.generate(episodes, cameras, out_dir, seed, tasks=tasks, progress=progress, **options)
    else:
        raise ValueError(f"unknown simulator {env_name!r}; choose one of {list(SIMULATORS)}")
    print(report.summary())
    return report

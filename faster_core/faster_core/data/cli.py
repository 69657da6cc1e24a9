"""``faster data``: generate demonstrations, inspect datasets, convert rosbags.

``register(subparsers)`` adds the group to the ``faster`` command; heavy imports (simulators, matplotlib,
rosbags) happen inside the command that needs them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

IMAGE_FORMATS = ("jpeg", "png")


def _sim(args: argparse.Namespace) -> int:
    from faster_core.data.sim import generate
    from faster_core.data.sim.aloha import AlohaUnavailableError

    try:
        report = generate(
            args.env,
            args.episodes,
            args.cameras,
            args.out,
            args.seed,
            tasks=args.tasks,
            image_size=args.image_size,
            image_format=args.image_format,
            max_attempts=args.max_attempts,
            expert_noise=args.expert_noise,
            expert_shut_probability=args.expert_shut_probability,
            progress=not args.quiet,
        )
    except AlohaUnavailableError as error:
        print(f"faster: error: {error}")
        return 2
    return 0 if all(task.recorded >= args.episodes for task in report.tasks) else 1


def _info(args: argparse.Namespace) -> int:
    from faster_core.data.episodes import EpisodeDataset
    from faster_core.data.inspection import describe, plot_trajectories

    dataset = EpisodeDataset(args.dataset)
    print(describe(dataset))
    plot = plot_trajectories(dataset, args.plot or dataset.path / "trajectories.png", args.plot_episodes)
    print(f"plot          {plot}")
    return 0


def _from_bags(args: argparse.Namespace) -> int:
    from faster_core.data.bags import BagConversion, convert_bags
    from faster_core.embodiment import Embodiment

    config = BagConversion(
        embodiment=Embodiment.load(args.embodiment),
        rate_hz=args.rate,
        reference_camera=args.reference_camera,
        max_age_s=args.max_age,
        sync_window=args.sync_window,
        action_topic=args.action_topic,
        instruction=args.instruction,
        min_steps=args.min_steps,
    )
    report = convert_bags(args.bags, args.out, config, image_format=args.image_format, progress=not args.quiet)
    print(report.summary())
    return 0 if report.converted else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="demonstration datasets: generate, inspect, convert")
    commands = parser.add_subparsers(dest="data_command", required=True)

    sim = commands.add_parser(
        "sim",
        help="record successful scripted-expert episodes from a simulator",
        description="Record only successful episodes of a simulator's own scripted expert, in joint space.",
    )
    sim.add_argument(
        "--env", required=True, choices=("metaworld", "so101", "aloha"), help="simulator (aloha: make aloha)"
    )
    sim.add_argument("--episodes", type=int, required=True, help="successful episodes to record (per task)")
    sim.add_argument(
        "--tasks",
        nargs="+",
        help="Meta-World tasks, e.g. pick-place-v3 (default MT10); ALOHA: transfer-cube, insertion",
    )
    sim.add_argument(
        "--cameras", nargs="*", default=[], help="MJCF camera names to render (e.g. corner, front); default none"
    )
    sim.add_argument("--image-size", type=int, default=128, help="square frame side in pixels (default 128)")
    sim.add_argument("--image-format", choices=IMAGE_FORMATS, default="jpeg", help="frame compression")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--max-attempts", type=int, help="give up a task after this many tries (default 3N+5)")
    sim.add_argument(
        "--expert-noise",
        type=float,
        default=0.0,
        help="so101: std (m) of a disturbance on the arm's full-speed moves, actions kept clean (DART; e.g. 0.01)",
    )
    sim.add_argument(
        "--expert-shut-probability",
        type=float,
        default=0.0,
        help="so101: chance per descent step that the jaw shuts early for a few steps (DART; e.g. 0.1)",
    )
    sim.add_argument("--quiet", action="store_true", help="no progress bar")
    sim.add_argument("--out", type=Path, required=True, help="new dataset directory")
    sim.set_defaults(func=_sim)

    info = commands.add_parser("info", help="summarise a dataset and plot a few trajectories")
    info.add_argument("dataset", type=Path, help="dataset directory (holding dataset.json)")
    info.add_argument("--plot", type=Path, help="PNG to write (default DATASET/trajectories.png)")
    info.add_argument("--plot-episodes", type=int, default=3, help="episodes to draw (default 3)")
    info.set_defaults(func=_info)

    bags = commands.add_parser(
        "from-bags",
        help="convert rosbag2 recordings (mcap or sqlite3), one episode per bag",
        description="Align each bag's streams as-of control-rate ticks over a reference camera (latest message at "
        "or before each tick) and write one episode per bag; bags that cannot be converted are skipped with a reason.",
    )
    bags.add_argument("bags", nargs="+", type=Path, help="rosbag2 directories")
    bags.add_argument("--embodiment", required=True, help="installed embodiment name or its YAML file")
    bags.add_argument("--out", type=Path, required=True, help="new dataset directory")
    bags.add_argument("--rate", type=float, help="tick rate in Hz (default: the embodiment's control rate)")
    bags.add_argument("--reference-camera", help="camera whose span and first frame set the ticks (default: first)")
    bags.add_argument("--max-age", type=float, default=0.2, help="drop a tick whose data is older, s (default 0.2)")
    bags.add_argument(
        "--sync-window",
        type=float,
        default=0.5,
        help="ticks sit this fraction of a period after the reference frames, so that each holds the messages of "
        "one observation (default 0.5)",
    )
    bags.add_argument(
        "--action-topic",
        help="JointState (teleop leader) or JointTrajectory topic of the actions (default: the embodiment's "
        "trajectory topic if the bag has messages on it, else the next tick's joint positions)",
    )
    bags.add_argument("--instruction", help="instruction for bags that carry none")
    bags.add_argument("--min-steps", type=int, default=10, help="skip bags with fewer aligned steps (default 10)")
    bags.add_argument("--image-format", choices=IMAGE_FORMATS, default="jpeg", help="frame compression")
    bags.add_argument("--quiet", action="store_true", help="no progress bar")
    bags.set_defaults(func=_from_bags)

"""The ``faster`` command: one entry point whose subcommand groups live beside the code they drive.

Each group module exposes ``register(subparsers)`` and sets ``func`` on its parsers; this file only lists them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from faster_core import __version__
from faster_core.data import cli as data_cli
from faster_core.embodiment import Embodiment, EmbodimentError
from faster_core.policy import cli as vla_cli
from faster_core.tokenizer import cli as tokenizer_cli


def _show_embodiment(args: argparse.Namespace) -> int:
    spec = Embodiment.load(args.embodiment)
    print(f"embodiment      {spec.name}  ({spec.dof} DoF, {spec.control_rate_hz:g} Hz, chunk {spec.chunk_length})")
    print("action groups   " + ", ".join(f"{g.name}[{g.start}:{g.stop}]" for g in spec.action_groups))
    print("cameras         " + ", ".join(f"{c.name} <- {c.topic}" for c in spec.cameras))
    layout = spec.tokenizer
    print(
        f"tokenizer       h={layout.patch_length} C_h={layout.time_tokens} C_a={layout.action_tokens} "
        f"N_c={layout.codebooks} -> {layout.tokens_per_chunk} tokens, BAR block {spec.block_size}"
    )
    print(f"{'joint':<16}{'lower':>9}{'upper':>9}{'max vel':>9}{'max lead':>10}")
    for i, joint in enumerate(spec.joint_names):
        lim = spec.limits
        print(
            f"{joint:<16}{lim.position_lower[i]:>9.3f}{lim.position_upper[i]:>9.3f}{lim.velocity[i]:>9.3f}"
            f"{lim.tracking_error[i]:>10.3f}"
        )
    return 0


def _register_embodiment(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("embodiment", help="inspect embodiment specs")
    commands = parser.add_subparsers(dest="embodiment_command", required=True)
    show = commands.add_parser("show", help="print an embodiment's joints, groups, cameras and tokenizer layout")
    show.add_argument("embodiment", help="installed name (single_arm, bimanual, whole_body) or a YAML path")
    show.set_defaults(func=_show_embodiment)


GROUPS = (_register_embodiment, data_cli.register, tokenizer_cli.register, vla_cli.register)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="faster", description="FASTer on ROS 2: tokenizers, policies and data.")
    parser.add_argument("--version", action="version", version=f"faster {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in GROUPS:
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (EmbodimentError, ValueError, FileNotFoundError) as error:
        print(f"faster: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""Latency of token-wise AR (B = 1) against BAR on the same model and inputs (paper Table 2 and Table 7).

One policy per backbone preset decodes the same random observation both ways, runs interleaved so load changes
hit both alike; the table gives expert forward passes and the median ms of each stage. Without ``--tokenizer``
the FASTerVQ is an untrained one built from the embodiment's layout: its codes mean nothing, but its size and the
token count N, which are all latency depends on, are those of a fitted one.

    HF_HUB_OFFLINE=1 PYTHONPATH=faster_core python bench/latency.py [--presets tiny-paligemma paligemma-shaped]

Single intra-op thread by default: on a small shared CPU, OpenMP threads waiting on each other make small
decode steps tens of times slower and the numbers meaningless.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

from faster_core.embodiment import Embodiment
from faster_core.policy.cli import random_fastervq
from faster_core.policy.configuration import BackboneConfig, FASTerVLAConfig
from faster_core.policy.modeling import FASTerVLA
from faster_core.tokenizer.factory import load_tokenizer

CONFIG_DIR = Path(__file__).resolve().parents[1] / "faster_bringup" / "config"
STAGES = ("preprocess_ms", "prefix_ms", "decode_ms", "detokenize_ms", "total_ms")


def _embodiment(name: str) -> Embodiment:
    bundled = CONFIG_DIR / f"{name}.yaml"
    return Embodiment.from_yaml(bundled) if bundled.is_file() else Embodiment.load(name)


def _measure(policy: FASTerVLA, blocks: tuple[int, ...], runs: int, seed: int) -> dict[int, dict[str, float]]:
    embodiment = policy.embodiment
    rng = np.random.default_rng(seed)
    side = embodiment.image_size
    observation = {
        "images": {c: rng.integers(0, 256, (side, side, 3), dtype=np.uint8) for c in embodiment.camera_names},
        "state": rng.uniform(embodiment.limits.position_lower, embodiment.limits.position_upper),
        "instruction": "pick up the red block and put it in the bowl",
    }
    generator = torch.Generator(device=policy.device).manual_seed(seed)
    timings: dict[int, list] = {block: [] for block in blocks}
    for run in range(runs + 1):  # run 0 warms up
        for block in blocks:
            out = policy.predict(**observation, block_size=block, generator=generator)
            if run:
                timings[block].append(out)
    return {
        block: {
            "passes": outs[0].forward_passes,
            **{stage: statistics.median(getattr(o.timing, stage) for o in outs) for stage in STAGES},
        }
        for block, outs in timings.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["tiny-paligemma", "paligemma-shaped"])
    parser.add_argument("--embodiment", default="single_arm", help="bundled name or YAML path")
    parser.add_argument("--tokenizer", help="a fitted tokenizer directory (default: untrained FASTerVQ)")
    parser.add_argument("--block-size", type=int, default=0, help="BAR block (default: the embodiment's)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per mode, after one warm-up")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    embodiment = _embodiment(args.embodiment)
    if args.tokenizer:
        tokenizer = load_tokenizer(args.tokenizer)
        source = f"{tokenizer.kind} from {args.tokenizer}"
    else:
        tokenizer = random_fastervq(embodiment, seed=args.seed)
        source = "untrained FASTerVQ (random init, 'cpu' size; no fitted tokenizer given)"
    block = args.block_size or embodiment.block_size
    print(
        f"FASTerVLA decode latency: {embodiment.name} (H {embodiment.chunk_length}, D {embodiment.dof}, "
        f"{len(embodiment.cameras)} cameras at {embodiment.image_size} px), {tokenizer.tokens_per_chunk} action "
        f"tokens; tokenizer: {source}; CPU, {args.threads} thread(s); median of {args.runs} runs, ms"
    )
    header = f"{'backbone':<18}{'decoding':<11}{'passes':>7}{'preproc':>9}{'prefix':>9}{'decode':>9}{'ms/pass':>9}"
    print(header + f"{'detok':>8}{'total':>9}")
    for preset in args.presets:
        torch.manual_seed(args.seed)
        config = FASTerVLAConfig(backbone=BackboneConfig(source=preset), block_size=block)
        policy = FASTerVLA(embodiment=embodiment, tokenizer=tokenizer, config=config).eval()
        result = _measure(policy, (1, block), args.runs, args.seed)
        for mode, name in ((1, "AR (B=1)"), (block, f"BAR (B={block})")):
            row = result[mode]
            print(
                f"{preset:<18}{name:<11}{row['passes']:>7}{row['preprocess_ms']:>9.1f}{row['prefix_ms']:>9.1f}"
                f"{row['decode_ms']:>9.1f}{row['decode_ms'] / row['passes']:>9.2f}{row['detokenize_ms']:>8.1f}"
                f"{row['total_ms']:>9.1f}"
            )
        ar, bar = result[1], result[block]
        fewer, faster = ar["passes"] / bar["passes"], ar["decode_ms"] / bar["decode_ms"]
        met = "met" if fewer >= 3 and faster >= 2.5 else "NOT met"
        print(
            f"{'':<18}BAR vs AR: {fewer:.1f}x fewer passes, {faster:.1f}x lower decode latency, "
            f"{ar['total_ms'] / bar['total_ms']:.2f}x lower total (target >= 3x and >= 2.5x: {met})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``faster tokenizer fit|eval``: fit or evaluate an action tokenizer on the action chunks of an episode dataset.

Episodes split into training and validation by episode (``--validation``, ``--seed``), so validation chunks come
from demonstrations the tokenizer never saw. Chunks are H future actions from every step, in robot units.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from faster_core.data import EpisodeDataset, action_chunks
from faster_core.data.chunks import ACTION_MODES
from faster_core.embodiment import Embodiment


def load_split_chunks(
    data: str | os.PathLike,
    embodiment: Embodiment,
    *,
    validation: float = 0.1,
    seed: int = 0,
    action_mode: str = "absolute",
) -> dict[str, np.ndarray]:
    """Training and validation chunks [N, H, D] of a dataset whose joints are the embodiment's."""
    dataset = EpisodeDataset(data)
    dataset.check_fits(embodiment, cameras=False, rate=False)  # chunks of H actions, whatever their period
    split = dataset.split(validation, seed)
    return {
        name: action_chunks(dataset, episodes, embodiment.chunk_length, action_mode=action_mode)
        for name, episodes in (("train", split.train), ("val", split.validation))
    }


def _embodiment(args: argparse.Namespace) -> Embodiment:
    return Embodiment.load(args.embodiment or EpisodeDataset(args.data).embodiment)


def _fit(args: argparse.Namespace) -> int:
    embodiment = _embodiment(args)
    mode = args.action_mode
    chunks = load_split_chunks(args.data, embodiment, validation=args.validation, seed=args.seed, action_mode=mode)
    if args.kind == "fastervq":
        from faster_core.tokenizer.presets import fastervq_config
        from faster_core.tokenizer.train import fit_tokenizer

        result = fit_tokenizer(
            chunks["train"],
            chunks["val"] if len(chunks["val"]) else None,
            fastervq_config(embodiment, size=args.size, action_mode=mode),
            args.out,
            steps=args.steps,
            batch_size=args.batch_size,
            lr=args.lr,
            val_every=args.val_every,
            bf16=args.bf16,
            seed=args.seed,
        )
        tokenizer = result.tokenizer
    elif args.kind == "fast":
        from faster_core.tokenizer.fast import FASTTokenizer

        tokenizer = FASTTokenizer.fit(chunks["train"], scale=args.scale, vocab_size=args.vocab_size, action_mode=mode)
        tokenizer.save_pretrained(args.out)
    else:
        from faster_core.tokenizer.bins import BinTokenizer

        tokenizer = BinTokenizer.fit(chunks["train"], action_mode=mode)
        tokenizer.save_pretrained(args.out)
    if os.environ.get("RANK", "0") == "0":  # one line under torchrun
        print(
            f"saved {args.kind} tokenizer to {args.out} ({tokenizer.tokens_per_chunk} tokens per chunk, "
            f"vocabulary {tokenizer.vocab_size}, {mode} actions)"
        )
    return 0


def _eval(args: argparse.Namespace) -> int:
    from faster_core.tokenizer.bins import BinTokenizer
    from faster_core.tokenizer.factory import load_tokenizer
    from faster_core.tokenizer.fast import FASTTokenizer
    from faster_core.tokenizer.metrics import evaluate_tokenizer

    saved = None if args.tokenizer in ("fast", "bins") else load_tokenizer(args.tokenizer)
    mode = args.action_mode or (saved.config.action_mode if saved else "absolute")
    if saved and mode != saved.config.action_mode:
        raise ValueError(f"{args.tokenizer} was fitted on {saved.config.action_mode} actions, not {mode}")
    chunks = load_split_chunks(
        args.data, _embodiment(args), validation=args.validation, seed=args.seed, action_mode=mode
    )
    if args.tokenizer == "fast":  # baselines are fitted here, on the same training split
        tokenizer = FASTTokenizer.fit(chunks["train"], scale=args.scale, action_mode=mode)
    elif args.tokenizer == "bins":
        tokenizer = BinTokenizer.fit(chunks["train"], action_mode=mode)
    else:
        tokenizer = saved
    if not len(chunks[args.split]):
        raise ValueError(f"{args.data} has no {args.split} chunks (too few episodes for the split?)")
    result = evaluate_tokenizer(tokenizer, chunks[args.split])
    print(f"{tokenizer.kind} on {result['chunks']} {args.split} chunks ({mode} actions)")
    print(f"  l1 {result['l1']:.5f}   VRR " + "  ".join(f"@{s:g} {v:.3f}" for s, v in result["vrr"].items()))
    print(
        f"  tokens/chunk {result['tokens_mean']:.1f} (max {result['tokens_max']})   usage {result['usage_pct']:.1f}%"
        f"   entropy {result['entropy_norm']:.3f}   F_max {result['f_max_pct']:.2f}%   N_active {result['n_active']}"
    )
    print(
        f"  encode {result['encode_ms']:.3f} ms/chunk ({result['encode_ms_batch1']:.3f} at batch 1)   decode "
        f"{result['decode_ms']:.3f} ms/chunk ({result['decode_ms_batch1']:.3f} at batch 1)"
    )
    for depth, row in result.get("per_depth", {}).items():
        print(
            f"  depth {depth}: {row['tokens']} tokens  l1 {row['l1']:.5f}  VRR "
            + "  ".join(f"@{s:g} {v:.3f}" for s, v in row["vrr"].items())
            + f"  level usage {row['level_usage_pct']:.1f}%"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    if args.plot:
        from faster_core.tokenizer.plots import plot_reconstructions

        plot_reconstructions(tokenizer, chunks[args.split], args.plot, joint_names=_embodiment(args).joint_names)
        print(f"  plot {args.plot}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("tokenizer", help="fit and evaluate action tokenizers (FASTerVQ, FAST, bins)")
    commands = parser.add_subparsers(dest="tokenizer_command", required=True)

    fit = commands.add_parser("fit", help="fit a tokenizer on action chunks; FASTerVQ also runs under torchrun")
    _data_arguments(fit)
    fit.add_argument("--out", required=True, help="directory to save the tokenizer to")
    fit.add_argument("--kind", choices=("fastervq", "fast", "bins"), default="fastervq")
    fit.add_argument("--size", choices=("cpu", "paper"), default="cpu", help="FASTerVQ model size preset")
    fit.add_argument("--steps", type=int, default=10_000)
    fit.add_argument("--batch-size", type=int, default=128, help="global batch, split over torchrun ranks")
    fit.add_argument("--lr", type=float, default=1e-4)
    fit.add_argument("--val-every", type=int, default=500)
    fit.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None, help="bf16 autocast")
    fit.add_argument("--scale", type=float, default=10.0, help="FAST: DCT rounding scale")
    fit.add_argument("--vocab-size", type=int, default=1024, help="FAST: BPE vocabulary")
    fit.add_argument(
        "--action-mode", choices=ACTION_MODES, default="absolute", help="delta: chunks minus the state at their start"
    )
    fit.set_defaults(func=_fit)

    evaluate = commands.add_parser("eval", help="reconstruction (l1, VRR), vocabulary use and speed on chunks")
    evaluate.add_argument(
        "--tokenizer",
        required=True,
        help="saved tokenizer directory or name, or fast / bins (fitted on the train split)",
    )
    _data_arguments(evaluate)
    evaluate.add_argument("--split", choices=("val", "train"), default="val", help="chunks to evaluate on")
    evaluate.add_argument("--scale", type=float, default=10.0, help="--tokenizer fast: DCT rounding scale")
    evaluate.add_argument(
        "--action-mode", choices=ACTION_MODES, help="chunks' mode (default: the saved tokenizer's, else absolute)"
    )
    evaluate.add_argument("--json", help="also write the metrics to this file")
    evaluate.add_argument("--plot", help="PNG of reconstructions against ground truth for a few chunks")
    evaluate.set_defaults(func=_eval)


def _data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="episode dataset directory")
    parser.add_argument("--embodiment", help="installed name or YAML path (default: the dataset's embodiment)")
    parser.add_argument("--validation", type=float, default=0.1, help="fraction of episodes held out (default 0.1)")
    parser.add_argument("--seed", type=int, default=0, help="split and training seed")

"""``faster vla train|predict``: train FASTerVLA on an episode dataset, or time one prediction on random inputs.

``register(subparsers)`` adds the group to the ``faster`` command; torch and transformers are imported inside
the commands. ``train`` also runs under ``torchrun`` (DDP); rank 0 writes the output directory.
"""

from __future__ import annotations

import argparse
import os

from faster_core.embodiment import Embodiment


def random_fastervq(embodiment: Embodiment, *, seed: int = 0):
    """An untrained FASTerVQ ("cpu" size) with the embodiment's layout, normalising by the joint limits: for smoke
    tests and latency when no fitted tokenizer exists. Its codes mean nothing."""
    import torch

    from faster_core.tokenizer.fastervq import FASTerVQ
    from faster_core.tokenizer.presets import fastervq_config

    limits = embodiment.limits
    config = fastervq_config(
        embodiment, q01=tuple(limits.position_lower.tolist()), q99=tuple(limits.position_upper.tolist())
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return FASTerVQ(config).eval()


def _policy_config(args: argparse.Namespace):
    from faster_core.policy.configuration import BackboneConfig, ExpertConfig, FASTerVLAConfig

    backbone = BackboneConfig(source=args.backbone, image_size=args.image_size, dtype=args.dtype)
    expert = ExpertConfig(width=args.expert_width)
    return FASTerVLAConfig(backbone=backbone, expert=expert, block_size=args.block_size)


def _train(args: argparse.Namespace) -> int:
    import torch

    from faster_core.data.episodes import EpisodeDataset
    from faster_core.policy.augmentation import ImageAugmentation
    from faster_core.policy.episodes import EpisodeSamples
    from faster_core.policy.modeling import FASTerVLA
    from faster_core.policy.training import train_policy
    from faster_core.tokenizer.factory import load_tokenizer

    dataset = EpisodeDataset(args.data)
    embodiment = Embodiment.load(args.embodiment or dataset.embodiment)
    split = dataset.split(args.validation_fraction, seed=args.seed)
    train = EpisodeSamples(dataset, embodiment, split.train)
    validation = None
    if split.validation:
        held_out = EpisodeSamples(dataset, embodiment, split.validation)
        step = max(1, len(held_out) // args.validation_samples)
        validation = [held_out[i] for i in range(0, len(held_out), step)][: args.validation_samples]
    torch.manual_seed(args.seed)
    if args.init:
        policy = FASTerVLA.from_pretrained(args.init)
    elif args.tokenizer:
        policy = FASTerVLA(
            embodiment=embodiment,
            tokenizer=load_tokenizer(args.tokenizer),
            config=_policy_config(args),
            state_normalizer=train.state_normalizer(),
        )
    else:
        raise ValueError("vla train needs --tokenizer DIR (or --init DIR to continue from a saved policy)")
    result = train_policy(
        policy,
        train,
        steps=args.steps,
        validation=validation,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        warmup_steps=args.warmup,
        freeze_backbone=args.freeze_backbone,
        freeze_vision=args.freeze_vision,
        augmentation=ImageAugmentation() if args.augment_images else None,
        state_noise=args.state_noise,
        bf16=args.bf16,
        validate_every=args.validate_every,
        seed=args.seed,
        progress=not args.quiet,
        out_dir=args.out,
    )
    if os.environ.get("RANK", "0") == "0":  # one line under torchrun
        print(
            f"trained {args.steps} steps on {len(train)} samples: final loss {result.losses[-1]:.4f}; "
            f"saved to {args.out}"
        )
    return 0


def _predict(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from faster_core.policy.modeling import FASTerVLA
    from faster_core.tokenizer.factory import load_tokenizer

    torch.manual_seed(args.seed)
    if args.policy:
        policy = FASTerVLA.from_pretrained(args.policy)
    else:
        embodiment = Embodiment.load(args.embodiment)
        tokenizer = load_tokenizer(args.tokenizer) if args.tokenizer else random_fastervq(embodiment, seed=args.seed)
        policy = FASTerVLA(embodiment=embodiment, tokenizer=tokenizer, config=_policy_config(args))
    embodiment = policy.embodiment
    rng = np.random.default_rng(args.seed)
    side = embodiment.image_size
    images = {c: rng.integers(0, 256, (side, side, 3), dtype=np.uint8) for c in embodiment.camera_names}
    state = rng.uniform(embodiment.limits.position_lower, embodiment.limits.position_upper)
    generator = torch.Generator(device=policy.device).manual_seed(args.seed)
    print(f"{policy.backbone.family} backbone, {embodiment.name}, {policy.tokenizer.kind} tokenizer, random inputs")
    print(f"{'run':>4}{'passes':>8}{'preprocess':>12}{'prefix':>10}{'decode':>10}{'detokenize':>12}{'total':>10}  ms")
    for run in range(args.runs):
        out = policy.predict(
            images, state, args.instruction, block_size=args.block_size, greedy=args.greedy, generator=generator
        )
        t = out.timing
        print(
            f"{run:>4}{out.forward_passes:>8}{t.preprocess_ms:>12.1f}{t.prefix_ms:>10.1f}{t.decode_ms:>10.1f}"
            f"{t.detokenize_ms:>12.1f}{t.total_ms:>10.1f}"
        )
    print(f"actions {list(out.actions.shape)}, first step: {np.array2string(out.actions[0], precision=3)}")
    return 0


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backbone", default="tiny-paligemma", help="preset (random init) or local checkpoint dir")
    parser.add_argument("--image-size", type=int, default=0, help="vision input side (default: the tower's)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    parser.add_argument("--block-size", type=int, default=0, help="BAR block B (default: the embodiment's)")
    parser.add_argument(
        "--expert-width", type=int, default=0, help="action expert hidden size (default: half the backbone's)"
    )
    parser.add_argument("--seed", type=int, default=0)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("vla", help="the FASTerVLA policy: train, predict")
    commands = parser.add_subparsers(dest="vla_command", required=True)

    train = commands.add_parser(
        "train",
        help="train on an episode dataset (also under torchrun)",
        description="Paper stages: first --freeze-backbone (pre-train the action expert), then --init the result "
        "with --freeze-vision for joint fine-tuning.",
    )
    train.add_argument("--data", required=True, help="episode dataset directory (dataset.json)")
    train.add_argument("--tokenizer", help="fitted action tokenizer directory or name")
    train.add_argument("--out", required=True, help="directory to save the policy to")
    train.add_argument("--embodiment", help="installed name or YAML (default: the dataset's embodiment)")
    train.add_argument(
        "--init", help="continue from a saved policy (ignores --backbone, --tokenizer and --expert-width)"
    )
    train.add_argument("--steps", type=int, default=1000)
    train.add_argument("--batch-size", type=int, default=8, help="global, split over torchrun ranks")
    train.add_argument("--lr", type=float, default=2.5e-5)
    train.add_argument("--warmup", type=int, default=1000, help="warmup steps (capped at steps / 10)")
    train.add_argument("--freeze-backbone", action="store_true", help="stage 1: train only the action expert")
    train.add_argument("--freeze-vision", action="store_true", help="stage 2: keep the vision tower frozen")
    train.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None, help="bf16 autocast")
    train.add_argument(
        "--augment-images", action="store_true", help="random crop, rotation and colour jitter (openpi's recipe)"
    )
    train.add_argument(
        "--state-noise",
        type=float,
        default=0.0,
        help="std of Gaussian noise on the prompt's joint state, in normalised units (q01..q99 span 2); makes the "
        "policy look at the images instead of reading its direction from the arm's motion",
    )
    train.add_argument("--validation-fraction", type=float, default=0.1, help="episodes held out")
    train.add_argument("--validation-samples", type=int, default=64, help="held-out steps evaluated")
    train.add_argument("--validate-every", type=int, default=0, help="steps between validations (0: at the end)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_model_options(train)
    train.set_defaults(func=_train)

    predict = commands.add_parser("predict", help="smoke test: predict on random inputs and print the timing")
    predict.add_argument("--policy", help="saved policy directory (default: build one from the options below)")
    predict.add_argument("--embodiment", default="single_arm", help="installed name or YAML (without --policy)")
    predict.add_argument("--tokenizer", help="fitted tokenizer (default: an untrained FASTerVQ, without --policy)")
    predict.add_argument("--instruction", default="pick up the red block")
    predict.add_argument("--runs", type=int, default=3)
    predict.add_argument("--greedy", action="store_true", help="argmax instead of top-k sampling")
    _add_model_options(predict)
    predict.set_defaults(func=_predict)

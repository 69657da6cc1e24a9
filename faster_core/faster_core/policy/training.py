"""Train FASTerVLA (paper A.2): AdamW lr 2.5e-5, weight decay 1e-10, cosine decay after a linear warmup, bf16
autocast where the device supports it; on one process or under ``torchrun`` (DDP, gloo on CPU, NCCL on GPU).

The paper's two stages are two calls: first ``freeze_backbone=True`` (pre-train the action expert inside the
frozen VLM), then joint fine-tuning with partial freezing (``freeze_vision=True``) from the saved result.
Samples are anything with images per camera, state, instruction and an action chunk in robot units: a map-style
dataset (``__len__``/``__getitem__``, e.g. ``EpisodeSamples``) or a re-iterable of ``Sample``s or dicts.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from faster_core.distributed import training_ranks
from faster_core.policy.augmentation import ImageAugmentation
from faster_core.policy.bar import IGNORE
from faster_core.policy.modeling import ActionDecodeError, FASTerVLA, Generation
from faster_core.policy.processing import Sample
from faster_core.tokenizer.normalize import normalize
from faster_core.tokenizer.train import cosine_with_warmup

LOG_FILE = "training_log.json"


@dataclass(frozen=True)
class ValidationMetrics:
    step: int
    loss: float  # teacher-forced cross-entropy
    token_accuracy: float  # teacher-forced argmax (within the level due) == target
    action_l1: float  # greedy decode vs target, mean |error| in the tokenizer's normalised [-1, 1] units
    decode_failures: int  # chunks whose tokens did not decode (variable-length tokenizers only)


@dataclass
class TrainResult:
    losses: list[float] = field(default_factory=list)  # rank-local training loss per step
    validation: list[ValidationMetrics] = field(default_factory=list)


def train_policy(
    policy: FASTerVLA,
    samples: Any,
    *,
    steps: int,
    validation: Sequence[Any] | None = None,
    batch_size: int = 8,  # global: split evenly over DDP ranks
    learning_rate: float = 2.5e-5,
    weight_decay: float = 1e-10,
    betas: tuple[float, float] = (0.9, 0.95),
    warmup_steps: int = 1000,  # capped at steps // 10 for short runs
    grad_clip: float = 1.0,
    freeze_backbone: bool = False,  # stage 1: only the action expert learns
    freeze_vision: bool = False,  # stage 2: partial freezing of the vision tower
    augmentation: ImageAugmentation | None = None,  # random crop / rotation / colour per training image
    state_noise: float = 0.0,  # std of Gaussian noise on the prompts' normalised joint states (q01..q99 -> [-1, 1])
    bf16: bool | None = None,  # autocast to bfloat16; default: on CUDA with bf16 support, off on CPU
    validate_every: int = 0,  # 0: validate once, at the end
    seed: int = 0,
    progress: bool = True,
    out_dir: str | os.PathLike | None = None,  # rank 0 saves the policy and training_log.json here
) -> TrainResult:
    with training_ranks(
        batch_size=batch_size, device=None if torch.cuda.is_available() else policy.device, bf16=bf16
    ) as ranks:
        rank, world, device, bf16 = ranks.rank, ranks.world, ranks.device, ranks.bf16
        policy.to(device)
        if freeze_backbone:
            policy.backbone.requires_grad_(False)
        elif freeze_vision:
            policy.backbone.vision_tower.requires_grad_(False)
        parameters = [p for p in policy.parameters() if p.requires_grad]
        backbone_learns = any(p.requires_grad for p in policy.backbone.parameters())
        # A trainable backbone has parameters the loss never reaches (LM head, last layer's MLP, final norm).
        trainer = (
            DistributedDataParallel(policy, find_unused_parameters=backbone_learns) if ranks.distributed else policy
        )
        optimizer = torch.optim.AdamW(
            [
                {"params": [p for p in parameters if p.ndim >= 2], "weight_decay": weight_decay},
                {"params": [p for p in parameters if p.ndim < 2], "weight_decay": 0.0},
            ],
            lr=learning_rate,
            betas=betas,
        )
        warmup = max(1, min(warmup_steps, steps // 10))
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: cosine_with_warmup(step, warmup=warmup, total=steps)
        )
        torch.manual_seed(seed + rank)  # spacing augmentation differs per rank, as the data does
        augmenter = torch.Generator().manual_seed(seed + rank)
        state_noiser = np.random.default_rng(seed + rank)
        batches = _batches(samples, batch_size // world, rank=rank, world=world, seed=seed)
        result = TrainResult()
        bar = tqdm(range(steps), disable=not progress or rank != 0, desc="train FASTerVLA", dynamic_ncols=True)
        for step in bar:
            policy.train()
            batch = policy.processor(
                next(batches), with_actions=True, state_noise=state_noise, generator=state_noiser
            ).to(device)
            if augmentation is not None:
                processor = policy.processor
                batch.pixels = augmentation(
                    batch.pixels,
                    mean=processor.mean,
                    std=processor.std,
                    camera_names=policy.embodiment.camera_names,
                    generator=augmenter,
                )
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
                output = trainer(batch)
            optimizer.zero_grad(set_to_none=True)
            output.loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, grad_clip)
            optimizer.step()
            schedule.step()
            result.losses.append(output.loss.item())
            bar.set_postfix(loss=f"{result.losses[-1]:.4f}", acc=f"{output.token_accuracy.item():.3f}")
            last = step + 1 == steps
            if rank == 0 and validation and (last or (validate_every and (step + 1) % validate_every == 0)):
                result.validation.append(evaluate_policy(policy, validation, step=step + 1, batch_size=batch_size))
                bar.write(_describe(result.validation[-1]))
        policy.eval()
        if rank == 0 and out_dir is not None:
            policy.save_pretrained(out_dir)
            log = {"losses": result.losses, "validation": [asdict(m) for m in result.validation]}
            (Path(out_dir) / LOG_FILE).write_text(json.dumps(log, indent=1) + "\n")
        ranks.barrier()
        return result


@torch.no_grad()
def evaluate_policy(
    policy: FASTerVLA, samples: Sequence[Any], *, step: int = 0, batch_size: int = 8
) -> ValidationMetrics:
    """Teacher-forced loss and token accuracy, and greedy-decoded action L1 in normalised units."""
    was_training = policy.training
    policy.eval()
    config = policy.tokenizer.config
    q01, q99 = np.asarray(config.q01), np.asarray(config.q99)
    losses, correct, counted, errors, failures = [], 0, 0, [], 0
    for start in range(0, len(samples), batch_size):
        chunk = [samples[i] for i in range(start, min(start + batch_size, len(samples)))]
        batch = policy.processor(chunk, with_actions=True).to(policy.device)
        output = policy(batch)
        valid = output.labels != IGNORE
        losses.append(output.loss.item() * int(valid.sum()))
        correct += int((output.logits.argmax(-1) == output.labels)[valid].sum())
        counted += int(valid.sum())
        generation = policy.decode(policy.encode_prefix(batch), greedy=True)
        target = batch.actions.cpu().numpy()
        for row in range(len(batch)):
            single = Generation(tokens=[generation.tokens[row]], complete=[generation.complete[row]], forward_passes=0)
            try:
                decoded = policy.detokenize(single)[0]
            except ActionDecodeError:
                failures += 1
                continue
            errors.append(np.abs(normalize(decoded, q01, q99) - normalize(target[row], q01, q99)).mean())
    policy.train(was_training)
    return ValidationMetrics(
        step=step,
        loss=sum(losses) / max(1, counted),
        token_accuracy=correct / max(1, counted),
        action_l1=float(np.mean(errors)) if errors else float("nan"),
        decode_failures=failures,
    )


def _describe(metrics: ValidationMetrics) -> str:
    failures = f", {metrics.decode_failures} decode failures" if metrics.decode_failures else ""
    return (
        f"step {metrics.step}: val loss {metrics.loss:.4f}, token accuracy {metrics.token_accuracy:.3f}, "
        f"action l1 {metrics.action_l1:.4f}{failures}"
    )


def _batches(samples: Any, size: int, *, rank: int, world: int, seed: int) -> Iterator[list[Sample]]:
    """Endless batches of this rank's share: random draws for a map-style dataset, in order for an iterable."""
    if hasattr(samples, "__len__") and hasattr(samples, "__getitem__"):
        indices = np.arange(rank, len(samples), world)
        if not len(indices):
            raise ValueError(f"rank {rank} has no samples (dataset of {len(samples)} over {world} ranks)")
        generator = np.random.default_rng(seed + rank)
        while True:
            yield [samples[int(i)] for i in generator.choice(indices, size)]
    while True:  # epochs over a re-iterable
        shard = itertools.islice(_reiterate(samples), rank, None, world)
        count = 0
        while len(batch := list(itertools.islice(shard, size))) == size:
            count += 1
            yield batch
        if not count:
            raise ValueError(f"the training samples hold fewer than {size * world} samples (one global batch)")


def _reiterate(samples: Iterable[Any]) -> Iterator[Any]:
    iterator = iter(samples)
    if iterator is samples:
        raise ValueError("training samples must be re-iterable (a list or Dataset), not a one-shot iterator")
    return iterator

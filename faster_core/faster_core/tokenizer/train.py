"""Fit a FASTerVQ tokenizer (paper A.2 recipe) on action chunks, on one process or under ``torchrun`` (DDP).

AdamW (lr 1e-4, weight decay 0.1, betas 0.9/0.95), cosine decay after a linear warmup, gradient clipping at 1.0,
bf16 autocast where the device supports it. Under DDP gradients are averaged by DDP and the EMA codebook
statistics by the quantiser's all-reduce; DDP's own buffer broadcast is switched off so the codebooks stay
identical because of that all-reduce, not because rank 0 overwrites them every step.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from faster_core.distributed import training_ranks
from faster_core.tokenizer.fastervq import FASTerVQ, FASTerVQConfig
from faster_core.tokenizer.interface import check_actions
from faster_core.tokenizer.normalize import quantile_stats

LOG_FILE = "training_log.json"
# DDP must not overwrite the codebooks with rank 0's in every forward (newer torch renamed the switch).
_NO_BUFFER_SYNC = (
    {"forward_sync_buffers": False}
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
    else {"broadcast_buffers": False}
)


@dataclass
class FitResult:
    tokenizer: FASTerVQ
    history: list[dict[str, Any]] = field(default_factory=list)  # training losses and validation l1 per log step


def cosine_with_warmup(step: int, *, warmup: int, total: int) -> float:
    """Learning-rate factor: linear warmup to 1, then cosine decay to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1 + math.cos(math.pi * progress))


def fit_tokenizer(
    train_chunks: np.ndarray,
    val_chunks: np.ndarray | None,
    config: FASTerVQConfig,
    out_dir: str | os.PathLike | None,
    *,
    steps: int = 10_000,
    batch_size: int = 128,  # global: split evenly over DDP ranks
    lr: float = 1e-4,
    weight_decay: float = 0.1,
    betas: tuple[float, float] = (0.9, 0.95),
    warmup_steps: int | None = None,  # default: min(1000, steps // 10)
    grad_clip: float = 1.0,
    bf16: bool | None = None,  # autocast to bfloat16; default: on CUDA with bf16 support, off on CPU
    val_every: int = 500,
    log_every: int = 50,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> FitResult:
    """Train on chunks [N, H, D] in robot units; q01/q99 come from ``train_chunks`` unless the config has them.

    Saves with ``save_pretrained`` (and the history as training_log.json) to ``out_dir`` on rank 0. Validation
    l1 is in robot units through encode/decode, i.e. with the quantisation a policy will see.
    """
    train_chunks, _ = check_actions(train_chunks, chunk_length=config.chunk_length, action_dim=config.action_dim)
    if val_chunks is not None:
        val_chunks, _ = check_actions(val_chunks, chunk_length=config.chunk_length, action_dim=config.action_dim)
    if config.q01 is None:
        q01, q99 = quantile_stats(train_chunks)
        config = dataclasses.replace(config, q01=q01, q99=q99)

    with training_ranks(batch_size=batch_size, device=device, bf16=bf16) as ranks:
        rank, world, device, bf16 = ranks.rank, ranks.world, ranks.device, ranks.bf16
        torch.manual_seed(seed)  # identical initial weights and codebooks on every rank
        model = FASTerVQ(config).to(device)
        trainer = DistributedDataParallel(model, **_NO_BUFFER_SYNC) if ranks.distributed else model
        # Weight decay on matrices only: not on norms, biases, embeddings, nor the DCT skip path, which it would
        # pull away from the orthonormal basis the autoencoder is built around.
        decayed = {
            n for n, p in model.named_parameters() if p.ndim >= 2 and not n.endswith("_embed") and ".skip." not in n
        }
        decay = [p for n, p in model.named_parameters() if n in decayed]
        no_decay = [p for n, p in model.named_parameters() if n not in decayed]
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=lr,
            betas=betas,
        )
        warmup = warmup_steps if warmup_steps is not None else min(1000, max(1, steps // 10))
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: cosine_with_warmup(step, warmup=warmup, total=steps)
        )
        shard = torch.as_tensor(np.asarray(train_chunks)[rank::world], dtype=torch.float32)
        generator = torch.Generator().manual_seed(seed + 1 + rank)
        history: list[dict[str, Any]] = []
        bar = tqdm(range(steps), disable=not progress or rank != 0, desc="fit FASTerVQ", dynamic_ncols=True)
        for step in bar:
            model.train()
            batch = shard[torch.randint(len(shard), (batch_size // world,), generator=generator)].to(device)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
                output = trainer(batch)
            optimizer.zero_grad(set_to_none=True)
            output.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
            schedule.step()
            last = step + 1 == steps
            if rank == 0 and (step % log_every == 0 or last or (val_every and step % val_every == 0)):
                terms = output.terms
                entry = {
                    "step": step,
                    "loss": terms.total.item(),
                    "l1": terms.l1.item(),
                    "dct_l1": terms.dct_l1.item(),
                    "commit": terms.commit.item(),
                    "lr": schedule.get_last_lr()[0],
                }
                if val_chunks is not None and (last or (val_every and step % val_every == 0)):
                    entry["val_l1"] = validation_l1(model, val_chunks)
                history.append(entry)
                bar.set_postfix({k: f"{v:.4g}" for k, v in entry.items() if k in ("loss", "l1", "val_l1")})
        model.eval()
        if rank == 0 and out_dir is not None:
            model.save_pretrained(out_dir)
            (Path(out_dir) / LOG_FILE).write_text(json.dumps(history, indent=1) + "\n")
        ranks.barrier()
        return FitResult(model, history)


@torch.no_grad()
def validation_l1(model: FASTerVQ, chunks: np.ndarray, *, batch_size: int = 1024) -> float:
    """Mean l1 in robot units of encode -> decode over chunks [N, H, D]."""
    total = 0.0
    for i in range(0, len(chunks), batch_size):
        batch = torch.as_tensor(np.asarray(chunks[i : i + batch_size]), dtype=torch.float32, device=model.q01.device)
        total += float((model.decode(model.encode(batch)) - batch).abs().sum())
    return total / (len(chunks) * model.config.chunk_length * model.config.action_dim)

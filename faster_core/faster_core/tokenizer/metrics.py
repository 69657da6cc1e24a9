"""Tokenizer quality in the paper's terms (§4.2, Tables 8 and 10), measured in robot units.

VRR (Eq. 4) counts actions, i.e. steps a_i in R^D, whose reconstruction error ||a_recon - a_gt||_1 is below sigma;
mean l1 alone over-weights motor noise that does not change what the robot does. Vocabulary statistics show
whether the code space is used evenly: usage (share of ids ever emitted), normalised entropy H(p) / log(V),
F_max (frequency of the most common id) and N_active (ids more frequent than a threshold, 1e-2 in Table 8).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from faster_core.tokenizer.interface import ActionTokenizer

SIGMAS = (1e-3, 1e-2, 5e-2, 1e-1)


def mean_l1(recon: np.ndarray, target: np.ndarray) -> float:
    """Mean absolute error per value."""
    return float(np.mean(np.abs(np.asarray(recon, np.float64) - np.asarray(target, np.float64))))


def vrr(recon: np.ndarray, target: np.ndarray, sigmas: Sequence[float] = SIGMAS) -> dict[float, float]:
    """Valid Reconstruction Rate (Eq. 4): share of actions (last axis = D) with l1 error below each sigma."""
    error = np.abs(np.asarray(recon, np.float64) - np.asarray(target, np.float64)).sum(axis=-1)
    return {float(sigma): float(np.mean(error < sigma)) for sigma in sigmas}


def token_stats(
    tokens: Sequence[Sequence[int]], vocab_size: int, *, active_threshold: float = 1e-2
) -> dict[str, float]:
    """Usage %, normalised entropy, F_max %, N_active and tokens per chunk (mean, max) of token sequences."""
    lengths = np.array([len(t) for t in tokens])
    flat = np.concatenate([np.asarray(t, dtype=np.int64) for t in tokens]) if len(tokens) else np.zeros(0, np.int64)
    counts = np.bincount(flat, minlength=vocab_size)[:vocab_size]
    p = counts / max(counts.sum(), 1)
    nonzero = p[p > 0]
    return {
        "usage_pct": 100.0 * float(np.mean(counts > 0)),
        "entropy_norm": float(-(nonzero * np.log(nonzero)).sum() / np.log(vocab_size)) if vocab_size > 1 else 0.0,
        "f_max_pct": 100.0 * float(p.max(initial=0.0)),
        "n_active": int(np.sum(p > active_threshold)),
        "tokens_mean": float(lengths.mean()) if lengths.size else 0.0,
        "tokens_max": int(lengths.max(initial=0)),
    }


def evaluate_tokenizer(
    tokenizer: ActionTokenizer,
    chunks: np.ndarray,
    *,
    sigmas: Sequence[float] = SIGMAS,
    batch_size: int = 256,
    timing_chunks: int = 32,
) -> dict[str, Any]:
    """Reconstruction, vocabulary and speed of ``tokenizer`` on chunks [N, H, D] in robot units.

    Times are per chunk, both batched (``batch_size``) and one chunk at a time (first ``timing_chunks``). For a
    fixed-length tokenizer with several levels (FASTerVQ), ``per_depth`` reports the reconstruction from the first
    levels only.
    """
    chunks = np.asarray(chunks, dtype=np.float32)
    if not len(chunks):
        raise ValueError("no chunks to evaluate on")
    for warmup in (chunks[:batch_size], chunks[0]):  # first calls per shape build kernels: keep them out of timings
        tokenizer.detokenize(tokenizer.tokenize(warmup))
    tokens: list[list[int]] = []
    start = time.perf_counter()
    for i in range(0, len(chunks), batch_size):
        tokens += tokenizer.tokenize(chunks[i : i + batch_size])
    encode_s = time.perf_counter() - start
    start = time.perf_counter()
    recon = np.concatenate(
        [tokenizer.detokenize(tokens[i : i + batch_size]) for i in range(0, len(tokens), batch_size)]
    )
    decode_s = time.perf_counter() - start
    single = chunks[:timing_chunks]
    start = time.perf_counter()
    single_tokens = [tokenizer.tokenize(chunk)[0] for chunk in single]
    encode1_s = time.perf_counter() - start
    start = time.perf_counter()
    for sequence in single_tokens:
        tokenizer.detokenize([sequence])
    decode1_s = time.perf_counter() - start
    result: dict[str, Any] = {
        "chunks": len(chunks),
        "vocab_size": tokenizer.vocab_size,
        "l1": mean_l1(recon, chunks),
        "vrr": vrr(recon, chunks, sigmas),
        **token_stats(tokens, tokenizer.vocab_size),
        "encode_ms": 1e3 * encode_s / max(len(chunks), 1),
        "decode_ms": 1e3 * decode_s / max(len(chunks), 1),
        "encode_ms_batch1": 1e3 * encode1_s / max(len(single), 1),
        "decode_ms_batch1": 1e3 * decode1_s / max(len(single), 1),
    }
    levels = getattr(getattr(tokenizer, "config", None), "codebooks", 1)
    if tokenizer.fixed_length and levels > 1:
        per_level = tokenizer.tokens_per_chunk // levels
        result["per_depth"] = {}
        for depth in range(1, levels + 1):
            prefix = [t[: depth * per_level] for t in tokens]
            recon_d = np.concatenate(
                [tokenizer.detokenize(prefix[i : i + batch_size]) for i in range(0, len(prefix), batch_size)]
            )
            level_tokens = [t[(depth - 1) * per_level : depth * per_level] for t in tokens]
            result["per_depth"][depth] = {
                "tokens": depth * per_level,
                "l1": mean_l1(recon_d, chunks),
                "vrr": vrr(recon_d, chunks, sigmas),
                "level_usage_pct": token_stats(level_tokens, tokenizer.vocab_size)["usage_pct"],
            }
    return result

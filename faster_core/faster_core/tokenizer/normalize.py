"""Per-dimension q01/q99 normalisation to [-1, 1] (as in FAST/openpi), shared by every tokenizer here.

Tokenizers take actions in robot units; the quantile bounds ignore the rare extreme values that min/max would
let stretch the range, and values beyond them are clipped. Works on numpy arrays and torch tensors alike.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

EPS = 1e-6  # keeps constant dimensions (q01 == q99, e.g. an idle base) finite
Array = TypeVar("Array", np.ndarray, torch.Tensor)


def quantile_stats(chunks: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """q01, q99 per action dimension over all steps of chunks [N, H, D]."""
    flat = np.asarray(chunks, dtype=np.float64).reshape(-1, np.shape(chunks)[-1])
    q01, q99 = np.quantile(flat, [0.01, 0.99], axis=0)
    return tuple(float(v) for v in q01), tuple(float(v) for v in q99)


def normalize(actions: Array, q01: Array, q99: Array) -> Array:
    """Robot units -> [-1, 1], clipped."""
    return ((actions - q01) / (q99 - q01 + EPS) * 2 - 1).clip(-1, 1)


def unnormalize(actions: Array, q01: Array, q99: Array) -> Array:
    """[-1, 1] -> robot units, the inverse of ``normalize`` inside the bounds; decoded values never leave [q01, q99].

    The final clip removes the EPS that ``normalize`` adds to the range: without it +1 would land EPS beyond q99."""
    return ((actions.clip(-1, 1) + 1) / 2 * (q99 - q01 + EPS) + q01).clip(q01, q99)

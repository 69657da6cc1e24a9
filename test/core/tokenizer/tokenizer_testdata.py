"""Synthetic action chunks for the tokenizer tests (a plain module: conftest.py names are not unique)."""

from __future__ import annotations

import numpy as np


def smooth_chunks(count: int, length: int, dim: int, *, seed: int = 0) -> np.ndarray:
    """[count, length, dim] float32: random low-frequency sinusoids with per-dimension offsets and ranges."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, length)[None, :, None]
    waves = sum(
        rng.uniform(0.2, 1.0, (count, 1, dim))
        * np.sin(2 * np.pi * (rng.uniform(0, 1.5, (count, 1, dim)) * t + rng.uniform(0, 1, (count, 1, dim))))
        for _ in range(2)
    )
    scale = rng.uniform(0.05, 2.0, dim)
    offset = rng.uniform(-1.0, 1.0, dim)
    return (waves * scale + offset).astype(np.float32)

"""FASTerVQ configs per embodiment: the layout from the Embodiment (paper Table 4), the size from a preset.

Table 4 layouts, as the bundled embodiment files carry them: single arm chunk 20, C_h 1; bimanual chunk 32, C_h 2;
whole body chunk 32, C_h 2; C_a = DoF and 3 codebooks everywhere. "paper" sizes follow A.2 (K 4096, d 128, about
8M parameters for a single arm); "cpu" sizes train in minutes on a laptop (K 1024, which beat 256 in our
calibration, and about 250k parameters).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from faster_core.embodiment import Embodiment
from faster_core.tokenizer.fastervq import FASTerVQConfig


@dataclass(frozen=True)
class ModelSize:
    codebook_size: int  # K
    latent_dim: int  # d
    width: int
    depth: int  # transformer blocks per TAAE stage
    heads: int


SIZES = {
    "cpu": ModelSize(codebook_size=1024, latent_dim=8, width=64, depth=1, heads=4),
    "paper": ModelSize(codebook_size=4096, latent_dim=128, width=256, depth=2, heads=8),
}


def fastervq_config(embodiment: Embodiment, *, size: str = "cpu", **overrides: Any) -> FASTerVQConfig:
    """The embodiment's chunk, groups and tokenizer layout with a preset size; keywords override any field."""
    if size not in SIZES:
        raise ValueError(f"unknown FASTerVQ size {size!r} (known: {sorted(SIZES)})")
    layout = embodiment.tokenizer
    config = FASTerVQConfig(
        embodiment=embodiment.name,
        chunk_length=embodiment.chunk_length,
        group_names=tuple(g.name for g in embodiment.action_groups),
        group_sizes=tuple(g.size for g in embodiment.action_groups),
        patch_length=layout.patch_length,
        time_tokens=layout.time_tokens,
        action_tokens=layout.action_tokens,
        codebooks=layout.codebooks,
        **dataclasses.asdict(SIZES[size]),
    )
    return dataclasses.replace(config, **overrides)

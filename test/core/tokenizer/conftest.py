"""Fixtures for the tokenizer tests."""

from __future__ import annotations

import pytest

from faster_core.tokenizer.fastervq import FASTerVQConfig


@pytest.fixture
def tiny_config() -> FASTerVQConfig:
    """Single-arm-like layout (H 8, groups 3+1, C_h 1, C_a = D) at a size that runs in milliseconds."""
    return FASTerVQConfig(
        chunk_length=8,
        group_sizes=(3, 1),
        group_names=("arm", "gripper"),
        patch_length=2,
        time_tokens=1,
        codebooks=3,
        codebook_size=32,
        latent_dim=4,
        width=16,
        heads=2,
    )

"""Builders shared by the policy tests: tiny random-init policies, observations and training samples.

Not a conftest: a second ``conftest`` module would shadow ``test/conftest.py`` for tests that import from it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from faster_core.embodiment import Embodiment
from faster_core.policy.configuration import BackboneConfig, FASTerVLAConfig
from faster_core.policy.modeling import FASTerVLA
from faster_core.policy.processing import Sample
from faster_core.tokenizer.fastervq import FASTerVQ
from faster_core.tokenizer.presets import fastervq_config

CONFIG_DIR = Path(__file__).resolve().parents[3] / "faster_bringup" / "config"
EMBODIMENT = Embodiment.from_yaml(CONFIG_DIR / "single_arm.yaml")  # H 20, D 8, 2 cameras, N = 3 x 1 x 8, B 7
IMAGE_SIZES = {"tiny-paligemma": 32, "tiny-idefics3": 32, "tiny-qwen2vl": 56}  # 4, 1 and 4 tokens per camera
CODEBOOK_SIZE = 16


@pytest.fixture
def one_thread():
    """Tiny models on a shared 2-core machine: one intra-op thread avoids OpenMP contention (10-50x here)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_tokenizer(embodiment: Embodiment = EMBODIMENT) -> FASTerVQ:
    limits = embodiment.limits
    config = fastervq_config(
        embodiment,
        codebook_size=CODEBOOK_SIZE,
        latent_dim=4,
        width=16,
        heads=2,
        q01=tuple(limits.position_lower.tolist()),
        q99=tuple(limits.position_upper.tolist()),
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return FASTerVQ(config).eval()


def make_policy(
    source: str = "tiny-paligemma",
    *,
    tokenizer=None,
    seed: int = 0,
    attn_implementation: str = "sdpa",
    **config,
) -> FASTerVLA:
    torch.manual_seed(seed)
    backbone = BackboneConfig(source=source, image_size=IMAGE_SIZES[source], attn_implementation=attn_implementation)
    return FASTerVLA(
        embodiment=EMBODIMENT,
        tokenizer=tokenizer or tiny_tokenizer(),
        config=FASTerVLAConfig(backbone=backbone, **config),
    ).eval()


def observation(seed: int = 0, *, instruction: str = "pick up the red block") -> dict:
    """Images of an odd size (the processor resizes), a state inside the joint limits."""
    rng = np.random.default_rng(seed)
    limits = EMBODIMENT.limits
    return {
        "images": {c: rng.integers(0, 256, (40, 48, 3), dtype=np.uint8) for c in EMBODIMENT.camera_names},
        "state": rng.uniform(limits.position_lower, limits.position_upper),
        "instruction": instruction,
    }


def samples(count: int, seed: int = 0) -> list[Sample]:
    """Observations with smooth action chunks inside the joint limits; instructions of different lengths."""
    rng = np.random.default_rng(seed)
    limits = EMBODIMENT.limits
    centre, half = (limits.position_lower + limits.position_upper) / 2, (limits.position_upper - limits.position_lower)
    time = np.linspace(0, 1, EMBODIMENT.chunk_length)[:, None]
    result = []
    for i in range(count):
        phase = rng.uniform(0, 2 * np.pi, EMBODIMENT.dof)
        actions = centre + 0.3 * half * np.sin(2 * np.pi * time + phase)
        obs = observation(seed * 1000 + i, instruction="pick up the red block" + " now" * i)
        result.append(Sample(**obs, actions=actions.astype(np.float32)))
    return result

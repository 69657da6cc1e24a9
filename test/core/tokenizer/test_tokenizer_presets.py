from pathlib import Path

import pytest

from faster_core.embodiment import Embodiment
from faster_core.tokenizer.fastervq import FASTerVQ
from faster_core.tokenizer.presets import fastervq_config

CONFIGS = Path(__file__).resolve().parents[3] / "faster_bringup" / "config"


@pytest.mark.parametrize(
    ("name", "chunk", "time_tokens", "action_tokens"),
    [("single_arm", 20, 1, 8), ("bimanual", 32, 2, 14), ("whole_body", 32, 2, 21)],
)
def test_bundled_embodiments_give_table4_layouts(name, chunk, time_tokens, action_tokens):
    embodiment = Embodiment.load(CONFIGS / f"{name}.yaml")
    config = fastervq_config(embodiment)
    assert (config.chunk_length, config.time_tokens, config.action_tokens, config.codebooks) == (
        chunk,
        time_tokens,
        action_tokens,
        3,
    )
    assert config.group_sizes == tuple(g.size for g in embodiment.action_groups)
    assert (config.codebook_size, config.embodiment) == (1024, name)
    assert 150_000 < sum(p.numel() for p in FASTerVQ(config).parameters()) < 400_000


def test_paper_size_and_overrides():
    embodiment = Embodiment.load(CONFIGS / "single_arm.yaml")
    config = fastervq_config(embodiment, size="paper", codebooks=2)
    assert (config.codebook_size, config.latent_dim, config.codebooks) == (4096, 128, 2)
    with pytest.raises(ValueError, match="unknown FASTerVQ size 'huge'"):
        fastervq_config(embodiment, size="huge")

"""Frozen configs of the FASTerVLA policy: which backbone, how big the action expert is, how BAR decodes.

Everything the embodiment or the tokenizer already says (action dimensions, chunk length, cameras, codebook
layout, block size) is read from them, not repeated here; a value of 0 below means "derive it".
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

DTYPES = ("float32", "bfloat16", "float16")


@dataclass(frozen=True, kw_only=True)
class BackboneConfig:
    source: str = "tiny-paligemma"  # a preset name (random init) or a local checkpoint directory
    image_size: int = 0  # square side fed to the vision tower; 0: the tower's native size (224 for Qwen2-VL)
    dtype: str = "float32"  # "bfloat16" on accelerators
    attn_implementation: str = "sdpa"  # the prefix needs an arbitrary 4D mask: sdpa or eager

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise ValueError(f"backbone dtype must be one of {DTYPES}, got {self.dtype!r}")
        if self.attn_implementation not in ("sdpa", "eager"):
            raise ValueError(f"attn_implementation must be 'sdpa' or 'eager', got {self.attn_implementation!r}")
        if self.image_size < 0:
            raise ValueError(f"image_size must be >= 0, got {self.image_size}")


@dataclass(frozen=True, kw_only=True)
class ExpertConfig:
    """The action expert copies the backbone's layer count, heads and head dim (so it can read the backbone's
    keys and values at every layer) but is narrower, as pi0's expert is."""

    width: int = 0  # hidden size; 0: half the backbone's (pi0: 1024 next to Gemma's 2048)
    intermediate_size: int = 0  # MLP size; 0: 4 x width
    rms_norm_eps: float = 1e-6
    initializer_range: float = 0.02

    def __post_init__(self):
        if self.width < 0 or self.intermediate_size < 0:
            raise ValueError("expert width and intermediate_size must be >= 0 (0 derives them)")


@dataclass(frozen=True, kw_only=True)
class FASTerVLAConfig:
    backbone: BackboneConfig = BackboneConfig()
    expert: ExpertConfig = ExpertConfig()
    block_size: int = 0  # B; 0: the embodiment's policy.block_size (1 for variable-length tokenizers such as FAST)
    state_bins: int = 256  # proprioception is discretised into this many bins and written as text
    spacing_jitter: int = 2  # k: training positions step by 1 + U{0..k}
    inference_spacing: int = 2  # fixed position step between action tokens at inference (and in eval mode)
    top_k: int = 50
    temperature: float = 0.8
    greedy: bool = False  # argmax decoding instead of top-k sampling
    max_action_tokens: int = 0  # variable-length tokenizers: give up after this many; 0: 2 x the longest fitted

    def __post_init__(self):
        if self.block_size < 0:
            raise ValueError(f"block_size must be >= 0 (0: the embodiment's), got {self.block_size}")
        if self.state_bins < 2:
            raise ValueError(f"state_bins must be >= 2, got {self.state_bins}")
        if self.spacing_jitter < 0 or self.inference_spacing < 1:
            raise ValueError("spacing_jitter must be >= 0 and inference_spacing >= 1")
        if self.top_k < 1 or not self.temperature > 0:
            raise ValueError(f"top_k must be >= 1 and temperature > 0, got {self.top_k}, {self.temperature}")
        if self.max_action_tokens < 0:
            raise ValueError(f"max_action_tokens must be >= 0, got {self.max_action_tokens}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FASTerVLAConfig:
        data = dict(data)
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"unknown policy config keys {unknown}")
        try:
            data["backbone"] = BackboneConfig(**data.get("backbone", {}))
            data["expert"] = ExpertConfig(**data.get("expert", {}))
            return cls(**data)
        except TypeError as error:
            raise ValueError(f"invalid policy config: {error}") from error

"""What every action tokenizer offers the policy, and the checks and files they share.

All tokenizers take actions in robot units ([H, D] or [B, H, D]) and normalise internally with q01/q99, so a
policy can swap FASTerVQ, FAST and binning without touching its data path. ``tokenize`` gives each chunk as a flat
list of ids in [0, vocab_size), the form a language model consumes; ``encode`` gives the tokenizer's own form.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

CONFIG_FILE = "tokenizer_config.json"


@runtime_checkable
class ActionTokenizer(Protocol):
    kind: str  # the ``type`` written to tokenizer_config.json

    @property
    def vocab_size(self) -> int: ...

    @property
    def tokens_per_chunk(self) -> int:
        """Tokens per chunk: exact for fixed-length tokenizers, the longest seen in fitting for FAST."""
        ...

    @property
    def fixed_length(self) -> bool: ...

    def encode(self, actions: Any) -> Any: ...

    def decode(self, codes: Any) -> Any: ...

    def tokenize(self, actions: Any) -> list[list[int]]: ...

    def detokenize(self, tokens: Sequence[Sequence[int]]) -> np.ndarray: ...

    def save_pretrained(self, directory: str | os.PathLike) -> None: ...

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> ActionTokenizer: ...


def check_actions(actions: Any, *, chunk_length: int, action_dim: int) -> tuple[Any, bool]:
    """Validate [H, D] or [B, H, D] floating, finite actions; returns them batched and whether they were.

    A torch tensor stays a tensor; anything else becomes a numpy array.
    """
    if not isinstance(actions, torch.Tensor):
        actions = np.asarray(actions)
        floating = np.issubdtype(actions.dtype, np.floating)
    else:
        floating = actions.is_floating_point()
    if not floating:
        raise ValueError(f"actions must be floating point (robot units), got dtype {actions.dtype}")
    expected = f"[{chunk_length}, {action_dim}] (H, D) or [B, {chunk_length}, {action_dim}]"
    if actions.ndim not in (2, 3) or tuple(actions.shape[-2:]) != (chunk_length, action_dim):
        raise ValueError(f"actions must have shape {expected}, got {list(actions.shape)}")
    batched = actions.ndim == 3
    actions = actions if batched else actions[None]
    finite = torch.isfinite(actions) if isinstance(actions, torch.Tensor) else np.isfinite(actions)
    if not finite.all():
        bad = np.argwhere(~np.asarray(finite.cpu() if isinstance(finite, torch.Tensor) else finite))
        chunk, step, dim = (int(v) for v in bad[0])
        raise ValueError(
            f"actions contain {len(bad)} NaN/inf value(s), first at chunk {chunk}, step {step}, dimension {dim}"
        )
    return actions, batched


def write_config(directory: str | os.PathLike, kind: str, config: dict[str, Any]) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CONFIG_FILE).write_text(json.dumps({"type": kind, **config}, indent=2) + "\n")
    return directory


def tokenizer_type(directory: str | os.PathLike) -> str:
    """The ``type`` a saved tokenizer directory declares."""
    return _load(directory)["type"]


def read_config(directory: str | os.PathLike, kind: str) -> dict[str, Any]:
    """The saved config of a ``kind`` tokenizer, without its ``type``."""
    config = _load(directory)
    found = config.pop("type")
    if found != kind:
        raise ValueError(f"{Path(directory) / CONFIG_FILE} holds a {found!r} tokenizer, not {kind!r}")
    return config


def _load(directory: str | os.PathLike) -> dict[str, Any]:
    path = Path(directory) / CONFIG_FILE
    try:
        config = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read tokenizer config {path}: {error}") from error
    if not isinstance(config, dict) or not isinstance(config.get("type"), str):
        raise ValueError(f"{path} has no tokenizer 'type'")
    return config


def config_from_dict(cls: type, data: dict[str, Any], source: str) -> Any:
    """Build a frozen config dataclass from JSON, naming unknown keys; JSON lists become tuples."""
    fields = cls.__dataclass_fields__
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"{source}: unknown config keys {unknown}")
    try:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
    except TypeError as error:
        raise ValueError(f"{source}: {error}") from error

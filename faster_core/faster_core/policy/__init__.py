"""FASTerVLA: a VLM backbone, a lightweight action expert and block-wise autoregressive decoding (paper §3.2).

Names load on first use, so ``faster`` (which imports ``faster_core.policy.cli``) starts without transformers.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BackboneConfig": "configuration",
    "ExpertConfig": "configuration",
    "FASTerVLAConfig": "configuration",
    "ActionDecodeError": "modeling",
    "FASTerVLA": "modeling",
    "PolicyOutput": "modeling",
    "Timing": "modeling",
    "Sample": "processing",
    "StateNormalizer": "processing",
    "TrainResult": "training",
    "ValidationMetrics": "training",
    "evaluate_policy": "training",
    "train_policy": "training",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)

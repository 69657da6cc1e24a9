"""Action tokenizers: FASTerVQ (the paper's), and FAST and uniform bins as baselines, behind one interface."""

from faster_core.tokenizer.bins import BinConfig, BinTokenizer
from faster_core.tokenizer.factory import load_tokenizer
from faster_core.tokenizer.fast import FASTConfig, FASTTokenizer
from faster_core.tokenizer.fastervq import FASTerVQ, FASTerVQConfig
from faster_core.tokenizer.interface import ActionTokenizer

__all__ = [
    "ActionTokenizer",
    "BinConfig",
    "BinTokenizer",
    "FASTConfig",
    "FASTTokenizer",
    "FASTerVQ",
    "FASTerVQConfig",
    "load_tokenizer",
]

"""``load_tokenizer``: any saved action tokenizer by directory or by name, typed by its tokenizer_config.json."""

from __future__ import annotations

import os
from pathlib import Path

from faster_core.tokenizer.bins import BinTokenizer
from faster_core.tokenizer.fast import FASTTokenizer
from faster_core.tokenizer.fastervq import FASTerVQ
from faster_core.tokenizer.interface import CONFIG_FILE, ActionTokenizer, tokenizer_type

TOKENIZERS: dict[str, type] = {cls.kind: cls for cls in (FASTerVQ, FASTTokenizer, BinTokenizer)}
SEARCH_PATH = "FASTER_TOKENIZER_PATH"  # os.pathsep-separated folders holding saved tokenizers by name


def resolve_tokenizer(path_or_name: str | os.PathLike) -> Path:
    """A directory as given, else ``<folder>/<name>`` for the first folder on $FASTER_TOKENIZER_PATH that has it."""
    candidate = Path(path_or_name)
    if (candidate / CONFIG_FILE).is_file():
        return candidate
    folders = [Path(p) for p in os.environ.get(SEARCH_PATH, "").split(os.pathsep) if p]
    for folder in folders:
        if (folder / str(path_or_name) / CONFIG_FILE).is_file():
            return folder / str(path_or_name)
    raise ValueError(
        f"no tokenizer at {str(path_or_name)!r}: not a directory with {CONFIG_FILE}, and not a name under "
        f"${SEARCH_PATH} ({[str(f) for f in folders] or 'unset'})"
    )


def load_tokenizer(path_or_name: str | os.PathLike) -> ActionTokenizer:
    directory = resolve_tokenizer(path_or_name)
    kind = tokenizer_type(directory)
    if kind not in TOKENIZERS:
        raise ValueError(f"{directory}: unknown tokenizer type {kind!r} (known: {sorted(TOKENIZERS)})")
    return TOKENIZERS[kind].from_pretrained(directory)

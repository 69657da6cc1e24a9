"""FAST baseline (Pertsch et al., 2025) with the published constants, for side-by-side comparison.

Per chunk: q01/q99-normalise, orthonormal DCT-II along time, round(coefficient * scale), flatten row-major over
(T, D), shift by the fitted ``min_token`` and byte-level BPE (vocabulary 1024, min_frequency 2) over the
characters those integers name. Token counts vary with the chunk, which is what FASTerVQ's fixed grid avoids.

Deviations from the reference, all for totality: the BPE starts from the 256 byte symbols (the reference seeds
chr(0..range), which byte-level pre-tokenisation never produces), the range of coefficients is not capped by the
vocabulary size, integers skip the UTF-16 surrogate block so that any scale encodes, and a token sequence that
does not decode to exactly H x D coefficients raises ValueError, where the reference prints the error and returns
zeros (mid-range actions, openpi#299/#833). Coefficients below the fitted minimum are clamped, as in the reference.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from faster_core.data.chunks import check_action_mode
from faster_core.tokenizer.interface import check_actions, config_from_dict, read_config, write_config
from faster_core.tokenizer.loss import dct_matrix
from faster_core.tokenizer.normalize import normalize, quantile_stats, unnormalize

BPE_FILE = "bpe.json"
_SURROGATES, _SURROGATE_COUNT, _MAX_CODE_POINT = 0xD800, 0x800, 0x10FFFF


@dataclass(frozen=True, kw_only=True)
class FASTConfig:
    chunk_length: int  # H
    action_dim: int  # D
    q01: tuple[float, ...]
    q99: tuple[float, ...]
    scale: float = 10.0  # DCT coefficients are rounded after multiplying by this
    vocab_size: int = 1024  # BPE vocabulary target (FAST+: 2048)
    min_frequency: int = 2  # BPE merges need at least this many occurrences
    min_token: int = 0  # smallest rounded coefficient seen when fitting; the shift to non-negative integers
    max_tokens: int = 0  # longest token sequence seen when fitting
    action_mode: str = "absolute"  # the chunks it was fitted on: "absolute" targets or "delta" (minus the state)

    def __post_init__(self):
        check_action_mode(self.action_mode)


def _unicode_to_byte() -> dict[str, int]:
    """GPT-2's byte-level alphabet, inverted: the printable character standing for each byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = dict(zip(printable, printable, strict=True)), 0
    for byte in range(256):
        if byte not in chars:
            chars[byte], extra = 256 + extra, extra + 1
    return {chr(char): byte for byte, char in chars.items()}


def _to_text(values: np.ndarray) -> str:
    """Non-negative integers -> one character each, skipping the surrogates UTF-8 cannot carry."""
    points = values + (values >= _SURROGATES) * _SURROGATE_COUNT
    if points.size and points.max() > _MAX_CODE_POINT:
        raise ValueError(f"a DCT coefficient exceeds the {_MAX_CODE_POINT} integers FAST can carry: lower the scale")
    return "".join(map(chr, points.tolist()))


def _from_text(text: str) -> np.ndarray:
    points = np.fromiter(map(ord, text), dtype=np.int64, count=len(text))
    return points - (points >= _SURROGATES + _SURROGATE_COUNT) * _SURROGATE_COUNT


class FASTTokenizer:
    kind = "fast"

    def __init__(self, config: FASTConfig, bpe: Tokenizer):
        self.config, self.bpe = config, bpe
        byte = _unicode_to_byte()
        vocab = bpe.get_vocab()
        self._id_bytes = [b""] * len(vocab)
        for token, index in vocab.items():
            self._id_bytes[index] = bytes(byte[c] for c in token)
        self._dct = dct_matrix(config.chunk_length, dtype=torch.float64).numpy()
        self._q01, self._q99 = np.asarray(config.q01), np.asarray(config.q99)

    @classmethod
    def fit(
        cls,
        chunks: np.ndarray,
        *,
        scale: float = 10.0,
        vocab_size: int = 1024,
        min_frequency: int = 2,
        action_mode: str = "absolute",
    ) -> FASTTokenizer:
        """Fit normalisation, ``min_token`` and the BPE on chunks [N, H, D] in robot units, in ``action_mode``."""
        chunks = np.asarray(chunks)
        if chunks.ndim != 3:
            raise ValueError(f"chunks must have shape [N, H, D], got {list(chunks.shape)}")
        chunks, _ = check_actions(chunks, chunk_length=chunks.shape[1], action_dim=chunks.shape[2])
        q01, q99 = quantile_stats(chunks)
        config = FASTConfig(
            chunk_length=chunks.shape[1],
            action_dim=chunks.shape[2],
            q01=q01,
            q99=q99,
            scale=scale,
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            action_mode=action_mode,
        )
        coefficients = _rounded_dct(normalize(chunks.astype(np.float64), np.asarray(q01), np.asarray(q99)), scale)
        config = dataclasses.replace(config, min_token=int(coefficients.min()))
        texts = [_to_text(row - config.min_token) for row in coefficients]
        bpe = _new_bpe()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            show_progress=False,
            special_tokens=[],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            max_token_length=10000,
        )
        bpe.train_from_iterator(texts, trainer=trainer, length=len(texts))
        longest = max(len(encoding.ids) for encoding in bpe.encode_batch(texts))
        return cls(dataclasses.replace(config, max_tokens=longest), bpe)

    @property
    def vocab_size(self) -> int:
        return self.bpe.get_vocab_size()

    @property
    def tokens_per_chunk(self) -> int:
        """The longest sequence seen in fitting: a guide, not a bound."""
        return self.config.max_tokens

    @property
    def fixed_length(self) -> bool:
        return False

    def encode(self, actions: np.ndarray) -> list[int] | list[list[int]]:
        """Actions [H, D] -> token ids; [B, H, D] -> one list per chunk."""
        actions, batched = check_actions(
            actions, chunk_length=self.config.chunk_length, action_dim=self.config.action_dim
        )
        x = normalize(np.asarray(actions, dtype=np.float64), self._q01, self._q99)
        coefficients = np.maximum(_rounded_dct(x, self.config.scale) - self.config.min_token, 0)
        ids = [encoding.ids for encoding in self.bpe.encode_batch([_to_text(row) for row in coefficients])]
        return ids if batched else ids[0]

    def decode(self, tokens: Sequence[int] | Sequence[Sequence[int]]) -> np.ndarray:
        """Token ids -> [H, D] actions in robot units; a list of sequences -> [B, H, D].

        Raises ValueError naming the chunk when its tokens do not decode to exactly H x D coefficients.
        """
        batched = len(tokens) > 0 and not np.isscalar(tokens[0])
        sequences = tokens if batched else [tokens]
        size = self.config.chunk_length * self.config.action_dim
        rows = []
        for index, sequence in enumerate(sequences):
            ids = np.asarray(sequence)
            if ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
                raise ValueError(f"chunk {index}: tokens must be a flat sequence of integers")
            if ids.size and (ids.min() < 0 or ids.max() >= len(self._id_bytes)):
                raise ValueError(f"chunk {index}: token ids must lie in [0, {len(self._id_bytes)})")
            try:
                text = b"".join(self._id_bytes[i] for i in ids.tolist()).decode("utf-8")
            except UnicodeDecodeError as error:
                raise ValueError(f"chunk {index}: tokens do not form whole characters ({error.reason})") from error
            values = _from_text(text)
            if values.size != size:
                raise ValueError(
                    f"chunk {index}: tokens decode to {values.size} DCT coefficients, expected H x D = "
                    f"{self.config.chunk_length} x {self.config.action_dim} = {size} (the reference returns zeros)"
                )
            rows.append(values)
        coefficients = (np.stack(rows) + self.config.min_token) / self.config.scale
        x = np.einsum(
            "ft,bfd->btd", self._dct, coefficients.reshape(-1, self.config.chunk_length, self.config.action_dim)
        )
        actions = unnormalize(x, self._q01, self._q99).astype(np.float32)
        return actions if batched else actions[0]

    def tokenize(self, actions: np.ndarray) -> list[list[int]]:
        ids = self.encode(actions)
        return ids if np.ndim(actions) == 3 else [ids]

    def detokenize(self, tokens: Sequence[Sequence[int]]) -> np.ndarray:
        if not len(tokens):
            return np.zeros((0, self.config.chunk_length, self.config.action_dim), np.float32)
        return self.decode([list(t) for t in tokens])

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        directory = write_config(directory, self.kind, dataclasses.asdict(self.config))
        self.bpe.save(str(directory / BPE_FILE))

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> FASTTokenizer:
        directory = Path(directory)
        config = config_from_dict(FASTConfig, read_config(directory, cls.kind), str(directory))
        try:
            bpe = Tokenizer.from_file(str(directory / BPE_FILE))
        except Exception as error:  # tokenizers raises its own exception type
            raise ValueError(f"cannot read {directory / BPE_FILE}: {error}") from error
        return cls(config, bpe)


def _rounded_dct(x: np.ndarray, scale: float) -> np.ndarray:
    """Normalised [B, H, D] -> [B, H*D] integers round(DCT-II(x) * scale), row-major over (frequency, dim)."""
    coefficients = np.einsum("ft,btd->bfd", dct_matrix(x.shape[1], dtype=torch.float64).numpy(), x)
    return np.rint(coefficients * scale).astype(np.int64).reshape(len(x), -1)


def _new_bpe() -> Tokenizer:
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    return bpe

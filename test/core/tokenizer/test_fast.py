import numpy as np
import pytest
from tokenizers import pre_tokenizers

from faster_core.tokenizer.fast import FASTTokenizer, _unicode_to_byte

from tokenizer_testdata import smooth_chunks


def clipped(tokenizer: FASTTokenizer, chunks: np.ndarray) -> np.ndarray:
    """Chunks inside [q01, q99], so normalisation clipping adds no error of its own."""
    return np.clip(chunks, tokenizer.config.q01, tokenizer.config.q99).astype(np.float32)


def max_error_bound(tokenizer: FASTTokenizer) -> np.ndarray:
    """Rounding moves each coefficient by <= 0.5/scale; the orthonormal inverse maps that to <= 0.5 sqrt(H)/scale
    per value in normalised units; robot units multiply by (q99 - q01) / 2."""
    half_range = (np.array(tokenizer.config.q99) - np.array(tokenizer.config.q01)) / 2
    return 0.5 * np.sqrt(tokenizer.config.chunk_length) / tokenizer.config.scale * half_range + 1e-5


def test_round_trip_is_exact_up_to_the_rounding_at_high_scale():
    chunks = smooth_chunks(200, 10, 3)
    tokenizer = FASTTokenizer.fit(chunks, scale=1e4)
    x = clipped(tokenizer, chunks[:20])
    error = np.abs(tokenizer.decode(tokenizer.encode(x)) - x)
    assert np.all(error <= max_error_bound(tokenizer))
    assert error.max() < 2e-3
    # the same data at the published scale 10 is visibly lossy: the bound above is not vacuous
    coarse = FASTTokenizer.fit(chunks, scale=10)
    assert np.abs(coarse.decode(coarse.encode(x)) - x).max() > 50 * error.max()


def test_published_defaults_and_shapes():
    chunks = smooth_chunks(300, 20, 4)
    tokenizer = FASTTokenizer.fit(chunks)
    assert (tokenizer.config.scale, tokenizer.config.vocab_size, tokenizer.config.min_frequency) == (10, 1024, 2)
    assert 256 < tokenizer.vocab_size <= 1024 and not tokenizer.fixed_length  # merges stop at min_frequency
    ids = tokenizer.encode(chunks[0])
    assert isinstance(ids, list) and all(isinstance(i, int) for i in ids)
    assert len(ids) < 20 * 4  # BPE compresses
    batch = tokenizer.encode(chunks[:3])
    assert len(batch) == 3 and batch[0] == ids
    assert tokenizer.decode(ids).shape == (20, 4)
    assert tokenizer.decode(batch).shape == (3, 20, 4)
    assert tokenizer.detokenize(tokenizer.tokenize(chunks[:2])).shape == (2, 20, 4)
    assert max(len(t) for t in tokenizer.encode(chunks)) == tokenizer.tokens_per_chunk


def test_high_scale_crosses_the_surrogate_block():
    chunks = smooth_chunks(50, 16, 2, seed=3)
    tokenizer = FASTTokenizer.fit(chunks, scale=3e4)  # coefficient range > 0xD800
    x = clipped(tokenizer, chunks[:5])
    assert np.all(np.abs(tokenizer.decode(tokenizer.encode(x)) - x) <= max_error_bound(tokenizer))


def test_save_load_gives_the_same_tokens(tmp_path):
    chunks = smooth_chunks(200, 10, 3)
    tokenizer = FASTTokenizer.fit(chunks)
    tokenizer.save_pretrained(tmp_path)
    loaded = FASTTokenizer.from_pretrained(tmp_path)
    assert loaded.config == tokenizer.config
    assert loaded.encode(chunks) == tokenizer.encode(chunks)
    np.testing.assert_array_equal(loaded.decode(tokenizer.encode(chunks)), tokenizer.decode(tokenizer.encode(chunks)))


def test_undecodable_sequences_raise_instead_of_returning_zeros():
    chunks = smooth_chunks(200, 10, 3)
    tokenizer = FASTTokenizer.fit(chunks)
    ids = tokenizer.encode(chunks[:2])
    with pytest.raises(ValueError, match=r"chunk 1: tokens decode to \d+ DCT coefficients, expected H x D = 10 x 3"):
        tokenizer.decode([ids[0], ids[1][:-1]])
    with pytest.raises(ValueError, match=rf"chunk 0: token ids must lie in \[0, {tokenizer.vocab_size}\)"):
        tokenizer.decode([tokenizer.vocab_size])
    with pytest.raises(ValueError, match="NaN/inf"):
        tokenizer.encode(np.full((10, 3), np.nan))


def test_byte_table_is_the_byte_level_alphabet():
    assert set(_unicode_to_byte()) == set(pre_tokenizers.ByteLevel.alphabet())
    assert sorted(_unicode_to_byte().values()) == list(range(256))

import numpy as np
import pytest

from faster_core.tokenizer.bins import BinTokenizer

from tokenizer_testdata import smooth_chunks


def test_round_trip_within_half_a_bin_and_shapes(tmp_path):
    chunks = smooth_chunks(100, 10, 3)
    tokenizer = BinTokenizer.fit(chunks)
    q01, q99 = np.array(tokenizer.config.q01), np.array(tokenizer.config.q99)
    x = np.clip(chunks, q01, q99)
    bins = tokenizer.encode(x)
    assert bins.shape == (100, 30) and bins.min() >= 0 and bins.max() <= 255
    recon = tokenizer.decode(bins)
    assert recon.shape == (100, 10, 3)
    half_bin = (q99 - q01) / 256 / 2
    assert np.all(np.abs(recon - x) <= half_bin + 1e-5)
    assert np.abs(recon - x).max() > half_bin.min() / 4  # lossy, as it should be
    assert tokenizer.decode(tokenizer.encode(x[0])).shape == (10, 3)
    assert tokenizer.vocab_size == 256 and tokenizer.tokens_per_chunk == 30
    tokenizer.save_pretrained(tmp_path)
    np.testing.assert_array_equal(BinTokenizer.from_pretrained(tmp_path).encode(x), bins)


def test_bad_bins_raise():
    tokenizer = BinTokenizer.fit(smooth_chunks(10, 4, 2))
    with pytest.raises(ValueError, match=r"bins must lie in \[0, 256\)"):
        tokenizer.decode(np.full(8, 256))
    with pytest.raises(ValueError, match=r"bins must have shape \[8\]"):
        tokenizer.decode(np.zeros(7, np.int64))
    with pytest.raises(ValueError, match="must be integers"):
        tokenizer.decode(np.zeros(8))

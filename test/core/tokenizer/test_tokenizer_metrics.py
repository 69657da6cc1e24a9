import math

import numpy as np
import pytest

from faster_core.tokenizer.bins import BinTokenizer
from faster_core.tokenizer.metrics import evaluate_tokenizer, mean_l1, token_stats, vrr

from tokenizer_testdata import smooth_chunks


def test_vrr_counts_actions_by_their_l1_error():
    target = np.zeros((1, 4, 2))
    recon = np.array([[[0.0, 0.0], [0.004, 0.004], [0.03, 0.01], [0.2, 0.0]]])  # l1: 0, 0.008, 0.04, 0.2
    assert vrr(recon, target) == {1e-3: 0.25, 1e-2: 0.5, 5e-2: 0.75, 1e-1: 0.75}
    assert mean_l1(recon, target) == pytest.approx(0.248 / 8)


def test_token_stats_on_a_known_distribution():
    stats = token_stats([[0, 0, 1, 2], [0, 1]], vocab_size=8, active_threshold=0.2)
    p = np.array([3, 2, 1]) / 6
    assert stats["usage_pct"] == 37.5
    assert stats["f_max_pct"] == pytest.approx(50.0)
    assert stats["n_active"] == 2  # 0.5 and 0.33 exceed 0.2
    assert stats["entropy_norm"] == pytest.approx(-(p * np.log(p)).sum() / math.log(8))
    assert (stats["tokens_mean"], stats["tokens_max"]) == (3.0, 4)


def test_evaluate_tokenizer_reports_everything():
    chunks = smooth_chunks(40, 8, 2)
    result = evaluate_tokenizer(BinTokenizer.fit(chunks), chunks, timing_chunks=4)
    assert result["chunks"] == 40 and result["tokens_max"] == 16
    assert 0 < result["l1"] < 0.05 and set(result["vrr"]) == {1e-3, 1e-2, 5e-2, 1e-1}
    assert result["encode_ms"] > 0 and result["decode_ms_batch1"] > 0

import numpy as np
import torch

from faster_core.data.stats import ArrayStats
from faster_core.tokenizer.normalize import normalize, quantile_stats, unnormalize


def test_quantiles_map_to_unit_range_clip_and_invert():
    rng = np.random.default_rng(1)
    samples = np.column_stack([rng.normal(0, 1, 2000), rng.uniform(5, 9, 2000), np.full(2000, 0.3)])
    q01, q99 = (np.asarray(q) for q in quantile_stats(samples[None]))
    stats = ArrayStats.from_samples(samples)  # the dataset's statistics agree with the tokenizer's
    np.testing.assert_allclose(q01, stats.q01)
    np.testing.assert_allclose(q99, stats.q99)
    np.testing.assert_allclose(normalize(q01, q01, q99)[:2], [-1, -1])
    np.testing.assert_allclose(normalize(q99, q01, q99)[:2], [1, 1], atol=1e-5)
    normalized = normalize(samples, q01, q99)
    assert normalized.min() >= -1 and normalized.max() <= 1
    inside = np.all((samples >= q01) & (samples <= q99), axis=1)
    np.testing.assert_allclose(unnormalize(normalized[inside], q01, q99), samples[inside], atol=1e-9)
    np.testing.assert_allclose(unnormalize(normalize(q99 + 10, q01, q99), q01, q99)[:2], q99[:2], atol=1e-5)
    assert np.all(np.isfinite(normalized[:, 2]))  # a constant dimension stays finite and round-trips
    np.testing.assert_allclose(unnormalize(normalized[:, 2], q01[2], q99[2]), 0.3, atol=1e-6)


def test_numpy_and_torch_agree():
    x = np.linspace(-2, 2, 12).reshape(3, 4)
    q01, q99 = np.full(4, -1.0), np.full(4, 1.5)
    expected = normalize(x, q01, q99)
    got = normalize(torch.tensor(x), torch.tensor(q01), torch.tensor(q99)).numpy()
    np.testing.assert_allclose(got, expected)


def test_decoded_values_never_leave_the_bounds():
    """A saturated decoder output lands on q01/q99 exactly, not EPS beyond (a +-0.01 delta policy stays within 0.01)."""
    q01, q99 = np.full(3, -0.01), np.array([0.01, 0.02, 5.0])
    for lib in (np.asarray, torch.tensor):
        top = np.asarray(unnormalize(lib(np.full((2, 3), 1.5)), lib(q01), lib(q99)))
        bottom = np.asarray(unnormalize(lib(np.full((2, 3), -1.5)), lib(q01), lib(q99)))
        assert np.all(top <= q99) and np.all(bottom >= q01)
        np.testing.assert_allclose(top[0], q99)
        np.testing.assert_allclose(bottom[0], q01)

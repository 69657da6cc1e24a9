import math

import numpy as np
import torch

from faster_core.tokenizer.loss import dct, dct_matrix, faster_loss, idct


def direct_dct(signal: np.ndarray) -> np.ndarray:
    """DCT-II with orthonormal scaling, straight from the definition (loops, float64)."""
    n = len(signal)
    out = np.zeros(n)
    for k in range(n):
        total = 0.0
        for t in range(n):
            total += signal[t] * math.cos(math.pi * (2 * t + 1) * k / (2 * n))
        out[k] = total * (math.sqrt(1 / n) if k == 0 else math.sqrt(2 / n))
    return out


def test_dct_matches_definition_along_time():
    x = torch.randn(2, 7, 3, dtype=torch.float64)
    coefficients = dct(x, dim=1).numpy()
    for b in range(2):
        for d in range(3):
            np.testing.assert_allclose(coefficients[b, :, d], direct_dct(x[b, :, d].numpy()), atol=1e-12)


def test_dct_is_orthonormal_and_inverted():
    c = dct_matrix(20, dtype=torch.float64)
    torch.testing.assert_close(c @ c.T, torch.eye(20, dtype=torch.float64))
    x = torch.randn(4, 20, 5, dtype=torch.float64)
    torch.testing.assert_close(idct(dct(x, dim=1), dim=1), x)


def test_faster_loss_is_eq1_computed_directly():
    rng = np.random.default_rng(0)
    a, a_hat = rng.normal(size=(2, 6, 3)), rng.normal(size=(2, 6, 3))
    z, z_q = rng.normal(size=(2, 1, 3, 4)), rng.normal(size=(2, 1, 3, 4))
    terms = faster_loss(*(torch.tensor(v) for v in (a, a_hat, z, z_q)), commitment_weight=0.25)
    l1 = np.abs(a - a_hat).mean()
    dct_l1 = np.mean(
        [
            abs(u - v)
            for b in range(2)
            for d in range(3)
            for u, v in zip(direct_dct(a[b, :, d]), direct_dct(a_hat[b, :, d]), strict=True)
        ]
    )
    commit = ((z - z_q) ** 2).mean()
    assert math.isclose(float(terms.dct_l1), dct_l1, rel_tol=1e-5)
    assert math.isclose(float(terms.total), l1 + dct_l1 + 0.25 * commit, rel_tol=1e-5)


def test_commitment_gradient_reaches_z_only():
    z = torch.randn(2, 3, requires_grad=True)
    z_q = torch.randn(2, 3, requires_grad=True)
    actions = torch.zeros(1, 4, 1)
    faster_loss(actions, actions.clone(), z, z_q).total.backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    assert z_q.grad is None

"""The core's batch losses and derivatives against the NumPy reference."""

import numpy as np
import pytest
from _reference import dloss, row_loss

from skgd._core import _losses

CORE = {
    "squared_error": _losses.SquaredError,
    "log_loss": _losses.BinaryLogLoss,
    "multinomial": _losses.MultinomialLogLoss,
    "hinge": _losses.Hinge,
    "squared_hinge": _losses.SquaredHinge,
}


def _batch(loss, n, K, rng):
    """Decision values from -800 to 800 (exp overflows past 709) and
    targets; 3 classes for the multi-output losses."""
    Z = rng.normal(scale=3, size=(n, K))
    Z[::97] *= 250
    Z[1::89] = 40.0 * rng.choice([-1, 1], size=Z[1::89].shape)
    if loss == "squared_error":
        Y = rng.normal(size=(n, K))
    else:
        Y = rng.randint(max(K, 2), size=(n, 1)).astype(float)
    return Z, Y


@pytest.mark.parametrize("loss", list(CORE))
@pytest.mark.parametrize("weights", ["ones", "mixed"])
def test_batch_loss_and_derivative_match_the_reference(loss, weights):
    """1500 rows (the log terms of unit-weight rows are summed as the log
    of a product, logged when it passes 1e150): total to 1e-13 relative,
    derivatives to 1e-14; zero-weight rows contribute nothing."""
    rng = np.random.RandomState(0)
    K = 1 if loss == "log_loss" else 3
    Z, Y = _batch(loss, 1500, K, rng)
    s = np.ones(len(Z))
    if weights == "mixed":
        s[::3] = rng.uniform(0, 5, size=s[::3].shape)
        s[1::7] = 0.0
    total, D = CORE[loss](K).loss_and_gradient(Z, Y, s)
    expected = np.sum(s * row_loss(loss, Z, Y))
    np.testing.assert_allclose(total, expected, rtol=1e-13)
    np.testing.assert_allclose(D, s[:, None] * dloss(loss, Z, Y), rtol=1e-14, atol=0)


def test_log_loss_of_tiny_and_even_margins():
    """Margins of 0 (each factor of the product is 2: 1024 of them would
    overflow) and of 30-36 (1 + e rounds e to a multiple of 2^-52): the
    absolute error stays below 2.5e-16 per row."""
    Z = np.concatenate([np.zeros(1024), np.linspace(30, 36, 1000)])[:, None]
    Y = np.ones_like(Z)
    total, _ = _losses.BinaryLogLoss(1).loss_and_gradient(Z, Y, np.ones(len(Z)))
    expected = np.sum(np.log1p(np.exp(-Z)))
    assert abs(total - expected) <= 2.5e-16 * len(Z)

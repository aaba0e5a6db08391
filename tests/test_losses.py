"""The core's batch losses and derivatives against the NumPy reference."""

import numpy as np
import pytest
from _reference import dloss, row_loss

from skgd._core import _losses

EPS = np.finfo(np.float64).eps

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


# Each loss with one output and with three (the binary log loss has one,
# the multinomial more).
LOSS_OUTPUTS = [
    (loss, K)
    for loss in CORE
    for K in (1, 3)
    if (loss, K) not in {("log_loss", 3), ("multinomial", 1)}
]


@pytest.mark.parametrize("loss, K", LOSS_OUTPUTS)
@pytest.mark.parametrize("weights", ["unit", "ones", "mixed"])
def test_batch_loss_and_derivative_match_the_reference(loss, K, weights):
    """1500 rows, unit weights (s NULL: the vectorised sums of blocks) or
    weights given: total to 1e-13 relative, derivatives to 1e-14 relative
    and 4 ulps of s absolute (the value alone, without them, the same);
    zero-weight rows contribute nothing."""
    rng = np.random.RandomState(0)
    Z, Y = _batch(loss, 1500, K, rng)
    s = np.ones(len(Z))
    if weights == "mixed":
        s[::3] = rng.uniform(0, 5, size=s[::3].shape)
        s[1::7] = 0.0
    core = CORE[loss](K)
    given = None if weights == "unit" else s
    total, D = core.loss_and_gradient(Z, Y, given)
    expected = np.sum(s * row_loss(loss, Z, Y))
    np.testing.assert_allclose(total, expected, rtol=1e-13)
    # (D = s (p - y) cancels where p is near y: a few ulps of 1 absolute;
    # NumPy's exp may differ from libm's by an ulp, as on AVX-512 machines)
    np.testing.assert_allclose(
        D, s[:, None] * dloss(loss, Z, Y), rtol=1e-14, atol=4 * EPS * s.max()
    )
    assert core.loss_and_gradient(Z, Y, given, gradient=False) == (total, None)


def test_log_loss_of_tiny_and_even_margins():
    """Unit weights, margins of 0 (each factor of the product is 2: 1024
    of them would overflow) and of 30-36 (1 + e rounds e to a multiple of
    2^-52): the absolute error stays below 2.5e-16 per row."""
    Z = np.concatenate([np.zeros(1024), np.linspace(30, 36, 1000)])[:, None]
    Y = np.ones_like(Z)
    total, _ = _losses.BinaryLogLoss(1).loss_and_gradient(Z, Y)
    expected = np.sum(np.log1p(np.exp(-Z)))
    assert abs(total - expected) <= 2.5e-16 * len(Z)


def test_log_terms_of_many_classes_do_not_overflow():
    """64 rows of 70,000 even classes: the block's product of the log-sum-
    exp arguments (70,000^64) overflows, so each lane is logged alone."""
    K = 70_000
    Z = np.zeros((64, K))
    Y = np.arange(64, dtype=float)[:, None]
    total, _ = _losses.MultinomialLogLoss(K).loss_and_gradient(Z, Y, gradient=False)
    np.testing.assert_allclose(total, 64 * np.log(K), rtol=1e-15)

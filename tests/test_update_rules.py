"""The engine's first updates equal a NumPy transcription of SPEC section 3."""

import numpy as np
import pytest
import scipy.sparse as sp
from _reference import FIRST_ORDER_RULES, Rule, full_batch_descent

from skgd import HingeSVM, SGDLinearRegressor, SGDLogisticClassifier

RULES = FIRST_ORDER_RULES

# (estimator, loss name in the reference, number of classes or outputs)
PROBLEMS = [
    (SGDLinearRegressor, "squared_error", 1),
    (SGDLinearRegressor, "squared_error", 2),
    (SGDLogisticClassifier, "log_loss", 2),
    (SGDLogisticClassifier, "multinomial", 3),
    (HingeSVM, "hinge", 2),
    (HingeSVM, "hinge", 3),
    (HingeSVM, "squared_hinge", 3),
]


def tiny_problem(loss, n_targets, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(9, 4)) * [1.0, 3.0, 0.5, 2.0] + 0.5
    s = np.array([1.0, 0.0, 2.5, 1.0, 0.5, 3.0, 1.0, 0.0, 2.0])
    if loss == "squared_error":
        y = X @ rng.normal(size=(4, n_targets)) + rng.normal(size=(9, n_targets))
        return X, (y[:, 0] if n_targets == 1 else y), s
    y = np.arange(9) % n_targets
    return X, y, s


def reference_targets(loss, y):
    Y = np.asarray(y, dtype=float)
    return Y.reshape(len(Y), -1)


def estimator_params(Estimator, loss, rule):
    params = dict(
        RULES[rule],
        alpha=0.1,
        batch_size=100,
        shuffle=False,
        tol=None,
        max_iter=3,
        learning_rate="constant",
        eta0=0.05,
    )
    if Estimator is HingeSVM:
        params["loss"] = loss
    return params


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("Estimator, loss, n_targets", PROBLEMS)
def test_first_three_updates_match_numpy(Estimator, loss, n_targets, rule):
    X, y, s = tiny_problem(loss, n_targets)
    est = Estimator(**estimator_params(Estimator, loss, rule)).fit(
        X, y, sample_weight=s
    )
    K = 1 if n_targets == 2 and loss != "squared_error" else n_targets
    ref_rule = Rule(
        RULES[rule]["solver"],
        5 * K,
        **{k: v for k, v in RULES[rule].items() if k != "solver"},
    )
    W, b = full_batch_descent(
        loss, X, reference_targets(loss, y), s, 0.1, K, ref_rule, [0.05] * 3
    )
    # The regressor starts b at the weighted mean of y, where the intercept's
    # gradient is rounding noise (~1e-17, summed in another order here); the
    # adaptive rules divide it by ~eps = 1e-8, which leaves ~1e-10 of noise.
    noisy = loss == "squared_error" and RULES[rule]["solver"] != "sgd"
    rtol, atol = (1e-8, 1e-10) if noisy else (1e-12, 1e-14)
    np.testing.assert_allclose(np.atleast_2d(est.coef_), W.T, rtol=rtol, atol=atol)
    np.testing.assert_allclose(est.intercept_, b, rtol=rtol, atol=atol)
    assert est.t_ == 3 and est.n_iter_ == 3


def test_one_hand_computed_sgd_step():
    # One full-batch step of squared error from W = 0 and b = the weighted
    # mean of y (the regressor's start), written out: z = b, D = (b - y) s / S,
    # g = X^T D, gb = sum D = 0, W = -eta g, b unchanged.
    X = np.array([[1.0, 2.0], [3.0, -1.0], [0.0, 1.0]])
    y = np.array([1.0, -2.0, 4.0])
    s = np.array([1.0, 2.0, 1.0])  # S = 4, b = (1 - 4 + 4) / 4 = 0.25
    D = (0.25 - y) * s / 4  # [-0.1875, 1.125, -0.9375]
    g = np.array([-0.1875 + 3.375, -0.375 - 1.125 - 0.9375])  # X^T D
    assert np.allclose(X.T @ D, g)
    est = SGDLinearRegressor(
        solver="sgd",
        alpha=0.0,
        eta0=0.1,
        learning_rate="constant",
        max_iter=1,
        tol=None,
        batch_size=3,
        shuffle=False,
    )
    est.fit(X, y, sample_weight=s)
    np.testing.assert_allclose(est.coef_, -0.1 * g, rtol=1e-15)
    np.testing.assert_allclose(est.intercept_, [0.25], rtol=0, atol=1e-16)


@pytest.mark.parametrize("loss, curvature", [("log_loss", 0.25), ("hinge", 1.0)])
def test_auto_step_and_intercept_preconditioner(loss, curvature):
    """eta0="auto": eta = 1 / (c (max ||x||^2 + sigma2) + alpha) over rows of
    positive weight; the intercept's gradient is scaled by sigma2, the
    weighted mean of ||x||^2."""
    X, y, s = tiny_problem(loss, 2)
    X[1] *= 100  # zero weight: must not enter the step size
    sq = (X**2).sum(axis=1)[s > 0]
    sigma2 = np.average(sq, weights=s[s > 0])
    eta = 1 / (curvature * (sq.max() + sigma2) + 0.1)
    Estimator = SGDLogisticClassifier if loss == "log_loss" else HingeSVM
    est = Estimator(
        solver="sgd",
        alpha=0.1,
        batch_size=100,
        shuffle=False,
        tol=None,
        max_iter=3,
        learning_rate="constant",
    ).fit(X, y, sample_weight=s)
    W, b = full_batch_descent(
        loss,
        X,
        reference_targets(loss, y),
        s,
        0.1,
        1,
        Rule("sgd", 5),
        [eta] * 3,
        intercept_scale=sigma2,
    )
    np.testing.assert_allclose(est.coef_, W.T, rtol=1e-12)
    np.testing.assert_allclose(est.intercept_, b, rtol=1e-12)


def test_zero_weight_batch_makes_no_update():
    X = np.arange(8.0).reshape(4, 2)
    y = np.array([0, 1, 0, 1])
    s = np.array([0.0, 0.0, 1.0, 1.0])
    est = SGDLogisticClassifier(
        solver="sgd", batch_size=2, shuffle=False, tol=None, max_iter=2
    )
    est.fit(X, y, sample_weight=s)
    assert est.t_ == 2  # one update per epoch: the first batch weighs nothing


@pytest.mark.parametrize(
    "params",
    [
        dict(),
        dict(shuffle=False),
        dict(batch_size=10_000, solver="sgd"),
        dict(sparse=True),
        dict(sparse=True, solver="sgd"),
    ],
)
def test_no_sample_weight_is_unit_weights(params):
    """Without sample_weight the core reads one broadcast value; the fit is
    the one with an explicit array of ones, bit for bit."""
    params = dict(params)
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 5))
    y = (X[:, 0] + rng.normal(size=300) > 0).astype(int)
    if params.pop("sparse", False):
        X = sp.csr_matrix(np.where(np.abs(X) > 0.5, X, 0.0))
    kw = {**dict(max_iter=3, tol=None, random_state=0, batch_size=32), **params}
    a = SGDLogisticClassifier(**kw).fit(X, y)
    b = SGDLogisticClassifier(**kw).fit(X, y, sample_weight=np.ones(300))
    assert np.array_equal(a.coef_, b.coef_)
    assert np.array_equal(a.loss_curve_, b.loss_curve_)

"""Line search, stopping rules and divergence (SPEC section 3)."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from _reference import FIRST_ORDER_RULES, gradient, objective
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Ridge
from sklearn.preprocessing import StandardScaler

from skgd import HingeSVM, SGDLinearRegressor, SGDLogisticClassifier

ALL_RULES = list(FIRST_ORDER_RULES.values())
RULE_IDS = list(FIRST_ORDER_RULES)
ESTIMATORS = [SGDLinearRegressor, SGDLogisticClassifier, HingeSVM]


def test_armijo_holds_at_every_accepted_step():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)[:200]
    y = y[:200]
    iterates, steps = [], []

    def record(est, info):
        iterates.append((info["coef"].T.copy(), info["intercept"].copy()))
        steps.append(info["eta"])

    alpha = 1e-3
    SGDLogisticClassifier(
        solver="sgd", alpha=alpha, learning_rate="line_search", batch_size=1000,
        max_iter=30, tol=None, callback=record,
    ).fit(X, y)  # fmt: skip
    Y = y.reshape(-1, 1).astype(float)
    s = np.ones(len(y))
    sigma2 = (X**2).sum(axis=1).mean()  # intercept preconditioner of eta0="auto"
    W, b = np.zeros((X.shape[1], 1)), np.zeros(1)
    shrunk = 0
    for (W_next, b_next), eta in zip(iterates, steps, strict=True):
        g, gb = gradient("log_loss", W, b, X, Y, s, alpha)
        slope = np.sum(g**2) + sigma2 * np.sum(gb**2)
        J, J_next = (objective("log_loss", W_, b_, X, Y, s, alpha)
                     for W_, b_ in ((W, b), (W_next, b_next)))  # fmt: skip
        np.testing.assert_allclose(W_next, W - eta * g, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(b_next, b - eta * sigma2 * gb, rtol=1e-10)
        assert J_next <= J - 1e-4 * eta * slope
        # The step tried before (twice as long) violated the condition.
        J_long = objective("log_loss", W - 2 * eta * g, b - 2 * eta * sigma2 * gb, X, Y,
                           s, alpha)  # fmt: skip
        shrunk += J_long > J - 1e-4 * 2 * eta * slope
        W, b = W_next, b_next
    assert shrunk >= 1  # the search did backtrack, not just grow


def test_line_search_needs_plain_sgd():
    with pytest.raises(ValueError, match="line_search"):
        SGDLogisticClassifier(learning_rate="line_search", solver="adam").fit(
            np.eye(4), [0, 1, 0, 1]
        )


def test_full_batch_stops_on_gradient_norm():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    est = SGDLogisticClassifier(
        solver="sgd",
        alpha=0.1,
        batch_size=1000,
        momentum=0.9,
        nesterov=True,
        tol=1e-6,
        n_iter_no_change=1000,
        max_iter=5000,
    )
    est.fit(X, y)
    W, b = est.coef_.T, est.intercept_
    g, gb = gradient("log_loss", W, b, X, y.reshape(-1, 1).astype(float),
                     np.ones(len(y)), 0.1)  # fmt: skip
    assert est.n_iter_ < 5000
    assert max(np.abs(g).max(), np.abs(gb).max()) < 1e-5


def test_adaptive_schedule_divides_on_plateaus():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    steps = []
    SGDLogisticClassifier(
        solver="sgd",
        batch_size=64,
        learning_rate="adaptive",
        random_state=0,
        callback=lambda e, info: steps.append(info["eta"]),
    ).fit(X, y)
    distinct = np.unique(steps)[::-1]
    np.testing.assert_allclose(distinct[1:] / distinct[:-1], 0.2)
    assert len(distinct) >= 3


@pytest.mark.parametrize("params", ALL_RULES, ids=RULE_IDS)
@pytest.mark.parametrize(
    "Estimator", [SGDLinearRegressor, SGDLogisticClassifier, HingeSVM]
)
def test_auto_step_never_diverges_on_unscaled_data(Estimator, params):
    rng = np.random.RandomState(0)
    scales = np.logspace(-3, 4, 8)
    X = rng.normal(size=(2000, 8)) * scales + 10 * scales
    z = (X - 10 * scales) / scales @ rng.normal(size=8)
    y = z if Estimator is SGDLinearRegressor else (z > 0).astype(int)
    est = Estimator(random_state=0, max_iter=20, tol=None, **params).fit(X, y)
    assert np.all(np.isfinite(est.coef_)) and np.all(np.isfinite(est.intercept_))
    assert np.isfinite(est.loss_curve_).all()
    assert max(est.loss_curve_) <= 2 * est.loss_curve_[0]  # no growth


@pytest.mark.parametrize("layout", ["dense64", "dense32", "csr"])
@pytest.mark.parametrize("solver", ["sgd", "adagrad", "adam"])
def test_auto_step_is_the_documented_formula(solver, layout):
    """eta0_ against SPEC section 3 written out in NumPy: rows of zero weight
    (here holding the largest row) do not enter the norms."""
    rng = np.random.RandomState(0)
    X = rng.standard_normal((3001, 7)) * np.logspace(-2, 2, 7)
    X[::3, 2] = 0.0
    y = (X[:, 0] > 0).astype(int)
    sw = rng.uniform(0.5, 2.0, len(y))
    X[5] *= 100.0
    sw[5] = 0.0
    fit_X = {"dense64": X, "dense32": X.astype(np.float32)}.get(layout)
    if fit_X is None:
        fit_X = sp.csr_matrix(X)
    X = np.asarray(fit_X.todense() if sp.issparse(fit_X) else fit_X, np.float64)
    est = SGDLogisticClassifier(solver=solver, alpha=1e-3, max_iter=1, tol=None)
    est.fit(fit_X, y, sample_weight=sw)
    keep = sw > 0
    if solver == "sgd":
        sq = (X**2).sum(axis=1)
        sigma2 = max(1.0, np.average(sq[keep], weights=sw[keep]))
        expected = 1.0 / (0.25 * (sq[keep].max() + sigma2) + 1e-3)
    else:
        l1 = np.average(np.abs(X).sum(axis=1)[keep], weights=sw[keep])
        expected = {"adagrad": 10.0, "adam": 1.0}[solver] / (l1 + 1.0)
    np.testing.assert_allclose(est.eta0_, expected, rtol=1e-12)


@pytest.mark.parametrize("params", ALL_RULES, ids=RULE_IDS)
def test_a_step_1e6_too_large_raises_in_the_first_epoch(params):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(2000, 8))
    y = X @ rng.normal(size=8)
    est = SGDLinearRegressor(random_state=0, max_iter=5, tol=None, **params)
    auto = est.fit(X, y).eta0_
    est.set_params(eta0=auto * 1e6)
    if params["solver"] == "sgd":
        with pytest.raises(ValueError, match="diverged in epoch 1"):
            est.fit(X, y)
        return
    # The adaptive rules normalise the step: they either stay finite or
    # raise the same error, in the first epoch.
    try:
        est.fit(X, y)
    except ValueError as error:
        assert "diverged in epoch 1" in str(error)
    else:
        assert np.all(np.isfinite(est.coef_))


@pytest.mark.parametrize("solver", ["adam", "rmsprop", "adagrad"])
def test_adaptive_rules_fit_targets_of_any_offset_and_scale(solver):
    """load_diabetes (y ~ 150 +- 77, standardised X): the adaptive rules,
    which move a coefficient by about eta0 per update, end within 1e-2 of
    Ridge's objective (they ended at R^2 < 0 when b started at 0): the
    regressor starts b at the mean of y and scales eta0 by the spread of y,
    so a fit on 1000 y is 1000 times the fit on y. (Most fits end within
    5e-4; about one seed in eight stops Adam after ~16 epochs at 7e-3,
    when five epochs at its noise floor fail to improve the best.)"""
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    alpha = 1e-3
    ridge = Ridge(alpha=alpha * len(y)).fit(X, y)
    Y, s = y.reshape(-1, 1), np.ones(len(y))
    J_star = objective("squared_error", ridge.coef_.reshape(-1, 1),
                       np.atleast_1d(ridge.intercept_), X, Y, s, alpha)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # adagrad: slow tail
        est = SGDLinearRegressor(solver=solver, alpha=alpha, random_state=0)
        est.fit(X, y)
    J = objective("squared_error", est.coef_.reshape(-1, 1), est.intercept_, X, Y, s,
                  alpha)  # fmt: skip
    assert J <= J_star * (1 + 1e-2)
    scaled = SGDLinearRegressor(solver=solver, alpha=alpha, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scaled.fit(X, 1000 * y)
    np.testing.assert_allclose(scaled.coef_, 1000 * est.coef_, rtol=1e-6)
    np.testing.assert_allclose(scaled.intercept_, 1000 * est.intercept_, rtol=1e-6)

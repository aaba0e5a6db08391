"""``max_norm`` (issue 12): the estimators constrained to ``||W||_F <= r``.

The references are independent of skgd: the KKT solution of constrained
least squares in closed form (centring for the intercept, brentq on the
multiplier), update steps and metric projections transcribed in NumPy.
"""

import numpy as np
import pytest
import scipy.sparse as sp
from _reference import FIRST_ORDER_RULES, gradient, objective
from scipy.optimize import brentq
from sklearn.base import clone
from sklearn.utils.estimator_checks import check_estimator

from skgd import HingeSVM, SGDLinearRegressor, SGDLogisticClassifier
from skgd._core import _optimizers

ESTIMATORS = [SGDLinearRegressor, SGDLogisticClassifier, HingeSVM]


def constrained_least_squares(X, Y, s, alpha, radius):
    """argmin (1/S) sum_i s_i 0.5 ||x_i W + b - y_i||^2 + alpha/2 ||W||^2
    subject to ||W||_F <= radius: (W, b, lambda).

    Centring by the weighted means removes b; then
    W(lam) = (Xc^T S Xc / S + (alpha + lam) I)^-1 Xc^T S Yc / S and, if
    ||W(0)|| > radius, lam > 0 solves ||W(lam)||_F = radius (brentq).
    """
    w = s / s.sum()
    mx, my = w @ X, w @ Y
    Xc, Yc = X - mx, Y - my
    A = Xc.T @ (w[:, None] * Xc)
    C = Xc.T @ (w[:, None] * Yc)
    eye = np.eye(X.shape[1])

    def W(lam):
        return np.linalg.solve(A + (alpha + lam) * eye, C)

    lam = 0.0
    if np.linalg.norm(W(0.0)) > radius:
        upper = np.linalg.norm(C) / radius
        lam = brentq(lambda t: np.linalg.norm(W(t)) - radius, 0.0, upper,
                     xtol=1e-15, rtol=1e-15)  # fmt: skip
    Wl = W(lam)
    return Wl, my - mx @ Wl, lam


@pytest.fixture(scope="module")
def regression():
    """Badly scaled features, two outputs, uneven sample weights."""
    rng = np.random.RandomState(0)
    n, d = 120, 6
    X = rng.randn(n, d) * np.array([1.0, 2.0, 0.5, 1.0, 3.0, 0.2])
    Y = X @ rng.randn(d, 2) + np.array([0.5, -1.0]) + 0.1 * rng.randn(n, 2)
    s = rng.uniform(0.5, 2.0, n)
    alpha = 1e-3
    free = np.linalg.norm(constrained_least_squares(X, Y, s, alpha, np.inf)[0])
    radius = 0.4 * free  # the constraint is active
    return X, Y, s, alpha, radius


def kkt_error(est, ref):
    W, b, _ = ref
    return max(np.max(np.abs(est.coef_.T - W)), np.max(np.abs(est.intercept_ - b)))


# -------------------------------------------------------- validation ---


@pytest.mark.parametrize("Estimator", ESTIMATORS)
@pytest.mark.parametrize("bad", [0, 0.0, -1.0, np.inf, np.nan, "a"])
def test_invalid_max_norm_names_the_parameter(Estimator, bad):
    X = np.random.RandomState(0).randn(20, 3)
    y = np.arange(20) % 2
    with pytest.raises(ValueError, match="max_norm"):
        Estimator(max_norm=bad).fit(X, y)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_max_norm_is_a_parameter(Estimator):
    est = Estimator(max_norm=2.5)
    assert est.get_params()["max_norm"] == 2.5
    assert clone(est).max_norm == 2.5
    assert Estimator().max_norm is None


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_check_estimator_with_max_norm(Estimator, solver):
    """The constrained first-order fits pass scikit-learn's checks. (With
    solver="newton" the partial_fit checks would fail: it is refused.)"""
    outcomes = []

    def record(**kwargs):
        outcomes.append((kwargs["check_name"], kwargs["status"]))

    check_estimator(Estimator(solver=solver, max_norm=0.5), on_fail=None,
                    callback=record)  # fmt: skip
    assert len(outcomes) > 50
    assert [o for o in outcomes if o[1] != "passed"] == []


def test_newton_partial_fit_with_max_norm_is_refused(regression):
    X, Y, s, alpha, radius = regression
    est = SGDLinearRegressor(solver="newton", max_norm=radius)
    with pytest.raises(ValueError, match="solver='newton' and max_norm"):
        est.partial_fit(X, Y)
    # "auto" (which fit resolves to Newton here) takes Adam in partial_fit
    auto = SGDLinearRegressor(max_norm=radius, random_state=0)
    assert auto.fit(X, Y).solver_ == "newton"
    assert auto.partial_fit(X, Y).solver_ == "adam"
    assert np.linalg.norm(auto.coef_) <= radius * (1 + 1e-12)


# ---------------------------------------- constrained least squares ---

# Full batch (batch_size >= n), no averaging: the iterates themselves
# converge to the KKT point, to 1e-6 within the given epochs.
FULL_BATCH = {
    "sgd": {"solver": "sgd", "max_iter": 3000},
    "momentum": {"solver": "sgd", "momentum": 0.9, "max_iter": 3000},
    "line_search": {"solver": "sgd", "learning_rate": "line_search",
                    "max_iter": 6000},
    # Adam's effective steps do not shrink by themselves near the optimum.
    "adam": {"solver": "adam", "learning_rate": "invscaling", "max_iter": 3000},
    "adagrad": {"solver": "adagrad", "max_iter": 3000},
}  # fmt: skip


def test_newton_is_the_kkt_solution(regression):
    X, Y, s, alpha, radius = regression
    ref = constrained_least_squares(X, Y, s, alpha, radius)
    assert ref[2] > 0.1  # active
    est = SGDLinearRegressor(solver="newton", alpha=alpha, max_norm=radius)
    est.fit(X, Y, sample_weight=s)
    assert kkt_error(est, ref) < 1e-10
    assert est.constraint_multiplier_ == pytest.approx(ref[2], rel=1e-8)
    assert np.linalg.norm(est.coef_) == pytest.approx(radius, rel=1e-12)


@pytest.mark.parametrize("config", FULL_BATCH)
def test_full_batch_first_order_reaches_the_kkt_solution(regression, config):
    X, Y, s, alpha, radius = regression
    ref = constrained_least_squares(X, Y, s, alpha, radius)
    params = {"batch_size": len(X), "tol": None, **FULL_BATCH[config]}
    est = SGDLinearRegressor(alpha=alpha, max_norm=radius, **params)
    est.fit(X, Y, sample_weight=s)
    assert kkt_error(est, ref) < 1e-6
    assert np.linalg.norm(est.coef_) <= radius * (1 + 1e-12)
    assert not hasattr(est, "constraint_multiplier_")


def test_full_batch_gradient_test_is_the_projected_gradient(regression):
    """With tol, a full-batch fit stops when max |theta - P(theta - G)| <=
    tol (the plain gradient never vanishes on an active constraint); the
    objective's plateau test is disabled here by n_iter_no_change."""
    X, Y, s, alpha, radius = regression
    ref = constrained_least_squares(X, Y, s, alpha, radius)
    est = SGDLinearRegressor(solver="sgd", alpha=alpha, max_norm=radius,
                             batch_size=len(X), tol=1e-9, max_iter=10000,
                             n_iter_no_change=10000)  # fmt: skip
    est.fit(X, Y, sample_weight=s)
    assert est.n_iter_ < 10000
    W, b = est.coef_.T, est.intercept_
    g, gb = gradient("squared_error", W, b, X, Y, s, alpha)
    step = W - g
    projected = step * min(1.0, radius / np.linalg.norm(step))
    assert np.max(np.abs(W - projected)) <= 1e-9
    assert np.max(np.abs(gb)) <= 1e-9
    assert kkt_error(est, ref) < 1e-8


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_minibatch_reaches_the_kkt_solution(regression, solver):
    """Minibatches of 10 rows with a decaying step (1/sqrt(t)) and the
    Polyak average: the noise of the batch gradients averages out like
    1/sqrt(updates), so after 2000 epochs (24000 updates) the averaged
    iterate is within 1e-2 of the KKT point (measured 3.9e-3 for sgd and
    3.0e-3 for adam) -- not 1e-6, which would need ~1e12 updates."""
    X, Y, s, alpha, radius = regression
    ref = constrained_least_squares(X, Y, s, alpha, radius)
    est = SGDLinearRegressor(solver=solver, alpha=alpha, max_norm=radius,
                             batch_size=10, learning_rate="invscaling",
                             average=True, tol=None, max_iter=2000,
                             random_state=0)  # fmt: skip
    est.fit(X, Y, sample_weight=s)
    assert kkt_error(est, ref) < 1e-2
    assert np.linalg.norm(est.coef_) <= radius * (1 + 1e-12)


@pytest.mark.parametrize("config", ["newton", "sgd", "adam"])
def test_large_radius_is_the_unconstrained_fit(regression, config):
    X, Y, s, alpha, _ = regression
    params = {"solver": config}
    if config != "newton":
        params.update(FULL_BATCH[config], batch_size=len(X), tol=None)
    free = SGDLinearRegressor(alpha=alpha, **params).fit(X, Y, sample_weight=s)
    ref = constrained_least_squares(X, Y, s, alpha, np.inf)
    big = SGDLinearRegressor(alpha=alpha, max_norm=1e3 * np.linalg.norm(ref[0]),
                             **params).fit(X, Y, sample_weight=s)  # fmt: skip
    np.testing.assert_array_equal(big.coef_, free.coef_)
    np.testing.assert_array_equal(big.intercept_, free.intercept_)
    if config != "sgd":  # unconstrained, sgd is still far after 3000 epochs
        assert kkt_error(big, ref) < 1e-6
    if config == "newton":
        assert big.constraint_multiplier_ == 0.0


@pytest.mark.parametrize("alpha", [1e-2, 0.3])
def test_penalty_and_constraint_correspond(regression, alpha):
    """For squared error, the ball-constrained fit with alpha = 0 at radius
    ||W*(alpha)|| is the penalised fit W*(alpha), with multiplier alpha."""
    X, Y, s, _, _ = regression
    penalised = SGDLinearRegressor(solver="newton", alpha=alpha)
    penalised.fit(X, Y, sample_weight=s)
    radius = np.linalg.norm(penalised.coef_)
    constrained = SGDLinearRegressor(solver="newton", alpha=0.0, max_norm=radius)
    constrained.fit(X, Y, sample_weight=s)
    np.testing.assert_allclose(constrained.coef_, penalised.coef_, atol=1e-6)
    np.testing.assert_allclose(constrained.intercept_, penalised.intercept_,
                               atol=1e-6)  # fmt: skip
    assert constrained.constraint_multiplier_ == pytest.approx(alpha, rel=1e-6)
    # and so does Adam with its metric projection (measured: 2e-15)
    adam = SGDLinearRegressor(solver="adam", alpha=0.0, max_norm=radius,
                              learning_rate="invscaling", batch_size=len(X),
                              tol=None, max_iter=3000)  # fmt: skip
    adam.fit(X, Y, sample_weight=s)
    np.testing.assert_allclose(adam.coef_, penalised.coef_, atol=1e-6)


# ------------------------------------------ one step, by hand (NumPy) ---


def metric_projection(y, D, radius):
    """argmin_{||w|| <= r} (w - y)^T diag(D) (w - y), independently: the
    KKT point w = D y / (D + lam) with brentq on ||w(lam)|| = r."""
    if np.linalg.norm(y) <= radius:
        return y
    lam = brentq(lambda t: np.linalg.norm(D * y / (D + t)) - radius, 0.0,
                 np.linalg.norm(D * y) / radius, xtol=1e-300, rtol=1e-15)  # fmt: skip
    return D * y / (D + lam)


@pytest.mark.parametrize("solver", ["sgd", "adam", "adagrad", "rmsprop"])
def test_two_hand_computed_updates(regression, solver):
    """Two full-batch updates with a constant step, each followed by the
    projection (Euclidean for sgd, in the rule's metric otherwise),
    transcribed in NumPy, equal the engine's to 1e-12."""
    X, Y, s, alpha, radius = regression
    eta, eps, rho, b1, b2 = 0.05, 1e-8, 0.99, 0.9, 0.999
    d, K = X.shape[1], Y.shape[1]
    radius = 0.1
    W, b = np.zeros((d, K)), np.average(Y, axis=0, weights=s)  # its start
    m, v = np.zeros((d, K)), np.zeros((d, K))
    mb, vb = np.zeros(K), np.zeros(K)
    for t in (1, 2):
        g, gb = gradient("squared_error", W, b, X, Y, s, alpha)
        if solver == "sgd":
            W, b, D = W - eta * g, b - eta * gb, np.ones_like(W)
        else:
            if solver == "adam":
                m, mb = b1 * m + (1 - b1) * g, b1 * mb + (1 - b1) * gb
                v, vb = b2 * v + (1 - b2) * g**2, b2 * vb + (1 - b2) * gb**2
                c1, c2 = 1 - b1**t, 1 - b2**t
                D, Db = np.sqrt(v / c2) + eps, np.sqrt(vb / c2) + eps
                W, b = W - eta * (m / c1) / D, b - eta * (mb / c1) / Db
            else:
                if solver == "adagrad":
                    v, vb = v + g**2, vb + gb**2
                else:
                    v = rho * v + (1 - rho) * g**2
                    vb = rho * vb + (1 - rho) * gb**2
                D, Db = np.sqrt(v) + eps, np.sqrt(vb) + eps
                W, b = W - eta * g / D, b - eta * gb / Db
        W = metric_projection(W.ravel(), D.ravel(), radius).reshape(d, K)
        assert np.linalg.norm(W) == pytest.approx(radius)  # projected
    est = SGDLinearRegressor(solver=solver, alpha=alpha, max_norm=radius,
                             eta0=eta, batch_size=len(X), max_iter=2, tol=None,
                             average=False, shuffle=False)  # fmt: skip
    est.fit(X, Y, sample_weight=s)
    # b starts where its gradient is rounding noise, which the adaptive rules
    # divide by ~eps (see test_update_rules): 1e-12 for sgd, 1e-8 for them.
    atol = 1e-12 if solver == "sgd" else 1e-8
    np.testing.assert_allclose(est.coef_.T, W, rtol=0, atol=atol)
    np.testing.assert_allclose(est.intercept_, b, rtol=0, atol=atol)


@pytest.mark.parametrize("seed", range(5))
def test_metric_projection_of_the_core(seed):
    """``Optimizer.project`` in Adagrad's metric D = sqrt(s) + eps, D
    spread over 8 orders of magnitude, against the NumPy KKT point."""
    rng = np.random.RandomState(seed)
    size = 50
    state = {"sum_sq": 10.0 ** rng.uniform(-8, 8, size)}
    rule = _optimizers.Adagrad(state, 1e-8)
    y = rng.randn(size) * 10.0 ** rng.uniform(-2, 2, size)
    radius = 0.1 * np.linalg.norm(y)
    w = y.copy()
    assert rule.project_onto_ball(w, radius, 1.0)
    expected = metric_projection(y, np.sqrt(state["sum_sq"]) + 1e-8, radius)
    np.testing.assert_allclose(w, expected, rtol=1e-10, atol=1e-14 * radius)
    assert np.linalg.norm(w) <= radius * (1 + 1e-15)
    inside = 0.5 * radius * y / np.linalg.norm(y)
    w = inside.copy()
    assert not rule.project_onto_ball(w, radius, 1.0)
    np.testing.assert_array_equal(w, inside)


# ------------------------------------------------- classifiers ---


@pytest.fixture(scope="module")
def classification():
    rng = np.random.RandomState(1)
    n, d = 150, 5
    X = rng.randn(n, d) * np.array([1.0, 2.0, 0.5, 1.0, 3.0])
    y3 = np.argmax(X @ rng.randn(d, 3) + 0.5 * rng.randn(n, 3), axis=1)
    y2 = (X @ rng.randn(d) + 0.3 * rng.randn(n) > 0).astype(int)
    return X, y2, y3


CLASSIFIERS = {
    "logistic": (SGDLogisticClassifier, {}),
    "hinge": (HingeSVM, {"loss": "hinge"}),
    "squared_hinge": (HingeSVM, {"loss": "squared_hinge"}),
}


@pytest.mark.parametrize("average", [False, True], ids=["last", "average"])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("rule", FIRST_ORDER_RULES)
@pytest.mark.parametrize("model", CLASSIFIERS)
def test_every_epoch_is_in_the_ball(
    classification, model, rule, n_classes, sparse, average
):
    X, y2, y3 = classification
    y = y2 if n_classes == 2 else y3
    X = sp.csr_matrix(X) if sparse else X
    Estimator, params = CLASSIFIERS[model]
    radius = 0.3
    norms = []

    def record(est, info):
        norms.append(np.linalg.norm(info["coef"]))

    est = Estimator(max_norm=radius, alpha=1e-4, batch_size=16, max_iter=15,
                    tol=None, random_state=0, callback=record, average=average,
                    **params, **FIRST_ORDER_RULES[rule])  # fmt: skip
    est.fit(X, y)
    assert len(norms) == 15
    assert max(norms) <= radius * (1 + 1e-12)
    if not average:
        assert max(norms) == pytest.approx(radius, rel=1e-12)  # active


# Full batch; J(first order) - J(newton) after the given epochs is at the
# rounding level (measured: |gap| <= 7e-16 for every entry, the first-order
# value sometimes the lower one by rounding; coefficients within 1.1e-8).
OBJECTIVE_RUNS = {
    "sgd": {"solver": "sgd", "max_iter": 2000},
    "adam": {"solver": "adam", "learning_rate": "invscaling", "max_iter": 2000},
}


@pytest.mark.parametrize("rule", OBJECTIVE_RUNS)
@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("model", ["logistic", "squared_hinge"])
def test_first_order_reaches_the_newton_constrained_objective(
    classification, model, n_classes, rule
):
    X, y2, y3 = classification
    y = y2 if n_classes == 2 else y3
    Estimator, params = CLASSIFIERS[model]
    alpha, radius = 1e-3, 0.5
    newton = Estimator(solver="newton", alpha=alpha, max_norm=radius, tol=1e-10,
                       **params).fit(X, y)  # fmt: skip
    assert newton.constraint_multiplier_ > 0  # active
    first = Estimator(alpha=alpha, max_norm=radius, batch_size=len(X), tol=None,
                      **params, **OBJECTIVE_RUNS[rule]).fit(X, y)  # fmt: skip
    loss = model if model != "logistic" else (
        "log_loss" if n_classes == 2 else "multinomial")  # fmt: skip
    Yc = np.searchsorted(newton.classes_, y).astype(float)[:, None]
    s = np.ones(len(y))

    def J(est):
        return objective(loss, est.coef_.T, est.intercept_, X, Yc, s, alpha)

    assert np.linalg.norm(first.coef_) <= radius * (1 + 1e-12)
    assert abs(J(first) - J(newton)) < 1e-12
    np.testing.assert_allclose(first.coef_, newton.coef_, atol=1e-6)


# ---------------------------------------------------- sparse == dense ---


@pytest.mark.parametrize("average", [False, True, 40])
@pytest.mark.parametrize("alpha", [0.0, 1e-2])
@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_sparse_plain_sgd_equals_dense(Estimator, alpha, average):
    """The lazy sparse path folds the projection into its decay product:
    the same coefficients as on the dense copy."""
    rng = np.random.RandomState(0)
    X = sp.random(200, 40, density=0.1, random_state=0, format="csr") * 3.0
    y = X @ rng.randn(40) + 0.3 * rng.randn(200)
    if Estimator is not SGDLinearRegressor:
        y = (y > np.median(y)).astype(int)
    params = dict(solver="sgd", alpha=alpha, average=average, max_norm=0.5,
                  batch_size=16, max_iter=20, tol=None, random_state=0)  # fmt: skip
    dense = Estimator(**params).fit(X.toarray(), y)
    lazy = Estimator(**params).fit(X, y)
    np.testing.assert_allclose(lazy.coef_, dense.coef_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(lazy.intercept_, dense.intercept_, rtol=0, atol=1e-10)
    assert np.linalg.norm(lazy.coef_) <= 0.5 * (1 + 1e-12)
    if average is False:
        assert np.linalg.norm(lazy.coef_) == pytest.approx(0.5, rel=1e-12)

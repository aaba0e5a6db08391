"""Constraints (issue 12): ``skgd.minimize(bounds=, max_norm=)`` and
``newton_solve(max_norm=)`` against independent KKT references and SciPy."""

import numpy as np
import pytest
import scipy.sparse as sp
from _reference import dloss
from scipy.optimize import Bounds, brentq
from scipy.optimize import minimize as scipy_minimize

from skgd import minimize
from skgd._minimize import _FeasibleSet
from skgd._newton import newton_solve

TOL = 1e-6


def ball_kkt(H, c, radius):
    """argmin 0.5 x^T H x - c^T x s.t. ||x|| <= radius (H positive definite).

    Independent of skgd: if the unconstrained minimiser is outside the ball,
    lambda > 0 solves ||(H + lambda I)^-1 c|| = radius (brentq on lambda,
    one dense solve per trial).
    """
    eye = np.eye(len(c))

    def x(lam):
        return np.linalg.solve(H + lam * eye, c)

    if np.linalg.norm(x(0.0)) <= radius:
        return x(0.0), 0.0
    upper = np.linalg.norm(c) / radius
    lam = brentq(lambda t: np.linalg.norm(x(t)) - radius, 0.0, upper,
                 xtol=1e-15, rtol=1e-15)  # fmt: skip
    return x(lam), lam


@pytest.fixture(scope="module")
def least_squares():
    """0.5 ||A x - b||^2 with 6 unknowns, its Hessian and its minimiser."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((40, 6))
    b = A @ rng.standard_normal(6) + rng.standard_normal(40)

    def fun(x):
        r = A @ x - b
        return 0.5 * r @ r, A.T @ r

    H = A.T @ A
    return fun, H, A.T @ b, np.linalg.solve(H, A.T @ b)


# ----------------------------------------------------- minimize, ball ---

METHODS = {
    "gd": {"method": "gd", "eta0": "1/L"},
    "gd-momentum": {"method": "gd", "eta0": "1/L", "momentum": 0.5},
    # Armijo compares values of f: it stalls where their changes fall below
    # the rounding of f (a gradient ~1e-6 here), so it runs a fixed count.
    "gd-line_search": {
        "learning_rate": "line_search",
        "eta0": 1.0,
        "tol": 0,
        "maxiter": 3000,
    },
    "adam": {"method": "adam", "eta0": 0.02},
    "newton": {"method": "newton"},
}


@pytest.mark.parametrize("factor, active", [(0.5, True), (2.0, False)])
@pytest.mark.parametrize("name", list(METHODS))
def test_ball_constrained_least_squares_matches_kkt(least_squares, name, factor,
                                                    active):  # fmt: skip
    fun, H, c, x_unconstrained = least_squares
    radius = factor * np.linalg.norm(x_unconstrained)
    reference, lam = ball_kkt(H, c, radius)
    assert (lam > 0) == active
    kw = dict(METHODS[name])
    if kw.get("eta0") == "1/L":
        kw["eta0"] = 1.0 / np.linalg.eigvalsh(H)[-1]
    if name == "newton":
        kw["hess"] = lambda x: H
    kw.setdefault("tol", 1e-9)
    kw.setdefault("maxiter", 20000)
    result = minimize(fun, np.zeros(6), jac=True, max_norm=radius, **kw)
    np.testing.assert_allclose(result.x, reference, rtol=0, atol=TOL)
    if not active:
        np.testing.assert_allclose(result.x, x_unconstrained, rtol=0, atol=TOL)
    assert result.constraint_active == active
    assert np.linalg.norm(result.x) <= radius * (1 + 1e-12)
    assert np.all(np.linalg.norm(result.trajectory, axis=1) <= radius * (1 + 1e-12))
    if name == "newton":  # one exact step on a quadratic
        assert result.nit == 1 and result.success
    elif kw["tol"] > 0:
        assert result.success and "projected gradient" in result.message


def test_adaptive_rules_project_in_their_metric(least_squares):
    # Adam's step is D^-1 m; the Euclidean projection of it has other fixed
    # points than the KKT point: here it would stop 0.1 away from it.
    fun, H, c, x_unconstrained = least_squares
    radius = 0.5 * np.linalg.norm(x_unconstrained)
    reference, _ = ball_kkt(H, c, radius)
    y = np.array([3.0, -1.0, 0.5, 0.0, 2.0, -4.0])
    D = np.array([0.1, 1.0, 10.0, 1.0, 0.5, 2.0])
    z = _FeasibleSet(None, None, 2.0).project(y, D)
    # KKT of min (z - y)^T D (z - y) s.t. ||z|| <= 2: D (z - y) + mu z = 0
    mu = -(D * (z - y)) @ z / (z @ z)
    assert mu > 0 and abs(np.linalg.norm(z) - 2.0) < 1e-12
    np.testing.assert_allclose(D * (z - y) + mu * z, 0.0, atol=1e-12)
    result = minimize(fun, np.zeros(6), jac=True, method="adam", eta0=0.02,
                      max_norm=radius, tol=1e-9, maxiter=20000)  # fmt: skip
    np.testing.assert_allclose(result.x, reference, rtol=0, atol=TOL)


def test_projected_line_search_is_armijo_along_the_projection_arc(least_squares):
    fun, H, c, x_unconstrained = least_squares
    radius = 0.3 * np.linalg.norm(x_unconstrained)
    result = minimize(fun, np.zeros(6), jac=True, learning_rate="line_search",
                      eta0=1.0, max_norm=radius, maxiter=30, tol=0)  # fmt: skip
    path, values = result.trajectory, result.fun_history
    for t in range(1, len(path)):
        g = fun(path[t - 1])[1]
        assert values[t] <= values[t - 1] + 1e-4 * g @ (path[t] - path[t - 1])
    assert result.nit == 30 and result.constraint_active


def test_newton_with_ball_stops_on_an_indefinite_hessian():
    H = np.diag([1.0, -1.0])
    result = minimize(lambda x: 0.5 * x @ H @ x, [0.5, 0.5], jac=lambda x: H @ x,
                      hess=lambda x: H, method="newton", max_norm=1.0)  # fmt: skip
    assert not result.success and "positive semidefinite" in result.message
    assert result.nit == 0


# ------------------------------------------------------ minimize, box ---


@pytest.fixture(scope="module")
def box_quadratic():
    """A coupled quadratic whose minimiser leaves the box on 3 coordinates."""
    rng = np.random.default_rng(1)
    M = rng.standard_normal((8, 8))
    H = M @ M.T / 8 + 0.5 * np.eye(8)
    c = 3.0 * rng.standard_normal(8)

    def fun(x):
        return 0.5 * x @ H @ x - c @ x, H @ x - c

    bounds = [(-1.0, 1.0), (None, 0.5), (0.0, None), (-0.2, 0.2)] + [(-2.0, 2.0)] * 4
    reference = scipy_minimize(fun, np.zeros(8), jac=True, method="L-BFGS-B",
                               bounds=bounds, options={"ftol": 1e-15,
                               "gtol": 1e-12, "maxiter": 10000})  # fmt: skip
    assert reference.success
    return fun, H, bounds, reference.x


@pytest.mark.parametrize(
    "kw",
    [
        {"learning_rate": "line_search", "eta0": 1.0, "tol": 0, "maxiter": 3000},
        {"eta0": 0.2, "momentum": 0.5, "tol": 1e-9},
        {"method": "adam", "eta0": 0.02, "tol": 1e-9},
    ],
    ids=["gd-line_search", "gd-momentum", "adam"],
)
def test_box_matches_lbfgsb(box_quadratic, kw):
    fun, H, bounds, reference = box_quadratic
    kw = {"maxiter": 20000, **kw}
    result = minimize(fun, np.zeros(8), jac=True, bounds=bounds, **kw)
    np.testing.assert_allclose(result.x, reference, rtol=0, atol=TOL)
    assert result.constraint_active
    lower = [-np.inf if lo is None else lo for lo, _ in bounds]
    upper = [np.inf if hi is None else hi for _, hi in bounds]
    assert np.all((result.trajectory >= lower) & (result.trajectory <= upper))
    at_bound = np.isclose(reference, lower) | np.isclose(reference, upper)
    assert at_bound.sum() >= 2 and result.success


def box_ball_kkt(H, c, bounds, radius):
    """argmin 0.5 x^T H x - c^T x over the box and ||x|| <= radius.

    Independent of skgd: for a multiplier mu >= 0 the box-constrained
    problem with H + mu I is solved by L-BFGS-B; mu > 0 makes ||x|| = radius
    (brentq), as the KKT conditions of the ball require.
    """

    def x(mu):
        Hmu = H + mu * np.eye(len(c))
        return scipy_minimize(lambda v: (0.5 * v @ Hmu @ v - c @ v, Hmu @ v - c),
                              np.zeros(len(c)), jac=True, method="L-BFGS-B",
                              bounds=bounds, options={"ftol": 1e-16, "gtol": 1e-13,
                              "maxiter": 10000}).x  # fmt: skip

    if np.linalg.norm(x(0.0)) <= radius:
        return x(0.0)
    mu = brentq(lambda m: np.linalg.norm(x(m)) - radius, 0.0, 100.0, xtol=1e-14)
    return x(mu)


def test_box_and_ball_together_match_the_kkt_reference(box_quadratic):
    fun, H, bounds, _ = box_quadratic
    radius = 1.5
    c = -fun(np.zeros(8))[1]
    reference = box_ball_kkt(H, c, bounds, radius)
    assert abs(np.linalg.norm(reference) - radius) < 1e-9
    box = Bounds([lo if lo is not None else -np.inf for lo, _ in bounds],
                 [hi if hi is not None else np.inf for _, hi in bounds])  # fmt: skip
    for kw in ({"learning_rate": "line_search", "eta0": 1.0, "tol": 0, "maxiter": 3000},
               {"method": "adam", "eta0": 0.02, "tol": 1e-9}):  # fmt: skip
        kw = {"maxiter": 20000, **kw}
        result = minimize(fun, np.zeros(8), jac=True, bounds=box, max_norm=radius, **kw)
        np.testing.assert_allclose(result.x, reference, rtol=0, atol=TOL)
        assert result.success and result.constraint_active
        assert abs(np.linalg.norm(result.x) - radius) < 1e-12


def test_weighted_projection_onto_box_and_ball_is_the_minimiser():
    rng = np.random.default_rng(2)
    lower, upper = np.array([0.2, -1.0, -3.0, -np.inf]), np.array([2.0, 1.0, 3.0, 0.1])
    feasible = _FeasibleSet(lower, upper, 1.5)
    bounds = list(zip(lower, upper, strict=True))
    for _ in range(3):
        y = 3.0 * rng.standard_normal(4)
        D = rng.uniform(0.1, 10.0, 4)
        z = feasible.project(y, D)
        # (z - y)^T D (z - y) = z^T D z - 2 (D y)^T z + const
        reference = box_ball_kkt(2 * np.diag(D), 2 * D * y, bounds, 1.5)
        np.testing.assert_allclose(z, reference, atol=1e-7)


# -------------------------------------------------------- validation ---


def square(x):
    return float(x @ x), 2 * x


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"bounds": [(1.0, 0.0), (0.0, 1.0)]}, "bounds.*lo <= hi.*coordinate 0"),
        ({"bounds": [(0.0, 1.0)]}, "bounds.*one .lo, hi. pair per coordinate"),
        ({"bounds": [(0.0, np.nan), (0.0, 1.0)]}, "bounds.*NaN"),
        ({"bounds": [0.0, 1.0]}, "bounds must be a sequence"),
        ({"bounds": Bounds([0.0, 0.0, 0.0], 1.0)}, "bounds"),
        ({"max_norm": 0.0}, "max_norm must be a positive number"),
        ({"max_norm": -1.0}, "max_norm"),
        ({"max_norm": "1"}, "max_norm"),
        ({"max_norm": np.inf}, "max_norm"),
        ({"bounds": [(2.0, 3.0), (2.0, 3.0)], "max_norm": 1.0}, "no feasible point"),
        ({"bounds": [(0.0, 1.0)] * 2, "method": "newton", "hess": lambda x: np.eye(2)},
         "bounds with method='newton'"),
    ],
)  # fmt: skip
def test_bad_constraints_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        minimize(square, [0.5, 0.5], jac=True, **kwargs)


def test_x0_is_projected_and_none_is_unbounded():
    result = minimize(square, [3.0, -3.0], jac=True, bounds=[(1.0, None), (None, 2.0)],
                      maxiter=0)  # fmt: skip
    np.testing.assert_array_equal(result.trajectory[0], [3.0, -3.0])
    result = minimize(square, [3.0, -3.0], jac=True, bounds=Bounds([1.0, -1.0], 2.0),
                      eta0=0.25, tol=1e-12)  # fmt: skip
    np.testing.assert_array_equal(result.trajectory[0], [2.0, -1.0])
    np.testing.assert_allclose(result.x, [1.0, 0.0], atol=1e-12)
    assert result.constraint_active and result.success
    result = minimize(square, [3.0, 4.0], jac=True, max_norm=1.0, maxiter=0)
    np.testing.assert_allclose(result.trajectory[0], [0.6, 0.8], rtol=1e-15)
    free = minimize(square, [3.0, 4.0], jac=True, eta0=0.25)
    assert free.constraint_active is False


# ------------------------------------------------ newton_solve(max_norm) ---


def split(theta, d, K):
    return theta[: d * K].reshape(d, K), theta[d * K :]


def regression(n=150, d=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * rng.uniform(0.5, 3.0, d)
    y = X @ rng.standard_normal(d) + 2.0 + rng.standard_normal(n)
    return X, y, rng.uniform(0.5, 2.0, n)


def ridge_ball_kkt(X, y, sw, alpha0, radius):
    """The constrained ridge fit with a free intercept, independently:
    weighted centring, then the KKT root search of :func:`ball_kkt`."""
    w = sw / sw.sum()
    Xc, yc = X - w @ X, y - w @ y
    H = Xc.T @ (w[:, None] * Xc) + alpha0 * np.eye(X.shape[1])
    coef, lam = ball_kkt(H, Xc.T @ (w * yc), radius)
    return coef, w @ y - (w @ X) @ coef, lam


@pytest.mark.parametrize("alpha0", [0.0, 1e-3])
@pytest.mark.parametrize("factor", [0.3, 0.9, 1.5])
@pytest.mark.parametrize("sparse", [False, True])
def test_newton_solve_ball_matches_the_ridge_kkt_reference(alpha0, factor, sparse):
    X, y, sw = regression()
    free = np.linalg.lstsq(np.column_stack([X, np.ones(len(y))]) * np.sqrt(sw)[:, None],
                           y * np.sqrt(sw), rcond=None)[0]  # fmt: skip
    radius = factor * np.linalg.norm(free[:-1])
    coef, intercept, lam = ridge_ball_kkt(X, y, sw, alpha0, radius)
    Xin = sp.csr_matrix(X) if sparse else X
    result = newton_solve("squared_error", Xin, y[:, None], sw, alpha0, True, 1,
                          tol=1e-12, max_norm=radius)  # fmt: skip
    W, b = split(result["theta"], X.shape[1], 1)
    np.testing.assert_allclose(W[:, 0], coef, rtol=0, atol=TOL)
    np.testing.assert_allclose(b, [intercept], rtol=0, atol=TOL)
    assert result["converged"]
    assert abs(result["multiplier"] - lam) <= TOL * max(1.0, lam)
    assert np.linalg.norm(W) <= radius
    if factor < 1:
        assert lam > 0 and abs(np.linalg.norm(W) - radius) < 1e-12
    else:
        assert result["multiplier"] == 0.0


def classification(K, n=300, d=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    Z = X @ rng.standard_normal((d, max(K, 2))) + rng.standard_normal((n, max(K, 2)))
    if K == 1:
        return X, (Z[:, :1] > 0).astype(float)
    return X, Z.argmax(axis=1)[:, None].astype(float)


PROBLEMS = [
    ("squared_error", 2, 0.0),
    ("log_loss", 1, 0.0),
    ("log_loss", 1, 1e-3),
    ("multinomial", 3, 1e-3),
    ("squared_hinge", 1, 1e-3),
    ("squared_hinge", 3, 0.0),
]


@pytest.mark.parametrize("loss, K, alpha0", PROBLEMS)
def test_ball_at_the_penalised_norm_gives_the_penalised_fit(loss, K, alpha0):
    # KKT: the penalised minimiser at alpha minimises J at alpha0 + lambda
    # with lambda = alpha - alpha0 > 0 and ||W|| = r, so it is the solution
    # of min J_alpha0 s.t. ||W|| <= r = ||W*(alpha)|| (unique: J_alpha0 plus
    # the ball is strictly convex in W here).
    if loss == "squared_error":
        X, y, sw = regression()
        Y = np.column_stack([y, -0.5 * y + 1.0])
    else:
        X, Y = classification(K)
        sw = np.ones(len(Y))
    alpha = 0.05
    penalised = newton_solve(loss, X, Y, sw, alpha, True, K, tol=1e-12)
    radius = np.linalg.norm(split(penalised["theta"], X.shape[1], K)[0])
    result = newton_solve(loss, X, Y, sw, alpha0, True, K, tol=1e-12,
                          max_norm=radius)  # fmt: skip
    np.testing.assert_allclose(result["theta"], penalised["theta"], rtol=0, atol=TOL)
    assert abs(result["multiplier"] - (alpha - alpha0)) < TOL
    assert result["converged"] and len(result["loss_curve"]) == result["n_iter"]
    # KKT with an independent gradient: grad J_alpha0 + lambda (W, 0) = 0
    W, b = split(result["theta"], X.shape[1], K)
    G = dloss(loss, X @ W + b, Y) * (sw / sw.sum())[:, None]
    gW, gb = X.T @ G + alpha0 * W, G.sum(axis=0)
    lam = -np.sum(gW * W) / np.sum(W * W)
    np.testing.assert_allclose(gW + lam * W, 0.0, atol=1e-8)
    np.testing.assert_allclose(gb, 0.0, atol=1e-8)
    inactive = newton_solve(loss, X, Y, sw, alpha, True, K, tol=1e-12,
                            max_norm=1.01 * radius)  # fmt: skip
    np.testing.assert_array_equal(inactive["theta"], penalised["theta"])
    assert inactive["multiplier"] == 0.0


def test_newton_solve_ball_budget_callback_and_validation():
    X, Y = classification(1)
    sw = np.ones(len(Y))
    calls = []
    full = newton_solve("log_loss", X, Y, sw, 0.0, True, 1, tol=1e-10, max_norm=0.5,
                        callback=lambda n, J, theta: calls.append((n, J)))  # fmt: skip
    assert [n for n, _ in calls] == list(range(1, full["n_iter"] + 1))
    np.testing.assert_array_equal([J for _, J in calls], full["loss_curve"])
    # the last step's J is J at alpha = 0 of the final point
    W, b = split(full["theta"], X.shape[1], 1)
    J = np.mean(np.logaddexp(0, -(2 * Y - 1) * (X @ W + b)))
    assert abs(full["loss_curve"][-1] - J) < 1e-12
    short = newton_solve("log_loss", X, Y, sw, 0.0, True, 1, tol=1e-10, max_norm=0.5,
                         max_iter=3)  # fmt: skip
    assert short["n_iter"] == 3 and not short["converged"]
    assert np.linalg.norm(short["theta"][:-1]) <= 0.5
    stopped = newton_solve("log_loss", X, Y, sw, 0.0, True, 1, tol=1e-10,
                           max_norm=0.5, callback=lambda n, J, t: n == 4)  # fmt: skip
    assert stopped["stopped"] and stopped["n_iter"] == 4
    assert np.linalg.norm(stopped["theta"][:-1]) <= 0.5
    for bad in (0.0, -1.0, np.nan, "1"):
        with pytest.raises(ValueError, match="max_norm"):
            newton_solve("log_loss", X, Y, sw, 0.0, True, 1, max_norm=bad)

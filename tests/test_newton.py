"""newton_solve (SPEC section 4): exact minimisers of J, checked against
scikit-learn's exact solvers, an independent NumPy gradient, and the
weight / dtype / sparse equivalences of SPEC section 2."""

import itertools
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
from _reference import dloss, row_loss
from sklearn.datasets import (
    load_breast_cancer,
    load_diabetes,
    load_digits,
    make_regression,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from threadpoolctl import threadpool_info, threadpool_limits

import skgd._newton as newton_module
from skgd._newton import newton_solve

TOL = 1e-10
LOSSES = [
    ("log_loss", 1),
    ("multinomial", 4),
    ("squared_hinge", 1),
    ("squared_hinge", 3),
    ("squared_error", 1),
    ("squared_error", 3),
]
LOSS_IDS = [f"{loss}-K{K}" for loss, K in LOSSES]


def split(theta, d, K):
    """W (d, K) and b (K,) from theta."""
    return theta[: d * K].reshape(d, K), theta[d * K :]


def rel_err(a, b):
    """Max-norm error of a relative to the max-norm of b."""
    return np.max(np.abs(np.asarray(a) - b)) / np.max(np.abs(b))


def solve(loss, X, Y, K, alpha, sw=None, fit_intercept=True, **kw):
    sw = np.ones(X.shape[0]) if sw is None else sw
    kw.setdefault("tol", TOL)
    return newton_solve(loss, X, Y, sw, alpha, fit_intercept, K, **kw)


def reference_gradient(loss, X, Y, K, alpha, sw, theta):
    """Gradient of J from tests/_reference.py (independent of skgd)."""
    d = X.shape[1]
    W, b = split(theta, d, K)
    Z = np.asarray(X @ W) + b
    G = dloss(loss, Z, Y) * (sw / sw.sum())[:, None]
    return np.concatenate([(np.asarray(X.T @ G) + alpha * W).ravel(), G.sum(0)])


def reference_objective(loss, X, Y, K, alpha, sw, theta):
    W, b = split(theta, X.shape[1], K)
    Z = np.asarray(X @ W) + b
    return np.average(row_loss(loss, Z, Y), weights=sw) + 0.5 * alpha * np.sum(W**2)


def problem(loss, K, n=300, d=12, seed=0, density=None):
    """Random data with targets from a hidden linear model plus noise."""
    rng = np.random.default_rng(seed)
    if density is None:
        X = rng.standard_normal((n, d))
    else:
        X = sp.random(
            n, d, density=density, format="csr", random_state=seed
        ) * rng.uniform(0.5, 2.0)
        X.data = rng.standard_normal(X.nnz)
    Z = np.asarray(X @ rng.standard_normal((d, K))) + rng.standard_normal((n, K))
    if loss == "squared_error":
        return X, Z
    if K == 1:
        return X, (Z > 0).astype(float)
    return X, Z.argmax(axis=1)[:, None].astype(float)


@pytest.fixture(scope="module")
def breast_cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return StandardScaler().fit_transform(X), y


# --------------------------------------------- against scikit-learn ---

# lbfgs at tol=1e-12 stops with a gradient of ~5e-9, ~1e-6 relative away
# from the optimum (3.6e-6 on the digits intercepts); the Newton solvers of
# scikit-learn reach it to ~1e-11.
SKLEARN_RTOL = {"newton-cg": 1e-6, "newton-cholesky": 1e-6, "lbfgs": 2e-5}


@pytest.mark.parametrize("solver", ["newton-cholesky", "lbfgs"])
def test_binary_logistic_matches_sklearn(breast_cancer, solver):
    X, y = breast_cancer
    n, d = X.shape
    alpha = 1e-3
    result = solve("log_loss", X, y[:, None].astype(float), 1, alpha)
    with threadpool_limits(1):
        ref = LogisticRegression(
            C=1 / (alpha * n), tol=1e-12, max_iter=10000, solver=solver
        ).fit(X, y)
    W, b = split(result["theta"], d, 1)
    assert rel_err(W[:, 0], ref.coef_[0]) < SKLEARN_RTOL[solver]
    assert rel_err(b, ref.intercept_) < SKLEARN_RTOL[solver]
    assert result["converged"] and 1 <= result["n_iter"] < 20


@pytest.mark.parametrize("solver", ["newton-cholesky", "lbfgs"])
def test_sparse_logistic_matches_sklearn(solver):
    rng = np.random.default_rng(0)
    n, d = 2000, 500
    X = sp.random(n, d, density=20 / d, format="csr", random_state=0)
    X.data = rng.standard_normal(X.nnz)
    y = (X @ rng.standard_normal(d) + 0.5 * rng.standard_normal(n) > 0).astype(int)
    alpha = 1e-3
    result = solve("log_loss", X, y[:, None].astype(float), 1, alpha)
    with threadpool_limits(1):
        ref = LogisticRegression(
            C=1 / (alpha * n), tol=1e-12, max_iter=10000, solver=solver
        ).fit(X, y)
    W, b = split(result["theta"], d, 1)
    assert rel_err(W[:, 0], ref.coef_[0]) < SKLEARN_RTOL[solver]
    assert rel_err(b, ref.intercept_) < SKLEARN_RTOL[solver]


@pytest.mark.parametrize("solver", ["newton-cg", "lbfgs"])
def test_multinomial_matches_sklearn(digits, solver):
    X, y = digits
    n, d = X.shape
    K, alpha = 10, 1e-2
    result = solve("multinomial", X, y[:, None].astype(float), K, alpha)
    with threadpool_limits(1):
        ref = LogisticRegression(
            C=1 / (alpha * n), tol=1e-12, max_iter=10000, solver=solver
        ).fit(X, y)
    W, b = split(result["theta"], d, K)
    assert rel_err(W, ref.coef_.T) < SKLEARN_RTOL[solver]
    # scikit-learn's convention, the symmetric gauge: intercepts sum to 0
    assert rel_err(b, ref.intercept_) < SKLEARN_RTOL[solver]
    assert abs(b.sum()) < 1e-12
    assert np.abs(W.sum(axis=1)).max() < 1e-12


def test_full_multinomial_hessian_matches_sklearn():
    """Small (d + 1) K: the assembled full Hessian path, dense and CSR."""
    X, Y = problem("multinomial", 3, n=400, d=6, seed=3)
    Xs = X.copy()
    Xs[np.abs(Xs) < 0.5] = 0.0
    n, d = X.shape
    alpha = 1e-3
    assert (d + 1) * 3 <= newton_module._MAX_FULL_MULTINOMIAL
    ref = LogisticRegression(
        C=1 / (alpha * n), tol=1e-12, max_iter=1000, solver="newton-cholesky"
    ).fit(Xs, Y[:, 0])
    for data in (Xs, sp.csr_matrix(Xs)):
        W, b = split(solve("multinomial", data, Y, 3, alpha)["theta"], d, 3)
        assert rel_err(W, ref.coef_.T) < 1e-8
        assert rel_err(b, ref.intercept_) < 1e-8


def test_ridge_matches_sklearn():
    X, y = load_diabetes(return_X_y=True)
    n, d = X.shape
    alpha = 1e-3
    result = solve("squared_error", X, y[:, None], 1, alpha)
    ref = Ridge(alpha=alpha * n, solver="cholesky").fit(X, y)
    W, b = split(result["theta"], d, 1)
    assert rel_err(W[:, 0], ref.coef_) < 1e-10
    assert rel_err(b, [ref.intercept_]) < 1e-10
    assert result["n_iter"] == 1 and result["converged"]
    assert len(result["loss_curve"]) == 1


def test_multi_output_ridge_matches_sklearn():
    X, Y = make_regression(
        n_samples=400, n_features=20, n_targets=3, noise=5.0, random_state=0
    )
    X = X + 3.0  # an intercept to centre away
    n, d = X.shape
    sw = np.random.default_rng(0).uniform(0.0, 3.0, n)
    alpha = 1e-2
    result = solve("squared_error", X, Y, 3, alpha, sw=sw)
    ref = Ridge(alpha=alpha * sw.sum(), solver="cholesky").fit(X, Y, sample_weight=sw)
    W, b = split(result["theta"], d, 3)
    assert rel_err(W, ref.coef_.T) < 1e-10
    assert rel_err(b, ref.intercept_) < 1e-10


def test_squared_hinge_matches_linear_svc(breast_cancer, digits):
    for (X, y), K in ((breast_cancer, 1), (digits, 10)):
        n, d = X.shape
        alpha = 1e-2
        result = solve(
            "squared_hinge", X, y[:, None].astype(float), K, alpha, fit_intercept=False
        )
        ref = LinearSVC(
            loss="squared_hinge",
            C=1 / (alpha * n),
            fit_intercept=False,
            dual=False,
            tol=1e-12,
            max_iter=100000,
        ).fit(X, y)
        W, b = split(result["theta"], d, K)
        assert rel_err(W, ref.coef_.T) < 1e-6
        assert not b.any()
        assert result["converged"]


# ------------------------------------------- exactness and invariances ---


@pytest.mark.parametrize(("loss", "K"), LOSSES, ids=LOSS_IDS)
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_gradient_vanishes(loss, K, fit_intercept):
    X, Y = problem(loss, K)
    sw = np.random.default_rng(1).uniform(0.0, 2.0, X.shape[0])
    calls = []
    result = solve(
        loss,
        X,
        Y,
        K,
        1e-2,
        sw=sw,
        fit_intercept=fit_intercept,
        callback=lambda *args: calls.append(args),
    )
    g = reference_gradient(loss, X, Y, K, 1e-2, sw, result["theta"])
    if not fit_intercept:
        g = g[: -K or None]
        assert not result["theta"][-K:].any()
    assert np.abs(g).max() < 1e-9
    assert result["converged"] and result["n_iter"] >= 1
    curve = result["loss_curve"]
    assert len(curve) == result["n_iter"]
    assert np.all(np.diff(curve) <= 0)
    assert [c[0] for c in calls] == list(range(1, result["n_iter"] + 1))
    assert [c[1] for c in calls] == curve
    J = reference_objective(loss, X, Y, K, 1e-2, sw, result["theta"])
    assert curve[-1] == pytest.approx(J, rel=1e-12)


@pytest.mark.parametrize(("loss", "K"), LOSSES, ids=LOSS_IDS)
def test_float32_gives_float64_answer(loss, K):
    X, Y = problem(loss, K)
    X32 = X.astype(np.float32)
    theta32 = solve(loss, X32, Y, K, 1e-2)["theta"]
    # the same values in float64: identical arithmetic
    assert rel_err(theta32, solve(loss, X32.astype(float), Y, K, 1e-2)["theta"]) < 1e-12
    # the float64 original: differs only by the rounding of X
    assert rel_err(theta32, solve(loss, X, Y, K, 1e-2)["theta"]) < 1e-5


@pytest.mark.parametrize(("loss", "K"), LOSSES, ids=LOSS_IDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_csr_equals_dense(loss, K, dtype):
    X, Y = problem(loss, K, d=30, density=0.2)
    X = X.astype(dtype)
    dense = solve(loss, X.toarray(), Y, K, 1e-2)["theta"]
    assert rel_err(solve(loss, X, Y, K, 1e-2)["theta"], dense) < 1e-10
    assert rel_err(solve(loss, sp.csr_array(X), Y, K, 1e-2)["theta"], dense) < 1e-10


@pytest.mark.parametrize(("loss", "K"), LOSSES, ids=LOSS_IDS)
def test_integer_weights_equal_repeated_rows(loss, K):
    X, Y = problem(loss, K, n=200)
    sw = np.random.default_rng(2).integers(0, 4, X.shape[0]).astype(float)
    rep = np.repeat(np.arange(X.shape[0]), sw.astype(int))
    weighted = solve(loss, X, Y, K, 1e-2, sw=sw)["theta"]
    repeated = solve(loss, X[rep], Y[rep], K, 1e-2)["theta"]
    assert rel_err(weighted, repeated) < 1e-8
    kept = sw > 0  # zero weights equal removed rows
    removed = solve(loss, X[kept], Y[kept], K, 1e-2, sw=sw[kept])["theta"]
    assert rel_err(weighted, removed) < 1e-10


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("sparse", [False, True])
def test_closed_form_wide_and_unregularised(fit_intercept, sparse):
    """d > n (the dual form) and alpha = 0: the minimum-norm minimiser."""
    rng = np.random.default_rng(4)
    n, d = 30, 80
    X = rng.standard_normal((n, d)) + 2.0
    Y = rng.standard_normal((n, 2))
    sw = rng.integers(1, 3, n).astype(float)
    data = sp.csr_matrix(X) if sparse else X
    for alpha in (1e-2, 0.0):
        result = solve("squared_error", data, Y, 2, alpha, sw, fit_intercept)
        theta = result["theta"]
        assert np.isfinite(theta).all() and result["n_iter"] == 1
        g = reference_gradient("squared_error", X, Y, 2, alpha, sw, theta)
        assert np.abs(g[: d * 2 + 2 * fit_intercept]).max() < 1e-10
    # alpha = 0 interpolates, with the minimum-norm W (lstsq on centred data)
    w = sw / sw.sum()
    mu_x, mu_y = (w @ X, w @ Y) if fit_intercept else (0.0, 0.0)
    A = np.sqrt(w)[:, None] * (X - mu_x)
    W_min = np.linalg.lstsq(A, np.sqrt(w)[:, None] * (Y - mu_y), rcond=None)[0]
    assert rel_err(split(theta, d, 2)[0], W_min) < 1e-8
    # the same answer through the primal form (zero-weight rows make n > d)
    Xp = np.vstack([X, np.ones((60, d))])
    Yp = np.vstack([Y, np.ones((60, 2))])
    primal = solve(
        "squared_error", Xp, Yp, 2, 0.0, np.r_[sw, np.zeros(60)], fit_intercept
    )
    assert rel_err(primal["theta"], theta) < 1e-8


def test_closed_form_collinear_unregularised():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((100, 5))
    X = np.hstack([X, 2.0 * X[:, :2]])  # rank 5 of 7
    Y = rng.standard_normal((100, 1))
    sw = np.ones(100)
    result = solve("squared_error", X, Y, 1, 0.0)
    assert np.abs(result["theta"]).max() < 10
    g = reference_gradient("squared_error", X, Y, 1, 0.0, sw, result["theta"])
    assert np.abs(g).max() < 1e-12


@pytest.mark.parametrize(("loss", "K"), LOSSES, ids=LOSS_IDS)
def test_conjugate_gradient_path_agrees(loss, K, monkeypatch):
    """Newton-CG (large d K) gives the assembled-Hessian answer."""
    X, Y = problem(loss, K, density=0.5)
    reference = solve(loss, X.toarray(), Y, K, 1e-2)["theta"]
    monkeypatch.setattr(newton_module, "_MAX_DENSE_HESSIAN", 0)
    monkeypatch.setattr(newton_module, "_MAX_FULL_MULTINOMIAL", 0)
    monkeypatch.setattr(newton_module, "_MAX_GRAM", 0)
    for data in (X, X.toarray()):
        result = solve(loss, data, Y, K, 1e-2)
        assert result["converged"]
        assert rel_err(result["theta"], reference) < 1e-8
        assert np.all(np.diff(result["loss_curve"]) <= 0)


def record_preconditioning(monkeypatch):
    """A list that fills with the products of each CG solve (ints) and a
    "build" for each strong preconditioner factorised, and a list of the
    number of blocks of each."""
    log, blocks_built = [], []
    took = newton_module._Preconditioner.took
    column_solvers = newton_module._column_solvers
    monkeypatch.setattr(
        newton_module._Preconditioner,
        "took",
        lambda self, products: log.append(products) or took(self, products),
    )
    monkeypatch.setattr(
        newton_module,
        "_column_solvers",
        lambda blocks: (
            log.append("build")
            or blocks_built.append(len(blocks))
            or column_solvers(blocks)
        ),
    )
    return log, blocks_built


def assert_switched_and_kept(log, at_start=False):
    """The strong preconditioner is built at the start (``at_start``) or
    after the first slow solve, Jacobi solves before it being cut after
    ``_SLOW_CG`` + 1 products; it is rebuilt only after a solve that took
    more than ``_SLOW_CG`` products, and kept for at least one solve."""
    slow = newton_module._SLOW_CG
    first = log.index("build")
    if at_start:
        assert first == 0
    else:
        assert log[first - 1] == slow + 1
        assert all(p <= slow + 1 for p in log[:first])
    for before, item in itertools.pairwise(log[first:]):
        assert (item == "build") == (before != "build" and before > slow)
    solves_after = sum(item != "build" for item in log[first:])
    assert log.count("build") < solves_after


@pytest.mark.parametrize("m", [30, 300])  # batched inverses; factors
def test_column_solvers_match_numpy(m):
    """Each column's system solved (NumPy's solve); a singular block gets
    the minimum-norm solution (NumPy's pinv)."""
    rng = np.random.default_rng(0)
    K = 4
    A = rng.standard_normal((K, m, 2 * m))
    blocks = A @ A.transpose(0, 2, 1) + 1e-3 * np.eye(m)
    blocks[2] = A[2, :, :5] @ A[2, :, :5].T  # rank 5
    r = rng.standard_normal((m, K))
    r[:, 2] = A[2, :, :5] @ rng.standard_normal(5)  # in its range
    expected = np.column_stack(
        [
            np.linalg.pinv(blocks[k]) @ r[:, k]
            if k == 2
            else np.linalg.solve(blocks[k], r[:, k])
            for k in range(K)
        ]
    )
    z = newton_module._column_solvers(blocks.copy())(r)
    assert rel_err(z, expected) < 1e-8


@pytest.mark.parametrize("blocks_at_start", [True, False])
def test_multinomial_block_preconditioned_cg(digits, blocks_at_start, monkeypatch):
    """The default multinomial path (CG preconditioned by the per-class
    blocks, built at the start for m <= ``_MAX_BLOCKS_AT_START``, else after
    a slow Jacobi solve, and kept across steps) versus the full Hessian:
    same optimum."""
    X, y = digits
    X, Y = X[:600], y[:600, None].astype(float)
    if not blocks_at_start:
        monkeypatch.setattr(newton_module, "_MAX_BLOCKS_AT_START", 0)
    log, blocks_built = record_preconditioning(monkeypatch)
    cg = solve("multinomial", X, Y, 10, 1e-3)
    assert_switched_and_kept(log, at_start=blocks_at_start)
    assert set(blocks_built) == {10}
    monkeypatch.setattr(newton_module, "_MAX_FULL_MULTINOMIAL", 10**6)
    full = solve("multinomial", X, Y, 10, 1e-3)
    assert rel_err(cg["theta"], full["theta"]) < 1e-8


def test_warm_start_and_max_iter():
    X, Y = problem("log_loss", 1)
    optimum = solve("log_loss", X, Y, 1, 1e-3)
    truncated = solve("log_loss", X, Y, 1, 1e-3, max_iter=1)
    assert truncated["n_iter"] == 1 and not truncated["converged"]
    theta0 = optimum["theta"] + 1e-3 * np.random.default_rng(0).standard_normal(13)
    warm = solve("log_loss", X, Y, 1, 1e-3, theta0=theta0)
    assert warm["n_iter"] < optimum["n_iter"]
    assert rel_err(warm["theta"], optimum["theta"]) < 1e-9
    again = solve("log_loss", X, Y, 1, 1e-3, theta0=optimum["theta"])
    assert again["n_iter"] == 1 and again["converged"]


@pytest.mark.parametrize("path", ["assembled", "cg"])
@pytest.mark.parametrize(("loss", "K"), LOSSES, ids=LOSS_IDS)
def test_grouped_row_blocks_do_not_depend_on_threads(loss, K, path, monkeypatch):
    """Large dense X: the row blocks' sums (Hessians, Gram matrices,
    products) are taken in fixed groups, on threads. Shrunk here so that 3000
    x 12 has 30 blocks in groups: the answer is the same bit for bit on one
    thread or two (which ran the groups on a pool), and the ungrouped one to
    rounding; a solve leaves BLAS's threads as it found them."""
    X, Y = problem(loss, K, n=3000, d=12)
    if path == "cg":
        monkeypatch.setattr(newton_module, "_MAX_DENSE_HESSIAN", 0)
        monkeypatch.setattr(newton_module, "_MAX_FULL_MULTINOMIAL", 0)
        monkeypatch.setattr(newton_module, "_MAX_GRAM", 0)
    reference = solve(loss, X, Y, K, 1e-2)["theta"]
    monkeypatch.setattr(newton_module, "_SMALL_WORK", 1)  # grouped from n d K = 1
    monkeypatch.setattr(newton_module, "_BLOCK_BYTES", 8 * 12 * 100)
    monkeypatch.setattr(newton_module, "_MIN_BLOCK_ROWS", 1)
    pools = []

    class RecordedPool(newton_module.ThreadPoolExecutor):
        def __init__(self, threads):
            pools.append(threads)
            super().__init__(threads)

    monkeypatch.setattr(newton_module, "ThreadPoolExecutor", RecordedPool)
    thetas = []
    for threads in (1, 2):
        monkeypatch.setattr(
            newton_module, "_openmp_effective_n_threads", lambda n=threads: n
        )
        blas_before = threadpool_info()
        result = solve(loss, X, Y, K, 1e-2)
        assert threadpool_info() == blas_before
        assert newton_module._GROUP_THREADS.get() == 0
        assert result["converged"]
        thetas.append(result["theta"])
        assert bool(pools) == (threads == 2)
    assert np.array_equal(thetas[0], thetas[1])
    assert rel_err(thetas[0], reference) < 1e-9
    assert not np.array_equal(thetas[0], reference)  # the sums were grouped


def test_no_n_by_d_float64_copy():
    """A float32 X of 50000 x 40 is only converted block by block: the peak
    traced memory stays well below one float64 copy (n d 8 bytes). The rest
    is n x K arrays (decision values, curvatures, ...): 8 % of n d 8 each
    for K = 3."""
    rng = np.random.default_rng(0)
    n, d = 50_000, 40
    X = rng.standard_normal((n, d), dtype=np.float32)
    Z = X @ rng.standard_normal((d, 3))
    cases = [
        ("log_loss", (Z[:, :1] > 0).astype(float), 1, 0.35),
        ("squared_error", Z[:, :1].astype(float), 1, 0.35),
        ("squared_hinge", (Z[:, :1] > 0).astype(float), 1, 0.35),
        ("multinomial", Z.argmax(axis=1)[:, None].astype(float), 3, 0.65),
    ]
    sw = np.ones(n)
    for loss, Y, K, fraction in cases:
        tracemalloc.start()
        try:
            result = newton_solve(loss, X, Y, sw, 1e-3, True, K, tol=1e-6)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert result["converged"]
        assert peak < fraction * n * d * 8, (loss, peak / (n * d * 8))


@pytest.mark.parametrize(("loss", "K"), [("log_loss", 1), ("squared_error", 1)])
def test_callback_can_stop(loss, K):
    X, Y = problem(loss, K)
    seen = []

    def stop_now(n_iter, J, theta):
        seen.append((n_iter, J, theta.copy()))
        return True

    result = solve(loss, X, Y, K, 1e-2, callback=stop_now)
    assert result["stopped"] and result["n_iter"] == 1 and len(seen) == 1
    np.testing.assert_array_equal(seen[0][2], result["theta"])
    assert seen[0][1] == result["loss_curve"][0]


def test_hinge_is_rejected():
    X, Y = problem("log_loss", 1)
    with pytest.raises(ValueError, match="twice differentiable"):
        solve("hinge", X, Y, 1, 1e-2)


@pytest.mark.parametrize(
    ("loss", "K"), [("log_loss", 1), ("squared_hinge", 3), ("squared_error", 1)]
)
def test_slow_conjugate_gradients_switch_to_a_sampled_hessian(loss, K, monkeypatch):
    """Newton-CG on correlated dense columns: after a CG solve of more than
    ``_SLOW_CG`` products the preconditioner becomes the Hessian estimated
    on sampled rows, kept while solves are fast; the optimum is the
    assembled-Hessian one."""
    rng = np.random.default_rng(0)
    n, d = 2500, 1100
    X = rng.standard_normal((n, 20)) @ rng.standard_normal((20, d))
    X += 0.3 * rng.standard_normal((n, d))
    X *= np.exp(rng.uniform(-1, 1, d))
    Z = X @ (rng.standard_normal((d, K)) / X.std(axis=0)[:, None] / 10)
    Z += rng.standard_normal((n, K))
    if loss == "squared_error":
        Y = Z
    else:
        Y = (Z > 0).astype(float) if K == 1 else Z.argmax(axis=1)[:, None] * 1.0
    monkeypatch.setattr(newton_module, "_MAX_GRAM", 0)  # squared error by CG
    log, blocks_built = record_preconditioning(monkeypatch)
    result = solve(loss, X, Y, K, 1e-3)
    assert result["converged"] and set(blocks_built) == {K}
    assert_switched_and_kept(log)
    monkeypatch.setattr(newton_module, "_MAX_DENSE_HESSIAN", 10**6)
    assembled = solve(loss, X, Y, K, 1e-3)["theta"]
    assert rel_err(result["theta"], assembled) < 1e-8

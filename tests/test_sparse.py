"""Sparse (CSR) minibatches: lazy O(nnz) updates against the dense path."""

import numpy as np
import pytest
import scipy.sparse as sp
from skgd._core._data import CSRDataset
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from skgd import HingeSVM, SGDLinearRegressor, SGDLogisticClassifier

COMMON = dict(alpha=1e-3, max_iter=8, tol=None, random_state=0, batch_size=32)


def _sparse_problem():
    rng = np.random.RandomState(0)
    X = sp.random(1500, 300, density=0.02, random_state=0, format="csr")
    w = rng.randn(300)
    return X, X @ w, (X @ w > 0).astype(int)


@pytest.mark.parametrize("Est", [SGDLinearRegressor, SGDLogisticClassifier])
@pytest.mark.parametrize(
    "params",
    [
        dict(),
        dict(average=False),
        dict(average=100),
        dict(learning_rate="invscaling", eta0=0.5),
        dict(learning_rate="cosine"),
        # The scale a underflows past 1e-9 every ~70 updates (a flush).
        dict(alpha=0.5, learning_rate="constant", eta0=0.5),
        # eta alpha = 1: the decay factor is 0, a dense step.
        dict(alpha=1.0, learning_rate="constant", eta0=1.0),
        dict(max_norm=0.5),
    ],
)
def test_plain_sgd_sparse_equals_dense(Est, params):
    """Plain SGD on CSR (W = a v) is the dense fit, to rounding: the
    coefficients, the averages and the objective of every epoch."""
    X, yr, yc = _sparse_problem()
    y = yr if Est is SGDLinearRegressor else yc
    a = Est(solver="sgd", **{**COMMON, **params}).fit(X, y)
    b = Est(solver="sgd", **{**COMMON, **params}).fit(X.toarray(), y)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(a.intercept_, b.intercept_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-10)


def test_plain_sgd_sparse_equals_dense_with_several_outputs():
    X, yr, _ = _sparse_problem()
    Y = np.column_stack([yr, -2 * yr + 1])
    a = SGDLinearRegressor(solver="sgd", **COMMON).fit(X, Y)
    b = SGDLinearRegressor(solver="sgd", **COMMON).fit(X.toarray(), Y)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-10)


def _unsorted(X):
    """X with every row's stored values in reverse column order."""
    Y = X.copy()
    for r in range(Y.shape[0]):
        lo, hi = Y.indptr[r], Y.indptr[r + 1]
        Y.indices[lo:hi] = Y.indices[lo:hi][::-1].copy()
        Y.data[lo:hi] = Y.data[lo:hi][::-1].copy()
    Y.has_sorted_indices = False
    return Y


def test_column_parts_split_sorted_rows():
    """Two column parts on sorted rows: row r's part 0 ends at its first
    value in a column >= the split, a multiple of 8 columns near the
    column below which lies half a batch's expected cost (a cost per
    stored value, per distinct column and per column absent from the batch
    before; column j is in a batch of 32 rows with probability p_j = 1 -
    (1 - f_j)^32, f_j its share of the rows, and new in it with
    probability p_j (1 - p_j)), a new split for new costs; on skewed
    column frequencies the split by columns lies far above the split by
    values, and further up with the new columns' cost. One part for unsorted
    rows (the split column still known: the lazy rules filter rows by it)
    and for narrow X."""
    rng = np.random.default_rng(0)
    harmonic = 1 / np.arange(1, 401)
    cols = rng.choice(400, size=(3000, 20), p=harmonic / harmonic.sum())
    X = sp.csr_matrix(
        (rng.random(cols.size), cols.ravel(), np.arange(0, cols.size + 1, 20)),
        shape=(3000, 400),
    )
    X.sum_duplicates()  # (and sorts each row's indices)
    counts = np.bincount(X.indices, minlength=400)
    presence = 1 - (1 - counts / 3000) ** 32
    data = CSRDataset(X, 1, 2)
    splits = {}
    for costs in ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 1.0, 0.5), (1.0, 1.0, 0.0)):
        data.prepare_minibatches(32, *costs)
        assert data.n_parts == 2
        cut = data.cut_positions()
        split = X.indices[cut[cut < X.indptr[1:]]].min()
        assert split % 8 == 0 and split == data.split
        cost = costs[0] * 32 * counts / 3000 + costs[1] * presence
        cost += costs[2] * presence * (1 - presence)
        assert (
            abs(cost[:split].sum() - cost.sum() / 2)
            <= cost[split - 8 : split + 8].sum()
        )
        for r in range(X.shape[0]):
            row = X.indices[X.indptr[r] : X.indptr[r + 1]]
            assert cut[r] == X.indptr[r] + np.count_nonzero(row < split)
        splits[costs] = split
    assert splits[0.0, 1.0, 0.0] > 2 * splits[1.0, 0.0, 0.0]
    assert splits[0.0, 1.0, 0.5] > splits[0.0, 1.0, 0.0]  # rare columns cost more
    unsorted = CSRDataset(_unsorted(X), 1, 2)
    unsorted.prepare_minibatches(32, 1.0, 1.0)
    assert unsorted.n_parts == 1 and unsorted.split == data.split
    # One unsorted row among 400k values (the cuts found on two threads).
    big = sp.random(20000, 400, density=0.05, random_state=1, format="csr")
    big.sort_indices()
    lo, hi = big.indptr[12345], big.indptr[12346]
    big.indices[lo:hi] = big.indices[lo:hi][::-1].copy()
    one_row = CSRDataset(big, 1, 2)
    one_row.prepare_minibatches(32, 1.0, 1.0)
    assert one_row.n_parts == 1
    narrow = CSRDataset(sp.random(100, 15, density=0.5, format="csr"), 1, 2)
    narrow.prepare_minibatches(32, 1.0, 1.0)
    assert narrow.n_parts == 1


def _same_bits_on_1_to_3_threads(X, y, params):
    """The fit of ``SGDLogisticClassifier(**params, random_state=0)`` with
    1, 2 and 3 OpenMP threads, checked bit-identical (coefficients and
    loss curve); returns one of them."""
    fits = []
    for threads in (1, 2, 3):
        with threadpool_limits(limits=threads, user_api="openmp"):
            est = SGDLogisticClassifier(**params, random_state=0)
            fits.append(est.fit(X, y))
    for est in fits[1:]:
        assert np.array_equal(est.coef_, fits[0].coef_)
        assert np.array_equal(est.loss_curve_, fits[0].loss_curve_)
    return fits[0]


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("average", [False, True])
def test_plain_sgd_column_parts_on_threads(n_classes, average):
    """Batches of ~6,400 stored values run their two column parts on two
    threads: the same bits with 1, 2 or 3 threads, the dense fit to
    rounding, and the one-part fit (rows unsorted) to rounding."""
    X = sp.random(2000, 3000, density=0.03, random_state=0, format="csr")
    X.sort_indices()
    y = np.arange(2000) % n_classes
    params = dict(solver="sgd", average=average, batch_size=64, max_iter=2, tol=None)
    fit = _same_bits_on_1_to_3_threads(X, y, params)
    for other in (X.toarray(), _unsorted(X)):
        ref = SGDLogisticClassifier(**params, random_state=0).fit(other, y)
        np.testing.assert_allclose(fit.coef_, ref.coef_, rtol=0, atol=1e-10)
        np.testing.assert_allclose(fit.loss_curve_, ref.loss_curve_, rtol=1e-10)


@pytest.mark.parametrize(
    "params",
    [
        dict(solver="sgd", momentum=0.9),
        dict(solver="sgd", momentum=0.9, nesterov=True),
        dict(solver="adagrad"),
        dict(solver="rmsprop"),
        dict(solver="adam"),
    ],
)
def test_lazy_rules_exact_when_every_column_is_present(params):
    """A column present in every batch is updated exactly as on dense data."""
    rng = np.random.RandomState(1)
    X = rng.randn(400, 6) + 3.0
    y = (X[:, 0] - X[:, 1] > 0).astype(int)
    a = SGDLogisticClassifier(**COMMON, **params).fit(sp.csr_matrix(X), y)
    b = SGDLogisticClassifier(**COMMON, **params).fit(X, y)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=0, atol=1e-10)


@pytest.mark.parametrize(
    "params",
    [
        dict(solver="sgd", momentum=0.9),
        dict(solver="adagrad"),
        dict(solver="adam"),
    ],
)
def test_lazy_rules_step_densely_when_the_decay_factor_is_not_positive(params):
    """eta alpha >= 1: no decay can be deferred, every update touches every
    coordinate, and the sparse fit is the dense one."""
    X, _, y = _sparse_problem()
    kw = dict(COMMON, max_iter=3, alpha=1.0, learning_rate="constant", eta0=1.0)
    a = SGDLogisticClassifier(**kw, **params).fit(X, y)
    b = SGDLogisticClassifier(**kw, **params).fit(X.toarray(), y)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-10)


@pytest.mark.parametrize("solver", ["adagrad", "adam"])
@pytest.mark.parametrize("average", [False, True])
def test_lazy_rules_skip_a_zero_weight_batch(solver, average):
    """A step's column parts run with the next batch's forward (or at the
    epoch's end): a batch of zero weight between them (skipped: no update,
    not counted) changes nothing, and the fit is the fit without its rows,
    to the bit for the coefficients (the epochs' objectives to rounding:
    the rows change how the columns are split between the threads)."""
    X = sp.random(120, 40, density=0.1, random_state=0, format="csr")
    y = np.arange(120) % 2
    s = np.ones(120)
    s[40:60] = 0.0
    params = dict(solver=solver, average=average, batch_size=20, shuffle=False)
    a = SGDLogisticClassifier(**params, max_iter=3, tol=None).fit(X, y, s)
    b = SGDLogisticClassifier(**params, max_iter=3, tol=None).fit(X[s > 0], y[s > 0])
    assert a.t_ == b.t_ == 15
    assert np.array_equal(a.coef_, b.coef_)
    assert np.array_equal(a.intercept_, b.intercept_)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-12)


@pytest.mark.parametrize("solver", ["adagrad", "adam"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_lazy_rules_thread_count_does_not_change_a_bit(solver, n_classes):
    """The batch's columns are worked in two column parts whose sums are
    added in part order (batches here hold ~6,300 stored values: the
    parts run on two threads; so do the halves of the flush at each
    epoch's end, 9,000 columns): the same bits with 1, 2 or 3 threads, on
    sorted rows (parts cut from each row) and on unsorted rows (parts that
    filter the rows by column), and the two fits equal to rounding."""
    X = sp.random(2000, 9000, density=0.011, random_state=0, format="csr")
    X.sort_indices()
    y = np.arange(2000) % n_classes
    params = dict(solver=solver, average=True, batch_size=64, max_iter=2, tol=None)
    sorted_fit, unsorted_fit = (
        _same_bits_on_1_to_3_threads(layout, y, params) for layout in (X, _unsorted(X))
    )
    np.testing.assert_allclose(sorted_fit.coef_, unsorted_fit.coef_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(
        sorted_fit.loss_curve_, unsorted_fit.loss_curve_, rtol=1e-10
    )


@pytest.mark.parametrize("solver", ["sgd", "adagrad", "rmsprop", "adam"])
def test_lazy_rules_reach_the_dense_optimum(solver):
    """The lazy approximation keeps the fixed point: at a decaying step the
    sparse fit reaches the exact optimum as closely as the dense one."""
    X, _, y = _sparse_problem()
    params = dict(
        alpha=1e-2,
        max_iter=60,
        tol=None,
        random_state=0,
        batch_size=64,
        solver=solver,
        learning_rate="invscaling",
    )
    exact = SGDLogisticClassifier(alpha=1e-2, solver="newton").fit(X, y)
    a = SGDLogisticClassifier(**params).fit(X, y)
    b = SGDLogisticClassifier(**params).fit(X.toarray(), y)
    err_sparse = np.abs(a.coef_ - exact.coef_).max()
    err_dense = np.abs(b.coef_ - exact.coef_).max()
    assert err_sparse < 3 * err_dense + 1e-3


def test_lazy_decay_against_numpy():
    """The catch-up's decay e^y - 1 (y = dl / D <= 0) against NumPy's expm1
    over 600 decades and across the switch: its Taylor polynomial below
    |y| = 1e-2 within 1 ulp, exp(y) - 1 above within 1e-13 relative (4 ulp
    of libmvec's e^y over |expm1(y)| <= 100)."""
    from skgd._core import _lazy

    small = -np.geomspace(1e-300, 1e-2, 20001)[:-1]
    large = np.concatenate([-np.geomspace(1e-2, 40.0, 20001), [-np.nextafter(1e-2, 0)]])
    for y, rtol in [(small, None), (large, 1e-13)]:
        decay, _ = _lazy.missed_decays_values(np.ones_like(y), y, np.ones_like(y))
        if rtol is None:
            np.testing.assert_array_max_ulp(decay, np.expm1(y), maxulp=1)
        else:
            np.testing.assert_allclose(decay, np.expm1(y), rtol=rtol, atol=0)


@pytest.mark.parametrize("k_gap", [1, 2, 7, 100, 10_000])
def test_lazy_missed_average_terms_against_a_sum(k_gap):
    """The terms the average's sum missed over k_gap updates of total
    log-decay y, sum_{i=1..k_gap} e^{i y / k_gap}, against the sum written
    out (math.fsum), for the vector loop (averaging all along) and for the
    last k_avg < k_gap of them (averaging began meanwhile)."""
    import math

    from skgd._core import _lazy

    y = -np.concatenate([[0.0, 1e-300, 1e-12], np.geomspace(1e-9, 30.0, 40)])
    D = np.full_like(y, 0.5)
    kg = np.full_like(y, float(k_gap))
    _, missed = _lazy.missed_decays_values(D, y / 2.0, kg)
    want = [math.fsum(np.exp(np.arange(1, k_gap + 1) * v / k_gap)) for v in y]
    np.testing.assert_allclose(missed, want, rtol=1e-12, atol=0)
    k_avg = max(1, k_gap // 3)
    part = _lazy.partly_missed_values(y, kg, np.full_like(y, float(k_avg)))
    want = [
        math.fsum(np.exp(np.arange(k_gap - k_avg + 1, k_gap + 1) * v / k_gap))
        for v in y
    ]
    np.testing.assert_allclose(part, want, rtol=1e-12, atol=0)


def _wide_problem(n=1000, d=1500, seed=0):
    """CSR with more columns than Newton assembles a Hessian for."""
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=0.01, random_state=seed, format="csr")
    y = (X @ rng.standard_normal(d) + 0.1 * rng.standard_normal(n) > 0).astype(int)
    return X, y


def test_auto_takes_newton_cg_on_wide_data():
    """solver="auto" on X wider than ``_MAX_DENSE_HESSIAN``: Newton by
    Hessian-vector products, at scikit-learn's optimum (newton-cg, the same
    C), on CSR and on the dense copy alike."""
    X, y = _wide_problem()
    alpha = 1e-3
    est = SGDLogisticClassifier(alpha=alpha, tol=1e-10).fit(X, y)
    assert est.solver_ == "newton"
    ref = LogisticRegression(
        C=1 / (alpha * X.shape[0]), solver="newton-cg", tol=1e-12, max_iter=1000
    ).fit(X, y)
    scale = np.abs(ref.coef_).max()
    assert np.abs(est.coef_ - ref.coef_).max() < 1e-6 * scale
    assert abs(est.intercept_[0] - ref.intercept_[0]) < 1e-6 * scale
    dense = SGDLogisticClassifier(alpha=alpha, tol=1e-10).fit(X.toarray(), y)
    assert dense.solver_ == "newton"
    assert np.abs(dense.coef_ - ref.coef_).max() < 1e-6 * scale
    # hinge is not twice differentiable: a first-order rule on CSR too
    assert HingeSVM(max_iter=2, tol=None).fit(X, y).solver_ == "adam"


def test_partial_fit_auto_goes_on_from_the_fit_choice():
    """A first partial_fit takes Adam (one Newton step per chunk would
    forget the earlier chunks; test_estimators); after fit chose Newton,
    partial_fit goes on with a Newton step from the fitted model instead of
    starting from zero with another solver."""
    X, y = _wide_problem()
    stream = SGDLogisticClassifier(random_state=0).partial_fit(X, y, classes=[0, 1])
    assert stream.solver_ == "adam"
    est = SGDLogisticClassifier(alpha=1e-3, tol=1e-10).fit(X, y)
    coef = est.coef_.copy()
    est.partial_fit(X, y)
    assert est.solver_ == "newton"
    assert np.abs(est.coef_ - coef).max() < 1e-6 * np.abs(coef).max()

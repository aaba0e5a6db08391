"""The fused dense minibatch pass (chunks, cached row blocks, threads).

The dense engine cuts a batch into a power-of-two number of chunks, run
by the fit's thread team (``_team``), and reads each chunk in blocks of rows that go
forward, through the loss and backward while in cache (one output: the
row kernels of dense_rows.h on the rows in place; several: gathered
blocks and BLAS). These tests pin it against the CSR engine (a different
code path: row by row, O(nnz)) across the shapes that change the chunking
and blocking, and check that the thread count does not change a single
bit.
"""

import os
import signal
import sys
import threading

import numpy as np
import pytest
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from skgd import SGDLinearRegressor, SGDLogisticClassifier


def _problem(n, d, n_classes, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, d))
    y = np.argmax(
        X @ rng.normal(size=(d, n_classes)) + rng.logistic(size=(n, n_classes)), 1
    )
    return X, y


@pytest.mark.parametrize(
    "n, d, batch_size",
    [
        (301, 5, 256),  # one chunk, blocks of 64 rows, last batch partial
        (700, 100, 256),  # 4 chunks of 2 blocks of 32 rows
        (203, 5000, 40),  # blocks of 4 rows, uneven chunks
        (60, 9000, 7),  # rows above 32 KB: one row per block, read in place
        (16384, 10, 256),  # shuffled in runs of 4 rows
        (500, 33, 64),  # dense_rows.h: vector sums plus a masked one-value tail
        (200, 1, 16),  # dense_rows.h: a scalar tail alone (d < one vector)
    ],
)
@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dense_pass_equals_csr_path(n, d, batch_size, n_classes, dtype):
    """Plain SGD is exact on CSR, so dense and CSR fits agree to rounding
    for every chunking / blocking shape, binary and multinomial."""
    X, y = _problem(n, d, n_classes)
    X = X.astype(dtype)
    params = dict(
        solver="sgd", batch_size=batch_size, max_iter=3, tol=None, random_state=0
    )
    dense = SGDLogisticClassifier(**params).fit(X, y)
    sparse = SGDLogisticClassifier(**params).fit(sp.csr_matrix(X), y)
    tol = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(dense.coef_, sparse.coef_, rtol=tol, atol=tol)
    np.testing.assert_allclose(dense.intercept_, sparse.intercept_, rtol=tol, atol=tol)
    np.testing.assert_allclose(dense.loss_curve_, sparse.loss_curve_, rtol=tol)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_thread_count_does_not_change_a_bit(solver, dtype):
    """Chunks are fixed by the batch shape and summed in chunk order."""
    X, y = _problem(3000, 100, 3)
    X = X.astype(dtype)
    fits = []
    for threads in (1, 2, 4):
        with threadpool_limits(limits=threads, user_api="openmp"):
            est = SGDLogisticClassifier(
                solver=solver, max_iter=2, tol=None, random_state=0
            )
            fits.append(est.fit(X, y))
    for est in fits[1:]:
        assert np.array_equal(est.coef_, fits[0].coef_)
        assert np.array_equal(est.loss_curve_, fits[0].loss_curve_)


def test_regression_outputs_through_the_dense_pass():
    """K = 2 regression outputs: the dense pass equals two single-output fits."""
    rng = np.random.RandomState(1)
    X = rng.normal(size=(500, 40))
    Y = X @ rng.normal(size=(40, 2)) + rng.normal(size=(500, 2))
    params = dict(solver="sgd", batch_size=64, max_iter=3, tol=None, random_state=0)
    joint = SGDLinearRegressor(**params).fit(X, Y)
    for k in range(2):
        single = SGDLinearRegressor(**params).fit(X, Y[:, k])
        np.testing.assert_allclose(joint.coef_[k], single.coef_, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n, d, batch_size", [(700, 100, 256), (301, 33, 64)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_row_kernels_cover_the_epoch(n, d, batch_size, dtype, n_threads):
    """bench_epoch's floor (``_data.row_kernels``) reads every row of the
    epoch once: its gradient is X^T (1e-3 X (1e-3 1)) written out in
    NumPy, in any row order and on any number of threads."""
    from skgd._core import _data, _epoch

    X = np.random.RandomState(0).normal(size=(n, d)).astype(dtype)
    expected = X.T.astype(np.float64) @ (
        1e-3 * (X.astype(np.float64) @ np.full(d, 1e-3))
    )
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    for rows in (np.arange(n), _epoch.epoch_orders(n, 4, 0, 1)[0]):
        g = _data.row_kernels(X, rows, batch_size, True, n_threads)
        np.testing.assert_allclose(
            g, expected, rtol=rtol, atol=rtol * np.abs(expected).max()
        )


@pytest.mark.parametrize("n_threads", [1, 2, 3, 8])
@pytest.mark.parametrize("n_parts", [0, 1, 2, 5, 8])
@pytest.mark.parametrize("started, gap_ns", [(True, 0), (True, 10**7), (False, 0)])
def test_thread_team_runs_every_part_once(n_threads, n_parts, started, gap_ns):
    """A team (kept between runs, its idle threads spinning 20 us or 10 ms,
    or an OpenMP region per run) runs each part exactly once per run, and
    all of them before ``run`` returns."""
    from skgd._core import _team

    counts, unfinished, _ = _team.run_parts(n_threads, n_parts, 500, started, gap_ns)
    assert counts.tolist() == [500] * n_parts
    assert unfinished == 0


@pytest.mark.skipif(sys.platform == "win32", reason="the team needs POSIX threads")
@pytest.mark.parametrize("n_threads", [2, 3])
@pytest.mark.parametrize("after_sleep", [False, True])
def test_thread_team_caller_runs_a_late_workers_range(n_threads, after_sleep):
    """Workers that never take their range in time (held: they let every
    run pass), awake or asleep when the run starts: the caller runs their
    ranges (after its spin, then in runs made alone; at once when they
    slept) in every run, and every part still runs once before ``run``
    returns. (Whether the caller or a worker just woken takes a range first
    is the scheduler's choice: only held workers make it certain.)"""
    from skgd._core import _team

    counts, unfinished, alone = _team.run_parts(
        n_threads, 4, 200, True, 0, held=True, after_sleep=after_sleep
    )
    assert counts.tolist() == [200] * 4
    assert unfinished == 0
    assert alone == 200


def test_thread_team_shares_cores_with_other_teams():
    """Four teams of 3 threads in Python threads on this machine's cores
    (oversubscribed: workers late, ranges taken by the callers, runs made
    alone): each runs each part exactly once per run, all before ``run``
    returns."""
    from concurrent.futures import ThreadPoolExecutor

    from skgd._core import _team

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: _team.run_parts(3, 6, 3000, True), range(4)))
    for counts, unfinished, _ in results:
        assert counts.tolist() == [3000] * 6
        assert unfinished == 0


@pytest.mark.skipif(
    not os.path.isdir("/proc/self/task"), reason="counts threads in /proc/self/task"
)
def test_thread_team_stops_on_interrupt():
    """Ctrl-C in a fit (KeyboardInterrupt from the epoch loop's check for
    signals) stops the fit's thread team: no thread is left running."""
    X, y = _problem(200_000, 40, 2)  # batches of 256 x 40: two chunks
    params = dict(solver="sgd", tol=None, random_state=0)
    # (OpenMP's and BLAS's own threads exist from here on)
    SGDLogisticClassifier(max_iter=1, **params).fit(X, y)
    before = len(os.listdir("/proc/self/task"))
    timer = threading.Timer(0.3, signal.raise_signal, (signal.SIGINT,))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        SGDLogisticClassifier(max_iter=10_000, **params).fit(X, y)
    timer.join()
    assert len(os.listdir("/proc/self/task")) == before

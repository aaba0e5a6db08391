"""skgd.dask on a LocalCluster (2 worker processes, 1 thread each), issue 9.

A standardised logistic problem (n x 40, alpha = 1e-4) is generated
blockwise on the workers and persisted. Every fit is measured to J* from
scikit-learn's ``LogisticRegression(C=1/(alpha n), tol=1e-10)``:

- in memory: ``SGDLogisticClassifier`` (Newton, Adam);
- ``DaskSGDLogisticClassifier(solver="newton")`` (blockwise Newton);
- ``DaskSGDLogisticClassifier(solver="adam")`` (federated averaging), with
  the round at which the gap first falls below 1e-3;
- ``dask_ml.wrappers.Incremental(SGDLogisticClassifier(solver="adam"))``:
  one ``fit`` (one pass over the blocks), and five ``partial_fit`` passes.

Usage: ``python benchmarks/bench_dask.py [n_samples] [n_blocks]``.
"""

import sys
import time

import dask.array as da
import numpy as np
from dask_ml.wrappers import Incremental
from distributed import Client, LocalCluster
from sklearn.linear_model import LogisticRegression

from skgd import SGDLogisticClassifier
from skgd._objective import objective
from skgd.dask import DaskSGDLogisticClassifier

ALPHA = 1e-4
D = 40


def timed(fit):
    """(seconds, result) of ``fit()``."""
    start = time.perf_counter()
    result = fit()
    return time.perf_counter() - start, result


def main(n=100_000, n_blocks=4):
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, dashboard_address=None, silence_logs=40
        ) as cluster,
        Client(cluster) as client,
    ):
        rs = da.random.RandomState(0)
        X = rs.standard_normal((n, D), chunks=(n // n_blocks, D))
        w = 2 * np.random.default_rng(0).standard_normal(D) / np.sqrt(D)
        y = (X @ w + rs.logistic(size=n, chunks=n // n_blocks) > 0).astype(np.int64)
        X, y = client.persist([X, y])
        Xl, yl = client.compute([X, y], sync=True)
        exact = LogisticRegression(C=1 / (ALPHA * n), tol=1e-10, max_iter=1000)
        J_star = objective("log_loss", *_fit(exact, Xl, yl), Xl, yl, ALPHA)

        def gap(model):
            J = objective("log_loss", model.coef_, model.intercept_, Xl, yl, ALPHA)
            return (J - J_star) / J_star

        print(f"n = {n}, d = {D}, {n_blocks} blocks, alpha = {ALPHA}, J* = {J_star}")
        print("| fit | time (s) | steps / rounds / passes | rel. gap to J* |")
        print("|---|--:|--:|--:|")
        rows = [
            ("in memory, Newton", lambda: _local(Xl, yl, "newton")),
            ("in memory, Adam", lambda: _local(Xl, yl, "adam")),
            ("Dask, blockwise Newton", lambda: _dask(X, y, "newton")),
            ("Dask, federated Adam", lambda: _dask(X, y, "adam")),
            ("Incremental, one fit", lambda: _incremental(X, y, 1)),
            ("Incremental, 5 passes", lambda: _incremental(X, y, 5)),
        ]
        for name, fit in rows:
            seconds, (model, count) = timed(fit)
            print(f"| {name} | {seconds:.3f} | {count} | {gap(model):.1e} |")
        federated = _dask(X, y, "adam")[0]
        curve = (np.array(federated.loss_curve_) - J_star) / J_star
        first = int(np.argmax(curve < 1e-3)) + 1 if np.any(curve < 1e-3) else None
        print(f"federated Adam: gap per round {np.array2string(curve, precision=1)};")
        print(f"below 1e-3 after round {first}")


def _fit(exact, X, y):
    exact.fit(X, y)
    return exact.coef_, exact.intercept_


def _local(X, y, solver):
    model = SGDLogisticClassifier(solver=solver, alpha=ALPHA, random_state=0)
    return model.fit(X, y), model.n_iter_


def _dask(X, y, solver):
    model = DaskSGDLogisticClassifier(solver=solver, alpha=ALPHA, random_state=0)
    return model.fit(X, y), model.n_iter_


def _incremental(X, y, passes):
    est = SGDLogisticClassifier(solver="adam", alpha=ALPHA, random_state=0)
    inc = Incremental(est, random_state=0).fit(X, y, classes=[0, 1])
    for _ in range(passes - 1):
        inc.partial_fit(X, y)
    return inc.estimator_, passes


if __name__ == "__main__":
    main(*map(int, sys.argv[1:]))

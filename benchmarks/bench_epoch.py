"""Dense epoch time per update rule, against the memory floor and sklearn.

On a standardised logistic problem (160k x 100 by default), one epoch of
each update rule at ``batch_size=256`` (shuffled), in float64 and float32,
timed as ``(fit(max_iter=k + 1) - fit(max_iter=1)) / k`` so that setup does
not count; reported as a ratio to one ``X @ w`` pass in the same dtype (the
memory floor) and to one epoch of scikit-learn's ``SGDClassifier``, all in
the same run. A second table times plain SGD per loss (each estimator
against its scikit-learn counterpart: the log loss, the hinges, the
squared error of a regression target). ``--sweep`` adds the epoch of sgd
and adam at batch sizes from 64 to 16384, as a ratio to the pass (which
batch sizes keep the target of issue 8). A third table times the row
kernels alone (``_data.row_kernels``: the decision values at W and the
average and the gradient's sum of rows, on the epoch's chunks and
threads, without the loss, the update or the wait between batches) for
rows in order and in the shuffled orders: the floor of this design under
each order.
Run: ``python benchmarks/bench_epoch.py [--sweep]``.
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDClassifier, SGDRegressor
from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

from skgd import HingeSVM, SGDLinearRegressor, SGDLogisticClassifier
from skgd._core import _data, _epoch
from skgd._engine import shuffle_run

RULES = {
    "sgd": {"solver": "sgd"},
    "momentum": {"solver": "sgd", "momentum": 0.9},
    "nesterov": {"solver": "sgd", "momentum": 0.9, "nesterov": True},
    "adagrad": {"solver": "adagrad"},
    "rmsprop": {"solver": "rmsprop"},
    "adam": {"solver": "adam"},
}


def median_time(func, repeats):
    """Median wall time of ``func()`` over ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def pass_time(X):
    """The memory floor: median time of one ``X @ w``."""
    w = np.ones(X.shape[1], X.dtype)
    return median_time(lambda: X @ w, 21)


# OpenBLAS's threads spin for ~0.1 s after a threaded BLAS call (such as
# the X @ w pass or the data's generation) and take the cores from the
# OpenMP threads of a fit that starts meanwhile: measured 2-3x slower fits
# for that long (sgd fit(1) on 50k x 100: 11-42 ms right after, 7.3 ms
# later or with OPENBLAS_NUM_THREADS=1).
BLAS_SPIN = 0.3


def epoch_time(make, X, y, epochs, repeats):
    """Time of one epoch: the difference of two fits divided by the epochs
    (after ``BLAS_SPIN`` seconds of rest)."""
    time.sleep(BLAS_SPIN)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        long = median_time(lambda: make(epochs + 1).fit(X, y), repeats)
        short = median_time(lambda: make(1).fit(X, y), repeats)
    return (long - short) / epochs


def main():
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=160_000)
    parser.add_argument("--n-features", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sweep", action="store_true", help="batch sizes")
    args = parser.parse_args()

    rng = np.random.RandomState(0)
    X = rng.normal(size=(args.n_samples, args.n_features))
    y = X @ rng.normal(size=args.n_features) + rng.logistic(size=len(X)) > 0
    floors = {dtype: pass_time(X.astype(dtype)) for dtype in (np.float64, np.float32)}
    sklearn_epoch = epoch_time(
        lambda k: SGDClassifier(loss="log_loss", max_iter=k, tol=None, random_state=0),
        X,
        y,
        args.epochs,
        args.repeats,
    )
    print(
        f"X: {args.n_samples} x {args.n_features}, batch_size={args.batch_size}; "
        f"one X @ w pass: {floors[np.float64] * 1e3:.2f} ms (float32: "
        f"{floors[np.float32] * 1e3:.2f} ms); SGDClassifier epoch: "
        f"{sklearn_epoch * 1e3:.1f} ms ({sklearn_epoch / floors[np.float64]:.1f}x "
        "the pass)\n"
    )
    print("| rule | dtype | epoch (ms) | / X @ w pass | / SGDClassifier epoch |")
    print("|---|---|--:|--:|--:|")
    for dtype in (np.float64, np.float32):
        Xd = X.astype(dtype)
        for name, params in RULES.items():
            t = epoch_time(
                lambda k, p=params: SGDLogisticClassifier(
                    batch_size=args.batch_size, max_iter=k, tol=None, **p
                ),
                Xd,
                y,
                args.epochs,
                args.repeats,
            )
            ratio = t / floors[dtype]
            print(
                f"| {name} | {np.dtype(dtype).name} | {t * 1e3:.1f} | {ratio:.2f} "
                f"| {t / sklearn_epoch:.2f} |"
            )
    loss_table(X, y, floors, args)
    kernel_table(X, floors, args)
    if args.sweep:
        batch_sweep(X, y, floors, args)


# Estimator, its parameters and scikit-learn's counterpart, per loss.
LOSSES = {
    "log_loss": (SGDLogisticClassifier, {}, SGDClassifier, {"loss": "log_loss"}),
    "hinge": (HingeSVM, {}, SGDClassifier, {"loss": "hinge"}),
    "squared_hinge": (
        HingeSVM,
        {"loss": "squared_hinge"},
        SGDClassifier,
        {"loss": "squared_hinge"},
    ),
    "squared_error": (SGDLinearRegressor, {}, SGDRegressor, {}),
}


def loss_table(X, y, floors, args):
    """Print the epoch of solver="sgd" per loss, float64 and float32,
    against the pass and scikit-learn's epoch of the same loss (float64).
    The regression target is the logistic problem's linear score."""
    score = X @ np.random.RandomState(1).normal(size=X.shape[1])
    print("\n| loss | dtype | epoch (ms) | / X @ w pass | / scikit-learn epoch |")
    print("|---|---|--:|--:|--:|")
    for name, (est, params, ref, ref_params) in LOSSES.items():
        target = score if est is SGDLinearRegressor else y
        sklearn_epoch = epoch_time(
            lambda k, r=ref, p=ref_params: r(max_iter=k, tol=None, random_state=0, **p),
            X,
            target,
            args.epochs,
            args.repeats,
        )
        for dtype in (np.float64, np.float32):
            t = epoch_time(
                lambda k, e=est, p=params: e(
                    solver="sgd", batch_size=args.batch_size, max_iter=k, tol=None, **p
                ),
                X.astype(dtype),
                target,
                args.epochs,
                args.repeats,
            )
            print(
                f"| {name} | {np.dtype(dtype).name} | {t * 1e3:.1f} "
                f"| {t / floors[dtype]:.2f} | {t / sklearn_epoch:.2f} |"
            )


def kernel_table(X, floors, args):
    """Print the time of the row kernels alone over one epoch, as a ratio
    to the pass, with rows in order, in the default shuffle's runs, in
    runs of 64 and one at a time."""
    n = X.shape[0]
    run = shuffle_run(n, args.batch_size, True)
    orders = {"in order": np.arange(n)}
    for name, length in (
        (f"runs of {run} (default)", run),
        ("runs of 64", 64),
        ("single rows", 1),
    ):
        orders[f"shuffled, {name}"] = _epoch.epoch_orders(n, length, 0, 1)[0]
    threads = _openmp_effective_n_threads()
    print("\n| row kernels alone | " + " | ".join(orders) + " |")
    print("|---|" + "--:|" * len(orders))
    for dtype in (np.float64, np.float32):
        Xd = X.astype(dtype)
        time.sleep(BLAS_SPIN)
        cells = [
            median_time(
                lambda X_=Xd, r=rows: _data.row_kernels(
                    X_, r, args.batch_size, True, threads
                ),
                15,
            )
            / floors[dtype]
            for rows in orders.values()
        ]
        print(
            f"| {np.dtype(dtype).name} | "
            + " | ".join(f"{c:.2f}x" for c in cells)
            + " |"
        )


SWEEP = (64, 128, 256, 512, 1024, 4096, 16384)


def batch_sweep(X, y, floors, args):
    """Print epoch / pass of sgd and adam for each batch size of SWEEP."""
    print("\n| rule | dtype | " + " | ".join(f"batch {b}" for b in SWEEP) + " |")
    print("|---|---|" + "--:|" * len(SWEEP))
    for dtype in (np.float64, np.float32):
        Xd = X.astype(dtype)
        for name in ("sgd", "adam"):
            ratios = [
                epoch_time(
                    lambda k, b=b, p=RULES[name]: SGDLogisticClassifier(
                        batch_size=b, max_iter=k, tol=None, **p
                    ),
                    Xd,
                    y,
                    args.epochs,
                    args.repeats,
                )
                / floors[dtype]
                for b in SWEEP
            ]
            cells = " | ".join(f"{r:.2f}x" for r in ratios)
            print(f"| {name} | {np.dtype(dtype).name} | {cells} |")


if __name__ == "__main__":
    main()

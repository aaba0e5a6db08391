"""Threaded speed-up (issue 11): 4 fits at once in Python threads against
the same 4 fits one after another.

The Cython epoch loop runs without the GIL, so 4 concurrent fits can use
every core; each fit is single-threaded inside (OMP_NUM_THREADS=1, and
BLAS limited to one thread) so that the threads, not OpenMP, provide the
parallelism. The threaded results are checked to be bit-identical to the
sequential ones. Prints a Markdown table; speed-up = sequential time /
threaded time (ideal: the number of cores, here 2).

    python benchmarks/bench_threads.py [--repeats 5]
"""

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy / skgd load

import time  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from skgd import HingeSVM, SGDLinearRegressor, SGDLogisticClassifier  # noqa: E402

N_FITS = 4


def problem(n, d, density, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, d))
    if density < 1:
        X[rng.uniform(size=X.shape) > density] = 0.0
        X = sp.csr_matrix(X)
    w = rng.normal(size=d)
    y_reg = X @ w + 0.5 * rng.normal(size=n)
    return X, y_reg, (y_reg > 0).astype(int)


CASES = [
    # (label, estimator, params, data (n, d, density), target)
    (
        "SGDLogisticClassifier adam, dense 40000x50",
        SGDLogisticClassifier,
        {"solver": "adam"},
        (40_000, 50, 1.0),
        "cls",
    ),
    (
        "SGDLogisticClassifier sgd, dense 40000x50",
        SGDLogisticClassifier,
        {"solver": "sgd"},
        (40_000, 50, 1.0),
        "cls",
    ),
    (
        "HingeSVM adam, CSR 40000x200 (5%)",
        HingeSVM,
        {"solver": "adam"},
        (40_000, 200, 0.05),
        "cls",
    ),
    (
        "SGDLinearRegressor rmsprop, dense 40000x50",
        SGDLinearRegressor,
        {"solver": "rmsprop"},
        (40_000, 50, 1.0),
        "reg",
    ),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    print(
        f"{N_FITS} fits of {args.epochs} epochs each (random_state 0..3); "
        f"{os.cpu_count()} CPUs, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}; "
        f"median of {args.repeats} repeats\n"
    )
    print(
        "| fits | sequential (s) | 4 threads (s) | speed-up | bit-identical |\n"
        "|---|--:|--:|--:|:-:|"
    )
    for label, Est, params, shape, target in CASES:
        X, y_reg, y_cls = problem(*shape)
        y = y_cls if target == "cls" else y_reg

        def fit(seed, Est=Est, params=params, X=X, y=y):
            est = Est(**params, max_iter=args.epochs, tol=None, random_state=seed)
            return est.fit(X, y).coef_

        seeds = list(range(N_FITS))
        seq_times, thr_times = [], []
        with threadpool_limits(1):
            fit(0)  # warm-up
            for _ in range(args.repeats):
                start = time.perf_counter()
                sequential = [fit(s) for s in seeds]
                seq_times.append(time.perf_counter() - start)
                with ThreadPoolExecutor(max_workers=N_FITS) as pool:
                    start = time.perf_counter()
                    threaded = list(pool.map(fit, seeds))
                    thr_times.append(time.perf_counter() - start)
        same = all(
            np.array_equal(a, b) for a, b in zip(sequential, threaded, strict=True)
        )
        seq, thr = np.median(seq_times), np.median(thr_times)
        print(
            f"| {label} | {seq:.3f} | {thr:.3f} | {seq / thr:.2f} | "
            f"{'yes' if same else 'NO'} |"
        )


if __name__ == "__main__":
    main()

"""Small fits, where the fixed overhead of a fit dominates.

Four of scikit-learn's built-in data sets: ``load_digits`` (10 classes),
``load_breast_cancer`` and ``load_iris`` (3 classes) for classification,
``load_diabetes`` for regression; each split 75/25 (``random_state=0``,
stratified for the classifiers) and standardised by a StandardScaler fitted
on the training part. For each: skgd's estimator at its defaults (solver
"auto", whose choice is shown), with ``solver="adam"`` and with
``solver="sgd"``, against scikit-learn's ``LogisticRegression()`` and
``SGDClassifier(loss="log_loss")`` (``Ridge()`` and ``SGDRegressor()`` for
diabetes), every estimator at its own defaults (``random_state=0`` where it
has one). Columns: median fit and predict (test part) times over
``--repeats`` calls and their ratios to ``LogisticRegression()`` /
``Ridge()`` (the reference, timed in the same run), epochs or iterations,
and test accuracy (R^2 for diabetes).

Run: ``python benchmarks/bench_small.py [--repeats 21] [--threads 1]``
(``--threads 1`` limits BLAS and OpenMP to one thread for every estimator:
on a busy machine, threads that spin-wait can slow small fits by an order
of magnitude).
"""

import argparse
import os

import numpy as np
from bench_convergence import median_fit_time
from bench_epoch import median_time
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris
from sklearn.linear_model import (
    LogisticRegression,
    Ridge,
    SGDClassifier,
    SGDRegressor,
)
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from skgd import SGDLinearRegressor, SGDLogisticClassifier

DATASETS = {
    "digits": (load_digits, True),
    "breast_cancer": (load_breast_cancer, True),
    "iris": (load_iris, True),
    "diabetes": (load_diabetes, False),
}


def models(classification):
    """``(name, factory, is_reference)`` of the estimators for one data set."""
    if classification:
        skgd, ref, ref_name = (
            SGDLogisticClassifier,
            LogisticRegression,
            "LogisticRegression()",
        )
        sgd_name = "SGDClassifier(loss='log_loss')"

        def sgd():
            return SGDClassifier(loss="log_loss", random_state=0)

    else:
        skgd, ref, ref_name = SGDLinearRegressor, Ridge, "Ridge()"
        sgd_name = "SGDRegressor()"

        def sgd():
            return SGDRegressor(random_state=0)

    name = skgd.__name__
    return [
        (f"{name}()", lambda: skgd(random_state=0), False),
        (f"{name}(solver='adam')", lambda: skgd(solver="adam", random_state=0), False),
        (f"{name}(solver='sgd')", lambda: skgd(solver="sgd", random_state=0), False),
        (f"{ref_name} *", ref, True),
        (sgd_name, sgd, False),
    ]


def n_iter(model):
    """Epochs (SGD) or solver iterations, as text ("-" for a direct solve)."""
    n = getattr(model, "n_iter_", None)
    return "-" if n is None else str(int(np.max(n)))


def main():
    """Parse the command line and run under the thread limit."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument(
        "--datasets", nargs="+", choices=sorted(DATASETS), default=list(DATASETS)
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="limit BLAS and OpenMP to this many threads (default: no limit)",
    )
    args = parser.parse_args()
    with threadpool_limits(limits=args.threads):
        run(args)


def run(args):
    """Fit and time every model of every data set; print the table."""
    threads = "default" if args.threads is None else args.threads
    print(
        f"Threads: {threads}; load average {os.getloadavg()[0]:.2f} at the start. "
        f"Median of {args.repeats} fits / predicts; ratios are to the row marked * "
        "(LogisticRegression() or Ridge()), timed in the same run; score: test "
        "accuracy (R^2 for diabetes).\n"
    )
    print(
        "| data (train n x d) | model | fit (ms) | fit / ref | predict (ms) "
        "| predict / ref | epochs / iter. | test score |"
    )
    print("|---|---|--:|--:|--:|--:|--:|--:|")
    for data_name in args.datasets:
        load, classification = DATASETS[data_name]
        X, y = load(return_X_y=True)
        X_train, X_test, y_train, y_test = train_test_split(
            X,
            y,
            test_size=0.25,
            random_state=0,
            stratify=y if classification else None,
        )
        scaler = StandardScaler().fit(X_train)
        X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
        rows = []
        for name, make, is_ref in models(classification):
            t_fit, model = median_fit_time(make, X_train, y_train, args.repeats)
            t_pred = median_time(lambda m=model, X=X_test: m.predict(X), args.repeats)
            solver = getattr(model, "solver_", None)
            if name.endswith("()") and solver is not None:
                name = f"{name} [solver_={solver!r}]"
            score = model.score(X_test, y_test)
            rows.append((name, t_fit, t_pred, n_iter(model), score, is_ref))
        ref_fit, ref_pred = next((r[1], r[2]) for r in rows if r[-1])
        label = f"{data_name} ({X_train.shape[0]} x {X_train.shape[1]})"
        for name, t_fit, t_pred, iters, score, _ in rows:
            print(
                f"| {label} | {name} | {t_fit * 1e3:.2f} | {t_fit / ref_fit:.2f} "
                f"| {t_pred * 1e3:.3f} | {t_pred / ref_pred:.2f} | {iters} "
                f"| {score:.3f} |"
            )


if __name__ == "__main__":
    main()

"""Does the default fit converge without tuning? (issue 4)

For each problem and alpha, fits ``SGDLogisticClassifier(alpha=alpha)`` with
every other parameter at its default, and scikit-learn's
``LogisticRegression()`` (lbfgs) at the equivalent ``C = 1 / (alpha n)``;
prints the relative gap of each to J* (lbfgs run to ``tol=1e-10``) and the
time ratio. Run: ``python benchmarks/bench_convergence.py``.
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from skgd import SGDLogisticClassifier
from skgd._objective import objective

# Seconds between two timed fits (see median_fit_times).
PAUSE = 0.3


def problems(n_samples):
    """Yield ``(name, X, y)``: standardised synthetic data and breast cancer."""
    X, y = make_classification(
        n_samples=n_samples,
        n_features=100,
        n_informative=20,
        n_redundant=10,
        random_state=0,
    )
    yield f"make_classification {n_samples} x 100", StandardScaler().fit_transform(X), y
    X, y = load_breast_cancer(return_X_y=True)
    yield "breast_cancer 569 x 30", StandardScaler().fit_transform(X), y


def median_fit_times(makers, X, y, repeats):
    """Median wall time of ``make().fit(X, y)`` for each maker, and the last
    fitted models. The makers take turns in every repeat, so that a change
    in the machine's load hits all of them alike; each fit starts after a
    pause long enough for the BLAS threads of the previous one to stop
    spinning (OpenBLAS's spin for ~0.1 s after a call and would take the
    cores from the next fit)."""
    times = [[] for _ in makers]
    models = [None] * len(makers)
    for _ in range(repeats):
        for i, make in enumerate(makers):
            model = make()
            time.sleep(PAUSE)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                start = time.perf_counter()
                model.fit(X, y)
                times[i].append(time.perf_counter() - start)
            models[i] = model
    return [float(np.median(t)) for t in times], models


def median_fit_time(make, X, y, repeats):
    """Median wall time of ``make().fit(X, y)`` and the last fitted model."""
    (seconds,), (model,) = median_fit_times([make], X, y, repeats)
    return seconds, model


def gap(model, X, y, alpha, J_star):
    """Relative gap of the fitted model's objective to J*."""
    J = objective("log_loss", model.coef_, model.intercept_, X, y, alpha)
    return (J - J_star) / J_star


def run(n_samples, repeats):
    """Print one markdown row per problem and alpha."""
    print(
        "| problem | alpha | skgd gap | skgd time (s) | epochs / steps "
        "| lbfgs gap | lbfgs time (s) | skgd / lbfgs time |"
    )
    print("|---|---|--:|--:|--:|--:|--:|--:|")
    for name, X, y in problems(n_samples):
        n = len(y)
        for alpha_name, alpha in (("1e-4", 1e-4), ("1/n", 1.0 / n)):
            C = 1.0 / (alpha * n)
            exact = LogisticRegression(C=C, tol=1e-10, max_iter=10_000).fit(X, y)
            J_star = objective("log_loss", exact.coef_, exact.intercept_, X, y, alpha)
            (t_skgd, t_lbfgs), (skgd, lbfgs) = median_fit_times(
                [
                    lambda a=alpha: SGDLogisticClassifier(alpha=a),
                    lambda c=C: LogisticRegression(C=c),
                ],
                X,
                y,
                repeats,
            )
            print(
                f"| {name} | {alpha_name} | {gap(skgd, X, y, alpha, J_star):.1e} "
                f"| {t_skgd:.3f} | {skgd.n_iter_} "
                f"| {gap(lbfgs, X, y, alpha, J_star):.1e} | {t_lbfgs:.3f} "
                f"| {t_skgd / t_lbfgs:.2f} |"
            )


def main():
    """Parse the command line and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    run(args.n_samples, args.repeats)


if __name__ == "__main__":
    main()

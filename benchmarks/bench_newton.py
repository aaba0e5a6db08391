"""Exact solvers: ``solver="newton"`` against scikit-learn's exact solvers.

Three standardised problems (200k x 100 by default), each at the
equivalent regularisation of SPEC section 2
(``J = mean loss + alpha/2 ||W||^2``):

* squared error, ``make_regression`` (X and y standardised), alpha = 1e-4:
  ``SGDLinearRegressor(solver="newton")`` (closed form) against
  ``Ridge(alpha=alpha * n)``, with ``SGDRegressor(alpha)`` and the default
  ``SGDLinearRegressor(alpha)`` for context;
* log loss, ``make_classification``, alpha = 1/n:
  ``SGDLogisticClassifier(solver="newton")`` against
  ``LogisticRegression(C=1 / (alpha n))`` (lbfgs, its default, and
  ``solver="newton-cholesky"``);
* squared hinge, the same data, alpha = 1/n:
  ``HingeSVM(solver="newton", loss="squared_hinge")`` against
  ``LinearSVC(loss="squared_hinge", dual=False, C=1 / (alpha n))``.
  LinearSVC also penalises its intercept (as ``(b / intercept_scaling)^2``),
  so it is run at its default ``intercept_scaling=1`` and at 100, where
  that penalty hardly matters.

The skgd Newton fits stop at their default ``tol=1e-4`` on the gradient's
max-norm, as scikit-learn's do; a second row at ``tol=1e-10`` checks that
the regularisation mapping is exact (coefficients equal to the tight
sklearn solve to ~1e-8 or better).

Every model's objective J is computed here in NumPy from ``coef_`` and
``intercept_`` (SPEC section 2 formula). Columns: median fit time, relative
gap ``(J - J_best) / J_best`` to the best J found in the block (which
includes an untimed tight-tolerance sklearn solve: Ridge's Cholesky,
``LogisticRegression(solver="newton-cholesky", tol=1e-12)``,
``LinearSVC(dual=False, intercept_scaling=1e4, tol=1e-12)``), the largest
``|coef difference|`` to that tight sklearn solve, and the time as a ratio
to the block's first sklearn row (timed in the same run).

Run: ``python benchmarks/bench_newton.py [--n-samples 200000 --repeats 3]``.
"""

import argparse
import warnings

import numpy as np
from bench_convergence import median_fit_time
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge, SGDRegressor
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from skgd import HingeSVM, SGDLinearRegressor, SGDLogisticClassifier

# LinearSVC's penalty on its intercept is (b / intercept_scaling)^2 / 2: the
# timed row at a large scaling, and the tight reference at a larger one (at
# n = 3000, 1e4 with tol=1e-12 agreed with HingeSVM to 1.5e-9; 1e5 with the
# default tol stopped far from the optimum).
INTERCEPT_SCALING = 100
EXACT_INTERCEPT_SCALING = 1e4

# Gradient max-norm at which the skgd "tight" rows stop.
TIGHT_TOL = 1e-10


def objective(loss, model, X, y, alpha):
    """J of SPEC section 2 for a binary or single-output model, in NumPy.

    ``y`` holds 0/1 labels for the classification losses.
    """
    w = np.ravel(model.coef_)
    f = X @ w + float(np.ravel(model.intercept_)[0])
    if loss == "squared_error":
        row = 0.5 * (y - f) ** 2
    else:
        margin = np.where(y == 1, 1.0, -1.0) * f
        if loss == "log_loss":
            row = np.logaddexp(0.0, -margin)
        else:
            row = np.maximum(0.0, 1.0 - margin) ** 2
    return float(np.mean(row) + 0.5 * alpha * (w @ w))


def block(title, loss, X, y, alpha, rows, exact, repeats):
    """Time the ``rows`` ``(name, factory, is_reference)`` and print a table.

    ``exact`` is an unfitted sklearn estimator at a tight tolerance: the
    reference of the coefficient differences (fitted once, not timed).
    """
    fitted = []
    for name, make, is_ref in rows:
        t, model = median_fit_time(make, X, y, repeats)
        fitted.append((name, t, model, is_ref))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        exact.fit(X, y)
    J = [objective(loss, model, X, y, alpha) for _, _, model, _ in fitted]
    J_best = min([*J, objective(loss, exact, X, y, alpha)])
    t_ref = next(t for _, t, _, is_ref in fitted if is_ref)
    print(f"\n{title}; J_best = {J_best:.10f}\n")
    print(
        "| model | time (s) | rel. gap to J_best | max abs coef diff "
        "| time / sklearn ref |"
    )
    print("|---|--:|--:|--:|--:|")
    for (name, t, model, _), J_model in zip(fitted, J, strict=True):
        gap = (J_model - J_best) / J_best
        diff = np.max(np.abs(np.ravel(model.coef_) - np.ravel(exact.coef_)))
        print(f"| {name} | {t:.3f} | {gap:.1e} | {diff:.1e} | {t / t_ref:.2f} |")


def main():
    """Print the three tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=200_000)
    parser.add_argument("--n-features", type=int, default=100)
    parser.add_argument("--alpha", type=float, default=1e-4, help="regression")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    n, d, a = args.n_samples, args.n_features, args.alpha

    X, y = make_regression(
        n_samples=n, n_features=d, n_informative=d // 2, noise=20.0, random_state=0
    )
    X = StandardScaler().fit_transform(X)
    y = (y - y.mean()) / y.std()
    print(
        f"{n} x {d}, float64, median of {args.repeats} fits; max abs coef diff "
        "is to the tight sklearn solve, time is relative to the first sklearn row "
        "(marked *)."
    )
    block(
        f"Squared error, make_regression (standardised), alpha = {a:g}",
        "squared_error",
        X,
        y,
        a,
        [
            (
                "SGDLinearRegressor(solver='newton')",
                lambda: SGDLinearRegressor(solver="newton", alpha=a),
                False,
            ),
            ("Ridge(alpha=alpha n) *", lambda: Ridge(alpha=a * n), True),
            (
                "SGDRegressor(alpha)",
                lambda: SGDRegressor(alpha=a, random_state=0),
                False,
            ),
            (
                "SGDLinearRegressor(alpha) (default solver)",
                lambda: SGDLinearRegressor(alpha=a, random_state=0),
                False,
            ),
        ],
        Ridge(alpha=a * n, solver="cholesky"),
        args.repeats,
    )

    X, y = make_classification(
        n_samples=n,
        n_features=d,
        n_informative=20,
        n_redundant=10,
        random_state=0,
    )
    X = StandardScaler().fit_transform(X)
    alpha = 1.0 / n
    C = 1.0 / (alpha * n)
    block(
        "Log loss, make_classification (standardised), alpha = 1/n (C = 1)",
        "log_loss",
        X,
        y,
        alpha,
        [
            (
                "SGDLogisticClassifier(solver='newton')",
                lambda: SGDLogisticClassifier(solver="newton", alpha=alpha),
                False,
            ),
            (
                f"SGDLogisticClassifier(solver='newton', tol={TIGHT_TOL:g})",
                lambda: SGDLogisticClassifier(
                    solver="newton", alpha=alpha, tol=TIGHT_TOL
                ),
                False,
            ),
            ("LogisticRegression(C) (lbfgs) *", lambda: LogisticRegression(C=C), True),
            (
                "LogisticRegression(C, solver='newton-cholesky')",
                lambda: LogisticRegression(C=C, solver="newton-cholesky"),
                False,
            ),
        ],
        LogisticRegression(C=C, solver="newton-cholesky", tol=1e-12, max_iter=1000),
        args.repeats,
    )
    block(
        "Squared hinge, make_classification (standardised), alpha = 1/n (C = 1); "
        f"tight ref: LinearSVC(intercept_scaling={EXACT_INTERCEPT_SCALING:g}, "
        "tol=1e-12)",
        "squared_hinge",
        X,
        y,
        alpha,
        [
            (
                "HingeSVM('squared_hinge', solver='newton')",
                lambda: HingeSVM("squared_hinge", solver="newton", alpha=alpha),
                False,
            ),
            (
                f"HingeSVM('squared_hinge', solver='newton', tol={TIGHT_TOL:g})",
                lambda: HingeSVM(
                    "squared_hinge", solver="newton", alpha=alpha, tol=TIGHT_TOL
                ),
                False,
            ),
            ("LinearSVC(C, dual=False) *", lambda: LinearSVC(C=C, dual=False), True),
            (
                f"LinearSVC(C, dual=False, intercept_scaling={INTERCEPT_SCALING:g})",
                lambda: LinearSVC(C=C, dual=False, intercept_scaling=INTERCEPT_SCALING),
                False,
            ),
        ],
        LinearSVC(
            C=C,
            dual=False,
            intercept_scaling=EXACT_INTERCEPT_SCALING,
            tol=1e-12,
            max_iter=100_000,
        ),
        args.repeats,
    )


if __name__ == "__main__":
    main()

"""The choice of ``solver="auto"`` on wide X: Newton-CG against Adam.

``fit`` with ``solver="auto"`` takes Newton (conjugate gradients on
Hessian-vector products) on X with more than 1023 columns, dense or CSR,
and Adam (averaged) on large narrow X. For each problem this prints both
fits' time, epochs / steps and relative gap to J*, where J* is Newton run
to ``tol=1e-10`` (the sparse benchmark checks that optimum against
scikit-learn's lbfgs); times are medians of ``--repeats`` fits taken in
turns.

Problems: text-like CSR (``bench_sparse.text_like``: binary log loss,
squared hinge, 5 classes, regression; and a narrow one, where the rule
keeps Adam), dense standard-normal X, and dense correlated X (an
embedding-like low-rank-plus-noise matrix, and unscaled correlated
columns: where CG needs the most products).

Run: ``python benchmarks/bench_wide.py``.
"""

import argparse
import functools
import warnings

import numpy as np
from bench_convergence import median_fit_times
from bench_sparse import text_like

from skgd import HingeSVM, SGDLinearRegressor, SGDLogisticClassifier
from skgd._objective import objective


def hidden_targets(X, rng, n_outputs):
    """Targets of a sparse hidden linear model on X: (scores, support)."""
    d = X.shape[1]
    H = np.zeros((d, n_outputs))
    support = rng.choice(d, d // 100, replace=False)
    H[support] = rng.normal(scale=10.0, size=(support.size, n_outputs))
    return np.asarray(X @ H)


def problems(scale):
    """(name, estimator class, loss name, extra params, X, y) tuples."""
    rng = np.random.default_rng(1)
    n = int(200_000 * scale)
    X, y = text_like(n, int(100_000 * scale), 50)
    yield "text CSR, binary", SGDLogisticClassifier, "log_loss", {}, X, y
    yield (
        "text CSR, squared hinge",
        HingeSVM,
        "squared_hinge",
        {"loss": "squared_hinge"},
        X,
        y,
    )
    X, _ = text_like(n // 2, int(50_000 * scale), 50)
    scores = hidden_targets(X, rng, 5) + rng.gumbel(size=(X.shape[0], 5))
    yield (
        "text CSR, 5 classes",
        SGDLogisticClassifier,
        "log_loss",
        {},
        X,
        (scores.argmax(axis=1)),
    )
    y = hidden_targets(X, rng, 1)[:, 0] + 0.1 * rng.normal(size=X.shape[0])
    yield "text CSR, regression", SGDLinearRegressor, "squared_error", {}, X, y
    X, y = text_like(int(300_000 * scale), 500, 20)
    yield "text CSR, 500 columns", SGDLogisticClassifier, "log_loss", {}, X, y
    n = int(50_000 * scale)
    for name, X in dense_matrices(n, rng):
        w = rng.standard_normal(X.shape[1]) / np.sqrt(X.shape[1]) * 2
        margin = (X / X.std(axis=0)) @ w
        y = (margin + rng.logistic(size=n) > 0).astype(int)
        yield name, SGDLogisticClassifier, "log_loss", {}, X, y


def dense_matrices(n, rng):
    """Dense wide X: standard normal, embedding-like, unscaled correlated."""
    yield "dense 1500 columns, standard normal", rng.standard_normal((n, 1500))
    factors = rng.standard_normal((n, 100)) * np.linspace(3, 0.3, 100)
    X = factors @ rng.standard_normal((100, 1536)) / 10
    X += 0.3 * rng.standard_normal(X.shape)
    yield "dense 1536 columns, embedding-like", (X - X.mean(0)) / X.std(0)
    X = rng.standard_normal((n, 50)) @ rng.standard_normal((50, 1500))
    X += 0.3 * rng.standard_normal(X.shape)
    yield (
        "dense 1500 columns, correlated, unscaled",
        X * np.exp(rng.uniform(-2, 2, 1500)),
    )


def main():
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="of n and d")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    print(
        "| problem | n x d | alpha | auto takes | Adam: time (s), epochs, gap "
        "| Newton: time (s), steps, gap |"
    )
    print("|---|---|---|---|---|---|")
    for name, Est, loss, params, X, y in problems(args.scale):
        alphas = {"1e-4": 1e-4, "1/n": 1.0 / X.shape[0]}
        for alpha_name, alpha in alphas.items():
            if alpha_name == "1/n" and alpha == 1e-4:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                exact = Est(alpha=alpha, solver="newton", tol=1e-10, **params)
                exact.fit(X, y)
                chosen = Est(alpha=alpha, max_iter=1, tol=None, **params)
                chosen = chosen.fit(X, y).solver_
            J_star = objective(loss, exact.coef_, exact.intercept_, X, y, alpha)
            makers = [
                functools.partial(Est, alpha=alpha, solver=s, random_state=0, **params)
                for s in ("adam", "newton")
            ]
            times, models = median_fit_times(makers, X, y, args.repeats)
            cells = []
            for t, model in zip(times, models, strict=True):
                J = objective(loss, model.coef_, model.intercept_, X, y, alpha)
                gap = (J - J_star) / abs(J_star)
                cells.append(f"{t:.2f}, {model.n_iter_}, {gap:.1e}")
            print(
                f"| {name} | {X.shape[0]} x {X.shape[1]} | {alpha_name} "
                f"| {chosen} | {cells[0]} | {cells[1]} |",
                flush=True,
            )


if __name__ == "__main__":
    main()

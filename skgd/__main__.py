"""Compare skgd's estimators with scikit-learn's: ``python -m skgd``.

Fits every estimator at the same ``alpha`` on a synthetic and a real problem
and prints a markdown table of fit time, epochs, training objective J, gap to
the reference optimum (``LogisticRegression``'s lbfgs fit) and test accuracy.
"""

import argparse
import sys
import time
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.datasets import load_breast_cancer, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from ._hinge import HingeSVM
from ._logistic import SGDLogisticClassifier
from ._objective import objective
from .plotting import plot_loss_curves

ALPHA = 1e-4
REFERENCE = "sklearn LogisticRegression"
COLUMNS = (
    "problem",
    "estimator",
    "time (s)",
    "epochs",
    "objective J",
    "rel. gap to optimum",
    "test accuracy",
)


@dataclass
class Result:
    """One fitted estimator and its row of the table."""

    problem: str
    label: str
    loss: str
    model: BaseEstimator
    seconds: float
    converged: bool
    J: float
    accuracy: float


def parse_args(argv):
    """Parse the command line.

    Parameters
    ----------
    argv : list of str or None
        Arguments without the program name; None reads ``sys.argv``.

    Returns
    -------
    argparse.Namespace
    """
    parser = argparse.ArgumentParser(
        prog="python -m skgd",
        description="Compare skgd's estimators with scikit-learn's at one alpha.",
    )
    parser.add_argument(
        "--plot",
        metavar="FILE.png",
        help="save the loss curves of skgd's estimators on the synthetic problem",
    )
    parser.add_argument(
        "--n-samples",
        type=int,
        default=100_000,
        metavar="N",
        help="rows of the synthetic problem (default: %(default)s)",
    )
    return parser.parse_args(argv)


def pyplot():
    """Return ``matplotlib.pyplot`` on the Agg backend, or exit if missing."""
    try:
        import matplotlib
    except ImportError:
        sys.exit(
            "--plot needs matplotlib, an optional dependency: pip install skgd[plot]"
        )
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def split(X, y):
    """Stratified 80/20 split, standardised with the training rows' statistics.

    Returns
    -------
    X_train, X_test, y_train, y_test : ndarray
    """
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.2, stratify=y, random_state=0
    )
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def problems(n_samples):
    """Yield ``(name, (X_train, X_test, y_train, y_test))`` of each problem."""
    X, y = make_classification(
        n_samples=n_samples, n_features=50, n_informative=20, random_state=0
    )
    yield f"make_classification (n={n_samples})", split(X, y)
    yield "breast_cancer", split(*load_breast_cancer(return_X_y=True))


def estimators(alpha, n_train):
    """Return ``(label, loss, estimator)`` of each model, all at the same alpha."""
    return [
        (
            "skgd SGDLogisticClassifier (default)",
            "log_loss",
            SGDLogisticClassifier(alpha=alpha, random_state=0),
        ),
        (
            "skgd SGDLogisticClassifier (sgd)",
            "log_loss",
            SGDLogisticClassifier(alpha=alpha, solver="sgd", random_state=0),
        ),
        (
            "skgd SGDLogisticClassifier (adam)",
            "log_loss",
            SGDLogisticClassifier(alpha=alpha, solver="adam", random_state=0),
        ),
        ("skgd HingeSVM", "hinge", HingeSVM(alpha=alpha, random_state=0)),
        (
            "sklearn SGDClassifier (log_loss)",
            "log_loss",
            SGDClassifier(loss="log_loss", alpha=alpha, random_state=0),
        ),
        (
            "sklearn SGDClassifier (hinge)",
            "hinge",
            SGDClassifier(loss="hinge", alpha=alpha, random_state=0),
        ),
        (REFERENCE, "log_loss", LogisticRegression(C=1 / (alpha * n_train))),
    ]


def timed_fit(model, X, y):
    """Fit ``model``, keeping ConvergenceWarning quiet.

    Returns
    -------
    seconds : float
        Wall time of ``fit``.
    converged : bool
        False when ``fit`` raised a ConvergenceWarning.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        start = time.perf_counter()
        model.fit(X, y)
        seconds = time.perf_counter() - start
    converged = True
    for w in caught:
        if issubclass(w.category, ConvergenceWarning):
            converged = False
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return seconds, converged


def evaluate(problem, data, alpha):
    """Fit and score every estimator on one problem.

    Parameters
    ----------
    problem : str
        Name of the problem.
    data : tuple of ndarray
        ``(X_train, X_test, y_train, y_test)``.
    alpha : float
        L2 strength shared by all the estimators.

    Returns
    -------
    list of Result
    """
    X_train, X_test, y_train, y_test = data
    results = []
    for label, loss, model in estimators(alpha, len(y_train)):
        seconds, converged = timed_fit(model, X_train, y_train)
        classes = np.searchsorted(model.classes_, y_train)
        J = objective(loss, model.coef_, model.intercept_, X_train, classes, alpha)
        accuracy = model.score(X_test, y_test)
        results.append(
            Result(problem, label, loss, model, seconds, converged, J, accuracy)
        )
    return results


def reference_objective(data, alpha):
    """J* of the logistic objective: lbfgs run to a tight tolerance."""
    X_train, _, y_train, _ = data
    exact = LogisticRegression(C=1 / (alpha * len(y_train)), tol=1e-10, max_iter=10_000)
    exact.fit(X_train, y_train)
    classes = np.searchsorted(exact.classes_, y_train)
    return objective("log_loss", exact.coef_, exact.intercept_, X_train, classes, alpha)


def table_row(result, J_ref):
    """Format one result as the cells of a markdown table row."""
    epochs = int(np.max(result.model.n_iter_))
    gap = f"{(result.J - J_ref) / J_ref:.2e}" if result.loss == "log_loss" else "-"
    return (
        result.problem,
        result.label,
        f"{result.seconds:.3f}",
        f"{epochs}{'' if result.converged else '*'}",
        f"{result.J:.8f}",
        gap,
        f"{result.accuracy:.4f}",
    )


def markdown_table(rows):
    """Return a markdown table of ``COLUMNS`` and ``rows`` (tuples of str)."""
    align = ["---", "---"] + ["--:"] * (len(COLUMNS) - 2)
    lines = [COLUMNS, align, *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def plot_curves(plt, path, results, J_ref):
    """Save the loss curves of skgd's estimators to ``path``.

    Logistic models show ``loss_curve_ - J_ref`` on a log axis; the hinge
    model shows its ``loss_curve_`` (there is no reference optimum for it).
    """
    skgd_results = [r for r in results if r.label.startswith("skgd")]
    fig, (ax_log, ax_hinge) = plt.subplots(1, 2, figsize=(11, 4.5))
    for loss, ax, f_star in (("log_loss", ax_log, J_ref), ("hinge", ax_hinge, None)):
        chosen = [r for r in skgd_results if r.loss == loss]
        plot_loss_curves(
            [r.model for r in chosen],
            labels=[r.label for r in chosen],
            ax=ax,
            f_star=f_star,
        )
        ax.grid(True, which="both", alpha=0.3)
    ax_log.set_title("logistic objective")
    ax_hinge.set_title("hinge objective")
    fig.suptitle(f"{results[0].problem}, alpha = {ALPHA:g}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    """Run the comparison, print the table and optionally save the plot.

    Parameters
    ----------
    argv : list of str, default=None
        Command-line arguments; None reads ``sys.argv``.
    """
    args = parse_args(argv)
    plt = pyplot() if args.plot else None
    runs = []
    for problem, data in problems(args.n_samples):
        results = evaluate(problem, data, ALPHA)
        runs.append((results, reference_objective(data, ALPHA)))
    rows = [table_row(result, J_ref) for results, J_ref in runs for result in results]
    print(f"alpha = {ALPHA:g} for every estimator; * = ConvergenceWarning\n")
    print(markdown_table(rows))
    if plt is not None:
        plot_curves(plt, args.plot, *runs[0])
        print(f"\nLoss curves saved to {args.plot}")


if __name__ == "__main__":
    main()

"""
Solvers on one axis
===================

Fits ``SGDLogisticClassifier`` on standardised breast-cancer data with each
solver and prints how far each ends from the exact optimum J* (computed by
``solver="newton"``), with the epochs (or Newton steps) it took. All of them
minimise the same objective, so their ``loss_curve_`` can be compared
directly.
"""

import warnings

from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from skgd import SGDLogisticClassifier
from skgd._objective import objective

X, y = load_breast_cancer(return_X_y=True)
X = StandardScaler().fit_transform(X)
alpha = 1e-3

exact = SGDLogisticClassifier(alpha=alpha, solver="newton", tol=1e-10).fit(X, y)
J_star = objective("log_loss", exact.coef_, exact.intercept_, X, y, alpha)

print(f"{'solver':>10} {'epochs':>7} {'J - J*':>10}")
for solver in ["auto", "sgd", "adagrad", "rmsprop", "adam", "newton"]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = SGDLogisticClassifier(alpha=alpha, solver=solver, random_state=0)
        model.fit(X, y)
    J = objective("log_loss", model.coef_, model.intercept_, X, y, alpha)
    print(f"{solver:>10} {model.n_iter_:>7} {J - J_star:>10.2e}")

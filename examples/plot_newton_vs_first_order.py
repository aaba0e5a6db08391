"""
Newton versus first-order solvers
=================================

``SGDLogisticClassifier`` on standardised breast-cancer data (569 rows, 30
correlated features: an ill-conditioned problem) with every solver. All of
them minimise the same objective J, so their ``loss_curve_`` share one axis.
The first-order rules run full batch (``batch_size`` = n), where
``loss_curve_`` is J exactly, for 300 epochs; ``solver="newton"`` reaches
the optimum J* in a few steps, which is why ``solver="auto"`` picks it
whenever one Hessian is cheap.
"""

import time

import matplotlib.pyplot as plt
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler

from skgd import SGDLogisticClassifier
from skgd.plotting import plot_loss_curves

X, y = load_breast_cancer(return_X_y=True)
X = StandardScaler().fit_transform(X)
alpha = 1e-3

first_order = {"batch_size": len(y), "max_iter": 300, "tol": None}
configurations = {
    "sgd": {"solver": "sgd", **first_order},
    "sgd, momentum 0.9": {"solver": "sgd", "momentum": 0.9, **first_order},
    "sgd, Nesterov 0.9": {
        "solver": "sgd",
        "momentum": 0.9,
        "nesterov": True,
        **first_order,
    },
    "adagrad": {"solver": "adagrad", **first_order},
    "rmsprop": {"solver": "rmsprop", **first_order},
    "adam": {"solver": "adam", **first_order},
    "newton": {"solver": "newton", "tol": 1e-10},
}
fits, seconds = [], []
for params in configurations.values():
    model = SGDLogisticClassifier(alpha=alpha, **params)
    start = time.perf_counter()
    fits.append(model.fit(X, y))
    seconds.append(time.perf_counter() - start)
J_star = fits[-1].loss_curve_[-1]

print(f"{'solver':>18} {'epochs':>7} {'time (s)':>9} {'J - J*':>10}")
for label, model, time_s in zip(configurations, fits, seconds, strict=True):
    gap = model.loss_curve_[-1] - J_star
    print(f"{label:>18} {model.n_iter_:>7} {time_s:>9.3f} {gap:>10.2e}")

# %%
# The gap to the optimum per epoch (Newton: per step; its final gap of
# exactly 0 is off the log axis).
ax = plot_loss_curves(fits, labels=list(configurations), f_star=J_star)
ax.set_title(f"breast cancer, alpha = {alpha:g}")
ax.set_xscale("log")
plt.show()

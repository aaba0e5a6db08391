"""
Learning-rate schedules
=======================

The first plot draws the step size eta_t of every schedule that depends only
on the update count t (and the epoch), taken from the same Cython objects
the estimators use. The second fits ``SGDLinearRegressor`` with plain
SGD under four of them and compares the loss curves: a constant step stalls
at a noise floor, and a decaying step goes below it.
"""

import matplotlib.pyplot as plt
from sklearn.datasets import make_regression
from sklearn.preprocessing import StandardScaler

from skgd import SGDLinearRegressor
from skgd.plotting import plot_loss_curves, plot_schedule

n_epochs, updates_per_epoch = 30, 20  # 20 batches of 100 rows
eta0 = 0.05
schedules = {
    "constant": {},
    "invscaling": {"power_t": 0.5},
    "inverse_time": {"decay": 5e-3},
    "exponential": {"decay": 5e-3},
    "step": {"gamma": 0.5, "step_size": 5},
    "linear": {"eta_end": 1e-3},
    "cosine": {"eta_end": 1e-3},
}

_, ax = plt.subplots(figsize=(7, 4.5))
for name, params in schedules.items():
    plot_schedule(
        name,
        eta0=eta0,
        n_steps=n_epochs * updates_per_epoch,
        updates_per_epoch=updates_per_epoch,
        ax=ax,
        **params,
    )
ax.set_yscale("log")
ax.set_title(f"eta0 = {eta0}, {updates_per_epoch} updates per epoch")
plt.show()

# %%
# The same schedules in a fit. ``average=False`` shows the raw iterates
# (averaging would hide the noise floor of the constant step).
X, y = make_regression(n_samples=2000, n_features=20, noise=10.0, random_state=0)
X = StandardScaler().fit_transform(X)
y = (y - y.mean()) / y.std()
fits = [
    SGDLinearRegressor(
        solver="sgd",
        learning_rate=name,
        eta0=eta0,
        batch_size=100,
        max_iter=n_epochs,
        tol=None,
        average=False,
        random_state=0,
        **schedules[name],
    ).fit(X, y)
    for name in ("constant", "invscaling", "step", "cosine")
]
exact = SGDLinearRegressor(solver="newton").fit(X, y)
ax = plot_loss_curves(
    fits, labels=[fit.learning_rate for fit in fits], f_star=exact.loss_curve_[-1]
)
ax.set_title("SGDLinearRegressor(solver='sgd'): gap to the optimum")
plt.show()

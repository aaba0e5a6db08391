"""
skgd and SGDClassifier on one plot
==================================

``SGDLogisticClassifier`` and scikit-learn's ``SGDClassifier(loss="log_loss")``
minimise the same objective at the same ``alpha``:

.. math::

   J(w, b) = \\frac{1}{n} \\sum_i \\log\\left(1 + e^{-y_i (x_i w + b)}\\right)
             + \\frac{\\alpha}{2} \\lVert w \\rVert^2 .

Both are trained one epoch per ``partial_fit`` call, and J is computed
after every epoch, so the two curves measure exactly the same thing. The
exact optimum J* comes from ``solver="newton"``, and the plot shows the gap
J - J*.
"""

import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_classification
from sklearn.linear_model import SGDClassifier
from sklearn.preprocessing import StandardScaler

from skgd import SGDLogisticClassifier
from skgd.plotting import plot_loss_curves

X, y = make_classification(
    n_samples=20_000, n_features=20, n_informative=10, random_state=0
)
X = StandardScaler().fit_transform(X)
alpha = 1e-4
n_epochs = 15


def objective(model):
    """J of a fitted binary model on the training data."""
    f = X @ model.coef_.ravel() + model.intercept_[0]
    signs = np.where(y == 1, 1.0, -1.0)
    data_term = np.mean(np.logaddexp(0.0, -signs * f))
    return data_term + 0.5 * alpha * np.sum(model.coef_**2)


def curve_by_epoch(model):
    """J after each of ``n_epochs`` ``partial_fit`` epochs, and the time."""
    values, seconds = [], 0.0
    for _ in range(n_epochs):
        start = time.perf_counter()
        model.partial_fit(X, y, classes=[0, 1])
        seconds += time.perf_counter() - start
        values.append(objective(model))
    return values, seconds


# %%
# The optimum, then one curve per model.
exact = SGDLogisticClassifier(alpha=alpha, solver="newton", tol=1e-10).fit(X, y)
J_star = objective(exact)

models = {
    "skgd SGDLogisticClassifier (adam)": SGDLogisticClassifier(
        alpha=alpha, solver="adam", random_state=0
    ),
    "sklearn SGDClassifier (log_loss)": SGDClassifier(
        loss="log_loss", alpha=alpha, random_state=0
    ),
}
curves = {}
for label, model in models.items():
    curves[label], seconds = curve_by_epoch(model)
    print(f"{label}: {seconds:.2f} s, final gap {curves[label][-1] - J_star:.2e}")

ax = plot_loss_curves(list(curves.values()), labels=list(curves), f_star=J_star)
ax.set_title(f"Gap to the optimum, alpha = {alpha:g}")
plt.show()

"""
Optimizers on 2-D functions
===========================

``skgd.minimize`` runs the estimators' own update rules (the Cython classes)
on any function. On an ill-conditioned quadratic, plain gradient descent
zig-zags across the valley while momentum and Adam cut along it; on
Rosenbrock's banana-shaped valley, Newton's method reaches the minimum
(1, 1) in a handful of steps where first-order rules need thousands.
"""

import matplotlib.pyplot as plt
import numpy as np

from skgd import minimize
from skgd.plotting import plot_trajectory

# %%
# An ill-conditioned quadratic: f(x) = (x0^2 + 10 x1^2) / 2.
scales = np.array([1.0, 10.0])


def quadratic(x):
    return 0.5 * float(scales @ x**2)


def quadratic_grad(x):
    return scales * x


x0 = [-4.0, 1.5]
runs = {
    "gd, eta=0.18": {"method": "gd", "eta0": 0.18},
    "gd + momentum 0.8, eta=0.05": {"method": "gd", "eta0": 0.05, "momentum": 0.8},
    "adam, eta=0.5": {"method": "adam", "eta0": 0.5},
}
results = [
    minimize(quadratic, x0, jac=quadratic_grad, maxiter=60, tol=1e-8, **kwargs)
    for kwargs in runs.values()
]
ax = plot_trajectory(
    quadratic, results, bounds=((-4.5, 1.5), (-2, 2)), labels=list(runs)
)
ax.set_title("f(x) = (x0² + 10 x1²) / 2, 60 iterations")
plt.show()

# %%
# Rosenbrock's function, from (-1.5, 2).


def rosenbrock(x):
    return float((1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2)


def rosenbrock_grad(x):
    return np.array(
        [-2 * (1 - x[0]) - 400 * x[0] * (x[1] - x[0] ** 2), 200 * (x[1] - x[0] ** 2)]
    )


def rosenbrock_hess(x):
    return np.array(
        [[2 - 400 * (x[1] - 3 * x[0] ** 2), -400 * x[0]], [-400 * x[0], 200.0]]
    )


x0 = [-1.5, 2.0]
runs = {
    "gd, eta=1e-3": {"method": "gd", "eta0": 1e-3},
    "gd + momentum 0.9, eta=2e-4": {"method": "gd", "eta0": 2e-4, "momentum": 0.9},
    "adam, eta=0.05": {"method": "adam", "eta0": 0.05},
    "newton": {"method": "newton", "hess": rosenbrock_hess},
}
results = [
    minimize(rosenbrock, x0, jac=rosenbrock_grad, maxiter=3000, **kwargs)
    for kwargs in runs.values()
]
for label, result in zip(runs, results, strict=True):
    print(f"{label:>28}: {result.nit:5d} iterations, f = {result.fun:.2e}")

fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
plot_trajectory(
    rosenbrock, results, bounds=((-2, 2), (-3, 3)), ax=left, labels=list(runs)
)
left.legend(loc="lower left", fontsize="small")
left.set_title("Rosenbrock's function")
for label, result in zip(runs, results, strict=True):
    right.loglog(np.arange(1, result.nit + 2), result.fun_history, label=label)
right.set(xlabel="iteration + 1", ylabel="f(x)", title="objective by iteration")
right.legend(fontsize="small")
fig.tight_layout()
plt.show()

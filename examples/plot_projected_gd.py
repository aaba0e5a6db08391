"""
Projected gradient descent on a ball
====================================

``max_norm=r`` keeps the iterate in the ball ``||x|| <= r``: every update
is followed by the projection onto it (projected gradient descent). Here
the minimum of an ill-conditioned 2-D quadratic lies outside the unit
disc, so the constrained minimum is on the circle, where the gradient is
normal to it. The estimators do the same with their coefficients
(``SGDLinearRegressor(max_norm=r)`` and friends).

Plain gradient descent projects in the Euclidean sense (a radial scaling
onto the circle). Adam divides its step by ``D = sqrt(s) + eps``; it
projects in that metric, ``argmin (z - y)^T D (z - y)`` over the disc, so
that it stops at the constrained minimum and not at another point of the
circle.
"""

import matplotlib.pyplot as plt
import numpy as np
from scipy.optimize import brentq

from skgd import minimize
from skgd.plotting import plot_trajectory

# %%
# f(x) = (x - c)^T A (x - c) / 2, its minimum c = (2, 1.5) outside the disc.
A = np.array([[1.0, 0.0], [0.0, 8.0]])
c = np.array([2.0, 1.5])
radius = 1.0


def f(x):
    return 0.5 * float((x - c) @ A @ (x - c))


def grad(x):
    return A @ (x - c)


# %%
# The constrained minimum, independently: by the KKT conditions
# x = (A + lam I)^-1 A c with lam > 0 such that ||x|| = r.
def x_of(lam):
    return np.linalg.solve(A + lam * np.eye(2), A @ c)


lam = brentq(lambda t: np.linalg.norm(x_of(t)) - radius, 0.0, 100.0)
x_star = x_of(lam)
print(f"constrained minimum {x_star.round(6)}, multiplier {lam:.4f}")

# %%
# Three methods from (-0.8, -0.5), each projected onto the disc.
x0 = [-0.8, -0.5]
runs = {
    "gd, eta=0.1": {"method": "gd", "eta0": 0.1},
    "adam, eta=0.1": {"method": "adam", "eta0": 0.1},
    "newton (exact ball step)": {"method": "newton", "hess": lambda x: A},
}
results = [
    minimize(f, x0, jac=grad, max_norm=radius, maxiter=200, tol=1e-9, **kwargs)
    for kwargs in runs.values()
]
for label, result in zip(runs, results, strict=True):
    error = np.linalg.norm(result.x - x_star)
    print(
        f"{label:>25}: {result.nit:3d} iterations, ||x|| = "
        f"{np.linalg.norm(result.x):.6f}, distance to x* = {error:.1e}"
    )

ax = plot_trajectory(f, results, bounds=((-1.5, 2.5), (-1.5, 2.0)), labels=list(runs))
ax.add_patch(plt.Circle((0, 0), radius, fill=False, color="k", lw=2))
ax.plot(*c, "k+", ms=12, label="unconstrained minimum")
ax.plot(*x_star, "r*", ms=14, label="constrained minimum")
ax.set_aspect("equal")
ax.legend(loc="lower right", fontsize="small")
ax.set_title("Projected descent onto ||x|| <= 1")
plt.show()

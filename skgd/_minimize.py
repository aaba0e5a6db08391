"""``skgd.minimize``: the estimators' update rules and schedules on any
differentiable function (SPEC section 7).

The update rules are the Cython ``_optimizers`` classes and the step sizes
the Cython ``_schedules`` classes used by the estimators; only the loop over
iterations, which calls back into the user's Python function anyway, is
written here.
"""

import numpy as np
from scipy.optimize import OptimizeResult, approx_fprime

from . import _engine

METHODS = ("gd", "adagrad", "rmsprop", "adam", "newton")
_SOLVER_OF_METHOD = {"gd": "sgd", "adagrad": "adagrad", "rmsprop": "rmsprop"}
_ARMIJO = 1e-4
_MAX_HALVINGS = 60


def minimize(
    fun,
    x0,
    jac=None,
    method="gd",
    *,
    hess=None,
    learning_rate="constant",
    eta0=None,
    maxiter=1000,
    tol=1e-6,
    callback=None,
    momentum=0.0,
    nesterov=False,
    beta1=0.9,
    beta2=0.999,
    rho=0.99,
    eps=1e-8,
    power_t=0.5,
    decay=1e-3,
    gamma=0.1,
    step_size=10,
    eta_end=0.0,
):
    """Minimise ``fun`` from ``x0`` with one of the estimators' update rules.

    Iteration t (from 1) takes the step ``eta_t`` of ``learning_rate`` and
    applies the update rule of ``method`` to the gradient ``g = jac(x)``,
    exactly as SPEC section 3 writes it; ``"newton"`` steps
    ``x -= eta_t * solve(hess(x), g)``.

    Parameters
    ----------
    fun : callable
        ``fun(x) -> float``, or ``fun(x) -> (float, gradient)`` with
        ``jac=True``.
    x0 : array-like
        Starting point (any shape; ``fun`` receives arrays of that shape).
    jac : callable, True or None, default=None
        The gradient ``jac(x)``; True if ``fun`` returns it; None for a
        finite-difference approximation.
    method : {"gd", "adagrad", "rmsprop", "adam", "newton"}, default="gd"
        Update rule; "gd" uses ``momentum`` and ``nesterov``.
    hess : callable, default=None
        ``hess(x)`` -> Hessian matrix, required by ``method="newton"``.
    learning_rate : str, default="constant"
        Any schedule of the estimators: "constant", "invscaling",
        "inverse_time", "exponential", "step" (an "epoch" is an iteration),
        "linear", "cosine" (T = ``maxiter``), "adaptive" (divides the step
        by 5 whenever ``fun`` increases) or "line_search" (Armijo
        backtracking from twice the last accepted step; "gd" without
        momentum and "newton" only).
    eta0 : float, default=None
        First step; None means 1.0 for "newton" and 0.1 otherwise.
    maxiter : int, default=1000
        Most iterations.
    tol : float, default=1e-6
        Stop with success when the gradient's max-norm is at most ``tol``;
        0 runs exactly ``maxiter`` iterations.
    callback : callable, default=None
        ``callback(x)`` after each iteration; returning True stops.
    momentum, nesterov, beta1, beta2, rho, eps : float, bool
        Constants of the update rules, as in the estimators.
    power_t, decay, gamma, step_size, eta_end : float, int
        Constants of the schedules, as in the estimators.

    Returns
    -------
    scipy.optimize.OptimizeResult
        ``x``, ``fun``, ``jac``, ``nit``, ``success``, ``message``,
        ``trajectory`` (every iterate, x0 first) and ``fun_history``
        (``fun`` at each of them). A run that diverges (non-finite value
        or iterate) stops there, with ``success=False``, and returns the
        last finite iterate.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}.")
    if method == "newton" and hess is None:
        raise ValueError(
            "method='newton' needs hess, a function returning the Hessian."
        )
    line_search = learning_rate == "line_search"
    if line_search and (method not in ("gd", "newton") or momentum > 0):
        raise ValueError(
            "learning_rate='line_search' needs method='gd' without momentum or "
            "method='newton'; the other rules scale their own steps."
        )
    if eta0 is None:
        eta0 = 1.0 if method == "newton" else 0.1
    shape = np.shape(x0)
    x = np.array(x0, dtype=np.float64).ravel()
    value_and_grad = _value_and_grad(fun, jac, shape)

    params = {
        "learning_rate": "constant" if line_search else learning_rate,
        "max_iter": maxiter,
        "power_t": power_t,
        "decay": decay,
        "gamma": gamma,
        "step_size": step_size,
        "eta_end": eta_end,
        "alpha": 1.0,
    }
    schedule = _engine.make_schedule(params, eta0, 1, {})
    update = _update_rule(method, x.size, momentum, nesterov, beta1, beta2, rho, eps)

    f, g = value_and_grad(x)
    trajectory, history = [x.copy()], [f]
    message, success, nit, trial_eta = None, False, 0, eta0
    while nit < maxiter:
        if tol > 0 and np.max(np.abs(g)) <= tol:
            message, success = "The gradient's max-norm is at most tol.", True
            break
        t = nit + 1
        eta = schedule(t, nit)[()]
        direction = g if method != "newton" else _newton_direction(hess, x, g, shape)
        if line_search:
            eta = _armijo(value_and_grad, x, f, g, direction, trial_eta)
            trial_eta = 2 * eta
            x_new = x - eta * direction
        elif method == "newton":
            x_new = x - eta * direction
        else:
            x_new = x.copy()
            update(x_new, g, eta, float(t))
        f_new, g_new = value_and_grad(x_new)
        nit += 1
        if not (np.isfinite(f_new) and np.all(np.isfinite(x_new))):
            message = f"Diverged at iteration {nit} (step {eta:.3g}): lower eta0."
            break
        if learning_rate == "adaptive" and f_new > f:
            schedule.plateau()
        x, f, g = x_new, f_new, g_new
        trajectory.append(x.copy())
        history.append(f)
        if callback is not None and callback(x.reshape(shape)) is True:
            message = "Stopped by the callback."
            break
    if message is None:
        if tol > 0 and np.max(np.abs(g)) <= tol:
            message, success = "The gradient's max-norm is at most tol.", True
        elif tol > 0:
            message = f"Reached maxiter={maxiter} before the gradient fell below tol."
        else:
            message, success = f"Ran maxiter={maxiter} iterations (tol=0).", True
    return OptimizeResult(
        x=x.reshape(shape),
        fun=f,
        jac=g.reshape(shape),
        nit=nit,
        success=success,
        message=message,
        trajectory=np.array([p.reshape(shape) for p in trajectory]),
        fun_history=np.array(history),
    )


def _value_and_grad(fun, jac, shape):
    """A function x (flat) -> (float value, flat float64 gradient)."""

    def value_and_grad(x):
        point = x.reshape(shape)
        if jac is True:
            f, g = fun(point)
        else:
            f = fun(point)
            if jac is None:
                g = approx_fprime(x, lambda z: fun(z.reshape(shape)), 1.5e-8)
            else:
                g = jac(point)
        return float(f), np.array(g, dtype=np.float64).ravel()

    return value_and_grad


def _update_rule(method, size, momentum, nesterov, beta1, beta2, rho, eps):
    """The Cython update rule of ``method`` with fresh state, or None."""
    if method == "newton":
        return None
    solver = _SOLVER_OF_METHOD.get(method, "adam")
    if momentum > 0 and solver != "sgd":
        raise ValueError("momentum applies to method='gd' only.")
    params = {
        "solver": solver,
        "momentum": momentum,
        "nesterov": nesterov,
        "beta1": beta1,
        "beta2": beta2,
        "rho": rho,
        "eps": eps,
    }
    state = _engine.OPTIMIZERS[solver].init_state(size)
    return _engine.make_optimizer(params, state).update


def _newton_direction(hess, x, g, shape):
    """solve(H, g), with the minimum-norm solution if H is singular."""
    H = np.atleast_2d(np.asarray(hess(x.reshape(shape)), dtype=np.float64))
    return np.linalg.lstsq(H, g, rcond=None)[0]


def _armijo(value_and_grad, x, f, g, direction, eta):
    """Halve eta until f(x - eta d) <= f(x) - c eta <g, d>; return it."""
    slope = float(g @ direction)
    for _ in range(_MAX_HALVINGS):
        f_trial, _ = value_and_grad(x - eta * direction)
        if f_trial <= f - _ARMIJO * eta * slope:
            break
        eta *= 0.5
    return eta

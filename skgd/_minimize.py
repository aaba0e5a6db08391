"""``skgd.minimize``: the estimators' update rules and schedules on any
differentiable function (SPEC section 7).

The update rules are the Cython ``_optimizers`` classes and the step sizes
the Cython ``_schedules`` classes used by the estimators; only the loop over
iterations, which calls back into the user's Python function anyway, is
written here.
"""

import numbers

import numpy as np
from scipy.optimize import Bounds, OptimizeResult, approx_fprime, brentq

from . import _engine

METHODS = ("gd", "adagrad", "rmsprop", "adam", "newton")
_SOLVER_OF_METHOD = {"gd": "sgd", "adagrad": "adagrad", "rmsprop": "rmsprop"}
_ARMIJO = 1e-4
_MAX_HALVINGS = 60
# A point is on the sphere ||x|| = max_norm when within this relative margin
# (projected iterates are on it to rounding).
_ON_SPHERE = 1e-10
# A Hessian is positive semidefinite when its least eigenvalue is at least
# -_PSD_MARGIN times its largest magnitude.
_PSD_MARGIN = 1e-10


def minimize(
    fun,
    x0,
    jac=None,
    method="gd",
    *,
    hess=None,
    bounds=None,
    max_norm=None,
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

    With ``bounds`` and/or ``max_norm`` the feasible set C is the box, the
    ball ``||x|| <= max_norm`` or their intersection, and every update is
    followed by the projection onto C (projected gradient descent):

    - ``"gd"`` (with or without momentum): the Euclidean projection.
    - ``"adagrad"``, ``"rmsprop"``, ``"adam"``: the projection in the metric
      of the rule, ``argmin_{z in C} (z - y)^T D (z - y)`` with ``D`` the
      diagonal the rule divides its step by (``sqrt(s) + eps``), as in
      AMSGrad (Reddi et al., 2018). Its fixed points are the KKT points;
      those of the Euclidean projection of an adaptive step are not. On a
      box it is the same clipping.
    - ``"newton"`` (``max_norm`` only): the step goes to the exact minimiser
      z of the quadratic model ``g.(z - x) + (z - x)^T H (z - x) / 2`` over
      the ball (the multiplier found by a root search on the eigenvalues of
      H, as in trust-region methods), ``x += eta_t (z - x)``; one step with
      ``eta0=1`` solves a convex quadratic exactly. H must be positive
      semidefinite there; the run stops with ``success=False`` otherwise.
      ``bounds`` with ``"newton"`` would need a box-constrained quadratic
      program per step and raise a ValueError.
    - ``learning_rate="line_search"``: Armijo backtracking along the
      projection arc (Bertsekas), accepting the trial point
      ``x_eta = P(x - eta d)`` when
      ``f(x_eta) <= f(x) + 1e-4 g.(x_eta - x)``; without constraints this is
      the unconstrained rule ``f(x - eta d) <= f(x) - 1e-4 eta g.d``.

    A ball and a box together are projected onto exactly: the projection is
    ``clip(D y / (D + mu), lo, hi)`` with the multiplier ``mu >= 0`` of the
    ball found by a root search.

    Parameters
    ----------
    fun : callable
        ``fun(x) -> float``, or ``fun(x) -> (float, gradient)`` with
        ``jac=True``.
    x0 : array-like
        Starting point (any shape; ``fun`` receives arrays of that shape).
        A point outside the constraints is first projected onto them.
    jac : callable, True or None, default=None
        The gradient ``jac(x)``; True if ``fun`` returns it; None for a
        finite-difference approximation.
    method : {"gd", "adagrad", "rmsprop", "adam", "newton"}, default="gd"
        Update rule; "gd" uses ``momentum`` and ``nesterov``.
    hess : callable, default=None
        ``hess(x)`` -> Hessian matrix, required by ``method="newton"``.
    bounds : sequence of (lo, hi) pairs or scipy.optimize.Bounds, default=None
        A box, as in ``scipy.optimize.minimize``: one pair per coordinate of
        ``x0`` (in ``np.ravel`` order); None or an infinite value leaves that
        side unbounded.
    max_norm : float, default=None
        Radius of the L2 ball centred at 0 (Frobenius norm for arrays):
        ``||x|| <= max_norm``.
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
        with constraints, the max-norm of the projected gradient
        ``x - P(x - g)`` (zero exactly at the KKT points). 0 runs exactly
        ``maxiter`` iterations.
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
        ``trajectory`` (every iterate, x0 -- projected -- first),
        ``fun_history`` (``fun`` at each of them) and ``constraint_active``
        (True when x is on the boundary of the constraints: some coordinate
        at a bound, or ``||x|| = max_norm`` to a relative 1e-10; always
        False without constraints). A run that diverges (non-finite value
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
    feasible = _feasible_set(bounds, max_norm, x.size)
    if feasible is not None:
        if method == "newton" and feasible.lower is not None:
            raise ValueError(
                "bounds with method='newton' are not supported: an exact "
                "constrained Newton step would need a box-constrained quadratic "
                "program per iteration. Use method='gd' with "
                "learning_rate='line_search', or max_norm alone with 'newton'."
            )
        x = feasible.project(x)
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
    update, metric = _update_rule(
        method, x.size, momentum, nesterov, beta1, beta2, rho, eps
    )
    stationary = _stationarity_test(feasible, tol)

    f, g = value_and_grad(x)
    trajectory, history = [x.copy()], [f]
    message, success, nit, trial_eta = None, False, 0, eta0
    while nit < maxiter:
        if stationary(x, g):
            message, success = _converged_message(feasible), True
            break
        t = nit + 1
        eta = schedule(t, nit)[()]
        direction = g
        if method == "newton":
            direction = _newton_direction(hess, x, g, shape, feasible)
            if direction is None:
                message = (
                    f"The Hessian is not positive semidefinite at iteration {t}: "
                    "method='newton' with max_norm needs a convex model."
                )
                break
        if line_search:
            x_new, eta = _armijo(
                value_and_grad, feasible, x, f, g, direction, trial_eta
            )
            trial_eta = 2 * eta
        elif method == "newton":
            x_new = _project(feasible, x - eta * direction)
        else:
            x_new = x.copy()
            update(x_new, g, eta, float(t))
            x_new = _project(feasible, x_new, metric(t))
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
        if stationary(x, g):
            message, success = _converged_message(feasible), True
        elif tol > 0:
            gradient = "gradient" if feasible is None else "projected gradient"
            message = f"Reached maxiter={maxiter} before the {gradient} fell below tol."
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
        constraint_active=feasible is not None and feasible.active(x),
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
    """The Cython update rule of ``method`` with fresh state, and its metric.

    Returns
    -------
    update : callable or None
        ``update(x, g, eta, t)`` in place; None for "newton".
    metric : callable
        ``metric(t)`` -> the diagonal D the rule divided its step t by
        (``sqrt(s_t) + eps``, Adam's ``s`` bias-corrected), read from the
        rule's state after the update; it returns None for plain steps
        and Newton (D = I).
    """
    if method == "newton":
        return None, lambda t: None
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
    update = _engine.make_optimizer(params, state).update
    if solver == "sgd":
        return update, lambda t: None
    if solver == "adam":
        return update, lambda t: np.sqrt(state["m2"] / (1.0 - beta2**t)) + eps
    squares = state["sum_sq" if solver == "adagrad" else "mean_sq"]
    return update, lambda t: np.sqrt(squares) + eps


def _newton_direction(hess, x, g, shape, feasible):
    """The Newton direction d (the step is ``x - eta d``).

    Unconstrained: ``solve(H, g)``, the minimum-norm solution if H is
    singular. With ``max_norm``: ``x - z``, z the minimiser of the quadratic
    model over the ball (:func:`_ball_model_minimiser`); None if H is not
    positive semidefinite.
    """
    H = np.atleast_2d(np.asarray(hess(x.reshape(shape)), dtype=np.float64))
    if feasible is None:
        return np.linalg.lstsq(H, g, rcond=None)[0]
    z = _ball_model_minimiser(H, g, x, feasible.radius)
    return None if z is None else x - z


def _ball_model_minimiser(H, g, x, radius):
    """Minimiser of ``g.(z - x) + (z - x)^T H (z - x) / 2`` over ``||z|| <= r``.

    KKT: ``(H + lam I) z = H x - g`` with ``lam >= 0`` and ``lam = 0`` or
    ``||z|| = r``. With ``H = Q diag(e) Q^T`` and ``c = Q^T (H x - g)``,
    ``||z(lam)|| = ||c / (e + lam)||`` decreases in lam; if the
    minimum-norm model minimiser (lam = 0) is outside the ball, lam is the
    root of ``1 / ||z(lam)|| - 1 / r`` (nearly linear in lam) in
    ``(0, ||c|| / r]``.

    Returns
    -------
    ndarray or None
        z, or None if H has a negative eigenvalue (below ``-_PSD_MARGIN``
        times its largest magnitude).
    """
    e, Q = np.linalg.eigh(0.5 * (H + H.T))
    scale = np.max(np.abs(e), initial=0.0)
    if e[0] < -_PSD_MARGIN * scale:
        return None
    e = np.maximum(e, 0.0)
    c = Q.T @ (H @ x - g)
    cutoff = e.size * np.finfo(float).eps * scale
    z0 = np.divide(c, e, out=np.zeros_like(c), where=e > cutoff)
    norm0 = np.linalg.norm(z0)
    if norm0 <= radius:
        return Q @ z0

    def secular(lam):
        if lam == 0.0:
            return 1.0 / norm0 - 1.0 / radius
        return 1.0 / np.linalg.norm(c / (e + lam)) - 1.0 / radius

    upper = np.linalg.norm(c) / radius
    lam = _root(secular, upper)
    return Q @ (c / (e + lam))


def _root(increasing, upper):
    """Root of an increasing function in ``[0, upper]`` (negative at 0,
    non-negative at upper up to rounding), to rounding (Brent's method)."""
    if increasing(upper) <= 0.0:
        return upper
    return brentq(
        increasing,
        0.0,
        upper,
        xtol=1e-16 * upper,
        rtol=4 * np.finfo(float).eps,
        maxiter=500,
    )


def _armijo(value_and_grad, feasible, x, f, g, direction, eta):
    """Backtracking along the projection arc ``x_eta = P(x - eta d)``.

    Halves eta until ``f(x_eta) <= f(x) + c g.(x_eta - x)`` (Bertsekas'
    Armijo rule along the projection arc; without constraints it reads
    ``f(x - eta d) <= f(x) - c eta g.d``).

    Returns
    -------
    x_eta : ndarray
        The accepted (or last) trial point.
    eta : float
        Its step.
    """
    for _ in range(_MAX_HALVINGS):
        trial = _project(feasible, x - eta * direction)
        f_trial, _ = value_and_grad(trial)
        if f_trial <= f + _ARMIJO * float(g @ (trial - x)):
            break
        eta *= 0.5
    return trial, eta


def _project(feasible, y, scale=None):
    """``feasible.project(y, scale)``, or y itself without constraints."""
    return y if feasible is None else feasible.project(y, scale)


def _stationarity_test(feasible, tol):
    """A function (x, g) -> whether x is stationary to ``tol``.

    The gradient's max-norm, or with constraints that of the projected
    gradient ``x - P(x - g)``; never with ``tol = 0``.
    """
    if tol <= 0:
        return lambda x, g: False
    if feasible is None:
        return lambda x, g: np.max(np.abs(g)) <= tol
    return lambda x, g: np.max(np.abs(x - feasible.project(x - g))) <= tol


def _converged_message(feasible):
    """The message of a successful stop on the gradient test."""
    if feasible is None:
        return "The gradient's max-norm is at most tol."
    return "The projected gradient's max-norm is at most tol."


# ------------------------------------------------------- constraints ---


def _feasible_set(bounds, max_norm, size):
    """The validated constraints, or None without any.

    Raises
    ------
    ValueError
        Naming the argument: ``bounds`` of the wrong length or form, with
        NaN or with ``lo > hi``; ``max_norm`` not a positive finite number;
        a box that misses the ball.
    """
    lower, upper = _box(bounds, size)
    if max_norm is not None and not (
        isinstance(max_norm, numbers.Real)
        and not isinstance(max_norm, bool)
        and 0 < max_norm < np.inf
    ):
        raise ValueError(
            f"max_norm must be a positive number or None; got {max_norm!r}."
        )
    if lower is None and max_norm is None:
        return None
    feasible = _FeasibleSet(lower, upper, None if max_norm is None else float(max_norm))
    if max_norm is not None and lower is not None:
        nearest = np.linalg.norm(feasible.clip(np.zeros(size)))
        if nearest >= max_norm:
            raise ValueError(
                f"bounds and max_norm leave no feasible point with ||x|| < max_norm: "
                f"the point of the box nearest 0 has norm {nearest:.6g} >= "
                f"max_norm={max_norm!r}."
            )
    return feasible


def _box(bounds, size):
    """``(lower, upper)`` arrays of shape (size,) from ``bounds``, or
    ``(None, None)`` if it bounds nothing."""
    if bounds is None:
        return None, None
    try:
        if isinstance(bounds, Bounds):
            lower = np.broadcast_to(np.asarray(bounds.lb, dtype=float), (size,))
            upper = np.broadcast_to(np.asarray(bounds.ub, dtype=float), (size,))
        else:
            pairs = [(-np.inf if lo is None else lo, np.inf if hi is None else hi)
                     for lo, hi in bounds]  # fmt: skip
            lower, upper = np.array(pairs, dtype=float).reshape(-1, 2).T
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"bounds must be a sequence of (lo, hi) pairs or a "
            f"scipy.optimize.Bounds; got {bounds!r}."
        ) from error
    if lower.shape != (size,):
        raise ValueError(
            f"bounds must hold one (lo, hi) pair per coordinate of x0 ({size}); "
            f"got {lower.size}."
        )
    if np.any(np.isnan(lower)) or np.any(np.isnan(upper)):
        raise ValueError("bounds must not contain NaN (use None for no bound).")
    wrong = np.flatnonzero(lower > upper)
    if wrong.size:
        j = wrong[0]
        raise ValueError(
            f"bounds must have lo <= hi; coordinate {j} has lo={lower[j]!r} > "
            f"hi={upper[j]!r}."
        )
    if np.all(np.isneginf(lower)) and np.all(np.isposinf(upper)):
        return None, None
    return lower.copy(), upper.copy()


class _FeasibleSet:
    """A box, an L2 ball centred at 0, or their intersection.

    Parameters
    ----------
    lower, upper : ndarray of shape (size,) or None
        The box (None: no box).
    radius : float or None
        The ball's radius (None: no ball).
    """

    def __init__(self, lower, upper, radius):
        self.lower, self.upper, self.radius = lower, upper, radius

    def clip(self, y):
        """The projection onto the box alone."""
        return y if self.lower is None else np.clip(y, self.lower, self.upper)

    def project(self, y, scale=None):
        """``argmin_{z feasible} (z - y)^T diag(scale) (z - y)``.

        Parameters
        ----------
        y : ndarray of shape (size,)
            The point; returned as is if not finite (divergence is reported
            by the caller).
        scale : ndarray of shape (size,), default=None
            Positive metric diagonal; None is the Euclidean projection.

        Returns
        -------
        ndarray of shape (size,)
            On the box the projection is ``clip`` in any diagonal metric.
            With the ball, if ``clip(y)`` is outside it, the minimiser is
            ``clip(D y / (D + mu))`` (each coordinate of the Lagrangian is a
            one-dimensional quadratic over an interval), with ``mu > 0``
            making its norm the radius: ``||x|| <= r`` is then active. The
            Euclidean projection onto the ball alone is ``r y / ||y||``.
        """
        z = self.clip(y)
        if self.radius is None or not np.all(np.isfinite(y)):
            return z
        norm = np.linalg.norm(z)
        if norm <= self.radius:
            return z
        if scale is None and self.lower is None:
            return y * (self.radius / norm)
        D = np.ones_like(y) if scale is None else scale

        def shortfall(mu):
            return self.radius - np.linalg.norm(self.clip(D * y / (D + mu)))

        upper = np.linalg.norm(D * y) / self.radius
        while shortfall(upper) < 0:  # only if 0 is outside the box
            upper *= 2.0
        return self.clip(D * y / (D + _root(shortfall, upper)))

    def active(self, x):
        """Whether x is on the boundary: at a bound or on the sphere."""
        on_box = self.lower is not None and bool(
            np.any((x <= self.lower) | (x >= self.upper))
        )
        on_sphere = self.radius is not None and bool(
            np.linalg.norm(x) >= self.radius * (1.0 - _ON_SPHERE)
        )
        return on_box or on_sphere

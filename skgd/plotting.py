"""Plots for notebooks and teaching (SPEC section 7): loss curves,
learning-rate schedules and optimizer trajectories on 2-D functions.

matplotlib is an optional dependency (``pip install skgd[plot]``); it is
imported when a plot is drawn, not when this module is imported. Every
function draws on ``ax`` (a new figure's axes when None) and returns it.
"""

import numpy as np

from . import _engine

# Schedule constants as the estimators default them.
SCHEDULE_DEFAULTS = {
    "power_t": 0.5,
    "decay": 1e-3,
    "gamma": 0.1,
    "step_size": 10,
    "eta_end": 0.0,
    "alpha": 1e-4,
}


def _pyplot():
    """Return ``matplotlib.pyplot``, or raise an ImportError saying how to get it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "skgd.plotting needs matplotlib, an optional dependency: "
            "pip install skgd[plot]"
        ) from exc
    return plt


def _axes(ax):
    """``ax``, or the axes of a new figure when ``ax`` is None."""
    if ax is None:
        _, ax = _pyplot().subplots()
    return ax


def _curve_and_label(entry, index):
    """The objective values and default label of one entry of ``estimators``."""
    if hasattr(entry, "loss_curve_"):
        solver = getattr(entry, "solver_", None)
        name = type(entry).__name__
        return np.asarray(entry.loss_curve_, dtype=float), (
            f"{name} ({solver})" if solver else name
        )
    return np.asarray(entry, dtype=float).ravel(), f"curve {index}"


def plot_loss_curves(estimators, labels=None, ax=None, f_star=None, **plot_kwargs):
    """Plot the objective per epoch of several fits on one log-scale axis.

    Parameters
    ----------
    estimators : estimator or sequence
        Fitted estimators with a ``loss_curve_`` attribute (J per epoch),
        or sequences of objective values per epoch (for models that keep no
        history, e.g. J computed after each ``partial_fit`` epoch).
    labels : sequence of str, default=None
        Legend entries; None names each estimator by its class and
        ``solver_``.
    ax : matplotlib.axes.Axes, default=None
        Axes to draw on; None makes a new figure.
    f_star : float, default=None
        Optimal objective J*. When given, the curves show the gap
        ``J - f_star`` (values <= 0 are masked on the log axis).
    **plot_kwargs
        Passed to every ``ax.plot`` call.

    Returns
    -------
    matplotlib.axes.Axes
        One line per estimator, x = epochs 1, 2, ... and y = J (or
        ``J - f_star``).
    """
    if hasattr(estimators, "loss_curve_"):
        estimators = [estimators]
    ax = _axes(ax)
    entries = [_curve_and_label(est, i) for i, est in enumerate(estimators)]
    if labels is None:
        labels = [label for _, label in entries]
    if len(labels) != len(entries):
        raise ValueError(f"Got {len(labels)} labels for {len(entries)} curves.")
    for (curve, _), label in zip(entries, labels, strict=True):
        values = curve if f_star is None else curve - f_star
        ax.plot(np.arange(1, curve.size + 1), values, label=label, **plot_kwargs)
    ax.set_yscale("log", nonpositive="mask")
    ax.set_xlabel("epoch")
    ax.set_ylabel("objective J" if f_star is None else "J - J*")
    ax.legend()
    return ax


def plot_schedule(
    learning_rate,
    *,
    eta0=0.1,
    n_steps=1000,
    updates_per_epoch=1,
    ax=None,
    label=None,
    power_t=SCHEDULE_DEFAULTS["power_t"],
    decay=SCHEDULE_DEFAULTS["decay"],
    gamma=SCHEDULE_DEFAULTS["gamma"],
    step_size=SCHEDULE_DEFAULTS["step_size"],
    eta_end=SCHEDULE_DEFAULTS["eta_end"],
    alpha=SCHEDULE_DEFAULTS["alpha"],
    **plot_kwargs,
):
    """Plot the step size eta_t of a learning-rate schedule.

    The values come from the Cython schedule object the estimators and
    ``skgd.minimize`` use (built by the same factory), not from a
    re-implementation.

    Parameters
    ----------
    learning_rate : str
        "constant", "invscaling", "inverse_time", "exponential", "step",
        "linear", "cosine" or "optimal". ("adaptive" and "line_search"
        depend on the objective, not only on t; record them with an
        estimator's ``callback``, whose ``info["eta"]`` is the step.)
    eta0 : float, default=0.1
        First step (ignored by "optimal", which starts at 1 / (alpha t0)).
    n_steps : int, default=1000
        Updates t = 1, ..., n_steps to plot; also the horizon T of
        "linear" and "cosine".
    updates_per_epoch : int, default=1
        Updates per epoch, for "step", which changes by epoch: update t
        belongs to epoch ``(t - 1) // updates_per_epoch``.
    ax : matplotlib.axes.Axes, default=None
        Axes to draw on; None makes a new figure.
    label : str, default=None
        Legend entry; None uses ``learning_rate``.
    power_t, decay, gamma, step_size, eta_end, alpha : float, int
        Schedule constants, with the estimators' defaults.
    **plot_kwargs
        Passed to ``ax.plot``.

    Returns
    -------
    matplotlib.axes.Axes
        With one more line, x = t and y = eta_t.
    """
    if learning_rate in ("adaptive", "line_search"):
        raise ValueError(
            f"learning_rate={learning_rate!r} depends on the objective, not "
            "only on t: record info['eta'] with an estimator's callback instead."
        )
    if learning_rate not in _engine.SCHEDULES:
        raise ValueError(
            f"learning_rate must be one of {_engine.SCHEDULES}; got {learning_rate!r}."
        )
    params = {
        "learning_rate": learning_rate,
        "max_iter": n_steps,
        "power_t": power_t,
        "decay": decay,
        "gamma": gamma,
        "step_size": step_size,
        "eta_end": eta_end,
        "alpha": alpha,
    }
    schedule = _engine.make_schedule(params, eta0, 1, {})
    t = np.arange(1, n_steps + 1)
    eta = schedule(t, (t - 1) // updates_per_epoch)
    ax = _axes(ax)
    ax.plot(t, eta, label=learning_rate if label is None else label, **plot_kwargs)
    ax.set_xlabel("update t")
    ax.set_ylabel("step size eta_t")
    ax.legend()
    return ax


def _grid_values(fun, bounds, n_grid):
    """``fun`` on an ``n_grid`` x ``n_grid`` grid over ``bounds``."""
    (x_min, x_max), (y_min, y_max) = bounds
    xx, yy = np.meshgrid(
        np.linspace(x_min, x_max, n_grid), np.linspace(y_min, y_max, n_grid)
    )
    zz = np.array([fun(np.array(p)) for p in zip(xx.ravel(), yy.ravel(), strict=True)])
    return xx, yy, zz.reshape(xx.shape)


def _bounds_around(paths, margin=0.1):
    """The box holding every path, widened by ``margin`` of its size."""
    points = np.concatenate(paths)
    low, high = points.min(axis=0), points.max(axis=0)
    pad = margin * np.maximum(high - low, 1e-3)
    return tuple(zip(low - pad, high + pad, strict=True))


def plot_trajectory(
    fun, results, bounds=None, ax=None, labels=None, levels=30, n_grid=100
):
    """Plot the contours of a 2-D function and optimizer paths over them.

    Parameters
    ----------
    fun : callable
        ``fun(x) -> float`` for ``x`` of shape (2,) (the value only, even
        if ``minimize`` was given ``jac=True``).
    results : OptimizeResult or sequence of OptimizeResult
        Results of ``skgd.minimize`` on 2-D problems; their
        ``trajectory`` (every iterate, x0 first) is drawn.
    bounds : ((x_min, x_max), (y_min, y_max)), default=None
        Extent of the contour plot; None takes the paths' extent with a
        10% margin.
    ax : matplotlib.axes.Axes, default=None
        Axes to draw on; None makes a new figure.
    labels : sequence of str, default=None
        Legend entries of the paths; None draws no legend.
    levels : int or array-like, default=30
        Contour levels. An int spaces that many levels geometrically above
        the grid's minimum, which shows narrow valleys (e.g. Rosenbrock's)
        as well as bowls.
    n_grid : int, default=100
        Grid points per axis at which ``fun`` is evaluated.

    Returns
    -------
    matplotlib.axes.Axes
        With the contour set and one line per result (x and y data equal
        to the trajectory's two coordinates).
    """
    if isinstance(results, dict):
        results = [results]
    paths = [np.asarray(result.trajectory, dtype=float) for result in results]
    for path in paths:
        if path.ndim != 2 or path.shape[1] != 2:
            raise ValueError(
                f"plot_trajectory needs 2-D problems; got a trajectory of shape "
                f"{path.shape}."
            )
    if labels is not None and len(labels) != len(paths):
        raise ValueError(f"Got {len(labels)} labels for {len(paths)} results.")
    ax = _axes(ax)
    xx, yy, zz = _grid_values(fun, bounds or _bounds_around(paths), n_grid)
    if np.ndim(levels) == 0:
        span = max(np.ptp(zz), np.finfo(float).tiny)
        levels = zz.min() + np.geomspace(span * 1e-4, span, int(levels))
    ax.contour(xx, yy, zz, levels=levels, cmap="viridis", linewidths=0.8)
    for i, path in enumerate(paths):
        label = None if labels is None else labels[i]
        ax.plot(path[:, 0], path[:, 1], marker=".", markersize=4, label=label)
    ax.set_xlabel("x[0]")
    ax.set_ylabel("x[1]")
    if labels is not None:
        ax.legend()
    return ax

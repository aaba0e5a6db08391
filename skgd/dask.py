"""Dask estimators: the skgd models on data spread over a cluster (SPEC 6).

:class:`DaskSGDLinearRegressor`, :class:`DaskSGDLogisticClassifier` and
:class:`DaskHingeSVM` take Dask arrays or dataframes, run on the current
``dask.distributed`` client and minimise the objective J of the in-memory
estimators, with the same parameters. ``to_local()`` returns the plain
fitted estimator. Everything is built on Dask's own primitives (delayed
tasks on the blocks, tree reductions, ``Client.compute``); rows never leave
the worker that holds them, only parameters and small sums travel.

- ``solver="newton"``: every block sums the gradient and the Hessian of its
  rows with the in-memory Newton code (``skgd._newton.block_terms``); the
  sums are reduced in a tree and the small Newton system is solved on the
  client. One round trip per Newton step: the same tasks evaluate the line
  search's trial steps along the previous direction.
- First-order solvers: federated averaging. Each round, every block runs
  one local epoch of the in-memory Cython engine from the current
  parameters, and the parameters are averaged, weighted by the blocks'
  sums of sample weights; then J is evaluated blockwise at the average.
  ``max_iter`` counts rounds, ``tol`` / ``n_iter_no_change`` apply per
  round and ``loss_curve_`` holds J per round. Step-size schedules and the
  optimizer state restart in every round (each local fit starts afresh
  from the averaged parameters).

A lost worker is handled by Dask: the blocks it held are recomputed from
their graph, and every local fit is seeded by (``random_state``, round,
block), so the result does not change; if tasks keep failing, Dask's
``KilledWorker`` error is raised.

Dask starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which makes the
NumPy temporaries of the block work re-fault their pages (2-4x slower
fits, measured); the README shows the worker environment that avoids it.
"""

import copy
import warnings

import dask
import dask.array as da
import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from ._hinge import HingeSVM
from ._logistic import SGDLogisticClassifier
from ._newton import _ARMIJO, block_terms, newton_direction
from ._objective import objective
from ._regressor import SGDLinearRegressor

__all__ = ["DaskHingeSVM", "DaskSGDLinearRegressor", "DaskSGDLogisticClassifier"]

# Trial steps 1, 1/2, ..., 2^-9 of the blockwise line search, all evaluated
# in the round trip of a Newton step (a column accepting none stalls).
_LINE_SEARCH_STEPS = 0.5 ** np.arange(10)

# Fan-in of the tree reductions.
_SPLIT_EVERY = 8


def _current_client():
    """The current ``dask.distributed`` client, or a clear error."""
    from distributed import get_client

    try:
        return get_client()
    except ValueError as exc:
        raise ValueError(
            "skgd.dask estimators run on the current dask.distributed client; "
            "start one first, e.g. `from distributed import Client; client = "
            "Client()`."
        ) from exc


# ------------------------------------------------------------ input ---


def _is_dask(data):
    """Whether ``data`` is a Dask array, dataframe or series."""
    return isinstance(data, da.Array) or hasattr(data, "to_dask_array")


def _to_dask_array(data):
    """A Dask array from a Dask array, dataframe or series, or array-like."""
    if hasattr(data, "to_dask_array"):
        return data.to_dask_array(lengths=True)
    if isinstance(data, da.Array):
        return data
    return da.from_array(np.asarray(data))


def _prepare(X, y, sample_weight):
    """Dask arrays with the same row chunks; X with one chunk of columns.

    Returns
    -------
    X : dask.array of shape (n_samples, n_features), float32 or float64
    y : dask.array of shape (n_samples,) or (n_samples, n_outputs)
    sample_weight : dask.array of shape (n_samples,) or None
    names : ndarray of str or None
        The column names of a dataframe X.
    """
    columns = getattr(X, "columns", None)
    names = None
    if columns is not None and all(isinstance(c, str) for c in columns):
        names = np.asarray(columns, dtype=object)
    X, y = _to_dask_array(X), _to_dask_array(y)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features); got {X.ndim}-D.")
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    X = X.rechunk({1: -1})
    rows = X.chunks[0]
    if y.shape[0] != X.shape[0]:
        raise ValueError(
            f"X and y have inconsistent numbers of samples: {X.shape[0]} and "
            f"{y.shape[0]}."
        )
    y = y.rechunk((rows,) + tuple((n,) for n in y.shape[1:]))
    if sample_weight is not None:
        sample_weight = _to_dask_array(sample_weight)
        sample_weight = sample_weight.astype(np.float64).rechunk((rows,))
    return X, y, sample_weight, names


def _block_triples(X, y, sample_weight):
    """Delayed (X block, y block, weight block or None) per row block."""
    xs = X.to_delayed().ravel()
    ys = y.to_delayed().ravel()
    ws = [None] * len(xs) if sample_weight is None else sample_weight.to_delayed()
    return list(zip(xs, ys, ws, strict=True))


def _encode_block(y, sample_weight, targets):
    """A block's targets in the core layout, labels and weights.

    Returns
    -------
    Y : ndarray of shape (n_rows, n_y)
        Class indices (one column) or regression targets.
    labels : ndarray
        Class indices of shape (n_rows,) or the targets, for ``objective``.
    weights : ndarray of shape (n_rows,)
        Sample weights times the (global) class weights.
    """
    n = len(y)
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, float)
    classes = targets["classes"]
    if classes is None:
        Y = np.asarray(y, dtype=np.float64).reshape(n, -1)
        return Y, Y, w
    idx = np.searchsorted(classes, np.asarray(y))
    if targets["class_weight"] is not None:
        w = w * targets["class_weight"][idx]
    return idx.astype(np.float64)[:, None], idx, w


# ------------------------------------------------------ block tasks ---


def _newton_block(X, y, sample_weight, targets, theta, direction, steps, params):
    """:func:`skgd._newton.block_terms` on one block.

    A float32 block is converted to float64 once (a task-local copy), not
    once per pass as the in-memory code does to avoid copying X.
    """
    Y, _, w = _encode_block(y, sample_weight, targets)
    X = X.astype(np.float64, copy=False)
    return block_terms(
        targets["loss"], X, Y, w, theta, params["fit_intercept"], targets["K"],
        direction=direction, steps=steps,
    )  # fmt: skip


def _local_round(X, y, sample_weight, targets, template, theta, seed):
    """One local epoch of the in-memory estimator from theta, on one block.

    Returns the block's sum of weights S_b and S_b times its parameters
    (those that predict: the Polyak average when averaging).
    """
    Y, _, w = _encode_block(y, sample_weight, targets)
    S = float(w.sum())
    if S == 0:
        return {"weight": 0.0, "theta": np.zeros_like(theta)}
    est = clone(template).set_params(random_state=seed)
    K, d = targets["K"], X.shape[1]
    est._reset_state(d, K, template.solver)
    est._theta[:] = theta
    est._theta_avg[:] = theta
    est._y_ndim = 2  # the regressor's coef_ of shape (K, d)
    X = np.ascontiguousarray(X)
    est._run(X, Y, w, targets["loss"], K, max_epochs=1, partial=True, append=False)
    coef = np.asarray(est.coef_, dtype=np.float64).reshape(K, d)
    local = np.concatenate([coef.T.ravel(), np.asarray(est.intercept_, float)])
    return {"weight": S, "theta": S * local}


def _weighted_mean(total):
    """The average of the blocks' parameters, weighted by their S_b."""
    if not total["weight"] > 0:
        raise ValueError(
            "sample_weight sums to zero: at least one row needs a positive weight."
        )
    return total["theta"] / total["weight"]


def _objective_block(X, y, sample_weight, targets, theta):
    """The block's weighted loss sum at theta (for J per round)."""
    _, labels, w = _encode_block(y, sample_weight, targets)
    S = float(w.sum())
    if S == 0:
        return {"weight": 0.0, "loss": 0.0}
    K, d = targets["K"], X.shape[1]
    coef = theta[: d * K].reshape(d, K).T
    loss = "log_loss" if targets["loss"] == "multinomial" else targets["loss"]
    mean = objective(loss, coef, theta[d * K :], X, labels, 0.0, w)
    return {"weight": S, "loss": S * mean}


def _add(*terms):
    """Element-wise sum of dicts of numbers / arrays (None stays None)."""
    return {
        key: None if value is None else sum(t[key] for t in terms)
        for key, value in terms[0].items()
    }


def _tree_sum(parts):
    """Sum delayed dicts in a tree of fan-in ``_SPLIT_EVERY``."""
    add = dask.delayed(_add, pure=True)
    while len(parts) > 1:
        parts = [
            add(*parts[i : i + _SPLIT_EVERY])
            for i in range(0, len(parts), _SPLIT_EVERY)
        ]
    return parts[0]


# --------------------------------------------------------- estimator ---


class _DaskMixin:
    """``fit`` on Dask collections by blockwise Newton or federated averaging.

    Subclasses set ``_local_class`` (the in-memory estimator) and implement
    ``_dask_targets``.
    """

    def fit(self, X, y, sample_weight=None):
        """Fit on Dask arrays or dataframes, on the current distributed client.

        Parameters
        ----------
        X : dask array or dataframe of shape (n_samples, n_features)
            Row blocks are the unit of work; they are never gathered.
        y : dask array or series of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : dask array of shape (n_samples,), default=None

        Returns
        -------
        self
        """
        client = _current_client()
        self._validate_params()
        self._check_solver_params()
        if self.early_stopping:
            raise ValueError(
                "early_stopping is not available on Dask; monitor a held-out "
                "Dask array with score() between fits, or fit in memory."
            )
        X, y, sample_weight, names = _prepare(X, y, sample_weight)
        n, d = X.shape
        targets = self._dask_targets(y, client)
        K = targets["K"]
        solver = self._choose_solver(targets["loss"], n, d, K)
        if solver == "newton" and self.max_norm is not None:
            raise ValueError(
                "max_norm with solver='newton' is not available on Dask (the "
                "blockwise Newton solve is unconstrained); choose a first-order "
                "solver, e.g. solver='adam', whose local fits project onto the "
                "ball (their average stays in it), or fit in memory."
            )
        warm = self.warm_start and self._state_fits(d, K, solver)
        if not warm:
            intercept = self._dask_initial_intercept(y, sample_weight, client)
            self._reset_state(d, K, solver, intercept)
        self.n_features_in_ = d
        if names is not None:
            self.feature_names_in_ = names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        parts = _block_triples(X, y, sample_weight)
        run = self._fit_newton if solver == "newton" else self._fit_federated
        theta, curve, finished = run(client, parts, targets)
        self._commit(theta, curve, warm, X.dtype, d, K)
        if not finished and self.tol is not None:
            unit = "Newton steps" if solver == "newton" else "rounds"
            warnings.warn(
                f"Maximum number of {unit} (max_iter={self.max_iter}) reached "
                "before the stopping rule was met; increase max_iter or tol.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    def partial_fit(self, X, y, *args, **kwargs):
        """In-memory ``partial_fit`` (one epoch on NumPy / SciPy data).

        Dask collections are refused: use
        ``dask_ml.wrappers.Incremental(<in-memory estimator>)`` to stream
        their blocks through ``partial_fit``, or ``fit``.
        """
        if _is_dask(X):
            raise TypeError(
                f"{type(self).__name__}.partial_fit takes in-memory data; for Dask "
                f"collections use fit(), or dask_ml.wrappers.Incremental("
                f"{self._local_class.__name__}(...)).fit(X, y) to stream the blocks."
            )
        return super().partial_fit(X, y, *args, **kwargs)

    def to_local(self):
        """The fitted in-memory estimator, with the same parameters and state.

        Returns
        -------
        estimator : SGDLinearRegressor, SGDLogisticClassifier or HingeSVM
        """
        check_is_fitted(self)
        params = self.get_params()
        local = self._local_class(**params)
        state = {k: v for k, v in vars(self).items() if k not in params}
        local.__dict__.update(copy.deepcopy(state))
        return local

    def predict(self, X):
        """Predictions; a lazy Dask array for Dask input."""
        return self._dispatch("predict", X)

    def decision_function(self, X):
        """Decision values; a lazy Dask array for Dask input."""
        return self._dispatch("decision_function", X)

    def score(self, X, y, sample_weight=None):
        """Accuracy (classifiers) or R^2 (regressor), also on Dask input."""
        if not _is_dask(X):
            return super().score(X, y, sample_weight=sample_weight)
        X, y, sample_weight, _ = _prepare(X, y, sample_weight)
        pred = self.predict(X)
        if sample_weight is None:
            sample_weight = da.ones(y.shape[0], chunks=y.chunks[0])
        if is_classifier(self):
            return float(da.average(pred == y, weights=sample_weight).compute())
        return _r2_score(y, pred, sample_weight)

    # ------------------------------------------------------ internals --

    def _dispatch(self, method, X):
        """``method`` of the local estimator, mapped over Dask blocks."""
        local_method = getattr(super(), method)
        if not _is_dask(X):
            return local_method(X)
        check_is_fitted(self)
        names = getattr(X, "columns", None)
        if names is not None and hasattr(self, "feature_names_in_"):
            if list(names) != list(self.feature_names_in_):
                raise ValueError(
                    "The feature names of X differ from those seen in fit: "
                    f"{list(names)} vs {list(self.feature_names_in_)}."
                )
        X = _to_dask_array(X).rechunk({1: -1})
        local = self.to_local()
        local.__dict__.pop("feature_names_in_", None)  # blocks are plain arrays
        meta = getattr(local, method)(np.zeros((1, X.shape[1]), X.dtype))
        if meta.ndim == 1:
            return X.map_blocks(getattr(local, method), drop_axis=1, dtype=meta.dtype)
        return X.map_blocks(
            getattr(local, method), chunks=(X.chunks[0], meta.shape[1]),
            dtype=meta.dtype,
        )  # fmt: skip

    def _local_template(self, solver):
        """The in-memory estimator that one block's local epoch runs."""
        params = {
            **self.get_params(),
            "solver": solver,
            "warm_start": False,
            "verbose": 0,
            "callback": None,
        }
        if "class_weight" in params:
            params["class_weight"] = None  # folded into the blocks' weights
        return self._local_class(**params)

    def _dask_initial_intercept(self, y, sample_weight, client):
        """The intercept a fresh fit starts from (None: zero)."""
        return None

    def _compute(self, client, *objects):
        """One round trip: compute delayed objects on the cluster."""
        return client.compute(list(objects), sync=True)

    def _report(self, n_iter, objective, theta, d, K, eta):
        """verbose line and callback after a Newton step or a round."""
        if self.verbose:
            kind = "Newton step" if self.solver_ == "newton" else "Round"
            print(f"-- {kind} {n_iter}: objective {objective:.10g}")
        if self.callback is None:
            return False
        coef, intercept = self._coef_intercept(theta, theta, 0, -1.0, float, d, K)
        info = {
            "epoch": n_iter,
            "objective": objective,
            "eta": eta,
            "coef": coef,
            "intercept": intercept,
        }
        return self.callback(self, info) is True

    def _fit_newton(self, client, parts, targets):
        """Blockwise damped Newton (SPEC section 4), one round trip per step.

        Returns
        -------
        theta, loss_curve, finished
        """
        loss, K = targets["loss"], targets["K"]
        theta = self._theta.copy()
        d = theta.size // K - 1
        if loss == "multinomial":  # the symmetric gauge, as in memory
            T = theta.reshape(d + 1, K)
            theta = (T - T.mean(axis=1, keepdims=True)).ravel()
        params = {"fit_intercept": self.fit_intercept}
        tol = 0.0 if self.tol is None else self.tol

        def reduce(theta, direction=None, steps=(1.0,)):
            task = dask.delayed(_newton_block, pure=True)
            terms = [
                task(xb, yb, wb, targets, theta, direction, steps, params)
                for xb, yb, wb in parts
            ]
            (total,) = self._compute(client, _tree_sum(terms))
            if not total["weight"] > 0:
                raise ValueError(
                    "sample_weight sums to zero: at least one row needs a "
                    "positive weight."
                )
            return total

        terms = reduce(theta)
        J, g, p = newton_direction(terms, theta, loss, self.alpha, self.fit_intercept)
        curve, n_iter, stalled = [], 0, False
        while not stalled and n_iter < self.max_iter:
            if n_iter >= 1 and np.max(np.abs(g)) <= tol:
                break
            terms = reduce(theta, p, _LINE_SEARCH_STEPS)
            t, dJ = _armijo(terms["changes"] / terms["weight"], theta, p, g, d, K,
                            self.alpha, loss == "multinomial")  # fmt: skip
            stalled = not np.any(t > 0)
            theta = (theta.reshape(d + 1, K) + t * p.reshape(d + 1, K)).ravel()
            if not np.all(t == 1.0):
                terms = reduce(theta)
            _, g, p = newton_direction(
                terms, theta, loss, self.alpha, self.fit_intercept
            )
            J += dJ.sum()
            n_iter += 1
            curve.append(float(J))
            if self._report(n_iter, float(J), theta, d, K, 1.0):
                return theta, curve, True
        return theta, curve, bool(n_iter >= 1 and np.max(np.abs(g)) <= tol)

    def _fit_federated(self, client, parts, targets):
        """Federated averaging with one local epoch per block and round.

        Returns
        -------
        theta, loss_curve, finished
        """
        K = targets["K"]
        theta = self._theta.copy()
        d = theta.size // K - 1
        template = self._local_template(self.solver_)
        rng = check_random_state(self.random_state)
        local = dask.delayed(_local_round, pure=True)
        block_objective = dask.delayed(_objective_block, pure=True)
        curve, best, no_improve = [], np.inf, 0
        for n_iter in range(1, self.max_iter + 1):
            seeds = rng.randint(np.iinfo(np.int32).max, size=len(parts))
            fits = [
                local(xb, yb, wb, targets, template, theta, int(seed))
                for (xb, yb, wb), seed in zip(parts, seeds, strict=True)
            ]
            average = dask.delayed(_weighted_mean, pure=True)(_tree_sum(fits))
            sums = _tree_sum(
                [block_objective(xb, yb, wb, targets, average) for xb, yb, wb in parts]
            )
            theta, total = self._compute(client, average, sums)
            W = theta[: d * K]
            J = total["loss"] / total["weight"] + 0.5 * self.alpha * W @ W
            if not np.isfinite(J):
                raise ValueError(
                    f"{type(self).__name__} diverged in round {n_iter}: the "
                    f"objective became non-finite (solver={self.solver_!r}). Scale "
                    "the features (e.g. StandardScaler), lower eta0, or use "
                    "eta0='auto'."
                )
            curve.append(float(J))
            if self._report(n_iter, float(J), theta, d, K, None):
                return theta, curve, True
            if self.tol is None:
                continue
            no_improve = no_improve + 1 if J > best - self.tol else 0
            best = min(best, J)
            if no_improve >= self.n_iter_no_change:
                return theta, curve, True
        return theta, curve, False

    def _commit(self, theta, curve, warm, dtype, d, K):
        """Store the parameters and the fit's record."""
        self._theta, self._theta_avg = theta, theta.copy()
        self.n_iter_ = len(curve)
        self.t_ += len(curve)
        self._epochs_done += len(curve)
        self.loss_curve_ = (self.loss_curve_ + curve) if warm else curve
        self._set_coef(*self._coef_intercept(theta, theta, 0, -1.0, dtype, d, K))


def _r2_score(y, pred, sample_weight):
    """scikit-learn's weighted R^2 (uniform average over outputs), by Dask."""
    Y, P = y.reshape(y.shape[0], -1), pred.reshape(y.shape[0], -1)
    w = sample_weight[:, None]
    mean = (w * Y).sum(axis=0) / w.sum()
    res, tot = dask.compute(
        (w * (Y - P) ** 2).sum(axis=0), (w * (Y - mean) ** 2).sum(axis=0)
    )
    safe = np.where(tot > 0, tot, 1.0)
    scores = np.where(tot > 0, 1.0 - res / safe, np.where(res == 0, 1.0, 0.0))
    return float(scores.mean())


def _armijo(changes, theta, direction, g, d, K, alpha, coupled):
    """Armijo step sizes from the changes of the data term on a grid of steps.

    The blockwise twin of ``skgd._newton._line_search``: per column (one
    step for all columns when ``coupled``), the largest step of
    ``_LINE_SEARCH_STEPS`` with sufficient decrease of J, or 0.

    Parameters
    ----------
    changes : ndarray of shape (n_steps, K or 1)
        Change of the (normalised) data term for each trial step.
    theta, direction : ndarray of shape (d * K + K,)
        Iterate and Newton direction.
    g : ndarray of shape (m, K)
        Gradient of J at theta.
    d, K : int
        Features and columns.
    alpha : float
        L2 strength.
    coupled : bool
        One step for all columns (multinomial).

    Returns
    -------
    t : ndarray of shape (K,) or (1,)
        Step sizes.
    dJ : ndarray of the same shape
        The change of J per column.
    """
    W = theta[: d * K].reshape(d, K)
    dW = direction[: d * K].reshape(d, K)
    step = direction.reshape(d + 1, K)[: g.shape[0]]
    slope = (g * step).sum(axis=0)
    wdw, dwdw = np.sum(W * dW, axis=0), np.sum(dW * dW, axis=0)
    if coupled:
        slope, wdw, dwdw = (np.array([v.sum()]) for v in (slope, wdw, dwdw))
    t, dJ = np.zeros(slope.shape), np.zeros(slope.shape)
    accepted = np.zeros(slope.shape, dtype=bool)
    for s, change in zip(_LINE_SEARCH_STEPS, changes, strict=True):
        trial = alpha * s * (wdw + 0.5 * s * dwdw) + change
        ok = ~accepted & (trial <= _ARMIJO * s * np.minimum(slope, 0.0)) & (slope < 0)
        t[ok], dJ[ok] = s, trial[ok]
        accepted |= ok
    return t, dJ


def _classifier_targets(estimator, y, client):
    """Classes (one pass over y), K, loss and global class weights."""
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D for a classifier; got shape {y.shape}.")
    classes, counts = client.compute(list(da.unique(y, return_counts=True)), sync=True)
    check_classification_targets(classes)
    if len(classes) < 2:
        raise ValueError(
            f"{type(estimator).__name__} needs samples of at least 2 classes in y; "
            f"got {len(classes)} class."
        )
    estimator.classes_ = classes
    K = 1 if len(classes) == 2 else len(classes)
    weights = None
    if estimator.class_weight == "balanced":
        weights = counts.sum() / (len(classes) * counts.astype(np.float64))
    elif estimator.class_weight is not None:
        weights = compute_class_weight(
            estimator.class_weight, classes=classes, y=classes
        )
    return {
        "classes": classes,
        "class_weight": weights,
        "K": K,
        "loss": estimator._loss_name(K),
    }


class _DaskClassifierMixin(_DaskMixin):
    def _dask_targets(self, y, client):
        return _classifier_targets(self, y, client)


class DaskSGDLinearRegressor(_DaskMixin, SGDLinearRegressor):
    """:class:`skgd.SGDLinearRegressor` on Dask arrays and dataframes.

    Same parameters and objective as :class:`skgd.SGDLinearRegressor`;
    ``fit`` runs on the current ``dask.distributed`` client by blockwise
    Newton (``solver="newton"``, the default for small d) or federated
    averaging of one local epoch per block and round (first-order solvers:
    ``max_iter`` counts rounds, ``loss_curve_`` holds J per round).
    ``early_stopping`` is not available. ``to_local()`` returns the fitted
    in-memory estimator; ``predict`` on a Dask array is lazy.
    """

    _local_class = SGDLinearRegressor

    def _dask_initial_intercept(self, y, sample_weight, client):
        """The weighted mean of y, where the in-memory regressor starts b."""
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        w = (
            da.ones(Y.shape[0], chunks=Y.chunks[0])
            if sample_weight is None
            else sample_weight
        )
        total, S = self._compute(client, (Y * w[:, None]).sum(axis=0), w.sum())
        return total / S if S > 0 else None

    def _dask_targets(self, y, client):
        if y.ndim not in (1, 2):
            raise ValueError(f"y must be 1-D or 2-D; got shape {y.shape}.")
        self._y_ndim = y.ndim
        K = 1 if y.ndim == 1 else y.shape[1]
        self._n_outputs = K
        return {"classes": None, "class_weight": None, "K": K, "loss": self.loss}


class DaskSGDLogisticClassifier(_DaskClassifierMixin, SGDLogisticClassifier):
    """:class:`skgd.SGDLogisticClassifier` on Dask arrays and dataframes.

    Same parameters and objective (binary or multinomial log loss) as
    :class:`skgd.SGDLogisticClassifier`; the classes are found in one pass
    over y, so every block's model has the same columns even when a block
    lacks a class. ``fit`` runs on the current ``dask.distributed`` client
    by blockwise Newton or federated averaging (see
    :class:`DaskSGDLinearRegressor`). ``to_local()`` returns the fitted
    in-memory estimator; predictions on a Dask array are lazy.
    """

    _local_class = SGDLogisticClassifier

    def predict_proba(self, X):
        """Class probabilities; a lazy Dask array for Dask input."""
        return self._dispatch("predict_proba", X)


class DaskHingeSVM(_DaskClassifierMixin, HingeSVM):
    """:class:`skgd.HingeSVM` on Dask arrays and dataframes.

    Same parameters and objective as :class:`skgd.HingeSVM`. The hinge is
    fitted by federated averaging; ``loss="squared_hinge"`` also by
    blockwise generalised Newton (see :class:`DaskSGDLinearRegressor`).
    ``to_local()`` returns the fitted in-memory estimator.
    """

    _local_class = HingeSVM

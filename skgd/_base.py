"""Shared estimator logic: parameters, validation and orchestration.

Estimators stay thin: they check input, encode targets and hand one call
per ``fit`` to the Cython epoch loop (``_core._epoch.run_epochs``). Nothing
per batch happens here.
"""

import functools
import re
import time
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import (
    _check_sample_weight,
    check_array,
    validate_data,
)

from . import _engine
from ._core._epoch import run_epochs
from ._newton import _MAX_DENSE_HESSIAN, newton_solve

# solver="auto" takes Newton when one Hessian costs at most this many flops.
AUTO_NEWTON_FLOPS = 1e9

# solver="newton" sums squares of the values of X (Gram matrix, Hessian):
# beyond this, sum_i x_i^2 overflows float64 (1.8e308) for n up to 1e8.
NEWTON_MAX_VALUE = 1e150

VALIDATE_X = {"accept_sparse": "csr", "dtype": [np.float64, np.float32], "order": "C"}
# fit tests that X is finite in its own pass over X (_engine.row_norms).
VALIDATE_FIT_X = {**VALIDATE_X, "ensure_all_finite": False}

# A validation message names what is wrong when it mentions one of these.
NAMES_AN_INPUT = re.compile(
    r"\b(X|y|sample_weight|classes|class_weight|labels?|features?)\b"
)


def name_the_input(exc, name):
    """``exc`` if its message names an input, else the same error type with
    the message prefixed by ``name`` (to be raised ``from exc``)."""
    if type(exc) not in (ValueError, TypeError) or NAMES_AN_INPUT.search(str(exc)):
        return exc
    return type(exc)(f"Invalid {name}: {exc}")


def validate_input(estimator, X, y="no_validation", **kwargs):
    """``validate_data``, with every error saying which input is wrong.

    Some of scikit-learn's messages name no input ("Complex data not
    supported", "could not convert string to float", "Found array with 0
    sample(s)"); they are re-raised, same type, prefixed with the input that
    fails: X's own error if X alone fails its checks, else y's.
    """
    # check_array's finiteness test sums X first: 1e308 + 1e308 or inf - inf
    # warn there, although the element-wise test that follows decides
    # correctly.
    with np.errstate(over="ignore", invalid="ignore"):
        try:
            return validate_data(estimator, X, y, **kwargs)
        except (ValueError, TypeError) as exc:
            if name_the_input(exc, "") is exc:
                raise
            if "inconsistent numbers of samples" in str(exc):
                raise name_the_input(exc, "X and y") from exc
            x_kwargs = {k: kwargs[k] for k in VALIDATE_X if k in kwargs}
            try:
                check_array(X, input_name="X", **x_kwargs)
            except (ValueError, TypeError) as x_exc:  # X's own fault first
                raise name_the_input(x_exc, "X") from exc
            raise name_the_input(exc, "y") from exc


COMMON_PARAMETERS_DOC = """alpha : float, default=1e-4
        L2 strength of the objective (SPEC section 2).
    fit_intercept : bool, default=True
        Fit the (unpenalised) intercept b.
    solver : {"auto", "sgd", "adagrad", "rmsprop", "adam", "newton"}, \
default="auto"
        Update rule, or "newton": the exact optimum (closed form for
        squared error, damped Newton with a line search for the log loss,
        generalised Newton for the squared hinge; not for the hinge).
        "auto" takes "newton" in ``fit`` when the loss allows it and either
        one Hessian costs at most 1e9 flops (n (d + 1)^2 K^2) or X has more
        than 1023 columns (Newton by conjugate gradients), and "adam"
        otherwise. A first ``partial_fit`` with "auto" runs "adam" (one
        epoch per chunk of a stream; a Newton step per chunk would forget
        the chunks before), later calls go on with the solver of the first
        call or of ``fit``.
    momentum : float, default=0.0
        Heavy-ball momentum of ``solver="sgd"`` (PyTorch's convention).
    nesterov : bool, default=False
        Nesterov momentum (needs ``momentum > 0``).
    beta1, beta2 : float, default=0.9, 0.999
        Adam's decay rates of the first and second moments.
    rho : float, default=0.99
        RMSprop's decay rate (PyTorch's default; with 0.9 the normalised
        step keeps its size as the gradient vanishes and the iterates
        wander chaotically around the optimum).
    eps : float, default=1e-8
        Denominator constant of Adagrad, RMSprop and Adam.
    learning_rate : str, default="constant"
        Schedule: "constant", "invscaling", "inverse_time", "exponential",
        "step", "linear", "cosine", "optimal", "adaptive" (divide the
        step by 5 when the objective stops improving) or "line_search"
        (Armijo backtracking on the batch objective; ``solver="sgd"``).
    eta0 : float or "auto", default="auto"
        First step size. "auto" is 1/L for ``sgd`` (L the smoothness
        constant of the loss on the rows of positive weight; the intercept
        is then preconditioned by the mean ||x||^2) and, for the adaptive
        rules, 1 (rmsprop, adam) or 10 (adagrad) over the mean row 1-norm
        (times the spread of y for regression), so that no rule diverges on
        unscaled data. The regressor starts its intercept at the weighted
        mean of y.
    power_t : float, default=0.5
        Exponent of "invscaling".
    decay : float, default=1e-3
        Rate of "inverse_time" and "exponential" (per update).
    gamma : float, default=0.1
        Factor of "step".
    step_size : int, default=10
        Epochs between the steps of "step".
    eta_end : float, default=0.0
        Final step of "linear" and "cosine", reached after
        ``max_iter`` epochs.
    batch_size : int, default=256
        Rows per update; ``batch_size >= n_samples`` is full batch.
    max_iter : int, default=1000
        Maximum number of epochs.
    tol : float or None, default=1e-4
        Stop when the objective (or the validation score) has not improved
        by ``tol`` for ``n_iter_no_change`` epochs. None runs exactly
        ``max_iter`` epochs.
    n_iter_no_change : int, default=5
        Epochs without improvement before stopping (or dividing the step,
        with "adaptive").
    early_stopping : bool, default=False
        Monitor the score on a held-out ``validation_fraction`` of the rows
        (stratified for classifiers) instead of the training objective, in
        ``fit`` (not ``partial_fit``). First-order solvers only: "auto" then
        takes "adam", and "newton" raises a ValueError.
    validation_fraction : float, default=0.1
        Fraction of rows held out by ``early_stopping`` (at least one row,
        two for a regressor's R^2, else a ValueError).
    shuffle : bool or "rows", default=True
        Reshuffle the rows every epoch. True shuffles runs of
        ``min(batch_size // 16, n_samples // 4096)`` consecutive rows
        (single rows for small X), from a random phase every epoch: a batch
        is then 16 or more random stretches of X, which an epoch reads
        nearly as fast as in order. "rows" always permutes single rows.
    random_state : int, RandomState instance or None, default=None
        Seeds shuffling and the validation split; an int makes a fit
        bit-for-bit reproducible.
    average : "auto", bool or int, default="auto"
        Polyak-Ruppert averaging of the iterates, from update 1 (True) or
        after ``average`` updates (int); the average is used to predict.
        "auto" averages from update 1 when the updates are stochastic
        (``batch_size < n_samples``) and not for full batch.
    warm_start : bool, default=False
        Start ``fit`` from the previous coefficients and optimizer state.
    verbose : int, default=0
        Print one line per epoch.
    callback : callable, default=None
        ``callback(est, info)`` after every epoch, ``info`` a dict with
        "epoch", "objective", "eta", "coef" and "intercept"; returning True
        stops the fit.
    max_norm : float or None, default=None
        Radius r of the constraint ``||W||_F <= r`` on the coefficients
        (not the intercept); None leaves them free. The first-order solvers
        project W onto the ball after every update: Euclidean projection
        for "sgd" (also with momentum and on the line search's trial
        points), projection in the rule's own metric for "adagrad",
        "rmsprop" and "adam" (``argmin (w - y)^T D (w - y)`` over the
        ball, D the diagonal the rule divides its step by), whose fixed
        points are the constrained optimum; the average of averaged fits
        stays in the ball. "newton" solves the constrained problem
        exactly (the penalised problem at ``alpha + lambda``, lambda the
        multiplier, see ``constraint_multiplier_``); with "newton",
        ``partial_fit`` raises a ValueError (the constrained solve is a
        root search over whole Newton solves, not a sequence of steps), and
        "auto" takes "adam" there. On sparse input, plain SGD
        keeps its O(nnz) updates; momentum and the adaptive rules bring
        all coordinates up to date (O(n_features)) at each update where
        the constraint may be active."""

COMMON_ATTRIBUTES_DOC = """n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when X had string column names.
    n_iter_ : int
        Epochs run by the last call to ``fit`` or ``partial_fit``.
    t_ : int
        Updates made since the state was last reset.
    eta0_ : float
        The first step size used (the value picked by ``eta0="auto"``).
    loss_curve_ : list of float
        Objective J per epoch: the weighted mean over the epoch's batches of
        the batch objective before each update, at the coefficients that
        predict (the running average when averaging); exact J for full
        batch. With Newton, J after each step.
    solver_ : str
        The solver that ran (what ``solver="auto"`` chose).
    constraint_multiplier_ : float
        Only after ``fit`` with ``solver_="newton"`` and ``max_norm``: the
        multiplier lambda >= 0 of ``||W||_F <= max_norm`` (0 when the
        constraint is inactive); the fit is also the unconstrained
        minimiser of J at L2 strength ``alpha + lambda``."""


def estimator_doc(summary, *, loss="", attributes, extra=""):
    """Assemble an estimator's numpydoc docstring from the shared parts."""
    params = "\n    ".join(p for p in (loss, COMMON_PARAMETERS_DOC, extra) if p)
    attrs = f"{attributes}\n    {COMMON_ATTRIBUTES_DOC}"
    return (
        f"{summary}\n\n    Parameters\n    ----------\n    {params}\n\n"
        f"    Attributes\n    ----------\n    {attrs}\n    "
    )


def store_params(estimator, init_locals):
    """Set every ``__init__`` argument as an attribute of the same name."""
    for name, value in init_locals.items():
        if name not in ("self", "__class__"):
            setattr(estimator, name, value)


def _all_or_nothing(fit_method):
    """Make a fitting method leave the estimator as it was when it raises.

    On any exception (a bad input, divergence, Ctrl-C during the nogil
    loop) the estimator's attributes are restored: it stays unfitted, or
    keeps its previous fit whole, never half of a new one.
    """

    @functools.wraps(fit_method)
    def fit(self, *args, **kwargs):
        saved = dict(self.__dict__)
        try:
            return fit_method(self, *args, **kwargs)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise

    return fit


class BaseSGD(BaseEstimator):
    """Parameters and the fit loop shared by the three estimators.

    Subclasses implement ``_encode_targets`` (targets -> core layout and
    loss name), ``_set_coef`` (core parameters -> fitted attributes) and
    ``_validation_score`` (for ``early_stopping``; it needs at least
    ``_min_validation_rows`` held-out rows).
    """

    _min_validation_rows = 1

    _parameter_constraints: dict = {
        "alpha": [Interval(Real, 0, None, closed="left")],
        "fit_intercept": ["boolean"],
        "solver": [StrOptions({"auto", "newton", *_engine.OPTIMIZERS})],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "nesterov": ["boolean"],
        "beta1": [Interval(Real, 0, 1, closed="left")],
        "beta2": [Interval(Real, 0, 1, closed="left")],
        "rho": [Interval(Real, 0, 1, closed="left")],
        "eps": [Interval(Real, 0, None, closed="neither")],
        "learning_rate": [StrOptions(set(_engine.SCHEDULES))],
        "eta0": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "decay": [Interval(Real, 0, None, closed="left")],
        "gamma": [Interval(Real, 0, 1, closed="right")],
        "step_size": [Interval(Integral, 1, None, closed="left")],
        "eta_end": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left"), None],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "shuffle": ["boolean", StrOptions({"rows"})],
        "random_state": ["random_state"],
        "average": [
            StrOptions({"auto"}),
            Interval(Integral, 1, None, closed="left"),
            "boolean",
        ],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "callback": [callable, None],
        "max_norm": [Interval(Real, 0, None, closed="neither"), None],
    }

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    # ------------------------------------------------------------ public --

    @_all_or_nothing
    def fit(self, X, y, sample_weight=None):
        """Fit the model by minibatch gradient descent.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; an integer weight equals repeating a row.

        Returns
        -------
        self
        """
        self._validate_params()
        self._check_solver_params()
        X, y = validate_input(
            self, X, y, reset=True, **self._validate_y_kwargs(), **VALIDATE_FIT_X
        )
        Y, loss, K = self._encode_targets(y, reset=True)
        sw = self._weights(sample_weight, X, y)
        solver = self._choose_solver(loss, *X.shape, K, hessian_free=True)
        warm = self.warm_start and self._state_fits(X.shape[1], K, solver)
        if not warm:
            self._reset_state(X.shape[1], K, solver, self._initial_intercept(Y, sw))
        run = self._run_newton if solver == "newton" else self._run
        return run(
            X, Y, sw, loss, K, max_epochs=self.max_iter, partial=False, append=warm
        )

    # --------------------------------------------------------- internals --

    @_all_or_nothing
    def _partial_fit(self, X, y, sample_weight, *, first_call, classes=None):
        self._validate_params()
        self._check_solver_params()
        X, y = validate_input(
            self, X, y, reset=first_call, **self._validate_y_kwargs(), **VALIDATE_FIT_X
        )
        Y, loss, K = self._encode_targets(y, reset=first_call, classes=classes)
        sw = self._weights(sample_weight, X, y)
        solver = self._choose_solver(loss, *X.shape, K, streaming=True)
        fitted = getattr(self, "solver_", None)
        if (
            self.solver == "auto"
            and not first_call
            and self.max_norm is None
            and self._state_fits(X.shape[1], K, fitted)
        ):
            # Go on with the solver of the fit: a fresh Adam state would
            # start with steps that undo a Newton optimum (on 1000 x 1500
            # text-like rows one epoch moved it by 36%).
            solver = fitted
        if solver == "newton" and self.max_norm is not None:
            raise ValueError(
                "partial_fit with solver='newton' and max_norm is not "
                "supported: the constrained Newton solve is a root search on "
                "the multiplier over whole Newton solves, not a sequence of "
                "steps. Use fit, or a first-order solver (e.g. solver='sgd' "
                "or 'adam') with max_norm."
            )
        if first_call or not self._state_fits(X.shape[1], K, solver):
            self._reset_state(X.shape[1], K, solver, self._initial_intercept(Y, sw))
        run = self._run_newton if solver == "newton" else self._run
        return run(X, Y, sw, loss, K, max_epochs=1, partial=True, append=not first_call)

    def _choose_solver(
        self,
        loss,
        n_samples,
        n_features,
        n_outputs,
        *,
        hessian_free=False,
        streaming=False,
    ):
        """The solver to run: ``self.solver``, or the choice of "auto".

        For ``partial_fit`` (``streaming``) "auto" is "adam": one epoch per
        chunk of a stream. A Newton step per chunk would solve each chunk
        and forget the ones before (measured: 100 chunks of 1000 x 20 rows,
        coefficients 12.5% from the full-data optimum against Adam's 3.1%).
        (After ``fit``, ``partial_fit`` goes on with the solver ``fit``
        chose.)

        "auto" takes Newton when the loss is twice differentiable and either
        one Hessian costs at most ``AUTO_NEWTON_FLOPS`` (n p^2 for
        p = (d + 1) K unknowns): there it reaches the optimum in a few steps
        where first-order methods may need thousands of epochs
        (ill-conditioned small problems); or, with ``hessian_free``, X has
        more than ``_MAX_DENSE_HESSIAN`` columns, where Newton takes its
        steps by conjugate gradients on Hessian-vector products, each one
        read of X (README, "Defaults"): dense or CSR, it reached 1e-5 to
        1e-11 of J* where Adam stopped at 3e-4 to 2.5e-2; sooner, except on
        correlated, unscaled dense columns (4-6 s against Adam's 0.7 s,
        which stopped 2.5e-2 above J*). Otherwise Adam, whose averaged
        iterates reach 1e-3 of the optimum within one or two epochs on
        large problems, and whenever ``fit`` has ``early_stopping`` (a
        validation score between epochs; with solver="newton" it is an
        error). Only ``fit`` passes ``hessian_free`` (the Dask Newton
        assembles its Hessians).
        """
        if self.solver == "newton" and loss == "hinge":
            raise ValueError(
                "solver='newton' needs a twice differentiable loss and the hinge is "
                "not; use loss='squared_hinge' or a first-order solver such as "
                "solver='adam'."
            )
        if self.solver == "newton" and hessian_free and self.early_stopping:
            raise ValueError(
                "early_stopping=True stops on a validation score between epochs, "
                "and solver='newton' solves to the optimum without epochs; set "
                "early_stopping=False or use a first-order solver such as "
                "solver='adam'."
            )
        if self.solver != "auto":
            return self.solver
        p = (n_features + 1) * n_outputs
        if streaming or loss == "hinge" or (hessian_free and self.early_stopping):
            return "adam"  # epochs: streams, early stopping; hinge has no Hessian
        by_cg = hessian_free and n_features + 1 > _MAX_DENSE_HESSIAN
        if by_cg or n_samples * p * p <= AUTO_NEWTON_FLOPS:
            return "newton"
        return "adam"

    def _validate_y_kwargs(self):
        return {}

    def _check_solver_params(self):
        if self.momentum > 0 and self.solver != "sgd":
            raise ValueError(
                f"momentum={self.momentum} applies to solver='sgd' only; "
                f"set momentum=0 or use solver='sgd' (got solver={self.solver!r})."
            )
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov=True requires momentum > 0, e.g. momentum=0.9.")
        if self.learning_rate == "line_search" and (
            self.solver != "sgd" or self.momentum > 0
        ):
            raise ValueError(
                "learning_rate='line_search' searches along the gradient and needs "
                "solver='sgd' with momentum=0; the other rules scale their own steps."
            )
        if self.learning_rate == "optimal" and self.alpha == 0:
            raise ValueError(
                "learning_rate='optimal' uses eta = 1 / (alpha (t0 + t)) and needs "
                "alpha > 0; set alpha or choose another learning_rate."
            )

    def _weights(self, sample_weight, X, y):
        class_weights = self._class_weights(y)
        if sample_weight is None and np.isscalar(class_weights):
            # Unit weights: one value broadcast (read-only, stride 0), not an
            # array of n_samples (8 bytes per row; 2% of a float32 X of 100
            # features).
            return np.broadcast_to(np.float64(1.0), (X.shape[0],))
        try:
            sw = _check_sample_weight(
                sample_weight, X, dtype=np.float64, ensure_non_negative=True
            )
        except (ValueError, TypeError) as exc:
            raise name_the_input(exc, "sample_weight") from exc
        sw = sw * class_weights
        with np.errstate(over="ignore"):
            total = sw.sum()
        if not total > 0:
            raise ValueError(
                "sample_weight sums to zero: at least one row needs a positive weight."
            )
        if not np.isfinite(total) or sw.max() > 1e100:
            # J is a weighted mean: scaling every weight leaves it unchanged,
            # and weights this large overflow their sum or products with X.
            sw = sw / sw.max()
        return sw

    def _class_weights(self, y):
        return 1.0

    def _initial_intercept(self, Y, sw):
        """The intercept a fresh fit starts from (None: zero)."""
        return None

    def _target_scale(self, Y, sw):
        """The scale of a decision value, for the adaptive rules' eta0."""
        return 1.0

    def _objective_scale(self, Y, sw):
        """A row's objective at the start, at most (0: unknown), from which
        the divergence test counts its millionfold growth."""
        return 0.0

    def _state_fits(self, n_features, n_outputs, solver):
        theta = getattr(self, "_theta", None)
        return (
            theta is not None
            and theta.shape[0] == (n_features + 1) * n_outputs
            and self.solver_ == solver
        )

    def _reset_state(self, n_features, n_outputs, solver, intercept=None):
        size = (n_features + 1) * n_outputs
        self.solver_ = solver
        self.__dict__.pop("constraint_multiplier_", None)
        self._theta = np.zeros(size)
        if intercept is not None and self.fit_intercept:
            self._theta[n_features * n_outputs :] = intercept
        self._theta_avg = self._theta.copy()
        self._optimizer_state = (
            {} if solver == "newton" else _engine.OPTIMIZERS[solver].init_state(size)
        )
        self._schedule_state = {}
        self.t_ = 0
        self._epochs_done = 0
        self.loss_curve_ = []

    def _average_start(self, n_samples):
        """Update after which iterates are averaged; -1 for no averaging.

        "auto" averages from the first update when updates are stochastic
        (``batch_size < n_samples``) and not at all for full batch, whose
        iterates carry no gradient noise to average out.
        """
        average = self.average
        if average == "auto":
            average = self.batch_size < n_samples
        if average is False:
            return -1.0
        return 0.0 if average is True else float(average)

    def _run(self, X, Y, sw, loss, K, *, max_epochs, partial, append):
        """One call of the epoch loop on copies of the state, then commit."""
        params = {**self.get_params(), "solver": self.solver_}
        d = X.shape[1]
        n_batches = -(-X.shape[0] // self.batch_size)
        norms = _engine.row_norms(X, sw, type(self).__name__)
        data, X = _engine.make_dataset(X, K, self.batch_size)
        with np.errstate(divide="ignore"):
            eta0, intercept_scale = _engine.step_size(
                self.solver_, self.eta0, loss, norms, self.alpha, self.fit_intercept,
                momentum=self.momentum, stochastic=self.batch_size < X.shape[0],
                target_scale=self._target_scale(Y, sw),
            )  # fmt: skip
        if not np.isfinite(eta0):
            # A zero smoothness constant (X is zero on the weighted rows, or
            # its squares underflow; alpha = 0; no intercept): J does not
            # depend on W, and any step is stable.
            eta0 = 1.0
        schedule_state = dict(self._schedule_state)
        schedule = _engine.make_schedule(params, eta0, n_batches, schedule_state)
        opt_state = {k: v.copy() for k, v in self._optimizer_state.items()}
        optimizer = _engine.make_optimizer(params, opt_state)
        core_loss = _engine.LOSSES[loss](K)
        theta = self._theta.copy()
        theta_avg = self._theta_avg.copy()

        rng = check_random_state(self.random_state)
        validation = None
        if self.early_stopping and not partial:
            sw, validation = self._split_validation(X, Y, sw, rng)
        average_start = self._average_start(X.shape[0])
        hook = self._epoch_hook(
            theta, theta_avg, average_start, X.dtype, d, K, validation
        )
        tol = -np.inf if (self.tol is None or partial) else self.tol

        result = run_epochs(
            data, core_loss, optimizer, schedule, Y, sw, theta, theta_avg,
            alpha=self.alpha, fit_intercept=self.fit_intercept,
            batch_size=self.batch_size,
            shuffle_run=_engine.shuffle_run(X.shape[0], self.batch_size, self.shuffle),
            seed=int(rng.randint(np.iinfo(np.int32).max)),
            max_epochs=max_epochs, tol=tol,
            n_iter_no_change=self.n_iter_no_change,
            t_start=float(self.t_), epoch_start=self._epochs_done,
            average_start=average_start,
            intercept_scale=intercept_scale,
            max_norm=np.inf if self.max_norm is None else float(self.max_norm),
            objective_scale=self._objective_scale(Y, sw),
            epoch_hook=hook,
        )  # fmt: skip
        if result["status"] == "diverged":
            epoch = self._epochs_done + result["n_epochs"] + 1
            raise ValueError(
                f"{type(self).__name__} diverged in epoch {epoch}: the objective "
                "became non-finite or grew a millionfold, at step size "
                f"eta={result['eta']:.3g} "
                f"(eta0={self.eta0!r}, solver={self.solver_!r}, "
                f"learning_rate={self.learning_rate!r}). Scale the features "
                "(e.g. StandardScaler), lower eta0, or use eta0='auto'."
            )
        self._theta, self._theta_avg = theta, theta_avg
        self._optimizer_state = opt_state
        if isinstance(schedule, _engine._schedules.Adaptive):
            self._schedule_state = {"adaptive_eta": schedule.eta0}
        elif isinstance(schedule, _engine._schedules.LineSearch):
            self._schedule_state = {"line_search_eta": schedule.eta0}
        self.eta0_ = eta0
        self.t_ = int(result["t"])
        self._epochs_done += result["n_epochs"]
        self.n_iter_ = result["n_epochs"]
        curve = list(result["loss_curve"])
        self.loss_curve_ = (self.loss_curve_ + curve) if append else curve
        self._set_coef(
            *self._coef_intercept(
                theta, theta_avg, self.t_, average_start, X.dtype, d, K
            )
        )
        if result["status"] == "max_iter" and not partial and self.tol is not None:
            warnings.warn(
                f"Maximum number of epochs (max_iter={self.max_iter}) reached before "
                "the objective stopped improving by tol; increase max_iter or tol.",
                ConvergenceWarning,
                stacklevel=3,
            )
        return self

    def _run_newton(self, X, Y, sw, loss, K, *, max_epochs, partial, append):
        """Newton / closed form (SPEC section 4); ``max_epochs`` Newton steps
        (one per ``partial_fit`` call), from the current coefficients."""
        d = X.shape[1]
        start = time.perf_counter()

        def step(n_iter, objective, theta):
            if self.verbose:
                print(
                    f"-- Newton step {n_iter}: objective {objective:.10g}, "
                    f"{time.perf_counter() - start:.3f} s"
                )
            if self.callback is None:
                return False
            coef, intercept = self._coef_intercept(theta, theta, 0, -1.0, X.dtype, d, K)
            info = {
                "epoch": n_iter,
                "objective": objective,
                "eta": 1.0,
                "coef": coef,
                "intercept": intercept,
            }
            return self.callback(self, info) is True

        largest = _engine.row_norms(X, sw, type(self).__name__).max_abs
        if largest > NEWTON_MAX_VALUE:
            raise ValueError(
                f"X holds values up to {largest:.3g} in absolute value: the sums "
                "of their squares in solver='newton' overflow float64. Scale the "
                "features (e.g. StandardScaler)."
            )
        # Values near the float64 limit overflow; that is reported below.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            result = newton_solve(
                loss, X, Y, sw, self.alpha, self.fit_intercept, K,
                theta0=self._theta if np.any(self._theta) else None,
                tol=0.0 if self.tol is None else self.tol,
                max_iter=max_epochs, callback=step,
                max_norm=None if self.max_norm is None else float(self.max_norm),
            )  # fmt: skip
        theta = result["theta"]
        if not (
            np.all(np.isfinite(theta)) and np.all(np.isfinite(result["loss_curve"]))
        ):
            raise ValueError(
                f"{type(self).__name__} with solver='newton' overflowed: the "
                "objective or the coefficients are not finite in float64. The "
                "values of X (or y) are too large; scale the features (e.g. "
                "StandardScaler) and the targets."
            )
        self._theta, self._theta_avg = theta, theta.copy()
        self.n_iter_ = result["n_iter"]
        self.t_ += result["n_iter"]
        self._epochs_done += result["n_iter"]
        curve = list(result["loss_curve"])
        self.loss_curve_ = (self.loss_curve_ + curve) if append else curve
        self._set_coef(*self._coef_intercept(theta, theta, 0, -1.0, X.dtype, d, K))
        if "multiplier" in result:
            self.constraint_multiplier_ = float(result["multiplier"])
        else:
            self.__dict__.pop("constraint_multiplier_", None)
        finished = result["converged"] or result["stopped"]
        if not (finished or partial or self.tol is None):
            warnings.warn(
                f"Newton reached max_iter={self.max_iter} steps before the gradient's "
                "max-norm fell below tol; increase max_iter or tol.",
                ConvergenceWarning,
                stacklevel=3,
            )
        return self

    @staticmethod
    def _coef_intercept(theta, theta_avg, t, average_start, dtype, d, K):
        """(coef of shape (K, d), intercept of shape (K,)) to predict with,
        after ``t`` updates."""
        use_avg = 0 <= average_start < t
        source = theta_avg if use_avg else theta
        if dtype == np.float32 and np.max(np.abs(source)) > np.finfo(np.float32).max:
            raise ValueError(
                "The coefficients exceed the float32 range of X (e.g. y is "
                "huge next to X); pass X as float64, or scale y and X."
            )
        coef = source[: d * K].reshape(d, K).T.astype(dtype)
        intercept = source[d * K :].astype(dtype)
        return np.ascontiguousarray(coef), intercept

    def _split_validation(self, X, Y, sw, rng):
        """Hold out ``validation_fraction`` rows by giving them zero weight."""
        stratify = Y[:, 0] if is_classifier(self) else None
        try:
            train, val = train_test_split(
                np.arange(X.shape[0]),
                test_size=self.validation_fraction,
                random_state=rng,
                stratify=stratify,
            )
        except ValueError as exc:  # too few rows (per class) to hold out
            raise ValueError(
                f"early_stopping cannot hold out validation_fraction="
                f"{self.validation_fraction} of {X.shape[0]} rows: {exc} Set "
                "early_stopping=False or pass more rows."
            ) from exc
        if len(val) < self._min_validation_rows:
            raise ValueError(
                f"early_stopping's validation score needs at least "
                f"{self._min_validation_rows} held-out rows, but "
                f"validation_fraction={self.validation_fraction} of {X.shape[0]} "
                f"rows holds out {len(val)}; raise validation_fraction, pass more "
                "rows or set early_stopping=False."
            )
        if sw[train].sum() == 0 or sw[val].sum() == 0:
            raise ValueError(
                "early_stopping needs rows of positive weight in both the training "
                "and the validation part; lower validation_fraction or add data."
            )
        sw_train = np.zeros_like(sw)
        sw_train[train] = sw[train]
        return sw_train, (X[val], Y[val], sw[val])

    def _epoch_hook(self, theta, theta_avg, average_start, dtype, d, K, validation):
        """The per-epoch Python hook (None when nothing needs it)."""
        if not (self.verbose or self.callback is not None or validation is not None):
            return None
        start = time.perf_counter()

        def hook(epoch, objective, eta, t):
            coef, intercept = self._coef_intercept(
                theta, theta_avg, t, average_start, dtype, d, K
            )
            if self.verbose:
                print(
                    f"-- Epoch {epoch + 1}: objective {objective:.6g}, step {eta:.3g}, "
                    f"{time.perf_counter() - start:.3f} s"
                )
            if self.callback is not None:
                info = {
                    "epoch": epoch + 1,
                    "objective": objective,
                    "eta": eta,
                    "coef": coef,
                    "intercept": intercept,
                }
                if self.callback(self, info) is True:
                    return True
            if validation is not None:
                Xv, Yv, swv = validation
                # Coefficients on their way to diverging may overflow the
                # score (then -inf, no improvement); the next batch's
                # objective reports the divergence.
                with (
                    _engine.single_threaded_blas(),
                    np.errstate(over="ignore", invalid="ignore"),
                ):
                    return -self._validation_score(coef, intercept, Xv, Yv, swv)
            return None

        return hook

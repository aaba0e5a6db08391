"""Translate estimator parameters into the Cython core's objects."""

from collections import namedtuple

import numpy as np
import scipy.sparse as sp
from sklearn.utils import assert_all_finite
from sklearn.utils._openmp_helpers import _openmp_effective_n_threads
from threadpoolctl import ThreadpoolController

from ._core import _losses, _optimizers, _schedules
from ._core._csr_products import int32_indexed
from ._core._data import CSRDataset, DenseDataset
from ._core._norms import weighted_row_norms

OPTIMIZERS = {
    "sgd": _optimizers.SGD,
    "adagrad": _optimizers.Adagrad,
    "rmsprop": _optimizers.RMSprop,
    "adam": _optimizers.Adam,
}

LOSSES = {
    "squared_error": _losses.SquaredError,
    "log_loss": _losses.BinaryLogLoss,
    "multinomial": _losses.MultinomialLogLoss,
    "hinge": _losses.Hinge,
    "squared_hinge": _losses.SquaredHinge,
}

# Bound on the second derivative of each loss in the decision value: the
# smoothness constant of a row is CURVATURE * ||x||^2. Hinge is not smooth;
# it gets the squared-error constant (a step of 1 / max ||x||^2).
CURVATURE = {
    "squared_error": 1.0,
    "log_loss": 0.25,
    "multinomial": 0.5,
    "hinge": 1.0,
    "squared_hinge": 2.0,
}

# eta0="auto" for the rules that normalise the step by the gradient's scale
# (their first steps move every coordinate by about eta0): eta0 is this
# constant over the typical row's 1-norm, so that a step changes a decision
# value by about the constant, whatever the scale of the features.
ADAPTIVE_STEP = {"adagrad": 10.0, "rmsprop": 1.0, "adam": 1.0}

SCHEDULES = (
    "constant",
    "invscaling",
    "inverse_time",
    "exponential",
    "step",
    "linear",
    "cosine",
    "optimal",
    "adaptive",
    "line_search",
)


def make_dataset(X, n_outputs, batch_size):
    """Wrap validated X (C-contiguous ndarray or CSR) without copying it."""
    n_threads = _openmp_effective_n_threads()
    if sp.issparse(X):
        X = int32_indexed(X)
        return CSRDataset(X, n_outputs, n_threads), X
    return DenseDataset(X, n_outputs, min(batch_size, X.shape[0]), n_threads), X


# A shuffled batch is made of at least this many runs of consecutive rows,
# and X of at least this many runs (fewer rows: single rows).
RUNS_PER_BATCH = 16
MIN_RUNS = 4096


def shuffle_run(n_samples, batch_size, shuffle):
    """The epoch loop's ``shuffle_run``: 0 (no shuffle), 1 (``"rows"``) or,
    for ``shuffle=True``, runs of ``batch_size // RUNS_PER_BATCH`` rows
    when X holds at least ``MIN_RUNS`` of them.

    A batch of 256 then reads 16 stretches of 16 rows (12.8 KiB each for
    100 float64 features), 1.1-1.4x the time of a sequential read on this
    machine, where single rows in random order cost 1.6-2.1x. Small X (in
    cache anyway) keeps single rows: with few runs, the batches of an epoch
    are less varied. The run depends on the shape and parameters only, so
    dense, CSR, float32 and float64 copies of X are fitted on the same
    batches.
    """
    if not shuffle:
        return 0
    if shuffle == "rows":
        return 1
    return max(1, min(batch_size // RUNS_PER_BATCH, n_samples // MIN_RUNS))


# Fewest values of X for which a whole pass over X (the row norms, Newton's
# CSR products) uses several threads (~2 MB).
PARALLEL_VALUES = 1 << 18


def pass_threads(n_values):
    """OpenMP threads for one pass over ``n_values`` values of X: one below
    ``PARALLEL_VALUES``, where waking a second thread costs more than it
    saves (and waits for a whole time slice when another process holds that
    core)."""
    return _openmp_effective_n_threads() if n_values >= PARALLEL_VALUES else 1


_blas_controller = None


def single_threaded_blas():
    """A context in which BLAS runs on one thread, for the NumPy products
    between epochs (early stopping's validation score) and for Newton's
    small solves and its grouped passes over large dense X (``_newton``).

    After a threaded call OpenBLAS's threads spin for ~0.1 s and take the
    cores from the next epoch's OpenMP threads: 400k x 100 with
    ``early_stopping=True`` ran its epochs in 56-138 ms instead of 30 ms.
    The controller (~5 ms to build) is made once per process.
    """
    global _blas_controller
    if _blas_controller is None:
        _blas_controller = ThreadpoolController()
    return _blas_controller.limit(limits=1, user_api="blas")


RowNorms = namedtuple("RowNorms", "mean_l1 mean_sq max_sq max_abs")


def row_norms(X, sample_weight, estimator_name):
    """The row norms ``eta0="auto"`` and Newton need, and the finiteness
    check of X, in one parallel pass (``_core._norms``).

    Returns
    -------
    RowNorms
        Over the rows of positive weight: the weighted means of
        ``||x_i||_1`` and ``||x_i||^2`` and the largest ``||x_i||^2``; and
        the largest absolute value of X. NumPy floats, so that a zero norm
        divides to inf, not to an error.

    Raises
    ------
    ValueError
        scikit-learn's message, when X holds a NaN or an infinity (the fit
        validates X without its own finiteness pass).
    """
    n_threads = pass_threads(X.nnz if sp.issparse(X) else X.size)
    l1, sq, max_sq, total, max_abs = map(
        np.float64, weighted_row_norms(X, sample_weight, n_threads)
    )
    if not np.isfinite(total):
        # A NaN or an infinity, or finite values whose sum overflows: the
        # element-wise test decides, with scikit-learn's message (its sum
        # of X first warns on inf - inf).
        with np.errstate(over="ignore", invalid="ignore"):
            assert_all_finite(X, input_name="X", estimator_name=estimator_name)
    weight = sample_weight.sum()
    return RowNorms(l1 / weight, sq / weight, max_sq, max_abs)


def step_size(
    solver,
    eta0,
    loss,
    norms,
    alpha,
    fit_intercept,
    momentum=0.0,
    stochastic=False,
    target_scale=1.0,
):
    """The first step ``eta0`` and the intercept preconditioner.

    With ``eta0="auto"``, over the rows of positive weight only (``norms``,
    from :func:`row_norms`):

    * ``sgd``: 1 / L, L the smoothness constant of the loss of any single
      row (hence of any minibatch), as in SAG's step rule. The intercept is
      preconditioned as if its column held sqrt(sigma2) instead of 1, sigma2
      the weighted mean of ||x_i||^2 (liblinear's intercept scaling): on
      unscaled data it would otherwise move ~sigma2 times slower than the
      coefficients. L accounts for it::

          L = CURVATURE[loss] * (max_i ||x_i||^2 + sigma2) + alpha

      With heavy-ball or Nesterov momentum ``mu`` on minibatches
      (``stochastic``), ``(1 - mu) / L``: stochastic momentum moves like
      plain SGD with step ``eta / (1 - mu)``, and 1 / L is the step that
      is safe there (at ``batch_size=1`` and mu = 0.9, 1 / L diverges).
      Full batch keeps 1 / L, inside heavy ball's stable range
      ``eta L < 2 (1 + mu)``.

    * adagrad, rmsprop, adam: ``ADAPTIVE_STEP[solver] * target_scale / m``,
      m the weighted mean of ||x_i||_1 (+1 for the intercept), so that a
      first step moves a decision value by about ``ADAPTIVE_STEP`` times
      its natural scale (1 for the classifiers, the spread of y for
      regression); no preconditioner (these rules do not depend on the
      gradient's scale).

    An explicit ``eta0`` follows SPEC section 3 exactly (no preconditioner).

    Returns
    -------
    eta0 : float
    intercept_scale : float

    Raises
    ------
    ValueError
        If an adaptive rule's step overflows: y's spread next to X's values
        puts the coefficients beyond float64 too.
    """
    if eta0 != "auto":
        return float(eta0), 1.0
    if solver in ADAPTIVE_STEP:
        m = norms.mean_l1 + fit_intercept
        with np.errstate(over="ignore"):
            step = ADAPTIVE_STEP[solver] * target_scale / m
        if m > 0 and not np.isfinite(step):  # (m = 0: the caller's case)
            raise ValueError(
                f"The spread of y ({target_scale:.3g}) is too large next to the "
                f"values of X (mean row L1 norm {norms.mean_l1:.3g}): the first "
                "step and the coefficients would overflow. Scale X or y."
            )
        return float(step), 1.0
    sigma2 = max(1.0, norms.mean_sq) if fit_intercept else 0.0
    L = CURVATURE[loss] * (norms.max_sq + sigma2) + alpha
    damping = (1.0 - momentum) if stochastic else 1.0
    return damping / L, sigma2 if fit_intercept else 1.0


def make_schedule(params, eta0, n_updates_per_epoch, state):
    """The schedule object for ``params["learning_rate"]``.

    ``T`` of ``linear`` and ``cosine`` is the planned number of updates,
    ``max_iter * n_updates_per_epoch``. ``state`` carries the current step
    of ``adaptive`` across ``partial_fit`` calls.
    """
    name = params["learning_rate"]
    T = float(params["max_iter"] * n_updates_per_epoch)
    if name == "constant":
        return _schedules.Constant(eta0)
    if name == "invscaling":
        return _schedules.InvScaling(eta0, params["power_t"])
    if name == "inverse_time":
        return _schedules.InverseTime(eta0, params["decay"])
    if name == "exponential":
        return _schedules.Exponential(eta0, params["decay"])
    if name == "step":
        return _schedules.Step(eta0, params["gamma"], params["step_size"])
    if name == "linear":
        return _schedules.Linear(eta0, params["eta_end"], T)
    if name == "cosine":
        return _schedules.Cosine(eta0, params["eta_end"], T)
    if name == "optimal":
        return _schedules.Optimal(params["alpha"])
    if name == "adaptive":
        current = state.get("adaptive_eta", eta0)
        return _schedules.Adaptive(current, first_eta0=eta0)
    if name == "line_search":
        return _schedules.LineSearch(state.get("line_search_eta", eta0))
    raise ValueError(f"Unknown learning_rate {name!r}.")  # pragma: no cover


def make_optimizer(params, state):
    """The update-rule object for ``params["solver"]`` over ``state``."""
    solver = params["solver"]
    cls = OPTIMIZERS[solver]
    if solver == "sgd":
        return cls(state, params["momentum"], params["nesterov"])
    if solver == "adagrad":
        return cls(state, params["eps"])
    if solver == "rmsprop":
        return cls(state, params["rho"], params["eps"])
    return cls(state, params["beta1"], params["beta2"], params["eps"])

"""Exact minimisers of the objective J (SPEC sections 2 and 4).

:func:`newton_solve` minimises

    J(W, b) = (1/S) sum_i s_i loss(y_i, x_i W + b) + (alpha/2) ||W||_F^2

- ``"squared_error"``: in closed form (weighted centring for the intercept,
  Cholesky of the centred Gram matrix plus ``alpha I``; the dual, n x n form
  when d > n; the minimum-norm solution when ``alpha == 0`` or the system is
  singular);
- ``"log_loss"``, ``"multinomial"``, ``"squared_hinge"``: damped Newton with
  a backtracking (Armijo) line search on J (generalised Newton on the active
  set for the squared hinge).

With ``max_norm=r`` it minimises J subject to ``||W||_F <= r`` exactly: the
solution is the unconstrained minimiser of J at ``alpha + lambda`` for the
multiplier ``lambda >= 0`` of the constraint (KKT), found by a root search
on ``||W(alpha + lambda)|| = r`` (a secular equation on the eigenvalues of
the centred Gram matrix for squared error).

Dense X is only read in row blocks, each converted to float64 on its own:
gradient, Hessian and Hessian-vector products are summed over the blocks, so
the extra memory is a block (``_BLOCK_BYTES``), the Hessian and a few n x K
arrays, never an n x d copy of X. CSR X is read whole by the parallel C
products of ``_core._csr_products`` (decision values, gradient,
Hessian-vector products, the Jacobi diagonal; only an assembled Hessian
goes by row blocks): their temporaries are n x K and d x K arrays. Zero-weight
rows contribute exact zeros, so an integer weight is exactly a repeated row.
"""

import contextlib
import contextvars
import copy
import numbers
from collections import namedtuple
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp
from scipy.linalg import LinAlgError, cho_factor, cho_solve, eigh, pinvh
from scipy.optimize import brentq
from scipy.special import expit
from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

from ._core import _csr_products
from ._engine import pass_threads, single_threaded_blas

# Bytes of float64 per row block (a block of X, or of its products with the
# K columns), but at least _MIN_BLOCK_ROWS rows so that each rank-k update of
# a d x d Hessian does enough arithmetic per pass over it. 1 MiB was as fast
# as or faster than 0.5-8 MiB (n = 20000..200000, d = 40..500, one thread).
_BLOCK_BYTES = 2**20
_MIN_BLOCK_ROWS = 256

# Newton systems are solved with the assembled Hessian (Cholesky) up to this
# many unknowns per column (m = d + fit_intercept) and by Jacobi-preconditioned
# conjugate gradients beyond; the multinomial's per-class blocks of this size
# are its CG preconditioner. Measurements: see the Notes of ``newton_solve``.
_MAX_DENSE_HESSIAN = 1024

# The full multinomial Hessian ((d + 1) K unknowns) is assembled only up to
# this size; above it block-preconditioned CG was faster in every measurement.
_MAX_FULL_MULTINOMIAL = 100

# Newton-CG starts with the Jacobi preconditioner and, after a CG solve of
# more than _SLOW_CG products (Jacobi solves are cut there when a stronger
# preconditioner exists), switches to it for the rest of the solve, keeping
# it while its solves stay within _SLOW_CG products (``_Preconditioner``).
# Multinomial: the per-class diagonal blocks of the Hessian. The other
# losses on dense X: per-column Hessians estimated on
# _SAMPLE_ROWS_PER_UNKNOWN m evenly spaced rows (for m <= _MAX_SAMPLED_HESSIAN:
# a 128 MiB matrix). Jacobi is exact on uncorrelated columns (standard
# normal X: 6-7 products per solve; the sampled Hessian, a noisy estimate
# there, took 30); on correlated columns (embedding-like 50k x 1536, unscaled
# 50k x 1500) Jacobi took 82-106 products and the switch 40-45: 5.0 -> 2.8 s
# and 4.6 -> 3.7 s. Building the multinomial blocks costs ~m / 6
# Hessian-vector products; built at every step they took more time than
# the products they saved (twentieth session, see ``newton_solve``'s Notes).
# Up to m = _MAX_BLOCKS_AT_START (blocks worth ~20 products or fewer) they
# are built at the first step instead: Jacobi's first solves on load_digits
# gave poor directions (steps of 1/64) and twice the Newton steps.
_SLOW_CG = 10
_MAX_BLOCKS_AT_START = 128
_SAMPLE_ROWS_PER_UNKNOWN = 2
_MAX_SAMPLED_HESSIAN = 4096

# Largest d (primal) or n (dual, when d > n) for which squared error is solved
# in closed form with a dense d x d / n x n system (128 MiB); beyond it,
# Newton-CG on the same objective.
_MAX_GRAM = 4096

# Below this much work (n d K, or nnz K for CSR) BLAS runs on one thread,
# above it on its default count. Measured on a 2-vCPU machine (whole solves,
# one vs two OpenBLAS threads): with another process busy, two threads were
# 2-2.5x slower at every size (load_digits 0.28 s vs 0.12 s, 200000 x 100
# binary 2.5 s vs 1.0 s; a lone syrk on a tall block up to 90x); idle, they
# gained at most 1.16x below 1e7 and 0.8-1.2x above (1.23x for n = 20000,
# d = 100, K = 5). Large Hessians keep the threads for machines whose cores
# are real; small problems never gain from them.
_SMALL_WORK = 10_000_000

# The row blocks of an assembled Hessian or Gram matrix are summed in this
# many fixed groups (block i in group i % _BLOCK_GROUPS, the groups added in
# order) in a solve on dense X with n d >= _SMALL_WORK, so that the sum
# does not depend on the number of threads that run the groups. The groups
# run on threads, BLAS on one thread each: OpenBLAS's own threads split the
# small d x d output of a tall-skinny syrk and gained nothing (200000 x 100:
# 65 ms on one thread or two, 37 ms on two groups' threads).
_BLOCK_GROUPS = 4

# Threads that run the groups (``_map_groups``), 0 for no groups: set by
# ``newton_solve`` for dense X of _SMALL_WORK values (n d) or more; 0
# elsewhere (``block_terms`` in Dask's workers, the groups' own threads).
_GROUP_THREADS = contextvars.ContextVar("skgd_group_threads", default=0)

# Armijo sufficient-decrease constant and the most halvings of the step.
_ARMIJO = 1e-4
_MAX_HALVINGS = 60


def newton_solve(
    loss,
    X,
    Y,
    sample_weight,
    alpha,
    fit_intercept,
    n_outputs,
    *,
    theta0=None,
    tol=1e-4,
    max_iter=1000,
    callback=None,
    max_norm=None,
):
    """Exact minimiser of J (SPEC sections 2 and 4), optionally on a ball.

    Parameters
    ----------
    loss : {"squared_error", "log_loss", "multinomial", "squared_hinge"}
        ``"log_loss"`` is binary (K = 1); ``"squared_hinge"`` is binary for
        K = 1 and K jointly trained one-vs-rest columns for K >= 3.
    X : {ndarray, CSR matrix} of shape (n_samples, n_features)
        C-contiguous float32/float64 array or CSR matrix; never copied whole.
    Y : ndarray of shape (n_samples, n_y), float64
        Regression targets (n_y = K), or one column of class indices as
        floats (K = 1: index 1 means y = +1, index 0 means y = -1).
    sample_weight : ndarray of shape (n_samples,), float64
        Non-negative weights with a positive sum S.
    alpha : float
        L2 strength (the intercept is not penalised).
    fit_intercept : bool
        Fit b; otherwise b stays 0.
    n_outputs : int
        K, the number of columns of W.
    theta0 : ndarray of shape (d * K + K,), default=None
        Starting point ``concatenate([W.ravel(), b])`` (W of shape (d, K));
        None means zeros. The closed form does not need one.
    tol : float, default=1e-4
        Stop when the max-norm of the gradient of J (W and b) is <= tol.
    max_iter : int, default=1000
        Most Newton steps.
    callback : callable, default=None
        ``callback(n_iter, J, theta)``, called after every step; returning
        True stops.
    max_norm : float, default=None
        If given, the radius r of the constraint ``||W||_F <= r`` (the
        intercept is free): the result is the exact constrained minimiser
        (see :func:`_norm_constrained`). None: unconstrained.

    Returns
    -------
    dict
        ``theta`` (ndarray of shape (d * K + K,)), ``n_iter`` (Newton steps,
        >= 1; the closed form counts 1), ``loss_curve`` (J after each step),
        ``converged`` (the gradient test was met) and ``stopped`` (the
        callback asked to stop). With ``max_norm``, also ``multiplier``
        (lambda >= 0: the result minimises J at ``alpha + lambda``; 0 when
        the constraint is inactive), and the counts, curve and callback
        span all the solves of the root search.

    Notes
    -----
    How a Newton direction is computed (m = d + fit_intercept unknowns per
    column), chosen by timing on one core (n = 569..20000, d = 4..2000,
    K = 1..10, standardised and badly scaled data):

    - ``"log_loss"`` / ``"squared_hinge"`` (one m x m system per column) and
      the CG fallback of squared error: Cholesky of the assembled Hessian up
      to m = ``_MAX_DENSE_HESSIAN`` = 1024, Jacobi-preconditioned CG on
      Hessian-vector products beyond. On standardised data CG was already
      1.5-4x faster from m ~ 300 (0.6 s vs 1.7 s at n = 5000, d = 1000) and
      8x at d = 2000, but on badly conditioned data it needed more than 10 m
      products (raw breast cancer: 316 products for m = 31), while the cost
      of the assembled Hessian does not depend on the conditioning.
    - ``"multinomial"``: the full (d + 1) K Hessian (assembly ~ n (dK)^2
      flops) only up to (d + 1) K = ``_MAX_FULL_MULTINOMIAL`` = 100. Above,
      CG preconditioned by the per-class diagonal blocks
      ``X^T diag(w p_k (1 - p_k)) X`` (K Cholesky factors of size m: 1/K of
      the full assembly) needed only 2-6 products per Newton step and was
      faster than the full Hessian everywhere: load_digits (dK = 650)
      0.09-0.17 s vs 0.4-0.6 s, n = 5000, d = 200, K = 10 0.6-0.8 s vs 6 s,
      and features scaled over 1e-2..1e2 (where plain Jacobi-CG took 600 s
      against 1.6 s) 0.8 s vs 1.6 s. Building the blocks costs about m / 6
      products, so beyond m = ``_MAX_BLOCKS_AT_START`` = 128 they are built
      only once a Jacobi solve was slow, and at any m kept while they keep
      CG fast (``_Preconditioner``), applied as K inverses in one batched
      product. Against blocks built at every step and applied by K
      triangular solves (twentieth session, one run of five fits each):
      load_digits 48 -> 37 ms (its 1347-row training split in
      ``bench_small.py`` 31 -> 24.5 ms), raw 65 -> 42;
      make_classification 20000 x 100, K = 10 452 -> 215 ms, its features
      scaled over 1e-2..1e2 641 -> 315; 5000 x 300, K = 5 304 -> 76;
      5000 x 200, K = 10, scaled, 901 -> 148. Beyond m = 1024
      the preconditioner is Jacobi.

    CG stops at a relative residual ``min(0.5, sqrt(||g||))`` (superlinear
    convergence).

    Threads: on dense X of n d >= ``_SMALL_WORK`` values the passes over X
    (Hessians, Gram matrices, products) run their row blocks in
    ``_BLOCK_GROUPS`` = 4 fixed groups on the machine's threads, BLAS on
    one thread (the sums do not depend on the number of threads): the
    200000 x 100 log-loss Hessian, 153 tall-skinny syrk calls that
    OpenBLAS's threads do not split, 65 -> 37 ms on two cores; the whole
    fit 1.26x -> 0.68x lbfgs' time (``bench_newton.py``). Smaller or CSR X
    keeps BLAS's (or the CSR products' OpenMP) threads.

    The multinomial loss is unchanged when the same vector is added to every
    column of (W; b); the iterates are kept in the symmetric gauge (each row
    of W and b sums to zero over the classes), scikit-learn's convention.
    With ``alpha > 0`` the optimal W is there anyway, so only the intercept
    is affected. The line search measures the change of J from accurately
    computed per-row differences (``log1p``/``expm1`` forms), so it keeps
    working when that change is far below the rounding error of J itself;
    ``loss_curve`` is J at the start plus those changes.
    """
    if loss not in _LOSSES:
        raise ValueError(
            f"newton_solve needs a twice differentiable loss, one of "
            f"{sorted(_LOSSES)}; got {loss!r}."
        )
    if max_norm is not None and not (
        isinstance(max_norm, numbers.Real)
        and not isinstance(max_norm, bool)
        and 0 < max_norm < np.inf
    ):
        raise ValueError(
            f"max_norm must be a positive number or None; got {max_norm!r}."
        )
    n, d = X.shape
    K = int(n_outputs)
    X = _csr_products.int32_indexed(X) if sp.issparse(X) else X
    w = np.asarray(sample_weight, dtype=np.float64) / np.sum(sample_weight)
    Y = np.asarray(Y, dtype=np.float64).reshape(n, -1)
    theta = np.zeros(d * K + K) if theta0 is None else np.array(theta0, float)
    problem = _Problem(loss, X, Y, w, alpha, fit_intercept, K)
    work = (X.nnz if sp.issparse(X) else n * d) * K
    with _solve_threads(X, work):
        if max_norm is not None:
            return _norm_constrained(
                problem, float(max_norm), theta, tol, max_iter, callback
            )
        return _solve(problem, alpha, theta, tol, max_iter, callback)


_Problem = namedtuple("_Problem", "loss X Y w alpha fit_intercept K")


def _closed_form_applies(problem):
    """Whether squared error is solved in closed form (not Newton-CG)."""
    n, d = problem.X.shape
    m = d + bool(problem.fit_intercept)
    return problem.loss == "squared_error" and min(n + 1, m) <= _MAX_GRAM


def _solve(problem, alpha, theta, tol, max_iter, callback):
    """The unconstrained minimiser of J at L2 strength ``alpha``.

    Parameters
    ----------
    problem : _Problem
        Loss, data, normalised weights, fit_intercept and K.
    alpha : float
        L2 strength.
    theta : ndarray of shape (d * K + K,)
        Starting point (Newton only).
    tol, max_iter, callback
        As in :func:`newton_solve`.

    Returns
    -------
    dict
        As :func:`newton_solve`.
    """
    X, Y, w, fit_intercept = problem.X, problem.Y, problem.w, problem.fit_intercept
    if _closed_form_applies(problem):
        return _closed_form(X, Y, w, alpha, fit_intercept, tol, max_iter, callback)
    lossf = _LOSSES[problem.loss](Y, problem.K)
    return _newton(lossf, X, w, alpha, fit_intercept, theta, tol, max_iter, callback)


# ------------------------------------- blockwise Newton (skgd.dask) ---


def block_terms(
    loss,
    X,
    Y,
    sample_weight,
    theta,
    fit_intercept,
    n_outputs,
    *,
    direction=None,
    steps=(1.0,),
):
    """One row block's share of a Newton step on J (blockwise Newton).

    Sums over the rows of the block, neither normalised by S nor penalised:
    summed over all blocks, :func:`newton_direction` turns them into J, its
    gradient and the Newton direction. The arithmetic is that of
    :func:`newton_solve` (same losses, same blocked BLAS products).

    Parameters
    ----------
    loss : {"squared_error", "log_loss", "multinomial", "squared_hinge"}
        As in :func:`newton_solve`.
    X : {ndarray, CSR matrix} of shape (n_rows, n_features)
        The block's rows.
    Y : ndarray of shape (n_rows, n_y)
        Targets, as in :func:`newton_solve`.
    sample_weight : ndarray of shape (n_rows,)
        Non-negative weights s_i (not normalised).
    theta : ndarray of shape (d * K + K,)
        The iterate ``concatenate([W.ravel(), b])``.
    fit_intercept : bool
        Whether b is a variable (otherwise it is taken as 0).
    n_outputs : int
        K.
    direction : ndarray like theta, default=None
        A Newton direction p. Then ``changes`` holds the change of the
        weighted loss sum from theta to ``theta + t p`` for each t in
        ``steps`` (per column, as the line search needs), and the
        derivatives are taken at ``theta + steps[0] p``.
    steps : sequence of float, default=(1.0,)
        Trial step sizes along ``direction``.

    Returns
    -------
    dict
        ``weight`` (sum of s_i), ``loss`` (sum of s_i loss_i), ``gradient``
        (ndarray of shape (m, K), m = d + fit_intercept), ``hessian``
        (the data part of the Hessian, as in :func:`_hessian`) and
        ``changes`` (ndarray of shape (len(steps), K or 1), or None).
    """
    n, d = X.shape
    K = int(n_outputs)
    X = _csr_products.int32_indexed(X) if sp.issparse(X) else X
    w = np.asarray(sample_weight, dtype=np.float64)
    lossf = _LOSSES[loss](np.asarray(Y, dtype=np.float64).reshape(n, -1), K)
    W, b = _split_theta(theta, d, K, fit_intercept)
    Z = _decision(X, W, b)
    changes = None
    if direction is not None:
        dZ = _decision(X, *_split_theta(direction, d, K, fit_intercept))
        changes = np.array(
            [
                sum(
                    w[part] @ lossf.rows(part).change(Z[part], t * dZ[part])
                    for part in _row_chunks(*Z.shape)
                )
                for t in steps
            ]
        )
        Z += steps[0] * dZ
    gW, gb = _gradient(lossf, X, Z, w, 0.0, W, fit_intercept)
    return {
        "weight": float(w.sum()),
        "loss": _objective(lossf, Z, w, 0.0, W),
        "gradient": np.vstack([gW, gb[None]]) if fit_intercept else gW,
        "hessian": _hessian(lossf, X, lossf.curvature(Z), w, 0.0, fit_intercept),
        "changes": changes,
    }


def newton_direction(terms, theta, loss, alpha, fit_intercept):
    """J, its gradient and the Newton direction from summed block terms.

    Parameters
    ----------
    terms : dict
        The element-wise sum over all row blocks of :func:`block_terms`.
    theta : ndarray of shape (d * K + K,)
        The point the derivatives were taken at.
    loss : str
        As in :func:`block_terms`.
    alpha : float
        L2 strength.
    fit_intercept : bool
        Whether b is a variable.

    Returns
    -------
    J : float
        The objective at theta.
    gradient : ndarray of shape (m, K)
        Gradient of J (rows of W, then b if fitted).
    direction : ndarray of shape (d * K + K,)
        The Newton direction ``-H^{-1} g`` in theta's layout (multinomial:
        centred over the classes, like :func:`newton_solve`).
    """
    S = terms["weight"]
    g, H = terms["gradient"] / S, terms["hessian"] / S
    K = g.shape[1]
    d = theta.size // K - 1
    coupled = _LOSSES[loss].coupled
    W = theta[: d * K].reshape(d, K)
    g[:d] += alpha * W
    if coupled:
        H[np.arange(d * K), np.arange(d * K)] += alpha
    else:
        H[:, np.arange(d), np.arange(d)] += alpha
    step = _solve_newton_system(H, g, alpha, coupled)
    if coupled:
        step -= step.mean(axis=1, keepdims=True)
    b_step = step[d] if fit_intercept else np.zeros(K)
    J = terms["loss"] / S + 0.5 * alpha * np.sum(W * W)
    return J, g, np.concatenate([step[:d].ravel(), b_step])


def _split_theta(theta, d, K, fit_intercept):
    """(W of shape (d, K), b of shape (K,)) from theta; b = 0 if not fitted."""
    W = np.asarray(theta[: d * K], dtype=np.float64).reshape(d, K)
    b = np.array(theta[d * K :], dtype=np.float64) if fit_intercept else np.zeros(K)
    return W, b


@contextlib.contextmanager
def _solve_threads(X, work):
    """The threads of a solve of ``work`` = n d K (nnz K): on dense X of n d
    >= ``_SMALL_WORK`` values, BLAS on one thread and the groups of row
    blocks on the machine's threads (``_map_groups``); elsewhere BLAS on
    one thread for small problems (``work`` < ``_SMALL_WORK``) and on its
    own threads for the others. (OpenBLAS's threads, woken by any threaded call,
    even a dot product in the line search, spin for a while after it: they
    took the second core from the groups, 200000 x 100 log loss Hessian 37
    ms alone, 55-70 ms in the solve. Smaller X keeps BLAS's threads: on
    5000 x 200 x 10 classes a Hessian product took 1.4 ms on two BLAS
    threads, 2.6 on the groups' threads.)"""
    if sp.issparse(X) or X.shape[0] * X.shape[1] < _SMALL_WORK:
        small = work < _SMALL_WORK
        with single_threaded_blas() if small else contextlib.nullcontext():
            yield
        return
    token = _GROUP_THREADS.set(_openmp_effective_n_threads())
    try:
        with single_threaded_blas():
            yield
    finally:
        _GROUP_THREADS.reset(token)


# ---------------------------------------------------------------- losses ---


class _RowLoss:
    """Base of the losses: each holds its targets ``y``, one row per sample."""

    def rows(self, part):
        """The same loss restricted to the rows ``part`` (a slice)."""
        restricted = copy.copy(self)
        restricted.y = self.y[part]
        return restricted


class _BinaryLogLoss(_RowLoss):
    """Binary log loss ``log(1 + exp(-y f))``, y = +1 for class index 1.

    Parameters
    ----------
    Y : ndarray of shape (n_samples, 1)
        Class indices 0 / 1.
    n_outputs : int
        K, here 1.
    """

    coupled = False  # the Hessian of a row is diagonal over the K columns

    def __init__(self, Y, n_outputs):
        self.y = np.where(Y[:, :1] == 1, 1.0, -1.0)

    def value(self, Z):
        """Loss of each row and column, shape (n_samples, K)."""
        return np.logaddexp(0.0, -self.y * Z)

    def change(self, Z, dZ):
        """``value(Z + dZ) - value(Z)``, accurate also when it is tiny."""
        m, delta = self.y * Z, self.y * dZ
        out = np.empty_like(Z)
        small = np.abs(delta) <= 1.0
        out[small] = np.log1p(expit(-m[small]) * np.expm1(-delta[small]))
        big = ~small
        out[big] = np.logaddexp(0.0, -m[big] - delta[big]) - np.logaddexp(0.0, -m[big])
        return out

    def derivative(self, Z):
        """Derivative of the loss with respect to Z."""
        return -self.y * expit(-self.y * Z)

    def curvature(self, Z):
        """Second derivative of the loss with respect to Z."""
        return expit(Z) * expit(-Z)


def _logsumexp(Z):
    """``log sum_k exp(Z[:, k])`` of finite rows, shifted by the row maxima.

    (scipy.special's generic version costs ~0.1 ms a call in array-API
    dispatch: a third of a small multinomial Newton fit.)
    """
    top = Z.max(axis=1)
    return top + np.log(_row_sums(np.exp(Z - top[:, None])))


def _softmax(Z):
    """Row-wise softmax of finite Z, shifted by the row maxima."""
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    E /= _row_sums(E)[:, None]
    return E


def _row_sums(A):
    """``A.sum(axis=1)`` of an (n, K) array: NumPy's reduction along a short
    last axis was 4-6x slower than einsum's loop (n = 1347 and 200000,
    K = 10), a tenth of a small multinomial Newton fit."""
    return np.einsum("ik->i", A)


def _column_sums(A):
    """``A.sum(axis=0)`` of an (n, K) array (see :func:`_row_sums`)."""
    return np.einsum("ik->k", A)


class _MultinomialLogLoss(_RowLoss):
    """Multinomial log loss ``-log softmax(f)_y``.

    Parameters
    ----------
    Y : ndarray of shape (n_samples, 1)
        Class indices 0..K-1.
    n_outputs : int
        K, the number of classes.
    """

    coupled = True  # the Hessian of a row is diag(p) - p p^T

    def __init__(self, Y, n_outputs):
        self.y = Y[:, 0].astype(np.intp)

    def value(self, Z):
        """Loss of each row, shape (n_samples, 1)."""
        return (_logsumexp(Z) - Z[np.arange(len(self.y)), self.y])[:, None]

    def change(self, Z, dZ):
        """``value(Z + dZ) - value(Z)``, accurate also when it is tiny.

        ``logsumexp(z + dz) - logsumexp(z) = log1p(sum_k p_k expm1(dz_k))``.
        """
        out = -dZ[np.arange(len(self.y)), self.y]
        small = np.abs(dZ).max(axis=1) <= 1.0
        P = _softmax(Z[small])
        out[small] += np.log1p(np.einsum("ik,ik->i", P, np.expm1(dZ[small])))
        big = ~small
        out[big] += _logsumexp(Z[big] + dZ[big]) - _logsumexp(Z[big])
        return out[:, None]

    def derivative(self, Z):
        """Derivative of the loss with respect to Z: softmax(Z) - onehot(y)."""
        P = _softmax(Z)
        P[np.arange(len(self.y)), self.y] -= 1.0
        return P

    def curvature(self, Z):
        """The probabilities p: the row Hessian is diag(p) - p p^T."""
        return _softmax(Z)


class _SquaredHinge(_RowLoss):
    """Squared hinge ``max(0, 1 - y f)^2``, summed over one-vs-rest columns.

    Parameters
    ----------
    Y : ndarray of shape (n_samples, 1)
        Class indices: K = 1 uses y = +1 for index 1 and -1 otherwise; K >= 3
        gives column k the target +1 for class k and -1 otherwise.
    n_outputs : int
        K.
    """

    coupled = False

    def __init__(self, Y, n_outputs):
        if n_outputs == 1:
            self.y = np.where(Y[:, :1] == 1, 1.0, -1.0)
        else:
            self.y = np.where(Y[:, :1] == np.arange(n_outputs), 1.0, -1.0)

    def value(self, Z):
        """Loss of each row and column, shape (n_samples, K)."""
        return np.maximum(0.0, 1.0 - self.y * Z) ** 2

    def change(self, Z, dZ):
        """``value(Z + dZ) - value(Z)``, accurate also when it is tiny."""
        h = 1.0 - self.y * Z
        delta = self.y * dZ
        h_new = h - delta
        out = np.maximum(0.0, h_new) ** 2 - np.maximum(0.0, h) ** 2
        both = (h > 0) & (h_new > 0)
        out[both] = -delta[both] * (h[both] + h_new[both])
        return out

    def derivative(self, Z):
        """Derivative of the loss with respect to Z."""
        return -2.0 * self.y * np.maximum(0.0, 1.0 - self.y * Z)

    def curvature(self, Z):
        """Generalised second derivative: 2 on the active set, else 0."""
        return 2.0 * (self.y * Z < 1.0)


class _SquaredError(_RowLoss):
    """Squared error ``0.5 (y - f)^2`` per column.

    Parameters
    ----------
    Y : ndarray of shape (n_samples, K)
        Targets.
    n_outputs : int
        K.
    """

    coupled = False

    def __init__(self, Y, n_outputs):
        self.y = Y

    def value(self, Z):
        """Loss of each row and column, shape (n_samples, K)."""
        return 0.5 * (Z - self.y) ** 2

    def change(self, Z, dZ):
        """``value(Z + dZ) - value(Z)``, accurate also when it is tiny."""
        return dZ * (Z - self.y + 0.5 * dZ)

    def derivative(self, Z):
        """Derivative of the loss with respect to Z."""
        return Z - self.y

    def curvature(self, Z):
        """Second derivative of the loss with respect to Z."""
        return np.ones_like(Z)


_LOSSES = {
    "log_loss": _BinaryLogLoss,
    "multinomial": _MultinomialLogLoss,
    "squared_hinge": _SquaredHinge,
    "squared_error": _SquaredError,
}


# ----------------------------------------------------- passes over X ---


def _blocks(X, width, group=None):
    """Row blocks of X as float64, one at a time.

    Parameters
    ----------
    X : {ndarray, CSR matrix} of shape (n_samples, n_features)
        The data.
    width : int
        float64 values per row of the largest temporary made from a block
        (d, or d * K); dense blocks have ``_BLOCK_BYTES / (8 width)`` rows
        (at least ``_MIN_BLOCK_ROWS``).
    group : int, optional
        Only the blocks i with ``i % _BLOCK_GROUPS == group``.

    Yields
    ------
    start, stop : int
        The rows of the block.
    block : {ndarray, CSR matrix}
        ``X[start:stop]`` in float64: a view when X is dense float64,
        otherwise a copy of that block only.
    """
    n, d = X.shape
    if sp.issparse(X):
        per_row = max(1.0, X.nnz / max(n, 1)) * max(1.0, width / max(d, 1))
        rows = int(_BLOCK_BYTES // (12 * per_row))
    else:
        rows = _BLOCK_BYTES // (8 * max(width, 1))
    rows = max(rows, _MIN_BLOCK_ROWS)
    first, step = (0, 1) if group is None else (group, _BLOCK_GROUPS)
    for start in range(first * rows, n, step * rows):
        stop = min(start + rows, n)
        block = X[start:stop]
        if block.dtype != np.float64:
            block = block.astype(np.float64)
        yield start, stop, block


def _map_groups(fn):
    """``[fn(group) for group in range(_BLOCK_GROUPS)]`` on
    ``_GROUP_THREADS`` threads; ``[fn(None)]`` (all blocks) outside a
    grouped solve."""
    threads = min(_BLOCK_GROUPS, _GROUP_THREADS.get())
    if threads == 0:
        return [fn(None)]
    if threads == 1:
        return [fn(group) for group in range(_BLOCK_GROUPS)]
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(fn, range(_BLOCK_GROUPS)))


def _for_blocks(X, width, fn):
    """``fn(start, stop, B)`` for the row blocks of X (``_blocks(X,
    width)``), in groups on threads in a large dense solve."""

    def run(group):
        for start, stop, B in _blocks(X, width, group):
            fn(start, stop, B)

    _map_groups(run)


def _block_sums(X, width, add_block, shape):
    """The sum over the row blocks of X (``_blocks(X, width)``) of what
    ``add_block(out, start, stop, B)`` adds to ``out``, an array of
    ``shape``; in a large dense solve, in groups on threads, the groups'
    sums added in group order."""

    def group_sum(group):
        out = np.zeros(shape)
        for start, stop, B in _blocks(X, width, group):
            add_block(out, start, stop, B)
        return out

    sums = _map_groups(group_sum)
    total = sums[0]
    for other in sums[1:]:
        total += other
    return total


def _row_chunks(n, K):
    """Slices of rows for the elementwise work on n x K arrays.

    The losses make up to ~8 temporaries of the slice's size: together they
    stay within one block's memory.
    """
    rows = max(_MIN_BLOCK_ROWS, _BLOCK_BYTES // (64 * K))
    for start in range(0, n, rows):
        yield slice(start, min(start + rows, n))


def _sparse_threads(X, K):
    """OpenMP threads of the CSR products (``_engine.pass_threads``;
    ``_SMALL_WORK`` is BLAS's threshold, 40x more)."""
    return pass_threads(X.nnz * K)


def _decision(X, W, b):
    """Decision values ``X W + b``, shape (n_samples, K) (dense X by row
    blocks, CSR in one parallel product)."""
    if not W.any():  # a start from zero: X (finite) need not be read
        return np.full((X.shape[0], W.shape[1]), b, dtype=np.float64)
    if sp.issparse(X):
        Z = _csr_products.csr_times(X, W, _sparse_threads(X, W.shape[1]))
        Z += b
        return Z
    Z = np.empty((X.shape[0], W.shape[1]))

    def decide(start, stop, B):
        np.matmul(B, W, out=Z[start:stop])
        Z[start:stop] += b

    _for_blocks(X, X.shape[1], decide)
    return Z


def _xt_dot(X, G):
    """``X^T G`` for G of shape (n_samples, K) (dense X by row blocks, CSR in
    one parallel product)."""
    if sp.issparse(X):
        threads = _sparse_threads(X, G.shape[1])
        return _csr_products.csr_transpose_times(X, G, n_threads=threads)

    def add_block(out, start, stop, B):
        out += B.T @ G[start:stop]

    return _block_sums(X, X.shape[1], add_block, (X.shape[1], G.shape[1]))


def _weighted_gram(B, c, overwrite=False):
    """``B^T diag(c) B`` as a dense array.

    Parameters
    ----------
    B : {ndarray, CSR matrix} of shape (n_rows, d)
        A float64 block.
    c : ndarray of shape (n_rows,)
        Row weights; must be >= 0 when B is dense.
    overwrite : bool, default=False
        A dense B may be scaled in place (it is a copy owned by the caller).

    Returns
    -------
    ndarray of shape (d, d)
    """
    return _weighted_gram_and_sum(B, c, overwrite)[0]


def _weighted_gram_and_sum(B, c, overwrite=False):
    """``B^T diag(c) B`` and ``B^T c`` (the intercept's column).

    For dense B the second comes from the scaled block ``sqrt(c) B`` while
    it is still in cache, not from another pass over B.

    Parameters
    ----------
    B : {ndarray, CSR matrix} of shape (n_rows, d)
        A float64 block.
    c : ndarray of shape (n_rows,)
        Row weights; must be >= 0 when B is dense.
    overwrite : bool, default=False
        A dense B may be scaled in place (it is a copy owned by the caller).

    Returns
    -------
    gram : ndarray of shape (d, d)
    moment : ndarray of shape (d,)
    """
    if sp.issparse(B):
        gram = (B.T @ B.multiply(c[:, None]).tocsr()).toarray()
        return np.asarray(gram), np.asarray(B.T @ c).ravel()
    root = np.sqrt(c)
    if overwrite:
        B *= root[:, None]
    else:
        B = B * root[:, None]
    return B.T @ B, B.T @ root  # NumPy hands A^T A to BLAS syrk


# ------------------------------------------------------------ Newton ---


def _newton(lossf, X, w, alpha, fit_intercept, theta, tol, max_iter, callback):
    """Damped (generalised) Newton on J from ``theta``.

    Parameters
    ----------
    lossf : loss object
        One of the ``_LOSSES`` classes, holding the targets.
    X : {ndarray, CSR matrix} of shape (n_samples, n_features)
        The data.
    w : ndarray of shape (n_samples,)
        Normalised sample weights ``s / S``.
    alpha : float
        L2 strength.
    fit_intercept : bool
        Fit b.
    theta : ndarray of shape (d * K + K,)
        Starting point.
    tol, max_iter, callback
        As in :func:`newton_solve`.

    Returns
    -------
    dict
        As :func:`newton_solve`.
    """
    d = X.shape[1]
    K = theta.size // (d + 1)
    W = theta[: d * K].reshape(d, K).copy()
    b = theta[d * K :].copy() if fit_intercept else np.zeros(K)
    if lossf.coupled:  # symmetric gauge: changes no probability, no larger J
        W -= W.mean(axis=1, keepdims=True)
        b -= b.mean()
    Z = _decision(X, W, b)
    J = _objective(lossf, Z, w, alpha, W)
    gW, gb = _gradient(lossf, X, Z, w, alpha, W, fit_intercept)
    curve, n_iter, stalled, stopped = [], 0, False, False
    preconditioner = _Preconditioner(lossf, X, w, alpha, fit_intercept)
    while not stalled and n_iter < max_iter:
        if n_iter >= 1 and _max_abs(gW, gb) <= tol:
            break
        g = np.vstack([gW, gb[None]]) if fit_intercept else gW
        step = _direction(lossf, X, Z, w, alpha, fit_intercept, g, preconditioner)
        dW = step[:d]
        db = step[d] if fit_intercept else np.zeros(K)
        dZ = _decision(X, dW, db)
        slope = (g * step).sum(axis=0)
        t, dJ = _line_search(lossf, Z, dZ, w, alpha, W, dW, slope)
        stalled = not np.any(t > 0)
        W += t * dW
        b += t * db
        Z += t * dZ
        J += dJ.sum()
        n_iter += 1
        curve.append(float(J))
        gW, gb = _gradient(lossf, X, Z, w, alpha, W, fit_intercept)
        if callback is not None and callback(n_iter, float(J), _theta(W, b)):
            stopped = True
            break
    return {
        "theta": _theta(W, b),
        "n_iter": n_iter,
        "loss_curve": curve,
        "converged": bool(n_iter >= 1 and _max_abs(gW, gb) <= tol),
        "stopped": stopped,
    }


def _theta(W, b):
    """The flat parameter vector ``[W.ravel(), b]``."""
    return np.concatenate([W.ravel(), b])


def _direction(lossf, X, Z, w, alpha, fit_intercept, g, preconditioner):
    """The Newton direction at decision values Z, gradient g (shape (m, K)).

    Assembled Hessian up to ``_MAX_DENSE_HESSIAN`` unknowns per column
    (multinomial: ``_MAX_FULL_MULTINOMIAL`` in all), CG preconditioned by
    ``preconditioner`` (a :class:`_Preconditioner`) beyond; multinomial
    directions are centred over the classes.
    """
    m, K = g.shape
    curv = lossf.curvature(Z)
    if lossf.coupled:
        dense = m * K <= _MAX_FULL_MULTINOMIAL
    else:
        dense = m <= _MAX_DENSE_HESSIAN
    if dense:
        step = _dense_direction(lossf, X, curv, w, alpha, fit_intercept, g)
    else:
        step = _cg_direction(lossf, X, curv, w, alpha, fit_intercept, g, preconditioner)
    if lossf.coupled:
        step -= step.mean(axis=1, keepdims=True)
    return step


def _objective(lossf, Z, w, alpha, W):
    """J from the decision values Z and the weights W."""
    data = sum(
        w[part] @ _row_sums(lossf.rows(part).value(Z[part]))
        for part in _row_chunks(*Z.shape)
    )
    return float(data + 0.5 * alpha * np.sum(W * W))


def _gradient(lossf, X, Z, w, alpha, W, fit_intercept):
    """Gradient of J: ``(X^T G + alpha W, column sums of G)``, G = w * loss'.

    G (n x K, like Z) is formed in row chunks, then multiplied in one
    ``_xt_dot`` (for dense X, the blocks' derivatives on the groups'
    threads took turns with the GIL: 200000 x 100, 11 -> 13-19 ms).
    """
    G = np.empty_like(Z)
    for part in _row_chunks(*Z.shape):
        G[part] = lossf.rows(part).derivative(Z[part]) * w[part, None]
    gW = _xt_dot(X, G) + alpha * W
    return gW, (_column_sums(G) if fit_intercept else np.zeros(W.shape[1]))


def _max_abs(gW, gb):
    """Max-norm of the gradient."""
    return max(np.max(np.abs(gW), initial=0.0), np.max(np.abs(gb), initial=0.0))


def _line_search(lossf, Z, dZ, w, alpha, W, dW, slope):
    """Backtracking (Armijo) step sizes along a Newton direction.

    Losses that are sums over the K columns (``coupled = False``) get one
    step per column, the multinomial one step for all.

    Parameters
    ----------
    lossf : loss object
        The loss.
    Z, dZ : ndarray of shape (n_samples, K)
        Decision values and their change along the direction.
    w : ndarray of shape (n_samples,)
        Normalised sample weights.
    alpha : float
        L2 strength.
    W, dW : ndarray of shape (n_features, K)
        Weights and their direction.
    slope : ndarray of shape (K,)
        Directional derivative of J per column.

    Returns
    -------
    t : ndarray of shape (K,) or (1,)
        Step sizes; 0 where no decrease could be found.
    dJ : ndarray of the same shape
        The change of J (per column).
    """
    if lossf.coupled:
        slope = np.array([slope.sum()])
    t = np.ones(slope.shape)
    wdw, dwdw = np.sum(W * dW, axis=0), np.sum(dW * dW, axis=0)
    if lossf.coupled:
        wdw, dwdw = np.array([wdw.sum()]), np.array([dwdw.sum()])
    accepted = np.zeros(t.shape, dtype=bool)
    dJ = np.zeros(t.shape)
    for _ in range(_MAX_HALVINGS):
        trial = alpha * t * (wdw + 0.5 * t * dwdw)
        for part in _row_chunks(*Z.shape):
            trial += w[part] @ lossf.rows(part).change(Z[part], t * dZ[part])
        ok = ~accepted & (trial <= _ARMIJO * t * np.minimum(slope, 0.0))
        ok &= slope < 0
        dJ[ok] = trial[ok]
        accepted |= ok
        if accepted.all():
            break
        t = np.where(accepted, t, 0.5 * t)
    t = np.where(accepted, t, 0.0)
    return t, np.where(accepted, dJ, 0.0)


def _dense_direction(lossf, X, curv, w, alpha, fit_intercept, g):
    """Newton direction from the assembled Hessian.

    Parameters
    ----------
    lossf : loss object
        The loss.
    X : {ndarray, CSR matrix}
        The data.
    curv : ndarray of shape (n_samples, K)
        ``lossf.curvature`` at the iterate.
    w : ndarray of shape (n_samples,)
        Normalised sample weights.
    alpha : float
        L2 strength.
    fit_intercept : bool
        Whether the intercept is a variable.
    g : ndarray of shape (m, K)
        Gradient, rows of W then (if fitted) b.

    Returns
    -------
    ndarray of shape (m, K)
        The direction ``-H^{-1} g``.
    """
    H = _hessian(lossf, X, curv, w, alpha, fit_intercept)
    return _solve_newton_system(H, g, alpha, lossf.coupled)


def _hessian(lossf, X, curv, w, alpha, fit_intercept):
    """Assembled Hessian: (m K, m K) if ``lossf.coupled``, else (K, m, m)."""
    if lossf.coupled:
        return _multinomial_hessian(X, curv, w, alpha, fit_intercept)
    return _diagonal_hessians(X, curv * w[:, None], alpha, fit_intercept)


def _solve_newton_system(H, g, alpha, coupled):
    """``-H^{-1} g`` for a Hessian from :func:`_hessian` (overwritten).

    Parameters
    ----------
    H : ndarray of shape (m K, m K) (coupled) or (K, m, m)
        Hessian of J, penalty included.
    g : ndarray of shape (m, K)
        Gradient of J.
    alpha : float
        L2 strength (0 selects the minimum-norm solution).
    coupled : bool
        The multinomial loss (one system for all K columns).

    Returns
    -------
    ndarray of shape (m, K)
    """
    m, K = g.shape
    if coupled:
        # Fix the gauge: add tau times the projector onto "same value in
        # every class" for each row. g and the step are orthogonal to it.
        tau = np.trace(H) / H.shape[0]
        H4 = H.reshape(m, K, m, K)
        idx = np.arange(m)
        H4[idx, :, idx, :] += tau / K
        return _spd_solver(H, 1.0)(-g.ravel()).reshape(m, K)
    step = np.empty_like(g)
    for k in range(K):
        step[:, k] = _spd_solver(H[k], alpha)(-g[:, k])
    return step


def _diagonal_hessians(X, C, alpha, fit_intercept):
    """Per-column Hessians ``[[X^T C_k X + alpha I, X^T C_k], [., sum C_k]]``.

    Rows with zero curvature (zero weight, or inactive in the squared
    hinge) are skipped.

    Parameters
    ----------
    X : {ndarray, CSR matrix} of shape (n_samples, d)
        The data.
    C : ndarray of shape (n_samples, K)
        Weighted second derivatives (>= 0).
    alpha : float
        L2 strength.
    fit_intercept : bool
        Add the intercept's row and column.

    Returns
    -------
    ndarray of shape (K, m, m), m = d + fit_intercept
    """
    d, K = X.shape[1], C.shape[1]

    def add_block(H, start, stop, B):
        for k in range(K):
            c = C[start:stop, k]
            rows = np.flatnonzero(c)
            if rows.size == 0:
                continue
            subset = rows.size < 0.8 * c.size
            Bk, ck = (B[rows], c[rows]) if subset else (B, c)
            gram, moment = _weighted_gram_and_sum(Bk, ck, overwrite=subset)
            H[k, :d, :d] += gram
            if fit_intercept:
                H[k, :d, d] += moment
                H[k, d, d] += ck.sum()

    m = d + bool(fit_intercept)
    H = _block_sums(X, d, add_block, (K, m, m))
    if fit_intercept:
        H[:, d, :d] = H[:, :d, d]
    idx = np.arange(d)
    H[:, idx, idx] += alpha
    return H


def _multinomial_hessian(X, P, w, alpha, fit_intercept):
    """Full multinomial Hessian of J, shape (m K, m K), m = d + fit_intercept.

    ``sum_i w_i (diag(p_i) - p_i p_i^T) kron x_i x_i^T + alpha I`` in the
    theta layout (index j K + k for W[j, k], d K + k for b[k]); the intercept
    rows come from sums of the weights times p and times x, not from a
    column of ones appended to X.

    Parameters
    ----------
    X : {ndarray, CSR matrix} of shape (n_samples, d)
        The data.
    P : ndarray of shape (n_samples, K)
        Class probabilities.
    w : ndarray of shape (n_samples,)
        Normalised sample weights.
    alpha : float
        L2 strength.
    fit_intercept : bool
        Add the intercept's rows and columns.

    Returns
    -------
    ndarray of shape (m K, m K)
    """
    d, K = X.shape[1], P.shape[1]
    m = d + bool(fit_intercept)

    def add_block(H, start, stop, B):
        p, ws = P[start:stop], w[start:stop]
        rows = np.flatnonzero(ws)
        if rows.size < 0.8 * ws.size:
            B, p, ws = B[rows], p[rows], ws[rows]
        # T[i, k, l] = w_i (delta_kl p_ik - p_ik p_il)
        T = -ws[:, None, None] * p[:, :, None] * p[:, None, :]
        T[:, np.arange(K), np.arange(K)] += ws[:, None] * p
        if sp.issparse(B):
            for k in range(K):
                for k2 in range(k, K):
                    G = _weighted_gram(B, T[:, k, k2])
                    H[:d, k, :d, k2] += G
                    if k2 != k:
                        H[:d, k2, :d, k] += G.T
        else:
            for k in range(K):
                H[:d, k, :d, k] += _weighted_gram(B, ws * p[:, k])
            q = p * np.sqrt(ws)[:, None]
            U = (B[:, :, None] * q[:, None, :]).reshape(B.shape[0], d * K)
            H[:d, :, :d, :] -= (U.T @ U).reshape(d, K, d, K)
        if fit_intercept:
            H[:d, :, d, :] += (B.T @ T.reshape(-1, K * K)).reshape(d, K, K)
            H[d, :, d, :] += T.sum(axis=0)

    H = _block_sums(X, d * K, add_block, (m, K, m, K))
    if fit_intercept:
        H[d, :, :d, :] = H[:d, :, d, :].transpose(1, 0, 2)
    H = H.reshape(m * K, m * K)
    idx = np.arange(d * K)
    H[idx, idx] += alpha
    return H


def _cg_direction(lossf, X, curv, w, alpha, fit_intercept, g, preconditioner):
    """Newton direction by preconditioned conjugate gradients.

    Truncated at a relative residual ``min(0.5, sqrt(||g||))`` (superlinear
    convergence), with at most ``min(m K, 500)`` Hessian-vector products, or
    ``_SLOW_CG`` + 1 while the preconditioner is Jacobi with a stronger one
    to switch to (a truncated CG iterate is still a descent direction). For
    the multinomial loss the work stays in the symmetric gauge (the
    preconditioned residual is centred over the classes), where the Hessian
    is positive definite.

    Parameters
    ----------
    lossf, X, curv, w, alpha, fit_intercept, g
        As in :func:`_dense_direction`.
    preconditioner : _Preconditioner
        Gives the preconditioner at this curvature and is told the number of
        products the solve took.

    Returns
    -------
    ndarray of shape (m, K)
        An approximation of ``-H^{-1} g`` (a descent direction).
    """
    precondition, budget = preconditioner.at(curv)
    x = np.zeros_like(g)
    r = -g
    z = precondition(r)
    p = z.copy()
    rz = np.sum(r * z)
    g_norm = np.linalg.norm(g)
    products = 0
    while products < min(g.size, 500, budget):
        if np.linalg.norm(r) <= min(0.5, np.sqrt(g_norm)) * g_norm:
            break
        Hp = _hessian_product(lossf, X, curv, w, alpha, fit_intercept, p)
        products += 1
        pHp = np.sum(p * Hp)
        if pHp <= 0:
            break
        a = rz / pHp
        x += a * p
        r -= a * Hp
        z = precondition(r)
        rz_new = np.sum(r * z)
        p = z + (rz_new / rz) * p
        rz = rz_new
    preconditioner.took(products)
    return x if np.any(x) else precondition(-g)


class _Preconditioner:
    """The CG preconditioner of one Newton solve, kept across its steps.

    Jacobi (the inverse Hessian diagonal, rebuilt at each step's curvature
    in one pass over X) until a CG solve needs more than ``_SLOW_CG``
    products; from the next step on the stronger one of
    :func:`_strong_preconditioner` where there is one. That is built at the
    step's curvature and kept while the solves it preconditions take at
    most ``_SLOW_CG`` products (a preconditioner only steers CG: a stale one
    costs products, never accuracy), rebuilt after one that takes more.

    Parameters
    ----------
    lossf, X, w, alpha, fit_intercept
        As in :func:`_dense_direction`.
    """

    def __init__(self, lossf, X, w, alpha, fit_intercept):
        self._args = (lossf, X, w, alpha, fit_intercept)
        self._has_strong = _has_strong_preconditioner(lossf, X, fit_intercept)
        self._strong = None  # the kept strong preconditioner
        # Use the strong one: a solve was slow, or the blocks are cheap.
        m = X.shape[1] + bool(fit_intercept)
        self._switched = lossf.coupled and m <= _MAX_BLOCKS_AT_START
        self._last = 0  # products of the last solve

    def at(self, curv):
        """``(apply, budget)``: the preconditioner to use at curvature
        ``curv`` and the most products its solve may take."""
        if self._has_strong and self._switched:
            if self._strong is None or self._last > _SLOW_CG:
                self._strong = _strong_preconditioner(*self._args, curv)
            return self._strong, np.inf
        jacobi = _jacobi_preconditioner(*self._args, curv)
        return jacobi, (_SLOW_CG + 1 if self._has_strong else np.inf)

    def took(self, products):
        """Record the products of the solve just made."""
        self._last = products
        self._switched = self._switched or products > _SLOW_CG


def _has_strong_preconditioner(lossf, X, fit_intercept):
    """Whether :func:`_strong_preconditioner` gives one for this problem."""
    m = X.shape[1] + bool(fit_intercept)
    if lossf.coupled:
        return m <= _MAX_DENSE_HESSIAN
    return not sp.issparse(X) and m <= _MAX_SAMPLED_HESSIAN


def _strong_preconditioner(lossf, X, w, alpha, fit_intercept, curv):
    """A function applying an approximate inverse Hessian to (m, K) arrays
    (for the problems of :func:`_has_strong_preconditioner`).

    Multinomial with m <= ``_MAX_DENSE_HESSIAN``: the block-diagonal part of
    the Hessian (one (m x m) block per class, ``X^T diag(w p_k (1 - p_k)) X``),
    factorised; it captures the feature correlations, leaving only the
    coupling between classes to CG (on correlated columns Jacobi needed
    ~10x more products), and the results are centred over the classes (the
    symmetric gauge). The other losses on dense X with
    m <= ``_MAX_SAMPLED_HESSIAN``: the per-column Hessians estimated on
    ``_SAMPLE_ROWS_PER_UNKNOWN`` m evenly spaced rows (weights scaled by
    n over the rows sampled), factorised.
    """
    n, d = X.shape
    m = d + bool(fit_intercept)
    if lossf.coupled:
        C = _weighted_diagonal_curvature(lossf, curv, w)
        apply = _column_solvers(_diagonal_hessians(X, C, alpha, fit_intercept))
        return lambda r: (z := apply(r)) - z.mean(axis=1, keepdims=True)
    rows = slice(None)
    if n > _SAMPLE_ROWS_PER_UNKNOWN * m:
        size = _SAMPLE_ROWS_PER_UNKNOWN * m
        rows = np.unique(np.linspace(0, n - 1, size).astype(np.intp))
    C = _weighted_diagonal_curvature(lossf, curv[rows], w[rows])
    C *= n / C.shape[0]
    # A copy of the sampled rows only: at most 2 m d values, the size of
    # two Hessians.
    return _column_solvers(_diagonal_hessians(X[rows], C, alpha, fit_intercept))


def _jacobi_preconditioner(lossf, X, w, alpha, fit_intercept, curv):
    """The inverse Hessian diagonal as a function on (m, K) arrays
    (multinomial results centred over the classes)."""
    diag = _hessian_diagonal(lossf, X, curv, w, alpha, fit_intercept)
    inv_diag = np.where(diag > 0, 1.0 / np.where(diag > 0, diag, 1.0), 1.0)
    if lossf.coupled:
        return lambda r: (z := r * inv_diag) - z.mean(axis=1, keepdims=True)
    return lambda r: r * inv_diag


def _column_solvers(blocks):
    """A function solving ``blocks[k] z_k = r_k`` for each column k of r.

    Small blocks (m^3 < ``_SMALL_WORK``) are inverted once (overwritten, on
    one BLAS thread) and applied in one batched product: one call instead
    of K pairs of triangular solves (load_digits, K = 10, m = 65: 0.02 ms
    against 0.17 ms per application, several per CG step). Threaded, a
    101 x 101 inversion took 12-16 ms instead of 0.14 ms whenever BLAS's
    second thread had gone to sleep. Larger blocks keep their Cholesky
    factors (an inverse costs more than the solves it saves: a sampled
    1101 x 1101 Hessian, binary, 0.65 -> 0.80 s per fit).
    """
    m = blocks.shape[-1]
    if m**3 >= _SMALL_WORK:
        solvers = [_spd_solver(H_k, 1.0) for H_k in blocks]
        return lambda r: np.column_stack(
            [solve(r[:, k]) for k, solve in enumerate(solvers)]
        )
    with single_threaded_blas():
        for k, block in enumerate(blocks):
            blocks[k] = _spd_inverse(block)
    return lambda r: np.matmul(blocks, r.T[:, :, None])[:, :, 0].T


def _spd_inverse(A):
    """The inverse of a symmetric positive semi-definite A, symmetric: by
    :func:`_spd_solver` (Cholesky; the pseudo-inverse where that fails)."""
    inverse = _spd_solver(A, 1.0)(np.eye(A.shape[0]))
    return 0.5 * (inverse + inverse.T)


def _curvature_times(lossf, curv, w, dZ):
    """Row Hessians of the loss times dZ, weighted by w (n_rows x K)."""
    if lossf.coupled:
        return w[:, None] * curv * (dZ - np.einsum("ik,ik->i", curv, dZ)[:, None])
    return (w[:, None] * curv) * dZ


def _hessian_product(lossf, X, curv, w, alpha, fit_intercept, V):
    """Hessian of J times V (shape (m, K)), in one pass over X."""
    d = X.shape[1]
    if sp.issparse(X):
        vb = V[d] if fit_intercept else np.zeros(V.shape[1])
        out_W, out_b = _csr_products.csr_hessian_times(
            X,
            V[:d],
            vb,
            w[:, None] * curv,
            curv if lossf.coupled else None,
            _sparse_threads(X, V.shape[1]),
        )
        out_W += alpha * V[:d]
        return np.vstack([out_W, out_b[None]]) if fit_intercept else out_W

    def add_block(out, start, stop, B):
        dZ = B @ V[:d]
        if fit_intercept:
            dZ += V[d]
        R = _curvature_times(lossf, curv[start:stop], w[start:stop], dZ)
        out[:d] += B.T @ R
        if fit_intercept:
            out[d] += _column_sums(R)

    out = _block_sums(X, d, add_block, V.shape)
    out[:d] += alpha * V[:d]
    return out


def _weighted_diagonal_curvature(lossf, curv, w):
    """``w_i d^2 loss / dz_ik^2`` (n x K): ``w p (1 - p)`` for multinomial.

    Computed in place in one new n x K array.
    """
    C = 1.0 - curv if lossf.coupled else curv.copy()
    if lossf.coupled:
        C *= curv
    C *= w[:, None]
    return C


def _hessian_diagonal(lossf, X, curv, w, alpha, fit_intercept):
    """Diagonal of the Hessian of J, shape (m, K)."""
    d = X.shape[1]
    C = _weighted_diagonal_curvature(lossf, curv, w)
    out = np.zeros((d + bool(fit_intercept), C.shape[1]))
    if sp.issparse(X):
        threads = _sparse_threads(X, C.shape[1])
        out[:d] = _csr_products.csr_transpose_times(X, C, True, threads)
    else:

        def add_block(out, start, stop, B):
            out += (B * B).T @ C[start:stop]

        out[:d] = _block_sums(X, d, add_block, (d, C.shape[1]))
    if fit_intercept:
        out[d] = _column_sums(C)
    out[:d] += alpha
    return out


# ------------------------------------------------------- closed form ---


def _closed_form(X, Y, w, alpha, fit_intercept, tol, max_iter, callback):
    """Exact ridge solution with weighted centring for the intercept.

    The intercept is eliminated by weighted centring (means ``mu_x``,
    ``mu_y`` with weights w); W solves ``(Gc + alpha I) W = Xc^T diag(w) Yc``
    with ``Gc = Xc^T diag(w) Xc`` (primal, d <= n) or, when d > n, the
    equivalent dual system ``(A A^T + alpha I) c = U Yc``, ``W = A^T c``,
    ``A = U Xc``, ``U = diag(sqrt(w))``. Singular systems (``alpha == 0``)
    give the minimum-norm solution. In the primal form, if the gradient
    max-norm still exceeds ``tol`` (extreme scaling), Newton refinement
    steps reuse the factorisation for as long as each at least halves it.

    Parameters
    ----------
    X : {ndarray, CSR matrix} of shape (n_samples, d)
        The data.
    Y : ndarray of shape (n_samples, K)
        Targets.
    w : ndarray of shape (n_samples,)
        Normalised sample weights.
    alpha : float
        L2 strength.
    fit_intercept : bool
        Fit b.
    tol, max_iter, callback
        As in :func:`newton_solve`.

    Returns
    -------
    dict
        As :func:`newton_solve`.
    """
    n, d = X.shape
    K = Y.shape[1]
    mu_x = _xt_dot(X, w[:, None])[:, 0] if fit_intercept else np.zeros(d)
    mu_y = w @ Y if fit_intercept else np.zeros(K)
    if d > n:
        W, solve = _dual_ridge(X, Y, w, alpha, mu_x, mu_y, fit_intercept), None
    else:
        G, R = _centred_gram(X, Y, w, mu_x, mu_y)
        G[np.diag_indices(d)] += alpha
        solve = _spd_solver(G, alpha)
        W = solve(R)
    b = mu_y - mu_x @ W
    lossf = _SquaredError(Y, K)
    curve, n_iter, stopped, previous = [], 0, False, np.inf
    while True:
        Z = _decision(X, W, b)
        n_iter += 1
        curve.append(_objective(lossf, Z, w, alpha, W))
        if callback is not None and callback(n_iter, curve[-1], _theta(W, b)):
            stopped = True
        gW, gb = _gradient(lossf, X, Z, w, alpha, W, fit_intercept)
        g_max = _max_abs(gW, gb)
        converged = g_max <= tol
        # refine only while it helps: stop once the gradient no longer halves
        # (it is then at the rounding level of the data)
        stalled = g_max > 0.5 * previous
        if converged or stopped or stalled or solve is None or n_iter >= max_iter:
            break
        previous = g_max
        # Newton step on (W, b) through the Schur complement of b's block
        dW = solve(-gW + np.outer(mu_x, gb))
        W += dW
        b += -gb - mu_x @ dW
    return {
        "theta": _theta(W, b),
        "n_iter": n_iter,
        "loss_curve": curve,
        "converged": bool(converged),
        "stopped": stopped,
    }


def _spd_solver(A, alpha):
    """A function solving ``A x = r`` with A factorised once.

    Cholesky when ``alpha > 0``; the pseudo-inverse (minimum-norm solution)
    when ``alpha == 0`` or Cholesky fails.
    """
    if alpha > 0:
        try:
            factor = cho_factor(A, check_finite=False)
            return lambda r: cho_solve(factor, r, check_finite=False)
        except LinAlgError:
            pass
    A_pinv = pinvh(A, check_finite=False)
    return lambda r: A_pinv @ r


def _centred_gram(X, Y, w, mu_x, mu_y):
    """``Xc^T diag(w) Xc`` and ``Xc^T diag(w) Yc`` over row blocks.

    Dense blocks are centred one at a time (no cancellation); for CSR the
    Gram is corrected by ``- mu_x mu_x^T`` so that sparsity is kept
    (``sum w = 1``). ``X^T diag(w) Yc`` needs no correction: ``sum w Yc = 0``.
    """
    d, K = X.shape[1], Y.shape[1]

    def add_block(out, start, stop, B):  # out = [G, R]
        ws = w[start:stop]
        out[:, d:] += B.T @ (ws[:, None] * (Y[start:stop] - mu_y))
        if sp.issparse(B):
            out[:, :d] += _weighted_gram(B, ws)
        else:
            Bc = B - mu_x
            Bc *= np.sqrt(ws)[:, None]
            out[:, :d] += Bc.T @ Bc

    GR = _block_sums(X, d, add_block, (d, d + K))
    G, R = np.ascontiguousarray(GR[:, :d]), np.ascontiguousarray(GR[:, d:])
    if sp.issparse(X):
        G -= np.outer(mu_x, mu_x)
    return G, R


def _dual_ridge(X, Y, w, alpha, mu_x, mu_y, fit_intercept):
    """W from the n x n dual system (for d > n).

    Solves ``(U Kc U + alpha I) c = U Yc`` with ``Kc = Xc Xc^T`` and returns
    ``W = Xc^T U c = X^T v - mu_x (1^T v)``, ``v = U c``.
    """
    u = np.sqrt(w)
    A = _centred_kernel(X, mu_x)
    A *= u[:, None]
    A *= u[None, :]
    if fit_intercept:
        # u (a unit vector: w sums to 1) spans a null space of U Kc U
        # (w^T Xc = 0); project out what rounding left there (CSR's
        # kernel is centred after the product, which cancels): with
        # alpha = 0, pinvh could take it for a small eigenvalue and
        # invert it.
        Au = A @ u
        A += (u @ Au) * np.outer(u, u) - np.outer(u, Au) - np.outer(Au, u)
    A[np.diag_indices_from(A)] += alpha
    c = _spd_solver(A, alpha)(u[:, None] * (Y - mu_y))
    v = u[:, None] * c
    return _xt_dot(X, v) - np.outer(mu_x, v.sum(axis=0))


def _centred_kernel(X, mu_x):
    """``Xc Xc^T`` (n x n), Xc = X - 1 mu_x^T, never holding X in float64.

    Dense X: over column chunks (each centred, then one syrk). CSR X: over
    pairs of row blocks, then ``- X mu 1^T - 1 (X mu)^T + mu.mu``.
    """
    n, d = X.shape
    Kc = np.zeros((n, n))
    if not sp.issparse(X):
        cols = max(1, _BLOCK_BYTES // (8 * n))
        for start in range(0, d, cols):
            C = X[:, start : start + cols] - mu_x[start : start + cols]
            Kc += C @ C.T
        return Kc
    blocks = list(_blocks(X, d))
    for i, (a, b, Bi) in enumerate(blocks):
        for c, e, Bj in blocks[i:]:
            Kc[a:b, c:e] = (Bi @ Bj.T).toarray()
            Kc[c:e, a:b] = Kc[a:b, c:e].T
    xm = _decision(X, mu_x[:, None], np.zeros(1))[:, 0]
    Kc -= xm[:, None]
    Kc -= xm[None, :]
    Kc += mu_x @ mu_x
    return Kc


# ----------------------------------------------------- norm constraint ---

# Brent's method on the multiplier: relative tolerance on beta (the secular
# function is smooth and nearly affine, so this costs few evaluations).
_ROOT_RTOL = 1e-13


class _Interrupted(Exception):
    """The callback or the budget of Newton steps ended the root search."""


def _norm_constrained(problem, radius, theta, tol, max_iter, callback):
    """Exact minimiser of J subject to ``||W||_F <= radius``.

    By the KKT conditions (J convex, the ball has interior points) the
    solution minimises J at strength ``beta = alpha + lambda`` for a
    ``lambda >= 0`` with ``lambda = 0`` or ``||W|| = radius``. The norm of
    the minimiser ``W(beta)`` decreases with beta, so: if ``W(alpha)`` is in
    the ball it is the answer; otherwise beta is the root of the increasing
    ``1 / ||W(beta)|| - 1 / radius`` (affine in beta for a single ridge
    direction, as in More and Sorensen's trust-region iteration), found by
    Brent's method:

    - squared error (closed form): on the secular equation of the centred
      Gram spectrum (:func:`_ridge_multiplier`), then one closed-form solve
      at the root;
    - the other losses: one Newton solve per trial beta, each warm-started
      from the previous solution, bracketed by growing beta from
      ``alpha + ||grad at W = 0|| / radius`` (for large beta,
      ``||W(beta)|| ~ ||grad at 0|| / beta``).

    A W outside the ball by rounding of the root is scaled onto it.

    Parameters
    ----------
    problem : _Problem
        The objective.
    radius : float
        r > 0.
    theta : ndarray of shape (d * K + K,)
        Starting point of the first Newton solve.
    tol, max_iter, callback
        As in :func:`newton_solve`; ``max_iter`` bounds the Newton steps of
        all the solves together, and ``converged`` means the last solve met
        ``tol`` at the root (KKT stationarity).

    Returns
    -------
    dict
        As :func:`newton_solve`, with ``multiplier``.
    """
    path = _PenaltyPath(problem, theta, tol, max_iter, callback)
    alpha = problem.alpha
    interrupted = False
    try:
        if path.norm(alpha) > radius:
            if _closed_form_applies(problem):
                beta = alpha + _ridge_multiplier(problem, radius)
            else:
                beta = _multiplier(path, radius)
            path.solve(beta)
    except _Interrupted:
        interrupted = True
    theta = path.theta.copy()
    W = path.weights(theta)
    norm = np.linalg.norm(W)
    if norm > radius:
        W *= radius / norm
    return {
        "theta": theta,
        "n_iter": path.n_iter,
        "loss_curve": path.curve,
        "converged": path.converged and not interrupted,
        "stopped": path.stopped,
        "multiplier": path.beta - alpha,
    }


class _PenaltyPath:
    """Unconstrained minimisers of J at strengths ``beta >= alpha``.

    Each solve starts from the last solution; all share one budget of
    ``max_iter`` Newton steps and the callback, and ``curve`` records J at
    the caller's alpha after every step.

    Parameters
    ----------
    problem : _Problem
        The objective.
    theta : ndarray of shape (d * K + K,)
        Starting point of the first solve.
    tol, max_iter, callback
        As in :func:`newton_solve`.
    """

    def __init__(self, problem, theta, tol, max_iter, callback):
        self.problem, self.theta, self.beta = problem, theta, problem.alpha
        self.tol, self.max_iter, self.callback = tol, max_iter, callback
        self.n_iter, self.curve = 0, []
        self.stopped = self.converged = False
        self._solved = {}

    def weights(self, theta):
        """The W part of theta (a view)."""
        return theta[: self.problem.X.shape[1] * self.problem.K]

    def norm(self, beta):
        """``||W(beta)||_F``."""
        return np.linalg.norm(self.weights(self.solve(beta)))

    def solve(self, beta):
        """theta minimising J at strength beta (solved once per beta).

        Raises
        ------
        _Interrupted
            If the callback asked to stop or no Newton step is left.
        """
        if beta not in self._solved:
            if self.stopped or self.n_iter >= self.max_iter:
                raise _Interrupted
            result = _solve(self.problem, beta, self.theta, self.tol,
                            self.max_iter - self.n_iter, self._step(beta))  # fmt: skip
            self._solved[beta] = (result["theta"], result["converged"])
        self.theta, self.converged = self._solved[beta]
        self.beta = beta
        if self.stopped:
            raise _Interrupted
        return self.theta

    def _step(self, beta):
        """The inner callback of a solve at beta: records J at alpha."""
        penalty = beta - self.problem.alpha

        def step(n_iter, J, theta):
            W = self.weights(theta)
            self.n_iter += 1
            self.curve.append(float(J - 0.5 * penalty * (W @ W)))
            if self.callback is not None:
                self.stopped = bool(self.callback(self.n_iter, self.curve[-1], theta))
            return self.stopped

        return step


def _multiplier(path, radius):
    """``beta > alpha`` with ``||W(beta)|| = radius``, by Newton solves.

    Parameters
    ----------
    path : _PenaltyPath
        Holding the solution at alpha, with ``||W(alpha)|| > radius``.
    radius : float
        r.

    Returns
    -------
    float
    """
    alpha = path.problem.alpha

    def secular(beta):
        return 1.0 / max(path.norm(beta), np.finfo(float).tiny) - 1.0 / radius

    lower, width = alpha, _gradient_norm_at_zero(path.problem, path.theta) / radius
    width = width if width > 0 else max(alpha, 1.0)
    while secular(alpha + width) < 0:
        lower, width = alpha + width, 4.0 * width
    upper = alpha + width
    return brentq(secular, lower, upper, xtol=_ROOT_RTOL * upper,
                  rtol=_ROOT_RTOL, disp=False)  # fmt: skip


def _gradient_norm_at_zero(problem, theta):
    """``||grad_W J||_F`` at W = 0 with the intercept of theta."""
    X, K = problem.X, problem.K
    d = X.shape[1]
    lossf = _LOSSES[problem.loss](problem.Y, K)
    b = theta[d * K :] if problem.fit_intercept else np.zeros(K)
    Z = np.repeat(b[None], X.shape[0], axis=0)
    gW, _ = _gradient(lossf, X, Z, problem.w, 0.0, np.zeros((d, K)), False)
    return np.linalg.norm(gW)


def _ridge_multiplier(problem, radius):
    """lambda >= 0 with ``||W(alpha + lambda)||_F = radius`` (squared error).

    With ``||W(beta)||^2 = sum_i c2_i / (e_i + beta)^2``
    (:func:`_ridge_spectrum`), lambda is the root of the increasing
    ``1 / ||W(alpha + lambda)|| - 1 / radius`` in
    ``[0, sqrt(sum c2) / radius]``; 0 if the spectrum puts ``W(alpha)`` in
    the ball (a rounding-level disagreement with the closed form).

    Returns
    -------
    float
    """
    e, c2 = _ridge_spectrum(problem)
    e = e + problem.alpha

    def secular(lam):
        return 1.0 / np.sqrt(np.sum(c2 / (e + lam) ** 2)) - 1.0 / radius

    upper = np.sqrt(np.sum(c2)) / radius
    if secular(0.0) >= 0:
        return 0.0
    if secular(upper) <= 0:
        return upper
    return brentq(secular, 0.0, upper, xtol=_ROOT_RTOL * upper,
                  rtol=_ROOT_RTOL, disp=False)  # fmt: skip


def _ridge_spectrum(problem):
    """Eigenvalues e and weights c2 with ``||W(beta)||_F^2 = sum c2 / (e + beta)^2``.

    Primal (d <= n): ``Gc = Q diag(e) Q^T`` (the centred weighted Gram) and
    c2 the squared row norms of ``Q^T Xc^T diag(w) Yc``. Dual (d > n): the
    kernel ``U Kc U = V diag(e) V^T`` (as in :func:`_dual_ridge`) has the
    same non-zero eigenvalues, ``W = Xc^T U V diag(1 / (e + beta)) V^T U Yc``
    and c2 is e times the squared row norms of ``V^T U Yc``. Eigenvalues at
    the rounding level (below size * eps * the largest) are dropped: the
    minimum-norm convention of the closed form.

    Returns
    -------
    e, c2 : ndarray of shape (p,)
    """
    X, Y, w = problem.X, problem.Y, problem.w
    n, d = X.shape
    K = Y.shape[1]
    mu_x = _xt_dot(X, w[:, None])[:, 0] if problem.fit_intercept else np.zeros(d)
    mu_y = w @ Y if problem.fit_intercept else np.zeros(K)
    if d > n:
        u = np.sqrt(w)
        A = _centred_kernel(X, mu_x)
        A *= u[:, None]
        A *= u[None, :]
        e, V = eigh(A, check_finite=False)
        c2 = e * np.sum((V.T @ (u[:, None] * (Y - mu_y))) ** 2, axis=1)
    else:
        G, R = _centred_gram(X, Y, w, mu_x, mu_y)
        e, Q = eigh(G, check_finite=False)
        c2 = np.sum((Q.T @ R) ** 2, axis=1)
    keep = e > e.size * np.finfo(float).eps * max(e[-1], 0.0)
    return e[keep], c2[keep]

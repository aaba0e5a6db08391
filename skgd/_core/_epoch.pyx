"""The minibatch epoch loop: shuffle, gradient, decay, schedule, update,
averaging and the stopping test, all without the GIL.

Per minibatch B (SPEC section 3)::

    Z  = X_B W + b
    D  = dloss(Z, Y_B) * s_B / sum(s_B)
    g  = X_B^T D + alpha W,   gb = column sums of D

A batch whose weights sum to zero makes no update and does not advance t.

With ``max_norm = r`` every update is followed by the projection of W (not
the intercept) onto the ball ``||W||_F <= r``: Euclidean for SGD (with or
without momentum, and on the trial points of the line search), in the
rule's own metric for Adagrad, RMSprop and Adam (``Optimizer.project``).
"""

from cpython.exc cimport PyErr_CheckSignals
from libc.math cimport INFINITY, fabs, isfinite, sqrt
from libc.stdint cimport uint64_t
import numpy as np

from ._data cimport CSRDataset, Dataset, prefetch
from ._lazy cimport LazyL2
from ._losses cimport Loss
from ._optimizers cimport SGD, Optimizer
from ._random cimport next_epoch_order
from ._scaled cimport ScaledSGD
from ._schedules cimport Schedule
from . import _lazy, _scaled


cdef double _sq_norm(const double* w, Py_ssize_t n) noexcept nogil:
    """||w[:n]||^2 in four interleaved sums (a fixed order; the chain of
    dependent additions, run before every batch, a quarter as long)."""
    cdef Py_ssize_t j
    cdef double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
    for j in range(0, n - 3, 4):
        s0 += w[j] * w[j]
        s1 += w[j + 1] * w[j + 1]
        s2 += w[j + 2] * w[j + 2]
        s3 += w[j + 3] * w[j + 3]
    for j in range(n - n % 4, n):
        s0 += w[j] * w[j]
    return (s0 + s1) + (s2 + s3)


cdef double _max_abs(const double* w, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t j
    cdef double m = 0.0
    for j in range(n):
        m = max(m, fabs(w[j]))
    return m


cdef bint _all_finite(const double* w, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(n):
        if not isfinite(w[j]):
            return False
    return True


cdef double _projected_gradient_max(const double* W, const double* G,
                                    double* work, Py_ssize_t dK, Py_ssize_t P,
                                    double radius) noexcept nogil:
    """max |theta - P(theta - G)|, P the Euclidean projection of W onto
    the ball (the intercept is free); ``work`` holds dK doubles."""
    cdef Py_ssize_t j
    cdef double sq, c = 1.0, m = 0.0
    for j in range(dK):
        work[j] = W[j] - G[j]
    sq = _sq_norm(work, dK)
    if sq > radius * radius:
        c = radius / sqrt(sq)
    for j in range(dK):
        m = max(m, fabs(W[j] - c * work[j]))
    for j in range(dK, P):
        m = max(m, fabs(G[j]))
    return m


# Rows ahead whose target and weight are prefetched while gathering them.
cdef Py_ssize_t PREFETCH_TARGETS = 16
# Batches between checks for Ctrl-C (and other signals) within an epoch.
cdef Py_ssize_t SIGNAL_CHECK_BATCHES = 4096
# The team's threads spin through the end of an epoch (the shuffle, the
# hook) for twice as long as the last one took, if that is below this,
# instead of sleeping: waking them costs ~0.1 ms here (a float32 epoch of
# 160k x 100, 3.6 ms, lost ~0.25 ms to it).
cdef long MAX_EPOCH_GAP_NS = 1000000
# Objective growth factor taken as divergence (see the loop).
cdef double DIVERGED = 1e6
# Sufficient-decrease constant and most halvings of the line search.
cdef double ARMIJO_C = 1e-4
cdef int MAX_HALVINGS = 60


cdef double _objective_at(Loss loss, double* Z, const double* W, Py_ssize_t dK,
                          bint fit_intercept, Py_ssize_t b, const double* Yb,
                          const double* sb, Py_ssize_t ny, double s_batch,
                          double alpha, double sq_norm,
                          double* D) noexcept nogil:
    """s_batch times the batch objective J_B at theta = W (b at W[dK:]),
    given Z = X_B W without the intercept (added here) and
    sq_norm = ||W[:dK]||^2; writes s_i dloss_i/dz into D unless D is NULL."""
    cdef Py_ssize_t i, k, K = loss.n_outputs
    if fit_intercept:
        for i in range(b):
            for k in range(K):
                Z[i * K + k] += W[dK + k]
    return loss.batch(Z, Yb, sb, b, ny, D) + 0.5 * alpha * s_batch * sq_norm


cdef double _batch_objective(Dataset data, Loss loss, const double* W,
                             Py_ssize_t dK, bint fit_intercept,
                             const Py_ssize_t* rows, Py_ssize_t start,
                             Py_ssize_t b, const double* Yb, const double* sb,
                             Py_ssize_t ny, double s_batch, double alpha,
                             double* Z) noexcept nogil:
    """s_batch times the batch objective J_B at theta = W (b at W[dK:]);
    Z is the dataset's scratch (``Dataset.objective``)."""
    return data.objective(loss, rows, start, b, Yb, sb, ny, W,
                          W + dK if fit_intercept else NULL, Z) \
        + 0.5 * alpha * s_batch * _sq_norm(W, dK)


cdef double _armijo_step(Dataset data, Loss loss, double* W, const double* G,
                         double* trial, Py_ssize_t P, Py_ssize_t dK,
                         bint fit_intercept, double intercept_scale,
                         const Py_ssize_t* rows, Py_ssize_t start, Py_ssize_t b,
                         const double* Yb, const double* sb, Py_ssize_t ny,
                         double s_batch, double alpha, double f0, double eta,
                         double* Z, double radius) noexcept nogil:
    """Backtracking line search: halve eta until
    J_B(theta - eta G) <= J_B(theta) - c eta <g, G>, then take that step.

    G is the gradient with its intercept part preconditioned by
    ``intercept_scale``, so the slope along -G is sum_W G^2 + sum_b G^2 / scale.
    With a finite ``radius`` the trial points are projected onto the ball
    (W only) and the test is Armijo's along the projection arc (Bertsekas):
    J_B(x_eta) <= J_B(theta) + c <g, x_eta - theta>, the same test when
    no projection happens. Returns the accepted step."""
    cdef Py_ssize_t j, _halving
    cdef double f, decrease, sq, slope = _sq_norm(G, dK)
    for j in range(dK, P):
        slope += G[j] * G[j] / intercept_scale
    for _halving in range(MAX_HALVINGS):
        for j in range(P):
            trial[j] = W[j] - eta * G[j]
        for j in range(P, dK + loss.n_outputs):
            trial[j] = W[j]
        decrease = eta * slope
        sq = _sq_norm(trial, dK)
        if sq > radius * radius:
            for j in range(dK):
                trial[j] *= radius / sqrt(sq)
            decrease = 0.0
            for j in range(dK):
                decrease += G[j] * (W[j] - trial[j])
            for j in range(dK, P):
                decrease += G[j] * (W[j] - trial[j]) / intercept_scale
        f = _batch_objective(data, loss, trial, dK, fit_intercept, rows, start,
                             b, Yb, sb, ny, s_batch, alpha, Z) / s_batch
        if f <= f0 - ARMIJO_C * decrease:
            break
        eta *= 0.5
    for j in range(P):
        W[j] = trial[j]
    return eta


cdef _run_starts(Py_ssize_t n, Py_ssize_t shuffle_run):
    """The work array of `next_epoch_order`."""
    return np.empty(n // shuffle_run + 2 if shuffle_run > 1 else 1,
                    dtype=np.intp)


def epoch_orders(Py_ssize_t n, Py_ssize_t shuffle_run, uint64_t seed,
                 Py_ssize_t n_epochs):
    """Python access for tests: the row order of each of the first
    ``n_epochs`` epochs of `run_epochs` (``shuffle_run >= 1``)."""
    orders = np.empty((n_epochs, n), dtype=np.intp)
    cdef Py_ssize_t[::1] rows = np.arange(n, dtype=np.intp)
    cdef Py_ssize_t[::1] run_starts = _run_starts(n, shuffle_run)
    cdef uint64_t rng = seed
    for e in range(n_epochs):
        next_epoch_order(&rows[0], n, shuffle_run, &run_starts[0], &rng)
        orders[e] = rows
    return orders


def run_epochs(Dataset data, Loss loss, Optimizer optimizer,
               Schedule schedule, const double[:, ::1] Y,
               const double[:] sample_weight, double[::1] theta,
               double[::1] theta_avg=None, *, double alpha,
               bint fit_intercept, Py_ssize_t batch_size,
               Py_ssize_t shuffle_run,
               uint64_t seed, Py_ssize_t max_epochs, double tol,
               Py_ssize_t n_iter_no_change, double t_start=0.0,
               Py_ssize_t epoch_start=0, double average_start=-1.0,
               double intercept_scale=1.0, double max_norm=INFINITY,
               double objective_scale=0.0, epoch_hook=None):
    """Train ``theta = [W.ravel(), b]`` in place for up to ``max_epochs``.

    Parameters
    ----------
    data, loss, optimizer, schedule : core objects
        How to read X, the loss, the update rule and the step sizes.
    Y : ndarray of shape (n_samples, ny)
        Targets: K values (regression) or one class index per row.
    sample_weight : ndarray of shape (n_samples,)
        Contiguous, or a broadcast 1 (stride 0): unit weights, not read
        (no array of n_samples).
    theta : ndarray of shape (d * K + K,)
        Coefficients (C order, d x K) followed by the K intercepts.
    theta_avg : ndarray like theta or None
        Running Polyak-Ruppert average, updated after every update
        ``t > average_start`` when ``average_start >= 0``.
    alpha : float
        L2 strength.
    shuffle_run : int
        The epoch order: 0 keeps the rows in order, 1 reshuffles them
        (Fisher-Yates), ``r > 1`` reshuffles runs of ``r`` consecutive rows
        (from a random phase), so that a shuffled epoch reads X in
        contiguous stretches.
    tol : float
        Stop when the monitored value has not improved by ``tol`` for
        ``n_iter_no_change`` epochs (after the schedule's ``on_plateau``
        declines) or, for full batch, when the gradient's max-norm is at
        most ``tol`` (the objective of that epoch is still recorded).
        ``-inf`` disables both tests.
    t_start, epoch_start : float, int
        Update and epoch counts already done (``partial_fit``, warm start).
    intercept_scale : float
        Preconditioner of the intercept: its gradient is multiplied by
        this factor, as if the intercept column held sqrt(intercept_scale)
        instead of 1 (liblinear's ``intercept_scaling``). The objective and
        its minimiser do not change.
    max_norm : float
        Radius r of the constraint ``||W||_F <= r``, applied by a
        projection after every update (and averaging averages the
        projected iterates); ``inf`` or ``<= 0``: none. The full-batch
        gradient test then measures the projected gradient
        ``W - P(W - G)`` (zero exactly at the KKT points).
    objective_scale : float
        A row's objective at the start, at most, if known (else 0): the
        divergence test counts from it when the first batch's objective
        per unit weight is smaller (a batch of one row).
    epoch_hook : callable or None
        ``epoch_hook(epoch, objective, eta, t)`` is called with the GIL after
        each epoch. It returns None (go on, monitor the objective), True
        (stop now) or a float (monitor that value instead, lower is better).

    Returns
    -------
    dict with ``status`` ("max_iter", "converged", "stopped" or
    "diverged": the batch objective became non-finite or grew past 1e6
    times (1 + its value at the first batch, or ``objective_scale`` if
    larger) -- no descent method gets there), ``n_epochs``, ``t``,
    ``loss_curve`` (objective J per epoch: the weighted mean over the
    epoch's batches of the batch objective, each taken before the batch's
    update at the coefficients that predict -- the running average once
    averaging has started) and ``eta`` (last step size).
    """
    cdef Py_ssize_t n = data.n_samples, d = data.n_features
    cdef Py_ssize_t K = loss.n_outputs, ny = Y.shape[1]
    cdef Py_ssize_t dK = d * K
    cdef Py_ssize_t P = dK + K if fit_intercept else dK
    cdef Py_ssize_t B = min(batch_size, n)
    cdef bint full_batch = B >= n
    cdef bint use_rows = shuffle_run > 0 and not full_batch
    cdef bint averaging = average_start >= 0.0 and theta_avg is not None
    cdef bint monitor_tol = tol > -INFINITY
    cdef double radius = max_norm if max_norm > 0.0 else INFINITY
    cdef bint constrained = radius < INFINITY
    # Sparse minibatches update only the columns they hold: plain SGD with
    # W = a v (_scaled.pyx), the other rules with lazy decay (_lazy.pyx).
    cdef bint sparse_batches = (isinstance(data, CSRDataset) and not full_batch
                                and not schedule.line_search)
    cdef bint scaled = (sparse_batches and isinstance(optimizer, SGD)
                        and (<SGD>optimizer).momentum == 0.0)
    cdef bint lazy = sparse_batches and not scaled
    if isinstance(data, CSRDataset):
        engine = _lazy if lazy else _scaled
        data.prepare_minibatches(B, engine.VALUE_COST, engine.COLUMN_COST,
                                 engine.CATCH_UP_COST)
    cdef double avg_from = average_start if averaging else -1.0
    cdef LazyL2 lz = (LazyL2(data, K, P, len(optimizer.state_names), alpha,
                             avg_from, radius) if lazy else None)
    cdef ScaledSGD sc = (ScaledSGD(data, K, P, alpha, avg_from, radius)
                         if scaled else None)
    cdef double* avg = &theta_avg[0] if averaging else NULL
    cdef double sq_w, sq_avg

    # Unit weights arrive as a broadcast 1 (stride 0) and are not read.
    cdef bint unit_weights = sample_weight.strides[0] == 0
    if (sample_weight[0] != 1.0 if unit_weights
            else sample_weight.strides[0] != sizeof(double)):
        raise ValueError("sample_weight must be contiguous or a broadcast 1")
    # The shuffled order, and the targets and weights of its batches
    # gathered here for the layouts that are not blockwise (a blockwise
    # layout reads them by row number, in its threads).
    cdef bint gather = use_rows and not data.blockwise
    cdef bint gather_weights = gather and not unit_weights
    rows_arr = np.arange(n if use_rows else 1, dtype=np.intp)
    cdef Py_ssize_t[::1] run_starts = _run_starts(n if use_rows else 0,
                                                  shuffle_run)
    cdef Py_ssize_t gathered_y = B * ny if gather else 0
    cdef Py_ssize_t gathered = gathered_y + (B if gather_weights else 0)
    # The batch's decision values and loss derivatives (Z, D; Zavg at the
    # average when averaging), unless the dataset works block by block
    # (dense X: then a full batch needs no array of n values).
    cdef Py_ssize_t n_values = 0 if data.blockwise else B * K
    cdef Py_ssize_t n_avg_values = n_values if averaging else 0
    buffers = np.zeros(2 * n_values + n_avg_values + gathered + 3 * (dK + K))
    loss_curve = np.full(max_epochs, np.nan)
    cdef Py_ssize_t[::1] rows = rows_arr
    cdef double[::1] work = buffers
    cdef double[::1] curve = loss_curve
    cdef double* Z = &work[0]
    cdef double* D = Z + n_values
    cdef double* Zavg = D + n_values
    cdef double* ybuf = Zavg + n_avg_values
    cdef double* sbuf = ybuf + gathered_y
    cdef double* G = ybuf + gathered
    cdef double* trial = G + dK + K
    cdef double* metric_work = trial + dK + K
    cdef double sums[2]
    sums[0] = 0.0
    sums[1] = 0.0
    cdef double* W = &theta[0]
    cdef const double* Yb
    cdef const double* sb
    cdef const Py_ssize_t* batch_rows

    cdef uint64_t rng = seed
    cdef double t = t_start, eta = schedule.eta0, s_batch, s_epoch
    cdef double obj_epoch, lsum, monitored, best = INFINITY, inv_s, inv_n, gsum
    cdef double first_objective = -1.0, lavg = 0.0
    cdef Py_ssize_t n_batches = (n + B - 1) // B
    cdef Py_ssize_t epoch, e, start_batch, start, b, i, j, k, r
    cdef Py_ssize_t no_improve = 0, n_done = 0
    if lazy:
        lz.start(optimizer, W, avg, t)
    elif scaled:
        sc.start(W, avg, t)
    cdef str status = "max_iter"
    cdef bint diverged = False, grad_converged = False, averaged
    cdef long gap_start = 0, gap_ns = 0

    # The batches' threads, kept for the fit (they sleep between epochs).
    data.team.start()
    try:
        for e in range(max_epochs):
            epoch = epoch_start + e
            with nogil:
                if use_rows:
                    next_epoch_order(&rows[0], n, shuffle_run, &run_starts[0],
                                     &rng)
                obj_epoch = 0.0
                s_epoch = 0.0
                for start_batch in range(n_batches):
                    if start_batch == 0 and gap_start > 0:
                        gap_ns = data.team.now_ns() - gap_start
                        data.team.expect_gap(0)
                    if start_batch == n_batches - 1 and \
                            2 * gap_ns <= MAX_EPOCH_GAP_NS:
                        data.team.expect_gap(2 * gap_ns)
                    start = start_batch * B
                    b = min(B, n - start)
                    if start_batch % SIGNAL_CHECK_BATCHES == SIGNAL_CHECK_BATCHES - 1:
                        # Raises KeyboardInterrupt on Ctrl-C; theta is the
                        # caller's copy, which it then drops.
                        with gil:
                            PyErr_CheckSignals()
                    batch_rows = &rows[start] if use_rows else NULL
                    if gather:
                        for i in range(b):
                            if i + PREFETCH_TARGETS < b:
                                # Random reads of y and s: keep many in flight.
                                r = batch_rows[i + PREFETCH_TARGETS]
                                if gather_weights:
                                    prefetch(&sample_weight[r])
                                prefetch(&Y[r, 0])
                            r = batch_rows[i]
                            if gather_weights:
                                sbuf[i] = sample_weight[r]
                            for k in range(ny):
                                ybuf[i * ny + k] = Y[r, k]
                        # The next batch's, fetched while this one's parts
                        # run (rdtsc on bench_sparse: this loop and the
                        # gather above 1.4k + 1.3k cycles, the gather alone
                        # 3.9-4.2k without it: prefetches wait for fill
                        # buffers too, wherever they are issued).
                        for i in range(start + B, min(start + 2 * B, n)):
                            if gather_weights:
                                prefetch(&sample_weight[rows[i]])
                            prefetch(&Y[rows[i], 0])
                        Yb = ybuf
                        sb = sbuf
                    elif data.blockwise:
                        Yb = &Y[0, 0]
                        sb = &sample_weight[0]
                    else:
                        Yb = &Y[start, 0]
                        sb = &sample_weight[start]
                    if unit_weights:
                        sb = NULL
                        s_batch = b
                    else:
                        s_batch = 0.0
                        for i in range(b):
                            if data.blockwise:
                                s_batch += sb[batch_rows[i] if use_rows
                                              else start + i]
                            else:
                                s_batch += sb[i]
                    if s_batch == 0.0:
                        continue

                    averaged = averaging and t > average_start
                    if lazy:
                        lz.forward(optimizer, batch_rows, start, b, t, averaged,
                                   Z, Zavg)
                        sq_w = lz.sq_w
                        sq_avg = lz.sq_avg
                    elif scaled:
                        sc.forward(batch_rows, start, b, W, t, Z, Zavg)
                        sq_w = sc.sq_w
                        sq_avg = sc.sq_avg
                    else:
                        # Forward, loss and backward in one read of the batch.
                        sq_w = _sq_norm(W, dK)
                        sq_avg = _sq_norm(avg, dK) if averaged else 0.0
                        data.loss_gradient(
                            loss, batch_rows, start, b, Yb, sb, ny, W,
                            avg if averaged else NULL,
                            W + dK if fit_intercept else NULL,
                            avg + dK if averaged and fit_intercept else NULL,
                            Z, Zavg, D, G, sums)
                    if lazy or scaled:
                        sums[0] = _objective_at(loss, Z, W, dK, fit_intercept, b,
                                                Yb, sb, ny, s_batch, 0.0, 0.0, D)
                        if averaged:
                            # The objective is monitored at the coefficients
                            # that predict, the average.
                            sums[1] = _objective_at(loss, Zavg, avg, dK,
                                                    fit_intercept, b, Yb, sb, ny,
                                                    s_batch, 0.0, 0.0, NULL)
                    lsum = sums[0] + 0.5 * alpha * s_batch * sq_w
                    lavg = sums[1] + 0.5 * alpha * s_batch * sq_avg
                    if first_objective < 0.0:
                        first_objective = max(lsum / s_batch, objective_scale)
                    # Divergence: a non-finite objective, or one grown a million
                    # times past where this run started.
                    if not isfinite(lsum) or lsum > DIVERGED * (
                            first_objective + 1.0) * s_batch:
                        diverged = True
                        break
                    obj_epoch += lavg if averaged else lsum
                    s_epoch += s_batch

                    if lazy or scaled:
                        # (the step reads D: the columns' gradients are not
                        # formed here; the intercepts' sums in a local, not
                        # through G, which may alias D: 635 -> 420 cycles a
                        # batch on bench_sparse, the same bits)
                        for k in range(K):
                            gsum = 0.0
                            for i in range(b):
                                D[i * K + k] /= s_batch
                                gsum += D[i * K + k]
                            G[dK + k] = gsum
                    else:
                        # (a product, not a division per coordinate: these
                        # loops run between the batches' parallel regions)
                        inv_s = 1.0 / s_batch
                        for j in range(dK):
                            G[j] = G[j] * inv_s + alpha * W[j]
                        for k in range(K):
                            G[dK + k] *= inv_s
                    if fit_intercept:
                        for k in range(K):
                            G[dK + k] *= intercept_scale

                    if full_batch and monitor_tol and (
                            _projected_gradient_max(W, G, trial, dK, P, radius)
                            if constrained else _max_abs(G, P)) <= tol:
                        grad_converged = True
                        break
                    t += 1.0
                    eta = schedule.eta(t, epoch)
                    if schedule.line_search:
                        eta = _armijo_step(data, loss, W, G, trial, P, dK,
                                           fit_intercept, intercept_scale,
                                           batch_rows, start, b, Yb, sb, ny,
                                           s_batch, alpha, lsum / s_batch, eta, Z,
                                           radius)
                        schedule.accept(eta)
                    elif lazy:
                        lz.step(optimizer, batch_rows, start, b, D, W, G, avg, eta,
                                t)
                        continue
                    elif scaled:
                        sc.step(batch_rows, start, b, W, D, G, avg, eta, t)
                        continue
                    else:
                        optimizer.step(W, G, NULL, P, eta, t)
                        if constrained:
                            optimizer.project(W, dK, radius, t, metric_work)
                    if averaging and t > average_start:
                        inv_n = 1.0 / (t - average_start)
                        for j in range(P):
                            theta_avg[j] += (W[j] - theta_avg[j]) * inv_n
                gap_start = data.team.now_ns()
                if lazy:
                    lz.flush(optimizer, W, avg, t)
                elif scaled:
                    sc.flush(W, avg, t)
                if not diverged and not _all_finite(W, dK + K):
                    diverged = True
            if diverged:
                status = "diverged"
                break
            PyErr_CheckSignals()
            n_done += 1
            curve[e] = obj_epoch / s_epoch
            if grad_converged:
                status = "converged"
                break
            monitored = curve[e]
            if epoch_hook is not None:
                answer = epoch_hook(epoch, curve[e], eta, t)
                if answer is True:
                    status = "stopped"
                    break
                if answer is not None and answer is not False:
                    monitored = float(answer)
            if monitor_tol:
                if monitored > best - tol:
                    no_improve += 1
                else:
                    no_improve = 0
                if monitored < best:
                    best = monitored
                if no_improve >= n_iter_no_change:
                    if schedule.on_plateau():
                        no_improve = 0
                    else:
                        status = "converged"
                        break
    finally:
        data.team.stop()
    return {
        "status": status,
        "n_epochs": n_done,
        "t": t,
        "loss_curve": loss_curve[:n_done],
        "eta": eta,
    }

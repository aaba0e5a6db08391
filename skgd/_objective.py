"""The objective J that every skgd estimator minimises, in plain NumPy."""

import numpy as np
from scipy.special import logsumexp


def _signs(y, n_outputs):
    """+1 / -1 targets of shape (n_samples, K): class 1 if K == 1, else one-vs-rest."""
    if n_outputs == 1:
        return (2.0 * (y == 1) - 1.0)[:, None]
    return np.where(y[:, None] == np.arange(n_outputs), 1.0, -1.0)


def _row_losses(loss, Z, y):
    """Loss of each row, summed over the K columns of the decision values Z."""
    if loss == "squared_error":
        return 0.5 * ((y.reshape(Z.shape) - Z) ** 2).sum(axis=1)
    y = y.astype(np.intp)
    if loss == "log_loss" and Z.shape[1] > 1:
        return logsumexp(Z, axis=1) - Z[np.arange(Z.shape[0]), y]
    margins = _signs(y, Z.shape[1]) * Z
    if loss == "log_loss":
        return np.logaddexp(0.0, -margins[:, 0])
    hinge = np.maximum(0.0, 1.0 - margins)
    return (hinge if loss == "hinge" else hinge**2).sum(axis=1)


def objective(loss, coef, intercept, X, y, alpha, sample_weight=None):
    """Regularised objective J of a linear model.

    ``J(W, b) = (1/S) sum_i s_i loss(y_i, x_i W + b) + (alpha/2) ||W||_F^2``
    with ``S = sum_i s_i``; the intercept is not penalised.

    Parameters
    ----------
    loss : {"log_loss", "hinge", "squared_hinge", "squared_error"}
        ``"log_loss"`` is binary for ``coef`` of shape (1, d) and multinomial
        for shape (K, d), K >= 2. The hinge losses are binary for K = 1 and
        summed over the K one-vs-rest columns otherwise.
    coef : ndarray of shape (K, n_features) or (n_features,)
        The weights W (transposed); shape (n_features,) means K = 1.
    intercept : float or ndarray of shape (K,)
        The intercept b.
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
        The rows x_i.
    y : ndarray of shape (n_samples,) or (n_samples, K)
        Targets: class indices 0..K-1 (0/1 when binary) for classification,
        values for ``"squared_error"``.
    alpha : float
        L2 strength.
    sample_weight : ndarray of shape (n_samples,), default=None
        Weights s_i; None means all ones.

    Returns
    -------
    float
        The objective J.
    """
    if loss not in ("log_loss", "hinge", "squared_hinge", "squared_error"):
        raise ValueError(f"Unknown loss {loss!r}.")
    W = np.atleast_2d(coef)
    Z = np.asarray(X @ W.T) + intercept
    data_term = np.average(_row_losses(loss, Z, np.asarray(y)), weights=sample_weight)
    return float(data_term + 0.5 * alpha * np.sum(W**2))

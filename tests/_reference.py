"""NumPy transcriptions of SPEC sections 2 and 3, written independently of
the Cython core, to compare it with."""

import numpy as np
from scipy.special import expit, logsumexp, softmax

# Every first-order solver configuration, by name.
FIRST_ORDER_RULES = {
    "sgd": {"solver": "sgd"},
    "momentum": {"solver": "sgd", "momentum": 0.9},
    "nesterov": {"solver": "sgd", "momentum": 0.9, "nesterov": True},
    "adagrad": {"solver": "adagrad"},
    "rmsprop": {"solver": "rmsprop"},
    "adam": {"solver": "adam"},
}


def dloss(loss, Z, Y):
    """Derivative of each row's loss with respect to its decision values."""
    if loss == "squared_error":
        return Z - Y
    if loss == "log_loss":  # Y in {0, 1}, one column
        sign = 2 * Y - 1
        return -sign * expit(-sign * Z)
    if loss == "multinomial":
        P = softmax(Z, axis=1)
        P[np.arange(len(Y)), Y[:, 0].astype(int)] -= 1
        return P
    sign = _ovr_sign(Y, Z.shape[1])
    margin = 1 - sign * Z
    if loss == "hinge":
        return np.where(margin > 0, -sign, 0.0)
    return np.where(margin > 0, -2 * sign * margin, 0.0)  # squared_hinge


def row_loss(loss, Z, Y):
    if loss == "squared_error":
        return 0.5 * ((Z - Y) ** 2).sum(axis=1)
    if loss == "log_loss":
        return np.logaddexp(0, -(2 * Y - 1) * Z)[:, 0]
    if loss == "multinomial":
        return logsumexp(Z, axis=1) - Z[np.arange(len(Y)), Y[:, 0].astype(int)]
    margin = np.maximum(0, 1 - _ovr_sign(Y, Z.shape[1]) * Z)
    return (margin if loss == "hinge" else margin**2).sum(axis=1)


def _ovr_sign(Y, K):
    if K == 1:
        return 2.0 * Y - 1
    return np.where(np.arange(K)[None, :] == Y[:, :1], 1.0, -1.0)


def objective(loss, W, b, X, Y, s, alpha):
    """J(W, b) of SPEC section 2."""
    return np.average(row_loss(loss, X @ W + b, Y), weights=s) + 0.5 * alpha * np.sum(
        W**2
    )


def gradient(loss, W, b, X, Y, s, alpha):
    """(g, gb) of SPEC section 3 for one (full) batch."""
    D = dloss(loss, X @ W + b, Y) * (s / s.sum())[:, None]
    return X.T @ D + alpha * W, D.sum(axis=0)


class Rule:
    """One update rule of SPEC section 3 on a flat parameter vector."""

    def __init__(
        self,
        solver,
        size,
        momentum=0.0,
        nesterov=False,
        rho=0.99,
        beta1=0.9,
        beta2=0.999,
        eps=1e-8,
    ):
        self.solver, self.mu, self.nesterov = solver, momentum, nesterov
        self.rho, self.b1, self.b2, self.eps = rho, beta1, beta2, eps
        self.v = np.zeros(size)
        self.s = np.zeros(size)
        self.m = np.zeros(size)

    def step(self, theta, g, eta, t):
        if self.solver == "sgd" and self.mu == 0:
            return theta - eta * g
        if self.solver == "sgd":
            self.v = self.mu * self.v + g
            return theta - eta * (g + self.mu * self.v if self.nesterov else self.v)
        if self.solver == "adagrad":
            self.s = self.s + g**2
            return theta - eta * g / (np.sqrt(self.s) + self.eps)
        if self.solver == "rmsprop":
            self.s = self.rho * self.s + (1 - self.rho) * g**2
            return theta - eta * g / (np.sqrt(self.s) + self.eps)
        self.m = self.b1 * self.m + (1 - self.b1) * g
        self.s = self.b2 * self.s + (1 - self.b2) * g**2
        m_hat = self.m / (1 - self.b1**t)
        s_hat = self.s / (1 - self.b2**t)
        return theta - eta * m_hat / (np.sqrt(s_hat) + self.eps)


def full_batch_descent(loss, X, Y, s, alpha, K, rule, etas, intercept_scale=1.0):
    """Iterates (W, b) of full-batch descent with step sizes ``etas``, from
    W = 0 and b = 0, or b = the weighted mean of Y for squared error (the
    regressor's start)."""
    d = X.shape[1]
    theta = np.zeros(d * K + K)
    if loss == "squared_error":
        theta[d * K :] = np.average(Y, axis=0, weights=s)
    for t, eta in enumerate(etas, start=1):
        W, b = theta[: d * K].reshape(d, K), theta[d * K :]
        g, gb = gradient(loss, W, b, X, Y, s, alpha)
        theta = rule.step(
            theta, np.concatenate([g.ravel(), intercept_scale * gb]), eta, t
        )
    return theta[: d * K].reshape(d, K), theta[d * K :]

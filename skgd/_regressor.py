"""SGDLinearRegressor: squared-error linear regression, one or K outputs."""

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.extmath import safe_sparse_dot
from sklearn.utils.validation import check_is_fitted

from ._base import VALIDATE_X, BaseSGD, estimator_doc, store_params, validate_input


class SGDLinearRegressor(RegressorMixin, BaseSGD):
    __doc__ = estimator_doc(
        """Linear regression trained by minibatch gradient descent.

    Minimises ``(1/S) sum_i s_i 0.5 ||y_i - x_i W - b||^2 + (alpha/2) ||W||^2``
    (SPEC section 2); ``y`` may have K columns. ``Ridge(alpha_r)`` is
    ``alpha = alpha_r / n_samples``.""",
        loss="""loss : {"squared_error"}, default="squared_error"
        The loss of one row.""",
        attributes="""coef_ : ndarray of shape (n_features,) or (n_outputs, n_features)
    intercept_ : ndarray of shape (1,) or (n_outputs,)""",
    )

    _parameter_constraints: dict = {
        **BaseSGD._parameter_constraints,
        "loss": [StrOptions({"squared_error"})],
    }
    # early_stopping's R^2 is undefined on one row (scikit-learn warns and
    # returns NaN, and a NaN score never stops the fit).
    _min_validation_rows = 2

    def __init__(
        self,
        loss="squared_error",
        *,
        alpha=1e-4,
        fit_intercept=True,
        solver="auto",
        momentum=0.0,
        nesterov=False,
        beta1=0.9,
        beta2=0.999,
        rho=0.99,
        eps=1e-8,
        learning_rate="constant",
        eta0="auto",
        power_t=0.5,
        decay=1e-3,
        gamma=0.1,
        step_size=10,
        eta_end=0.0,
        batch_size=256,
        max_iter=1000,
        tol=1e-4,
        n_iter_no_change=5,
        early_stopping=False,
        validation_fraction=0.1,
        shuffle=True,
        random_state=None,
        average="auto",
        warm_start=False,
        verbose=0,
        callback=None,
        max_norm=None,
    ):
        store_params(self, locals())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def partial_fit(self, X, y, sample_weight=None):
        """Run one epoch over (X, y), continuing from the current state.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self
        """
        first_call = not hasattr(self, "coef_")
        return self._partial_fit(X, y, sample_weight, first_call=first_call)

    def predict(self, X):
        """Predicted values, of shape (n_samples,) or (n_samples, n_outputs)."""
        check_is_fitted(self)
        X = validate_input(self, X, reset=False, **VALIDATE_X)
        return safe_sparse_dot(X, self.coef_.T, dense_output=True) + self.intercept_

    def _validate_y_kwargs(self):
        return {"multi_output": True, "y_numeric": True}

    def _encode_targets(self, y, *, reset, classes=None):
        y = np.asarray(y, dtype=np.float64)
        if reset:
            self._y_ndim = y.ndim
        elif y.ndim != self._y_ndim or (y.ndim == 2 and y.shape[1] != self._n_outputs):
            raise ValueError(
                f"y has shape {y.shape}, but this model was fitted on a y with "
                f"{self._n_outputs} output(s); pass y of the same shape."
            )
        Y = np.ascontiguousarray(y.reshape(y.shape[0], -1))
        self._n_outputs = Y.shape[1]
        return Y, self.loss, Y.shape[1]

    def _initial_intercept(self, Y, sw):
        # The optimal intercept of W = 0: the adaptive rules move it by about
        # eta0 per update and would need thousands of epochs to cross a large
        # offset of y (e.g. load_diabetes, y ~ 150).
        return np.average(Y, axis=0, weights=sw)

    def _squared_offsets(self, Y, sw):
        # (Y - c)^2 about the intercept a fresh fit starts from (0 without).
        centre = self._initial_intercept(Y, sw) if self.fit_intercept else 0.0
        with np.errstate(over="ignore", invalid="ignore"):
            return (Y - centre) ** 2

    def _target_scale(self, Y, sw):
        # The spread of y: the coefficients scale with it, and so should the
        # adaptive steps.
        squares = self._squared_offsets(Y, sw)
        with np.errstate(over="ignore", invalid="ignore"):
            spread = np.average(np.mean(squares, axis=1), weights=sw)
        scale = np.sqrt(spread)
        return scale if 0 < scale < np.inf else 1.0

    def _objective_scale(self, Y, sw):
        # The largest row loss of W = 0: with a batch of one row, the first
        # batch's objective may be a millionth of a far-out row's (a fit of
        # y ~ 1e3 with batch_size=1 stopped as "diverged" in its first epoch).
        with np.errstate(over="ignore", invalid="ignore"):
            rows = 0.5 * np.sum(self._squared_offsets(Y, sw), axis=1)[sw > 0]
        largest = rows.max(initial=0.0)
        return float(largest) if np.isfinite(largest) else 0.0

    def _set_coef(self, coef, intercept):
        self.coef_ = coef.ravel() if self._y_ndim == 1 else coef
        self.intercept_ = intercept

    def _validation_score(self, coef, intercept, X, Y, sw):
        pred = safe_sparse_dot(X, coef.T, dense_output=True) + intercept
        if not np.all(np.isfinite(pred)):  # (r2_score would raise)
            return -np.inf
        return r2_score(Y, pred, sample_weight=sw)

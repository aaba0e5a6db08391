"""SGDLogisticClassifier: binary and true multinomial logistic regression."""

import numpy as np
from scipy.special import expit, log_expit, log_softmax, softmax

from ._base import estimator_doc, store_params
from ._classifier import CLASS_WEIGHT_DOC, BaseSGDClassifier


class SGDLogisticClassifier(BaseSGDClassifier):
    __doc__ = estimator_doc(
        """Logistic regression trained by minibatch gradient descent.

    Two classes: the log loss ``log(1 + exp(-y f))``; three or more: the
    multinomial loss ``-log softmax(f)_y`` (one joint model, not
    one-vs-rest). ``LogisticRegression(C)`` is ``alpha = 1 / (C n_samples)``.""",
        extra=CLASS_WEIGHT_DOC,
        attributes="""classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
    intercept_ : ndarray of shape (1,) or (n_classes,)""",
    )

    def __init__(
        self,
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
        class_weight=None,
    ):
        store_params(self, locals())

    def _loss_name(self, n_outputs):
        return "log_loss" if n_outputs == 1 else "multinomial"

    def predict_proba(self, X):
        """Class probabilities, of shape (n_samples, n_classes)."""
        scores = self.decision_function(X)
        if scores.ndim == 1:
            p1 = expit(scores)
            return np.column_stack([1 - p1, p1])
        return softmax(scores, axis=1)

    def predict_log_proba(self, X):
        """Log of the class probabilities, computed without overflow."""
        scores = self.decision_function(X)
        if scores.ndim == 1:
            return np.column_stack([log_expit(-scores), log_expit(scores)])
        return log_softmax(scores, axis=1)

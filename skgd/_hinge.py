"""HingeSVM: linear SVM (hinge or squared hinge), joint one-vs-rest."""

from sklearn.utils._param_validation import StrOptions

from ._base import estimator_doc, store_params
from ._classifier import CLASS_WEIGHT_DOC, BaseSGDClassifier


class HingeSVM(BaseSGDClassifier):
    __doc__ = estimator_doc(
        """Linear support vector machine trained by minibatch gradient descent.

    Two classes: ``max(0, 1 - y f)`` (or its square); three or more: the K
    one-vs-rest problems trained jointly, one pass over the data serving all
    K columns. ``LinearSVC(C)`` is ``alpha = 1 / (C n_samples)``.""",
        loss="""loss : {"hinge", "squared_hinge"}, default="hinge"
        The loss of one row and class column.""",
        extra=CLASS_WEIGHT_DOC,
        attributes="""classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
    intercept_ : ndarray of shape (1,) or (n_classes,)""",
    )

    _parameter_constraints: dict = {
        **BaseSGDClassifier._parameter_constraints,
        "loss": [StrOptions({"hinge", "squared_hinge"})],
    }

    def __init__(
        self,
        loss="hinge",
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
        return self.loss

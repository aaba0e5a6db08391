"""Shared logic of the two linear classifiers: labels and class weights."""

import numpy as np
from sklearn.linear_model._base import LinearClassifierMixin
from sklearn.utils._param_validation import StrOptions
from sklearn.utils._unique import attach_unique, cached_unique
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.extmath import safe_sparse_dot
from sklearn.utils.multiclass import (
    _check_partial_fit_first_call,
    check_classification_targets,
)
from sklearn.utils.validation import check_is_fitted

from ._base import BaseSGD, name_the_input, validate_input

CLASS_WEIGHT_DOC = """class_weight : dict, "balanced" or None, default=None
        Weights ``{class_label: weight}`` multiplied into ``sample_weight``;
        "balanced" uses ``n_samples / (n_classes * np.bincount(y))``."""


class BaseSGDClassifier(LinearClassifierMixin, BaseSGD):
    """Labels -> class indices, class weights, partial_fit with ``classes``.

    Two classes give one decision column (K = 1); n >= 3 classes give K = n.
    """

    _parameter_constraints: dict = {
        **BaseSGD._parameter_constraints,
        "class_weight": [StrOptions({"balanced"}), dict, None],
    }

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Run one epoch over (X, y), continuing from the current state.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        classes : array-like of shape (n_classes,), default=None
            All the classes; required on the first call.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self
        """
        if self.class_weight == "balanced":
            raise ValueError(
                "class_weight='balanced' needs the whole y and cannot be used with "
                "partial_fit; pass a dict, e.g. from "
                "sklearn.utils.class_weight.compute_class_weight on all labels."
            )
        try:
            with np.errstate(invalid="ignore"):  # float labels beyond int64
                first_call = _check_partial_fit_first_call(self, classes)
        except (ValueError, TypeError) as exc:  # e.g. NaN, or str mixed with int
            raise name_the_input(exc, "classes") from exc
        return self._partial_fit(
            X, y, sample_weight, first_call=first_call, classes=classes
        )

    def decision_function(self, X):
        """Decision values, of shape (n_samples,) or (n_samples, n_classes)."""
        check_is_fitted(self)
        X = validate_input(self, X, accept_sparse="csr", reset=False)
        scores = safe_sparse_dot(X, self.coef_.T, dense_output=True) + self.intercept_
        return scores.ravel() if scores.shape[1] == 1 else scores

    def _class_index(self, y, *, check=True):
        """Index of each label in ``classes_``; ``check=False`` when
        ``classes_`` was taken from these labels (all of them are there)."""
        idx = np.searchsorted(self.classes_, y)
        if not check:
            return idx
        idx[idx == len(self.classes_)] = 0
        unseen = self.classes_[idx] != y
        if np.any(unseen):
            raise ValueError(
                f"y contains labels {np.unique(np.asarray(y)[unseen])[:5]} not in "
                f"classes {self.classes_}; pass every label in `classes` on the "
                "first call to partial_fit."
            )
        return idx

    def _encode_targets(self, y, *, reset, classes=None):
        try:
            # The unique labels, computed once for the checks and classes_.
            y = attach_unique(y)
            with np.errstate(invalid="ignore"):  # float labels beyond int64
                check_classification_targets(y)
        except TypeError as exc:  # labels that cannot be sorted together
            raise TypeError(
                "y mixes labels of different types "
                f"({sorted({type(label).__name__ for label in y})}); convert them "
                "to one type, e.g. y.astype(str)."
            ) from exc
        from_y = reset and classes is None
        if from_y:
            self.classes_ = cached_unique(y)
        n_classes = len(self.classes_)
        if n_classes < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes in y; "
                f"got {n_classes} class."
            )
        K = 1 if n_classes == 2 else n_classes
        Y = self._class_index(y, check=not from_y).astype(np.float64).reshape(-1, 1)
        return Y, self._loss_name(K), K

    def _class_weights(self, y):
        if self.class_weight is None:
            return 1.0
        weights = compute_class_weight(self.class_weight, classes=self.classes_, y=y)
        if not np.all(np.isfinite(weights) & (weights >= 0)):
            raise ValueError(
                "class_weight must map every class to a finite, non-negative "
                f"weight; got {self.class_weight!r}."
            )
        return weights[self._class_index(y)]

    def _set_coef(self, coef, intercept):
        self.coef_ = coef
        self.intercept_ = intercept

    def _validation_score(self, coef, intercept, X, Y, sw):
        scores = safe_sparse_dot(X, coef.T, dense_output=True) + intercept
        pred = (scores[:, 0] > 0) if scores.shape[1] == 1 else scores.argmax(axis=1)
        return np.average(pred == Y[:, 0], weights=sw)

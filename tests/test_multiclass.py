"""Multiclass and multi-output (issue 5): true multinomial logistic regression,
joint one-vs-rest hinge, class weights and K-output regression.

Exact equalities (joint vs separate fits, class_weight vs sample_weight) run
a fixed number of epochs (``tol=None``) so that no stopping rule can tell the
fits apart; the comparison with scikit-learn runs to a tight ``tol``.
"""

import numpy as np
import pytest
from sklearn.datasets import load_digits, load_iris, load_wine, make_regression
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from skgd import HingeSVM, SGDLinearRegressor, SGDLogisticClassifier

EXACT = 1e-12

# First-order solvers run full batch to a tight tol, ~1e-6 from the optimum.
# Adam: 300-800 epochs on these data sets. Nesterov with eta0="auto" takes
# ~2000 epochs on wine and is too slow on digits, whose largest row norm
# (which sets 1/L) is ~300 times the largest eigenvalue of X^T X / n.
# Full-batch Adam converges only with decreasing steps: "adaptive" divides
# the step on each plateau.
ADAM = {
    "solver": "adam",
    "eta0": 0.1,
    "learning_rate": "adaptive",
    "tol": 1e-12,
    "n_iter_no_change": 10,
}
NESTEROV = {
    "solver": "sgd",
    "momentum": 0.9,
    "nesterov": True,
    "tol": 1e-12,
    "n_iter_no_change": 20,
}
CONVERGED = {**ADAM, "max_iter": 5000, "random_state": 0}

# A fixed number of shuffled minibatch epochs.
FIXED_EPOCHS = {
    "tol": None,
    "max_iter": 8,
    "batch_size": 32,
    "shuffle": True,
    "random_state": 0,
}

SOLVERS = [
    {"solver": "sgd"},
    {"solver": "sgd", "momentum": 0.9, "nesterov": True},
    {"solver": "adagrad"},
    {"solver": "adam"},
]


def solver_id(params):
    """Readable pytest id of a solver configuration."""
    return "-".join(str(v) for v in params.values())


def standardized(loader):
    """(X standardised, y) of a scikit-learn toy data set."""
    X, y = loader(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Run BLAS and OpenMP on one thread: these fits are small, and threads
    that spin-wait on a busy machine slow them (and the lbfgs reference) by
    up to 40 times. Results do not depend on the thread count."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def wine():
    return standardized(load_wine)


@pytest.fixture(scope="module")
def digits():
    return standardized(load_digits)


def assert_same_model(a, b, atol=EXACT):
    """Coefficients and intercepts of two fitted estimators agree."""
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=0, atol=atol)
    np.testing.assert_allclose(a.intercept_, b.intercept_, rtol=0, atol=atol)


# ------------------------------------------------------------ multinomial --


def multinomial_reference(X, y, alpha):
    """scikit-learn's exact multinomial fit of the same objective."""
    C = 1 / (alpha * len(y))
    return LogisticRegression(C=C, tol=1e-12, max_iter=10_000).fit(X, y)


@pytest.mark.parametrize(
    "loader, alpha, solver",
    [
        (load_digits, 1e-2, ADAM),
        (load_digits, 1e-3, ADAM),
        (load_wine, 1e-2, ADAM),
        (load_wine, 1e-3, ADAM),
        (load_wine, 1e-2, NESTEROV),
    ],
    ids=["digits-1e-2", "digits-1e-3", "wine-1e-2", "wine-1e-3", "wine-nesterov"],
)
def test_multinomial_matches_lbfgs(loader, alpha, solver):
    X, y = standardized(loader)
    n, d = X.shape
    K = len(np.unique(y))
    ref = multinomial_reference(X, y, alpha)
    settings = {**CONVERGED, **solver, "alpha": alpha, "batch_size": n}
    est = SGDLogisticClassifier(**settings).fit(X, y)

    assert est.n_iter_ < CONVERGED["max_iter"]
    assert est.coef_.shape == (K, d)
    assert est.intercept_.shape == (K,)
    proba = est.predict_proba(X)
    assert proba.shape == (n, K)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(proba, ref.predict_proba(X), rtol=0, atol=1e-3)
    np.testing.assert_allclose(
        np.exp(est.predict_log_proba(X)), proba, rtol=1e-12, atol=1e-15
    )
    np.testing.assert_array_equal(est.predict(X), est.classes_[proba.argmax(axis=1)])
    # The softmax is invariant to a shift shared by all classes: compare the
    # decision values after removing each row's mean.
    Z, Z_ref = est.decision_function(X), ref.decision_function(X)
    np.testing.assert_allclose(
        Z - Z.mean(axis=1, keepdims=True),
        Z_ref - Z_ref.mean(axis=1, keepdims=True),
        rtol=0,
        atol=2e-2,
    )


def test_multinomial_is_not_one_vs_rest():
    X, y = standardized(load_iris)
    alpha = 1e-2
    C = 1 / (alpha * len(y))
    est = SGDLogisticClassifier(alpha=alpha, batch_size=len(y), **CONVERGED)
    proba = est.fit(X, y).predict_proba(X)
    multinomial = multinomial_reference(X, y, alpha).predict_proba(X)
    ovr = OneVsRestClassifier(LogisticRegression(C=C, tol=1e-12, max_iter=10_000))
    one_vs_rest = ovr.fit(X, y).predict_proba(X)

    np.testing.assert_allclose(proba, multinomial, rtol=0, atol=1e-3)
    assert np.abs(proba - one_vs_rest).max() > 0.2


# ------------------------------------------------------ joint one-vs-rest --


@pytest.mark.parametrize("params", SOLVERS, ids=solver_id)
@pytest.mark.parametrize("loss", ["hinge", "squared_hinge"])
def test_joint_hinge_equals_separate_binary_fits(digits, loss, params):
    X, y = digits
    X, y = X[:600], y[:600]
    settings = {"loss": loss, **FIXED_EPOCHS, **params}
    joint = HingeSVM(**settings).fit(X, y)

    assert joint.coef_.shape == (10, X.shape[1])
    assert joint.intercept_.shape == (10,)
    assert joint.t_ == FIXED_EPOCHS["max_iter"] * -(-len(y) // 32)
    for k, label in enumerate(joint.classes_):
        binary = HingeSVM(**settings).fit(X, y == label)
        np.testing.assert_allclose(joint.coef_[k], binary.coef_[0], atol=EXACT)
        np.testing.assert_allclose(
            joint.intercept_[k], binary.intercept_[0], atol=EXACT
        )
    scores = joint.decision_function(X)
    np.testing.assert_array_equal(
        joint.predict(X), joint.classes_[scores.argmax(axis=1)]
    )


# ----------------------------------------------------------- class weights --


def class_sample_weight(class_weight, y):
    """The per-row weights that ``class_weight`` stands for."""
    classes, counts = np.unique(y, return_counts=True)
    if class_weight == "balanced":
        per_class = len(y) / (len(classes) * counts)
    else:
        per_class = np.array([class_weight[c] for c in classes])
    return per_class[np.searchsorted(classes, y)]


@pytest.mark.parametrize("estimator", [SGDLogisticClassifier, HingeSVM])
@pytest.mark.parametrize("class_weight", ["dict", "balanced"])
@pytest.mark.parametrize("task", ["multiclass", "binary"])
def test_class_weight_equals_sample_weight(wine, estimator, class_weight, task):
    X, y = wine
    if task == "binary":
        y = np.where(y == 1, "one", "other")
    classes = np.unique(y)
    if class_weight == "dict":
        class_weight = dict(zip(classes, [0.5, 2.0, 3.0][: len(classes)], strict=False))
    weighted = estimator(class_weight=class_weight, **FIXED_EPOCHS).fit(X, y)
    sw = class_sample_weight(class_weight, y)
    reference = estimator(**FIXED_EPOCHS).fit(X, y, sample_weight=sw)
    unweighted = estimator(**FIXED_EPOCHS).fit(X, y)

    assert_same_model(weighted, reference)
    assert np.abs(weighted.coef_ - unweighted.coef_).max() > 1e-3


@pytest.mark.parametrize("estimator", [SGDLogisticClassifier, HingeSVM])
def test_class_weight_through_partial_fit(wine, estimator):
    X, y = wine
    class_weight = {0: 0.5, 1: 2.0, 2: 3.0}
    kwargs = {"solver": "sgd", "batch_size": 32, "random_state": 0}
    weighted = estimator(class_weight=class_weight, **kwargs)
    reference = estimator(**kwargs)
    for _ in range(3):
        for part in np.array_split(np.arange(len(y)), 3):
            Xp, yp = X[part], y[part]
            sw = class_sample_weight(class_weight, yp)
            weighted.partial_fit(Xp, yp, classes=[0, 1, 2])
            reference.partial_fit(Xp, yp, classes=[0, 1, 2], sample_weight=sw)

    assert weighted.t_ == reference.t_ == 9 * 2
    assert weighted.coef_.shape == (3, X.shape[1])
    assert_same_model(weighted, reference)


# ------------------------------------------------------ K-output regression --


@pytest.mark.parametrize("params", SOLVERS, ids=solver_id)
def test_k_output_regression_equals_single_fits(params):
    X, Y = make_regression(
        n_samples=300, n_features=8, n_targets=3, noise=1.0, random_state=0
    )
    Y = Y / Y.std(axis=0)
    settings = {**FIXED_EPOCHS, **params}
    multi = SGDLinearRegressor(**settings).fit(X, Y)

    assert multi.coef_.shape == (3, 8)
    assert multi.intercept_.shape == (3,)
    assert multi.predict(X).shape == (300, 3)
    for k in range(3):
        single = SGDLinearRegressor(**settings).fit(X, Y[:, k])
        assert single.coef_.shape == (8,)
        assert single.intercept_.shape == (1,)
        np.testing.assert_allclose(multi.coef_[k], single.coef_, atol=EXACT)
        np.testing.assert_allclose(
            multi.intercept_[k], single.intercept_[0], atol=EXACT
        )
        np.testing.assert_allclose(
            multi.predict(X)[:, k], single.predict(X), rtol=0, atol=1e-10
        )


# ---------------------------------------------------- shapes and labels --


@pytest.mark.parametrize("estimator", [SGDLogisticClassifier, HingeSVM])
def test_binary_keeps_one_column(wine, estimator):
    X, y = wine
    y = (y == 0).astype(int)
    est = estimator(random_state=0).fit(X, y)

    assert est.coef_.shape == (1, X.shape[1])
    assert est.intercept_.shape == (1,)
    scores = est.decision_function(X)
    assert scores.shape == (len(y),)
    np.testing.assert_allclose(scores, X @ est.coef_[0] + est.intercept_[0])
    np.testing.assert_array_equal(est.predict(X), est.classes_[(scores > 0) * 1])
    assert est.score(X, y) > 0.95
    if estimator is SGDLogisticClassifier:
        proba = est.predict_proba(X)
        assert proba.shape == (len(y), 2)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)


@pytest.mark.parametrize("estimator", [SGDLogisticClassifier, HingeSVM])
def test_string_labels_multiclass(wine, estimator):
    X, y = wine
    names = np.array(["zinfandel", "barolo", "merlot"])
    labels = names[y]
    est = estimator(**FIXED_EPOCHS).fit(X, labels)
    # Sorted classes; the same model as the integer codes of the sorted labels.
    np.testing.assert_array_equal(est.classes_, ["barolo", "merlot", "zinfandel"])
    codes = np.searchsorted(est.classes_, labels)
    by_code = estimator(**FIXED_EPOCHS).fit(X, codes)
    assert_same_model(est, by_code, atol=0)

    pred = est.predict(X)
    np.testing.assert_array_equal(pred, est.classes_[by_code.predict(X)])
    assert est.score(X, labels) > 0.95
    if estimator is SGDLogisticClassifier:
        proba = est.predict_proba(X)
        np.testing.assert_array_equal(pred, est.classes_[proba.argmax(axis=1)])

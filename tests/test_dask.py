"""skgd.dask on a real LocalCluster (2 worker processes): blockwise Newton,
federated averaging, dask-ml's Incremental, data larger than a worker's
memory and a worker killed during a fit."""

import faulthandler
import logging
import os
import resource
import signal
import sys
import time
import warnings

import cloudpickle
import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from dask_ml.wrappers import Incremental
from distributed import Client, LocalCluster
from sklearn.base import clone
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from skgd import HingeSVM, SGDLinearRegressor, SGDLogisticClassifier
from skgd._objective import objective
from skgd.dask import DaskHingeSVM, DaskSGDLinearRegressor, DaskSGDLogisticClassifier

# Functions of this module sent to workers travel by value: the workers
# cannot import the test module (pytest's importlib mode).
cloudpickle.register_pickle_by_value(sys.modules[__name__])

# Every worker's memory limit; the large-data test streams more than this.
MEMORY_LIMIT = 600 * 2**20

# Hard limit for the whole module: a hang ends the process with tracebacks.
MODULE_TIMEOUT = 240


@pytest.fixture(scope="module")
def client():
    faulthandler.dump_traceback_later(MODULE_TIMEOUT, exit=True)
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            memory_limit=MEMORY_LIMIT,
            dashboard_address=None,
            silence_logs=logging.CRITICAL,
        ) as cluster,
        Client(cluster, timeout=30) as client,
    ):
        yield client
    faulthandler.cancel_dump_traceback_later()


def _classification(n_classes, n=3000, d=10, chunks=500):
    """Rows sorted by class, so that most blocks lack some classes."""
    X, y = make_classification(
        n, d, n_informative=6, n_classes=n_classes, random_state=0
    )
    order = np.argsort(y, kind="stable")
    X, y = X[order], y[order]
    return X, y, da.from_array(X, chunks=chunks), da.from_array(y, chunks=chunks)


def _logistic_blocks(n, d, chunks, seed):
    """Standardised logistic-model data generated blockwise on the workers."""
    rs = da.random.RandomState(seed)
    X = rs.standard_normal((n, d), chunks=(chunks, d))
    w = 2 * np.random.default_rng(seed).standard_normal(d) / np.sqrt(d)
    y = (X @ w + rs.logistic(size=n, chunks=chunks) > 0).astype(np.int64)
    return X, y


def _assert_same_model(local, dask_model, atol):
    np.testing.assert_allclose(dask_model.coef_, local.coef_, rtol=0, atol=atol)
    np.testing.assert_allclose(
        dask_model.intercept_, local.intercept_, rtol=0, atol=atol
    )


def test_no_client_is_a_clear_error():
    # first in the module: the cluster fixture starts with the next test
    X, y, Xd, yd = _classification(2)
    with pytest.raises(ValueError, match="distributed client"):
        DaskSGDLogisticClassifier().fit(Xd, yd)


# --------------------------------------------------- blockwise Newton ---


@pytest.mark.parametrize(
    "local_class, dask_class, params",
    [
        (SGDLogisticClassifier, DaskSGDLogisticClassifier, {}),
        (
            SGDLogisticClassifier,
            DaskSGDLogisticClassifier,
            {"class_weight": "balanced"},
        ),
        (HingeSVM, DaskHingeSVM, {"loss": "squared_hinge"}),
    ],
)
@pytest.mark.parametrize("n_classes", [2, 4])
def test_newton_classifiers_match_in_memory(
    client, local_class, dask_class, params, n_classes
):
    X, y, Xd, yd = _classification(n_classes)
    sw = np.random.default_rng(0).uniform(0, 2, len(y))
    params = {"solver": "newton", "alpha": 1e-3, "tol": 1e-9, **params}
    local = local_class(**params).fit(X, y, sample_weight=sw)
    model = dask_class(**params).fit(Xd, yd, sample_weight=da.from_array(sw, 500))
    _assert_same_model(local, model, 1e-8)
    np.testing.assert_array_equal(model.classes_, local.classes_)
    assert model.n_iter_ == local.n_iter_
    np.testing.assert_allclose(model.loss_curve_, local.loss_curve_, rtol=1e-10)


@pytest.mark.parametrize("n_targets", [1, 3])
def test_newton_regressor_matches_closed_form(client, n_targets):
    X, y = make_regression(2000, 12, n_targets=n_targets, noise=1.0, random_state=0)
    X += 3.0  # uncentred features: the intercept is not trivial
    local = SGDLinearRegressor(solver="newton", alpha=1e-3).fit(X, y)
    model = DaskSGDLinearRegressor(solver="newton", alpha=1e-3)
    model.fit(da.from_array(X, chunks=300), da.from_array(y, chunks=300))
    _assert_same_model(local, model, 1e-8)
    assert model.coef_.shape == local.coef_.shape
    assert model.n_iter_ == 1


def test_federated_regressor_starts_at_the_weighted_mean_of_y(client):
    """The federated Adam fit starts b at the weighted mean of y (one
    reduction on the cluster), as the in-memory fit does: shifting y by 1e4
    shifts the intercept by 1e4 and changes nothing else (from b = 0, Adam
    needed ~1e4 / eta0 updates to cross the offset)."""
    X, y = make_regression(4000, 8, noise=1.0, random_state=0)
    w = np.random.RandomState(0).uniform(0.5, 2.0, size=len(y))
    fits = []
    for offset in (0.0, 1e4):
        model = DaskSGDLinearRegressor(solver="adam", alpha=1e-3, random_state=0)
        model.fit(*(da.from_array(a, chunks=1000) for a in (X, y + offset, w)))
        fits.append(model)
    np.testing.assert_allclose(fits[1].coef_, fits[0].coef_, rtol=1e-8)
    np.testing.assert_allclose(fits[1].intercept_ - 1e4, fits[0].intercept_, atol=1e-8)
    assert fits[1].n_iter_ == fits[0].n_iter_


def test_dataframe_input_and_lazy_predictions(client):
    X, y = make_regression(1500, 5, noise=0.5, random_state=1)
    frame = pd.DataFrame(X, columns=[f"f{j}" for j in range(5)])
    ddf = dd.from_pandas(frame, npartitions=3)
    dy = dd.from_pandas(pd.Series(y), npartitions=3)
    local = SGDLinearRegressor(solver="newton").fit(frame, y)
    model = DaskSGDLinearRegressor(solver="newton").fit(ddf, dy)
    _assert_same_model(local, model, 1e-8)
    np.testing.assert_array_equal(model.feature_names_in_, frame.columns)
    pred = model.predict(da.from_array(X, chunks=500))
    assert isinstance(pred, da.Array)
    np.testing.assert_allclose(pred.compute(), local.predict(frame), atol=1e-8)
    assert model.score(ddf, dy) == pytest.approx(local.score(frame, y), abs=1e-10)


def test_hinge_has_no_newton(client):
    X, y, Xd, yd = _classification(2)
    with pytest.raises(ValueError, match="squared_hinge"):
        DaskHingeSVM(solver="newton").fit(Xd, yd)


def test_to_local_returns_the_plain_fitted_estimator(client):
    X, y, Xd, yd = _classification(4)
    model = DaskSGDLogisticClassifier(solver="newton", alpha=1e-3).fit(Xd, yd)
    local = model.to_local()
    assert type(local) is SGDLogisticClassifier
    assert local.get_params() == model.get_params()
    np.testing.assert_array_equal(local.predict_proba(X), model.predict_proba(X))
    proba = model.predict_proba(Xd)
    assert isinstance(proba, da.Array) and proba.shape == (len(y), 4)
    np.testing.assert_allclose(proba.compute(), local.predict_proba(X), atol=1e-12)
    with pytest.raises(TypeError, match="Incremental"):
        model.partial_fit(Xd, yd)


# -------------------------------------------------- federated averaging ---


def test_federated_reaches_optimum_on_100k_by_40(client):
    n, d, alpha = 100_000, 40, 1e-4
    X, y = client.persist(_logistic_blocks(n, d, 25_000, seed=0))
    Xl, yl = X.compute(), y.compute()
    exact = LogisticRegression(C=1 / (alpha * n), tol=1e-10, max_iter=1000)
    exact.fit(Xl, yl)
    J_star = objective("log_loss", exact.coef_, exact.intercept_, Xl, yl, alpha)

    start = time.perf_counter()
    model = DaskSGDLogisticClassifier(solver="adam", alpha=alpha, random_state=0)
    model.fit(X, y)
    seconds = time.perf_counter() - start
    J = objective("log_loss", model.coef_, model.intercept_, Xl, yl, alpha)
    gaps = (np.array(model.loss_curve_) - J_star) / J_star
    print(f"\nfederated: {model.n_iter_} rounds, {seconds:.2f} s, gaps {gaps}")
    assert (J - J_star) / J_star < 1e-3
    assert model.loss_curve_[-1] == pytest.approx(J, rel=1e-12)  # J per round
    assert model.n_iter_ == len(model.loss_curve_) < model.max_iter
    assert model.score(X, y) == pytest.approx(exact.score(Xl, yl), abs=5e-3)


def test_federated_blocks_missing_classes_and_stopping_rule(client):
    X, y, Xd, yd = _classification(4)
    model = DaskHingeSVM(max_iter=3, random_state=0)
    with pytest.warns(ConvergenceWarning, match="rounds"):
        model.fit(Xd, yd)
    assert model.solver_ == "adam" and model.coef_.shape == (4, X.shape[1])
    assert len(model.loss_curve_) == model.n_iter_ == 3
    J = objective("hinge", model.coef_, model.intercept_, X, y, model.alpha)
    assert model.loss_curve_[-1] == pytest.approx(J, rel=1e-12)
    assert model.loss_curve_[-1] < model.loss_curve_[0]
    # same seed, same result; tol=None runs exactly max_iter rounds, silently
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        again = clone(model).set_params(tol=None).fit(Xd, yd)
    _assert_same_model(model, again, 0.0)
    # warm_start: three more rounds from the fitted parameters
    again.set_params(warm_start=True).fit(Xd, yd)
    assert len(again.loss_curve_) == 6 and again.n_iter_ == 3
    assert again.loss_curve_[3] < again.loss_curve_[2]


# ---------------------------------------------------------- Incremental ---


def test_incremental_partial_fit_one_pass_per_fit(client):
    X, y = client.persist(_logistic_blocks(20_000, 10, 5_000, seed=1))
    params = {"solver": "adam", "random_state": 0}
    inc = Incremental(SGDLogisticClassifier(**params), shuffle_blocks=False)
    inc.fit(X, y, classes=[0, 1])
    reference = SGDLogisticClassifier(**params)
    for Xb, yb in zip(X.to_delayed().ravel(), y.to_delayed().ravel(), strict=True):
        reference.partial_fit(*client.compute([Xb, yb], sync=True), classes=[0, 1])
    _assert_same_model(reference, inc.estimator_, 0.0)
    assert len(inc.estimator_.loss_curve_) == 4  # one epoch per block, one pass
    exact = LogisticRegression().fit(X.compute(), y.compute())
    assert inc.score(X, y) == pytest.approx(
        exact.score(X.compute(), y.compute()), abs=0.01
    )
    inc.partial_fit(X, y)  # another pass continues from the current state
    assert len(inc.estimator_.loss_curve_) == 8


# ------------------------------------------------ beyond one machine ---


def _worker_pids(client):
    return client.run(os.getpid)


def _peak_rss():
    """Peak resident memory of this process, in bytes (Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def test_data_larger_than_a_worker_memory_limit(client):
    n, d = 4_200_000, 20  # 672 MB of float64, created block by block
    rng = da.random.default_rng(7)
    X = rng.standard_normal((n, d), chunks=(210_000, d))
    w = np.linspace(-1, 1, d)
    y = X @ w + 0.5 + 0.1 * rng.standard_normal(n, chunks=210_000)
    assert X.nbytes > MEMORY_LIMIT
    pids = _worker_pids(client)

    model = DaskSGDLinearRegressor(solver="newton", alpha=0.0).fit(X, y)

    assert _worker_pids(client) == pids  # no worker was restarted
    peaks = client.run(_peak_rss)
    print(f"\npeak worker memory (MiB): {[p / 2**20 for p in peaks.values()]}")
    assert max(peaks.values()) < MEMORY_LIMIT < X.nbytes
    np.testing.assert_allclose(model.coef_, w, atol=1e-3)
    np.testing.assert_allclose(model.intercept_, [0.5], atol=1e-3)


@pytest.mark.parametrize("solver", ["newton", "adam"])
def test_worker_killed_mid_fit_gives_same_result(client, solver):
    X, y = client.persist(_logistic_blocks(40_000, 10, 5_000, seed=2))
    params = {"solver": solver, "random_state": 0, "tol": 1e-9, "max_iter": 6}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        expected = DaskSGDLogisticClassifier(**params).fit(X, y)

    pids = _worker_pids(client)

    def kill_a_worker(est, info):
        if info["epoch"] == 2:
            os.kill(next(iter(pids.values())), signal.SIGKILL)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = DaskSGDLogisticClassifier(**params, callback=kill_a_worker)
        model.fit(X, y)
    _assert_same_model(expected, model, 1e-12)
    assert model.loss_curve_ == pytest.approx(expected.loss_curve_, rel=1e-12)
    client.wait_for_workers(2, timeout=60)
    assert set(_worker_pids(client).values()) != set(pids.values())


def test_max_norm(client):
    """Federated averaging keeps ||coef|| <= max_norm (every local fit
    projects and the average of points in a ball is in it); the blockwise
    Newton solve is unconstrained and refuses max_norm."""
    X, y, Xd, yd = _classification(2)
    model = DaskSGDLogisticClassifier(solver="adam", max_norm=0.2, max_iter=3,
                                      tol=None, random_state=0)  # fmt: skip
    model.fit(Xd, yd)
    assert np.linalg.norm(model.coef_) <= 0.2 * (1 + 1e-12)
    assert np.linalg.norm(model.coef_) > 0.15  # the constraint is active
    with pytest.raises(ValueError, match="max_norm"):
        DaskSGDLogisticClassifier(solver="newton", max_norm=0.2).fit(Xd, yd)

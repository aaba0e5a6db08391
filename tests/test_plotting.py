"""skgd.plotting draws exactly the data it is given (SPEC section 7)."""

import sys

import matplotlib
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from skgd import SGDLogisticClassifier, minimize  # noqa: E402
from skgd.__main__ import main  # noqa: E402
from skgd.plotting import (  # noqa: E402
    plot_loss_curves,
    plot_schedule,
    plot_trajectory,
)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def fits():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    return [
        SGDLogisticClassifier(solver=solver, max_iter=15, tol=None, random_state=0).fit(
            X, y
        )
        for solver in ("sgd", "adam")
    ]


def test_loss_curves_are_the_estimators_loss_curve_(fits):
    ax = plot_loss_curves(fits)
    assert len(ax.lines) == 2
    for line, est in zip(ax.lines, fits, strict=True):
        np.testing.assert_array_equal(line.get_xdata(), np.arange(1, 16))
        np.testing.assert_array_equal(line.get_ydata(), est.loss_curve_)
    assert [line.get_label() for line in ax.lines] == [
        "SGDLogisticClassifier (sgd)",
        "SGDLogisticClassifier (adam)",
    ]
    assert ax.get_yscale() == "log" and ax.get_ylabel() == "objective J"


def test_loss_curves_relative_to_f_star_on_given_axes(fits):
    _, ax = plt.subplots()
    f_star = 0.05
    curves = [fits[0], [0.5, 0.25, 0.125]]
    returned = plot_loss_curves(curves, labels=["a", "b"], ax=ax, f_star=f_star)
    assert returned is ax
    np.testing.assert_allclose(
        ax.lines[0].get_ydata(), np.asarray(fits[0].loss_curve_) - f_star
    )
    np.testing.assert_allclose(ax.lines[1].get_ydata(), [0.45, 0.2, 0.075])
    np.testing.assert_array_equal(ax.lines[1].get_xdata(), [1, 2, 3])
    assert ax.get_legend().get_texts()[1].get_text() == "b"
    assert ax.get_ylabel() == "J - J*"


def test_a_single_estimator_and_label_count(fits):
    ax = plot_loss_curves(fits[1])
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), fits[1].loss_curve_)
    with pytest.raises(ValueError, match="1 labels for 2 curves"):
        plot_loss_curves(fits, labels=["one"])


T = np.arange(1.0, 201.0)
ETA0 = 0.5


@pytest.mark.parametrize(
    "learning_rate, params, expected",
    [
        ("constant", {}, np.full(T.size, ETA0)),
        ("invscaling", {"power_t": 0.25}, ETA0 / T**0.25),
        ("inverse_time", {"decay": 0.01}, ETA0 / (1 + 0.01 * T)),
        ("exponential", {"decay": 0.02}, ETA0 * np.exp(-0.02 * T)),
        (
            "step",
            {"gamma": 0.5, "step_size": 3, "updates_per_epoch": 10},
            ETA0 * 0.5 ** np.floor(((T - 1) // 10) / 3),
        ),
        ("linear", {"eta_end": 0.1}, (1 - T / 200) * ETA0 + (T / 200) * 0.1),
        (
            "cosine",
            {"eta_end": 0.1},
            0.1 + 0.5 * (ETA0 - 0.1) * (1 + np.cos(np.pi * T / 200)),
        ),
        (
            # scikit-learn's "optimal": t0 = 1 / (alpha typw), typw = alpha^-1/4.
            "optimal",
            {"alpha": 0.01},
            1 / (0.01 * (1 / (0.01 * 0.01**-0.25) + T - 1)),
        ),
    ],
)
def test_schedule_values_follow_the_spec_formulas(learning_rate, params, expected):
    ax = plot_schedule(learning_rate, eta0=ETA0, n_steps=T.size, **params)
    line = ax.lines[0]
    np.testing.assert_array_equal(line.get_xdata(), T)
    np.testing.assert_allclose(line.get_ydata(), expected, rtol=1e-13, atol=1e-16)
    assert line.get_label() == learning_rate


def test_schedules_share_an_axis_and_reject_objective_driven_ones():
    ax = plot_schedule("constant", eta0=1.0, n_steps=5, label="flat")
    assert plot_schedule("invscaling", eta0=1.0, n_steps=5, ax=ax) is ax
    assert [line.get_label() for line in ax.lines] == ["flat", "invscaling"]
    np.testing.assert_allclose(ax.lines[1].get_ydata(), 1 / np.sqrt(np.arange(1, 6)))
    for name in ("adaptive", "line_search", "bogus"):
        with pytest.raises(ValueError, match="learning_rate"):
            plot_schedule(name)


def quadratic(x):
    return float(x[0] ** 2 + 4 * x[1] ** 2)


def quadratic_grad(x):
    return np.array([2 * x[0], 8 * x[1]])


def test_trajectories_are_the_minimize_paths():
    results = [
        minimize(quadratic, [2.0, 1.0], jac=quadratic_grad, eta0=0.1, maxiter=30),
        minimize(quadratic, [-2.0, 1.0], jac=quadratic_grad, method="adam", maxiter=40),
    ]
    ax = plot_trajectory(quadratic, results, labels=["gd", "adam"])
    assert len(ax.lines) == 2
    for line, result in zip(ax.lines, results, strict=True):
        np.testing.assert_array_equal(line.get_xdata(), result.trajectory[:, 0])
        np.testing.assert_array_equal(line.get_ydata(), result.trajectory[:, 1])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["gd", "adam"]
    # The default extent holds every iterate.
    (x_low, x_high), (y_low, y_high) = ax.get_xlim(), ax.get_ylim()
    paths = np.concatenate([r.trajectory for r in results])
    assert x_low <= paths[:, 0].min() and paths[:, 0].max() <= x_high
    assert y_low <= paths[:, 1].min() and paths[:, 1].max() <= y_high


def test_contours_are_level_sets_of_the_function():
    result = minimize(quadratic, [1.0, 0.5], jac=quadratic_grad, eta0=0.1)
    levels = [0.5, 1.0, 2.0]
    ax = plot_trajectory(
        quadratic, result, bounds=((-2, 2), (-1, 1)), levels=levels, n_grid=201
    )
    (contours,) = ax.collections
    np.testing.assert_array_equal(contours.levels, levels)
    for level, path in zip(levels, contours.get_paths(), strict=True):
        values = path.vertices[:, 0] ** 2 + 4 * path.vertices[:, 1] ** 2
        np.testing.assert_allclose(values, level, rtol=2e-3)
    assert ax.get_legend() is None


def test_default_levels_are_geometric_above_the_minimum():
    result = minimize(quadratic, [1.0, 1.0], jac=quadratic_grad, eta0=0.1)
    ax = plot_trajectory(quadratic, [result], bounds=((-1, 1), (-1, 1)), n_grid=3)
    # Grid values: 0 at the centre, 5 at the corners.
    np.testing.assert_allclose(ax.collections[0].levels, np.geomspace(5e-4, 5, 30))
    with pytest.raises(ValueError, match="2-D problems"):
        plot_trajectory(quadratic, minimize(quadratic, [1.0, 1.0, 1.0], maxiter=1))


def test_missing_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install skgd\[plot\]"):
        plot_schedule("constant")


def test_main_saves_the_loss_curves(tmp_path):
    path = tmp_path / "curves.png"
    main(["--n-samples", "2000", "--plot", str(path)])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

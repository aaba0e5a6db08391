"""Every schedule's step sequence equals its formula (SPEC section 3)."""

import numpy as np
import pytest

from skgd import SGDLogisticClassifier
from skgd._core import _schedules

t = np.arange(1, 41, dtype=float)
epoch = (t - 1) // 4  # four updates per epoch
ETA0, T = 0.3, 40.0

FORMULAS = {
    "constant": (_schedules.Constant(ETA0), ETA0 * np.ones_like(t)),
    "invscaling": (_schedules.InvScaling(ETA0, 0.5), ETA0 / t**0.5),
    "inverse_time": (_schedules.InverseTime(ETA0, 0.1), ETA0 / (1 + 0.1 * t)),
    "exponential": (_schedules.Exponential(ETA0, 0.1), ETA0 * np.exp(-0.1 * t)),
    "step": (_schedules.Step(ETA0, 0.5, 3), ETA0 * 0.5 ** np.floor(epoch / 3)),
    "linear": (_schedules.Linear(ETA0, 0.01, T), (1 - t / T) * ETA0 + t / T * 0.01),
    "cosine": (
        _schedules.Cosine(ETA0, 0.01, T),
        0.01 + 0.5 * (ETA0 - 0.01) * (1 + np.cos(np.pi * t / T)),
    ),
}


@pytest.mark.parametrize("name", FORMULAS)
def test_schedule_formula(name):
    schedule, expected = FORMULAS[name]
    np.testing.assert_allclose(schedule(t, epoch), expected, rtol=1e-15)


def test_linear_and_cosine_hold_eta_end_after_T():
    for cls in (_schedules.Linear, _schedules.Cosine):
        np.testing.assert_allclose(cls(ETA0, 0.01, T)([T, T + 1, 10 * T]), 0.01)


def test_optimal_matches_scikit_learn_heuristic():
    alpha = 1e-3
    typw = np.sqrt(1.0 / np.sqrt(alpha))
    t0 = 1.0 / (typw * alpha)  # sklearn's optimal_init, with initial eta0 = typw
    np.testing.assert_allclose(
        _schedules.Optimal(alpha)(t), 1.0 / (alpha * (t0 + t - 1)), rtol=1e-14
    )


def test_adaptive_divides_on_plateau_until_min_ratio():
    schedule = _schedules.Adaptive(1.0, factor=5.0, min_ratio=1e-2)
    steps = [schedule(1.0)[()]]
    while schedule.plateau():
        steps.append(schedule(1.0)[()])
    np.testing.assert_allclose(steps, [1.0, 0.2, 0.04])


@pytest.mark.parametrize(
    "learning_rate, params, formula",
    [
        ("invscaling", {"power_t": 0.5}, lambda t, e: 0.2 / t**0.5),
        ("inverse_time", {"decay": 0.05}, lambda t, e: 0.2 / (1 + 0.05 * t)),
        ("step", {"gamma": 0.5, "step_size": 2}, lambda t, e: 0.2 * 0.5 ** (e // 2)),
        ("cosine", {"eta_end": 0.0}, lambda t, e: 0.1 * (1 + np.cos(np.pi * t / 6))),
    ],
)
def test_estimator_uses_schedule(learning_rate, params, formula):
    """End to end: full batch makes one update per epoch; t counts from 1."""
    X = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    y = np.array([0, 1, 1, 0])
    steps = []
    SGDLogisticClassifier(
        solver="sgd",
        learning_rate=learning_rate,
        eta0=0.2,
        max_iter=6,
        tol=None,
        **params,
        callback=lambda est, info: steps.append(info["eta"]),
    ).fit(X, y)
    t = np.arange(1, 7)
    np.testing.assert_allclose(steps, formula(t, t - 1), rtol=1e-14)


def test_t_survives_partial_fit():
    X = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    y = np.array([0, 1, 1, 0])
    steps = []
    est = SGDLogisticClassifier(
        solver="sgd",
        learning_rate="invscaling",
        eta0=1.0,
        batch_size=2,
        callback=lambda e, info: steps.append(info["eta"]),
    )
    for _ in range(3):
        est.partial_fit(X, y, classes=[0, 1])
    assert est.t_ == 6
    np.testing.assert_allclose(steps, 1 / np.sqrt([2.0, 4.0, 6.0]), rtol=1e-15)

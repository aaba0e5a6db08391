"""skgd.minimize against hand-computed iterates (SPEC section 7)."""

import numpy as np
import pytest
from _reference import Rule

from skgd import minimize


def square(x):
    return float(x[0] ** 2), 2 * x


@pytest.mark.parametrize(
    "eta, factor, success",
    [(0.1, 0.8, True), (0.75, -0.5, True), (1.5, -2.0, False)],
    ids=["convergent", "oscillating", "divergent"],
)
def test_gd_on_x_squared_takes_the_hand_computed_steps(eta, factor, success):
    # x_{t+1} = x_t - eta (2 x_t), computed by hand, = (1 - 2 eta)^t x_0.
    result = minimize(square, [1.0], jac=True, eta0=eta, maxiter=20, tol=0)
    expected = [1.0]
    for _ in range(20):
        expected.append(expected[-1] - eta * (2 * expected[-1]))
    np.testing.assert_array_equal(result.trajectory[:, 0], expected)
    np.testing.assert_array_equal(result.fun_history, np.square(expected))
    np.testing.assert_allclose(expected, factor ** np.arange(21), rtol=1e-14)
    assert result.nit == 20 and result.success


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")
def test_divergence_is_reported_not_raised():
    result = minimize(square, [1.0], jac=True, eta0=1.5, maxiter=2000, tol=1e-8)
    assert not result.success and "Diverged" in result.message
    assert np.all(np.isfinite(result.x))


def test_gd_on_a_coupled_quadratic():
    A = np.array([[3.0, 1.0], [1.0, 2.0]])
    b = np.array([1.0, -1.0])

    def fun(x):
        return 0.5 * x @ A @ x - b @ x

    result = minimize(fun, [0.0, 0.0], jac=lambda x: A @ x - b, eta0=0.2, maxiter=5,
                      tol=0)  # fmt: skip
    x = np.zeros(2)
    for step in result.trajectory[1:]:
        x = x - 0.2 * (A @ x - b)
        np.testing.assert_allclose(step, x, rtol=1e-15)
    solved = minimize(fun, [0.0, 0.0], jac=lambda x: A @ x - b, eta0=0.2, tol=1e-10)
    np.testing.assert_allclose(solved.x, np.linalg.solve(A, b), atol=1e-9)
    assert solved.success


@pytest.mark.parametrize("x0, minimum", [(0.5, 1.0), (-0.5, -1.0), (2.0, 1.0)])
def test_quartic_reaches_the_minimum_of_its_basin(x0, minimum):
    def fun(x):
        return float((x[0] ** 2 - 1) ** 2), 4 * x * (x**2 - 1)

    result = minimize(fun, [x0], jac=True, eta0=0.05, tol=1e-10)
    assert result.success
    np.testing.assert_allclose(result.x, [minimum], atol=1e-9)


@pytest.mark.parametrize(
    "method, params, rule",
    [
        ("gd", {"momentum": 0.9}, {"solver": "sgd", "momentum": 0.9}),
        ("gd", {"momentum": 0.9, "nesterov": True},
         {"solver": "sgd", "momentum": 0.9, "nesterov": True}),
        ("adagrad", {}, {"solver": "adagrad"}),
        ("rmsprop", {}, {"solver": "rmsprop"}),
        ("adam", {}, {"solver": "adam"}),
    ],
)  # fmt: skip
def test_update_rules_match_the_numpy_transcription(method, params, rule):
    A = np.diag([1.0, 10.0])

    def fun(x):
        return 0.5 * x @ A @ x, A @ x

    result = minimize(fun, [1.0, 1.0], jac=True, method=method, eta0=0.05,
                      maxiter=10, tol=0, **params)  # fmt: skip
    reference = Rule(rule.pop("solver"), 2, **rule)
    x = np.array([1.0, 1.0])
    for t, step in enumerate(result.trajectory[1:], start=1):
        x = reference.step(x, A @ x, 0.05, t)
        np.testing.assert_allclose(step, x, rtol=1e-14)


def test_newton_solves_a_quadratic_in_one_step():
    A = np.array([[3.0, 1.0], [1.0, 2.0]])
    b = np.array([1.0, -1.0])
    result = minimize(
        lambda x: 0.5 * x @ A @ x - b @ x,
        [5.0, -3.0],
        jac=lambda x: A @ x - b,
        hess=lambda x: A,
        method="newton",
    )
    np.testing.assert_allclose(result.trajectory[1], np.linalg.solve(A, b), rtol=1e-14)
    assert result.nit == 1 and result.success


def test_line_search_satisfies_armijo_and_schedules_apply():
    A = np.diag([1.0, 100.0])

    def fun(x):
        return 0.5 * x @ A @ x, A @ x

    result = minimize(fun, [1.0, 1.0], jac=True, learning_rate="line_search",
                      eta0=1.0, maxiter=50, tol=0)  # fmt: skip
    f = result.fun_history
    steps = result.trajectory
    for t in range(1, len(steps)):
        g = A @ steps[t - 1]
        eta = (steps[t - 1] - steps[t])[0] / g[0]
        assert f[t] <= f[t - 1] - 1e-4 * eta * g @ g
    decayed = minimize(fun, [1.0, 1.0], jac=True, learning_rate="invscaling",
                       eta0=0.01, maxiter=3, tol=0)  # fmt: skip
    x = np.array([1.0, 1.0])
    for t in range(1, 4):
        x = x - 0.01 / np.sqrt(t) * (A @ x)
    np.testing.assert_allclose(decayed.x, x, rtol=1e-15)


def test_finite_differences_and_shapes():
    result = minimize(lambda x: float(np.sum((x - 1.0) ** 2)), np.zeros((2, 2)),
                      eta0=0.25, tol=1e-6)  # fmt: skip
    assert result.x.shape == (2, 2) and result.trajectory.shape[1:] == (2, 2)
    np.testing.assert_allclose(result.x, np.ones((2, 2)), atol=1e-5)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="method"):
        minimize(square, [1.0], jac=True, method="bfgs")
    with pytest.raises(ValueError, match="hess"):
        minimize(square, [1.0], jac=True, method="newton")
    with pytest.raises(ValueError, match="line_search"):
        minimize(square, [1.0], jac=True, method="adam", learning_rate="line_search")

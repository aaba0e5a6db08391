"""scikit-learn's full estimator check suite, for every solver configuration.

No expected failures and no skipped checks: a skipped check fails here.
"""

import pytest
from sklearn.utils.estimator_checks import check_estimator

from skgd import HingeSVM, SGDLinearRegressor, SGDLogisticClassifier

SOLVER_CONFIGS = {
    "sgd": {},
    "momentum": {"momentum": 0.9},
    "nesterov": {"momentum": 0.9, "nesterov": True},
    "adagrad": {"solver": "adagrad"},
    "rmsprop": {"solver": "rmsprop"},
    "adam": {"solver": "adam"},
}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("config", SOLVER_CONFIGS)
@pytest.mark.parametrize(
    "Estimator", [SGDLinearRegressor, SGDLogisticClassifier, HingeSVM]
)
def test_check_estimator(Estimator, config):
    outcomes = []

    def record(**kwargs):
        outcomes.append(
            (kwargs["check_name"], kwargs["status"], kwargs.get("exception"))
        )

    check_estimator(Estimator(**SOLVER_CONFIGS[config]), on_fail=None, callback=record)
    not_passed = [o for o in outcomes if o[1] != "passed"]
    assert len(outcomes) > 50
    assert not_passed == []

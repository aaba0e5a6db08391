"""scikit-learn's full estimator check suite, for every solver configuration.

No expected failures and no skipped checks: a skipped check fails here.
"""

import pytest
from _reference import FIRST_ORDER_RULES
from sklearn.utils.estimator_checks import check_estimator

from skgd import HingeSVM, SGDLinearRegressor, SGDLogisticClassifier

SOLVER_CONFIGS = {
    "default": {},
    **FIRST_ORDER_RULES,
    "newton": {"solver": "newton"},
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

    params = dict(SOLVER_CONFIGS[config])
    if Estimator is HingeSVM and config == "newton":
        params["loss"] = "squared_hinge"  # Newton needs a smooth loss
    check_estimator(Estimator(**params), on_fail=None, callback=record)
    not_passed = [o for o in outcomes if o[1] != "passed"]
    assert len(outcomes) > 50
    assert not_passed == []

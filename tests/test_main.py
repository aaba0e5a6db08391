"""The main job (python -m skgd) runs and reports every estimator."""

import numpy as np
from _reference import objective as reference_objective
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from skgd.__main__ import main
from skgd._objective import objective


def test_main_prints_the_comparison_table(capsys):
    main(["--n-samples", "4000"])
    out = capsys.readouterr().out
    rows = [
        line
        for line in out.splitlines()
        if line.startswith("| make_") or line.startswith("| breast")
    ]
    assert len(rows) == 14
    gaps = {r.split("|")[2].strip(): r.split("|")[6].strip() for r in rows[:7]}
    assert float(gaps["skgd SGDLogisticClassifier (default)"]) < 1e-3
    assert float(gaps["skgd SGDLogisticClassifier (adam)"]) < 5e-3


def test_objective_matches_the_reference_transcription():
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000).fit(X, y)
    alpha = 0.01
    J = objective("log_loss", model.coef_, model.intercept_, X, y, alpha)
    J_ref = reference_objective(
        "multinomial",
        model.coef_.T,
        model.intercept_,
        X,
        y.reshape(-1, 1).astype(float),
        np.ones(len(y)),
        alpha,
    )
    np.testing.assert_allclose(J, J_ref, rtol=1e-13)

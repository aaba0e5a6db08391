"""
Pipeline and GridSearchCV
=========================

skgd's estimators are ordinary scikit-learn estimators: they go into a
``Pipeline``, and ``GridSearchCV`` searches over their solver, schedule,
``alpha`` and ``batch_size`` like over any other parameter. Here a
standardised logistic model is tuned by 3-fold cross-validation on the
breast-cancer data. The first-order solvers run exactly 50 epochs
(``tol=None``); Newton runs to convergence.
"""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skgd import SGDLogisticClassifier

X, y = load_breast_cancer(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)
pipeline = Pipeline(
    [("scale", StandardScaler()), ("clf", SGDLogisticClassifier(random_state=0))]
)
alphas = np.logspace(-4, 0, 5)
param_grid = [
    {"clf__solver": ["newton"], "clf__alpha": alphas},
    {
        "clf__solver": ["adam", "sgd"],
        "clf__learning_rate": ["constant", "cosine"],
        "clf__batch_size": [32, 128],
        "clf__alpha": alphas,
        "clf__max_iter": [50],
        "clf__tol": [None],
    },
]
grid = GridSearchCV(pipeline, param_grid, cv=3).fit(X_train, y_train)
print("best parameters:", grid.best_params_)
print(f"test accuracy of the refitted best model: {grid.score(X_test, y_test):.3f}")

# %%
# The best mean validation accuracy of each solver at each alpha (over the
# schedules and batch sizes tried).
results = pd.DataFrame(grid.cv_results_)
scores = results.pivot_table(
    index="param_clf__alpha",
    columns="param_clf__solver",
    values="mean_test_score",
    aggfunc="max",
)
print(scores.round(3))
ax = scores.plot(logx=True, marker="o")
ax.set(xlabel="alpha", ylabel="mean validation accuracy (3-fold)")
ax.set_title("GridSearchCV over solver, schedule, batch size and alpha")
plt.show()

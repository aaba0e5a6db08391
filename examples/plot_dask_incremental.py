"""
Out-of-core training with Dask
==============================

``partial_fit`` runs one epoch on the rows it is given, with the optimizer
state kept between calls, which is the contract
``dask_ml.wrappers.Incremental`` drives: it streams the blocks of a Dask
array, one ``partial_fit`` per block, through the workers of a
``dask.distributed`` cluster, so only one block is in memory at a time.

This example needs ``pip install skgd[dask]`` (dask, distributed and
dask-ml); the documentation build runs it only where they are installed.
"""

import dask.array as da
import matplotlib.pyplot as plt
from dask_ml.wrappers import Incremental
from distributed import Client, LocalCluster
from sklearn.datasets import make_classification

from skgd import SGDLogisticClassifier
from skgd.plotting import plot_loss_curves

cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=False)
client = Client(cluster)

X, y = make_classification(
    n_samples=40_000, n_features=20, n_informative=10, random_state=0
)
X_train, y_train = (
    da.from_array(X[:30_000], chunks=5000),
    da.from_array(y[:30_000], chunks=5000),
)
X_test, y_test = X[30_000:], y[30_000:]

# %%
# Three passes over the six blocks: every block is one ``partial_fit`` call.
model = Incremental(
    SGDLogisticClassifier(solver="adam", alpha=1e-4, random_state=0),
    random_state=0,  # the order in which the blocks are shuffled
)
accuracies = []
for _ in range(3):
    model.partial_fit(X_train, y_train, classes=[0, 1])
    accuracies.append(model.estimator_.score(X_test, y_test))
    print(f"pass {len(accuracies)}: test accuracy {accuracies[-1]:.4f}")

# %%
# ``loss_curve_`` holds the objective of every ``partial_fit`` epoch, one
# block each.
ax = plot_loss_curves(model.estimator_, labels=["SGDLogisticClassifier (adam)"])
ax.set_xlabel("partial_fit call (one block of 5000 rows)")
ax.set_title("Incremental over a Dask array")
plt.show()

client.close()
cluster.close()

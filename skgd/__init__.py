"""skgd: scikit-learn compatible linear models trained by a nogil Cython
minibatch engine (SGD, momentum, Nesterov, Adagrad, RMSprop, Adam)."""

from ._hinge import HingeSVM
from ._logistic import SGDLogisticClassifier
from ._minimize import minimize
from ._regressor import SGDLinearRegressor

__all__ = ["HingeSVM", "SGDLinearRegressor", "SGDLogisticClassifier", "minimize"]
__version__ = "0.1.0"

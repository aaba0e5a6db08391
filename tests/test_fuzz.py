"""Property-based tests: whatever a data frame holds, every estimator and
solver either fits correctly or raises a clear error (issue 11).

Each generated case is a full call sequence on one estimator: random
shape (n = 1, d = 1, d >> n, empty), dtype (bool, int, float16/32/64,
object, complex, strings), dense or CSR, values from 1e-300 to 1e300, NaN /
inf injected into X, y or sample_weight, zero / negative / all-zero /
overflowing weights, constant and duplicate columns, label sets (one
class, strings, bool, mixed types), class weights, solver and schedule,
``fit`` or ``partial_fit`` (with an unseen label and a wrong number of
features on the following calls).

Every case is classified before it runs:

* ``"bad"``: it must raise ``ValueError`` or ``TypeError`` whose message
  names the input or parameter at fault (:func:`names_the_problem`);
* ``"good"``: it must fit, with finite ``coef_`` / ``intercept_``, and
  predict finite values of the right shape;
* ``"either"``: values so large that the loss may overflow float64 (any
  |x| > 1e4, 0 < |x| < 1e-8, |y| > 1e4), an explicit ``eta0``,
  ``early_stopping`` on a few
  rows): a fit as for "good", or a clear error as for "bad".

Anything else fails: another exception type (including a RuntimeWarning
or scikit-learn's UndefinedMetricWarning, turned into errors here), NaN
coefficients, a crash or a hang (each case runs under a faulthandler
watchdog that aborts with a traceback).

Profiles (``SKGD_FUZZ_PROFILE``): "ci" (default) runs 100 cases per
estimator, derandomized so that every run tries the same cases; "long"
runs 2000 per estimator with a fresh random seed.
"""

import faulthandler
import os
import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning, UndefinedMetricWarning

from skgd import HingeSVM, SGDLinearRegressor, SGDLogisticClassifier

settings.register_profile(
    "ci",
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "long",
    max_examples=2000,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROFILE = os.environ.get("SKGD_FUZZ_PROFILE", "ci")
FUZZ = settings(settings.get_profile(PROFILE))

# A case that runs longer than this is a hang: abort with every traceback.
WATCHDOG_SECONDS = 120

# Largest |value| of X (and of a regression y) that is "good" input: every
# fit must succeed. Beyond it the squared loss, the Hessian or x @ w may
# overflow float64, and a clear ValueError is an acceptable answer.
GOOD_SCALE = 1e4

# Smallest non-zero |value| of X that is "good" input. Below it, eta0="auto"
# of the adaptive rules (a constant over the mean row 1-norm) becomes
# astronomically large while alpha keeps the optimum small, and the penalty
# overflows on the first step (an engine limit: see the report of issue 11).
TINY_SCALE = 1e-8

# Words that name the input or parameter at fault in an error message.
INPUT_WORDS = r"X|y|sample_weight|classes|class_weight|labels?|features?"


def names_the_problem(message, estimator):
    """True when ``message`` names the input or the parameter at fault.

    It must contain, as a whole word, an input (``X``, ``y``,
    ``sample_weight``, ``classes``, ``class_weight``, ``label(s)``,
    ``feature(s)``) or one of the estimator's parameter names (``eta0``,
    ``solver``, ``early_stopping`` ...).
    """
    words = "|".join([INPUT_WORDS, *map(re.escape, estimator.get_params())])
    return re.search(rf"\b({words})\b", message) is not None


def test_names_the_problem_is_strict():
    est = SGDLogisticClassifier()
    assert names_the_problem("Input X contains NaN.", est)
    assert names_the_problem("Negative values in data passed to `sample_weight`.", est)
    assert names_the_problem("momentum=0.9 applies to solver='sgd' only", est)
    assert not names_the_problem("Complex data not supported", est)
    assert not names_the_problem("could not convert string to float: 'a'", est)
    assert not names_the_problem("'<' not supported between 'int' and 'str'", est)
    assert not names_the_problem("Found array with 0 sample(s) (shape=(0, 3))", est)


# ------------------------------------------------------------- the cases --

SOLVERS = {
    "auto": {},
    "sgd": {"solver": "sgd"},
    "momentum": {"solver": "sgd", "momentum": 0.9},
    "nesterov": {"solver": "sgd", "momentum": 0.9, "nesterov": True},
    "adagrad": {"solver": "adagrad"},
    "rmsprop": {"solver": "rmsprop"},
    "adam": {"solver": "adam"},
    "newton": {"solver": "newton"},
}
SCHEDULES = [
    "constant",
    "invscaling",
    "inverse_time",
    "exponential",
    "step",
    "linear",
    "cosine",
    "adaptive",
    "line_search",
]
X_KINDS = [
    "float64",
    "float32",
    "float16",
    "int64",
    "uint8",
    "bool",
    "object",
    "csr64",
    "csr32",
    "strings",
    "complex",
    "csr_complex",
]
SCALES = [0.0, -300.0, -150.0, -10.0, 3.0, 10.0, 100.0, 150.0, 300.0]
CLASS_LABELS = {
    "int01": [0, 1],
    "pm1": [-1, 1],
    "int3": [0, 1, 2],
    "str3": ["cat", "dog", "emu"],
    "bool": [False, True],
    "float01": [0.0, 1.0],
}
WEIGHT_KINDS = [
    "none",
    "ones",
    "uniform",
    "some_zero",
    "huge",
    "tiny",
    "all_zero",
    "negative",
    "nan",
    "inf",
    "wrong_length",
]
BAD_WEIGHTS = {"all_zero", "negative", "nan", "inf", "wrong_length"}


@st.composite
def cases(draw, Estimator):
    """One call sequence: (parameters, X, y, sample_weight, method, expect)."""
    classifier = Estimator is not SGDLinearRegressor
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.RandomState(seed)
    # Half the cases are clean: no defect is drawn, so good inputs are common.
    clean = draw(st.booleans())

    def pick(good, bad=()):
        return draw(st.sampled_from(list(good) if clean else [*good, *bad]))

    shape_kind = pick(["small", "small", "n1", "d1", "wide"], ["empty"])
    n, d = {
        "small": (draw(st.integers(2, 30)), draw(st.integers(1, 6))),
        "n1": (1, draw(st.integers(1, 4))),
        "d1": (draw(st.integers(2, 30)), 1),
        "wide": (draw(st.integers(2, 5)), draw(st.integers(10, 40))),
        "empty": draw(st.sampled_from([(0, 3), (5, 0), (0, 0)])),
    }[shape_kind]
    bad = []  # why the case must raise
    either = []  # why it may raise

    # -- X: values at per-column scales, then a dtype, then defects.
    scales = draw(st.lists(st.sampled_from(SCALES), min_size=1, max_size=3))
    exponents = rng.choice(scales, size=d)
    X = rng.normal(size=(n, d)) * 10.0**exponents
    X[rng.uniform(size=(n, d)) < draw(st.sampled_from([0.0, 0.3, 0.9]))] = 0.0
    columns = draw(st.sampled_from(["plain", "constant", "duplicate", "all_equal"]))
    if d >= 2 and columns == "constant":
        X[:, 0] = 7.0
    elif d >= 2 and columns == "duplicate":
        X[:, -1] = X[:, 0]
    elif columns == "all_equal":
        X[:] = X[:1] if n else X
    defect = pick(["none"] * 6, ["nan", "inf", "-inf"])
    if defect != "none" and X.size:
        X.flat[rng.randint(X.size)] = float(defect)
        bad.append(f"X has {defect}")
    x_kind = pick(X_KINDS[:-3], X_KINDS[-3:])
    with np.errstate(all="ignore"):
        if x_kind in ("float64", "float32", "float16", "csr64", "csr32"):
            X = X.astype({"csr64": np.float64, "csr32": np.float32}.get(x_kind, x_kind))
            if not np.all(np.isfinite(X)) and defect == "none":
                bad.append(f"X overflows {X.dtype}")
        elif x_kind in ("int64", "uint8"):
            if defect == "none":
                X = np.clip(np.rint(X), 0 if x_kind == "uint8" else -1e6, 255)
                X = X.astype(x_kind)
        elif x_kind == "bool":
            X = X > 0 if defect == "none" else X
        elif x_kind == "object":
            X = X.astype(object)
        elif x_kind == "strings":
            X = X.astype(str).astype(object)
            X[X == "0.0"] = "zero"  # some genuinely non-numeric text
            if X.size and not np.any(X == "zero"):
                X.flat[0] = "zero"
            if X.size:
                bad.append("X holds strings")
        else:
            X = X + 1j
            if X.size:
                bad.append("X is complex")
    if x_kind.startswith("csr"):
        X = sp.csr_matrix(X)
    if n == 0 or d == 0:
        bad.append("X is empty")
    if x_kind not in ("strings", "complex", "csr_complex"):
        dense = X.toarray() if sp.issparse(X) else np.asarray(X, dtype=np.float64)
        with np.errstate(all="ignore"):
            big = np.nanmax(np.abs(np.where(np.isinf(dense), 0, dense)), initial=0)
        if big > GOOD_SCALE:
            either.append(f"max |X| = {big:.3g}")
        with np.errstate(all="ignore"):
            nonzero = np.abs(dense[(dense != 0) & np.isfinite(dense)])
        if nonzero.size and nonzero.min() < TINY_SCALE:
            either.append(f"min |x| = {nonzero.min():.3g}")

    # -- y
    if classifier:
        label_kind = pick([*CLASS_LABELS] * 2, ["one", "mixed", "continuous"])
        if label_kind in CLASS_LABELS:
            labels = CLASS_LABELS[label_kind]
            y = np.array(labels)[rng.randint(len(labels), size=n)]
            y[: min(n, len(labels))] = labels[: min(n, len(labels))]
            if len(np.unique(y)) < 2:
                bad.append("y has one class")
        elif label_kind == "one":
            y = np.full(n, "only")
            bad.append("y has one class")
        elif label_kind == "mixed":
            y = np.array(["a", 1] * n, dtype=object)[:n]
            bad.append("y mixes str and int" if n >= 2 else "y has one class")
        else:
            y = rng.normal(size=n)
            bad.append("y is continuous")
    else:
        label_kind = pick(["float", "float", "int", "bool", "2d"], ["strings"])
        y_scale = 10.0 ** draw(st.sampled_from([0.0, 0.0, 3.0, 10.0, 150.0, 300.0]))
        y = rng.normal(size=(n, 2) if label_kind == "2d" else n) * y_scale
        if label_kind == "int":
            y = np.rint(y / y_scale * 10).astype(np.int64)
        elif label_kind == "bool":
            y = y > 0
        elif label_kind == "strings":
            y = np.array(["a"] * n, dtype=object)
            if n:
                bad.append("y holds strings")
        elif y_scale > GOOD_SCALE:
            either.append(f"|y| ~ {y_scale:.0e}")
    y_defect = pick(["none"] * 8, ["nan", "inf", "short"])
    if y_defect in ("nan", "inf") and n and label_kind not in ("strings", "mixed"):
        y = y.astype(float) if y.dtype.kind in "biuf" else y.astype(object)
        y[rng.randint(n)] = float(y_defect)
        bad.append(f"y has {y_defect}")
    elif y_defect == "short" and n:
        y = y[:-1]
        bad.append("y is shorter than X")

    # -- sample_weight
    weight_kind = pick(
        [w for w in WEIGHT_KINDS if w not in BAD_WEIGHTS], sorted(BAD_WEIGHTS)
    )
    sw = {
        "none": None,
        "ones": np.ones(n),
        "uniform": rng.uniform(0, 2, n),
        "some_zero": np.where(rng.uniform(size=n) < 0.5, 0.0, 1.0),
        "huge": 1e300 * rng.uniform(0.5, 1.5, n),
        "tiny": 1e-300 * rng.uniform(0.5, 1.5, n),
        "all_zero": np.zeros(n),
        "negative": -np.ones(n),
        "nan": np.full(n, np.nan),
        "inf": np.full(n, np.inf),
        "wrong_length": np.ones(n + 1),
    }[weight_kind]
    if weight_kind == "some_zero" and n and sw.sum() == 0:
        bad.append("sample_weight is all zero")
    if weight_kind in BAD_WEIGHTS and (n or weight_kind == "wrong_length"):
        bad.append(f"sample_weight is {weight_kind}")

    # -- parameters
    solver = draw(st.sampled_from(list(SOLVERS)))
    params = {
        **SOLVERS[solver],
        "alpha": draw(st.sampled_from([1e-4, 1e-4, 0.0, 1.0])),
        "fit_intercept": draw(st.booleans()),
        "batch_size": draw(st.sampled_from([1, 4, 256])),
        "max_iter": draw(st.sampled_from([3, 20])),
        "tol": draw(st.sampled_from([None, 1e-4])),
        "average": draw(st.sampled_from(["auto", True, False, 2])),
        "shuffle": draw(st.booleans()),
        "random_state": draw(st.integers(0, 3)),
    }
    stochastic = params["batch_size"] < n
    schedule = draw(st.sampled_from(SCHEDULES))
    if schedule == "line_search" and solver != "sgd":
        schedule = "constant"
    params["learning_rate"] = schedule
    if schedule == "line_search" and stochastic:
        # Known engine limit: the search starts at twice the last accepted
        # step, and one row's log loss accepts ever larger steps.
        either.append("line_search on minibatches")
    if draw(st.integers(0, 9)) == 0:
        params["eta0"] = draw(st.sampled_from([1e-3, 1.0, 100.0]))
        either.append("explicit eta0")
    if draw(st.integers(0, 9)) == 0:
        params["early_stopping"] = True
        either.append("early_stopping")
    if Estimator is HingeSVM:
        params["loss"] = draw(st.sampled_from(["hinge", "squared_hinge"]))
        if params["loss"] == "hinge" and solver == "newton":
            bad.append("newton with the hinge")
    method = draw(st.sampled_from(["fit", "fit", "partial_fit"]))
    if classifier:
        class_weight = pick([None, None, "balanced", "dict"], ["neg"])
        if class_weight in ("dict", "neg") and n and label_kind in CLASS_LABELS:
            first = CLASS_LABELS[label_kind][0]
            params["class_weight"] = {first: 2.0 if class_weight == "dict" else -1.0}
            if class_weight == "neg":
                bad.append("class_weight < 0")
        elif class_weight == "balanced":
            params["class_weight"] = "balanced"
            if method == "partial_fit":
                bad.append("balanced class_weight with partial_fit")
    expect = "bad" if bad else ("either" if either else "good")
    return params, X, y, sw, method, expect, bad + either


# ------------------------------------------------------------ the checks --


def check_fitted(est, X, y, strict):
    """Finite coefficients; finite predictions of the right shape."""
    assert np.all(np.isfinite(est.coef_)), est.coef_
    assert np.all(np.isfinite(est.intercept_)), est.intercept_
    assert est.n_features_in_ == X.shape[1]
    pred = est.predict(X)
    if isinstance(est, SGDLinearRegressor):
        assert pred.shape == np.shape(y)
        if strict:
            assert np.all(np.isfinite(pred))
    else:
        assert pred.shape == (X.shape[0],)
        assert set(np.unique(pred)) <= set(est.classes_)
        scores = est.decision_function(X)
        if strict:
            assert np.all(np.isfinite(scores))
    with pytest.raises(ValueError, match=r"X has \d+ features?, but"):
        est.predict(np.ones((2, X.shape[1] + 1)))


def call(est, method, X, y, sw, classes):
    if method == "fit":
        return est.fit(X, y, sample_weight=sw)
    if classes is None:
        return est.partial_fit(X, y, sample_weight=sw)
    return est.partial_fit(X, y, classes=classes, sample_weight=sw)


def run_case(Estimator, case):
    params, X, y, sw, method, expect, reasons = case
    est = Estimator(**params)
    classes = None
    if method == "partial_fit" and Estimator is not SGDLinearRegressor:
        try:
            classes = np.unique(y)
        except TypeError:  # mixed labels: pass them as they are
            classes = y
    try:
        call(est, method, X, y, sw, classes)
        if method == "partial_fit":  # a second epoch continues the state
            call(est, method, X, y, sw, None)
    except (ValueError, TypeError) as exc:
        assert expect != "good", f"good input ({reasons}) raised {exc!r}"
        assert names_the_problem(str(exc), est), f"message names nothing: {exc!r}"
        return "clear error"
    assert expect != "bad", f"bad input accepted: {reasons}"
    check_fitted(est, X, y, strict=expect == "good")
    if method == "partial_fit":
        with pytest.raises(ValueError, match=r"features"):
            est.partial_fit(np.ones((2, X.shape[1] + 1)), y[[0, -1]])
        if classes is not None:
            new_label = "never seen" if classes.dtype.kind == "U" else 12345
            unseen = np.array([classes[0], new_label])
            with pytest.raises(ValueError, match="not in classes"):
                est.partial_fit(X[:2] if X.shape[0] >= 2 else X[[0, 0]], unseen)
    return "fitted"


ESTIMATORS = [SGDLinearRegressor, SGDLogisticClassifier, HingeSVM]


@pytest.mark.parametrize("Estimator", ESTIMATORS)
@FUZZ
@given(data=st.data())
def test_every_input_fits_or_raises_a_clear_error(Estimator, data):
    case = data.draw(cases(Estimator), label="case")
    faulthandler.dump_traceback_later(WATCHDOG_SECONDS, exit=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            # (an undefined validation score: a NaN that never stops a fit)
            warnings.simplefilter("error", UndefinedMetricWarning)
            warnings.simplefilter("ignore", ConvergenceWarning)
            event(f"{case[5]} input: {run_case(Estimator, case)}")
    finally:
        faulthandler.cancel_dump_traceback_later()

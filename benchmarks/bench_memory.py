"""Peak extra memory of a fit, as a fraction of the bytes of X (issue 8).

Target of issue 8: a dense first-order fit needs at most 5% of X on top of
X itself (no copy of X, no per-batch allocation). Every case runs in a fresh
subprocess, which builds its X block by block (no temporary copy of X;
binary labels from a hidden logistic model) and first fits the same
estimator on 1000 rows, so that one-time costs (imports, thread pools, BLAS
buffers) do not count. Then it measures two fits of ``--epochs`` epochs
(``tol=None``; Newton and LogisticRegression run to convergence):

* the peak of ``tracemalloc`` (NumPy reports its array allocations to it)
  during ``fit``, above what was traced when ``fit`` started;
* the growth of the peak resident set size (``ru_maxrss``) over the fit,
  which also sees allocations that bypass tracemalloc (C ``malloc``, BLAS,
  OpenMP); the peak is reset just before the fit where Linux allows it
  (``/proc/self/clear_refs``), otherwise the growth can read low.

Cases: C-contiguous float64 and float32 X (200k x 100 by default) and a
CSR matrix (200k x 1000, 50 nonzeros per row, float64; its size is
data + indices + indptr); ``SGDLogisticClassifier`` with solver sgd,
momentum sgd, adagrad and adam, each at the default ``batch_size`` and
full batch, and with ``solver="newton"``; scikit-learn's
``SGDClassifier(loss="log_loss")`` and ``LogisticRegression()`` for
comparison.

Run: ``python benchmarks/bench_memory.py [--n-samples 200000 --epochs 2]``.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tracemalloc
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, SGDClassifier

from skgd import SGDLogisticClassifier

LAYOUTS = ("float64", "float32", "csr")
RULES = {
    "sgd": {"solver": "sgd"},
    "momentum sgd": {"solver": "sgd", "momentum": 0.9},
    "adagrad": {"solver": "adagrad"},
    "adam": {"solver": "adam"},
}
BLOCK_ROWS = 2000
WARM_UP_ROWS = 1000


def cases():
    """``(layout, model name, kind, params)`` for every case, in table order."""
    out = []
    for layout in LAYOUTS:
        for name, params in RULES.items():
            out.append((layout, name, "skgd", params))
            out.append((layout, f"{name}, full batch", "skgd-full", params))
        out.append((layout, "newton", "skgd", {"solver": "newton"}))
        out.append((layout, "SGDClassifier(loss='log_loss')", "sgdclassifier", {}))
        out.append((layout, "LogisticRegression()", "logistic", {}))
    return out


def make_data(layout, n, d, csr_features, csr_nnz, seed=0):
    """X built block by block (no full-size temporary) and 0/1 labels."""
    rng = np.random.default_rng(seed)
    if layout == "csr":
        d = csr_features
    hidden = rng.standard_normal(d) / np.sqrt(csr_nnz if layout == "csr" else d)
    y = np.empty(n, dtype=np.intp)
    if layout == "csr":
        data = np.empty(n * csr_nnz)
        indices = np.empty(n * csr_nnz, dtype=np.int32)
        indptr = np.arange(0, n * csr_nnz + 1, csr_nnz, dtype=np.int32)
    else:
        X = np.empty((n, d), dtype=layout)
    for start in range(0, n, BLOCK_ROWS):
        stop = min(start + BLOCK_ROWS, n)
        if layout == "csr":
            rows = stop - start
            cols = np.argpartition(rng.random((rows, d)), csr_nnz, axis=1)
            cols = np.sort(cols[:, :csr_nnz], axis=1)
            vals = rng.standard_normal((rows, csr_nnz))
            span = slice(start * csr_nnz, stop * csr_nnz)
            indices[span] = cols.ravel()
            data[span] = vals.ravel()
            margin = (vals * hidden[cols]).sum(axis=1)
        else:
            X[start:stop] = rng.standard_normal((stop - start, d), dtype=layout)
            margin = X[start:stop] @ hidden.astype(layout)
        y[start:stop] = margin + rng.logistic(size=stop - start) > 0
    if layout == "csr":
        X = sp.csr_matrix((data, indices, indptr), shape=(n, d))
        x_bytes = data.nbytes + indices.nbytes + indptr.nbytes
    else:
        x_bytes = X.nbytes
    return X, y, x_bytes


def make_model(kind, params, n, epochs):
    """A fresh estimator for one case."""
    if kind == "sgdclassifier":
        return SGDClassifier(loss="log_loss", max_iter=epochs, tol=None, random_state=0)
    if kind == "logistic":
        return LogisticRegression()
    if params.get("solver") == "newton":
        return SGDLogisticClassifier(**params)
    batch = {"batch_size": n} if kind == "skgd-full" else {}
    return SGDLogisticClassifier(
        **params, **batch, max_iter=epochs, tol=None, random_state=0
    )


def peak_rss_bytes():
    """Peak resident set size of this process (``ru_maxrss`` is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak_rss():
    """Reset the peak RSS to the current RSS (Linux >= 4.0); True if done."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def measure(index, args):
    """Child process: measure one case and print its figures as JSON."""
    layout, _, kind, params = cases()[index]
    X, y, x_bytes = make_data(
        layout, args.n_samples, args.n_features, args.csr_features, args.csr_nnz
    )
    n = X.shape[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warm = min(WARM_UP_ROWS, n)
        make_model(kind, params, warm, args.epochs).fit(X[:warm], y[:warm])

        model = make_model(kind, params, n, args.epochs)
        reset = reset_peak_rss()
        before = peak_rss_bytes()
        model.fit(X, y)
        rss = peak_rss_bytes() - before

        model = make_model(kind, params, n, args.epochs)
        tracemalloc.start()
        tracemalloc.reset_peak()
        start, _ = tracemalloc.get_traced_memory()
        model.fit(X, y)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    print(
        json.dumps(
            {"x_bytes": x_bytes, "traced": peak - start, "rss": rss, "reset": reset}
        )
    )


def main():
    """Run every case in its own process and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=200_000)
    parser.add_argument("--n-features", type=int, default=100)
    parser.add_argument("--csr-features", type=int, default=1000)
    parser.add_argument("--csr-nnz", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--case", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case is not None:
        measure(args.case, args)
        return

    print(
        f"Dense X: {args.n_samples} x {args.n_features}; CSR X: {args.n_samples} x "
        f"{args.csr_features}, {args.csr_nnz} nonzeros per row; {args.epochs} "
        f"epochs, default batch_size 256 unless full batch; one fresh process "
        "per case. Target: <= 5% of X for a dense first-order fit.\n"
    )
    print(
        "| model | dtype / layout | X (MB) | peak extra (MB, tracemalloc) "
        "| % of X | RSS growth (MB) | RSS % of X |"
    )
    print("|---|---|--:|--:|--:|--:|--:|")
    forwarded = [
        f"--n-samples={args.n_samples}",
        f"--n-features={args.n_features}",
        f"--csr-features={args.csr_features}",
        f"--csr-nnz={args.csr_nnz}",
        f"--epochs={args.epochs}",
    ]
    no_reset = False
    failed = []
    for index, (layout, name, kind, _) in enumerate(cases()):
        done = subprocess.run(
            [sys.executable, os.path.abspath(__file__), f"--case={index}", *forwarded],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            failed.append(f"{name} / {layout}: {done.stderr.strip()[-500:]}")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        no_reset |= not r["reset"]
        owner = (
            "" if kind in ("sgdclassifier", "logistic") else "SGDLogisticClassifier "
        )
        mb = 2.0**20
        print(
            f"| {owner}{name} | {layout} | {r['x_bytes'] / mb:.1f} "
            f"| {r['traced'] / mb:.2f} | {100 * r['traced'] / r['x_bytes']:.1f} "
            f"| {r['rss'] / mb:.1f} | {100 * r['rss'] / r['x_bytes']:.1f} |"
        )
    if no_reset:
        print("\nThe peak RSS could not be reset: RSS growths may read low.")
    if failed:
        sys.exit("failed cases:\n" + "\n".join(failed))


if __name__ == "__main__":
    main()

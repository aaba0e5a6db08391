"""Does the epoch time grow linearly with n? (issue 8)

For n = 50k, 100k, 200k and 400k rows (d = 100, float64, the standardised
logistic problem of ``bench_epoch.py``), one epoch of
``SGDLogisticClassifier`` at ``batch_size=256`` with solvers sgd and adam,
timed by ``bench_epoch.epoch_time`` (difference of two fits, so that setup
does not count), next to one ``X @ w`` pass over the same X measured in
the same run. Columns: epoch time, its ratio to the pass, the time per row
(ns/row) and that per-row time as a ratio to the smallest n's (linear
growth reads ~1.0; a rise means the epoch falls out of cache or allocates
per row).

Where PyTorch is importable, the same epoch is also timed as a plain
PyTorch loop (CPU, ``torch.set_num_threads(2)``, float64 ``nn.Linear``,
``BCEWithLogitsLoss``, ``torch.optim.SGD`` / ``torch.optim.Adam`` with
``weight_decay=alpha``, shuffled minibatches of 256): median of
``--repeats`` epochs after one warm-up epoch, and its ratio to skgd's epoch
with the same rule. Without PyTorch one line says it was skipped.

Run: ``python benchmarks/bench_scaling.py [--sizes 50000 100000 200000 400000]``.
"""

import argparse
import importlib.util

import numpy as np
from bench_epoch import epoch_time, median_time

from skgd import SGDLogisticClassifier

SOLVERS = ("sgd", "adam")
ALPHA = 1e-4


def problem(n, d, seed=0):
    """Standard normal X (float64) and 0/1 labels of a logistic model."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, d))
    y = X @ rng.normal(size=d) + rng.logistic(size=n) > 0
    return X, y.astype(np.int64)


def torch_epoch_time(X, y, solver, batch_size, repeats):
    """Median time of one epoch of a plain PyTorch minibatch loop."""
    import torch

    torch.set_num_threads(2)
    torch.manual_seed(0)
    Xt = torch.from_numpy(X)
    yt = torch.from_numpy(y.astype(X.dtype))
    model = torch.nn.Linear(X.shape[1], 1, dtype=Xt.dtype)
    if solver == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=ALPHA)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=ALPHA)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    n = Xt.shape[0]

    def epoch():
        order = torch.randperm(n)
        for start in range(0, n, batch_size):
            rows = order[start : start + batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(Xt[rows]).squeeze(1), yt[rows])
            loss.backward()
            optimizer.step()

    epoch()  # warm-up
    return median_time(epoch, repeats)


def main():
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[50_000, 100_000, 200_000, 400_000]
    )
    parser.add_argument("--n-features", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    has_torch = importlib.util.find_spec("torch") is not None

    print(
        f"d = {args.n_features}, float64, batch_size={args.batch_size}, "
        f"alpha={ALPHA:g}; epoch = (fit({args.epochs + 1} epochs) - fit(1 epoch))"
        f" / {args.epochs}, median of {args.repeats}; per-row ratio is to "
        f"n = {min(args.sizes)}."
    )
    if has_torch:
        import torch

        print(f"PyTorch {torch.__version__}: median of {args.repeats} epochs.\n")
        torch_head, torch_rule = " torch epoch (ms) | torch / skgd |", "--:|--:|"
    else:
        print("PyTorch is not installed: its minibatch loop was skipped.\n")
        torch_head, torch_rule = "", ""
    print(
        "| n | solver | epoch (ms) | X @ w pass (ms) | / pass | ns / row "
        f"| per-row / smallest n |{torch_head}"
    )
    print(f"|--:|---|--:|--:|--:|--:|--:|{torch_rule}")
    first_per_row = {}
    for n in sorted(args.sizes):
        X, y = problem(n, args.n_features)
        w = np.ones(args.n_features)
        floor = median_time(lambda X=X, w=w: X @ w, 21)
        for solver in SOLVERS:
            t = epoch_time(
                lambda k, s=solver: SGDLogisticClassifier(
                    solver=s,
                    alpha=ALPHA,
                    batch_size=args.batch_size,
                    max_iter=k,
                    tol=None,
                    random_state=0,
                ),
                X,
                y,
                args.epochs,
                args.repeats,
            )
            per_row = t / n * 1e9
            first_per_row.setdefault(solver, per_row)
            row = (
                f"| {n} | {solver} | {t * 1e3:.2f} | {floor * 1e3:.3f} "
                f"| {t / floor:.1f} | {per_row:.0f} "
                f"| {per_row / first_per_row[solver]:.2f} |"
            )
            if has_torch:
                t_torch = torch_epoch_time(X, y, solver, args.batch_size, args.repeats)
                row += f" {t_torch * 1e3:.1f} | {t_torch / t:.1f} |"
            print(row)


if __name__ == "__main__":
    main()

"""Run the whole benchmark suite and print one Markdown report.

Each benchmark runs in its own process, one after another (they time
themselves, so they must not share the cores), and its Markdown is printed
under a heading, with its wall time. Every figure inside is a median of
repeats and every ratio is measured in the same run as its reference (see
each script's docstring).

    python benchmarks/run_all.py [--only epoch sparse ...] > report.md
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

SUITE = {
    "convergence": ("Convergence of the default fit (issue 4)", "bench_convergence.py"),
    "epoch": ("Dense epoch per update rule (issue 8)", "bench_epoch.py"),
    "sparse": ("Sparse epoch, time to the optimum (issue 6)", "bench_sparse.py"),
    "multiclass": ("Multiclass (issue 5)", "bench_multiclass.py"),
    "threads": ("Threaded speed-up (issue 11)", "bench_threads.py"),
    "dask": ("Dask (issue 9)", "bench_dask.py"),
    "newton": ("Exact solvers against scikit-learn's (issue 8)", "bench_newton.py"),
    "wide": ("solver='auto' on wide X: Newton-CG or Adam (issue 6)", "bench_wide.py"),
    "small": ("Small fits: fixed overhead (issue 8)", "bench_small.py"),
    "memory": ("Peak extra memory of a fit (issue 8)", "bench_memory.py"),
    "scaling": ("Epoch time against n (issue 8)", "bench_scaling.py"),
}


def main():
    """Run the selected benchmarks and print their reports."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=sorted(SUITE), default=None)
    args = parser.parse_args()
    failed = []
    for name in args.only or SUITE:
        title, script = SUITE[name]
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, str(HERE / script)], capture_output=True, text=True
        )
        seconds = time.perf_counter() - start
        print(f"## {title}\n\n`benchmarks/{script}`, {seconds:.0f} s\n")
        print(done.stdout.strip() + "\n")
        if done.returncode != 0:
            failed.append(name)
            print(f"```\n{done.stderr.strip()[-2000:]}\n```\n")
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()

"""Benchmark the ε-auction against scipy's exact assignment solvers.

    python -m channelmarket.eval.bench_auction            # dense 1000 x 1000, sparse 10,000 x 10,000
    python -m channelmarket.eval.bench_auction --quick    # a few seconds

Dense case: random benefits, ``auction`` (Jacobi and Gauss-Seidel, ε-scaling) vs
``scipy.optimize.linear_sum_assignment``.  Sparse case: ``n`` bidders with ``degree`` random
objects each, one of them from a random permutation so that a perfect matching exists;
``auction(..., maximize_cardinality=True)`` vs ``scipy.sparse.csgraph.
min_weight_full_bipartite_matching`` (both compute the best perfect matching); one more row
shows the default max-weight mode (bidders may stay out, so its gap can be negative).  Times are the
median of ``--repeats`` runs after one warm-up call (which compiles the numba kernels); the
gap is the scipy optimum minus the auction's total benefit.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

from channelmarket.envs.eps_auction import METHODS, assignment_benefit, auction, numba_available


def dense_instance(n, rng, max_benefit, integer):
    """n x n benefits, uniform on 1..max_benefit (integers) or [0, max_benefit) (floats)."""
    if integer:
        return rng.integers(1, max_benefit + 1, (n, n)).astype(np.float64)
    return rng.random((n, n)) * max_benefit


def sparse_instance(n, degree, rng, max_benefit, integer):
    """n x n CSR with about ``degree`` distinct entries per row, including a random
    permutation (a perfect matching exists); benefits as in ``dense_instance``."""
    rows = np.concatenate([np.repeat(np.arange(n), max(degree - 1, 0)), np.arange(n)])
    cols = np.concatenate([rng.integers(0, n, n * max(degree - 1, 0)), rng.permutation(n)])
    key = np.unique(rows.astype(np.int64) * n + cols)
    rows, cols = key // n, key % n
    if integer:
        vals = rng.integers(1, max_benefit + 1, key.size).astype(np.float64)
    else:
        vals = rng.random(key.size) * max_benefit + 1e-9  # scipy's matcher needs nonzero weights
    return sp.csr_matrix((vals, (rows, cols)), shape=(n, n))


def timed(fn, repeats):
    """(median seconds over ``repeats`` calls after one warm-up call, last result)."""
    result = fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), result


def run(dense_n=1000, sparse_n=10_000, degree=10, repeats=5, seed=0, max_benefit=1000, integer=True):
    """Run both cases; a list of result rows (dicts)."""
    rng = np.random.default_rng(seed)
    rows = []

    def add(case, method, seconds, total, ref, matched):
        gap = ref - total
        rows.append(dict(case=case, method=method, seconds=seconds, total=total, gap=gap,
                         rel_gap=gap / abs(ref) if ref else 0.0, matched=matched))

    if dense_n:
        a = dense_instance(dense_n, rng, max_benefit, integer)
        case = f"dense {dense_n}x{dense_n}"
        sec, (r, c) = timed(lambda: linear_sum_assignment(a, maximize=True), repeats)
        ref = float(a[r, c].sum())
        add(case, "scipy linear_sum_assignment", sec, ref, ref, r.size)
        for method in METHODS:
            sec, (asg, _) = timed(lambda: auction(a, method=method), repeats)
            add(case, f"auction {method}", sec, assignment_benefit(a, asg), ref, int((asg >= 0).sum()))

    if sparse_n:
        b = sparse_instance(sparse_n, degree, rng, max_benefit, integer)
        case = f"sparse {sparse_n}x{sparse_n}, {b.nnz / sparse_n:.1f}/row"
        sec, (r, c) = timed(lambda: min_weight_full_bipartite_matching(b, maximize=True), repeats)
        ref = float(np.asarray(b[r, c]).sum())
        add(case, "scipy min_weight_full_bipartite_matching", sec, ref, ref, r.size)
        for method in METHODS:
            sec, (asg, _) = timed(lambda: auction(b, method=method, maximize_cardinality=True), repeats)
            add(case, f"auction {method} (max-card)", sec, assignment_benefit(b, asg), ref, int((asg >= 0).sum()))
        # the market's mode: bidders may stay out, so the benefit can beat the perfect matching
        sec, (asg, _) = timed(lambda: auction(b, method="gauss_seidel"), repeats)
        add(case, "auction gauss_seidel (max-weight)", sec, assignment_benefit(b, asg), ref, int((asg >= 0).sum()))
    return rows


def format_table(rows):
    head = f"{'case':<28} {'method':<42} {'seconds':>9} {'total benefit':>15} {'gap':>10} {'rel gap':>9} {'matched':>8}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['case']:<28} {r['method']:<42} {r['seconds']:>9.4f} {r['total']:>15.6g} "
            f"{r['gap']:>10.3g} {r['rel_gap']:>9.2e} {r['matched']:>8d}"
        )
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m channelmarket.eval.bench_auction", description=__doc__.split("\n\n")[0])
    p.add_argument("--dense-n", type=int, default=1000, help="dense case size n x n (0 skips it)")
    p.add_argument("--sparse-n", type=int, default=10_000, help="sparse case bidders = objects (0 skips it)")
    p.add_argument("--degree", type=int, default=10, help="mean feasible objects per bidder in the sparse case")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per solver (median reported)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-benefit", type=int, default=1000, help="benefits are drawn from 1..max-benefit")
    p.add_argument("--float", dest="integer", action="store_false", help="real-valued benefits instead of integers")
    p.add_argument("--quick", action="store_true", help="small sizes, 3 repeats: a few seconds")
    args = p.parse_args(argv)
    if args.quick:
        args.dense_n, args.sparse_n, args.repeats = min(args.dense_n, 200), min(args.sparse_n, 2000), min(args.repeats, 3)
    print(f"numba kernels: {'yes' if numba_available() else 'no (numpy / plain-Python fallback)'}; "
          f"benefits: {'integers' if args.integer else 'floats'} up to {args.max_benefit}; "
          f"median of {args.repeats} after a warm-up call")
    rows = run(args.dense_n, args.sparse_n, args.degree, args.repeats, args.seed, args.max_benefit, args.integer)
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

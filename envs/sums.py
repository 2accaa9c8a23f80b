"""Sums over agents in one fixed order (row by row), whatever the machine.

A matrix product (`np.ones(n) @ x`) sums columns fast, but through BLAS: OpenBLAS splits large
products over its threads, so the market summary's welfare, volumes and fees came out different in
the last bits on machines with another core count (measured: `np.ones(100_000) @ x` differs between
OPENBLAS_NUM_THREADS=1 and 2), and its worker threads then spin for a while on a core the step
does not use (about 37 ms of CPU per 100,000-agent dict step, beside 100 ms of the step's own).
These kernels add row after row in one thread: the same bits everywhere, no second core.
"""

from __future__ import annotations

import numpy as np

from .compiled import jit, register


def column_sums_numpy(x):
    """[F] float64: the sum of every column of `x` [N, F], rows added in order. NumPy reduces the
    first axis of a C-ordered array of two or more columns row by row, the loop's exact order; one
    column is reduced pairwise, so it is accumulated instead."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    if x.shape[1] != 1 or x.shape[0] == 0:
        return x.sum(axis=0)
    return np.add.accumulate(x[:, 0])[-1:]


def _column_sums_py(x):  # pragma: no cover - compiled
    out = np.zeros(x.shape[1])
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            out[j] += x[i, j]
    return out


def group_sums_numpy(x, group, n_groups):
    """[G, F] float64: per group g, the sum of the rows i of `x` [N, F] with `group[i] == g`, in row
    order; rows of a negative group (an agent that counts for no group) are left out."""
    x = np.asarray(x, dtype=np.float64)
    out = np.zeros((n_groups, x.shape[1]))
    keep = group >= 0
    np.add.at(out, group[keep], x[keep])   # unbuffered: row after row, in order
    return out


def _group_sums_py(x, group, n_groups):  # pragma: no cover - compiled
    out = np.zeros((n_groups, x.shape[1]))
    for i in range(x.shape[0]):
        g = group[i]
        if g >= 0:
            for j in range(x.shape[1]):
                out[g, j] += x[i, j]
    return out


_column_sums_nb = jit(_column_sums_py)
_group_sums_nb = jit(_group_sums_py)
column_sums = register("column_sums", column_sums_numpy, _column_sums_nb)
group_sums = register("group_sums", group_sums_numpy, _group_sums_nb)

__all__ = ["column_sums", "group_sums", "column_sums_numpy", "group_sums_numpy"]

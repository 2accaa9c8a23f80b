"""The channel graph as a per-node CSR of directed edges, kept while no channel's endpoints change.

Directed edge 2c is u -> v of slot c, 2c + 1 is v -> u (as in `routes`). The CSR lists every
slot, open or not, so it depends on the endpoints only: balances, open flags and active agents
are read per step by the kernels that walk it. Channels reopen in few slots and rarely, so the
CSR is rebuilt only when `u` or `v` differ from the cached one (two O(E) compares against a
rebuild's counting sort with random writes). Within a node, edges are in edge order, so walking
a node's edges gives the same tie-breaks (lowest edge index) as one pass over all edges; the
edges into a node are its out-edges' partners (d ^ 1), in the same order.
"""

from __future__ import annotations

import numpy as np

from ..compiled import jit


def out_csr_numpy(u, v, n: int):
    """(indptr [N + 1], edge [2E] directed edge ids by source node, ascending within a node,
    target [2E] the edges' other ends). The compiled build gives edge and target as int32."""
    src = np.stack((u, v), axis=1).ravel().astype(np.int64)
    dst = np.stack((v, u), axis=1).ravel().astype(np.int64)
    edge = np.argsort(src, kind="stable")
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=indptr[1:])
    return indptr, edge.astype(np.int64), dst[edge]


@jit
def _out_csr_nb(u, v, n):  # pragma: no cover - compiled
    e_n = u.shape[0]
    indptr = np.zeros(n + 1, dtype=np.int64)
    for ch in range(e_n):
        indptr[u[ch] + 1] += 1
        indptr[v[ch] + 1] += 1
    for i in range(n):
        indptr[i + 1] += indptr[i]
    fill = indptr[:-1].copy()
    edge = np.empty(2 * e_n, dtype=np.int32)     # int32: half the random writes' memory (2E < 2**31)
    target = np.empty(2 * e_n, dtype=np.int32)
    for ch in range(e_n):
        a = u[ch]
        q = fill[a]
        edge[q] = 2 * ch
        target[q] = v[ch]
        fill[a] = q + 1
        b = v[ch]
        q = fill[b]
        edge[q] = 2 * ch + 1
        target[q] = u[ch]
        fill[b] = q + 1
    return indptr, edge, target


_CACHE: list = []   # [(n, u, v, csr)], most recent first


def out_csr(u, v, n: int):
    """The CSR of the slots' endpoints, from the cache when `u` and `v` are unchanged."""
    for i, (cn, cu, cv, csr) in enumerate(_CACHE):
        if cn == n and cu.shape == u.shape and np.array_equal(cu, u) and np.array_equal(cv, v):
            if i:
                _CACHE.insert(0, _CACHE.pop(i))
            return csr
    small = 2 * u.shape[0] < 2**31 and n < 2**31
    csr = _out_csr_nb(u, v, n) if _out_csr_nb is not None and small else out_csr_numpy(u, v, n)
    _CACHE.insert(0, (n, u.copy(), v.copy(), csr))
    del _CACHE[4:]
    return csr


__all__ = ["out_csr", "out_csr_numpy"]

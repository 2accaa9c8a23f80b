"""The cached channel CSR (`payments.graph`): the compiled build equals its NumPy twin, edges
stay in edge order within a node, and a changed endpoint never returns a stale CSR."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st

from channelmarket.envs import compiled
from channelmarket.envs.payments import graph


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 12), st.integers(0, 30), st.integers(0, 2**31 - 1))
def test_csr_lists_each_nodes_edges_in_edge_order(n, e, seed):
    rng = np.random.default_rng(seed)
    u = rng.integers(0, n, e)
    v = (u + rng.integers(1, n, e)) % n
    indptr, edge, target = graph.out_csr_numpy(u, v, n)
    for a in range(n):
        d = edge[indptr[a]:indptr[a + 1]]
        assert (np.diff(d) > 0).all()
        src = np.where(d & 1 == 0, u[d >> 1], v[d >> 1])
        assert (src == a).all()
        np.testing.assert_array_equal(target[indptr[a]:indptr[a + 1]], np.where(d & 1 == 0, v[d >> 1], u[d >> 1]))
    if compiled.USE_NUMBA:
        for x, y in zip(graph._out_csr_nb(u, v, n), (indptr, edge, target)):
            np.testing.assert_array_equal(x, y)


def test_cached_csr_follows_changed_endpoints():
    u, v = np.array([0, 1, 2]), np.array([1, 2, 3])
    first = graph.out_csr(u, v, 4)
    assert graph.out_csr(u.copy(), v.copy(), 4) is first    # same endpoints, new arrays: reused
    v2 = v.copy()
    v2[2] = 0                                              # slot 2 reopened between other agents
    indptr, edge, target = graph.out_csr(u, v2, 4)
    for x, y in zip((indptr, edge, target), graph.out_csr_numpy(u, v2, 4)):
        np.testing.assert_array_equal(x, y)
    assert graph.out_csr(u, v2, 5)[0].shape == (6,)         # another market's size: its own CSR

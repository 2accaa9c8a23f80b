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


def test_kind_aware_reopenings_read_the_episode_pools_and_draw_as_from_the_roles():
    # AgentParams keeps the sell and buy pools for the episode; any agents object without them (duck-typed)
    # gets the same endpoints from the same draws
    from types import SimpleNamespace

    from channelmarket.envs.core import MarketCore
    from channelmarket.envs.topology import reopen_pairs, roles

    core = MarketCore("energy_lightning")
    core.reset(2)
    ag, st, sc = core.agents, core.state, core.scenario
    sell, buy = roles(ag)
    pools = ag.trade_pools
    assert pools[0].tolist() == np.flatnonzero(sell).tolist() and pools[1].tolist() == np.flatnonzero(buy).tolist()
    assert ag.trade_pools is pools   # computed once
    plain = SimpleNamespace(sells_good=ag.sells_good, buys_good=ag.buys_good)
    a = reopen_pairs(sc, ag, ag.n, 300, np.random.default_rng(9), st.u, st.v, st.open)
    b = reopen_pairs(sc, plain, ag.n, 300, np.random.default_rng(9), st.u, st.v, st.open)
    assert [x.tolist() for x in a] == [x.tolist() for x in b]
    assert sell[a[0]].all() and buy[a[1]].all() and (a[0] != a[1]).all()

"""Neighbourhood queries: the grid finds exactly the pairs brute force finds; compiled == twin."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from channelmarket.envs.supply_chain.space import brute_force_pairs, close_pairs, neighbour_pairs, reflect


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(0, 120), radius=st.floats(1.0, 150.0),
       w=st.floats(10.0, 400.0), h=st.floats(10.0, 400.0))
def test_grid_pairs_equal_brute_force(seed, n, radius, w, h):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 1, (n, 2)) * [w, h]
    alive = rng.random(n) < 0.85
    i, j, d = neighbour_pairs(xy, alive, radius, w, h)
    a, b = brute_force_pairs(xy, alive, radius)
    assert sorted(zip(i.tolist(), j.tolist())) == sorted(zip(a.tolist(), b.tolist()))
    np.testing.assert_allclose(d, np.linalg.norm(xy[i] - xy[j], axis=1))


def test_compiled_kernel_equals_twin():
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 500, (400, 2))
    order = np.argsort((xy[:, 0] // 50).astype(int) * 10 + (xy[:, 1] // 50).astype(int), kind="stable")
    cx = (xy[order, 0] // 50).astype(np.int64)
    cy = (xy[order, 1] // 50).astype(np.int64)
    counts = np.bincount(cx * 10 + cy, minlength=100)
    kw = dict(sx=xy[order, 0], sy=xy[order, 1], scx=cx, scy=cy, starts=np.cumsum(counts) - counts, counts=counts,
              nx=10, ny=10, radius=50.0)
    twin = close_pairs.run("twin", **kw)
    if close_pairs.compiled is None:
        return
    comp = close_pairs.run("compiled", **kw)
    for x, y in zip(twin, comp):
        np.testing.assert_allclose(x, y)


def test_walls_reflect():
    xy, v = reflect(np.array([[-2.0, 5.0], [12.0, 11.0]]), np.array([[-1.0, 0.0], [1.0, 1.0]]), 10.0, 10.0)
    np.testing.assert_allclose(xy, [[2.0, 5.0], [8.0, 9.0]])
    np.testing.assert_allclose(v, [[1.0, 0.0], [-1.0, -1.0]])

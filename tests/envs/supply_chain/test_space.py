"""Neighbourhood queries: the grid finds exactly the pairs brute force finds."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from channelmarket.envs.supply_chain.space import reflect

from .pairs_reference import brute_force_pairs, neighbour_pairs


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


def test_walls_reflect():
    xy, v = reflect(np.array([[-2.0, 5.0], [12.0, 11.0]]), np.array([[-1.0, 0.0], [1.0, 1.0]]), 10.0, 10.0)
    np.testing.assert_allclose(xy, [[2.0, 5.0], [8.0, 9.0]])
    np.testing.assert_allclose(v, [[1.0, 0.0], [-1.0, -1.0]])

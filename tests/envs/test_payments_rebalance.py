"""Rebalancing (envs/payments/rebalance.py): the compiled step equals the vectorized one bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from channelmarket.envs import compiled
from channelmarket.envs.payments import graph
from channelmarket.envs.payments.rebalance import rebalancing


@pytest.mark.skipif(not compiled.USE_NUMBA, reason="numba off: only the twin runs")
@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_compiled_rebalancing_equals_the_numpy_one_bit_for_bit(seed):
    """Random small graphs with depleted sides, triangles of tied widths, fee limits that bind
    (share and cap), sides low on both ends: balances, flows, fees paid and earned, the count."""
    rng = np.random.default_rng(seed)
    n, e = int(rng.integers(3, 25)), int(rng.integers(1, 90))
    u = rng.integers(0, n, e)
    v = (u + rng.integers(1, n, e)) % n
    cap = rng.choice([10.0, 50.0, 100.0], e)
    kw = dict(u=u, v=v, capacity=cap, balance_u=cap * rng.choice([0.0, 0.01, 0.1, 0.3, 0.5, 0.9, 1.0], e),
              usable=rng.random(e) < 0.9, fee_base=rng.uniform(0, 0.3, e) * (rng.random(e) < 0.5),
              fee_rate=rng.uniform(0, 0.01, e), n=n, below=float(rng.choice([0.05, 0.2, 0.4])),
              target=float(rng.uniform(0.3, 0.7)), max_fee_share=float(rng.choice([0.0, 0.01, 0.05])),
              fee_cap=float(rng.choice([np.inf, 0.05, 1.0])))
    graph._CACHE.clear()
    got, want = rebalancing.run("compiled", **kw), rebalancing.run("twin", **kw)
    for a, b in zip(got, want):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()
    assert got[5].dtype == np.int64 and int(got[5].sum()) == got[4]   # completed rebalances by payer (a batch's per market)

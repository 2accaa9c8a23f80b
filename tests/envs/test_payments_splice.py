"""Splicing (envs/payments/splice.py): the compiled splices equal the vectorized ones bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st

from channelmarket.envs import compiled
from channelmarket.envs.payments.splice import splices


@pytest.mark.skipif(not compiled.USE_NUMBA, reason="numba off: only the twin runs")
@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1))
@example(870325)   # regression: np.clip left a -0.0 balance where the kernel wrote 0.0
def test_compiled_splices_equal_the_numpy_ones_bit_for_bit(seed):
    """Random channels with empty, full, zero-capacity and both-sides-low/high channels (the fancy-index
    updates' last-one-wins), owners who cannot pay all their splices, and -0.0 balances."""
    rng = np.random.default_rng(seed)
    n, e = int(rng.integers(2, 30)), int(rng.integers(1, 80))
    u = rng.integers(0, n, e)
    v = (u + rng.integers(1, n, e)) % n
    cap = rng.choice([10.0, 50.0, 100.0, 0.0], e, p=[0.3, 0.3, 0.35, 0.05])
    bal = cap * rng.choice([0.0, -0.0, 0.01, 0.3, 0.5, 0.97, 1.0, rng.random()], e)
    kw = dict(u=u, v=v, capacity=cap, balance_u=bal, usable=rng.random(e) < 0.85, wallet=rng.uniform(-5, 200, n),
              fee_sink=float(rng.uniform(0, 9)), target=float(rng.uniform(0.2, 0.8)),
              fee=float(rng.choice([0.0, 0.5, 2.0])), below=float(rng.choice([0.0, 0.05, 0.2, 0.6])),
              above=float(rng.choice([1.0, 0.9, 0.7, 0.4])))
    got, want = splices.run("compiled", **kw), splices.run("twin", **kw)
    assert int(got[7].sum()) == got[5] and int(got[8].sum()) == got[6]   # splices in / out by owner
    for a, b in zip(got, want):
        if isinstance(a, np.ndarray):
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
        else:
            assert a == b and type(float(a)) is type(float(b))

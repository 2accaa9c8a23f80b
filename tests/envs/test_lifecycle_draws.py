"""The channel lifecycle reads only the reopening slots' candidate draws (rows 1-2 of its block,
reserved by `channels.lifecycle_draws`): markets step bit for bit as with the whole block drawn,
whatever the topology's reopening rule, partner channels or batch."""

from __future__ import annotations

import numpy as np
import pytest

from channelmarket import MarketCore
from channelmarket.envs import channels, compiled, streams

FIELDS = ("u", "v", "open", "capacity", "balance_u", "wallet", "fee_base", "fee_rate", "partner", "utilization")


def _run(name, kw, n_markets, drawn, monkeypatch, steps=6):
    with monkeypatch.context() as mp:
        if drawn:   # the whole block drawn with NumPy, as before the rows were reserved
            mp.setattr(streams, "compiled_stream", lambda rng: False)
        else:       # reserved however small the markets
            mp.setattr(streams, "RESERVE_MIN", 0)
        core = MarketCore(name, n_markets=n_markets, **kw) if n_markets > 1 else MarketCore(name, **kw)
        core.reset(seed=5)
        rng = np.random.default_rng(1)
        for _ in range(steps):
            core.step(rng.uniform(-1, 1, (core.n_agents, 5 if core.scenario.partner_action else 4)))
        states = [core.market_state(i) for i in range(n_markets)] if n_markets > 1 else [core.state]
        return [({f: getattr(s, f).copy() for f in FIELDS}, s.rng.bit_generator.state["state"],
                 s.rng.random()) for s in states]


@pytest.mark.skipif(not compiled.USE_NUMBA, reason="numba off: the block is drawn anyway")
@pytest.mark.parametrize("name,kw,m", [
    ("energy_small", dict(channel_open_rate=0.5, channel_close_rate=0.3), 1),   # the fused kernel
    ("energy_small", dict(channel_open_rate=0.5, channel_close_rate=0.3), 3),
    ("energy_lightning", dict(), 1),                                            # kind_aware, partners
    ("energy_lightning_scale_free", dict(channel_close_rate=0.2), 2),           # its own reopening rule
    ("energy_small", dict(channel_open_rate=0.5, partner_channel_share=0.7, channel_sizing="spend"), 2),
])
def test_reserved_candidate_rows_step_as_the_drawn_block(name, kw, m, monkeypatch):
    lazy = _run(name, kw, m, False, monkeypatch)
    drawn = _run(name, kw, m, True, monkeypatch)
    for (a, sa, ra), (b, sb, rb) in zip(lazy, drawn):
        for f in FIELDS:
            assert np.array_equal(a[f], b[f]), f
        assert sa == sb and ra == rb   # the channel generators end in the same state


def test_lifecycle_draws_leave_each_generator_after_its_block():
    gens = [np.random.default_rng(s) for s in (3, 4)]
    twins = [np.random.default_rng(s) for s in (3, 4)]
    draw, rows = channels.lifecycle_draws(gens, 5000)
    assert rows.lazy == compiled.USE_NUMBA
    blocks = [t.random((channels.LIFECYCLE_DRAWS, 5000)) for t in twins]
    assert np.array_equal(draw, np.concatenate([b[0] for b in blocks]))
    assert np.array_equal(rows.drawn(), np.concatenate([b[1:] for b in blocks], axis=1))
    for g, t in zip(gens, twins):
        assert g.bit_generator.state == t.bit_generator.state


def test_single_market_lifecycle_equals_the_drawn_block(monkeypatch):
    """`channels.lifecycle` (one market, its own generator) against `apply_lifecycle` given the
    whole block drawn: same channels, wallets, fees and generator state."""
    monkeypatch.setattr(streams, "RESERVE_MIN", 0)   # reserved however small the market
    core = MarketCore("energy_small", channel_open_rate=0.6, channel_close_rate=0.4)
    core.reset(seed=2)
    sc, st, ag = core.scenario, core.state, core.agents
    is_open = st.open & (np.arange(st.u.shape[0]) % 2 == 0)   # half the slots closed: some reopen
    a, b = np.random.default_rng(9), np.random.default_rng(9)
    got = channels.lifecycle(sc, st.u, st.v, st.capacity, st.balance_u, is_open, st.active, st.wallet, 1.0, a, ag)
    block = b.random((channels.LIFECYCLE_DRAWS, st.u.shape[0]))
    want = channels.apply_lifecycle(sc, st.u, st.v, st.capacity, st.balance_u, is_open, st.active, st.wallet,
                                    np.array([1.0]), block[0], block[1:], ag.n, np.zeros(st.u.shape[0], np.int64),
                                    (b,), ag, (ag,))
    assert got[-1].shape[0] > 0
    for x, y in zip(got[:6] + got[8:], want[:6] + want[9:]):
        assert np.array_equal(x, y)
    assert got[6] == want[6][0] and got[7] == want[7][0]
    assert a.bit_generator.state == b.bit_generator.state


@pytest.mark.skipif(not compiled.USE_NUMBA, reason="numba off: the twin runs")
@pytest.mark.parametrize("n", [2, 3, 50, 99, 10_007, 3_000_017])   # 50, 99: the reciprocal undershoots
def test_reopening_pairs_at_the_edges_of_the_pair_index(n):
    """The compiled pass's pair (quotient and remainder of the pair index by N - 1 through the
    reciprocal, corrected) is the twin's integer division, at the ends of every agent's range."""
    from channelmarket.envs import kernels

    pairs = n * (n - 1)
    rng = np.random.default_rng(n)
    q = np.unique(np.concatenate([np.arange(min(n, 50)), rng.integers(0, n, 300)]))   # first agents of pairs
    idx = (q[:, None] * (n - 1) + np.array([-1, 0, 1, n - 2])).reshape(-1)            # ends of their ranges
    idx = np.unique(np.clip(idx, 0, pairs - 1))
    r0 = np.concatenate([idx / pairs, np.nextafter(idx / pairs, 0), np.nextafter(idx / pairs, 1),
                         [0.0, 1.0 - 2.0**-53]])
    e = r0.shape[0]
    kw = dict(u=np.zeros(e, np.int32), v=np.ones(e, np.int32), capacity=np.ones(e), balance_u=np.zeros(e),
              is_open=np.zeros(e, bool), active=np.ones(n, bool), wallet=np.full(n, 1e12), draw=np.zeros(e),
              cand=np.stack([r0, rng.random(e)]), cand_stream=np.zeros((0, 4), np.uint64), close_rate=0.0,
              open_rate=0.5, fee=0.0, n=n, offset=np.zeros(e, np.int64), slot_market=np.zeros(e, np.int64), m=1,
              lo=1.0, hi=2.0, split=0.5, spend=np.zeros(0), sizing_steps=1.0, mean_cap=1.5, parts=1)
    got = kernels.lifecycle_uniform.run("compiled", **kw)
    want = kernels.lifecycle_uniform.run("twin", **kw)
    assert got[-1].shape[0] == e
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    assert (got[0] != got[1]).all()

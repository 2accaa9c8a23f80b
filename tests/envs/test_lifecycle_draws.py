"""The channel lifecycle reads only the reopening slots' candidate draws (rows 1-2 of its block,
reserved by `channels.lifecycle_draws`): markets step bit for bit as with the whole block drawn,
whatever the topology's reopening rule, partner channels or batch."""

from __future__ import annotations

import numpy as np
import pytest

from channelmarket import MarketCore
from channelmarket.envs import channels, compiled, streams

FIELDS = ("u", "v", "open", "capacity", "balance_u", "wallet", "fee_base", "fee_rate", "partner", "utilization")


def _run(name, kw, n_markets, drawn, monkeypatch, steps=8):
    with monkeypatch.context() as mp:
        if drawn:   # the whole block drawn with NumPy, as before the rows were reserved
            mp.setattr(streams, "compiled_stream", lambda rng: False)
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
    draw, rows = channels.lifecycle_draws(gens, 500)
    blocks = [t.random((channels.LIFECYCLE_DRAWS, 500)) for t in twins]
    assert np.array_equal(draw, np.concatenate([b[0] for b in blocks]))
    assert np.array_equal(rows.drawn(), np.concatenate([b[1:] for b in blocks], axis=1))
    for g, t in zip(gens, twins):
        assert g.bit_generator.state == t.bit_generator.state


def test_single_market_lifecycle_equals_the_drawn_block():
    """`channels.lifecycle` (one market, its own generator) against `apply_lifecycle` given the
    whole block drawn: same channels, wallets, fees and generator state."""
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

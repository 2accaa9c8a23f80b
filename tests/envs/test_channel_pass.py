"""The channels' one compiled pass after the payments (`kernels.channels_after_payments`, used by
`batch.batch_step` when `batch._one_channel_pass` allows it): trajectories bit for bit the same as
the separate passes (balances, lifecycle, fee draws, aftermath), for one market and a batch, with
fees on and off, spend-sized channels, agents that left, and the generators left where the
separate passes leave them."""

from __future__ import annotations

import numpy as np
import pytest

from channelmarket.envs import batch, compiled
from channelmarket.envs.core import MarketCore
from channelmarket.envs.scenario import PAYMENTS_SOUND_MARKET

needs_numba = pytest.mark.skipif(not compiled.USE_NUMBA, reason="numba off: the separate passes run")
ROUTING = {k: PAYMENTS_SOUND_MARKET[k] for k in ("max_hops", "routing_fee_base", "routing_fee_rate", "max_fee_share")}


_ONE_PASS = batch._one_channel_pass   # the real rule (the runs patch it)


def _run(make, steps, one_pass, monkeypatch, leave=None):
    orig = _ONE_PASS
    used = []
    def flag(*a):
        used.append(orig(*a) and one_pass)
        return used[-1]
    monkeypatch.setattr(batch, "_one_channel_pass", flag)
    core = make()
    core.reset(5)
    rng = np.random.default_rng(5)
    out = []
    for t in range(steps):
        if leave is not None and t == 3:
            core.remove_agents(leave)
        obs, rew, *_ = core.step(rng.uniform(-1, 1, (core.n_agents, 4)))
        res = core.last_result
        st = res.settlement
        out.append((np.ascontiguousarray(obs).tobytes(), rew.tobytes(), st.balance_u.tobytes(), st.flow.tobytes(),
                    st.wallet.tobytes(), *(x.tobytes() for x in res.liquidity)))
    state = core.batch if hasattr(core, "batch") else core.state
    gens = state.rng if isinstance(state.rng, tuple) else (state.rng,)
    fields = [np.asarray(getattr(state, k)).tobytes() for k in ("u", "v", "capacity", "balance_u", "open", "utilization", "fee_base",
                                                    "fee_rate", "wallet", "flow", "fee_sink")]
    return out, fields, [g.bit_generator.state for g in gens], [g.random() for g in gens], used


CASES = {
    "one market, routing fees": lambda: MarketCore("energy_default", episode_steps=40, **ROUTING),
    "one market, no fees, spend-sized": lambda: MarketCore("energy_default", episode_steps=40, channel_sizing="spend",
                                                           channel_close_rate=0.2, channel_open_rate=0.3),
    "three markets, routing fees": lambda: MarketCore("energy_small", n_markets=3, episode_steps=40, **ROUTING,
                                                      channel_close_rate=0.15, channel_open_rate=0.4),
}


@needs_numba
@pytest.mark.parametrize("case", list(CASES))
def test_one_channel_pass_is_the_separate_passes_bit_for_bit(case, monkeypatch):
    leave = [1, 4, 7] if "three" in case else None
    a = _run(CASES[case], 12, True, monkeypatch, leave)
    b = _run(CASES[case], 12, False, monkeypatch, leave)
    assert all(a[4]) and not any(b[4])   # the one pass ran every step in a, never in b
    for x, y in zip(a[0], b[0]):
        assert x == y
    assert a[1] == b[1] and a[2] == b[2] and a[3] == b[3]


@needs_numba
def test_agents_that_left_close_their_channels_in_the_one_pass(monkeypatch):
    a = _run(CASES["one market, routing fees"], 8, True, monkeypatch, leave=[0, 2, 3, 9])
    b = _run(CASES["one market, routing fees"], 8, False, monkeypatch, leave=[0, 2, 3, 9])
    assert a[0] == b[0] and a[1] == b[1] and a[2] == b[2]


def test_the_one_pass_is_off_where_it_does_not_apply():
    base = MarketCore("energy_default", episode_steps=4, **ROUTING).scenario
    assert batch._one_channel_pass(base, 1, 600) == compiled.USE_NUMBA
    assert not batch._one_channel_pass(base, 2, 600)   # several goods: their trades move balances first
    for over in (dict(partner_action=True), dict(partner_channel_share=0.3), dict(topology="scale_free"),
                 dict(rebalance_below=0.2)):
        sc = MarketCore("energy_default", episode_steps=4, **{**ROUTING, **over}).scenario
        assert not batch._one_channel_pass(sc, 1, 600), over


@needs_numba
def test_no_live_generator_state_falls_back_to_the_separate_passes(monkeypatch):
    # generators the pass cannot draw from (`streams.live_states` None): the balances after the payments
    # computed at once, then the separate passes
    b = _run(CASES["one market, routing fees"], 6, False, monkeypatch)
    monkeypatch.setattr(batch.streams, "live_states", lambda rngs: None)
    a = _run(CASES["one market, routing fees"], 6, True, monkeypatch)
    assert all(a[4])
    assert a[0] == b[0] and a[1] == b[1] and a[2] == b[2]

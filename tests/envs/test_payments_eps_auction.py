"""The ε-auction over routes: with `max_hops` > 1 buyers' widest routed candidates join the
channel pairs, routed trades walk from the buyer to the seller over open channels and pay
HTLC-style; with direct channels only nothing changes."""

from __future__ import annotations

import numpy as np

from channelmarket import MarketCore
from channelmarket.envs.scenario import PAYMENTS_SOUND_MARKET
from channelmarket.envs.trades import ROUTED

ROUTING = {k: PAYMENTS_SOUND_MARKET[k] for k in ("max_hops", "routing_fee_base", "routing_fee_rate", "max_fee_share")}


def walk(route, buyer, u, v):
    """The node a route from `buyer` ends at (AssertionError if a hop does not touch the node)."""
    node = buyer
    for ch in route[route >= 0]:
        assert node in (u[ch], v[ch])
        node = v[ch] if u[ch] == node else u[ch]
    return node


def test_eps_auction_trades_over_routes_and_conserves_money():
    core = MarketCore("energy_default", mechanism="eps_auction", auction_pricing="auction", episode_steps=24,
                      start_hour=8.0, **ROUTING)
    core.reset(seed=4)
    money = core.money_total()
    rng = np.random.default_rng(4)
    routed = paid = 0
    while not core.done:
        before = core.state
        _, _, _, _, info = core.step(rng.uniform(-1, 1, (core.n_agents, 4)))
        tr = core.last_result.trades
        r = tr.channel == ROUTED
        assert tr.route is not None and tr.route.shape == (tr.channel.shape[0], 3)
        assert tr.unrouted is not None
        for t in np.flatnonzero(r):
            hops = int((tr.route[t] >= 0).sum())
            assert 2 <= hops <= 3
            assert before.open[tr.route[t][tr.route[t] >= 0]].all()
            assert walk(tr.route[t], tr.buyer[t], before.u, before.v) == tr.seller[t]
        direct = np.flatnonzero(~r)
        np.testing.assert_array_equal(tr.route[direct, 0], tr.channel[direct])
        routed += int(r.sum())
        paid += info["summary"]["routed_payments"]
    assert routed > 0 and paid > 0
    np.testing.assert_allclose(core.money_total(), money, rtol=1e-9)


def test_eps_auction_with_direct_channels_only_has_no_routes():
    core = MarketCore("energy_default", mechanism="eps_auction", episode_steps=6, start_hour=8.0)
    core.reset(seed=4)
    rng = np.random.default_rng(4)
    while not core.done:
        core.step(rng.uniform(-1, 1, (core.n_agents, 4)))
        tr = core.last_result.trades
        assert tr.route is None and not (tr.channel == ROUTED).any()

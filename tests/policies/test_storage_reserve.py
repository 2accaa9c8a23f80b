"""The eps-auction baseline's storage reserve (issue 10): a store asks at least the cost of what
it holds (tracked cost basis), not the feed-in tariff, and stops losing money."""

from __future__ import annotations

import numpy as np
import pytest

from channelmarket import MarketCore
from channelmarket.policies.auction_baseline import EpsAuctionBaseline
from channelmarket.policies.rollout import run_episode


def _store_profit(reserve: str, seed: int, mechanism: str) -> float:
    core = MarketCore("energy_small", mechanism=mechanism, n_storage=4, episode_steps=24)
    prof = np.zeros(core.n_agents)

    def cb(c, prev):
        prof[:] += c.last_result.settlement.breakdown[:, 0]

    run_episode(core, EpsAuctionBaseline(storage_reserve=reserve), seed=seed, callback=cb)
    return float(prof[core.agents.is_store].mean())


def test_cost_basis_follows_purchases_and_sales():
    core = MarketCore("energy_small", mechanism="eps_auction")
    pol = EpsAuctionBaseline()
    core.reset(seed=2)
    pol.bind(core, np.arange(core.n_agents), seed=0)
    st = core.agents.is_store
    base = core.scenario.base_price
    assert pol.stored_cost[st] == pytest.approx(core.state.soc[st] * base)
    for _ in range(core.scenario.episode_steps):
        before_cost, before_soc = pol.stored_cost.copy(), core.state.soc.copy()
        core.step(pol.act(core.observe()))
        pol.update(core)
        tr = pol.view.my_trades()
        paid_in = np.bincount(tr.buyer, weights=tr.paid, minlength=core.n_agents)
        sold = np.bincount(tr.seller, weights=tr.paid_qty, minlength=core.n_agents)
        eff = core.agents.efficiency
        with np.errstate(divide="ignore", invalid="ignore"):
            avg = np.where(before_soc > 1e-12, before_cost / before_soc, 0.0)
        want = np.where(core.state.soc > 1e-12, np.maximum(before_cost + paid_in - avg * sold / eff, 0.0), 0.0)
        assert pol.stored_cost[st] == pytest.approx(want[st], rel=1e-9, abs=1e-9)
    assert (pol.reserves()[st] >= core.agents.reserve[st]).all()


def test_bad_storage_reserve_is_named():
    with pytest.raises(ValueError, match="storage_reserve = 'x'"):
        EpsAuctionBaseline(storage_reserve="x")


@pytest.mark.parametrize("mechanism", ["eps_auction", "bilateral"])
def test_cost_basis_reserve_earns_more_than_the_feed_in_reserve(mechanism):
    seeds = range(3)
    old = np.mean([_store_profit("feed_in", s, mechanism) for s in seeds])
    new = np.mean([_store_profit("cost_basis", s, mechanism) for s in seeds])
    assert new > old
    assert new > 0

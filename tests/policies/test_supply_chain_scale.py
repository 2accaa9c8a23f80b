"""The energy baselines on the supply chain: money parameters scaled by the view's `price_unit`,
producers (sell and buy in one row) answered on both sides. Energy behaviour is unchanged (the
fingerprint script /work/notes/sc_policy_golden.py; here: no energy agent is a dual-role producer
and the energy view's unit is exactly 1)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channelmarket.envs.core import MarketCore
from channelmarket.envs.offers import BID, CONCESSION
from channelmarket.envs.supply_chain import SupplyChainCore
from channelmarket.eval.supply_chain.policies import run_policies
from channelmarket.policies.registry import make
from channelmarket.policies.risk_factor import CANNOT_AFFORD, NOT_INTERESTING
from channelmarket.policies.simple import dual_role, reach_bid

SMALL = "supply_chain_small"


@pytest.mark.parametrize("name", ["energy_small", "energy_ev", "energy_rec"])
def test_energy_agents_are_never_dual_role_and_the_unit_is_one(name):
    core = MarketCore(name)
    core.reset(seed=0)
    view = core.view(np.arange(core.n_agents))
    assert view.price_unit == 1.0
    assert not dual_role(view, np.arange(core.n_agents)).any()


def test_supply_chain_unit_is_the_energy_tariff_window():
    core = SupplyChainCore(SMALL)
    core.reset(seed=0)
    assert core.view(np.arange(3)).price_unit == pytest.approx(1.0 / 120.0)


@settings(max_examples=200, deadline=None)
@given(st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(0.1, 10.0))
def test_reach_bid_ends_the_concession_at_the_reach(reach_share, share, limit):
    reach = reach_share * limit
    b = float(reach_bid(reach, share, limit))
    assert 0.0 <= b <= reach + 1e-12
    end = b + share * (limit - b)
    if reach >= share * limit:
        assert end == pytest.approx(reach, rel=1e-9, abs=1e-9)
    else:   # cannot open under 0: it ends at share x limit, the nearest it can
        assert b == 0.0 and end == pytest.approx(share * limit)


def test_risk_factor_producer_holding_product_still_bids_for_its_input():
    """Regression: a producer with product to sell used the seller's concession for its purchases
    with a bid opening at 0, so it accepted nothing (thr 0) and starved the loop (2 of 14 alive)."""
    core = SupplyChainCore(SMALL)
    obs = core.reset(seed=0)
    pol = make("risk_factor")
    idx = np.arange(core.n_agents)
    pol.bind(core, idx, seed=0)
    seen = 0
    for _ in range(20):
        a = pol.act(obs)
        dual = dual_role(pol.view, idx)
        takes = dual & (pol.decision != NOT_INTERESTING) & (pol.decision != CANNOT_AFFORD)
        if takes.any():
            share = 0.5 * (a[takes, CONCESSION] + 1.0)
            ref = pol.view.ref_price[pol.view.buys_good[takes]]
            bid = np.clip(ref + a[takes, BID], 0.0, 1.0)
            reach = bid + share * (1.0 - bid)
            assert np.all(reach >= np.minimum(pol.threshold[takes], 1.0) - 1e-9)
            seen += int(takes.sum())
        obs, *_ = core.step(a, core.state.alive.copy())
        pol.update(core)
    assert seen > 0


def test_risk_factor_keeps_the_loop_alive():
    """The MASER negotiator in the MASER economy: most agents alive after 60 days (was 2 of 14)."""
    row = run_policies(SMALL, "risk_factor", seed=0, days=60)
    assert row["alive"] >= 12 and row["trades"] > 200


def test_eps_auction_trades_with_its_defaults():
    """Its 2 EUR/MWh margin is 2/120 of a cap here (it was 2 caps: no surplus, 0 trades), and one
    policy object coordinates the whole population (a string spec for every kind)."""
    row = run_policies(SMALL, "eps_auction", seed=0, days=60)
    assert row["trades_policy"] > 100 and row["alive"] >= 8


def test_eps_auction_producers_take_the_open_market_beside_builtin_agents():
    """Regression: eps_auction Farmers or Millers (matched only with partners it controls) offered nothing and
    bid 0 outside the assignment, so corn never reached the built-in Millers and they starved (all 14
    agents dead by day ~55); now their unmatched product goes to the market, as a grid sale would."""
    for kind in ("farmer", "miller"):
        row = run_policies(SMALL, {kind: "eps_auction"}, seed=0, days=80)
        assert row["alive"] >= 10 and row["trades_policy"] > 30, (kind, row)


def test_views_say_whether_a_grid_is_there():
    energy = MarketCore("energy_small")
    energy.reset(seed=0)
    chain = SupplyChainCore(SMALL)
    chain.reset(seed=0)
    assert energy.view(np.arange(2)).grid and not chain.view(np.arange(2)).grid

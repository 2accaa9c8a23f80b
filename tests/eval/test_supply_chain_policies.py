"""The energy market's policies act on supply_chain_v0 unchanged, through `SupplyChainCore.view`."""

from __future__ import annotations

import numpy as np
import pytest

from channelmarket.envs.obs_schema import ObsSchema
from channelmarket.envs.supply_chain import SupplyChainCore
from channelmarket.envs.supply_chain.core import N_ACTIONS, OBS_HIGH, OBS_LOW
from channelmarket.envs.view import MarketView
from channelmarket.eval.supply_chain.policies import compare, run_policies
from channelmarket.policies.auction_baseline import EpsAuctionBaseline
from channelmarket.policies.risk_factor import RiskFactor

SMALL = "supply_chain_small"


def test_view_declares_the_market_view_fields_read_only_and_private_elsewhere():
    core = SupplyChainCore(SMALL)
    core.reset(seed=0)
    for _ in range(5):
        core.step()
    mine = np.array([0, 5, 9])
    view = core.view(mine)
    assert isinstance(view, MarketView)
    n, e = core.n_agents, core.state.partner.size
    assert view.u.shape == view.v.shape == view.open.shape == (e,)
    assert view.ref_price.shape == (4,) and np.all((view.ref_price > 0) & (view.ref_price <= 1))
    assert view.scenario.retail_tariff == 1.0 and view.scenario.feed_in_tariff == 0.0
    res = view.reserve
    assert np.isfinite(res[mine]).all() and np.isnan(np.delete(res, mine)).all()
    sellable, needed = view.tradable()
    assert np.isnan(np.delete(sellable, mine)).all() and (needed[mine] >= 0).all()
    bal = view.balance_u
    assert np.isnan(bal[~(view.controlled[view.u] | view.controlled[view.v])]).all()
    with pytest.raises(ValueError):
        view.kind[0] = 1
    with pytest.raises(AttributeError, match="declared view"):
        view.money


def test_learned_seller_ask_follows_the_energy_convention():
    """Regression: a learned ask opens at ref + a x cap, never under its cost (it was a margin share
    of the room from cost to cap, then pressured)."""
    core = SupplyChainCore(SMALL)
    core.reset(seed=0)
    farmers = np.flatnonzero(core.kind == 0)
    mask = np.zeros(core.n_agents, bool)
    mask[farmers] = True
    a = np.zeros((core.n_agents, 4))
    a[:, 0], a[:, 2], a[:, 3] = 0.1, 1.0, -1.0    # ask ref + 0.1 cap, offer all, no concession
    seen = 0
    for _ in range(40):
        ref, cost = core.mean_price(), core.state.out_cost[farmers].copy()
        core.step(a, mask)
        corn = core.last_offers.good == 0
        want = np.clip(ref[0] + 0.1 * core._cap[0], cost, core._cap[0])
        for p in core.last_offers.price[corn]:
            assert np.isclose(want, p).any()
        seen += int(corn.sum())
    assert seen > 0


def test_four_column_actions_leave_movement_to_the_rule():
    mask = np.ones(SupplyChainCore(SMALL).n_agents, bool)
    a, b = SupplyChainCore(SMALL), SupplyChainCore(SMALL)
    a.reset(seed=1)
    b.reset(seed=1)
    four = np.zeros((a.n_agents, 4))
    a.step(four, mask)
    b.step(np.concatenate([four, np.full((a.n_agents, 1), -1.0)], axis=1), mask)
    assert a.state.path.sum() > 0 and b.state.path.sum() == 0
    with pytest.raises(ValueError, match="shape"):
        a.step(np.zeros((a.n_agents, 3)), mask)


@pytest.mark.parametrize("spec", ["truthful", "fixed_markup", "zero_intelligence", "random", "risk_factor"])
def test_each_baseline_runs_an_episode_with_money_and_goods_conserved(spec):
    row = run_policies(SMALL, spec, seed=0, days=40)
    assert row["days"] == 40 or row["alive"] == 0
    assert abs(row["money_drift"]) < 1e-6 and row["goods_imbalance"] < 1e-6
    assert row["trades_policy"] > 0


def test_risk_factor_and_eps_auction_beside_the_builtin_agents():
    row = run_policies(SMALL, {"miller": RiskFactor(), "baker": EpsAuctionBaseline(margin=0.05)}, seed=2, days=40)
    assert abs(row["money_drift"]) < 1e-6 and row["goods_imbalance"] < 1e-6
    assert row["trades_policy"] > 0
    with pytest.raises(ValueError, match="kind 'nobody'"):
        run_policies(SMALL, {"nobody": "truthful"}, days=2)


def test_compare_rows_per_policy_and_seed():
    rows = compare(SMALL, ["truthful", "random"], seeds=[0, 1], days=10)
    assert [(r["policy"], r["seed"]) for r in rows] == [("truthful", 0), ("truthful", 1), ("random", 0), ("random", 1)]


def test_a_learned_model_acts_on_the_supply_chain():
    gym = pytest.importorskip("gymnasium")
    sb3 = pytest.importorskip("stable_baselines3")
    from channelmarket.policies.learned import LearnedPolicy

    class Stub(gym.Env):
        observation_space = gym.spaces.Box(OBS_LOW, OBS_HIGH, dtype=np.float32)
        action_space = gym.spaces.Box(-1.0, 1.0, (N_ACTIONS,), dtype=np.float32)

    core = SupplyChainCore(SMALL)
    model = sb3.PPO("MlpPolicy", Stub(), n_steps=8, batch_size=8, seed=0, device="cpu")
    policy = LearnedPolicy.from_model(model, schema=core.obs_schema, name="sc_model")
    row = run_policies(SMALL, {"baker": policy, "seller": policy}, seed=0, days=20)
    assert abs(row["money_drift"]) < 1e-6 and row["goods_imbalance"] < 1e-6
    # a model trained on another observation is refused by name
    energy_like = LearnedPolicy.from_model(model, schema=ObsSchema(("reserve",) + core.obs_schema.columns[1:]))
    core.reset(seed=0)
    with pytest.raises(ValueError, match="reserve|kind_farmer"):
        energy_like.bind(core, np.arange(3))


def test_model_width_fits_the_supply_chain_not_the_energy_partner_column():
    """Regression: a 5-wide supply-chain model (move) was refused as an energy open_partner model."""
    from channelmarket.policies.widths import check_width
    core = SupplyChainCore(SMALL)
    check_width(5, core), check_width(4, core)            # full width (move), or base: the movement rule
    with pytest.raises(ValueError, match=r"6 action columns.*takes 5 \(ask, bid, quantity, concession, move\)"):
        check_width(6, core)

"""Electric-vehicle fleets (envs/kinds/ev.py): schedule, target charge at departure, energy and
money conservation, vehicle-to-grid, the baselines and the PettingZoo API on `energy_ev`."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channelmarket import channel_market_v0
from channelmarket.envs import BREAKDOWN_FIELDS, PRESETS, MarketCore, Scenario
from channelmarket.envs.kinds.ev import DEPART, RETURN, TARGET, TRIP, away
from channelmarket.envs.state import Kind
from channelmarket.policies import make, run_episode

COL = {k: i for i, k in enumerate(BREAKDOWN_FIELDS)}
HOURLY = Scenario(name="ev_hourly", n_solar=3, n_wind=2, n_storage=1, n_residential=3, n_industrial=2, n_ev=5,
                  step_minutes=60.0, episode_steps=48)


def _ev(core):
    return np.flatnonzero(core.agents.kind == Kind.EV)


def test_preset_has_fleets_and_parameters_in_range():
    sc = PRESETS["energy_ev"]
    assert sc.n_ev > 0 and Scenario.from_yaml(sc.to_yaml()) == sc
    core = MarketCore(sc)
    core.reset(seed=0)
    ag, ev = core.agents, _ev(core)
    dep, ret = ag.extra_column(DEPART)[ev], ag.extra_column(RETURN)[ev]
    assert ((dep >= sc.ev_departure[0]) & (dep <= sc.ev_departure[1])).all()
    assert ((ret >= sc.ev_return[0]) & (ret <= sc.ev_return[1])).all()
    target, trip = ag.extra_column(TARGET)[ev], ag.extra_column(TRIP)[ev]
    assert (trip <= target).all() and (target <= ag.capacity[ev]).all()
    assert (ag.extra[ag.kind != Kind.EV] == 0).all()


@pytest.mark.parametrize("seed", [0, 1])
def test_schedule_target_and_energy_balance(seed, rollout):
    sc = HOURLY
    departures = 0
    for core, prev, res in rollout(sc, seed):
        ag, ev = core.agents, _ev(core)
        b = res.settlement.breakdown
        gone = away(sc, ag, slice(0, ag.n), prev.t)[ev]
        # away: nothing to sell, nothing needed, nothing traded
        assert (res.sellable[ev][gone] == 0).all() and (res.needed[ev][gone] == 0).all()
        assert (b[ev][gone][:, [COL["sold"], COL["bought"]]] == 0).all()
        # parked: sells only above its target charge
        target = ag.extra_column(TARGET)[ev]
        above = np.maximum(prev.soc[ev] - target, 0.0) * ag.efficiency[ev]
        assert (res.sellable[ev] <= above + 1e-12).all()
        leaving = ~gone & away(sc, ag, slice(0, ag.n), prev.t + 1)[ev]
        departures += int(leaving.sum())
        eff, trip = ag.efficiency[ev], ag.extra_column(TRIP)[ev]
        grid_q = b[ev, COL["grid_bought"]]
        assert (grid_q[~leaving] == 0).all(), "the grid tops up only at departure"
        after_trades = np.clip(prev.soc[ev] + eff * b[ev, COL["bought"]] - b[ev, COL["sold"]] / eff, 0, ag.capacity[ev])
        # leaving fleets hold at least their target before the trip (topped up at retail when short)
        short = np.maximum(target - after_trades, 0.0)
        np.testing.assert_allclose(grid_q[leaving], (short / eff)[leaving], rtol=1e-12, atol=1e-12)
        want = np.where(leaving, after_trades + short - trip, after_trades)
        np.testing.assert_allclose(core.state.soc[ev], want, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(b[ev, COL["cost"]][leaving & (b[ev, COL["bought"]] == 0)],
                                   (grid_q * sc.retail_tariff)[leaving & (b[ev, COL["bought"]] == 0)], rtol=1e-12)
    assert departures >= sc.n_ev  # every fleet left at least once in two days


@settings(max_examples=8, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**31 - 1), mechanism=st.sampled_from(["bilateral", "double_auction"]))
def test_money_is_conserved_with_fleets(seed, mechanism, rollout):
    sc = HOURLY.replace(mechanism=mechanism, episode_steps=30)
    m0 = None
    for core, prev, res in rollout(sc, seed):
        if m0 is None:
            m0 = prev.money_total()
        assert abs(core.money_total() - m0) <= 1e-9 * max(1.0, abs(m0))


def test_vehicle_to_grid_and_end_value(rollout):
    sold = 0.0
    for core, prev, res in rollout(HOURLY, 3):
        sold += res.settlement.breakdown[_ev(core), COL["sold"]].sum()
    assert sold > 0, "parked fleets above their target sell back"
    b = res.settlement.breakdown
    ev = _ev(core)
    want = (core.state.soc[ev] - core.agents.initial_soc[ev]) * core.agents.efficiency[ev] * HOURLY.base_price
    np.testing.assert_allclose(b[ev, COL["storage_value"]], want)


@pytest.mark.parametrize("policy", ["truthful", "risk_factor", "zero_intelligence", "fixed_markup", "mean_field"])
def test_baselines_charge_fleets_before_they_leave(policy, rollout):
    """The baselines read the fleet's role and tradable quantities (and its `advise` hook): they
    buy below the target, so fewer departures need the retail top-up than with doing nothing."""
    def topups(pol):
        total = 0.0
        for core, prev, res in rollout(HOURLY, 5, pol):
            total += res.settlement.breakdown[_ev(core), COL["grid_bought"]].sum()
        return total

    idle = MarketCore(HOURLY)
    idle.reset(seed=5)
    act = np.zeros((idle.n_agents, 4))   # quantity 0: stores and fleets offer and want nothing
    nothing = 0.0
    while not idle.done:
        idle.step(act)
        nothing += idle.last_result.settlement.breakdown[_ev(idle), COL["grid_bought"]].sum()
    assert topups(policy) < nothing


def test_run_episode_by_kind_name():
    res = run_episode("energy_ev", {"ev": make("truthful"), "all": make("risk_factor")}, seed=0)
    assert "ev" in res.by_kind


@pytest.mark.filterwarnings(r"ignore:reset options \['options'\] are unknown and ignored:UserWarning")  # PettingZoo's test passes reset(options={"options": 1})
def test_pettingzoo_parallel_api_on_energy_ev():
    from pettingzoo.test import parallel_api_test

    env = channel_market_v0.parallel_env(scenario="energy_ev", episode_steps=12)
    parallel_api_test(env, num_cycles=12)
    assert any(a.startswith("ev_") for a in env.possible_agents)
    assert env.observation_space(env.possible_agents[0]).shape == (31,)

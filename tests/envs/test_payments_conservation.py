"""Money and energy are conserved by the payment layer under any fault schedule (hypothesis):
random payment scenarios (routes, fees, rebalancing, splicing, background payments, fault
rates), random faults by API between steps, random actions, long-ish episodes on small markets."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channelmarket import MarketCore
from channelmarket.envs.breakdown import BREAKDOWN_INDEX as COL

TOL = 1e-9

payment_fields = st.fixed_dictionaries({
    "max_hops": st.integers(1, 4),
    "routing_fee_base": st.sampled_from([(0.0, 0.0), (0.0, 0.01), (0.05, 0.5)]),
    "routing_fee_rate": st.sampled_from([(0.0, 0.0), (0.0001, 0.001), (0.01, 0.05)]),
    "max_fee_share": st.sampled_from([0.0, 0.01, 0.2]),
    "rebalance_below": st.sampled_from([0.0, 0.2, 0.45]),
    "splice_below": st.sampled_from([0.0, 0.05, 0.3]),
    "splice_above": st.sampled_from([1.0, 0.9, 0.6]),
    "background_payment_rate": st.sampled_from([0.0, 0.3]),
    "agent_fault_rate": st.sampled_from([0.0, 0.02, 0.1]),
    "channel_fault_rate": st.sampled_from([0.0, 0.05]),
    "mechanism": st.sampled_from(["bilateral", "bilateral", "eps_auction", "double_auction"]),
})


def check_step(core, prev, money0, info, w):
    new, res = core.state, core.last_result
    bd = res.settlement.breakdown
    m = new.money_total()
    assert abs(m - money0) <= TOL * abs(money0), f"{w}: money {m!r} != {money0!r}"
    assert np.isfinite(bd).all() and np.isfinite(new.wallet).all()
    assert (new.balance_u >= 0).all() and (new.balance_u <= new.capacity).all(), f"{w}: balance outside [0, cap]"
    assert (new.capacity > 0).all()
    sold, bought = bd[:, COL["sold"]], bd[:, COL["bought"]]
    assert abs(sold.sum() - bought.sum()) <= TOL * max(1.0, sold.sum()), f"{w}: sold != bought"
    gen = core.agents.is_generator
    con = core.agents.is_consumer
    np.testing.assert_allclose(res.sellable[gen], (sold + bd[:, COL["grid_sold"]] + bd[:, COL["curtailed"]])[gen],
                               rtol=TOL, atol=TOL, err_msg=f"{w}: generation = sold + grid + curtailed")
    np.testing.assert_allclose(res.needed[con], (bought + bd[:, COL["grid_bought"]] + bd[:, COL["unserved"]])[con],
                               rtol=TOL, atol=TOL, err_msg=f"{w}: demand = bought + grid + unserved")
    assert (bd[:, COL["routing_fees"]] >= 0).all()
    stl = res.settlement
    assert (stl.paid[stl.failed] == 0).all(), f"{w}: a failed payment moved money"
    # agents that left have no open channel and observe their termination
    gone = ~new.active
    assert not new.open[gone[new.u] | gone[new.v]].any(), f"{w}: a channel of a failed agent is open"
    s = info["summary"]
    assert all(np.isfinite(v) for k, v in s.items() if not isinstance(v, str)), s
    if core.scenario.background_payment_rate == 0 and core.scenario.rebalance_below == 0:
        # every fee an intermediary earns was paid by a buyer
        np.testing.assert_allclose(bd[:, COL["routing_fees"]].sum(), s["fees_paid"], rtol=1e-9, atol=1e-12)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fields=payment_fields, seed=st.integers(0, 2**16), steps=st.integers(10, 40),
       api_faults=st.lists(st.tuples(st.integers(0, 39), st.booleans(), st.integers(0, 10_000), st.booleans()),
                           max_size=6))
def test_money_and_energy_are_conserved_under_random_faults(fields, seed, steps, api_faults):
    core = MarketCore("energy_small", episode_steps=steps, **fields)
    core.reset(seed=seed)
    money0 = core.money_total()
    rng = np.random.default_rng(seed)
    for t in range(steps):
        for when, agent_fault, which, close_now in api_faults:
            if when == t:
                if agent_fault:
                    core.remove_agents([which % core.n_agents], close_channels=close_now)
                else:
                    core.fail_channels([which % core.state.u.shape[0]])
                assert abs(core.money_total() - money0) <= TOL * abs(money0)
        prev = core.state
        acts = rng.uniform(-1, 1, (core.n_agents, 4))
        acts[rng.random(acts.shape) < 0.2] = rng.choice([-1.0, 1.0])
        obs, rewards, term, trunc, info = core.step(acts)
        check_step(core, prev, money0, info, f"t={t} {fields}")
        assert (term == ~core.state.active).all()
        assert (obs[~core.state.active] == 0).all()


def test_a_long_episode_with_every_payment_feature_conserves_money():
    core = MarketCore("energy_default", episode_steps=96, max_hops=3, routing_fee_base=(0.0, 0.01),
                      routing_fee_rate=(0.0001, 0.001), max_fee_share=0.02, rebalance_below=0.2, splice_below=0.05,
                      splice_above=0.95, background_payment_rate=0.1, agent_fault_rate=0.002, channel_fault_rate=0.01)
    core.reset(seed=7)
    money0 = core.money_total()
    rng = np.random.default_rng(7)
    totals = {}
    while not core.done:
        prev = core.state
        _, _, _, _, info = core.step(rng.uniform(-1, 1, (core.n_agents, 4)))
        check_step(core, prev, money0, info, f"t={prev.t}")
        for k in ("routed_payments", "rebalances", "splices", "background_payments", "channel_faults"):
            totals[k] = totals.get(k, 0) + info["summary"][k]
    assert all(v > 0 for v in totals.values()), totals


def test_the_sound_lightning_market_conserves_money_under_faults_and_background_payments():
    core = MarketCore("energy_lightning", episode_steps=32, background_payment_rate=0.1, agent_fault_rate=0.01,
                      channel_fault_rate=0.02, splice_above=0.95)
    core.reset(seed=11)
    money0 = core.money_total()
    rng = np.random.default_rng(11)
    routed = 0
    while not core.done:
        prev = core.state
        if prev.t == 10:
            core.remove_agents([3, 40], close_channels=True)
            core.fail_channels(np.flatnonzero(core.state.open)[:5])
        _, _, _, _, info = core.step(rng.uniform(-1, 1, (core.n_agents, 4)))
        check_step(core, prev, money0, info, f"t={prev.t}")
        routed += info["summary"]["routed_payments"]
    assert routed > 0

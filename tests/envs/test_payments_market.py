"""The payment layer in the market: defaults unchanged, routed trades, fees in the profit, faults by
API and by rate, PettingZoo terminations, scenario fields, state dicts."""

from __future__ import annotations

import numpy as np
import pytest

from channelmarket import MarketCore, channel_market_v0
from channelmarket.envs.breakdown import BREAKDOWN_INDEX as COL
from channelmarket.envs.scenario import PAYMENTS_SOUND_MARKET, Scenario, get_scenario
from channelmarket.envs.trades import ROUTED

ROUTING = dict(PAYMENTS_SOUND_MARKET, routing_fee_base=(0.0, 0.001))


def run(core, seed=0, steps=None):
    rng = np.random.default_rng(seed)
    out = []
    while not core.done and (steps is None or len(out) < steps):
        out.append(core.step(rng.uniform(-1, 1, (core.n_agents, 4))))
    return out


def test_defaults_leave_the_payment_layer_off_and_report_its_keys():
    sc = get_scenario("energy_default")
    assert not sc.payments_on and not sc.routing_fees_on and sc.max_hops == 1
    core = MarketCore("energy_small")
    obs = core.reset(seed=0)
    assert not core.state.fee_base.any() and not core.state.fee_rate.any()
    s0 = core.summary()
    (_, _, _, _, info), = run(core, steps=1)
    s = info["summary"]
    assert set(s0) == set(s)
    assert s["routed_payments"] == 0 and s["routing_fees"] == 0.0
    assert s["failed_insufficient_balance"] == s["failed_payments"]
    assert not core.breakdown()["routing_fees"].any()


def test_routing_matches_buyers_with_sellers_beyond_their_channels_and_pays_intermediaries():
    core = MarketCore("energy_default", episode_steps=24, start_hour=8.0, **ROUTING)
    core.reset(seed=3)
    routed = earned = 0
    rng = np.random.default_rng(3)
    while not core.done:
        obs, rewards, term, trunc, info = core.step(rng.uniform(-1, 1, (core.n_agents, 4)))
        res = core.last_result
        tr, stl, bd = res.trades, res.settlement, res.settlement.breakdown
        r = tr.channel == ROUTED
        if r.any():
            hops = (tr.route[r] >= 0).sum(axis=1)
            assert ((hops >= 2) & (hops <= 3)).all()
        routed += info["summary"]["routed_payments"]
        earned += bd[:, COL["routing_fees"]].sum()
        # profit = revenue - cost - marginal cost x sold + value served + storage value + routing fees
        ag = core.agents
        value = np.where(ag.is_consumer, ag.limit * (bd[:, COL["bought"]] + bd[:, COL["grid_bought"]]), 0.0)
        want = (bd[:, COL["revenue"]] - bd[:, COL["cost"]]
                - ag.marginal_cost * (bd[:, COL["sold"]] + bd[:, COL["grid_sold"]]) + value
                + bd[:, COL["storage_value"]] + bd[:, COL["routing_fees"]])
        np.testing.assert_allclose(bd[:, COL["profit"]], want, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(rewards, bd[:, COL["profit"]])
    assert routed > 0 and earned > 0


def test_remove_agents_can_force_close_their_channels_now():
    core = MarketCore("energy_small")
    core.reset(seed=1)
    m0 = core.money_total()
    st = core.state
    mine = st.open & ((st.u == 2) | (st.v == 2))
    assert mine.any()
    core.remove_agents([2], close_channels=True)
    assert not core.state.open[mine].any() and not core.state.active[2]
    assert core.money_total() == pytest.approx(m0, rel=1e-12)
    obs, rewards, term, trunc, info = core.step(np.zeros((core.n_agents, 4)))
    assert term[2] and rewards[2] == 0.0 and (obs[2] == 0).all()
    with pytest.raises(TypeError, match="close_channels"):
        core.remove_agents([1], close_channels="yes")


def test_fail_channels_closes_them_and_names_a_bad_slot():
    core = MarketCore("energy_small")
    core.reset(seed=1)
    m0, fees0 = core.money_total(), core.state.fee_sink
    slots = np.flatnonzero(core.state.open)[:3]
    core.fail_channels(slots)
    assert not core.state.open[slots].any()
    assert core.state.fee_sink == pytest.approx(fees0 + 3 * core.scenario.onchain_fee)
    assert core.money_total() == pytest.approx(m0, rel=1e-12)
    e = core.state.u.shape[0]
    with pytest.raises(ValueError, match=f"channel slot {e} out of range"):
        core.fail_channels([e])
    with pytest.raises(TypeError, match="channel slots"):
        core.fail_channels([0.5])


def test_agents_failing_at_a_rate_are_terminated_in_pettingzoo_and_the_market_goes_on():
    env = channel_market_v0.parallel_env(scenario="energy_small", agent_fault_rate=0.15, episode_steps=24)
    env.reset(seed=0)
    gone = set()
    steps = 0
    while env.agents:
        actions = {a: env.action_space(a).sample() for a in env.agents}
        obs, rewards, term, trunc, infos = env.step(actions)
        steps += 1
        for a, done in term.items():
            if done:
                gone.add(a)
                assert a not in env.agents
        assert not gone & set(env.agents)
    assert gone and steps >= 2
    core = env.unwrapped.core
    assert core.summary()["agent_faults"] >= 0


def test_faults_release_payments_in_flight():
    core = MarketCore("energy_default", episode_steps=48, start_hour=8.0, agent_fault_rate=0.05,
                      channel_fault_rate=0.05, **ROUTING)
    core.reset(seed=2)
    released = faults = 0
    for *_, info in run(core, seed=2):
        released += info["summary"]["failed_peer_fault"]
        faults += info["summary"]["agent_faults"] + info["summary"]["channel_faults"]
    assert faults > 0 and released > 0


@pytest.mark.parametrize("n_markets", [1, 3])
def test_clearing_that_pays_its_trades_equals_settlement_paying_them(n_markets):
    """`bilateral` with routes clears and pays in one compiled call (`Mechanism.clear_and_pay`, the
    step's faults drawn before the clearing): the trajectory is bit for bit that of clearing and then
    settlement paying, with agent and channel faults, background payments and multi-hop routes,
    one market and a batch of three."""
    from channelmarket.envs.mechanisms.bilateral import BILATERAL

    kw = dict(episode_steps=16, start_hour=8.0, agent_fault_rate=0.03, channel_fault_rate=0.03,
              background_payment_rate=0.1, **ROUTING)

    def trajectory():
        core = MarketCore("energy_default", n_markets=n_markets, **kw)
        core.reset(seed=5)
        rng = np.random.default_rng(5)
        out, paid_in_clearing = [], 0
        while not core.dones.all():
            obs, rewards, *_ = core.step(rng.uniform(-1, 1, (core.n_agents, 4)))
            paid_in_clearing += core.last_result.trades.payments is not None
            b = core.batch
            out += [obs, rewards, b.balance_u, b.wallet, b.open, b.active, b.fee_sink, core.breakdown()["profit"]]
        return out, paid_in_clearing

    paying, n_paying = trajectory()
    hook = BILATERAL.clear_and_pay
    object.__setattr__(BILATERAL, "clear_and_pay", None)   # settlement pays, as before
    try:
        settling, n_settling = trajectory()
    finally:
        object.__setattr__(BILATERAL, "clear_and_pay", hook)
    assert n_paying == 16 and n_settling == 0
    assert len(paying) == len(settling)
    for a, b in zip(paying, settling):
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def test_payment_fields_are_validated_by_name_and_round_trip():
    with pytest.raises(ValueError, match="max_hops"):
        Scenario(max_hops=0)
    with pytest.raises(ValueError, match="splice_above"):
        Scenario(splice_above=0.3, liquidity_target=0.5)
    with pytest.raises(ValueError, match="rebalance_below"):
        Scenario(rebalance_below=0.6)
    with pytest.raises(ValueError, match="routing_fee_rate"):
        Scenario(routing_fee_rate=(0.1, 2.0))
    with pytest.raises(TypeError, match="max_hops"):
        Scenario(max_hops=2.5)
    sc = get_scenario("energy_small", background_payment_rate=0.2, agent_fault_rate=0.01, **ROUTING)
    assert Scenario.from_yaml(sc.to_yaml()) == sc and Scenario.from_json(sc.to_json()) == sc
    assert sc.payments_on and sc.routing_fees_on


def test_a_restored_core_continues_bit_identically_with_routing_on():
    kw = dict(ROUTING, background_payment_rate=0.2, agent_fault_rate=0.02, channel_fault_rate=0.02)
    a = MarketCore("energy_small", episode_steps=30, **kw)
    a.reset(seed=5)
    run(a, seed=1, steps=10)
    b = MarketCore("energy_small", episode_steps=30, **kw)
    b.load_state_dict(a.state_dict())
    ra = run(a, seed=9)
    rb = run(b, seed=9)
    for x, y in zip(ra, rb):
        np.testing.assert_array_equal(x[0], y[0])
        np.testing.assert_array_equal(x[1], y[1])
    np.testing.assert_array_equal(a.state.fee_base, b.state.fee_base)


_TRAJECTORY = """
import json, sys
import numpy as np
from channelmarket.envs.core import MarketCore
from channelmarket.envs.scenario import PAYMENTS_SOUND_MARKET
core = MarketCore("energy_default", background_payment_rate=0.1, channel_fault_rate=0.01, splice_above=0.95,
                  **PAYMENTS_SOUND_MARKET)
core.reset(4)
rng = np.random.default_rng(5)
out = []
for _ in range(30):
    obs, rew, *_ = core.step(rng.uniform(-1, 1, (core.n_agents, 4)))
    s = core.summary()
    out.append([float(obs.astype(float).sum()), float(rew.sum()), float(core.state.wallet.sum()),
                float(core.state.balance_u.sum()), s["routed_payments"], s["rebalances"], s["routing_fees"]])
print(json.dumps(out))
"""


def test_the_payment_layer_is_the_same_without_numba():
    import json
    import os
    import subprocess
    import sys

    def trajectory(numba: str):
        env = dict(os.environ, CHANNELMARKET_NUMBA=numba)
        out = subprocess.run([sys.executable, "-c", _TRAJECTORY], env=env, capture_output=True, text=True,
                             timeout=300, check=True)
        return np.array(json.loads(out.stdout))

    with_numba, without = trajectory("1"), trajectory("0")
    assert with_numba[:, 4].sum() > 0 and with_numba[:, 5].sum() > 0
    np.testing.assert_allclose(with_numba, without, rtol=1e-9, atol=1e-6)


def test_a_state_dict_with_a_negative_fee_policy_is_refused_by_name():
    core = MarketCore("energy_small", **ROUTING)
    core.reset(seed=0)
    d = core.state_dict()
    d["state"]["fee_rate"][3] = -0.1
    with pytest.raises(ValueError, match=r"fee_rate'\]\[3\] = -0.1"):
        core.load_state_dict(d)

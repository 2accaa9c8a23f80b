"""The optional `open_partner` action (`scenario.partner_action`, issue 10): an agent asks for a channel
to its regular partner. Off by default (the action stays four wide); on, the action schema, the
PettingZoo space and the batched channel lifecycle carry it, money is conserved per market, no
draws are made, and a batch of markets equals each market run alone."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channelmarket import MarketCore, channel_market_v0
from channelmarket.envs.batch_core import market_seeds
from channelmarket.envs.channels import partner_openings
from channelmarket.envs.offers import ACTION_FIELDS, N_ACTIONS, OPEN_PARTNER
from channelmarket.envs.scenario import Scenario, get_scenario

SMALL_LIGHTNING = dict(n_solar=6, n_wind=3, n_storage=3, n_residential=10, n_industrial=3, mean_degree=3,
                       episode_steps=16)


def test_off_by_default_the_action_keeps_its_four_columns():
    core = MarketCore("energy_small")
    assert core.n_actions == N_ACTIONS == 4 and core.action_fields == ACTION_FIELDS
    batch = MarketCore("energy_small", n_markets=2)
    assert batch.n_actions == 4 and batch.action_fields == ACTION_FIELDS
    env = channel_market_v0.parallel_env(scenario="energy_small")
    assert env.action_space(env.possible_agents[0]).shape == (4,)
    core.reset(seed=0)
    with pytest.raises(ValueError, match="expected"):
        core.step(np.zeros((core.n_agents, 5)))


def test_on_the_schema_and_spaces_carry_open_partner():
    core = MarketCore("energy_small", partner_action=True)
    assert core.n_actions == 5 and core.action_fields[OPEN_PARTNER] == "open_partner"
    batch = MarketCore("energy_small", n_markets=2, partner_action=True)
    assert batch.n_actions == 5 and batch.action_fields == core.action_fields
    env = channel_market_v0.parallel_env(scenario="energy_small", partner_action=True)
    env.reset(seed=0)
    assert env.action_space(env.agents[0]).shape == (5,)
    env.step({a: env.action_space(a).sample() for a in env.agents})
    env.step({a: np.zeros(4) for a in env.agents})            # a base-width row never asks
    bad = {a: np.zeros(5) for a in env.agents}
    bad[env.agents[2]][OPEN_PARTNER] = np.nan
    with pytest.raises(ValueError, match="open_partner"):
        env.step(bad)
    with pytest.raises(ValueError, match="shape"):
        env.step({a: np.zeros(3) for a in env.agents})
    core.reset(seed=0)
    acts = np.zeros((core.n_agents, 5))
    acts[1, OPEN_PARTNER] = np.inf
    with pytest.raises(ValueError, match="open_partner of agent 1"):
        core.step(acts)
    assert core.state.t == 0                                   # nothing moved
    batch.reset(seed=0)
    acts = np.zeros((batch.n_agents, 5))
    acts[13, OPEN_PARTNER] = np.nan
    with pytest.raises(ValueError, match="open_partner of agent 13"):
        batch.step(acts)
    with pytest.raises(ValueError, match="expected"):
        batch.step(np.zeros((batch.n_agents, 6)))
    batch.step(np.zeros((batch.n_agents, 4)))                  # base width: padded, nobody asks
    assert batch.check_actions(np.ones((batch.n_agents, 4)))[:, OPEN_PARTNER].max() == 0.0


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_partner_action_is_validated_and_round_trips(value):
    with pytest.raises(ValueError, match="partner_action"):
        get_scenario("energy_small", partner_action=value)
    sc = get_scenario("energy_lightning", partner_action=True)
    assert Scenario.from_yaml(sc.to_yaml()) == sc and Scenario.from_json(sc.to_json()) == sc
    assert Scenario.from_yaml(get_scenario("energy_small").to_yaml()).partner_action is False


def _hand_graph(markets: int = 1):
    """Six agents and five slots per market; slots 0-1 open (0-1, 2-3), slots 2-4 closed. Partners:
    0<->4, 2<->5, 1->0. Agent and slot indices are global (market-major)."""
    n, e = 6, 5
    u = np.concatenate([np.array([0, 2, 0, 0, 0]) + i * n for i in range(markets)])
    v = np.concatenate([np.array([1, 3, 1, 1, 1]) + i * n for i in range(markets)])
    cap = np.tile([100.0, 100.0, 0.0, 0.0, 0.0], markets)
    bal = np.tile([50.0, 50.0, 0.0, 0.0, 0.0], markets)
    is_open = np.tile([True, True, False, False, False], markets)
    partner = np.concatenate([np.array([4, 0, 5, -1, 0, 2]) + i * n * (np.array([4, 0, 5, -1, 0, 2]) >= 0)
                              for i in range(markets)])
    assert u.shape[0] == e * markets
    return u, v, cap, bal, is_open, partner


def test_an_agent_that_asks_gets_its_partner_channel_when_solvent():
    sc = get_scenario("energy_small", partner_action=True)   # uniform sizing: mean capacity 125 EUR
    u, v, cap, bal, is_open, partner = _hand_graph()
    active = np.ones(6, bool)
    wallet = np.full(6, 1000.0)
    asks = np.array([True, True, True, False, True, True])  # 0 and 4 ask each other; 1 asks 0 (already open)
    before = wallet.sum() + cap[is_open].sum()
    s, w, sink, n_opened = partner_openings(sc, asks, partner, active, u, v, cap, bal, is_open, is_open.copy(),
                                            wallet, np.array([0.0]), 6)
    assert sorted(zip(u[s].tolist(), v[s].tolist())) == [(0, 4), (2, 5)]   # one channel per pair
    assert s.tolist() == [2, 3] and is_open[2:4].all() and not is_open[4] and n_opened.tolist() == [2]
    assert np.allclose(cap[s], 125.0) and np.allclose(bal[s], 125.0 * sc.initial_split)
    assert np.isclose(w.sum() + cap[is_open].sum() + sink[0], before)
    assert sink[0] == pytest.approx(2 * sc.onchain_fee)
    assert w[1] == w[3] == 1000.0                        # 1's partner channel exists: nothing opened, nothing paid


def test_slots_closed_this_step_stay_free_and_scarce_slots_go_in_agent_order():
    sc = get_scenario("energy_small", partner_action=True)
    u, v, cap, bal, is_open, partner = _hand_graph()
    was_open = is_open.copy()
    was_open[2] = True                                   # slot 2 closed in this very step: not free
    s, *_ = partner_openings(sc, np.ones(6, bool), partner, np.ones(6, bool), u, v, cap, bal, is_open, was_open,
                             np.full(6, 1000.0), np.array([0.0]), 6)
    assert s.tolist() == [3, 4]
    u, v, cap, bal, is_open, partner = _hand_graph()
    was_open = is_open.copy()
    was_open[2:4] = True                                 # one free slot: the pair with the lowest agent (0, 4)
    s, *_ = partner_openings(sc, np.ones(6, bool), partner, np.ones(6, bool), u, v, cap, bal, is_open, was_open,
                             np.full(6, 1000.0), np.array([0.0]), 6)
    assert s.tolist() == [4] and (u[4], v[4]) == (0, 4)


def test_an_insolvent_or_inactive_pair_gets_nothing():
    sc = get_scenario("energy_small", partner_action=True)
    u, v, cap, bal, is_open, partner = _hand_graph()
    wallet = np.array([1000.0, 1000.0, 1000.0, 1000.0, 5.0, 1000.0])   # 4 cannot fund its side
    active = np.array([True, True, True, True, True, False])           # 5 has left the market
    snap = (u.copy(), v.copy(), cap.copy(), bal.copy(), is_open.copy())
    s, w, sink, n_opened = partner_openings(sc, np.ones(6, bool), partner, active, u, v, cap, bal, is_open,
                                            is_open.copy(), wallet, np.array([0.0]), 6)
    assert s.size == 0 and sink[0] == 0.0 and np.array_equal(w, wallet) and n_opened.tolist() == [0]
    for a, b in zip(snap, (u, v, cap, bal, is_open)):
        assert np.array_equal(a, b)


def test_funding_counts_all_of_a_funders_openings():
    sc = get_scenario("energy_small", partner_action=True, initial_split=0.5)
    u, v, cap, bal, is_open, partner = _hand_graph()
    partner[:] = [4, 4, -1, -1, 0, -1]                   # 0 and 1 both ask 4 for a channel
    is_open[0] = False                                   # (no channel 0-1 in the way)
    wallet = np.full(6, 1000.0)
    wallet[4] = 62.5 + sc.onchain_fee / 2 + 1.0          # 4 can fund one half (62.5) but not two
    s, w, *_ = partner_openings(sc, np.array([True, True, False, False, False, False]), partner, np.ones(6, bool),
                                u, v, cap, bal, is_open, is_open.copy(), wallet, np.array([0.0]), 6)
    assert s.size == 0 and np.array_equal(w, wallet)


def test_markets_of_a_batch_use_their_own_slots_and_sinks():
    sc = get_scenario("energy_small", partner_action=True)
    u1, v1, cap1, bal1, open1, partner1 = _hand_graph()
    u, v, cap, bal, is_open, partner = _hand_graph(3)
    asks1 = np.array([True, True, True, False, True, True])
    asks = np.tile(asks1, 3)
    asks[6:12] = False                                  # market 1: nobody asks
    wallet = np.full(18, 1000.0)
    s, w, sink, n_opened = partner_openings(sc, asks, partner, np.ones(18, bool), u, v, cap, bal, is_open,
                                            is_open.copy(), wallet, np.zeros(3), 6)
    s1, w1, sink1, _ = partner_openings(sc, asks1, partner1, np.ones(6, bool), u1, v1, cap1, bal1, open1,
                                        open1.copy(), np.full(6, 1000.0), np.zeros(1), 6)
    assert n_opened.tolist() == [2, 0, 2] and s.tolist() == [2, 3, 12, 13]
    assert sink[1] == 0.0 and sink[0] == sink[2] == sink1[0]
    for m in (0, 2):
        a, es = slice(6 * m, 6 * m + 6), slice(5 * m, 5 * m + 5)
        assert np.array_equal(u[es] - 6 * m, u1) and np.array_equal(v[es] - 6 * m, v1)
        assert np.array_equal(cap[es], cap1) and np.array_equal(w[a], w1)
    assert np.array_equal(w[6:12], np.full(6, 1000.0))


def test_asking_in_the_market_opens_channels_to_partners():
    def run(ask: bool) -> tuple[MarketCore, int]:
        core = MarketCore("energy_lightning", partner_action=True, partner_channel_share=0.0, **SMALL_LIGHTNING)
        core.reset(seed=3)
        acts = np.zeros((core.n_agents, 5))
        acts[:, OPEN_PARTNER] = 1.0 if ask else -1.0
        opened = 0
        for _ in range(16):
            core.step(acts)
            opened += core.summary()["channels_opened"]
        return core, opened

    asking, n_ask = run(True)
    quiet, n_quiet = run(False)
    assert n_ask > n_quiet
    s = asking.state
    o = s.open
    key = set(zip(np.minimum(s.u[o], s.v[o]).tolist(), np.maximum(s.u[o], s.v[o]).tolist()))
    who = np.flatnonzero((s.partner >= 0) & s.active)
    linked = [(min(a, int(s.partner[a])), max(a, int(s.partner[a]))) in key for a in who]   # test-side check
    assert sum(linked) >= 0.5 * len(who) > 0


def test_asking_makes_no_draws_and_quiet_asks_change_nothing():
    """Partner channels draw nothing (their fee policy is the range's mean): after a step the channel
    generator is where it would be without asks; and with nobody asking, the market runs exactly as
    without the option."""
    kw = dict(SMALL_LIGHTNING, partner_channel_share=0.0)
    a, b, off = (MarketCore("energy_lightning", partner_action=p, **kw) for p in (True, True, False))
    for c in (a, b, off):
        c.reset(seed=5)
    rng = np.random.default_rng(1)
    ones = np.ones((a.n_agents, 1))
    for _ in range(8):
        base = rng.uniform(-1, 1, (a.n_agents, 4))
        a.load_state_dict(b.state_dict())          # the asking market starts each step from the quiet one
        a.step(np.concatenate([base, ones], axis=1))
        b.step(np.concatenate([base, -ones], axis=1))
        off.step(base)
        for f in ("wallet", "u", "v", "open", "capacity", "balance_u", "fee_base", "fee_rate", "flow_history"):
            assert np.array_equal(getattr(b.state, f), getattr(off.state, f)), f
        assert b.state.fee_sink == off.state.fee_sink
        assert b.state.rng.bit_generator.state == off.state.rng.bit_generator.state
        assert a.state.rng.bit_generator.state == b.state.rng.bit_generator.state   # asks draw nothing
        assert a.state.rng_exo.bit_generator.state == b.state.rng_exo.bit_generator.state
        new = a.state.open & ~b.state.open
        if new.any():
            break
    assert new.any()                               # asks opened partner channels
    assert np.all(a.state.fee_base[new] == 0.5 * sum(a.scenario.routing_fee_base))
    assert np.all(a.state.fee_rate[new] == 0.5 * sum(a.scenario.routing_fee_rate))


def test_a_batch_with_partner_asks_equals_each_market_alone():
    m = 3
    kw = dict(SMALL_LIGHTNING, partner_action=True)
    batch = MarketCore("energy_lightning", n_markets=m, **kw)
    batch.reset(seed=7)
    singles = [MarketCore("energy_lightning", **kw) for _ in range(m)]
    for c, s in zip(singles, market_seeds(7, m)):
        c.reset(seed=s)
    n = singles[0].n_agents
    rng = np.random.default_rng(0)
    opened = 0
    for _ in range(batch.scenario.episode_steps):
        acts = rng.uniform(-1.2, 1.2, (m * n, 5))
        obs, r, *_ = batch.step(acts)
        for i, c in enumerate(singles):
            rows = slice(i * n, (i + 1) * n)
            o1, r1, *_ = c.step(acts[rows])
            assert np.array_equal(obs[rows], o1) and np.array_equal(r[rows], r1), f"market {i}"
            ms, s = batch.market_state(i), c.state
            for f in ("wallet", "balance_u", "u", "v", "open", "capacity", "fee_base", "fee_rate", "partner",
                      "partner_value", "flow_history", "utilization"):
                assert np.array_equal(getattr(ms, f), getattr(s, f)), f"market {i}: {f}"
            for f in ("fee_sink", "topology_version"):
                assert getattr(ms, f) == getattr(s, f), f"market {i}: {f}"
            assert batch.summary(i)["channels_opened"] == c.summary()["channels_opened"]
            opened += c.summary()["channels_opened"]
    assert opened > 0


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**31), steps=st.integers(4, 16), share=st.floats(0, 1), p_ask=st.floats(0, 1),
       scenario=st.sampled_from(["energy_small", "energy_lightning"]))
def test_money_is_conserved_per_market_with_any_asks(seed, steps, share, p_ask, scenario):
    kw = SMALL_LIGHTNING if scenario == "energy_lightning" else {}
    core = MarketCore(scenario, n_markets=2, partner_action=True, partner_channel_share=share,
                      **dict(kw, episode_steps=16))
    core.reset(seed=seed)
    rng = np.random.default_rng(seed)
    m0 = core.money_total()
    for _ in range(steps):
        acts = rng.uniform(-1, 1, size=(core.n_agents, 5))
        acts[:, OPEN_PARTNER] = np.where(rng.random(core.n_agents) < p_ask, 1.0, -1.0)
        core.step(acts)
        b = core.batch
        assert np.all(np.abs(core.money_total() - m0) <= 1e-9 * np.abs(m0))
        o = b.open
        assert np.all(b.balance_u[o] >= -1e-9) and np.all(b.balance_u[o] <= b.capacity[o] + 1e-9)
        assert np.all(b.u[o] != b.v[o])
        e = b.u.shape[0] // 2
        n = core.agents_per_market
        assert np.all(b.u[o] // n == np.arange(2 * e)[o] // e) and np.all(b.v[o] // n == np.arange(2 * e)[o] // e)

"""supply_chain_v0: PettingZoo checks, seeding, determinism, conservation, bad input, death, shock."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test

from channelmarket import supply_chain_v0
from channelmarket.envs.kinds import KINDS, market_kinds
from channelmarket.envs.goods import GOOD_SPECS, market_goods
from channelmarket.envs.supply_chain import SupplyChainCore, SupplyChainScenario, make_scenario
from channelmarket.envs.supply_chain.core import OBS_COLUMNS, OBS_HIGH, OBS_LOW

SMALL = "supply_chain_small"


def test_pettingzoo_parallel_and_aec_api():
    parallel_api_test(supply_chain_v0.parallel_env(scenario=SMALL), num_cycles=70)
    api_test(supply_chain_v0.env(scenario=SMALL, days=15), num_cycles=20)


def test_pettingzoo_seed_test():
    parallel_seed_test(lambda: supply_chain_v0.parallel_env(scenario=SMALL, days=20))


def test_registries_keep_the_energy_market_and_declare_the_chain():
    assert [k.name for k in KINDS] == ["solar", "wind", "storage", "consumer", "ev"]
    assert [g.name for g in GOOD_SPECS] == ["energy", "rec"]
    assert [k.name for k in market_kinds("supply_chain")] == ["farmer", "miller", "baker", "seller"]
    assert [g.name for g in market_goods("supply_chain")] == ["corn", "flour", "bread", "food"]
    with pytest.raises(ValueError, match="market"):
        market_kinds("nowhere")


def run(core, seed, days, policy_seed=0, learned=None):
    core.reset(seed=seed)
    rng = np.random.default_rng(policy_seed)
    out = []
    for _ in range(days):
        if core.done:
            break
        a = rng.uniform(-1.5, 1.5, (core.n_agents, 4)) if learned is not None else None
        obs, r, te, tr, info = core.step(a, mask=learned)
        out.append((obs.copy(), r.copy(), te.copy()))
    return out


def test_same_seed_same_trajectory_and_different_seed_differs():
    a = run(SupplyChainCore(SMALL), 3, 40)
    b = run(SupplyChainCore(SMALL), 3, 40)
    c = run(SupplyChainCore(SMALL), 4, 40)
    for x, y in zip(a, b):
        for u, v in zip(x, y):
            np.testing.assert_array_equal(u, v)
    assert any(not np.array_equal(x[0], y[0]) for x, y in zip(a, c))


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10_000), share=st.floats(0.0, 1.0))
def test_money_and_goods_are_conserved_every_day(seed, share):
    core = SupplyChainCore(SMALL, days=45)
    core.reset(seed=seed)
    rng = np.random.default_rng(seed)
    learned = rng.random(core.n_agents) < share
    m0 = core.money_total()
    while not core.done:
        core.step(rng.uniform(-1.2, 1.2, (core.n_agents, 4)), mask=learned)
        st_ = core.state
        assert abs(core.money_total() - m0) < 1e-7 * max(m0, 1.0)
        np.testing.assert_allclose(core.goods_balance(), 0.0, atol=1e-7)
        assert (st_.money >= -1e-9).all() and (st_.hold >= -1e-9).all()
        # input lots mirror the input stock
        need = st_.in_good >= 0
        np.testing.assert_allclose(st_.lot_qty.sum(1)[need], st_.hold[np.flatnonzero(need), st_.in_good[need]],
                                   atol=1e-7)
        obs = core.observe()
        assert obs.shape == (core.n_agents, len(OBS_COLUMNS))
        assert (obs >= OBS_LOW).all() and (obs <= OBS_HIGH).all()
        assert ((st_.vital >= 0) & (st_.vital <= 1)).all()


def test_bad_actions_name_the_agent_and_leave_the_state_untouched():
    core = SupplyChainCore(SMALL)
    core.reset(seed=0)
    core.step()
    before = core.state_dict()
    a = np.zeros((core.n_agents, 4))
    a[3, 1] = np.nan
    with pytest.raises(ValueError, match=core.agent_names[3]):
        core.step(a)
    with pytest.raises(ValueError, match="shape"):
        core.step(np.zeros((core.n_agents, 3)))
    with pytest.raises(TypeError):
        core.step(np.array([["x"] * 4] * core.n_agents, dtype=object))
    with pytest.raises(ValueError, match="mask"):
        core.step(a, mask=np.ones(3, bool))
    after = core.state_dict()
    for k, v in before["arrays"].items():
        np.testing.assert_array_equal(v, after["arrays"][k])
    assert before["t"] == after["t"] and before["rng"] == after["rng"]

    env = supply_chain_v0.parallel_env(scenario=SMALL)
    env.reset(seed=0)
    acts = {a: np.zeros(5) for a in env.agents}
    with pytest.raises(ValueError, match="nobody_1"):
        env.step({**acts, "nobody_1": np.zeros(5)})
    with pytest.raises(ValueError, match="farmer_0"):
        env.step({**acts, "farmer_0": np.zeros(6)})
    with pytest.raises(ValueError, match="no action"):
        env.step({})


def test_scenario_validation_names_the_field():
    with pytest.raises(ValueError, match="radius"):
        make_scenario(SMALL, radius=-1.0)
    with pytest.raises(ValueError, match="r_range"):
        make_scenario(SMALL, r_range=(0.8, 0.2))
    with pytest.raises(ValueError, match="farmer_production_days"):
        make_scenario(SMALL, farmer_production_days=0)
    with pytest.raises(ValueError, match="unknown"):
        make_scenario(SMALL, wings=3)
    # the slot arrays' dtypes bound these (int16 days out of range, float32 slot days)
    with pytest.raises(ValueError, match=r"days = 16777217; allowed: an integer in \[1, 16777216\]"):
        make_scenario(SMALL, days=2 ** 24 + 1)
    with pytest.raises(ValueError, match="lapse_days = 40000"):
        make_scenario(SMALL, lapse_days=40_000)
    assert make_scenario(SMALL, days=2 ** 24, lapse_days=32_766).days == 2 ** 24
    with pytest.raises(ValueError, match="allowed"):
        make_scenario("maser_exp9")
    sc = make_scenario("maser_exp4")
    assert SupplyChainScenario.from_dict(sc.to_dict()) == sc


def test_dead_agents_terminate_and_leave():
    env = supply_chain_v0.parallel_env(scenario=SMALL, initial_food=0, vital_decay=0.3, days=30)
    env.reset(seed=1)
    seen_dead = False
    while env.agents:
        acting = list(env.agents)
        _, _, te, tr, _ = env.step({a: np.zeros(5) for a in acting})
        for a in acting:
            if te[a]:
                seen_dead = True
                assert a not in env.agents and not tr[a]
    assert seen_dead
    assert env.core.done


def test_learners_subset_and_builtin_agents():
    env = supply_chain_v0.parallel_env(scenario=SMALL, learners="miller")
    obs, _ = env.reset(seed=0)
    assert set(env.agents) == {a for a in env.core.agent_names if a.startswith("miller_")}
    assert set(env.agent_kinds.values()) == {"miller"}
    with pytest.raises(ValueError, match="learners"):
        supply_chain_v0.parallel_env(scenario=SMALL, learners="pirate")


def test_key_agent_shock_moves_the_busiest_seller_far_away():
    core = SupplyChainCore(SMALL)
    core.reset(seed=0)
    for _ in range(15):
        core.step()
    key = core.key_agent()
    before = core.state.xy[key].copy()
    moved = core.move_key_agent()
    assert moved == key and core.state.out_good[key] == core.food
    assert np.linalg.norm(core.state.xy[key] - before) > 0.5 * core.scenario.width
    with pytest.raises(ValueError, match="to"):
        core.move_key_agent(key, to=(-5.0, 1.0))
    # scheduled in the scenario
    core = SupplyChainCore(SMALL, shock_day=5)
    run(core, 0, 8)
    assert core.shocks and core.shocks[0][0] == 5


def test_state_dict_round_trip_continues_identically():
    a = SupplyChainCore(SMALL)
    a.reset(seed=2)
    for _ in range(12):
        a.step()
    d = a.state_dict()
    b = SupplyChainCore(SMALL)
    b.load_state_dict(d)
    for _ in range(10):
        oa = a.step()
        ob = b.step()
        np.testing.assert_array_equal(oa[0], ob[0])
        np.testing.assert_array_equal(oa[1], ob[1])
    with pytest.raises(ValueError, match="scenario"):
        SupplyChainCore(SMALL, days=9).load_state_dict(d)


def test_slot_arrays_are_narrow_and_a_wide_checkpoint_loads_exactly():
    """The N x K slot arrays are narrow (the day's memory traffic): int32 customers, int16 days out of range,
    float32 transactions and days. A state dict with the old wide arrays (int64, float64) loads and continues
    identically; a value the narrow dtype cannot hold exactly is a ValueError naming the field, and the core
    is untouched."""
    a = SupplyChainCore(SMALL)
    a.reset(seed=3)
    for _ in range(15):
        a.step()
    st = a.state
    assert st.partner.dtype == np.int32 and st.away.dtype == np.int16
    assert st.n_tr.dtype == st.t_first.dtype == st.t_last.dtype == np.float32
    assert st.n_tr.max() > 0 and st.t_last.max() > 0                  # the run traded
    d = a.state_dict()
    wide = {k: v.astype(np.float64 if v.dtype.kind == "f" else np.int64) for k, v in d["arrays"].items()}
    b = SupplyChainCore(SMALL)
    b.load_state_dict({**d, "arrays": wide})
    assert b.state.partner.dtype == np.int32 and b.state.n_tr.dtype == np.float32
    for _ in range(8):
        oa, ob = a.step(), b.step()
        np.testing.assert_array_equal(oa[0], ob[0])
        np.testing.assert_array_equal(oa[1], ob[1])
        np.testing.assert_array_equal(a.observe(), oa[0])    # the step's customers (from the refresh) = the rows'
    for k, v in b.state.array_dict().items():
        np.testing.assert_array_equal(v, getattr(a.state, k), err_msg=k)
    c = SupplyChainCore(SMALL)
    c.reset(seed=5)
    before = c.state.array_dict()
    for field, value in (("partner", 2 ** 32 + 1), ("away", 40_000), ("n_tr", 0.1), ("t_last", 2.0 ** 24 + 1),
                         ("kind", 1.5)):
        bad = {k: v.copy() for k, v in wide.items()}
        bad[field] = bad[field].astype(np.float64 if isinstance(value, float) else np.int64)
        bad[field].flat[7] = value
        with pytest.raises(ValueError, match=f"{field}.*does not fit"):
            c.load_state_dict({**d, "arrays": bad})
        for k, v in before.items():
            np.testing.assert_array_equal(getattr(c.state, k), v, err_msg=k)


def test_stability_reward_is_the_share_alive():
    core = SupplyChainCore(SMALL, reward="stability")
    core.reset(seed=0)
    _, r, _, _, _ = core.step()
    np.testing.assert_allclose(r, core.state.alive.mean())


def test_check_actions_hands_out_fresh_arrays_the_step_never_reads():
    """The public check gives the caller its own zeros on a built-in day: writing into them leaves the
    next built-in days as they were (the step keeps its shared zeros to itself)."""
    a, b = SupplyChainCore(SMALL), SupplyChainCore(SMALL)
    a.reset(5)
    b.reset(5)
    for _ in range(3):
        act, learned = a.check_actions(None)
        act[:] = 1.0
        learned[:] = True
        assert a.check_actions(None)[0].max() == 0.0
        oa, ob = a.step()[0], b.step()[0]
        np.testing.assert_array_equal(oa, ob)


def test_a_ctrl_c_mid_day_comes_when_the_day_is_whole(monkeypatch):
    # the day writes the state in place, phase after phase: a KeyboardInterrupt between two phases (Ctrl-C in
    # a notebook) waits until the day is whole, so the state is never half of one day and half of the next
    import os
    import signal
    from channelmarket.envs.supply_chain import core as sc_core

    interrupt = []
    orig = sc_core.produce

    def produce(*a):
        if interrupt:
            os.kill(os.getpid(), signal.SIGINT)
        return orig(*a)
    monkeypatch.setattr(sc_core, "produce", produce)
    a, b = SupplyChainCore(SMALL), SupplyChainCore(SMALL)
    a.reset(seed=6)
    b.reset(seed=6)
    for _ in range(5):
        a.step()
        b.step()
    interrupt.append(True)
    with pytest.raises(KeyboardInterrupt):
        a.step()
    interrupt.clear()
    b.step()
    assert a.state.t == b.state.t == 6
    da, db = a.state_dict(), b.state_dict()
    for k in db["arrays"]:
        assert np.asarray(da["arrays"][k]).tobytes() == np.asarray(db["arrays"][k]).tobytes(), k
    assert da["rng"] == db["rng"]
    np.testing.assert_array_equal(a.step()[0], b.step()[0])

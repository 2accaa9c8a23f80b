"""PettingZoo conventions of the facade: infos with the same numeric keys from reset() and step(),
`max_cycles` as an alias of `episode_steps`, `agent_kinds` / `group_map`, and the centralized-critic
state (`state_space`, `state()` of fixed size in "global" mode, stacked in "full" mode)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pettingzoo.test import max_cycles_test, parallel_api_test
from pettingzoo.test.state_test import state_test as pz_state_test
from pettingzoo.test.state_test import test_state_space as pz_state_space_test

from channelmarket import channel_market_v0
from channelmarket.envs import Shock
from channelmarket.envs.global_state import state_fields
from channelmarket.envs.kinds import KIND_NAMES


SMALL_SCENARIO = channel_market_v0.parallel_env(scenario="energy_small").scenario


def _rand(env, rng):
    return {a: rng.uniform(-1, 1, 4).astype(np.float32) for a in env.agents}


# ---- infos ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("info_keys", [None, "trade", "all"])
def test_infos_same_numeric_keys_from_reset_and_step(info_keys):
    kw = {} if info_keys is None else {"info_keys": info_keys}
    env = channel_market_v0.parallel_env(scenario="energy_small", **kw)
    _, infos0 = env.reset(seed=0)
    keys = set(next(iter(infos0.values())))
    assert "shock" in keys and (len(keys) > 1) == (info_keys is not None)   # by default the shock code only
    rng = np.random.default_rng(0)
    for step_infos in [infos0] + [env.step(_rand(env, rng))[4] for _ in range(3)]:
        for info in step_infos.values():
            assert set(info) == keys
            assert all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in info.values()), info
            assert type(info["shock"]) is int


def test_reset_info_reports_injected_shock_code():
    env = channel_market_v0.parallel_env(scenario="energy_small")
    _, infos = env.reset(seed=0, options={"shock": ("DEMAND_DROP", 3)})
    assert {i["shock"] for i in infos.values()} == {int(Shock.DEMAND_DROP)}
    _, infos = env.reset(seed=0)
    assert {i["shock"] for i in infos.values()} == {int(Shock.NONE)}
    assert all(v == 0.0 for i in infos.values() for k, v in i.items() if k != "shock")


# ---- max_cycles ------------------------------------------------------------------------------------

def test_pettingzoo_max_cycles_test_on_the_module():
    max_cycles_test(channel_market_v0)


def test_max_cycles_alias():
    env = channel_market_v0.parallel_env(scenario="energy_small", max_cycles=5)
    assert env.scenario.episode_steps == 5
    env = channel_market_v0.parallel_env(scenario="energy_small", max_cycles=5, episode_steps=5)
    assert env.scenario.episode_steps == 5
    with pytest.raises(ValueError, match="max_cycles = 5 and episode_steps = 6"):
        channel_market_v0.parallel_env(scenario="energy_small", max_cycles=5, episode_steps=6)
    for bad in (0, -3, 2.5, True, "4"):
        with pytest.raises(ValueError, match=f"max_cycles = {bad!r}; allowed: an integer >= 1"):
            channel_market_v0.parallel_env(scenario="energy_small", max_cycles=bad)


# ---- kinds ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("scenario", ["energy_small", "energy_ev"])
def test_agent_kinds_and_group_map(scenario):
    env = channel_market_v0.parallel_env(scenario=scenario)
    assert list(env.agent_kinds) == env.possible_agents
    assert all(a.rsplit("_", 1)[0] == k for a, k in env.agent_kinds.items())
    assert list(env.group_map) == [k for k in KIND_NAMES if k in env.group_map]   # registry order
    assert sorted(a for g in env.group_map.values() for a in g) == sorted(env.possible_agents)
    assert all(env.group_map[k] and all(env.agent_kinds[a] == k for a in g) for k, g in env.group_map.items())
    # the kind one-hot of the observation agrees
    obs, _ = env.reset(seed=0)
    schema = env.core.obs_schema
    for a, k in env.agent_kinds.items():
        assert obs[a][schema[f"kind_{k}"]] == 1.0


# ---- state ---------------------------------------------------------------------------------------

def test_global_state_size_does_not_grow_with_agents():
    sizes = set()
    for n in (24, 200, 1000):
        env = channel_market_v0.parallel_env(scenario="energy_default", n_agents=n)
        env.reset(seed=0)
        s = env.state()
        assert s.shape == env.state_space.shape and s.dtype == np.float32
        assert env.state_space.contains(s)
        sizes.add(s.shape)
    assert len(sizes) == 1
    assert len(state_fields(env.scenario)) == env.state_space.shape[0]


def test_global_state_values_are_kind_means():
    env = channel_market_v0.parallel_env(scenario="energy_small")
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(1)
    obs, *_ = env.step(_rand(env, rng))
    s = dict(zip(state_fields(env.scenario), env.state().tolist()))
    schema = env.core.obs_schema
    n = len(env.possible_agents)
    for k, agents in env.group_map.items():
        assert s[f"{k}.share"] == pytest.approx(len(agents) / n)
        for col in ("sellable", "needed", "last_profit", "outbound"):
            mean = np.mean([obs[a][schema[col]] for a in agents], dtype=np.float64)
            assert s[f"{k}.{col}"] == pytest.approx(mean, rel=1e-5, abs=1e-6)
    assert s["market.ref_price"] == pytest.approx(obs[env.possible_agents[0]][schema["ref_price"]], rel=1e-6)


def test_global_state_after_agents_leave():
    env = channel_market_v0.parallel_env(scenario="energy_small")
    env.reset(seed=0)
    consumers = env.group_map["consumer"]
    env.core.remove_agents([env.agent_index[a] for a in consumers])
    s = dict(zip(state_fields(env.scenario), env.state().tolist()))
    assert s["consumer.share"] == 0.0 and s["consumer.needed"] == 0.0
    assert env.state_space.contains(env.state())


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31), steps=st.integers(0, 6))
def test_global_state_inside_state_space(seed, steps):
    env = channel_market_v0.parallel_env(scenario="energy_small", episode_steps=8)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        env.step(_rand(env, rng))
    assert env.state_space.contains(env.state())


def test_full_state_mode_stacks_observations():
    env = channel_market_v0.parallel_env(scenario="energy_small", state_mode="full")
    obs, _ = env.reset(seed=0)
    s = env.state()
    assert s.shape == env.state_space.shape == (len(env.possible_agents), env.core.obs_dim)
    assert np.array_equal(s, np.stack([obs[a] for a in env.possible_agents]))
    assert env.state_space.contains(s)
    with pytest.raises(ValueError, match="state_mode = 'flat'"):
        channel_market_v0.parallel_env(scenario="energy_small", state_mode="flat")


@pytest.mark.parametrize("mode", ["global", "full"])
@pytest.mark.filterwarnings(r"ignore:reset options \['options'\] are unknown and ignored:UserWarning")  # PettingZoo's test passes reset(options={"options": 1})
def test_pettingzoo_tests_with_state(mode):
    env = channel_market_v0.parallel_env(scenario="energy_small", state_mode=mode)
    pz_state_space_test(env)
    parallel_api_test(env, num_cycles=10)


@pytest.mark.parametrize("mode", ["global", "full"])
def test_pettingzoo_state_test_aec_and_parallel(mode):
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # PettingZoo's state test warns on any oddity
        # ...and takes any 2-D array with negative entries for an image: the full [N, O] state is not one
        warnings.filterwarnings("ignore", "The state contains negative numbers", UserWarning)
        pz_state_test(channel_market_v0.env(scenario="energy_small", state_mode=mode, episode_steps=6),
                      channel_market_v0.parallel_env(scenario="energy_small", state_mode=mode, episode_steps=6),
                      num_cycles=8)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(1, 60), p_active=st.floats(0.0, 1.0))
def test_global_state_function_invariants(seed, n, p_active):
    """Any observations inside the bounds, any kinds and any agents left: the state is inside its
    bounds, has the scenario's size, and does not depend on the order of the agents."""
    from channelmarket.envs.global_state import global_state, state_bounds
    from channelmarket.envs.observations import obs_bounds

    sc = SMALL_SCENARIO
    rng = np.random.default_rng(seed)
    lo, hi = obs_bounds(sc)
    obs = rng.uniform(lo, hi, (n, lo.size)).astype(np.float32)
    kind = rng.integers(0, 4, n).astype(np.int8)
    active = rng.random(n) < p_active
    s = global_state(sc, kind, active, obs)
    slo, shi = state_bounds(sc)
    assert s.shape == slo.shape and s.dtype == np.float32
    assert np.all(s >= slo) and np.all(s <= shi)
    perm = rng.permutation(n)
    np.testing.assert_allclose(global_state(sc, kind[perm], active[perm], obs[perm]), s, rtol=1e-5, atol=1e-6)

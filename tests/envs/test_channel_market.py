"""The PettingZoo face `channel_market_v0`: PettingZoo's own API tests, determinism through both
faces, spaces, infos, episode end, input checks (state untouched on error), rendering, kwargs."""

from __future__ import annotations

import dataclasses
import pickle
import types

import numpy as np
import pytest
from gymnasium import spaces
from pettingzoo.test import api_test, max_cycles_test, parallel_api_test, parallel_seed_test, render_test

from channelmarket import channel_market_v0
from channelmarket.envs import BREAKDOWN_FIELDS, OBS_NAMES, MarketCore, Scenario, Shock
from channelmarket.envs.channel_market import DEFAULT_INFO_KEYS, TRADE_INFO_KEYS, ChannelMarketEnv
from channelmarket.envs.scenario import PRESETS

SMALL = PRESETS["energy_small"]
SUMMARY_KEYS = ("clearing_price", "volume", "supply", "demand", "trades", "active_channels", "shock")


def small_env(**kw) -> ChannelMarketEnv:
    kw.setdefault("scenario", "energy_small")
    return channel_market_v0.parallel_env(**kw)


def random_actions(env: ChannelMarketEnv, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {a: rng.uniform(-1, 1, 4).astype(np.float32) for a in env.agents}


def snapshot(env: ChannelMarketEnv) -> dict:
    """Every field of the core state (arrays copied) plus the generator's state and the facade's lists."""
    st = env.core.state
    out = {}
    for f in dataclasses.fields(st):
        v = getattr(st, f.name)
        if isinstance(v, np.random.Generator):
            out[f.name] = v.bit_generator.state
        elif isinstance(v, np.ndarray):
            out[f.name] = v.copy()
        else:
            out[f.name] = v
    out["_agents"] = list(env.agents)
    out["_history_len"] = len(env.history)
    out["_last_result"] = env.core.last_result
    return out


def assert_same_snapshot(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], np.ndarray):
            assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), f"state.{k} changed"
        elif k == "_last_result":
            assert a[k] is b[k], "last_result changed"
        else:
            assert a[k] == b[k], f"state.{k} changed: {a[k]!r} -> {b[k]!r}"


def run_episode(env: ChannelMarketEnv, seed: int, action_seed: int, steps: int | None = None):
    """Whole trajectory (obs, rewards, terms, truncs, infos, summary) with seeded random actions."""
    rng = np.random.default_rng(action_seed)
    obs, infos = env.reset(seed=seed)
    traj = [(obs, infos)]
    n = 0
    while env.agents and (steps is None or n < steps):
        out = env.step(random_actions(env, rng))
        traj.append(out + (env.market_summary(),))
        n += 1
    return traj


def assert_traj_equal(t1, t2) -> None:
    assert len(t1) == len(t2)
    for s1, s2 in zip(t1, t2):
        assert len(s1) == len(s2)
        for d1, d2 in zip(s1, s2):
            assert d1.keys() == d2.keys()
            for k in d1:
                v1, v2 = d1[k], d2[k]
                if isinstance(v1, np.ndarray):
                    assert v1.dtype == v2.dtype and v1.tobytes() == v2.tobytes(), k
                else:
                    assert type(v1) is type(v2) and v1 == v2, (k, v1, v2)


# ---- PettingZoo's own tests ------------------------------------------------------------------

@pytest.mark.parametrize("kw", [dict(scenario="energy_small"), dict(scenario="energy_small", n_agents=40)],
                         ids=["small", "n40"])
@pytest.mark.filterwarnings(r"ignore:reset options \['options'\] are unknown and ignored:UserWarning")  # PettingZoo's test passes reset(options={"options": 1})
def test_parallel_api_test(kw):
    env = channel_market_v0.parallel_env(**kw)
    parallel_api_test(env, num_cycles=SMALL.episode_steps + 5)


@pytest.mark.parametrize("kw", [dict(scenario="energy_small"), dict(scenario="energy_small", n_agents=40)],
                         ids=["small", "n40"])
def test_parallel_seed_test(kw):
    parallel_seed_test(lambda: channel_market_v0.parallel_env(**kw), num_cycles=10)


@pytest.mark.parametrize("kw", [dict(scenario="energy_small"), dict(scenario="energy_small", n_agents=40)],
                         ids=["small", "n40"])
@pytest.mark.filterwarnings(r"ignore:reset options \['options'\] are unknown and ignored:UserWarning")  # PettingZoo's test passes reset(options={"options": 1})
def test_aec_api_test(kw):
    api_test(channel_market_v0.env(**kw), num_cycles=SMALL.episode_steps + 5)


def test_max_cycles_test_with_episode_steps():
    """PettingZoo's max_cycles_test; our episode length is the scenario field `episode_steps`."""
    mod = types.SimpleNamespace(
        parallel_env=lambda max_cycles: channel_market_v0.parallel_env(scenario="energy_small", episode_steps=max_cycles),
        env=lambda max_cycles: channel_market_v0.env(scenario="energy_small", episode_steps=max_cycles),
    )
    max_cycles_test(mod)


def test_render_test():
    def env_fn(render_mode=None):
        return channel_market_v0.env(scenario="energy_small", render_mode=render_mode)

    render_test(env_fn, custom_tests={"ansi": lambda r: "price" in r})


# ---- determinism -------------------------------------------------------------------------------

def test_whole_episode_is_deterministic_bit_for_bit():
    t1 = run_episode(small_env(), seed=7, action_seed=1)
    t2 = run_episode(small_env(), seed=7, action_seed=1)
    assert len(t1) == SMALL.episode_steps + 1
    assert_traj_equal(t1, t2)


def test_reset_same_env_reproduces_episode():
    env = small_env()
    t1 = run_episode(env, seed=3, action_seed=2, steps=8)
    t2 = run_episode(env, seed=3, action_seed=2, steps=8)
    assert_traj_equal(t1, t2)


def test_different_seeds_differ():
    t1 = run_episode(small_env(), seed=1, action_seed=1, steps=4)
    t2 = run_episode(small_env(), seed=2, action_seed=1, steps=4)
    o1, o2 = t1[0][0], t2[0][0]
    assert any(not np.array_equal(o1[a], o2[a]) for a in o1)
    r1 = [t[1] for t in t1[1:]]
    r2 = [t[1] for t in t2[1:]]
    assert r1 != r2


@pytest.mark.parametrize("info_keys", ["all", DEFAULT_INFO_KEYS])
def test_array_api_and_dict_api_give_identical_trajectories(info_keys):
    env = small_env(info_keys=info_keys)
    keys = BREAKDOWN_FIELDS if info_keys == "all" else DEFAULT_INFO_KEYS
    core = MarketCore("energy_small")
    rng = np.random.default_rng(11)
    obs_d, _ = env.reset(seed=5)
    obs_a = core.reset(seed=5)
    names = env.possible_agents
    assert all(np.array_equal(obs_d[a], obs_a[i]) for i, a in enumerate(names))
    for _ in range(SMALL.episode_steps):
        arr = rng.uniform(-1, 1, (core.n_agents, 4)).astype(np.float32)
        obs_d, rew_d, term_d, trunc_d, info_d = env.step({a: arr[i] for i, a in enumerate(names)})
        obs_a, rew_a, term_a, trunc_a, info_a = core.step(arr)
        for i, a in enumerate(names):
            assert obs_d[a].tobytes() == obs_a[i].tobytes()
            assert rew_d[a] == rew_a[i]
            assert term_d[a] == bool(term_a[i]) and trunc_d[a] == bool(trunc_a[i])
            row = info_a["breakdown"][i]
            assert [info_d[a][k] for k in keys] == [row[BREAKDOWN_FIELDS.index(k)] for k in keys]
            assert set(info_d[a]) == set(keys) | {"shock"}
        for k, col in env.breakdown().items():
            assert np.array_equal(col, info_a["breakdown"][:, BREAKDOWN_FIELDS.index(k)])
        assert env.market_summary() == info_a["summary"]
    assert not env.agents and core.done


def test_pickled_env_continues_identically():
    env = small_env()
    rng = np.random.default_rng(4)
    env.reset(seed=9)
    for _ in range(5):
        env.step(random_actions(env, rng))
    clone = pickle.loads(pickle.dumps(env))
    rng_state = rng.bit_generator.state
    rest1 = []
    while env.agents:
        rest1.append(env.step(random_actions(env, rng)) + (env.market_summary(),))
    rng.bit_generator.state = rng_state
    rest2 = []
    while clone.agents:
        rest2.append(clone.step(random_actions(clone, rng)) + (clone.market_summary(),))
    assert len(rest1) == SMALL.episode_steps - 5
    assert_traj_equal(rest1, rest2)


# ---- spaces, names, metadata -----------------------------------------------------------------------

def test_spaces_are_shared_float32_boxes():
    env = small_env()
    obs_sp = env.observation_space(env.possible_agents[0])
    act_sp = env.action_space(env.possible_agents[0])
    for a in env.possible_agents:
        assert env.observation_space(a) is obs_sp and env.observation_space(a) is env.observation_space(a)
        assert env.action_space(a) is act_sp and env.action_space(a) is env.action_space(a)
        assert env.observation_spaces[a] is obs_sp and env.action_spaces[a] is act_sp
    assert isinstance(obs_sp, spaces.Box) and isinstance(act_sp, spaces.Box)
    assert obs_sp.dtype == np.float32 and act_sp.dtype == np.float32
    assert act_sp.shape == (4,)
    assert np.all(act_sp.low == -1.0) and np.all(act_sp.high == 1.0)
    assert obs_sp.shape == (len(OBS_NAMES),)
    with pytest.raises(ValueError, match="nobody_3"):
        env.observation_space("nobody_3")
    with pytest.raises(ValueError, match="nobody_3"):
        env.action_space("nobody_3")


def test_observations_inside_space_every_step():
    env = small_env()
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    steps = 0
    while True:
        assert list(obs) == env.possible_agents
        state = env.state() if env.state_mode == "full" else env.core.observe()
        assert state.dtype == np.float32 and state.shape == (len(obs), len(OBS_NAMES))
        for a in obs:
            assert np.array_equal(state[env.agent_index[a]], obs[a])
            o = obs[a]
            assert isinstance(o, np.ndarray) and o.dtype == np.float32 and o.shape == (len(OBS_NAMES),)
            assert env.observation_space(a).contains(o), (steps, a, o)
        if not env.agents:
            break
        # extreme actions too, to push observations towards their bounds
        acts = {a: rng.choice([-1.0, 1.0], 4).astype(np.float32) if steps % 2 else rng.uniform(-1, 1, 4)
                for a in env.agents}
        obs, *_ = env.step(acts)
        steps += 1
    assert steps == SMALL.episode_steps


@pytest.mark.parametrize("n", [None, 40, 200])
def test_agent_names_match_scenario_counts(n):
    kw = {} if n is None else {"n_agents": n}
    env = small_env(**kw)
    sc = env.scenario
    names = env.possible_agents
    expected = (
        [f"solar_{i}" for i in range(sc.n_solar)] + [f"wind_{i}" for i in range(sc.n_wind)]
        + [f"storage_{i}" for i in range(sc.n_storage)] + [f"consumer_{i}" for i in range(sc.n_consumers)]
    )
    assert names == expected
    assert len(set(names)) == len(names) == sc.n_agents
    if n is not None:
        assert sc.n_agents == n
    obs, infos = env.reset(seed=0)
    assert env.agents == names and list(obs) == names and list(infos) == names
    assert env.agents is not env.possible_agents


def test_metadata():
    env = small_env()
    assert env.metadata["name"] == "channel_market_v0"
    assert set(env.metadata["render_modes"]) == {"ansi", "rgb_array", "human"}
    assert channel_market_v0.raw_env is ChannelMarketEnv


# ---- infos, summary, rewards ----------------------------------------------------------------------

DOCUMENTED_INFO = {"profit", "revenue", "cost", "sold", "bought", "grid_sold", "grid_bought", "curtailed",
                   "unserved", "failed_payments"}


@pytest.mark.parametrize("info_keys", ["default", "all", "trade", ("profit", "unserved"), ()])
def test_infos_summary_and_rewards_every_step(info_keys):
    env = small_env() if info_keys == "default" else small_env(info_keys=info_keys)
    expected = {"default": set(DEFAULT_INFO_KEYS), "all": set(BREAKDOWN_FIELDS),
                "trade": set(TRADE_INFO_KEYS)}.get(info_keys, set(info_keys))
    assert DOCUMENTED_INFO <= set(BREAKDOWN_FIELDS)
    assert DEFAULT_INFO_KEYS == ()   # the infos revision: the shock code only, by default
    assert set(TRADE_INFO_KEYS) == {"revenue", "cost", "sold", "bought", "grid_sold", "grid_bought", "failed_payments"}
    rng = np.random.default_rng(2)
    env.reset(seed=2)
    s0 = env.market_summary()
    for k in SUMMARY_KEYS:
        assert k in s0
    traded = 0.0
    while env.agents:
        live = list(env.agents)
        obs, rew, term, trunc, infos = env.step(random_actions(env, rng))
        summ = env.market_summary()
        full = env.breakdown()
        assert set(full) == set(BREAKDOWN_FIELDS)
        assert set(rew) == set(infos) == set(term) == set(trunc) == set(obs) == set(live)
        for a in live:
            i = env.agent_index[a]
            assert set(infos[a]) == expected | {"shock"}
            assert infos[a]["shock"] == Shock[summ["shock"]] and type(infos[a]["shock"]) is int
            for k in expected:
                assert infos[a][k] == full[k][i] and np.isfinite(infos[a][k])
            assert isinstance(rew[a], float) and rew[a] == full["profit"][i]
            if "profit" in expected:
                assert rew[a] == infos[a]["profit"]
        for k in SUMMARY_KEYS:
            assert k in summ, k
        assert isinstance(summ["clearing_price"], float) and np.isfinite(summ["clearing_price"])
        assert isinstance(summ["trades"], int) and isinstance(summ["active_channels"], int)
        assert summ["volume"] >= 0 and summ["supply"] >= 0 and summ["demand"] >= 0
        assert summ["shock"] == "NONE"
        # volume equals what the agents bought and sold
        assert full["sold"].sum() == pytest.approx(summ["volume"], rel=1e-9, abs=1e-12)
        assert full["bought"].sum() == pytest.approx(summ["volume"], rel=1e-9, abs=1e-12)
        traded += summ["volume"]
    assert traded > 0, "nobody traded in a whole episode with random actions"


@pytest.mark.parametrize("bad", ["profit", "everything", ("profit", "shock"), ("prophet",), None, 3])
def test_bad_info_keys(bad):
    with pytest.raises(ValueError, match="info_keys") as ei:
        small_env(info_keys=bad)
    assert repr(bad) in str(ei.value)


def test_shock_in_infos_and_summary_after_inject():
    env = small_env()
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    env.inject_shock("demand_surge", 2)
    assert env.market_summary()["shock"] == "DEMAND_SURGE"
    _, _, _, _, infos = env.step(random_actions(env, rng))
    assert all(i["shock"] == Shock.DEMAND_SURGE for i in infos.values())
    _, _, _, _, infos = env.step(random_actions(env, rng))
    assert all(i["shock"] == Shock.NONE for i in infos.values())
    assert env.market_summary()["shock"] == "NONE"


def test_reset_option_shock_visible_in_first_observation():
    env = small_env()
    obs, _ = env.reset(seed=0, options={"shock": ("SUPPLY_SHORTAGE", 3)})
    col = OBS_NAMES.index("shock_supply_shortage")
    assert all(o[col] == 1.0 for o in obs.values())
    assert env.market_summary()["shock"] == "SUPPLY_SHORTAGE"


# ---- episode end ------------------------------------------------------------------------------------

def test_truncation_at_episode_steps_then_runtime_error_then_reset():
    env = small_env(episode_steps=5)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    for t in range(5):
        assert env.agents == env.possible_agents
        _, _, term, trunc, _ = env.step(random_actions(env, rng))
        assert not any(term.values())
        assert all(trunc.values()) == (t == 4) and any(trunc.values()) == (t == 4)
    assert env.agents == []
    with pytest.raises(RuntimeError, match="reset"):
        env.step({})
    with pytest.raises(RuntimeError, match="reset"):
        env.step({a: np.zeros(4) for a in env.possible_agents})
    env.reset(seed=1)
    assert env.agents == env.possible_agents
    env.step(random_actions(env, rng))


def test_step_before_reset_raises():
    env = small_env()
    with pytest.raises(RuntimeError, match="reset"):
        env.step({a: np.zeros(4) for a in env.possible_agents})


# ---- bad input: clear error, nothing changed -------------------------------------------------------

def _bad_actions(env):
    good = {a: np.zeros(4, dtype=np.float32) for a in env.agents}
    a0 = env.agents[3]
    cases = {
        "nan": (dict(good, **{a0: np.array([0, np.nan, 0, 0], np.float32)}), ValueError, [a0, "nan", "bid"]),
        "inf": (dict(good, **{a0: np.array([0, 0, np.inf, 0])}), ValueError, [a0, "inf"]),
        "neg_inf": (dict(good, **{a0: np.array([-np.inf, 0, 0, 0])}), ValueError, [a0, "-inf"]),
        "short": (dict(good, **{a0: np.zeros(3)}), ValueError, [a0, "(3,)", "(4,)"]),
        "long": (dict(good, **{a0: np.zeros(5)}), ValueError, [a0, "(5,)"]),
        "2d": (dict(good, **{a0: np.zeros((1, 4))}), ValueError, [a0, "(1, 4)"]),
        "scalar": (dict(good, **{a0: 0.5}), ValueError, [a0, "()"]),
        "string": (dict(good, **{a0: "buy"}), TypeError, [a0, "buy", "numeric"]),
        "none": (dict(good, **{a0: None}), TypeError, [a0, "None", "numeric"]),
        "none_in_row": (dict(good, **{a0: [None, 0.0, 0.0, 0.0]}), TypeError, [a0, "None", "numeric"]),
        "numeric_strings": (dict(good, **{a0: ["0.5", "1", "0", "0"]}), TypeError, [a0, "'0.5'", "numeric"]),
        "complex": (dict(good, **{a0: np.zeros(4, dtype=complex)}), TypeError, [a0, "numeric"]),
        "missing": ({a: v for a, v in good.items() if a != a0}, ValueError, [a0, "missing"]),
        "unknown": (dict(good, nobody_7=np.zeros(4)), ValueError, ["nobody_7", "unknown"]),
        "swapped": (dict({a: v for a, v in good.items() if a != a0}, nobody_7=np.zeros(4)), ValueError,
                    [a0, "nobody_7"]),
        "list": (list(good.values()), TypeError, ["dict", "list"]),
        "array": (np.zeros((len(good), 4)), TypeError, ["dict", "ndarray"]),
    }
    return cases


BAD_ACTION_CASES = ["nan", "inf", "neg_inf", "short", "long", "2d", "scalar", "string", "none", "none_in_row",
                    "numeric_strings", "complex", "missing", "unknown",
                    "swapped", "list", "array"]


@pytest.mark.parametrize("case", BAD_ACTION_CASES)
def test_bad_actions_raise_and_leave_state_untouched(case):
    env = small_env()
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    env.step(random_actions(env, rng))
    actions, exc, words = _bad_actions(env)[case]
    before = snapshot(env)
    summary_before = env.market_summary()
    with pytest.raises(exc) as ei:
        env.step(actions)
    msg = str(ei.value)
    for w in words:
        assert w in msg, (w, msg)
    assert_same_snapshot(before, snapshot(env))
    assert env.market_summary() == summary_before
    # and the env still works, exactly as a fresh one that never saw the bad input
    ref = small_env()
    ref.reset(seed=0)
    ref.step(random_actions(ref, np.random.default_rng(0)))
    acts = random_actions(env, np.random.default_rng(5))
    out1 = env.step(acts)
    out2 = ref.step(acts)
    assert_traj_equal([out1], [out2])


def test_finite_out_of_range_actions_are_clipped_not_rejected():
    e1, e2 = small_env(), small_env()
    e1.reset(seed=0)
    e2.reset(seed=0)
    big = {a: np.array([5.0, -7.0, 3.0, 2.0]) for a in e1.agents}
    clipped = {a: np.clip(v, -1, 1) for a, v in big.items()}
    assert_traj_equal([e1.step(big)], [e2.step(clipped)])


def test_unknown_kwarg_raises_type_error_naming_it():
    with pytest.raises(TypeError, match="episode_stepz"):
        channel_market_v0.parallel_env(scenario="energy_small", episode_stepz=5)
    with pytest.raises(TypeError, match="max_cycle"):
        channel_market_v0.env(scenario="energy_small", max_cycle=5)


@pytest.mark.parametrize("mode", ["HUMAN", "rgb", "ANSI", 3])
def test_bad_render_mode(mode):
    with pytest.raises(ValueError, match="render_mode") as ei:
        channel_market_v0.parallel_env(scenario="energy_small", render_mode=mode)
    assert repr(mode) in str(ei.value) and "ansi" in str(ei.value) and "rgb_array" in str(ei.value)


def test_unknown_reset_options_warn_and_bad_shock_option_raises_before_reset():
    env = small_env()
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    env.step(random_actions(env, rng))
    # unknown keys are named in a warning (PettingZoo's own api tests pass options={"options": 1})
    with pytest.warns(UserWarning, match="colour"):
        env.reset(seed=0, options={"colour": "red"})
    env.step(random_actions(env, rng))
    before = snapshot(env)
    for opts, exc, word in [
        ({"shock": ("EARTHQUAKE", 3)}, ValueError, "EARTHQUAKE"),
        ({"shock": ("DEMAND_SURGE", 0)}, ValueError, "duration"),
        ({"shock": "DEMAND_SURGE"}, ValueError, "shock"),
        ("shock", TypeError, "options"),
    ]:
        with pytest.raises(exc, match=word):
            env.reset(seed=1, options=opts)
        assert_same_snapshot(before, snapshot(env))


@pytest.mark.parametrize("kind,duration,exc,word", [
    ("EARTHQUAKE", 3, ValueError, "EARTHQUAKE"),
    ("NONE", 3, ValueError, "NONE"),
    (0, 3, ValueError, "0"),
    (9, 3, ValueError, "9"),
    (1.5, 3, TypeError, "float"),
    ("DEMAND_SURGE", 0, ValueError, "duration"),
    ("DEMAND_SURGE", -2, ValueError, "-2"),
    ("DEMAND_SURGE", 2.5, ValueError, "2.5"),
    ("DEMAND_SURGE", True, ValueError, "True"),
])
def test_inject_bad_shock_raises_and_leaves_state(kind, duration, exc, word):
    env = small_env()
    env.reset(seed=0)
    env.step(random_actions(env, np.random.default_rng(0)))
    before = snapshot(env)
    with pytest.raises(exc, match=word):
        env.inject_shock(kind, duration)
    assert_same_snapshot(before, snapshot(env))
    assert env.market_summary()["shock"] == "NONE"


# ---- render ----------------------------------------------------------------------------------------

def test_render_ansi_mentions_price():
    env = small_env(render_mode="ansi")
    env.reset(seed=0)
    env.step(random_actions(env, np.random.default_rng(0)))
    out = env.render()
    assert isinstance(out, str) and "price" in out
    assert f"{env.market_summary()['clearing_price']:.2f}" in out
    env.inject_shock("SUPPLY_SURPLUS", 3)
    assert "SUPPLY_SURPLUS" in env.render()


def test_render_rgb_array():
    env = small_env(render_mode="rgb_array")
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    env.inject_shock("DEMAND_DROP", 2)
    for _ in range(3):
        env.step(random_actions(env, rng))
    img = env.render()
    assert isinstance(img, np.ndarray) and img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8
    assert img.shape[0] > 50 and img.shape[1] > 50
    assert img.min() < img.max()  # something is drawn


def test_render_without_mode_returns_none():
    env = small_env()
    env.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert env.render() is None


# ---- kwargs -------------------------------------------------------------------------------------

def test_n_agents_kwarg():
    env = channel_market_v0.parallel_env(n_agents=200)
    assert len(env.possible_agents) == 200 and env.scenario.n_agents == 200
    obs, _ = env.reset(seed=0)
    assert len(obs) == 200
    out = env.step({a: env.action_space(a).sample() for a in env.agents})
    assert len(out[1]) == 200


def test_field_override_kwarg():
    env = channel_market_v0.parallel_env(scenario="energy_small", episode_steps=5)
    assert env.scenario.episode_steps == 5
    assert env.scenario.replace(episode_steps=SMALL.episode_steps) == SMALL
    aec = channel_market_v0.env(scenario="energy_small", episode_steps=5)
    assert aec.unwrapped.scenario.episode_steps == 5


def test_scenario_object_and_dict_accepted():
    sc = SMALL.replace(name="mine", episode_steps=3)
    e1 = channel_market_v0.parallel_env(scenario=sc)
    e2 = channel_market_v0.parallel_env(scenario=sc.to_dict())
    assert e1.scenario == e2.scenario == sc
    assert isinstance(e1.scenario, Scenario)

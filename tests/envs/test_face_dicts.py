"""The dict face's fast translation (the PettingZoo face at 10k agents): every step returns fresh
per-agent dicts equal to the array core's rows, agents that leave drop out, observations do not
alias anything a later step changes, and bad input still raises naming the agent."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channelmarket import MarketCore, channel_market_v0, channel_market_v1
from channelmarket.envs.channel_market import _info_maker
from channelmarket.envs.settlement import BREAKDOWN_FIELDS
from channelmarket.envs.shocks import Shock

FAULTY = dict(scenario="energy_lightning", n_solar=6, n_wind=3, n_storage=3, n_residential=10, n_industrial=3,
              mean_degree=3, episode_steps=20, agent_fault_rate=0.05)


def test_dicts_equal_the_array_core_rows_while_agents_leave():
    """The dict face against the array API on the same seed and actions: rewards, terminations,
    truncations, infos and observations per live agent, through agents failing and the episode end."""
    assert _check_against_core(channel_market_v1.parallel_env(info_keys="all", **FAULTY), seed=4) > 0


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**31), fault=st.floats(0.0, 0.2), n_keys=st.integers(1, len(BREAKDOWN_FIELDS)),
       partner=st.booleans())
def test_dicts_equal_the_array_core_rows_for_any_faults_and_info_keys(seed, fault, n_keys, partner):
    keys = tuple(np.random.default_rng(seed).permutation(BREAKDOWN_FIELDS)[:n_keys].tolist())
    env = channel_market_v1.parallel_env(info_keys=keys, **dict(FAULTY, agent_fault_rate=fault, episode_steps=8,
                                                               partner_action=partner))
    _check_against_core(env, seed)


def _check_against_core(env, seed: int) -> int:
    """Steps `env` and the array core side by side to the episode end; returns how many agents left."""
    core = MarketCore(env.scenario)
    env.reset(seed=seed)
    core.reset(seed=seed)
    rng = np.random.default_rng(seed)
    width = core.n_actions
    keys = env.info_keys[:-1]
    names = env.possible_agents
    left = 0
    while env.agents:
        alive = list(env.agents)
        acts = rng.uniform(-1, 1, (core.n_agents, width))
        obs, rew, term, trunc, infos = env.step({a: acts[env.agent_index[a]].astype(np.float32) for a in alive})
        o, r, te, tr, info = core.step(acts.astype(np.float32).astype(np.float64) * np.isin(names, alive)[:, None])
        for d in (obs, rew, term, trunc, infos):
            assert list(d) == alive
        idx = [env.agent_index[a] for a in alive]
        assert [rew[a] for a in alive] == r[idx].tolist()
        assert [term[a] for a in alive] == te[idx].tolist() and all(type(x) is bool for x in term.values())
        assert [trunc[a] for a in alive] == tr[idx].tolist()
        assert np.array_equal(np.stack([obs[a] for a in alive]), o[idx])
        bd = info["breakdown"]
        shock = int(core.state.shock_kind)
        for a, i in zip(alive, idx):
            row = dict(zip(BREAKDOWN_FIELDS, bd[i].tolist()))
            assert infos[a] == {**{k: row[k] for k in keys}, "shock": shock}
            assert list(infos[a]) == list(env.info_keys)
        assert len({id(v) for v in infos.values()}) == len(alive)    # one dict per agent
        assert env.agents == [a for a in alive if not (term[a] or trunc[a])]
        left += sum(term.values())
    assert core.done
    return left


def test_returned_dicts_and_observations_are_not_reused_by_later_steps():
    env = channel_market_v0.parallel_env(scenario="energy_small")
    obs0, _ = env.reset(seed=1)
    rng = np.random.default_rng(1)
    out = env.step({a: rng.uniform(-1, 1, 4) for a in env.agents})
    kept = [{a: (v.copy() if isinstance(v, np.ndarray) else (dict(v) if isinstance(v, dict) else v))
             for a, v in d.items()} for d in out]
    start = {a: v.copy() for a, v in obs0.items()}
    for _ in range(3):
        nxt = env.step({a: rng.uniform(-1, 1, 4) for a in env.agents})
        for d_old, d_new in zip(out, nxt):
            assert d_old is not d_new
    for d, k in zip(out, kept):   # the first step's dicts and observations are as they were returned
        for a in k:
            if isinstance(k[a], np.ndarray):
                assert np.array_equal(d[a], k[a])
            else:
                assert d[a] == k[a]
    assert all(np.array_equal(obs0[a], start[a]) for a in start)
    # changing what a step returned changes nothing the env keeps
    out[2][env.agents[0]] = True
    out[4][env.agents[0]]["revenue"] = -1.0
    out[0][env.agents[0]][:] = 0.0
    nxt = env.step({a: np.zeros(4) for a in env.agents})
    assert set(nxt[2].values()) == {False}
    assert nxt[4][env.agents[0]] is not out[4][env.agents[0]] and nxt[0][env.agents[0]].any()


def test_reset_and_step_infos_share_keys_and_types():
    env = channel_market_v0.parallel_env(scenario="energy_small")
    _, infos0 = env.reset(seed=0)
    _, _, _, _, infos = env.step({a: np.zeros(4) for a in env.agents})
    for a in env.agents:
        assert list(infos0[a]) == list(infos[a]) == list(env.info_keys)
        assert all(type(infos[a][k]) is float for k in env.info_keys[:-1]) and type(infos[a]["shock"]) is int
    env.inject_shock("demand_surge", 3)
    _, _, _, _, infos = env.step({a: np.zeros(4) for a in env.agents})
    assert {i["shock"] for i in infos.values()} == {int(Shock.DEMAND_SURGE)}


def test_info_maker_builds_dicts_of_checked_keys_only():
    mk = _info_maker(("revenue", "cost", "shock"))
    a, b = mk(1.0, 2.0, 3), mk(1.0, 2.0, 3)
    assert a == {"revenue": 1.0, "cost": 2.0, "shock": 3} and a is not b
    with pytest.raises(ValueError, match="info keys"):
        _info_maker(("revenue", "__import__('os')"))


@pytest.mark.parametrize("case", ["missing", "extra", "unknown", "dead", "ragged", "bool", "masked", "nan",
                                  "column", "scalar", "flat_pair", "int_keys"])
def test_bad_action_dicts_name_the_agent(case):
    env = channel_market_v1.parallel_env(**FAULTY)
    env.reset(seed=4)
    rng = np.random.default_rng(0)
    while len(env.agents) == env.core.n_agents:   # until an agent has failed
        env.step({a: rng.uniform(-1, 1, 4) for a in env.agents})
    dead = next(a for a in env.possible_agents if a not in env.agents)
    acts = {a: np.zeros(4, np.float32) for a in env.agents}
    target = env.agents[3]
    if case == "missing":
        del acts[target]
    elif case == "extra":
        acts[dead] = np.zeros(4)
    elif case == "unknown":
        del acts[target]
        acts["nobody_0"] = np.zeros(4)
    elif case == "dead":
        del acts[target]
        acts[dead] = np.zeros(4)
    elif case == "ragged":
        acts[target] = np.zeros(3)
    elif case == "bool":
        acts[target] = np.zeros(4, bool)
    elif case == "masked":
        acts[target] = np.ma.masked_array(np.zeros(4))
    elif case == "column":   # four numbers, but shaped (4, 1): the fast path checks each row's ndim
        acts[target] = np.zeros((4, 1), np.float32)
    elif case == "scalar":
        acts[target] = np.float32(0.0)
    elif case == "flat_pair":   # rows of 2 and 6 numbers: the joined bytes have the right length
        acts[target], acts[env.agents[4]] = np.zeros(2, np.float32), np.zeros(6, np.float32)
    elif case == "int_keys":   # as many keys as live agents, none of them a name
        acts = dict(enumerate(acts.values()))
        target = 0
    else:
        acts[target] = np.array([0.0, np.nan, 0.0, 0.0])
    t = env.core.state.t
    with pytest.raises((ValueError, TypeError)) as err:
        env.step(acts)
    name = dead if case in ("extra",) else (target if case != "unknown" else "nobody_0")
    assert repr(name) in str(err.value)
    assert env.core.state.t == t


def test_default_infos_are_one_fresh_dict_per_agent_and_step():
    """The default infos are copies of one {"shock": code} dict: writing into one agent's info
    changes no other agent's, no later step's and no later reset's."""
    env = channel_market_v0.parallel_env(scenario="energy_small")
    _, infos0 = env.reset(seed=0)
    a, b = env.agents[:2]
    assert infos0[a] == infos0[b] == {"shock": 0} and infos0[a] is not infos0[b]
    infos0[a]["shock"], infos0[a]["mine"] = 7, 1
    _, _, _, _, infos = env.step({x: np.zeros(4) for x in env.agents})
    assert all(i == {"shock": 0} for i in infos.values()) and len({id(i) for i in infos.values()}) == len(infos)
    infos[b]["shock"] = 9
    env.inject_shock("supply_shortage", 2)
    _, _, _, _, nxt = env.step({x: np.zeros(4) for x in env.agents})
    assert {tuple(i.items()) for i in nxt.values()} == {(("shock", int(Shock.SUPPLY_SHORTAGE)),)}
    assert infos[b] == {"shock": 9} and infos[a] == {"shock": 0}
    _, again = env.reset(seed=0)
    assert all(i == {"shock": 0} for i in again.values())


def test_action_dict_in_any_key_order_reads_the_same_array():
    env = channel_market_v0.parallel_env(scenario="energy_small")
    env.reset(seed=0)
    rows = np.random.default_rng(3).uniform(-1, 1, (len(env.agents), 4)).astype(np.float32)
    ordered = dict(zip(env.agents, rows))
    shuffled = dict(reversed(list(ordered.items())))
    assert list(shuffled) != env.agents
    assert np.array_equal(env._actions_array(ordered), env._actions_array(shuffled))
    assert np.array_equal(env._actions_array(ordered), rows.astype(np.float64))


def test_history_len_zero_keeps_no_summaries_and_none_keeps_all():
    env = channel_market_v0.parallel_env(scenario="energy_small", history_len=0)
    env.reset(seed=0)
    for _ in range(3):
        env.step({a: np.zeros(4) for a in env.agents})
    assert len(env.history) == 0 and env.market_summary()["t"] == 3
    env = channel_market_v0.parallel_env(scenario="energy_small", history_len=None)
    env.reset(seed=0)
    for _ in range(3):
        env.step({a: np.zeros(4) for a in env.agents})
    assert [h["t"] for h in env.history] == [0, 1, 2, 3]


@pytest.mark.parametrize("form", ["f32_views", "f64_own", "f_order_views", "big_endian", "ints", "mixed_dtypes",
                                  "lists", "strided"])
def test_every_form_of_action_rows_reads_as_the_same_array(form):
    env = channel_market_v0.parallel_env(scenario="energy_small")
    env.reset(seed=0)
    n = len(env.agents)
    base = np.random.default_rng(0).uniform(-1, 1, (n, 4)).astype(np.float32).astype(np.float64)
    if form == "ints":
        base = np.round(base)
    rows = {
        "f32_views": lambda: list(base.astype(np.float32)),
        "f64_own": lambda: [r.copy() for r in base],
        "f_order_views": lambda: list(np.asfortranarray(base)),
        "big_endian": lambda: list(base.astype(">f8")),
        "ints": lambda: list(base.astype(np.int64)),
        "mixed_dtypes": lambda: [r.astype(np.float32) if i % 2 else r for i, r in enumerate(base)],
        "lists": lambda: [r.tolist() for r in base],
        "strided": lambda: list(np.repeat(base, 2, axis=1)[:, ::2]),
    }[form]()
    got = env._actions_array(dict(zip(env.agents, rows)))
    assert got.dtype == np.float64 and np.array_equal(got, base)


@pytest.mark.filterwarnings(r"ignore:reset options \['options'\] are unknown and ignored:UserWarning")  # PettingZoo's test passes reset(options={"options": 1})
def test_pettingzoo_api_tests_with_the_partner_action():
    from pettingzoo.test import api_test, parallel_api_test

    parallel_api_test(channel_market_v0.parallel_env(scenario="energy_small", partner_action=True), num_cycles=30)
    api_test(channel_market_v0.env(scenario="energy_small", partner_action=True), num_cycles=5)


def _face_calls(n_agents: int, **kw) -> tuple[int, int]:
    """Python-level calls of the face's own code (the env module's functions, generated info
    makers) during one dict step of a market of about `n_agents` agents, and its agent count."""
    import sys

    from channelmarket.envs import channel_market as cm

    env = channel_market_v0.parallel_env(scenario="energy_small", n_agents=n_agents, **kw)
    env.reset(seed=0)
    acts = dict(zip(env.agents, np.zeros((len(env.agents), 4), np.float32)))
    calls = 0

    def count(frame, event, arg):
        nonlocal calls
        if event == "call" and frame.f_code.co_filename in (cm.__file__, "<info keys>"):
            calls += 1

    env.step(dict(acts))   # first-call work (cached info makers, lazy imports) is not per step
    sys.setprofile(count)
    try:
        env.step(acts)
    finally:
        sys.setprofile(None)
    return calls, len(env.agents)


def test_the_face_runs_no_python_code_per_agent():
    """With the default infos a dict step runs as much of the face's Python code at 400 agents as
    at 40 (every per-agent pass is a C-level map or copy); with breakdown fields in the infos, one
    generated call per agent builds its info dict, and nothing else grows."""
    (small, n_small), (big, n_big) = _face_calls(40), _face_calls(400)
    assert n_big > 5 * n_small and small == big
    (small, n_small), (big, n_big) = _face_calls(40, info_keys="trade"), _face_calls(400, info_keys="trade")
    assert big - small == n_big - n_small

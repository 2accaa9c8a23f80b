"""Checkpoints of the PettingZoo face (issue 10): state_dict / load_state_dict and pickle continue
bit-identically; bad dicts are refused with the field named and nothing changed. And
`channel_market_v1`: the sound market's defaults under the same env class."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

from channelmarket import channel_market_v0, channel_market_v1
from channelmarket.envs.scenario import SOUND_MARKET


def _actions(env, rng):
    return {a: rng.uniform(-1, 1, 4).astype(np.float32) for a in env.agents}


def _run(env, rng, steps):
    out = []
    for _ in range(steps):
        if not env.agents:
            break
        obs, rew, term, trunc, infos = env.step(_actions(env, rng))
        out.append((np.stack(list(obs.values())).tobytes(), np.array(list(rew.values())).tobytes(),
                    sorted(term.items()), env.market_summary()))
    return out


@pytest.mark.parametrize("module, kw", [(channel_market_v0, dict(scenario="energy_small", shock_rate=0.2)),
                                        (channel_market_v1, dict(scenario="energy_small", episode_steps=20))])
def test_restored_and_unpickled_envs_continue_bit_identically(module, kw):
    env = module.parallel_env(**kw)
    env.reset(seed=7)
    _run(env, np.random.default_rng(1), 5)
    env.core.remove_agents(np.array([0, 3]))           # agents that left are part of the state
    _run(env, np.random.default_rng(2), 2)
    sd = copy.deepcopy(env.unwrapped.state_dict())
    blob = pickle.dumps(env)
    want = _run(env, np.random.default_rng(3), 30)

    fresh = module.parallel_env(**kw)                   # never reset: the state dict is enough
    fresh.load_state_dict(sd)
    assert fresh.agents == sd["agents"] and list(fresh.history) == sd["history"]
    assert _run(fresh, np.random.default_rng(3), 30) == want
    thawed = pickle.loads(blob)
    assert _run(thawed, np.random.default_rng(3), 30) == want
    # a seedless reset continues the seed stream the same way
    env.reset()
    fresh.reset()
    assert _run(env, np.random.default_rng(4), 3) == _run(fresh, np.random.default_rng(4), 3)


def _saved():
    env = channel_market_v0.parallel_env(scenario="energy_small")
    env.reset(seed=0)
    _run(env, np.random.default_rng(0), 3)
    return env, env.state_dict()


@pytest.mark.parametrize("edit, match", [
    (lambda d: d.pop("history"), "missing 'history'"),
    (lambda d: d.update(extra=1), "unknown 'extra'"),
    (lambda d: d.update(env_format=2), "env_format"),
    (lambda d: d.update(env="channel_market_v1"), "this env is 'channel_market_v0'"),
    (lambda d: d.update(agents=["solar_0", "martian_1"]), "martian_1"),
    (lambda d: d.update(agents=["wind_0", "solar_0"]), "env's order"),
    (lambda d: d.update(history="x"), "history"),
    (lambda d: d["core"].pop("generators"), "missing 'generators'"),
    (lambda d: d["core"]["state"].update(wallet=d["core"]["state"]["wallet"][:-1]), "wallet"),
    (lambda d: d["core"]["state"].update(partner=np.full(12, 99, np.int32)), "partner"),
    (lambda d: d["core"]["state"]["active"].__setitem__(0, False), "solar_0"),
])
def test_bad_env_state_dicts_are_named_and_change_nothing(edit, match):
    env, sd = _saved()
    bad = copy.deepcopy(sd)
    edit(bad)
    before = env.state_dict()
    with pytest.raises((ValueError, TypeError), match=match):
        env.load_state_dict(bad)
    after = env.state_dict()
    assert after["agents"] == before["agents"] and after["history"] == before["history"]
    assert np.array_equal(after["core"]["state"]["wallet"], before["core"]["state"]["wallet"])
    with pytest.raises(TypeError, match="must be a dict"):
        env.load_state_dict([1])
    # a core dict handed to the env is named as such
    with pytest.raises(ValueError, match="env.core.load_state_dict"):
        env.load_state_dict(sd["core"])


def test_v1_applies_the_sound_market_and_keywords_win():
    env = channel_market_v1.parallel_env()
    assert env.metadata["name"] == "channel_market_v1" and env.scenario.name == "energy_lightning"
    assert all(getattr(env.scenario, k) == v for k, v in SOUND_MARKET.items())
    small = channel_market_v1.parallel_env(scenario="energy_small", network_charge=0.0, n_agents=20)
    assert small.scenario.network_charge == 0.0 and small.scenario.grid_billing == "energy_account"
    assert small.scenario.n_agents == 20
    v0 = channel_market_v0.parallel_env(scenario="energy_small")
    assert v0.scenario.topology == "random" and v0.scenario.grid_billing == "wallet"


@pytest.mark.filterwarnings(r"ignore:reset options \['options'\] are unknown and ignored:UserWarning")  # PettingZoo's test passes reset(options={"options": 1})
def test_v1_passes_the_pettingzoo_parallel_api_test():
    from pettingzoo.test import parallel_api_test

    parallel_api_test(channel_market_v1.parallel_env(scenario="energy_small", episode_steps=8), num_cycles=10)

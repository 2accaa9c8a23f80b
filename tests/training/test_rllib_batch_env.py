"""The batched RLlib env without Ray: its reset/step dicts are the rows of one `BatchCore`'s arrays,
agent ids "m<market>/<agent>" market-major, policies mapped by kind as for one market, and the M
markets end together."""

from __future__ import annotations

import numpy as np
import pytest

from channelmarket import MarketCore
from channelmarket.envs.channel_market import DEFAULT_INFO_KEYS, TRADE_INFO_KEYS
from channelmarket.envs.settlement import BREAKDOWN_FIELDS
from channelmarket.training.rllib_batch_env import BatchMarketDicts, batch_kwargs, batch_policy_map
from channelmarket.training.rllib_config import RLlibConfig
from channelmarket.training.rllib_env import policy_map

M, STEPS = 3, 4
EC = {"scenario": "energy_small", "episode_steps": STEPS, "markets_per_env": M}


@pytest.mark.parametrize("info_keys", [None, "trade"])
def test_reset_and_step_dicts_are_the_batch_arrays(info_keys):
    env = BatchMarketDicts(EC if info_keys is None else {**EC, "info_keys": info_keys})
    fields = DEFAULT_INFO_KEYS if info_keys is None else TRADE_INFO_KEYS
    core = MarketCore("energy_small", n_markets=M, episode_steps=STEPS)   # the same batch, stepped by hand
    names = MarketCore("energy_small").agent_names()
    n = len(names)
    ids = [f"m{m}/{a}" for m in range(M) for a in names]
    assert env.possible_agents == ids

    obs, infos = env.reset(seed=7)
    ref = core.reset(seed=7)
    assert list(obs) == ids and set(infos) == set(ids)
    np.testing.assert_array_equal(np.stack([obs[a] for a in ids]), ref)
    assert all(set(i) == set(fields) | {"shock"} for i in infos.values())
    cols = [BREAKDOWN_FIELDS.index(k) for k in fields]
    rng = np.random.default_rng(0)
    for t in range(STEPS):
        acts = rng.uniform(-1, 1, (M * n, 4)).astype(np.float32)
        obs, rew, term, trunc, infos = env.step(dict(zip(ids, acts)))
        r_obs, r_rew, r_term, r_trunc, r_info = core.step(acts.astype(np.float64))
        np.testing.assert_array_equal(np.stack([obs[a] for a in ids]), r_obs)
        np.testing.assert_array_equal([rew[a] for a in ids], r_rew)
        assert [term[a] for a in ids] == r_term.tolist() and [trunc[a] for a in ids] == r_trunc.tolist()
        np.testing.assert_array_equal(np.array([[infos[a][k] for k in fields] for a in ids]).reshape(len(ids), -1),
                                      r_info["breakdown"][:, cols])
        assert [infos[a]["shock"] for a in ids] == r_info["shock"][core.market_of].tolist()
        last = t == STEPS - 1
        assert trunc["__all__"] is last and term["__all__"] is False   # one day of all M markets, ending together
    assert env.agents == []
    with pytest.raises(RuntimeError, match="call reset"):
        env.step({})
    env.reset(seed=1)
    with pytest.raises(ValueError, match="missing"):
        env.step({ids[0]: np.zeros(4)})


def test_policies_map_by_kind_in_every_market():
    one = policy_map({"scenario": "energy_small"}, "kind")
    many = batch_policy_map({"scenario": "energy_small", "markets_per_env": 2}, "kind")
    assert many == {f"m{m}/{a}": k for m in range(2) for a, k in one.items()}
    roles = batch_policy_map({"scenario": "energy_small", "markets_per_env": 2}, "role")
    assert set(roles.values()) == {"pricing", "bidding"}


@pytest.mark.parametrize("env_config, match", [
    ({"scenario": "energy_small", "markets_per_env": 0}, "markets_per_env = 0"),
    ({"scenario": "energy_small", "markets_per_env": True}, "markets_per_env = True"),
    ({"scenario": "energy_small", "markets_per_env": 2, "state_mode": "full"}, "state_mode"),
])
def test_bad_env_config_is_refused(env_config, match):
    with pytest.raises(ValueError, match=match):
        batch_kwargs(env_config)


def test_config_field_is_validated_and_reaches_the_env_config():
    assert "markets_per_env" not in RLlibConfig().env_config   # one market: the PettingZoo face, as before
    assert RLlibConfig(markets_per_env=8).env_config["markets_per_env"] == 8
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="markets_per_env"):
            RLlibConfig(markets_per_env=bad)
    with pytest.raises(ValueError, match="render_mode"):
        RLlibConfig(markets_per_env=2, env={"render_mode": "ansi"})
    assert RLlibConfig.from_dict(RLlibConfig(markets_per_env=4).to_dict()).markets_per_env == 4


def test_cli_flag_sets_markets_per_env(tmp_path):
    from channelmarket.training.cli import build_parser, resolve_rllib_config

    args = build_parser().parse_args(["--backend", "rllib", "--markets-per-env", "8", "--out", str(tmp_path / "r")])
    cfg, _ = resolve_rllib_config(args)
    assert cfg.markets_per_env == 8

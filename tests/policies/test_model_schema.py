"""A saved model carries its observation schema: a market with another schema is refused with a
clear error, the same schema is accepted, and a model saved before schemas loads with a warning."""

from __future__ import annotations

import io
import json
import warnings

import numpy as np
import pytest

sb3 = pytest.importorskip("stable_baselines3")
torch = pytest.importorskip("torch")

from channelmarket import MarketCore
from channelmarket.envs.obs_schema import observation_schema
from channelmarket.envs.files import atomic_write_bytes
from channelmarket.policies import run_episode
from channelmarket.policies.learned import load, write_meta


@pytest.fixture(scope="module")
def sb3_run(tmp_path_factory):
    """A run folder as `channelmarket train` writes it (untrained network), with its schema."""
    from channelmarket.training.vec_env import MarketVecEnv

    env = MarketVecEnv("energy_small", n_markets=1, seed=0)
    model = sb3.PPO("MlpPolicy", env, n_steps=16, batch_size=16, seed=0,
                    policy_kwargs=dict(net_arch=dict(pi=[8], vf=[8])))
    out = tmp_path_factory.mktemp("run")
    buf = io.BytesIO()
    model.save(buf)
    atomic_write_bytes(out / "model.zip", buf.getvalue())
    write_meta(out / "model.zip", {"algo": "ppo", "name": "learned:ppo", "members": [
        {"file": "model.zip", "vecnormalize": None, "kinds": ["solar", "wind", "storage", "consumer"]}]},
        schema=observation_schema("energy_small"))
    return out


def test_sb3_model_json_stores_the_schema(sb3_run):
    meta = json.loads((sb3_run / "model.json").read_text())
    assert meta["obs_schema"] == {"version": 1, "columns": list(observation_schema("energy_small").columns)}


def test_sb3_matching_market_accepted(sb3_run):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pol = load(sb3_run)
        res = run_episode(MarketCore("energy_small", episode_steps=4), pol, seed=0)
    assert res.n_steps == 4


def test_sb3_other_schema_refused(sb3_run):
    pol = load(sb3_run)
    core = MarketCore("energy_ev")
    core.reset(seed=0)
    with pytest.raises(ValueError, match=r"model 'learned:ppo' was built for an observation of 30 columns, the "
                                         r"market observes 31; first difference at column 30: built for nothing"):
        pol.bind(core, np.arange(core.n_agents))
    assert pol.core is None            # refused before anything changed


def test_sb3_legacy_model_loads_with_a_warning(sb3_run, tmp_path):
    meta = json.loads((sb3_run / "model.json").read_text())
    del meta["obs_schema"]
    (tmp_path / "model.zip").write_bytes((sb3_run / "model.zip").read_bytes())
    (tmp_path / "model.json").write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match="without an observation schema.*standard 30-column layout"):
        pol = load(tmp_path)
    assert pol.model_schema == observation_schema("energy_small")
    run_episode(MarketCore("energy_small", episode_steps=2), pol, seed=0)
    core = MarketCore("energy_ev")
    core.reset(seed=0)
    with pytest.raises(ValueError, match="first difference at column 30"):
        pol.bind(core, np.arange(core.n_agents))


def test_sb3_schema_and_network_sizes_must_agree(sb3_run, tmp_path):
    meta = json.loads((sb3_run / "model.json").read_text())
    meta["obs_schema"] = observation_schema("energy_ev").to_dict()
    (tmp_path / "model.zip").write_bytes((sb3_run / "model.zip").read_bytes())
    (tmp_path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="network takes 30 observation columns, its obs_schema has 31"):
        load(tmp_path)


# ---- IPPO -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ippo_state(tmp_path_factory):
    from channelmarket.training.ippo import IPPOConfig, IPPOTrainer

    cfg = IPPOConfig(scenario="energy_small", total_steps=24, n_markets=1, rollout_steps=24, learners="sellers",
                     background="zero_intelligence", progress=False, minibatch_size=64, hidden_sizes=(8,))
    return IPPOTrainer(cfg, tmp_path_factory.mktemp("ippo")).model_state()


def test_ippo_model_state_stores_the_schema(ippo_state, tmp_path):
    from channelmarket.policies.ippo_policy import load_ippo

    assert ippo_state["obs_schema"]["columns"] == list(observation_schema("energy_small").columns)
    buf = io.BytesIO()
    torch.save(ippo_state, buf)
    (tmp_path / "ippo_model.pt").write_bytes(buf.getvalue())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pol = load_ippo(tmp_path)          # weights_only load keeps the schema
    run_episode(MarketCore("energy_small", episode_steps=3), pol, seed=0)
    core = MarketCore("energy_ev")
    core.reset(seed=0)
    with pytest.raises(ValueError, match="model 'ippo' was built for an observation of 30 columns"):
        pol.bind(core, np.arange(core.n_agents))


def test_ippo_legacy_model_loads_with_a_warning(ippo_state):
    from channelmarket.policies.ippo_policy import IPPOPolicy

    old = {k: v for k, v in ippo_state.items() if k != "obs_schema"}
    with pytest.warns(UserWarning, match="without an observation schema.*standard 30-column layout"):
        pol = IPPOPolicy(old)
    run_episode(MarketCore("energy_small", episode_steps=2), pol, seed=0)
    bad = dict(ippo_state, obs_schema={"version": 1, "columns": ["a", "b"]})
    with pytest.raises(ValueError, match="obs_schema has 2 columns, obs_dim is 30"):
        IPPOPolicy(bad)

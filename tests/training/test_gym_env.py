"""The single-agent Gymnasium view (`training.gym_env`) and its registered id: Gymnasium's and
SB3's env checkers, reproducible seeded PPO across resets, opponents from a baseline or a model."""

from __future__ import annotations

import warnings
from importlib.metadata import entry_points

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env

import channelmarket  # noqa: F401  (registers the ids)
from channelmarket.envs.settlement import BREAKDOWN_FIELDS
from channelmarket.gym_ids import ENV_IDS
from channelmarket.training.gym_env import SingleAgentMarketEnv

sb3 = pytest.importorskip("stable_baselines3")

ENV_ID = "channelmarket/SingleAgentMarket-v0"


def test_id_registered_and_entry_point_declared():
    assert ENV_ID in gym.registry
    eps = {ep.name: ep.value for ep in entry_points(group="gymnasium.envs")}
    assert eps.get("channelmarket") == "channelmarket.gym_ids:register_envs"
    env = gym.make(ENV_ID, kind="solar", opponents="zero_intelligence", episode_steps=8)
    assert isinstance(env.unwrapped, SingleAgentMarketEnv)
    assert env.unwrapped.agent_name == "solar_0"
    # the "module:id" form imports the package itself
    assert gym.make(f"channelmarket:{ENV_ID}").unwrapped.kind == "storage"
    assert set(ENV_IDS) == {ENV_ID}


@pytest.mark.parametrize("kind,opponents", [("storage", "truthful"), ("consumer", "random"), ("solar", "risk_factor")])
def test_gymnasium_and_sb3_check_env(kind, opponents):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = SingleAgentMarketEnv(kind=kind, opponents=opponents, episode_steps=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")       # no checker warning either
        gym_check_env(env, skip_render_check=True)
        sb3_check_env(SingleAgentMarketEnv(kind=kind, opponents=opponents, episode_steps=8))


def test_episode_infos_and_truncation():
    env = SingleAgentMarketEnv(kind="consumer", agent=2, opponents="random", episode_steps=5)
    obs, info = env.reset(seed=0)
    keys = set(info)
    assert keys == set(BREAKDOWN_FIELDS) | {"shock"}
    assert env.observation_space.contains(obs)
    for t in range(5):
        obs, rew, term, trunc, info = env.step(env.action_space.sample())
        assert set(info) == keys and isinstance(rew, float) and not term
        assert trunc == (t == 4)
        assert rew == info["profit"]
    assert env.render() is None


def test_seedless_resets_continue_the_seeded_stream():
    def episodes():
        env = SingleAgentMarketEnv(opponents="random", episode_steps=3)
        out = [env.reset(seed=11)[0]]
        env.action_space.seed(0)
        for _ in range(3):
            for _ in range(3):
                o, *_ = env.step(env.action_space.sample())
                out.append(o)
            out.append(env.reset()[0])
        return np.stack(out)

    a, b = episodes(), episodes()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[0], a[4])


@pytest.mark.parametrize("bad,match", [(dict(kind="wizard"), "kind = 'wizard'"), (dict(agent=99), "agent = 99"),
                                       (dict(kind="ev"), "no ev agents"), (dict(opponents="nobody"), "nobody"),
                                       (dict(opponents=None), "opponents = None"),
                                       (dict(render_mode="human"), "render_mode = 'human'")])
def test_bad_arguments(bad, match):
    with pytest.raises(ValueError, match=match):
        SingleAgentMarketEnv(**bad)


def test_bad_action_names_the_agent():
    env = SingleAgentMarketEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="storage_0"):
        env.step(np.zeros(3))
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array([np.nan, 0, 0, 0]))


def _params(model):
    return np.concatenate([p.detach().cpu().numpy().ravel() for p in model.policy.parameters()])


@pytest.mark.slow
def test_ppo_seeded_training_is_reproducible_across_resets(tmp_path):
    def run():
        env = gym.make(ENV_ID, kind="storage", opponents="zero_intelligence", episode_steps=16)
        model = sb3.PPO("MlpPolicy", env, n_steps=64, batch_size=32, n_epochs=2, device="cpu", seed=0)
        model.learn(total_timesteps=256)     # 16 episodes: 15 seedless resets after the seeded one
        return model

    m1, m2 = run(), run()
    np.testing.assert_array_equal(_params(m1), _params(m2))
    # a trained model drives the others (a model path is an opponent spec)
    m1.save(tmp_path / "model.zip")
    with pytest.warns(UserWarning, match="observation schema"):   # a bare SB3 zip: standard layout assumed
        env = SingleAgentMarketEnv(kind="solar", opponents=str(tmp_path / "model.zip"), episode_steps=4)
    env.reset(seed=0)
    for _ in range(4):
        obs, rew, *_ = env.step(env.action_space.sample())
        assert np.isfinite(rew) and env.observation_space.contains(obs)


def test_reset_shock_option():
    from channelmarket.envs import Shock

    env = SingleAgentMarketEnv(episode_steps=8)
    obs, info = env.reset(seed=0, options={"shock": ("DEMAND_SURGE", 3)})
    assert info["shock"] == Shock.DEMAND_SURGE and obs[env.core.obs_schema["shock_demand_surge"]] == 1.0
    for bad in ({"shok": 1}, {"shock": "DEMAND_SURGE"}, {"shock": ("NONE", 2)}, {"shock": ("DEMAND_DROP", 0)}):
        with pytest.raises(ValueError):
            env.reset(seed=0, options=bad)


@pytest.mark.parametrize("mode", ["ansi", "rgb_array"])
def test_render_modes_pass_the_checker(mode):
    pytest.importorskip("matplotlib")
    env = gym.make(ENV_ID, render_mode=mode, episode_steps=4).unwrapped   # a spec: every render mode checked
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", module="matplotlib")
        gym_check_env(env)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    frame = env.render()
    if mode == "ansi":
        assert "price" in frame
    else:
        assert frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8
        assert len(env.history) == 2


def test_make_vec_and_sb3_make_vec_env():
    from stable_baselines3.common.env_util import make_vec_env

    venv = gym.make_vec(ENV_ID, num_envs=2, vectorization_mode="sync", episode_steps=3)
    obs, infos = venv.reset(seed=0)
    assert obs.shape == (2, venv.single_observation_space.shape[0])
    assert not np.array_equal(obs[0], obs[1])         # seeds 0 and 1: different markets
    for _ in range(4):                                 # across an auto-reset
        obs, rew, term, trunc, infos = venv.step(venv.action_space.sample())
    assert obs.shape[0] == 2 and np.isfinite(rew).all()
    svec = make_vec_env(ENV_ID, n_envs=2, seed=0, env_kwargs=dict(episode_steps=3))
    assert svec.reset().shape == (2, svec.observation_space.shape[0])

"""The standard route keeps working: PettingZoo env -> SuperSuit -> SB3 PPO.

SuperSuit 3.11.0 (the newest release) works with gymnasium 1.x, PettingZoo 1.27 and SB3 2.x,
except that its ConcatVecEnv has no `seed()` (SB3 calls it for `PPO(..., seed=...)`);
`training.vec_env.supersuit_vec_env` adds it. Both the raw route (no seed) and the helper are
tested."""

from __future__ import annotations

import numpy as np
import pytest

ss = pytest.importorskip("supersuit")
sb3 = pytest.importorskip("stable_baselines3")

from channelmarket import channel_market_v0
from channelmarket.training.vec_env import supersuit_vec_env


def _params(model):
    return np.concatenate([p.detach().cpu().numpy().ravel() for p in model.policy.parameters()])


def test_raw_supersuit_route_trains_ppo():
    env = channel_market_v0.parallel_env(scenario="energy_small", episode_steps=16)
    venv = ss.pettingzoo_env_to_vec_env_v1(env)
    venv = ss.concat_vec_envs_v1(venv, 2, num_cpus=0, base_class="stable_baselines3")
    assert venv.num_envs == 24
    model = sb3.PPO("MlpPolicy", venv, n_steps=16, batch_size=96, n_epochs=1, device="cpu", verbose=0)
    before = _params(model)
    model.learn(total_timesteps=384)            # one rollout of 16 steps x 24 agents, one update
    assert model.num_timesteps >= 384
    assert not np.allclose(before, _params(model))
    obs = venv.reset()
    act, _ = model.predict(obs, deterministic=True)
    assert act.shape == (24, 4)


def test_seeded_supersuit_route():
    def run():
        env = channel_market_v0.parallel_env(scenario="energy_small", episode_steps=16)
        venv = supersuit_vec_env(env, 2)
        model = sb3.PPO("MlpPolicy", venv, n_steps=8, batch_size=64, n_epochs=1, device="cpu", seed=7)
        model.learn(total_timesteps=192)       # one rollout, inside the first (seeded) episode
        return _params(model)

    np.testing.assert_array_equal(run(), run())


def _supersuit_observations(seed, steps=10):
    env = channel_market_v0.parallel_env(scenario="energy_small", episode_steps=4)
    venv = supersuit_vec_env(env, 2)
    venv.seed(seed)
    obs = [venv.reset()]
    rng = np.random.default_rng(0)
    for _ in range(steps):             # 10 steps of 4-step episodes: two auto-resets
        o, _, dones, _ = venv.step(rng.uniform(-1, 1, (venv.num_envs, 4)).astype(np.float32))
        obs.append(o)
    return np.stack(obs), dones


def test_seeded_supersuit_route_reproducible_across_auto_resets():
    a, _ = _supersuit_observations(3)
    b, _ = _supersuit_observations(3)
    np.testing.assert_array_equal(a, b)
    # the episodes after the auto-resets are new ones (the seeded stream continues, not restarts)
    assert not np.array_equal(a[0], a[4]) and not np.array_equal(a[4], a[8])
    c, _ = _supersuit_observations(4)
    assert not np.array_equal(a, c)


def test_seeded_supersuit_ppo_reproducible_across_auto_resets():
    def run():
        env = channel_market_v0.parallel_env(scenario="energy_small", episode_steps=4)
        venv = supersuit_vec_env(env, 1)
        model = sb3.PPO("MlpPolicy", venv, n_steps=12, batch_size=72, n_epochs=1, device="cpu", seed=5)
        model.learn(total_timesteps=288)       # two rollouts of 12 steps: five auto-resets
        return _params(model)

    np.testing.assert_array_equal(run(), run())

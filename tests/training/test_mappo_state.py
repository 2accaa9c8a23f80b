"""The project's MAPPO critic reads the env's flat global state: the vector `state()` of the
PettingZoo face returns for the same market, whose size does not grow with the agents."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from channelmarket.envs import channel_market_v0
from channelmarket.training.ippo import IPPOConfig, IPPOTrainer


def test_mappo_critic_input_is_the_envs_global_state(tmp_path):
    cfg = IPPOConfig(scenario="energy_small", total_steps=48, n_markets=2, rollout_steps=8, learners="sellers",
                     background="truthful", checkpoint_every=0, progress=False, minibatch_size=64,
                     centralized_critic=True, norm_obs=False)
    tr = IPPOTrainer(cfg, tmp_path)
    env = channel_market_v0.parallel_env(scenario="energy_small")
    assert tr.global_dim == env.state_space.shape[0]
    assert next(tr.critic.parameters()).shape[1] == tr.obs_dim + env.state_space.shape[0]
    for m, mk in enumerate(tr.markets):
        env.core = mk.core                     # the PettingZoo face over the trainer's own market
        np.testing.assert_allclose(tr.glob_t[m].numpy(), env.state(), rtol=1e-6)
    tr.collect(8)                              # after steps too
    tr._gather_obs(update_stats=False)
    for m, mk in enumerate(tr.markets):
        env.core = mk.core
        np.testing.assert_allclose(tr.glob_t[m].numpy(), env.state(), rtol=1e-6)

"""A CleanRL-style loop on the PettingZoo face, as its multi-agent scripts write it: stack the
agents' observations into one tensor, one shared Gaussian policy, dict actions back, rewards and
dones as arrays, one policy-gradient update. (`training/ippo.py` is the full CleanRL-style trainer
over the array API.)"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from channelmarket.envs import channel_market_v0  # noqa: E402


def test_cleanrl_style_loop_runs_and_updates():
    torch.manual_seed(0)
    env = channel_market_v0.parallel_env(scenario="energy_small", episode_steps=6)
    obs_dim = env.observation_space(env.possible_agents[0]).shape[0]
    mu = torch.nn.Sequential(torch.nn.Linear(obs_dim, 32), torch.nn.Tanh(), torch.nn.Linear(32, 4))
    log_std = torch.nn.Parameter(torch.zeros(4))
    opt = torch.optim.Adam(list(mu.parameters()) + [log_std], lr=1e-3)
    obs, infos = env.reset(seed=0)
    logps, rewards = [], []
    while env.agents:
        agents = list(env.agents)
        x = torch.as_tensor(np.stack([obs[a] for a in agents]))
        dist = torch.distributions.Normal(mu(x), log_std.exp())
        act = dist.sample()
        logps.append(dist.log_prob(act).sum(-1))
        obs, rew, term, trunc, infos = env.step({a: act[i].clamp(-1, 1).numpy() for i, a in enumerate(agents)})
        rewards.append(torch.as_tensor([rew[a] for a in agents], dtype=torch.float32))
        assert all(set(infos[a]) == set(env.info_keys) for a in agents)
    returns = torch.stack(rewards).flip(0).cumsum(0).flip(0)
    adv = (returns - returns.mean()) / (returns.std() + 1e-8)
    loss = -(torch.stack(logps) * adv).mean()
    before = [p.detach().clone() for p in mu.parameters()]
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert len(rewards) == 6 and torch.isfinite(loss)
    assert any(not torch.equal(b, p) for b, p in zip(before, mu.parameters()))

"""A learned population for the supply-chain economy: one shared policy for every agent, trained
by PPO with the project's pieces (`policies.nets` actor, critic and observation normaliser,
`training.ppo_ops` Gaussian log-densities and GAE) over the array API (`SupplyChainCore`).

The paper's future work: "using the machine-learning approach to optimize the behavior of the
agents to obtain a system maximally stable". With `reward="stability"` every agent is rewarded
with the share of the population alive each day (the whole economy's survival), with
`reward="profit"` with its own money gained; `eval.supply_chain.experiments.stability` compares
both with the risk-factor population.

    act = train_population("maser_exp1", reward="stability", seed=0, steps=60_000)
    actions = act(obs)          # obs [N, O] -> actions [N, 4] (the policy's mean, deterministic)
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..envs.supply_chain import SupplyChainCore
from ..policies.nets import Critic, GaussianActor, RunningMeanStd
from .ppo_ops import gae, gaussian_logp

# Warm start: the mean action of the untrained policy. A population acting on it alone is viable
# (ask -0.3: margin share 0.35 of the room to the cap; bid 0.9: accept up to 95 % of the cap;
# quantity 0.5: offer / buy 75 %; move 0.3: always on the move at 30 % of max speed); from the zero
# action (never move, accept up to half the cap) every agent starves when the free food runs out.
PRIOR = (-0.3, 0.9, 0.5, 0.3)


def train_population(scenario: str = "maser_exp1", reward: str = "stability", seed: int = 0, steps: int = 60_000,
                     days: int = 200, horizon: int = 25, epochs: int = 4, minibatch: int = 512, lr: float = 3e-4,
                     gamma: float = 0.97, lam: float = 0.95, clip: float = 0.2, hidden: tuple = (64, 64),
                     prior: "tuple[float, float, float, float] | None" = PRIOR,
                     torch_threads: int = 1) -> Callable[[np.ndarray], np.ndarray]:
    """Train for `steps` agent-steps (alive agents x days); returns the deterministic policy. `prior`:
    the initial policy's mean action (a warm start, None: zero)."""
    if reward not in ("stability", "profit"):
        raise ValueError(f"reward = {reward!r}; allowed: stability, profit")
    if steps < 1 or horizon < 1:
        raise ValueError(f"steps = {steps!r}, horizon = {horizon!r}; allowed: integers >= 1")
    torch.set_num_threads(torch_threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    core = SupplyChainCore(scenario, reward=reward, days=days)
    n, o = core.n_agents, len(core.obs_schema)
    actor, critic = GaussianActor(o, 4, hidden), Critic(o, hidden)
    if prior is not None:
        with torch.no_grad():
            actor.mean[-1].bias.copy_(torch.as_tensor(prior, dtype=torch.float32))
    opt = torch.optim.Adam(list(actor.parameters()) + list(critic.parameters()), lr=lr)
    norm, ret_std = RunningMeanStd((o,)), RunningMeanStd(())
    episode = 0
    obs = core.reset(seed=seed * 1000 + episode)
    done_steps = 0
    while done_steps < steps:
        buf = {k: [] for k in ("obs", "act", "logp", "val", "rew", "done", "valid")}
        for _ in range(horizon):
            alive = core.state.alive.copy()
            norm.update(obs[alive])
            x = torch.as_tensor(norm.normalize(obs), dtype=torch.float32)
            with torch.no_grad():
                mu, log_std = actor(x)
                a = mu + log_std.exp() * torch.as_tensor(rng.standard_normal((n, 4)), dtype=torch.float32)
                logp = gaussian_logp(a, mu, log_std)
                v = critic(x)
            nxt, r, te, tr, _ = core.step(np.clip(a.numpy(), -1, 1), mask=alive)
            finished = core.done
            buf["obs"].append(x)
            buf["act"].append(a)
            buf["logp"].append(logp)
            buf["val"].append(v)
            buf["rew"].append(torch.as_tensor(r, dtype=torch.float32))
            buf["done"].append(torch.as_tensor(te | tr | finished, dtype=torch.float32))
            buf["valid"].append(torch.as_tensor(alive))
            done_steps += int(alive.sum())
            obs = nxt
            if finished:
                episode += 1
                obs = core.reset(seed=seed * 1000 + episode)
        with torch.no_grad():
            next_v = critic(torch.as_tensor(norm.normalize(obs), dtype=torch.float32))
        rew = torch.stack(buf["rew"])
        ret_std.update(rew.numpy().ravel())
        rew = rew / float(np.sqrt(ret_std.var) + 1e-8)
        val, done = torch.stack(buf["val"]), torch.stack(buf["done"])
        adv = gae(rew, val, done, next_v, gamma, lam)
        target = adv + val
        valid = torch.stack(buf["valid"]).reshape(-1)
        flat = {k: torch.stack(buf[k]).reshape(-1, *buf[k][0].shape[1:])[valid] for k in ("obs", "act", "logp")}
        adv_f, tgt_f = adv.reshape(-1)[valid], target.reshape(-1)[valid]
        adv_f = (adv_f - adv_f.mean()) / (adv_f.std() + 1e-8) if adv_f.numel() > 1 else adv_f
        m = adv_f.numel()
        for _ in range(epochs):
            perm = torch.as_tensor(rng.permutation(m))
            for s in range(0, m, minibatch):
                b = perm[s:s + minibatch]
                mu, log_std = actor(flat["obs"][b])
                ratio = torch.exp(gaussian_logp(flat["act"][b], mu, log_std) - flat["logp"][b])
                pg = -torch.min(ratio * adv_f[b], torch.clamp(ratio, 1 - clip, 1 + clip) * adv_f[b]).mean()
                vl = 0.5 * ((critic(flat["obs"][b]) - tgt_f[b]) ** 2).mean()
                opt.zero_grad()
                (pg + 0.5 * vl).backward()
                torch.nn.utils.clip_grad_norm_(list(actor.parameters()) + list(critic.parameters()), 0.5)
                opt.step()
    actor.eval()

    def act(obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            mu, _ = actor(torch.as_tensor(norm.normalize(obs), dtype=torch.float32))
        return np.clip(mu.numpy().astype(np.float64), -1.0, 1.0)

    return act


__all__ = ["train_population", "PRIOR"]

"""The small numeric pieces of the torch PPO update (`training.ippo`): Gaussian log-densities
without `torch.distributions` (its argument checks cost more than the arithmetic at these
sizes), generalised advantage estimation over [T, M], and MAPPO's global critic features."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..envs.sums import group_sums

HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
HALF_LOG_2PI_E = 0.5 * math.log(2.0 * math.pi * math.e)


def gaussian_logp(a: torch.Tensor, mu: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """log N(a; mu, exp(log_std)) summed over the action dimensions."""
    z = (a - mu) * torch.exp(-log_std)
    return (-0.5 * z * z - log_std - HALF_LOG_2PI).sum(-1)


def gaussian_logp_from_noise(noise: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """The same for a = mu + exp(log_std) x noise, from the standard-normal noise drawn."""
    return (-0.5 * noise * noise - log_std - HALF_LOG_2PI).sum(-1)


def gaussian_entropy(log_std: torch.Tensor) -> torch.Tensor:
    """Entropy of the diagonal Gaussian with state-independent `log_std` [A]."""
    return (log_std + HALF_LOG_2PI_E).sum()


def gae(rew: torch.Tensor, val: torch.Tensor, done: torch.Tensor, next_v: torch.Tensor, gamma: float,
        lam: float) -> torch.Tensor:
    """Advantages [T, M] by GAE(gamma, lambda); `done[t]` ends the episode after step t and
    `next_v` [M] is the value of the state after the last step."""
    T, M = rew.shape
    adv = torch.zeros_like(rew)
    last = torch.zeros(M, device=rew.device)
    for t in reversed(range(T)):
        nv = next_v if t == T - 1 else val[t + 1]
        nonterm = 1.0 - done[t]
        delta = rew[t] + gamma * nv * nonterm - val[t]
        last = delta + gamma * lam * nonterm * last
        adv[t] = last
    return adv


def global_features(obs: np.ndarray, kind_cols: "np.ndarray | None" = None) -> np.ndarray:
    """Per-kind mean of every observation column, flattened [K * O] (MAPPO's critic input).
    The kind one-hot is in columns `kind_cols` and inactive agents' rows are zero; the sums run in row order
    (`envs.sums`, not through BLAS threads), so the critic's input is the same on every machine."""
    if kind_cols is None:   # the standard layout: the standard kinds' columns first
        from ..envs.observations import OBS_NAMES

        kind_cols = np.flatnonzero([name.startswith("kind_") for name in OBS_NAMES])
    member = obs[:, kind_cols] > 0
    group = np.where(member.any(axis=1), member.argmax(axis=1), -1)
    counts = np.bincount(group[group >= 0], minlength=len(kind_cols)).astype(np.float64)
    sums = group_sums(x=obs, group=group, n_groups=len(kind_cols))
    return (sums / np.maximum(counts, 1.0)[:, None]).reshape(-1)


__all__ = ["gaussian_logp", "gaussian_logp_from_noise", "gaussian_entropy", "gae", "global_features"]

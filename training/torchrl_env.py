"""A TorchRL `EnvBase` over the batched array API: M markets, agents grouped by kind.

    from channelmarket.training.torchrl_env import ChannelMarketTorchRL
    env = ChannelMarketTorchRL("energy_small", n_markets=64, seed=0)
    td = env.reset()                     # batch_size [M]
    td[("solar", "observation")]         # [M, n_solar, O] float32
    td = env.rand_step(td)               # actions ("solar", "action") [M, n_solar, 4], ...
    env.group_map                        # {"solar": ["solar_0", ...], "wind": [...], ...}

The batch dimension is the market: the env's `batch_size` is [M] and one `step` steps every
market in one call of `MarketCore(scenario, n_markets=M)`. Each agent kind present in the
scenario is one group (TorchRL's multi-agent convention, as its VMAS and PettingZoo wrappers):
per group `observation` [M, n_k, O], `action` [M, n_k, 4] in [-1, 1] and `reward` [M, n_k, 1]
(profit in EUR per step). `done` / `terminated` / `truncated` are per market, [M, 1]: a market's
episode ends by its time limit (truncated); an agent that leaves observes zeros until then.
Partial resets (`_reset` mask from a collector) reset only those markets. Seeds follow the
batch rule: `set_seed(s)` then `reset()` seeds market m with `SeedSequence(s).spawn(M)[m]`.

torch, torchrl and tensordict are imported here only (the `torchrl` extra): importing
`channelmarket.training` does not import them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Bounded, Categorical, Composite, Unbounded
from torchrl.envs import EnvBase

from ..envs.core import MarketCore
from ..envs.kinds import KIND_NAMES


class ChannelMarketTorchRL(EnvBase):
    """TorchRL env of `n_markets` markets of `scenario` (module docstring); `overrides` replace scenario fields."""

    def __init__(self, scenario: Any = "energy_small", n_markets: int = 1, seed: "int | None" = None,
                 device: Any = "cpu", **overrides: Any) -> None:
        self.core = MarketCore(scenario, n_markets=n_markets, **overrides)
        m, n = self.core.n_markets, self.core.agents_per_market
        self.n_actions = self.core.n_actions   # the scenario's action columns (5 with partner_action)
        super().__init__(device=device, batch_size=torch.Size([m]))
        self.n_markets, self.n_per_market = m, n
        from ..envs.physics import layout

        kind = layout(self.core.scenario)[0]
        names = MarketCore(self.core.scenario).agent_names()
        self.groups: dict[str, slice] = {}
        for code in np.unique(kind):
            idx = np.flatnonzero(kind == code)
            self.groups[KIND_NAMES[int(code)]] = slice(int(idx[0]), int(idx[-1]) + 1)   # kinds are contiguous
        self.group_map = {g: names[sl] for g, sl in self.groups.items()}
        o = self.core.obs_dim
        low = torch.as_tensor(self.core.obs_low)
        high = torch.as_tensor(self.core.obs_high)
        obs, act, rew = {}, {}, {}
        for g, sl in self.groups.items():
            k = sl.stop - sl.start
            shape = (m, k)
            obs[g] = Composite(observation=Bounded(low.expand(m, k, o), high.expand(m, k, o), shape=(m, k, o),
                                                   dtype=torch.float32, device=self.device), shape=shape)
            act[g] = Composite(action=Bounded(-1.0, 1.0, shape=(m, k, self.n_actions), dtype=torch.float32,
                                              device=self.device), shape=shape)
            rew[g] = Composite(reward=Unbounded(shape=(m, k, 1), dtype=torch.float32, device=self.device), shape=shape)
        self.observation_spec = Composite(obs, shape=(m,))
        self.action_spec = Composite(act, shape=(m,))
        self.reward_spec = Composite(rew, shape=(m,))
        flag = lambda: Categorical(2, shape=(m, 1), dtype=torch.bool, device=self.device)  # noqa: E731
        self.done_spec = Composite(done=flag(), terminated=flag(), truncated=flag(), shape=(m,))
        self._seed = seed
        self._actions = np.zeros((m, n, self.n_actions))

    # ---- EnvBase ---------------------------------------------------------------------------------
    def _set_seed(self, seed: "int | None") -> "int | None":
        self._seed = seed
        return seed

    def _obs_td(self, obs: np.ndarray) -> dict[str, Any]:
        x = torch.as_tensor(np.ascontiguousarray(obs).reshape(self.n_markets, self.n_per_market, -1),
                            device=self.device)
        return {g: TensorDict({"observation": x[:, sl]}, batch_size=[self.n_markets, sl.stop - sl.start],
                              device=self.device) for g, sl in self.groups.items()}

    def _flags(self, ended: np.ndarray) -> dict[str, torch.Tensor]:
        e = torch.as_tensor(ended, device=self.device).reshape(self.n_markets, 1)
        return {"done": e.clone(), "terminated": torch.zeros_like(e), "truncated": e.clone()}

    def _reset(self, tensordict: "TensorDictBase | None" = None, **kwargs: Any) -> TensorDictBase:
        mask = None if tensordict is None else tensordict.get("_reset", None)
        if mask is not None and self.core.batch is not None and not bool(mask.all()):
            idx = np.flatnonzero(mask.reshape(self.n_markets).cpu().numpy())
            obs = self.core.reset_markets(idx) if idx.size else self.core.observe()
        else:
            obs = self.core.reset(seed=self._seed)
            self._seed = None   # later resets continue each market's seed stream
        out = self._obs_td(obs)
        out.update(self._flags(self.core.dones))
        return TensorDict(out, batch_size=self.batch_size, device=self.device)

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        acts = self._actions
        for g, sl in self.groups.items():
            acts[:, sl] = tensordict.get((g, "action")).detach().cpu().numpy()
        obs, rewards, _term, _trunc, info = self.core.step(acts.reshape(-1, self.n_actions))
        out = self._obs_td(obs)
        r = torch.as_tensor(rewards.reshape(self.n_markets, self.n_per_market, 1), dtype=torch.float32,
                            device=self.device)
        for g, sl in self.groups.items():
            out[g].set("reward", r[:, sl])
        out.update(self._flags(info["ended"]))
        return TensorDict(out, batch_size=self.batch_size, device=self.device)


__all__ = ["ChannelMarketTorchRL"]

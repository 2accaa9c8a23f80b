"""`SupplyChainEnv`: the PettingZoo `ParallelEnv` face of the supply-chain economy.

    from channelmarket import supply_chain_v0
    env = supply_chain_v0.parallel_env(scenario="maser_exp1", learners="all")
    obs, infos = env.reset(seed=0)
    while env.agents:
        obs, rewards, terminations, truncations, infos = env.step(
            {a: env.action_space(a).sample() for a in env.agents})

Agents are named by kind (`farmer_0`, `miller_3`, `seller_1`). `learners` says which agents are
the env's PettingZoo agents and act through actions: "all", a kind name, a tuple of kinds or of
agent names; the others are the built-in MASER agents (the risk-factor rules). A learned agent
can take any producer role. Spaces, reward and episode end follow `channel_market_v0` where they
carry over (same for every agent, so one policy can be shared; the kind is observed):

- action `Box(-1, 1, (4,), float32)`: ask (margin share (a+1)/2 of the room from its cost to the
  good's price cap), bid (highest accepted price (b+1)/2 x cap), quantity (share of its packages
  offered and of its need bought), move (stay if <= 0, else speed move x max_speed);
- observation `Box(low, high, (25,), float32)`: `core.obs_schema` names the columns (kind one-hot,
  vital energy, money, stocks, producing, risk factor, neighbours by role, prospect, prices, the
  day's sales, purchases and profit, customers, position, progress);
- reward: the money gained that day (`reward="profit"`), or the share of the population alive
  (`reward="stability"`), minus `death_penalty` on the day of death;
- an agent that dies is terminated (and leaves `env.agents`); every agent is truncated after `days`
  (or when nobody is left); infos per agent: vital, money, alive, sold, bought (numbers).

Finite actions outside [-1, 1] are clipped; NaN, inf, a wrong shape or an unknown agent raise
ValueError naming the agent; the state stays untouched. `env.move_key_agent()` is the injectable
shock of experiment 4.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from .core import OBS_HIGH, OBS_LOW, SupplyChainCore
from .scenario import KIND_NAMES

INFO_KEYS = ("vital", "money", "alive", "sold", "bought")


class SupplyChainEnv(ParallelEnv):
    metadata = {"name": "supply_chain_v0", "render_modes": ["ansi"], "is_parallelizable": True}

    def __init__(self, scenario: Any = None, learners: Any = "all", render_mode: "str | None" = None,
                 **overrides: Any) -> None:
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode = {render_mode!r}; allowed: None, 'ansi'")
        self.render_mode = render_mode
        self.core = SupplyChainCore(scenario, **overrides)
        names = self.core.agent_names
        kinds = np.array([KIND_NAMES[k] for k in self.core.kind])
        if isinstance(learners, str):
            learners = (learners,)
        if not isinstance(learners, (tuple, list)) or not learners:
            raise ValueError(f"learners = {learners!r}; allowed: 'all', kind names {KIND_NAMES} or agent names")
        mask = np.zeros(len(names), bool)
        for x in learners:
            if x == "all":
                mask[:] = True
            elif x in KIND_NAMES:
                mask |= kinds == x
            elif x in names:
                mask[names.index(x)] = True
            else:
                raise ValueError(f"learners: {x!r}; allowed: 'all', a kind ({', '.join(KIND_NAMES)}) or an agent name")
        self._learned = mask
        self._idx = np.flatnonzero(mask)
        self.possible_agents = [names[i] for i in self._idx]
        self._index = {a: int(i) for a, i in zip(self.possible_agents, self._idx)}
        self.agents: list[str] = []
        self._obs_space = spaces.Box(OBS_LOW, OBS_HIGH, dtype=np.float32)
        self._act_space = spaces.Box(-1.0, 1.0, (4,), dtype=np.float32)
        self.agent_kinds = {a: kinds[i] for a, i in self._index.items()}

    # ---- spaces ------------------------------------------------------------------------------
    def observation_space(self, agent: str) -> spaces.Box:
        return self._obs_space

    def action_space(self, agent: str) -> spaces.Box:
        return self._act_space

    @property
    def obs_schema(self):
        return self.core.obs_schema

    # ---- episode -------------------------------------------------------------------------------
    def reset(self, seed: "int | None" = None, options: "dict | None" = None):
        if seed is None:   # continue the seeded stream (or fresh entropy before any seed)
            src = getattr(self, "_seeds", None)
            seed = int(src.integers(2**31)) if src is not None else int(np.random.SeedSequence().generate_state(1)[0])
        self._seeds = np.random.default_rng(seed)
        obs = self.core.reset(seed=seed)
        self.agents = list(self.possible_agents)
        self._sold = np.zeros(self.core.n_agents)
        self._bought = np.zeros(self.core.n_agents)
        return self._obs_dict(obs, self.agents), {a: self._info(self._index[a]) for a in self.agents}

    def step(self, actions: dict):
        if not self.agents:
            raise RuntimeError("step after the episode ended; call reset")
        if not isinstance(actions, dict):
            raise TypeError(f"actions: {type(actions).__name__}; allowed: a dict agent name -> action [4]")
        n = self.core.n_agents
        rows = np.zeros((n, 4))
        for a, act in actions.items():
            if a not in self._index:
                raise ValueError(f"actions: unknown agent {a!r}; allowed: agents of this env")
            if a not in self.agents:
                raise ValueError(f"actions: agent {a!r} is no longer in the episode (dead or ended)")
            try:
                v = np.asarray(act, dtype=np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"actions: agent {a!r} action {act!r} is not numeric; allowed: 4 numbers in [-1, 1]") from None
            if v.shape != (4,):
                raise ValueError(f"actions: agent {a!r} action shape {v.shape}; allowed: (4,)")
            rows[self._index[a]] = v
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise ValueError(f"actions: no action for agent(s) {missing[:5]}; every agent in env.agents acts")
        mask = self._learned & self.core.state.alive
        obs, rew, term, trunc, info = self.core.step(rows, mask=mask)
        tr = self.core.last_trades
        self._sold = np.bincount(tr.seller, weights=tr.qty, minlength=n)
        self._bought = np.bincount(tr.buyer, weights=tr.qty, minlength=n)
        acting = list(self.agents)
        done = self.core.done
        o = self._obs_dict(obs, acting)
        r = {a: float(rew[self._index[a]]) for a in acting}
        te = {a: bool(term[self._index[a]]) for a in acting}
        tr_ = {a: bool(done and not te[a]) for a in acting}
        infos = {a: self._info(self._index[a]) for a in acting}
        self.agents = [a for a in acting if not (te[a] or tr_[a])]
        if self.render_mode == "ansi":
            self._last_line = self.render()
        return o, r, te, tr_, infos

    def _obs_dict(self, obs: np.ndarray, agents) -> dict:
        return {a: obs[self._index[a]] for a in agents}

    def _info(self, i: int) -> dict:
        st = self.core.state
        return {"vital": float(st.vital[i]), "money": float(st.money[i]), "alive": float(st.alive[i]),
                "sold": float(self._sold[i]), "bought": float(self._bought[i])}

    # ---- extras ----------------------------------------------------------------------------------
    def move_key_agent(self, agent: "str | int | None" = None, to=None) -> str:
        """The shock of experiment 4: move a key agent (default the busiest Seller) far away."""
        if isinstance(agent, str):
            if agent not in self.core.agent_names:
                raise ValueError(f"move_key_agent: unknown agent {agent!r}")
            agent = self.core.agent_names.index(agent)
        return self.core.agent_names[self.core.move_key_agent(agent, to)]

    def market_summary(self) -> dict:
        return self.core.summary()

    def state(self) -> np.ndarray:
        """Every agent's observation stacked, [N, 25] flattened (for centralized critics)."""
        return self.core.observe().ravel()

    def render(self):
        if self.render_mode != "ansi" or self.core.state is None:
            return None
        s = self.core.summary()
        alive = " ".join(f"{k}={v}" for k, v in s["alive"].items())
        prices = " ".join(f"{g}={p:.2f}" for g, p in s["offered_price"].items())
        return f"day {s['day']:4d} | alive {alive} | offered {prices} | trades {sum(s['trades'].values())}"

    def close(self) -> None:
        pass


__all__ = ["SupplyChainEnv", "INFO_KEYS"]

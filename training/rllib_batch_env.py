"""M markets in one RLlib env: a `MultiAgentEnv` over one `BatchCore` (`MarketCore(scenario, n_markets=M)`).

    from channelmarket.training.rllib_batch_env import make_batch_env, batch_policy_map
    env = make_batch_env({"scenario": "energy_small", "markets_per_env": 8})   # an RLlib MultiAgentEnv
    obs, infos = env.reset(seed=0)          # {"m0/solar_0": [O], ..., "m7/consumer_5": [O]}

Why: RLlib steps its envs one Python call at a time; with M markets per env each env runner pays
that call (and the policy forward pass) once for M markets, and the markets step in one vectorized
core call. Agent ids are "m<market>/<agent>" in the batch's market-major row order, so agent id i
is row i of the batch's arrays. One episode = one day of all M markets: they share the scenario and
are reset together, so they end together (`__all__`). Policies map by kind (or role, or shared)
exactly as for one market: `batch_policy_map` repeats `rllib_env.policy_map` for every market.
Infos carry the same numeric keys as the PettingZoo face: the shock code, plus the breakdown fields
`env_config["info_keys"]` names ("trade", "all" or a tuple; none by default, as the face).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..envs.channel_market import DEFAULT_INFO_KEYS, info_fields
from ..envs.core import MarketCore
from ..envs.settlement import BREAKDOWN_FIELDS
from .rllib_env import env_kwargs, policy_map

BATCH_ENV_NAME = "channelmarket_batch_v0"
MARKETS_KEY = "markets_per_env"
# parallel_env keywords of the PettingZoo face that a batch of markets does not have
FACE_ONLY = ("render_mode", "history_len", "state_mode")


def batch_kwargs(env_config: Any) -> tuple[int, dict[str, Any]]:
    """(M, scenario keywords) from an RLlib env_config; ValueError naming a keyword the batch lacks."""
    kw = env_kwargs(env_config)
    m = kw.pop(MARKETS_KEY, 1)
    if isinstance(m, (bool, np.bool_)) or not isinstance(m, (int, np.integer)) or m < 1:
        raise ValueError(f"env_config.{MARKETS_KEY} = {m!r}; allowed: an integer >= 1")
    bad = sorted(k for k in kw if k in FACE_ONLY)
    if bad:
        raise ValueError(f"env_config keys {', '.join(bad)} are options of the one-market PettingZoo face; "
                         f"allowed with {MARKETS_KEY} > 1: the scenario and its fields (and max_cycles)")
    if "max_cycles" in kw:
        kw["episode_steps"] = kw.pop("max_cycles")
    return int(m), kw


def batch_agent_ids(names: list[str], n_markets: int) -> list[str]:
    """"m<market>/<name>" for every market and agent, market-major (row i of the batch arrays)."""
    return [f"m{m}/{a}" for m in range(n_markets) for a in names]


def batch_policy_map(env_config: Any, mode: str = "shared") -> dict[str, str]:
    """Batched agent id -> module id: the one-market `policy_map` repeated for every market."""
    m, _ = batch_kwargs(env_config)
    one = policy_map({k: v for k, v in env_kwargs(env_config).items() if k != MARKETS_KEY}, mode)
    return {f"m{i}/{a}": mid for i in range(m) for a, mid in one.items()}


class BatchMarketDicts:
    """M markets of one scenario stepped by one `BatchCore`, with RLlib's multi-agent dict API
    (no Ray import: `BatchMarketEnv` adds RLlib's `MultiAgentEnv` base)."""

    def __init__(self, env_config: Any = None) -> None:
        super().__init__()
        import gymnasium as gym

        m, kw = batch_kwargs(env_config)
        fields = info_fields(kw.pop("info_keys", DEFAULT_INFO_KEYS))
        self.core = MarketCore(kw.pop("scenario", None), n_markets=m, **kw)
        self.n_markets = m
        names = MarketCore(self.core.scenario).agent_names()
        self.possible_agents = batch_agent_ids(names, m)
        self.agents = list(self.possible_agents)
        self._index = {a: i for i, a in enumerate(self.possible_agents)}
        obs_space = gym.spaces.Box(self.core.obs_low, self.core.obs_high, dtype=np.float32)
        self.n_actions = self.core.n_actions   # the scenario's action columns (5 with partner_action)
        act_space = gym.spaces.Box(-1.0, 1.0, shape=(self.n_actions,), dtype=np.float32)
        self.observation_spaces = {a: obs_space for a in self.possible_agents}
        self.action_spaces = {a: act_space for a in self.possible_agents}
        self.observation_space = gym.spaces.Dict(self.observation_spaces)
        self.action_space = gym.spaces.Dict(self.action_spaces)
        self.info_fields = fields
        self.info_keys = fields + ("shock",)
        self._info_cols = np.array([BREAKDOWN_FIELDS.index(k) for k in fields], dtype=np.int64)
        self._live = np.zeros(self.core.n_agents, dtype=bool)

    def reset(self, *, seed: Any = None, options: Any = None):
        """Every market's next day (`BatchCore.reset`: one seed spawns one child per market)."""
        if options:
            raise ValueError(f"reset options = {options!r}; the batched env takes none")
        obs = self.core.reset(seed=seed)
        self._live[:] = True
        self.agents = list(self.possible_agents)
        start = dict.fromkeys(self.info_fields, 0.0)
        shock = self.core.batch.shock_kind[self.core.market_of].tolist()
        infos = {a: {**start, "shock": s} for a, s in zip(self.possible_agents, shock)}
        return dict(zip(self.possible_agents, obs)), infos

    def step(self, action_dict: dict[str, Any]):
        """One interval of all M markets; dicts over the agents live before the step."""
        if not self.agents:
            raise RuntimeError("no live agents: the day of every market ended or reset() was not called; call reset()")
        live = np.flatnonzero(self._live)
        ids = self.agents
        missing = [a for a in ids if a not in action_dict]
        if missing or len(action_dict) != len(ids):
            extra = [a for a in action_dict if a not in self._index or not self._live[self._index[a]]]
            raise ValueError(f"actions: missing for {missing[:3]}, unknown or ended agents {extra[:3]}; "
                             f"pass one action of shape ({self.n_actions},) per live agent ({len(ids)})")
        acts = np.zeros((self.core.n_agents, self.n_actions))
        acts[live] = np.asarray([action_dict[a] for a in ids], dtype=np.float64).reshape(len(ids), self.n_actions)
        obs, rew, term, trunc, info = self.core.step(acts)
        cols = info["breakdown"][live][:, self._info_cols]
        shock = info["shock"][self.core.market_of[live]]
        infos = {a: {**dict(zip(self.info_fields, row)), "shock": int(s)}
                 for a, row, s in zip(ids, cols.tolist(), shock.tolist())}
        obs_d = dict(zip(ids, obs[live]))
        terminateds = dict(zip(ids, term[live].tolist()))
        truncateds = dict(zip(ids, trunc[live].tolist()))
        self._live[live] = ~(term[live] | trunc[live])
        self.agents = [a for a, keep in zip(ids, self._live[live].tolist()) if keep]
        terminateds["__all__"] = bool(term[live].all())
        truncateds["__all__"] = not self.agents and not terminateds["__all__"]
        return obs_d, dict(zip(ids, rew[live].tolist())), terminateds, truncateds, infos


_ENV_CLASS: list = []


def env_class() -> type:
    """`BatchMarketEnv`: `BatchMarketDicts` on RLlib's `MultiAgentEnv` (imports Ray once)."""
    if not _ENV_CLASS:
        from ray.rllib.env.multi_agent_env import MultiAgentEnv

        _ENV_CLASS.append(type("BatchMarketEnv", (BatchMarketDicts, MultiAgentEnv),
                               {"__module__": __name__, "__doc__": "RLlib MultiAgentEnv over one BatchCore of M markets."}))
    return _ENV_CLASS[0]


def make_batch_env(env_config: Any = None):
    """The env RLlib's env runners build from `env_config` (the registered creator)."""
    return env_class()(env_config)


def register_batch() -> str:
    """Register the batched env with Ray Tune under `BATCH_ENV_NAME` (idempotent) and return the name."""
    from ray.tune.registry import register_env

    register_env(BATCH_ENV_NAME, make_batch_env)
    return BATCH_ENV_NAME


__all__ = ["BATCH_ENV_NAME", "MARKETS_KEY", "BatchMarketDicts", "env_class", "batch_agent_ids", "batch_kwargs",
           "batch_policy_map", "make_batch_env", "register_batch"]

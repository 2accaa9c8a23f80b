"""The markets a training run plays in: N markets of one scenario, which agents learn, which
policies drive the rest, and how episodes are seeded and numbered. Both trainers use it: the
SB3 adapter (`vec_env.MarketVecEnv`, one sub-env per learner) and the torch IPPO/MAPPO trainer
(`ippo`, one batch of all learners).

    markets = Markets(scenario, n_markets=2, learners=("solar", "wind"), learner_share=0.5,
                      background="risk_factor", seed=0, learner_draw="spread")
    for mk in markets: markets.reset(mk)              # obs in mk.obs, learners in mk.learn_idx
    obs, r, term, trunc, info = markets.step(mk, learner_actions)   # [len(mk.learn_idx), 4]
    markets.metrics.pop(scenario.episode_steps)       # market/, profit/ ... tags (`training.metrics`)

Which agents learn (`learner_draw`), and the episode seeds that go with it (kept as they were so
both routes' trajectories stay bit-identical):
  - "spread" (SB3): `learner_share` of each learning kind spread evenly over its agents, the same
    agents every episode (SB3 needs a fixed set of sub-envs). Market m's e-th episode is reset with
    `episode_seed(seed, m, e)`; the driving policies' seeds spawn from it.
  - "random" (IPPO): a fresh random subset of round(share x count) agents of each learning kind
    every episode. Episode e of market m draws the reset, the subset and the background's seed from
    `SeedSequence([seed, 0x1990, m, e])`.
Episodes are numbered per market from 0; `Market.episode` counts the episodes started.

Nothing loops over agents in Python: actions are scattered with one fancy index per policy group.

Batched (`batched=True`, the default when it applies): with more than one market, no partners
and no agent left to a background policy (every agent learns), all markets are one
`MarketCore(scenario, n_markets=M)` stepped in one call (`step_batch`); episode seeds, learner
draws and therefore the training data are the same as with M separate cores. Each `Market` then
holds a `MarketSlice` (market m of the batch as the trainers' bookkeeping reads a core: state,
agents, done, state dicts), and markets that end together are reset together (`reset_many`).
Background policies read a single market's view (`MarketView`), so a run with a background keeps
one core per market.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np

from ..envs.core import MarketCore
from ..envs.scenario import Scenario
from ..envs.state import KIND_NAMES, Kind, N_KINDS, resolve_kinds
from ..policies.base import Policy
from ..policies.widths import put_actions
from . import policy_specs
from .metrics import MarketMetrics, agent_groups

LEARNER_DRAWS = ("spread", "random")


# ---- which agents learn ---------------------------------------------------------------------

def parse_kinds(kinds: "str | Iterable[str] | None") -> tuple[str, ...]:
    """("solar", "wind", ...) from "solar,wind", ["solar", "wind"], "all" (or None), or an alias
    (sellers, generators, buyers, consumers; `envs.state.KIND_ALIASES`)."""
    return KIND_NAMES if kinds is None else resolve_kinds(kinds, what="learners")


def scenario_learners(sc: Scenario, kinds: "str | Iterable[str] | None") -> tuple[str, ...]:
    """`parse_kinds(kinds)` restricted to the kinds scenario `sc` has (an alias such as "sellers"
    names every kind of that role; a market without electric vehicles learns none)."""
    names = parse_kinds(kinds)
    return tuple(k for k in names if sc.count(k) > 0) or names


def scenario_kinds(sc: Scenario) -> np.ndarray:
    """Kind of every agent in index order (fixed by the scenario's counts)."""
    from ..envs.physics import layout

    return layout(sc)[0].astype(np.int64)


def select_agents(kind: np.ndarray, kinds: "str | Iterable[str] | None", share: float = 1.0) -> np.ndarray:
    """Indices of the agents of `kinds`, `share` of each kind spread evenly over its agents
    (every other agent for 0.5; at least one per kind when share > 0)."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"learner_share = {share!r}; allowed: [0, 1]")
    names = parse_kinds(kinds)
    mask = np.zeros(kind.shape[0], dtype=bool)
    for name in names:
        idx = np.flatnonzero(kind == Kind[name.upper()])
        r = np.arange(idx.shape[0])
        pick = np.ceil((r + 1) * share - 1e-9) - np.ceil(r * share - 1e-9) >= 1
        mask[idx[pick]] = True
    return np.flatnonzero(mask)


def draw_agents(kind: np.ndarray, eligible: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """Mask of a random subset of the `eligible` agents: round(share x count) of each kind (at
    least one of a kind that has agents). Kinds are laid out in blocks, so ranking a random key
    within each kind picks them without a loop."""
    n = kind.shape[0]
    key = rng.random(n) + kind * 2.0
    order = np.argsort(key, kind="stable")
    counts = np.bincount(kind, minlength=N_KINDS)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    take = np.maximum(np.rint(share * counts).astype(np.int64), (counts > 0).astype(np.int64))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - starts[kind[order]]
    return eligible & (rank < take[kind])


def episode_seed(seed: int, market: int, episode: int) -> int:
    """The reset seed of market `market`'s `episode`-th episode under base `seed` ("spread" draw)."""
    return int(np.random.SeedSequence([int(seed), int(market), int(episode)]).generate_state(1)[0])


def make_policy(spec: Any, **kw: Any) -> Policy:
    """A fresh `Policy` from a spec (`policy_specs.resolve`); a spec of no policy is an error here."""
    pol = policy_specs.resolve(spec, **kw)
    if pol is None:
        raise ValueError(f"policy spec {spec!r} names no policy")
    return pol


# ---- one market -----------------------------------------------------------------------------

class MarketSlice:
    """Market m of a batch (`MarketCore(..., n_markets=M)`) with the part of a core's face the
    trainers' bookkeeping reads: `state`, `agents`, `done`, `n_agents`, `scenario`, state dicts."""

    def __init__(self, batch: Any, m: int) -> None:
        self.batch, self.m = batch, int(m)
        self.scenario = batch.scenario
        self.n_agents = batch.agents_per_market
        self.obs_dim = batch.obs_dim
        self.obs_schema = batch.obs_schema
        self.n_actions, self.action_fields = batch.n_actions, batch.action_fields

    @property
    def state(self):
        return self.batch.market_state(self.m)

    @property
    def agents(self):
        return self.batch.bagents.per_market[self.m]

    @property
    def done(self) -> bool:
        return bool(self.batch.dones[self.m])

    def state_dict(self) -> dict[str, Any]:
        return self.batch.market_state_dict(self.m)

    def inject_shock(self, kind: Any, duration: int) -> None:
        self.batch.inject_shock(kind, duration, market=self.m)

    def observe(self) -> np.ndarray:
        n = self.n_agents
        return self.batch.observe()[self.m * n:(self.m + 1) * n]

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.batch.load_market_state_dict(self.m, d)


class Market:
    """One MarketCore (or one market of a batch), which of its agents learn, and the policies driving the others."""

    def __init__(self, scenario: Scenario, index: int, core: Any = None) -> None:
        self.index = index
        self.core = MarketCore(scenario) if core is None else core
        self.n = self.core.n_agents
        self.episode = 0                     # episodes started
        self.actions = np.zeros((self.n, self.core.n_actions), dtype=np.float64)   # the scenario's width
        self.obs: np.ndarray | None = None
        self.learn_idx = np.zeros(0, dtype=np.int64)
        self.is_learner = np.zeros(self.n, dtype=bool)
        self.group = np.zeros(self.n, dtype=np.int64)    # metrics group (`metrics.agent_groups`)
        self.drivers: list[tuple[Policy, np.ndarray]] = []   # (policy, its agents), non-empty groups
        self.background: Policy | None = None
        self.bg_idx = np.zeros(0, dtype=np.int64)
        self.ep_profit = np.zeros(self.n)    # each agent's profit so far this episode

    @property
    def kind(self) -> np.ndarray:
        return self.core.agents.kind

    def set_learners(self, mask: np.ndarray, kind: np.ndarray) -> None:
        """Which agents learn (a mask) and their metrics groups (`kind` of every agent)."""
        self.is_learner = mask
        self.learn_idx = np.flatnonzero(mask)
        self.group = agent_groups(kind, mask)

    # checkpoints (plain arrays, numbers and dataclasses: `state_codec`)
    def state_dict(self) -> dict[str, Any]:
        bg = None
        if self.background is not None:
            static = set(getattr(type(self.background), "static_attributes", ())) | {"core"}
            bg = {k: v for k, v in vars(self.background).items() if k not in static}
        return {"episode": self.episode - 1, "core": self.core.state_dict(), "actions": self.actions,
                "obs": self.obs, "learn_idx": self.learn_idx, "bg_idx": self.bg_idx,
                "is_learner": self.is_learner, "ep_profit": self.ep_profit, "background": bg}


class Markets:
    """`n_markets` markets of `scenario`, their learners and background, seeded from `seed`.

    Args:
        learners: learning kinds (names or aliases), or an explicit index array of agents ("spread").
        learner_share: share of each learning kind that learns; the rest is driven by `background`.
        background: policy spec (`policy_specs`) driving every agent that neither learns nor is a partner.
        partners: extra (spec, agent indices) groups with fixed agents ("spread" only).
        learner_draw: "spread" or "random" (see the module doc).
        batched: one batched core for all markets (module doc); None: whenever it applies.
    """

    def __init__(self, scenario: Scenario, n_markets: int = 1, learners: Any = "all", learner_share: float = 1.0,
                 background: Any = "risk_factor", partners: Sequence[tuple[Any, Any]] = (), seed: int = 0,
                 learner_draw: str = "spread", batched: "bool | None" = None) -> None:
        if learner_draw not in LEARNER_DRAWS:
            raise ValueError(f"learner_draw = {learner_draw!r}; allowed: {', '.join(LEARNER_DRAWS)}")
        if not isinstance(n_markets, int) or isinstance(n_markets, bool) or n_markets < 1:
            raise ValueError(f"n_markets = {n_markets!r}; allowed: an integer >= 1")
        if learner_draw == "random" and partners:
            raise ValueError("partners need fixed agents: learner_draw='spread'")
        self.scenario = scenario
        self.draw = learner_draw
        self.seed = int(seed)
        self.share = float(learner_share)
        self.background_spec = None if policy_specs.is_none(background) else background
        self.kind = scenario_kinds(scenario)
        n = self.kind.shape[0]
        if isinstance(learners, (np.ndarray, list, tuple)) and len(learners) and not isinstance(learners[0], str):
            controlled = np.unique(np.asarray(learners, dtype=np.int64))
            if controlled.size and (controlled[0] < 0 or controlled[-1] >= n):
                raise ValueError(f"learner indices must lie in [0, {n}); got {controlled[[0, -1]].tolist()}")
            if learner_draw != "spread":
                raise ValueError("explicit learner indices need learner_draw='spread'")
            self.learner_kinds = tuple(KIND_NAMES[k] for k in np.unique(self.kind[controlled]))
        else:
            self.learner_kinds = scenario_learners(scenario, learners)
            controlled = select_agents(self.kind, self.learner_kinds, learner_share)
        self.eligible = np.isin(self.kind, [KIND_NAMES.index(k) for k in self.learner_kinds])
        if learner_draw == "spread":
            self.controlled = controlled
        if controlled.size == 0:
            raise ValueError(f"no agent to train: learners {learners!r} with share {learner_share} select nobody "
                             f"in scenario {scenario.name!r}")
        taken = np.zeros(n, dtype=bool)
        taken[controlled] = True
        self.partners: list[tuple[Any, np.ndarray]] = []
        for i, (spec, idx) in enumerate(partners):
            idx = np.asarray(idx)
            idx = np.flatnonzero(idx) if idx.dtype == bool else idx.astype(np.int64)
            if taken[idx].any():
                raise ValueError(f"partners[{i}] overlaps the controlled agents or another partner group: "
                                 f"agents {idx[taken[idx]][:5].tolist()}")
            taken[idx] = True
            if idx.size:
                self.partners.append((spec, idx))
        everyone_learns = bool(taken.all()) if learner_draw == "spread" else bool(
            self.eligible.all() and learner_share >= 1.0)
        can_batch = n_markets > 1 and not self.partners and everyone_learns
        if batched and not can_batch:
            raise ValueError("batched markets need n_markets > 1, no partners and every agent learning (a background "
                             f"policy reads one market's view); got n_markets={n_markets}, partners={len(self.partners)}, "
                             f"every agent learns: {everyone_learns}")
        self.batched = can_batch if batched is None else bool(batched)
        self.core = MarketCore(scenario, n_markets=n_markets) if self.batched else None
        self.obs: "np.ndarray | None" = None   # [M*N, O] of the batch
        self.markets = [Market(scenario, m, MarketSlice(self.core, m) if self.batched else None)
                        for m in range(n_markets)]
        for mk in self.markets:
            mk.drivers = [(make_policy(spec), idx) for spec, idx in self.partners]
            if learner_draw == "spread":
                mk.set_learners(np.isin(np.arange(n), controlled), self.kind)
                mk.bg_idx = np.flatnonzero(~taken)
                if mk.bg_idx.size:
                    mk.background = self._make_background(mk)
                    mk.drivers.append((mk.background, mk.bg_idx))
        self.metrics = MarketMetrics(scenario.goods[1:])

    def __len__(self) -> int:
        return len(self.markets)

    def __iter__(self):
        return iter(self.markets)

    def __getitem__(self, m: int) -> Market:
        return self.markets[m]

    def _make_background(self, mk: Market) -> Policy:
        if self.background_spec is None:
            raise ValueError(
                f"background is None but {mk.bg_idx.size} agents do not learn (learners: "
                f"{list(self.learner_kinds)}, learner_share={self.share}); name a baseline policy, or let every "
                "agent learn (learners all, learner_share 1)")
        return make_policy(self.background_spec)

    # ---- episodes ---------------------------------------------------------------------------
    def _batch_seed(self, mk: Market):
        """The reset seed of `mk`'s next episode (batched markets: nobody to draw or bind)."""
        e = mk.episode
        mk.episode += 1
        if self.draw == "spread":
            return episode_seed(self.seed, mk.index, e)
        return np.random.SeedSequence([self.seed, 0x1990, mk.index, e]).spawn(3)[0]

    def reset_many(self, mks: "Sequence[Market]") -> np.ndarray:
        """Start the next episode of several markets of the batch in one call; returns obs [M*N, O]."""
        if not self.batched:
            for mk in mks:
                self.reset(mk)
            return None
        seeds = [self._batch_seed(mk) for mk in mks]
        if self.core.batch is None or len(mks) == len(self.markets):
            order = sorted(range(len(mks)), key=lambda i: mks[i].index)
            self.obs = self.core.reset(seed=[seeds[i] for i in order])
        else:
            self.obs = self.core.reset_markets([mk.index for mk in mks], seeds=seeds)
        n = self.kind.shape[0]
        for mk in self.markets:
            mk.obs = self.obs[mk.index * n:(mk.index + 1) * n]
        for mk in mks:
            if mk.learn_idx.size != n:
                mk.set_learners(np.ones(n, dtype=bool), self.kind)
            mk.ep_profit = np.zeros(mk.n)
        self._group = np.concatenate([mk.group for mk in self.markets])
        return self.obs

    def step_batch(self, actions: np.ndarray):
        """One step of every market of the batch (every agent learns: `actions` [M*N, A] market-major).
        Returns `MarketCore.step`'s tuple; ended markets are not reset here (`reset_many`)."""
        out = self.core.step(actions)
        self.obs = out[0]
        n = self.kind.shape[0]
        for mk in self.markets:
            mk.obs = self.obs[mk.index * n:(mk.index + 1) * n]
            mk.ep_profit += out[1][mk.index * n:(mk.index + 1) * n]
        self.metrics.record_batch(self.core, self._group)
        return out

    def reset(self, mk: Market) -> np.ndarray:
        """Start market `mk`'s next episode: reset the core, pick the learners, bind the drivers."""
        if self.batched:
            return self.reset_many([mk])[mk.index * mk.n:(mk.index + 1) * mk.n]
        e = mk.episode
        mk.episode += 1
        if self.draw == "spread":
            seed = episode_seed(self.seed, mk.index, e)
            mk.obs = mk.core.reset(seed=seed)
            if not np.array_equal(mk.core.agents.kind, self.kind):   # pragma: no cover - core contract
                raise RuntimeError("the market's agent kinds differ from the scenario's counts")
            seeds = np.random.SeedSequence([seed, 0x7A1]).spawn(len(mk.drivers))
        else:
            env_ss, pick_ss, bg_ss = np.random.SeedSequence([self.seed, 0x1990, mk.index, e]).spawn(3)
            mk.obs = mk.core.reset(env_ss)
            kind = mk.core.agents.kind.astype(np.int64)
            mask = self.eligible.copy()
            if self.share < 1.0:
                mask = draw_agents(kind, mask, self.share, np.random.default_rng(pick_ss))
            mk.set_learners(mask, kind)
            mk.bg_idx = np.flatnonzero(~mask)
            if mk.bg_idx.size and mk.background is None:
                mk.background = self._make_background(mk)
            mk.drivers = [(mk.background, mk.bg_idx)] if mk.bg_idx.size else []
            seeds = [bg_ss]
        for (pol, idx), child in zip(mk.drivers, seeds):
            pol.bind(mk.core, idx, seed=child)
        mk.ep_profit = np.zeros(mk.n)
        return mk.obs

    def step(self, mk: Market, learner_actions: np.ndarray):
        """One market step: the learners' actions (rows of `mk.learn_idx`), the drivers' own; records
        the metrics and the episode profit. Returns `MarketCore.step`'s (obs, rewards, term, trunc, info)."""
        acts = mk.actions
        acts[mk.learn_idx] = learner_actions
        obs = mk.obs
        for pol, idx in mk.drivers:
            put_actions(acts, idx, pol.act(obs[idx]))   # a base-width baseline: open_partner 0
        out = mk.core.step(acts)
        for pol, _ in mk.drivers:
            pol.update(mk.core)
        mk.obs = out[0]
        mk.ep_profit += out[1]
        self.metrics.record(out[4], mk.group)
        return out

    # ---- checkpoints ------------------------------------------------------------------------
    def load_market_state(self, mk: Market, d: dict[str, Any]) -> None:
        """Restore `Market.state_dict()` mid-episode (the background policy's state included)."""
        mk.core.load_state_dict(d["core"])
        if self.batched:
            self.obs = self.core.observe().copy()
        mk.episode = int(d["episode"]) + 1
        mk.actions, mk.obs, mk.ep_profit = d["actions"], d["obs"], d["ep_profit"]
        mk.set_learners(np.asarray(d["is_learner"], dtype=bool), self.kind)
        mk.learn_idx = d["learn_idx"]
        mk.bg_idx = d["bg_idx"]
        if d["background"] is not None:
            if mk.background is None:
                mk.background = self._make_background(mk)
            mk.background.core = mk.core
            for k, v in d["background"].items():
                setattr(mk.background, k, v)
        others = [(p, i) for p, i in mk.drivers if p is not mk.background]
        mk.drivers = others + ([(mk.background, mk.bg_idx)] if mk.bg_idx.size and mk.background is not None else [])
        if self.batched:
            n = mk.n
            for other in self.markets:
                other.obs = self.obs[other.index * n:(other.index + 1) * n]
            self._group = np.concatenate([x.group for x in self.markets])


__all__ = ["Markets", "Market", "MarketSlice", "LEARNER_DRAWS", "parse_kinds", "scenario_learners", "scenario_kinds",
           "select_agents", "draw_agents", "episode_seed", "make_policy"]

"""Run whole episodes with any mix of policies over agent subsets, through either face.

    from channelmarket.policies import make, run_episode
    res = run_episode("energy_default", {"solar": make("truthful"), "wind": make("truthful"),
                                         "storage": make("eps_auction"), "consumer": make("risk_factor")}, seed=0)
    res.totals["profit"]        # [N] EUR per agent over the episode
    res.by_kind["consumer"]     # per-kind aggregates

Assignments are a `Policy` (it controls every agent), a dict kind name -> policy ("all" for
the rest is allowed), or a sequence of (policy, agents) pairs where agents is an index array
or a boolean mask. Every agent must be covered exactly once and each policy object used
once (a policy binds to one agent subset). Each step calls `act` once per policy with the
rows of its agents, then `core.step`, then `update(core)` once per policy: nothing loops
over agents in Python on the array face.

`run_episode_dict` does the same through the PettingZoo dict face (`ChannelMarketEnv`);
for the same seed both return identical totals (the faces share one core).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..envs.core import MarketCore
from ..envs.settlement import BREAKDOWN_FIELDS
from ..envs.view import agent_indices
from ..envs.state import KIND_NAMES, Kind
from .base import Policy
from .widths import put_actions

# per-step summary fields kept as arrays (numbers from `MarketCore.summary`)
STEP_FIELDS = (
    "t", "hour", "ref_price", "clearing_price", "volume", "supply", "demand", "active_channels",
    "trades", "negotiations", "failed_payments", "partial_payments", "grid_bought", "grid_sold",
    "unserved", "curtailed", "welfare",
)
# per-agent totals: every settlement breakdown column plus money paid / received peer-to-peer
TOTAL_FIELDS = BREAKDOWN_FIELDS + ("p2p_paid", "p2p_received", "grid_use")


@dataclass
class EpisodeResult:
    """Per-step summaries and per-agent totals of one episode, all as arrays."""

    seed: Any
    kind: np.ndarray                      # [N] agent kinds
    policy_index: np.ndarray              # [N] which assignment group controls each agent
    policy_names: list[str]               # name of each group's policy
    steps: dict[str, np.ndarray]          # field -> [T] per-step market summary
    totals: dict[str, np.ndarray]         # field -> [N] summed over the episode
    rewards: np.ndarray                   # [T, N] per-step rewards
    by_kind: dict[str, dict[str, float]] = field(default_factory=dict)
    by_policy: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def n_steps(self) -> int:
        return int(self.rewards.shape[0])

    @property
    def welfare(self) -> float:
        """Sum of every agent's profit over the episode (EUR)."""
        return float(self.totals["profit"].sum())


# ---- assignments ---------------------------------------------------------------------------

def resolve_assignments(kind: np.ndarray, assignments: Any) -> list[tuple[Policy, np.ndarray]]:
    """Normalise assignments to [(policy, agent indices)] and check they cover every agent
    exactly once; ValueError names the uncovered or duplicated agents."""
    n = kind.shape[0]
    pairs: list[tuple[Any, Any]]
    if isinstance(assignments, Policy):
        pairs = [(assignments, np.arange(n))]
    elif isinstance(assignments, Mapping):
        pairs = []
        taken = np.zeros(n, dtype=bool)
        rest = None
        for key, pol in assignments.items():
            if key == "all":
                rest = pol
                continue
            if key not in KIND_NAMES:
                raise ValueError(f"assignment key {key!r} is not an agent kind; allowed: {', '.join(KIND_NAMES)}, 'all'")
            idx = np.flatnonzero(kind == Kind[key.upper()])
            taken[idx] = True
            pairs.append((pol, idx))
        if rest is not None:
            pairs.append((rest, np.flatnonzero(~taken)))
    elif isinstance(assignments, Sequence) and not isinstance(assignments, (str, bytes)):
        pairs = []
        for i, item in enumerate(assignments):
            if not (isinstance(item, Sequence) and len(item) == 2):
                raise ValueError(f"assignments[{i}] = {item!r}; expected a (policy, agent indices) pair")
            pairs.append((item[0], item[1]))
    else:
        raise TypeError(
            f"assignments must be a Policy, a dict kind -> policy or a list of (policy, agents) pairs; "
            f"got {type(assignments).__name__}")

    out: list[tuple[Policy, np.ndarray]] = []
    count = np.zeros(n, dtype=np.int64)
    seen: set[int] = set()
    for i, (pol, agents) in enumerate(pairs):
        if not isinstance(pol, Policy):
            raise TypeError(f"assignment {i}: {pol!r} is not a Policy")
        if id(pol) in seen:
            raise ValueError(f"assignment {i}: policy {pol!r} is used for two agent subsets; use one instance per subset")
        seen.add(id(pol))
        idx = agent_indices(agents, n, f"assignment {i}: agents")
        np.add.at(count, idx, 1)
        out.append((pol, idx))
    missing = np.flatnonzero(count == 0)
    dup = np.flatnonzero(count > 1)
    if missing.size or dup.size:
        parts = []
        if missing.size:
            parts.append(f"agents not covered by any policy: {_agents_str(missing, kind)}")
        if dup.size:
            parts.append(f"agents covered more than once: {_agents_str(dup, kind)}")
        raise ValueError("; ".join(parts) + f"; every one of the {n} agents needs exactly one policy")
    return out


def _agents_str(idx: np.ndarray, kind: np.ndarray, k: int = 8) -> str:
    names = [f"{i} ({KIND_NAMES[kind[i]]})" for i in idx[:k].tolist()]
    more = f" and {idx.size - k} more" if idx.size > k else ""
    return ", ".join(names) + more


def _policy_seed(seed: Any, i: int):
    """Seed of assignment group i: derived from the episode seed, different per group."""
    if seed is None:
        return None
    if isinstance(seed, (int, np.integer)):
        return np.random.SeedSequence([int(seed), 0x5EED, i])
    return np.random.SeedSequence(np.random.SeedSequence(seed).entropy).spawn(i + 1)[i]


# ---- episode bookkeeping -------------------------------------------------------------------

class _Recorder:
    def __init__(self, core: MarketCore, groups: list[tuple[Policy, np.ndarray]], seed: Any) -> None:
        self.core = core
        self.seed = seed
        n = core.n_agents
        self.kind = core.agents.kind.astype(np.int64).copy()
        self.policy_index = np.zeros(n, dtype=np.int64)
        for g, (_, idx) in enumerate(groups):
            self.policy_index[idx] = g
        self.names = [p.name for p, _ in groups]
        self.steps: dict[str, list] = {k: [] for k in STEP_FIELDS}
        self.rewards: list[np.ndarray] = []
        self.totals = {k: np.zeros(n) for k in TOTAL_FIELDS}

    def record(self, rewards: np.ndarray, breakdown: np.ndarray, summary: dict) -> None:
        n = self.core.n_agents
        res = self.core.last_result
        self.rewards.append(np.asarray(rewards, dtype=np.float64))
        for j, k in enumerate(BREAKDOWN_FIELDS):
            self.totals[k] += breakdown[:, j]
        tr, st = res.trades, res.settlement
        self.totals["p2p_paid"] += np.bincount(tr.buyer, weights=st.paid, minlength=n)
        self.totals["p2p_received"] += np.bincount(tr.seller, weights=st.paid, minlength=n)
        self.totals["grid_use"] += breakdown[:, BREAKDOWN_FIELDS.index("grid_sold")] + breakdown[:, BREAKDOWN_FIELDS.index("grid_bought")]
        for k in STEP_FIELDS:
            self.steps[k].append(summary[k])

    def result(self) -> EpisodeResult:
        steps = {k: np.asarray(v) for k, v in self.steps.items()}
        rewards = np.stack(self.rewards) if self.rewards else np.zeros((0, self.core.n_agents))
        res = EpisodeResult(self.seed, self.kind, self.policy_index, self.names, steps, self.totals, rewards)
        res.by_kind = {KIND_NAMES[k]: _aggregate(self.totals, self.kind == k) for k in range(len(KIND_NAMES))
                       if (self.kind == k).any()}
        res.by_policy = {f"{g}:{name}": _aggregate(self.totals, self.policy_index == g)
                         for g, name in enumerate(self.names)}
        return res


def _aggregate(totals: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, float]:
    """Sum and per-agent mean of every total over the agents in `mask`."""
    out: dict[str, float] = {"agents": int(mask.sum())}
    m = max(int(mask.sum()), 1)
    for k, v in totals.items():
        s = float(v[mask].sum())
        out[k] = s
        out[f"{k}_mean"] = s / m
    return out


def _as_core(core_or_scenario: Any) -> MarketCore:
    if isinstance(core_or_scenario, MarketCore):
        return core_or_scenario
    return MarketCore(core_or_scenario)


# ---- the two faces -------------------------------------------------------------------------

def run_episode(core_or_scenario: Any, assignments: Any, seed: Any = None, *, max_steps: int | None = None,
                callback: Callable[[MarketCore, Any], None] | None = None) -> EpisodeResult:
    """One whole episode through the array API (`MarketCore`).

    `core_or_scenario`: a `MarketCore` (reused, reset here) or anything `MarketCore` accepts.
    `callback(core, previous_state)`, if given, runs after every step (before the policies'
    `update`), with the state the step started from."""
    core = _as_core(core_or_scenario)
    obs = core.reset(seed=seed)
    groups = resolve_assignments(core.agents.kind, assignments)
    for g, (pol, idx) in enumerate(groups):
        pol.bind(core, idx, seed=_policy_seed(seed, g))
    rec = _Recorder(core, groups, seed)
    actions = np.zeros((core.n_agents, core.n_actions))
    steps = 0
    while not core.done and (max_steps is None or steps < max_steps):
        for pol, idx in groups:
            put_actions(actions, idx, pol.act(obs[idx]))   # base-width policies: optional columns 0
        prev = core.state
        obs, rewards, _term, _trunc, info = core.step(actions)
        rec.record(rewards, info["breakdown"], info["summary"])
        if callback is not None:
            callback(core, prev)
        for pol, _ in groups:
            pol.update(core)
        steps += 1
    return rec.result()


def run_episode_dict(env: Any, assignments: Any, seed: Any = None, *, max_steps: int | None = None) -> EpisodeResult:
    """One whole episode through the PettingZoo dict face (`ChannelMarketEnv`).

    Policies still see arrays: the live agents' observation dicts are stacked in index order,
    each policy acts once on its rows, and its rows go back into the action dict."""
    obs_d, _ = env.reset(seed=seed)
    core = env.core
    names = list(env.possible_agents)
    index = {a: i for i, a in enumerate(names)}
    n = len(names)
    groups = resolve_assignments(core.agents.kind, assignments)
    for g, (pol, idx) in enumerate(groups):
        pol.bind(core, idx, seed=_policy_seed(seed, g))
    rec = _Recorder(core, groups, seed)
    obs = np.zeros((n, core.obs_dim), dtype=np.float32)
    actions = np.zeros((n, core.n_actions))
    steps = 0
    while env.agents and (max_steps is None or steps < max_steps):
        live = env.agents
        live_idx = np.fromiter((index[a] for a in live), dtype=np.int64, count=len(live))
        obs[:] = 0.0
        obs[live_idx] = np.stack([obs_d[a] for a in live])
        for pol, idx in groups:
            put_actions(actions, idx, pol.act(obs[idx]))   # base-width policies: optional columns 0
        act_d = {a: actions[i] for a, i in zip(live, live_idx.tolist())}
        obs_d, rew_d, _term, _trunc, info_d = env.step(act_d)
        rewards = np.zeros(n)
        keys = list(rew_d)
        kidx = np.fromiter((index[a] for a in keys), dtype=np.int64, count=len(keys))
        rewards[kidx] = [rew_d[a] for a in keys]
        # breakdown fields the infos carry come from the dicts; the rest from the face's arrays
        full = env.breakdown() if hasattr(env, "breakdown") else core.breakdown()
        breakdown = np.stack([np.asarray(full[f], dtype=np.float64) for f in BREAKDOWN_FIELDS], axis=1)
        info_fields = [j for j, f in enumerate(BREAKDOWN_FIELDS) if keys and f in info_d[keys[0]]]
        if info_fields:
            breakdown[np.ix_(kidx, info_fields)] = [[info_d[a][BREAKDOWN_FIELDS[j]] for j in info_fields] for a in keys]
        rec.record(rewards, breakdown, env.market_summary())
        for pol, _ in groups:
            pol.update(core)
        steps += 1
    return rec.result()


__all__ = ["run_episode", "run_episode_dict", "resolve_assignments", "EpisodeResult", "STEP_FIELDS", "TOTAL_FIELDS"]

"""The energy market's policies on the supply chain: episodes and a small round-robin table.

    row = run_policies("supply_chain_small", {"miller": "risk_factor", "baker": "truthful"}, seed=0)
    rows = compare("supply_chain_small", ["risk_factor", "eps_auction", "truthful"], seeds=[0, 1])

A population names, per producer kind, a policy spec of the evaluation registry
(`eval.populations.make_policy`: a baseline name or a saved model folder) or a bound-ready
`Policy`; one spec for all kinds is a string. Agents of kinds it does not name are the
built-in MASER agents (the risk-factor rules inside the market). The policies read the
market through `SupplyChainCore.view` (a `MarketView`) and answer in channel_market_v0's
action convention; their code is not changed for this economy.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ...envs.supply_chain import SupplyChainCore
from ...envs.supply_chain.core import N_ACTIONS
from ...envs.supply_chain.scenario import KIND_NAMES
from ...policies.base import Policy
from ..populations import make_policy


def _assign(core: SupplyChainCore, population: "str | Policy | Mapping[str, Any]") -> list[tuple[Policy, np.ndarray]]:
    if isinstance(population, (str, Policy)):
        population = {k: population for k in KIND_NAMES}
    if not isinstance(population, Mapping):
        raise TypeError(f"population: {type(population).__name__}; allowed: a spec, a Policy or a kind -> spec mapping")
    out: dict[int, tuple[Policy, list[int]]] = {}    # one binding per policy object (kinds may share one)
    made: dict[str, Policy] = {}                      # one policy per spec: kinds naming it share it
    for kind, spec in population.items():
        if kind not in KIND_NAMES:
            raise ValueError(f"population: kind {kind!r}; allowed: {', '.join(KIND_NAMES)}")
        if isinstance(spec, Policy):
            policy = spec
        else:
            if spec not in made:
                made[spec] = make_policy(spec)
            policy = made[spec]
        out.setdefault(id(policy), (policy, []))[1].extend(np.flatnonzero(core.kind == KIND_NAMES.index(kind)))
    return [(p, np.sort(np.asarray(a, dtype=np.int64))) for p, a in out.values()]


def run_policies(scenario: Any, population: "str | Policy | Mapping[str, Any]", seed: int = 0,
                 days: "int | None" = None, **overrides: Any) -> dict[str, Any]:
    """One episode with `population` acting; returns its numbers (lifespan, survivors, trades, the
    policies' share of trades, money drift and the largest goods imbalance: both ~0)."""
    core = SupplyChainCore(scenario, **({"days": days} if days else {}), **overrides)
    obs = core.reset(seed=seed)
    pairs = _assign(core, population)
    mask = np.zeros(core.n_agents, bool)
    for i, (policy, agents) in enumerate(pairs):
        policy.bind(core, agents, seed=[seed, i])
        mask[agents] = True
    money0 = core.money_total()
    trades = mine = 0
    imbalance = 0.0
    while not core.done:
        actions = np.full((core.n_agents, N_ACTIONS), np.nan)     # move NaN: the rule moves the agent
        for policy, agents in pairs:
            if core.state.alive[agents].any():
                out = policy.act(obs[agents])
                actions[agents, :out.shape[1]] = out
        obs, _, _, _, info = core.step(actions, mask & core.state.alive)
        for policy, _ in pairs:
            policy.update(core)
        tr = core.last_trades
        trades += tr.seller.size
        mine += int((mask[tr.seller] | mask[tr.buyer]).sum())
        imbalance = max(imbalance, float(np.abs(core.goods_balance()).max()))
    st = core.state
    lived = np.where(st.died >= 0, st.died, st.t)
    return {"scenario": core.scenario.name, "seed": seed, "days": st.t,
            "alive": int(st.alive.sum()), "alive_policy": int((st.alive & mask).sum()),
            "lifespan": float(lived.mean()), "lifespan_policy": float(lived[mask].mean()) if mask.any() else float("nan"),
            "trades": trades, "trades_policy": mine, "money_drift": core.money_total() - money0,
            "goods_imbalance": imbalance}


def compare(scenario: Any, specs: Sequence[str], seeds: Sequence[int] = (0,), days: "int | None" = None,
            **overrides: Any) -> list[dict[str, Any]]:
    """Each spec as the whole population, over `seeds`: one row per (spec, seed)."""
    return [{"policy": s, **run_policies(scenario, s, seed=k, days=days, **overrides)} for s in specs for k in seeds]


__all__ = ["run_policies", "compare"]

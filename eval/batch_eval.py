"""Evaluation over many seeds as the markets of one batch: one `MarketCore(scenario, n_markets=S)`.

Beside the run layer of the evaluation pipeline (settings -> jobs -> runs -> statistics -> report):
where `eval.runs` records one episode per job, this runs every seed's episode in one batch.

    from channelmarket.eval.batch_eval import evaluate_seeds
    res = evaluate_seeds("energy_default", policy, seeds=range(10_000, 10_064))
    res["profit"]            # [S, N] episode profit of every agent in every seed's market
    res["by_kind"]["solar"]  # [S] mean episode profit per solar agent, per seed

Market m of the batch is seed `seeds[m]` exactly as `MarketCore(scenario).reset(seed=seeds[m])`
runs it (bit-identical, tested), so the numbers equal S separate episodes; one step call serves
every seed, which beats a process pool for small and medium markets on a few cores.

It applies to policies that act on observations alone (learned models, `RandomPolicy`, any
`Policy` whose `act` reads only `obs`): one policy object controls every agent of every market.
Baselines that read a market's `MarketView` (risk factor, truthful, ...) see one market; for them,
and for the tournament's recordings, `eval.tournament` runs one core per episode in processes.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from ..envs.core import MarketCore
from ..envs.kinds import KIND_NAMES


def evaluate_seeds(scenario: Any, policy: Any, seeds: Iterable[int], **overrides: Any) -> dict[str, Any]:
    """Run one episode per seed, all seeds in one batch, `policy` controlling every agent (see
    the module docstring). Returns {"seeds", "profit" [S, N], "by_kind" {kind: [S]}, "steps"}."""
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds is empty; allowed: one or more non-negative integers")
    core = MarketCore(scenario, n_markets=len(seeds), **overrides)
    obs = core.reset(seed=seeds)
    policy.bind(core, np.arange(core.n_agents), seed=0)
    profit = np.zeros(core.n_agents)
    steps = 0
    while not core.done:
        obs, rewards, *_ = core.step(np.asarray(policy.act(obs), dtype=np.float64))
        update = getattr(policy, "update", None)
        if update is not None:
            update(core)
        profit += rewards
        steps += 1
    n = core.agents_per_market
    per = profit.reshape(len(seeds), n)
    kind = core.bagents.per_market[0].kind
    by_kind = {KIND_NAMES[k]: per[:, kind == k].mean(axis=1) for k in np.unique(kind)}
    return {"seeds": seeds, "profit": per, "by_kind": by_kind, "steps": steps}


__all__ = ["evaluate_seeds"]

"""The supply chain in the tournament: one episode job of a population on a `supply_chain_v0` cell,
and the rows it adds to the tournament's tables (`eval.tables`: the same episodes, steps and
exploitability tables as the energy market, so one `channelmarket eval` compares policies on
either economy).

    job = SupplyChainJob(0, "maser_exp1", make_scenario("maser_exp1"), MECHANISM, "none", 0, homogeneous("risk_factor"))
    run = job.run()                   # a SupplyChainRun: per-agent totals and per-day arrays
    tables = episode_tables(run)      # eval.statistics: {"rows": [...], "steps": [...], "exploit": []}

The run layer of the evaluation pipeline (settings -> jobs -> runs -> statistics -> report) for
the second economy. A cell of the supply chain is (scenario, `eval.markets.MECHANISM` = "maser":
its own offers and answers, shock setting, seed); its shock settings and kinds are checked in
`eval.markets`. A population's slots pick
agents by the supply chain's kinds (farmer, miller, baker, seller; a homogeneous population covers
every agent, `eval.populations.market_population`); the `maser` policy leaves its agents to the
market's own MASER rules; any other spec is a policy of the registry or a saved model acting
through `SupplyChainCore.view` in channel_market_v0's action convention.

The rows (`eval.statistics.supply_chain_tables`), per (policy, role, kind) group as on the energy
market: profit, revenue and cost (money), units sold and bought, the energy-only fields 0, and the
`SURVIVAL_COLUMNS`: the group's share alive at the end and mean days alive; per episode whether
everyone died and trades per day. Prices are in units of each good's cap (the policies' view).
Metrics that need the energy market's optimum, equilibrium or grid are NaN. Recording is not
supported here (`record` is accepted and ignored).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...envs.breakdown import BREAKDOWN_FIELDS
from ...envs.supply_chain import SupplyChainCore
from ...envs.supply_chain.core import N_ACTIONS
from ...envs.supply_chain.scenario import KIND_NAMES, SupplyChainScenario
from ..markets import BUILTIN_POLICY, market_population
from ..populations import PopulationSpec, assign, make_policy

STEP_ARRAYS = ("t", "price", "ref_price", "shock", "generation", "load", "volume", "realized_welfare")


@dataclass(frozen=True)
class SupplyChainJob:
    """One episode of one population on one supply-chain cell (plain data: spawn-safe)."""

    index: int
    scenario_label: str
    scenario: SupplyChainScenario      # with the shock setting applied
    mechanism: str
    shocks: str
    seed: int
    population: PopulationSpec
    optimum: bool = False              # the energy market's references: not defined here
    equilibrium: bool = False
    record: bool = False               # not supported on the supply chain (ignored)

    def run(self) -> "SupplyChainRun":
        return run_supply_chain_job(self)


@dataclass
class SupplyChainRun:
    """What one supply-chain job produced, as plain data (it crosses the worker pool)."""

    job: SupplyChainJob
    slots: list                        # the population's slots (market kinds); policy_index points into them
    kind: np.ndarray                   # [N] codes into the supply chain's KIND_NAMES
    policy_index: np.ndarray           # [N]
    totals: dict                       # every BREAKDOWN_FIELDS column summed over the days [N]
    alive: np.ndarray                  # [N] alive at the end
    lifespan: np.ndarray               # [N] days alive
    trades: int
    steps: dict                        # STEP_ARRAYS -> one value per day (prices in cap units)
    recording: None = None             # no frame recording on the supply chain


def _policy_seed(seed: int, g: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([int(seed), 0x5EED, g])   # as policies.rollout: per group of the episode


def run_supply_chain_job(job: SupplyChainJob) -> SupplyChainRun:
    """Run the episode and record it (see the module docstring)."""
    spec = market_population(job.population, "supply_chain")
    core = SupplyChainCore(job.scenario)
    obs = core.reset(seed=int(job.seed))
    n = core.n_agents
    view = core.view(np.arange(n))      # the whole market's public and private numbers, for the tables
    pairs = assign(spec, core.kind, kind_names=KIND_NAMES)
    policy_index = np.zeros(n, dtype=np.int64)
    groups = []
    for k, (slot, idx) in enumerate(pairs):
        policy_index[idx] = k
        if slot.policy != BUILTIN_POLICY:
            pol = make_policy(slot.policy)
            pol.bind(core, idx, seed=_policy_seed(job.seed, k))
            groups.append((pol, idx))
    mask = np.zeros(n, bool)
    for _, idx in groups:
        mask[idx] = True
    totals = {f: np.zeros(n) for f in BREAKDOWN_FIELDS}
    steps: dict[str, list] = {c: [] for c in STEP_ARRAYS}
    trades = 0
    while not core.done:
        actions = np.full((n, N_ACTIONS), np.nan)      # move NaN: the rule moves the agent
        alive = core.state.alive
        for pol, idx in groups:
            if alive[idx].any():
                out = pol.act(obs[idx])
                actions[idx, :out.shape[1]] = out
        st = core.state
        produced0, eaten0, ref = st.produced.sum(), st.eaten.sum(), float(view.ref_price.mean())
        moved = job.scenario.shock_day == st.t
        obs, _, _, _, _ = core.step(actions, mask & alive)
        for pol, _ in groups:
            pol.update(core)
        tr = view.my_trades()                   # prices in cap units, as the policies see them
        trades += tr.seller.size
        bd = view.breakdown()
        for f in BREAKDOWN_FIELDS:
            totals[f] += bd[f]
        steps["t"].append(st.t - 1)
        steps["price"].append(float(tr.paid.sum() / tr.qty.sum()) if tr.qty.size else float("nan"))
        steps["ref_price"].append(ref)
        steps["shock"].append("MOVE_KEY_AGENT" if moved else "NONE")
        steps["generation"].append(float(st.produced.sum() - produced0))
        steps["load"].append(float(st.eaten.sum() - eaten0))
        steps["volume"].append(float(tr.qty.sum()))
        steps["realized_welfare"].append(float(bd["profit"].sum()))
    st = core.state
    lived = np.where(st.died >= 0, st.died, st.t).astype(np.float64)
    return SupplyChainRun(job, [slot for slot, _ in pairs], np.asarray(core.kind, dtype=np.int64), policy_index,
                          totals, st.alive.copy(), lived, int(trades), steps)


__all__ = ["SupplyChainJob", "SupplyChainRun", "run_supply_chain_job", "STEP_ARRAYS"]

"""Statistics: the tournament's table rows from recorded runs, and the confidence intervals.

The statistics layer of the evaluation pipeline (settings -> jobs -> runs -> statistics ->
report). It consumes `EpisodeRun`s (`eval.runs`) and produces the rows of the tables of
`eval.tables` (`episode_tables`); the report and training read their intervals through
`mean_ci` / `confidence_interval` and their paired comparisons through `paired_diff`, the one
place these are defined.

- episodes: one row per (policy, role, kind) group, per (policy, role) over kinds, per kind over
  policies, and one over everything (`ALL`), each with the episode's metrics
  (`eval.metrics.episode_metrics`) repeated; kinds come from the kind registry (`KIND_NAMES`);
- steps: the episode's price path and market totals, one block of columns per episode;
- exploitability: the stores' mean-field best-response gain (method "mf_dp") of every run.

Intervals, per cell and over episodes (one value per episode):

- mean ± 95% confidence half-width with Student's t: t_{0.975, n-1} * s / sqrt(n), s the sample
  std (ddof = 1); NaN values (a metric undefined for an episode, e.g. shock response without a
  shock) are left out and n says how many remain;
- paired differences over seeds: populations that ran on the same seeds faced the same weather,
  demand and shocks, so the difference d_s = x_s - ref_s of each shared seed s removes that
  common variation; reported as mean ± t half-width of d, with the paired t-test p-value.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any, Iterable

import numpy as np

from ..envs.breakdown import BREAKDOWN_FIELDS
from ..envs.shocks import SHOCK_NAMES
from ..envs.state import KIND_NAMES
from ..envs.supply_chain.scenario import KIND_NAMES as SUPPLY_CHAIN_KIND_NAMES
from .metrics import episode_metrics, gini, price_volatility
from .runs import EpisodeRun
from .supply_chain.runs import SupplyChainRun
from .tables import ALL, EPISODE_COLUMNS, STEP_COLUMNS, SURVIVAL_COLUMNS


# ---- confidence intervals --------------------------------------------------------------------------

def mean_ci(x: Iterable[float], confidence: float = 0.95) -> tuple[float, float, int]:
    """(mean, half-width of the two-sided t confidence interval, n) over the finite values;
    half-width NaN for n < 2, mean NaN for n = 0."""
    from scipy.stats import t

    v = np.asarray([a for a in x if a is not None], dtype=np.float64)
    v = v[np.isfinite(v)]
    n = int(v.size)
    if n == 0:
        return float("nan"), float("nan"), 0
    m = float(v.mean())
    if n < 2:
        return m, float("nan"), n
    half = float(t.ppf(0.5 + confidence / 2, n - 1) * v.std(ddof=1) / math.sqrt(n))
    return m, half, n


def confidence_interval(x: Iterable[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) of the Student-t interval of `mean_ci` over the finite values; the
    interval is the mean itself when fewer than two values remain (NaN when none does)."""
    m, half, n = mean_ci(x, level)
    if n < 2:
        return m, m, m
    return m, m - half, m + half


def paired_diff(x: dict[Any, float], ref: dict[Any, float], confidence: float = 0.95) -> dict[str, float]:
    """Paired difference x - ref over the keys (seeds) both have finite values for: mean, t
    half-width, n and the paired t-test p-value (NaN when n < 2 or the differences are constant)."""
    from scipy.stats import ttest_rel

    keys = [k for k in x if k in ref and np.isfinite(x[k]) and np.isfinite(ref[k])]
    a = np.array([x[k] for k in keys], dtype=np.float64)
    b = np.array([ref[k] for k in keys], dtype=np.float64)
    m, half, n = mean_ci(a - b, confidence)
    p = float("nan")
    if n >= 2 and np.std(a - b) > 0:
        p = float(ttest_rel(a, b).pvalue)
    return {"mean": m, "half": half, "n": n, "p": p}


# ---- rows of one run -----------------------------------------------------------------------------------

def _float(x: Any) -> float:
    return float(x) if x is not None else float("nan")


def group_rows(ep: Any, slots: list, ids: dict[str, Any], kind_names: Any = KIND_NAMES,
               means: dict[str, np.ndarray] | None = None) -> list[dict[str, Any]]:
    """Rows of one episode: one per (policy, role, kind) group, per (policy, role) over kinds, per
    kind over policies, and one over everything. `ep` has `totals` (per-agent sums of every
    breakdown column), `kind` (codes into `kind_names`, the energy market's by default) and
    `policy_index` (into `slots`); `means` adds columns: the group mean of a per-agent array."""
    kind_names = tuple(kind_names)
    totals = ep.totals
    kind = np.asarray(ep.kind, dtype=np.int64)
    gidx = np.asarray(ep.policy_index, dtype=np.int64)
    pol = np.array([slots[g].policy for g in range(len(slots))], dtype=object)[gidx]
    role = np.array([slots[g].role for g in range(len(slots))], dtype=object)[gidx]
    kname = np.array(kind_names, dtype=object)[kind]
    # groups in a fixed order: slot order for policies, kind_names order for kinds
    pr_order = list(dict.fromkeys((s.policy, s.role) for s in slots))
    keys: list[tuple[str, str, str, np.ndarray]] = []
    for p, r in pr_order:
        base = (pol == p) & (role == r)
        for k in kind_names:
            m = base & (kname == k)
            if m.any():
                keys.append((p, r, k, m))
        keys.append((p, r, ALL, base))
    for k in kind_names:
        m = kname == k
        if m.any():
            keys.append((ALL, ALL, k, m))
    keys.append((ALL, ALL, ALL, np.ones(kind.shape[0], dtype=bool)))
    rows = []
    for p, r, k, m in keys:
        n = int(m.sum())
        row = dict(ids, policy=p, kind=k, role=r, agents=n)
        prof = totals["profit"][m]
        row["profit_total"] = float(prof.sum())
        row["profit_per_agent"] = float(prof.sum() / n)
        row["group_profit_gini"] = gini(prof)
        for f in BREAKDOWN_FIELDS:
            if f != "profit":
                row[f"{f}_per_agent"] = float(totals[f][m].sum() / n)
        for c, v in (means or {}).items():
            row[c] = float(np.asarray(v)[m].mean())
        rows.append(row)
    return rows


def supply_chain_tables(run: SupplyChainRun) -> dict[str, list]:
    """The rows a supply-chain run adds (`eval.supply_chain.runs`): the same tables, with the
    `SURVIVAL_COLUMNS` filled and the energy market's references NaN."""
    job, spec, s = run.job, run.job.population, run.steps
    ids = {"scenario": job.scenario_label, "mechanism": job.mechanism, "shocks": job.shocks, "seed": int(job.seed),
           "population": spec.name, "substrate": spec.substrate, "focal_policy": spec.focal_policy}
    price, days, profit = np.asarray(s["price"], dtype=np.float64), len(s["t"]), run.totals["profit"]
    episode = {c: float("nan") for c in EPISODE_COLUMNS}
    episode.update(steps=days, welfare=float(profit.sum()), realized_welfare=float(profit.sum()),
                   p2p_volume=float(np.sum(s["volume"])), price_mean=float(np.nanmean(price)) if np.isfinite(price).any()
                   else float("nan"), price_volatility=price_volatility(price[np.isfinite(price)]),
                   n_shocks=float(sum(k != "NONE" for k in s["shock"])), payment_failure_rate=0.0,
                   profit_gini=gini(profit), extinct=float(not run.alive.any()), trades_per_step=run.trades / max(days, 1))
    ep = SimpleNamespace(totals=run.totals, kind=run.kind, policy_index=run.policy_index)
    means = {"alive_share": run.alive.astype(np.float64), "lifespan_per_agent": run.lifespan}
    rows = [dict(r, **episode) for r in group_rows(ep, run.slots, ids, SUPPLY_CHAIN_KIND_NAMES, means)]
    nan = [float("nan")] * days
    block = {c: [ids[c]] * days for c in STEP_COLUMNS[:5]}
    block.update({c: list(s[c]) for c in ("t", "ref_price", "shock", "generation", "load", "volume",
                                          "realized_welfare")})
    block.update(hour=nan, price=price.tolist(), eq_price=nan, supply=nan, demand=nan, unserved=nan, curtailed=nan,
                 optimal_welfare=nan)
    return {"rows": rows, "steps": [block], "exploit": []}


def episode_tables(run: "EpisodeRun | SupplyChainRun") -> dict[str, list]:
    """The rows one run adds to each table: {"rows": episode rows, "steps": [one column block],
    "exploit": mf_dp rows}."""
    if isinstance(run, SupplyChainRun):
        return supply_chain_tables(run)
    job, record = run.job, run.record
    spec = job.population
    use_eq = run.eq_price is not None and job.equilibrium
    m = episode_metrics(record, equilibrium_price=run.eq_price if use_eq else None)
    m["eq_converged"] = float(run.eq_converged) if use_eq else float("nan")
    ids = {"scenario": job.scenario_label, "mechanism": job.mechanism, "shocks": job.shocks, "seed": int(job.seed),
           "population": spec.name, "substrate": spec.substrate, "focal_policy": spec.focal_policy}
    episode = {c: _float(m[c]) for c in EPISODE_COLUMNS}
    episode.update({c: float("nan") for c in SURVIVAL_COLUMNS})   # the supply chain's columns
    rows = [dict(r, **episode) for r in group_rows(record, run.slots, ids)]

    s = record.steps
    T = record.n_steps
    eq_price = run.eq_price[:T] if run.eq_price is not None else np.full(T, np.nan)
    steps = {c: [ids[c]] * T for c in STEP_COLUMNS[:5]}
    steps.update(t=s["t"].tolist(), hour=run.hour.tolist(), price=s["price"].tolist(),
                 ref_price=s["ref_price"].tolist(), eq_price=np.asarray(eq_price, dtype=np.float64).tolist(),
                 shock=[SHOCK_NAMES[int(k)] for k in s["shock"]], generation=run.generation, load=run.load,
                 volume=s["volume"].tolist(), supply=s["supply"].tolist(), demand=s["demand"].tolist(),
                 unserved=s["unserved"].tolist(), curtailed=s["curtailed"].tolist(),
                 realized_welfare=s["realized_welfare"].tolist(), optimal_welfare=s["optimal_welfare"].tolist())

    exploit = [{"scenario": job.scenario_label, "mechanism": job.mechanism, "shocks": job.shocks, "seed": int(job.seed),
                "population": spec.name, "kind": g["kind"], "method": "mf_dp", "agents": g["agents"],
                "base_profit_per_agent": g["base"], "deviation_profit_per_agent": g["deviation"],
                "gain_per_agent": g["gain"],
                "detail": f"DP best response to the realized clearing prices, {g['levels']} charge levels"}
               for g in run.best_responses]
    return {"rows": rows, "steps": [steps], "exploit": exploit}


__all__ = ["mean_ci", "confidence_interval", "paired_diff", "group_rows", "episode_tables", "supply_chain_tables"]

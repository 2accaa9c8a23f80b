"""Baseline table: mean profit per agent kind and market efficiency of populations made of
each rule-based baseline (every agent runs the same baseline), over several seeds.

    python -m channelmarket.eval.baseline_table --seeds 10 [--scenario energy_default] [--out table.md]

Columns (mean ± 95% confidence half-width over seeds, Student t):
- profit per agent kind, EUR per agent over the episode;
- welfare: the sum of every agent's profit over the episode, EUR;
- P2P: energy traded peer-to-peer (paid), MWh;
- efficiency: realized surplus / optimal surplus, summed over the episode's steps. Surplus is
  measured in the agents' own values (Gode and Sunder's allocative efficiency): every
  peer-to-peer MWh is worth buyer limit - seller reserve, every MWh a generator sells to the
  grid feed-in - reserve. The optimum of a step is a linear program over the open channels of
  that step (scipy HiGHS): generators sell at most their energy (grid sales within their grid
  limit), consumers buy at most their need, storage splits one interval between charging and
  discharging; it ignores channel balances (payments) and what the step does to later steps,
  so it is an upper reference, and on-chain double-auction trades may exceed it;
- vs DA: welfare / welfare of the truthful population under the `double_auction` mechanism
  on the same seed (centralized exchange, no channel constraint: a practical upper reference).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np

from ..envs.core import MarketCore
from ..envs.state import KIND_NAMES
from ..policies.registry import BASELINES, make
from ..policies.rollout import run_episode


# ---- step surplus: realized and optimal ---------------------------------------------------------

def realized_surplus(core: MarketCore) -> float:
    """Surplus of the last step in the agents' values (see module docstring)."""
    sc, ag, res = core.scenario, core.agents, core.last_result
    tr, st = res.trades, res.settlement
    p2p = float(((ag.limit[tr.buyer] - ag.reserve[tr.seller]) * st.paid_qty).sum())
    grid_sold = st.breakdown[:, 5]
    grid = float(((sc.feed_in_tariff - ag.reserve) * grid_sold)[ag.is_generator].sum())
    return p2p + grid


def optimal_surplus(core: MarketCore, state: Any) -> float:
    """Optimal surplus of the step that started from `state` (a linear program, see module docstring)."""
    from scipy.optimize import linprog
    from scipy.sparse import csr_matrix

    sc, ag, res = core.scenario, core.agents, core.last_result
    sellable, needed = res.sellable, res.needed
    n = ag.n
    u, v, is_open = state.u, state.v, state.open
    sg, bg = ag.sells_good, ag.buys_good
    tiny = 1e-9  # MWh; float dust (a store emptied to 1e-16) would make the storage rows ill-conditioned
    sell_ok = state.active & (sg >= 0) & (sellable > tiny)
    buy_ok = state.active & (bg >= 0) & (needed > tiny)
    fwd = np.flatnonzero(is_open & sell_ok[u] & buy_ok[v] & (sg[u] == bg[v]))
    rev = np.flatnonzero(is_open & sell_ok[v] & buy_ok[u] & (sg[v] == bg[u]))
    s = np.concatenate([u[fwd], v[rev]])
    b = np.concatenate([v[fwd], u[rev]])
    # parallel channels add nothing without balances: one variable per (seller, buyer)
    key = np.unique(s * n + b)
    s, b = key // n, key % n
    gen = np.flatnonzero(ag.is_generator & sell_ok & (ag.grid_limit > 0))
    nx, ng = s.shape[0], gen.shape[0]
    if nx + ng == 0:
        return 0.0
    gain = np.concatenate([ag.limit[b] - ag.reserve[s], sc.feed_in_tariff - ag.reserve[gen]])
    storage = ag.is_storage
    # one row per agent: generators (sales + grid <= sellable), consumers (purchases <= need),
    # storage (sales / sellable + purchases / need <= 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        w_out = np.where(storage[s], 1.0 / sellable[s], 1.0)
        w_in = np.where(storage[b], 1.0 / needed[b], 1.0)
    rows = np.concatenate([s, b, gen])
    cols = np.concatenate([np.arange(nx), np.arange(nx), nx + np.arange(ng)])
    vals = np.concatenate([w_out, w_in, np.ones(ng)])
    a = csr_matrix((vals, (rows, cols)), shape=(n, nx + ng))
    rhs = np.where(storage, 1.0, np.where(ag.is_consumer, needed, sellable))
    used = np.flatnonzero(np.diff(a.indptr) > 0)
    bounds = np.zeros((nx + ng, 2))
    bounds[:, 1] = np.inf
    bounds[nx:, 1] = ag.grid_limit[gen]
    out = linprog(-gain, A_ub=a[used], b_ub=rhs[used], bounds=bounds, method="highs")
    if out.status != 0:  # pragma: no cover - the LP is always feasible (x = 0) and bounded
        raise RuntimeError(f"surplus LP failed: {out.message}")
    return float(-out.fun)


# ---- running the populations ---------------------------------------------------------------

def evaluate(name: str, scenario: Any, seed: int, mechanism: str | None = None, lp: bool = True) -> dict[str, Any]:
    """One episode of a population running baseline `name`; returns its measures."""
    overrides = {} if mechanism is None else {"mechanism": mechanism}
    core = MarketCore(scenario, **overrides)
    acc = {"real": 0.0, "opt": 0.0}

    def on_step(c: MarketCore, prev: Any) -> None:
        acc["real"] += realized_surplus(c)
        if lp:
            acc["opt"] += optimal_surplus(c, prev)

    res = run_episode(core, make(name), seed=seed, callback=on_step)
    out = {"welfare": res.welfare, "p2p": float(res.totals["bought"].sum()),
           "efficiency": acc["real"] / acc["opt"] if lp and acc["opt"] > 0 else np.nan}
    for k, agg in res.by_kind.items():
        out[k] = agg["profit_mean"]
    return out


def mean_ci(x: np.ndarray) -> tuple[float, float]:
    """Mean and 95% confidence half-width (Student t) of a sample."""
    from scipy.stats import t

    x = np.asarray(x, dtype=np.float64)
    if x.size < 2:
        return float(x.mean()), float("nan")
    return float(x.mean()), float(t.ppf(0.975, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))


def _fmt(m: float, h: float, digits: int = 0) -> str:
    if np.isnan(m):
        return "–"
    if np.isnan(h):
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} ± {h:.{digits}f}"


def build_table(seeds: int = 10, scenario: Any = "energy_default", names: tuple[str, ...] = BASELINES,
                lp: bool = True, log=None) -> str:
    """The Markdown table (see module docstring)."""
    seed_list = list(range(seeds))
    ref = {s: evaluate("truthful", scenario, s, mechanism="double_auction", lp=lp) for s in seed_list}
    rows = [(f"{n}", n, None) for n in names]
    rows += [("truthful, `double_auction` clearing", "truthful", "double_auction"),
             ("truthful, `eps_auction` clearing", "truthful", "eps_auction")]
    kinds = [k for k in KIND_NAMES]
    header = (["population"] + [f"{k} EUR/agent" for k in kinds]
              + ["welfare EUR", "P2P MWh", "efficiency (surplus / LP)", "welfare / truthful-DA"])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, name, mech in rows:
        t0 = time.perf_counter()
        runs = [ref[s] if (name == "truthful" and mech == "double_auction") else evaluate(name, scenario, s, mech, lp)
                for s in seed_list]
        cells = [label]
        for k in kinds:
            cells.append(_fmt(*mean_ci(np.array([r.get(k, np.nan) for r in runs]))))
        cells.append(_fmt(*mean_ci(np.array([r["welfare"] for r in runs]))))
        cells.append(_fmt(*mean_ci(np.array([r["p2p"] for r in runs]))))
        cells.append(_fmt(*mean_ci(np.array([r["efficiency"] for r in runs])), digits=3))
        cells.append(_fmt(*mean_ci(np.array([r["welfare"] / ref[s]["welfare"] for r, s in zip(runs, seed_list)])),
                          digits=3))
        lines.append("| " + " | ".join(cells) + " |")
        if log is not None:
            log(f"{label}: {time.perf_counter() - t0:.1f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m channelmarket.eval.baseline_table", description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=10, help="episodes (seeds 0..n-1) per population")
    ap.add_argument("--scenario", default="energy_default", help="preset name or YAML/JSON path")
    ap.add_argument("--policies", default=",".join(BASELINES), help="comma-separated baseline names")
    ap.add_argument("--no-lp", action="store_true", help="skip the per-step LP optimum (efficiency column)")
    ap.add_argument("--out", default=None, help="also write the table to this file")
    args = ap.parse_args(argv)
    if args.seeds < 1:
        ap.error(f"--seeds = {args.seeds}; allowed: an integer >= 1")
    names = tuple(x.strip() for x in args.policies.split(",") if x.strip())
    unknown = [x for x in names if x not in BASELINES]
    if unknown:
        ap.error(f"unknown policies {unknown}; allowed: {', '.join(BASELINES)}")
    t0 = time.perf_counter()
    table = build_table(args.seeds, args.scenario, names, lp=not args.no_lp,
                        log=lambda s: print(s, file=sys.stderr, flush=True))
    sc = MarketCore(args.scenario).scenario
    note = (f"\n\n{sc.name}: {sc.n_agents} agents ({sc.n_solar} solar, {sc.n_wind} wind, {sc.n_storage} storage, "
            f"{sc.n_consumers} consumers), {sc.episode_steps} steps, `{sc.mechanism}` clearing unless stated; "
            f"seeds 0..{args.seeds - 1}; mean ± 95% CI over seeds.")
    print(table + note)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table + note + "\n")
    print(f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

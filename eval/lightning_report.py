"""The Lightning market's before/after numbers (issue 10): a face of the evaluation pipeline that
runs populations on markets and prints the README's tables.

    python -m channelmarket.eval.lightning_report                   # all markets, 3 seeds, both optima
    python -m channelmarket.eval.lightning_report --seeds 1 --no-optimum --out lightning.json

Markets: `energy_default` (the legacy market, "before") and the sound market on three graphs
(`energy_lightning`: kind-aware random, `energy_lightning_scale_free`, `energy_lightning_real`:
the bundled describegraph file). Populations: `truthful` and `risk_factor` (bilateral clearing),
`eps_auction` (the eps-auction baseline under the eps-auction mechanism). Per (market, population)
over the seeds, from every step's settlement and summary:

- P2P share: consumers' peer-to-peer MWh / (peer-to-peer + grid MWh) they bought;
- efficiency against the channel optimum and against the complete-network optimum
  (`eval.welfare.optimal_welfare`, network "channels" / "complete"; sums over the episode);
- payment failures per agreed trade: failed, partial, and every `failed_*` reason the market
  summary reports (the payment layer's reasons once it has them);
- fees: on-chain fees, network charges (and routing fees when the summary has them), EUR per day;
- unserved energy (MWh per day) and its value at the value of lost load.
The shock table runs each shock for 8 steps from step 40 (of 96; the same shares of shorter days)
against the same seed without it (common random numbers) and reports the change of the mean
clearing price, of unserved MWh and of welfare (the sum of the rewards, which carry the value of
lost load) over those steps.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

from ..envs.breakdown import BREAKDOWN_INDEX as C
from ..envs.core import MarketCore
from ..envs.shocks import SHOCK_NAMES
from ..policies.rollout import run_episode
from ..policies.registry import make
from .welfare import optimal_welfare, realized_welfare

MARKETS = ("energy_default", "energy_lightning", "energy_lightning_scale_free", "energy_lightning_real")
POPULATIONS = {"truthful": ("truthful", "bilateral"), "risk_factor": ("risk_factor", "bilateral"),
               "eps_auction": ("eps_auction", "eps_auction")}
SHOCK_START, SHOCK_STEPS = 40 / 96, 8 / 96   # shares of the episode: steps 40-47 of a 96-step day


def episode(market: str, population: str, seed: int, optimum: bool = True, **overrides: Any) -> dict[str, Any]:
    """Totals of one episode (see the module docstring)."""
    policy, mechanism = POPULATIONS[population]
    core = MarketCore(market, mechanism=mechanism, **overrides)
    tot: dict[str, float] = {"p2p": 0.0, "grid": 0.0, "real": 0.0, "opt_ch": 0.0, "opt_cx": 0.0, "agreed": 0.0,
                             "failed": 0.0, "partial": 0.0, "unserved": 0.0, "lost_load": 0.0,
                             "network_charges": 0.0, "routing_fees": 0.0}
    reasons: dict[str, float] = {}
    prices, unserved, welfare = [], [], []

    def on_step(c: MarketCore, prev: Any) -> None:
        bd = c.last_result.settlement.breakdown
        cons = c.agents.is_consumer
        tot["p2p"] += float(bd[cons, C["bought"]].sum())
        tot["grid"] += float(bd[cons, C["grid_bought"]].sum())
        s = c.summary()
        tot["agreed"] += float(c.last_result.trades.qty.shape[0])
        tot["failed"] += s["failed_payments"]
        tot["partial"] += s["partial_payments"]
        tot["unserved"] += s["unserved"]
        tot["lost_load"] += s.get("lost_load", 0.0)
        tot["network_charges"] += s.get("network_charges", 0.0)
        tot["routing_fees"] += s.get("routing_fees", 0.0)
        for k, v in s.items():
            if k.startswith("failed_") and k != "failed_payments" and isinstance(v, (int, float)):
                reasons[k] = reasons.get(k, 0.0) + float(v)
        prices.append(s["clearing_price"])
        unserved.append(s["unserved"])
        welfare.append(s["welfare"])
        if optimum:
            tot["real"] += realized_welfare(c)
            tot["opt_ch"] += optimal_welfare(c, prev, network="channels").welfare
            tot["opt_cx"] += optimal_welfare(c, prev, network="complete").welfare

    run_episode(core, make(policy), seed=seed, callback=on_step)
    tot["onchain_fees"] = float(core.state.fee_sink)
    days = core.scenario.episode_steps * core.scenario.step_hours / 24.0
    return {"totals": tot, "reasons": reasons, "days": days, "prices": prices, "unserved": unserved,
            "welfare": welfare}


def summarize(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Pooled figures over seeds (ratios of sums)."""
    t = {k: sum(r["totals"][k] for r in runs) for k in runs[0]["totals"]}
    days = sum(r["days"] for r in runs)
    out = {
        "p2p_share": t["p2p"] / max(t["p2p"] + t["grid"], 1e-12),
        "eff_channels": t["real"] / t["opt_ch"] if t["opt_ch"] > 0 else float("nan"),
        "eff_complete": t["real"] / t["opt_cx"] if t["opt_cx"] > 0 else float("nan"),
        "failed_rate": t["failed"] / max(t["agreed"], 1.0),
        "partial_rate": t["partial"] / max(t["agreed"], 1.0),
        "onchain_fees_per_day": t["onchain_fees"] / days,
        "network_charges_per_day": t["network_charges"] / days,
        "routing_fees_per_day": t["routing_fees"] / days,
        "unserved_per_day": t["unserved"] / days,
        "lost_load_per_day": t["lost_load"] / days,
    }
    for k in sorted({k for r in runs for k in r["reasons"]}):
        out[k + "_rate"] = sum(r["reasons"].get(k, 0.0) for r in runs) / max(t["agreed"], 1.0)
    return out


def shock_effects(market: str, population: str, seeds: list[int], **overrides: Any) -> dict[str, dict[str, float]]:
    """Per shock: mean clearing price and unserved MWh over the shock's steps, minus the same seed without it."""
    out = {}
    steps = MarketCore(market, **overrides).scenario.episode_steps
    start, dur = int(SHOCK_START * steps), max(1, int(round(SHOCK_STEPS * steps)))
    base = {s: episode(market, population, s, optimum=False, **overrides) for s in seeds}
    for kind in SHOCK_NAMES[1:]:
        dp, du, dw = [], [], []
        for s in seeds:
            sched = ({"step": start, "kind": kind, "duration": dur},)
            shocked = episode(market, population, s, optimum=False, shock_schedule=sched, **overrides)
            w = slice(start, start + dur)
            dp.append(np.mean(shocked["prices"][w]) - np.mean(base[s]["prices"][w]))
            du.append(np.sum(shocked["unserved"][w]) - np.sum(base[s]["unserved"][w]))
            dw.append(np.sum(shocked["welfare"][w]) - np.sum(base[s]["welfare"][w]))
        out[kind] = {"price_change": float(np.mean(dp)), "unserved_change": float(np.mean(du)),
                     "welfare_change": float(np.mean(dw))}
    return out


def table(results: dict[str, dict[str, dict[str, float]]]) -> str:
    cols = ["p2p_share", "eff_channels", "eff_complete", "failed_rate", "partial_rate", "onchain_fees_per_day",
            "network_charges_per_day", "routing_fees_per_day", "unserved_per_day", "lost_load_per_day"]
    extra = sorted({k for m in results.values() for p in m.values() for k in p if k.endswith("_rate")} - set(cols))
    cols += extra
    head = "| market | population | " + " | ".join(cols) + " |"
    lines = [head, "|" + "---|" * (len(cols) + 2)]
    for m, pops in results.items():
        for p, r in pops.items():
            lines.append(f"| {m} | {p} | " + " | ".join(_fmt(r.get(c, float('nan'))) for c in cols) + " |")
    return "\n".join(lines)


def _fmt(x: float) -> str:
    return "n/a" if not np.isfinite(x) else (f"{x:.3f}" if abs(x) < 10 else f"{x:,.0f}")


def main(argv: "list[str] | None" = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--markets", nargs="+", default=list(MARKETS))
    ap.add_argument("--populations", nargs="+", default=list(POPULATIONS), choices=list(POPULATIONS))
    ap.add_argument("--seeds", type=int, default=3, help="how many seeds, 0 .. SEEDS - 1 (at least 1)")
    ap.add_argument("--no-optimum", action="store_true", help="skip the welfare programs (fast)")
    ap.add_argument("--shocks", default="energy_lightning", help="market of the shock table ('' for none)")
    ap.add_argument("--episode-steps", type=int, default=None, help="shorter episodes (a smoke run)")
    ap.add_argument("--out", default=None, help="also write the numbers as JSON here")
    a = ap.parse_args(argv)
    if a.seeds < 1:
        ap.error(f"--seeds = {a.seeds}: the number of seeds (seeds 0 .. SEEDS - 1); allowed: 1 or more")
    seeds = list(range(a.seeds))
    t0 = time.perf_counter()
    kw = {} if a.episode_steps is None else {"episode_steps": a.episode_steps}
    results: dict[str, dict[str, dict[str, float]]] = {}
    for m in a.markets:
        results[m] = {}
        for p in a.populations:
            results[m][p] = summarize([episode(m, p, s, optimum=not a.no_optimum, **kw) for s in seeds])
            print(f"# {m} / {p}: done at {time.perf_counter() - t0:.0f} s", flush=True)
    print(table(results))
    shocks = {}
    if a.shocks:
        for p in a.populations:
            shocks[p] = shock_effects(a.shocks, p, seeds, **kw)
        print(f"\nShock effects on {a.shocks} (from {SHOCK_START * 100:.0f} % of the episode for "
              f"{SHOCK_STEPS * 100:.1f} % of its steps, vs the same seed without the shock):\n")
        print("| population | shock | clearing price change EUR/MWh | unserved change MWh | welfare change EUR |\n"
              "|---|---|---:|---:|---:|")
        for p, by in shocks.items():
            for k, r in by.items():
                print(f"| {p} | {k} | {r['price_change']:+.1f} | {r['unserved_change']:+.2f} | "
                      f"{r['welfare_change']:+,.0f} |")
    if a.out:
        from ..envs.files import atomic_write_text

        atomic_write_text(a.out, json.dumps({"results": results, "shocks": shocks, "seeds": seeds}, indent=1))
    print(f"\n({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The Markdown sections of the report, each a function of the written tables (`results.Data`).

The report layer of the evaluation pipeline (settings -> jobs -> runs -> statistics -> report):
it consumes the tables as written (read back by `eval.results`) and produces Markdown; every
interval and paired difference comes from `eval.statistics` (`mean_ci`, `paired_diff`). Kinds
are the registered ones present in the tables (`Data.kinds`, in `KIND_NAMES` order).
"""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np

from ..envs import mechanisms
from ..envs.state import KIND_NAMES
from .markets import MECHANISM as SUPPLY_CHAIN_MECHANISM
from .results import Data, fmt, fmt_p, md, md_table
from .statistics import mean_ci, paired_diff
from .tables import ALL

# (column, label, digits) of the per-cell metric table
# (column, label, digits) of the per-cell metric table
METRICS = (
    ("efficiency", "efficiency", 3),
    ("welfare", "welfare EUR", 0),
    ("realized_welfare", "surplus EUR", 0),
    ("optimal_welfare", "optimum EUR", 0),
    ("p2p_volume", "P2P MWh", 1),
    ("price_mean", "price EUR/MWh", 1),
    ("price_volatility", "price volatility", 3),
    ("eq_price_rmse", "eq. price RMSE", 1),
    ("shock_peak_deviation", "shock peak dev. EUR/MWh", 1),
    ("shock_recovery_steps", "shock recovery steps", 1),
    ("unserved", "unserved MWh", 1),
    ("curtailed", "curtailed MWh", 1),
    ("payment_failure_rate", "payment failure rate", 3),
    ("channel_utilization", "channel utilization", 3),
    ("profit_gini", "profit Gini", 3),
)
PAIRED = (("efficiency", "Δ efficiency", 3), ("welfare", "Δ welfare EUR", 0),
          ("price_volatility", "Δ price volatility", 3), ("unserved", "Δ unserved MWh", 1))


def _kinds(d: Data, rows: list[dict]) -> list[str]:
    """The kinds present in `rows` (one economy's, in a run over both)."""
    return [k for k in d.kinds if any(r["kind"] == k for r in rows)]


def _kind_profit_cells(d: Data, rows: list[dict], pop: str, policy: str = ALL, role: str = ALL) -> list[str]:
    out = []
    for k in _kinds(d, rows) + [ALL]:
        v = [r["profit_per_agent"] for r in rows
             if r["population"] == pop and r["kind"] == k and r["policy"] == policy and r["role"] == role]
        m, h, _ = mean_ci(v)
        out.append(fmt(m, h, 1))
    return out


def optimum_label(mechanism: str) -> str:
    """What the optimum of a mechanism's cell lets trade (`Mechanism.optimum_network`); a mechanism
    no longer registered (an old run's report) reads as the channel network."""
    try:
        net = mechanisms.get(mechanism).optimum_network
    except ValueError:
        net = "channels"
    return "complete network" if net == "complete" else "open channels"


def headline(d: Data) -> str:
    """Every population under every mechanism on the first energy scenario and shock setting, and the
    per-step optimum (efficiency 1 by definition); the supply chain's is `eval.survival`."""
    energy = [c for c in d.cells if c[1] != SUPPLY_CHAIN_MECHANISM]
    if not energy:
        return ""
    scen, _, shock = energy[0]
    cells = [c for c in d.cells if c[0] == scen and c[2] == shock]
    all_rows = [r for r in d.rows if r["scenario"] == scen and r["shocks"] == shock]
    header = (["population", "mechanism", "n", "efficiency", "welfare EUR", "surplus EUR"]
              + [f"{k} EUR/agent" for k in _kinds(d, all_rows)]
              + ["price volatility", "eq. price RMSE", "unserved MWh", "payment failure rate"])
    body = []
    for cell in cells:
        ep = d.cell_rows(cell)
        for pop in d.pops_in(ep):
            vals = [r for r in ep if r["population"] == pop]
            line = [md(pop), cell[1], str(len(vals))]
            for col, digits in (("efficiency", 3), ("welfare", 0), ("realized_welfare", 0)):
                line.append(fmt(*mean_ci(r[col] for r in vals)[:2], digits))
            krows = [r for r in all_rows if r["mechanism"] == cell[1]]
            line += _kind_profit_cells(d, krows, pop)[:-1]
            for col, digits in (("price_volatility", 3), ("eq_price_rmse", 1), ("unserved", 1),
                                ("payment_failure_rate", 3)):
                line.append(fmt(*mean_ci(r[col] for r in vals)[:2], digits))
            body.append(line)
    any_opt = False
    for cell in cells:
        ref_rows = [r for r in d.cell_rows(cell) if r["population"] == d.reference]
        opt = mean_ci(r["optimal_welfare"] for r in ref_rows)
        if np.isfinite(opt[0]):
            any_opt = True
            net = optimum_label(cell[1])
            body.append([f"**optimum** ({net}, states of `{md(d.reference)}`)", cell[1], str(opt[2]),
                         "1 (by definition)", "–", fmt(opt[0], opt[1], 0)] + ["–"] * (len(header) - 6))
    text = [f"## Headline: {scen}, shocks `{shock}`", "",
            "Mean ± 95% CI over seeds (Student t). Welfare = sum of all agents' profits (EUR, episode); surplus = "
            "the same in the agents' own values (`eval.optimum`: P2P energy at buyer limit minus seller cost, "
            "storage valued at its limit/reserve); efficiency = realized surplus / the sum over steps of the "
            "optimal surplus of that step (HiGHS, given each step's supplies, needs, reserves and open "
            "channels; liquidity ignored, so an upper bound); profit in EUR per agent over the episode. "
            "The `mean_field` population trades at the mean-field equilibrium (`MeanFieldPolicy`); "
            "`double_auction` is the centralized uniform-price exchange (its optimum lets every seller reach "
            "every buyer). "
            + ("The optimum rows give the optimal surplus over the reference population's episodes; each "
               "population's own optimum (computed on the states it reached) is in the per-cell tables."
               if any_opt else "The optimum was not computed (`--optimum off`)."),
            "", md_table(header, body), ""]
    return "\n".join(text)


def cell_tables(d: Data) -> str:
    out = ["## Results by cell", ""]
    for cell in d.cells:
        ep = d.cell_rows(cell)
        if not ep:
            continue
        out += [f"### {cell[0]} · {cell[1]} · shocks `{cell[2]}`", ""]
        header = ["population", "n"] + [lab for _, lab, _ in METRICS]
        body = []
        for pop in d.pops_in(ep):
            vals = [r for r in ep if r["population"] == pop]
            body.append([md(pop), str(len(vals))] + [fmt(*mean_ci(r[c] for r in vals)[:2], dg)
                                                      for c, _, dg in METRICS])
        out += [md_table(header, body), ""]
        # profit by kind and policy
        rows = d.cell_rows(cell, d.rows)
        header = ["population", "policy", "role"] + [f"{k}" for k in _kinds(d, rows)] + ["all kinds"]
        body = []
        for pop in d.pops_in(rows):
            groups = list(dict.fromkeys((r["policy"], r["role"]) for r in rows if r["population"] == pop))
            for pol, role in groups:
                if pol == ALL and len(groups) == 2:
                    continue  # a single-policy population: its policy row is the total
                body.append([md(pop), md(pol), role] + _kind_profit_cells(d, rows, pop, pol, role))
        out += ["Profit by kind and policy, EUR per agent over the episode:", "", md_table(header, body), ""]
    return "\n".join(out)


def paired_tables(d: Data) -> str:
    out = ["## Paired differences over seeds", "",
           f"Each population minus the reference population `{d.reference}` on the same seeds (same weather, "
           "demand and shocks): mean ± 95% CI of the per-seed differences, n pairs, paired t-test p-value "
           "of the welfare difference.", ""]
    any_table = False
    for cell in d.cells:
        ep = d.cell_rows(cell)
        rows = d.cell_rows(cell, d.rows)
        pops = [p for p in d.pops_in(ep) if p != d.reference]
        if d.reference not in d.pops_in(ep) or not pops:
            continue
        header = (["population", "n pairs"] + [lab for _, lab, _ in PAIRED]
                  + [f"Δ {k} EUR/agent" for k in _kinds(d, rows)] + ["p (welfare)"])
        body = []
        for pop in pops:
            line = [md(pop)]
            cells_ = []
            n = 0
            p_w = float("nan")
            for col, _, dg in PAIRED:
                pd = paired_diff(d.by_seed(ep, pop, col), d.by_seed(ep, d.reference, col))
                cells_.append(fmt(pd["mean"], pd["half"], dg))
                if col == "welfare":
                    n, p_w = pd["n"], pd["p"]
            for k in _kinds(d, rows):
                m = dict(kind=k, policy=ALL, role=ALL)
                pd = paired_diff(d.by_seed(rows, pop, "profit_per_agent", **m),
                                 d.by_seed(rows, d.reference, "profit_per_agent", **m))
                cells_.append(fmt(pd["mean"], pd["half"], 1))
            body.append(line + [str(n)] + cells_ + [fmt_p(p_w)])
        out += [f"### {cell[0]} · {cell[1]} · shocks `{cell[2]}`", "", md_table(header, body), ""]
        any_table = True
    # mechanisms, paired per population
    mechs = list(dict.fromkeys(c[1] for c in d.cells if c[1] != SUPPLY_CHAIN_MECHANISM))
    if len(mechs) > 1:
        header = ["scenario", "shocks", "population", "mechanism", "n pairs", "Δ efficiency", "Δ welfare EUR", "p"]
        body = []
        for scen, sh in dict.fromkeys((c[0], c[2]) for c in d.cells):
            base = d.cell_rows((scen, mechs[0], sh))
            for mech in mechs[1:]:
                ep = d.cell_rows((scen, mech, sh))
                for pop in d.pops_in(ep):
                    pe = paired_diff(d.by_seed(ep, pop, "efficiency"), d.by_seed(base, pop, "efficiency"))
                    pw = paired_diff(d.by_seed(ep, pop, "welfare"), d.by_seed(base, pop, "welfare"))
                    if pw["n"] == 0:
                        continue
                    body.append([scen, f"`{sh}`", md(pop), mech, str(pw["n"]), fmt(pe["mean"], pe["half"], 3),
                                 fmt(pw["mean"], pw["half"], 0), fmt_p(pw["p"])])
        if body:
            out += [f"### Mechanisms: each mechanism minus `{mechs[0]}`, same population and seeds", "",
                    md_table(header, body), ""]
            any_table = True
    if not any_table:
        out += ["(No pairs: a single population and a single mechanism.)", ""]
    return "\n".join(out)


def focal_tables(d: Data) -> str:
    """Melting Pot style: the focal agents' profit, apart from the background's, per substrate."""
    subs = [p for p in d.populations if d.pop_info[p]["substrate"] != "homogeneous"]
    if not subs:
        return ""
    out = ["## Focal versus background", "",
           "Focal agents run the policy under test; background agents run held-out policies. Focal and "
           "background profit in EUR per agent (mean ± 95% CI over seeds); Δ focal: paired difference of the "
           "focal profit per agent against the first focal policy of the same substrate.", ""]
    for sname in dict.fromkeys(d.pop_info[p]["substrate"] for p in subs):
        pops = [p for p in subs if d.pop_info[p]["substrate"] == sname]
        desc = d.pop_info[pops[0]].get("description", "")
        out += [f"### Substrate `{sname}`", "", desc, ""]
        for cell in d.cells:
            rows = d.cell_rows(cell, d.rows)
            present = [p for p in pops if any(r["population"] == p for r in rows)]
            if not present:
                continue
            fk = [k for k in d.kinds if any(r["population"] == present[0] and r["role"] == "focal" and r["kind"] == k
                                            for r in rows)]
            header = (["focal policy", "n"] + [f"focal {k}" for k in fk] + ["focal all", "background all",
                                                                             "Δ focal all", "p"])
            body = []
            ref = present[0]
            ref_pol = d.pop_info[ref]["focal_policy"]
            for pop in present:
                fp = d.pop_info[pop]["focal_policy"]
                line = [md(fp)]
                mine = [r for r in rows if r["population"] == pop]
                line.append(str(len({r["seed"] for r in mine})))
                for k in fk + [ALL]:
                    m, h, _ = mean_ci(r["profit_per_agent"] for r in mine
                                      if r["role"] == "focal" and r["policy"] == fp and r["kind"] == k)
                    line.append(fmt(m, h, 1))
                bg = defaultdict(lambda: [0.0, 0])
                for r in mine:
                    if r["role"] == "background" and r["kind"] == ALL:
                        bg[r["seed"]][0] += r["profit_total"]
                        bg[r["seed"]][1] += r["agents"]
                m, h, _ = mean_ci(s / n for s, n in bg.values() if n)
                line.append(fmt(m, h, 1))
                cur = d.by_seed(rows, pop, "profit_per_agent", role="focal", policy=fp, kind=ALL)
                base = d.by_seed(rows, ref, "profit_per_agent", role="focal", policy=ref_pol, kind=ALL)
                pd = paired_diff(cur, base)
                line += ([fmt(pd["mean"], pd["half"], 1), fmt_p(pd["p"])] if pop != ref else ["(reference)", "–"])
                body.append(line)
            out += [f"{cell[0]} · {cell[1]} · shocks `{cell[2]}`:", "", md_table(header, body), ""]
    return "\n".join(out)


def exploit_tables(d: Data) -> str:
    from .exploitability import METHOD_TEXT

    if not d.exploit:
        return ""
    methods = list(dict.fromkeys(r["method"] for r in d.exploit))
    out = ["## Exploitability", "",
           "Gain per agent (EUR per episode) of every agent of one kind switching to a best response against the "
           "rest of the population, frozen; paired over seeds against the same agents' profit in the population "
           "itself. Searches give lower bounds (a negative gain: the search found nothing better than the "
           "population's own policy; read it as 0); `mf_dp` assumes a price taker at the clearing price (VWAP), while stores in the env trade at their own negotiated prices, so it is an estimate and can be negative. Methods:", ""]
    out += [f"- `{m}`: {METHOD_TEXT.get(m, m)}" for m in methods]
    ex = d.manifest.get("exploitability")
    if ex:
        out += [f"- search budget: {json.dumps(ex, sort_keys=True)}"]
    out += [""]
    header = ["scenario", "mechanism", "shocks", "population", "kind", "method", "n", "gain EUR/agent",
              "base EUR/agent", "deviation EUR/agent"]
    body = []
    keys = list(dict.fromkeys((r["scenario"], r["mechanism"], r["shocks"], r["population"], r["kind"], r["method"])
                              for r in d.exploit))
    order = {p: i for i, p in enumerate(d.populations)}
    keys.sort(key=lambda k: (d.cells.index(k[:3]) if k[:3] in d.cells else 0, k[5] != "mf_dp", order.get(k[3], 0),
                             KIND_NAMES.index(k[4]) if k[4] in KIND_NAMES else 0))
    for key in keys:
        rs = [r for r in d.exploit if (r["scenario"], r["mechanism"], r["shocks"], r["population"], r["kind"],
                                       r["method"]) == key]
        g, b, v = (mean_ci(r[c] for r in rs) for c in ("gain_per_agent", "base_profit_per_agent",
                                                        "deviation_profit_per_agent"))
        body.append([key[0], key[1], f"`{key[2]}`", md(key[3]), key[4], key[5], str(g[2]), fmt(g[0], g[1], 1),
                     fmt(b[0], b[1], 1), fmt(v[0], v[1], 1)])
    out += [md_table(header, body), ""]
    details = list(dict.fromkeys((r["population"], r["kind"], r["detail"]) for r in d.exploit if r["method"] != "mf_dp"))
    if details:
        out += ["<details><summary>best responses found</summary>", ""]
        out += [f"- {md(p)} / {k}: {det}" for p, k, det in details]
        out += ["", "</details>", ""]
    return "\n".join(out)


def reproducibility(d: Data) -> str:
    m = d.manifest
    out = ["## Reproducibility", "",
           f"- channelmarket version: `{m['channelmarket_version']}` (numpy {m.get('numpy')}, scipy {m.get('scipy')}, "
           f"Python {m.get('python')})",
           f"- command: `{m.get('command') or '(API call)'}`",
           f"- seeds: {', '.join(str(s) for s in m['seeds'])}",
           f"- mechanisms: {', '.join(m['mechanisms'])}",
           f"- shock settings: {', '.join(f'`{s}`' for s in m['shocks'])}"
           + (f" (plus population-specific: {', '.join(sorted({p['shocks'] for p in m['populations'] if p['shocks']}))})"
              if any(p["shocks"] for p in m["populations"]) else ""),
           f"- optimum: {'on' if m['optimum'] else 'off'}; equilibrium reference: {'on' if m['equilibrium'] else 'off'}",
           f"- reference population for paired differences: `{d.reference}`",
           "- same command, same numbers: every random draw comes from the seeds above (policies' generators are "
           "derived from the episode seed), jobs are independent of the worker count, and the tables are "
           "written in job order.", "",
           "Policies:", ""]
    body = []
    for name, rec in m["policies"].items():
        sha = "; ".join(f"{f}: `{h}`" for f, h in rec.get("sha256", {}).items()) or "–"
        body.append([md(name), rec["type"], md(rec.get("path", "–")), sha])
    out += [md_table(["policy", "type", "path", "SHA-256"], body), "", "Populations:", ""]
    body = []
    for p in m["populations"]:
        slots = "; ".join(f"{s['role']}: {s['policy']} on {'+'.join(s['kinds'])}"
                          + (f" (rank ≡ {s['part'][0]} mod {s['part'][1]})" if s["part"][1] > 1 else "")
                          for s in p["slots"])
        body.append([md(p["name"]), p["substrate"], md(slots), f"`{p['shocks']}`" if p["shocks"] else "–"])
    out += [md_table(["population", "substrate", "slots", "own shocks"], body), ""]
    for label, sc in m["scenarios"].items():
        out += [f"<details><summary>scenario <code>{label}</code> (full parameters; each cell replaces "
                "<code>mechanism</code> and the shock fields, see manifest.json <code>cells</code>)</summary>", "",
                "```json", json.dumps(sc, indent=1), "```", "", "</details>", ""]
    return "\n".join(out)


__all__ = ["METRICS", "PAIRED", "headline", "cell_tables", "paired_tables", "focal_tables", "exploit_tables",
           "reproducibility", "optimum_label"]

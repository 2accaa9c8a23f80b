"""The report's section on the supply chain (`supply_chain_v0` cells): who keeps the economy alive.

Part of the report layer of the evaluation pipeline (settings -> jobs -> runs -> statistics ->
report): it consumes the written tables (`eval.results.Data`) and produces Markdown. Per
supply-chain cell (mechanism `maser`): each population's share of agents alive at the end, mean
days alive, runs that went extinct, trades per day and the share alive per kind, as mean ± 95%
Student-t half-width over seeds (`eval.statistics.mean_ci`); then each population minus the
reference population on the same seeds (`paired_diff`). Empty when the run has no such cell.
"""

from __future__ import annotations

from .markets import MECHANISM
from .results import Data, fmt, fmt_p, md, md_table
from .statistics import mean_ci, paired_diff
from .tables import ALL

COLUMNS = (("alive_share", "alive at the end", 2), ("lifespan_per_agent", "days alive", 1),
           ("extinct", "extinct runs", 2), ("trades_per_step", "trades / day", 1))


def survival_tables(d: Data) -> str:
    cells = [c for c in d.cells if c[1] == MECHANISM]
    if not cells:
        return ""
    out = ["## The supply chain: survival", "",
           "Per `supply_chain_v0` cell, mean ± 95% CI over seeds: the share of agents alive on the last day, "
           "their mean days alive, the share of runs in which every agent died, trades per day, and the share "
           "alive per kind. `maser` is the market's own MASER agents (the risk-factor rules inside the market); "
           "the other populations act through the same view and actions as on the energy market. Prices are in "
           "units of each good's cap.", ""]
    for cell in cells:
        ep = d.cell_rows(cell)
        rows = d.cell_rows(cell, d.rows)
        kinds = [k for k in d.kinds if any(r["kind"] == k for r in rows)]
        header = ["population", "n"] + [lab for _, lab, _ in COLUMNS] + [f"{k} alive" for k in kinds]
        body = []
        for pop in d.pops_in(ep):
            vals = [r for r in ep if r["population"] == pop]
            line = [md(pop), str(len(vals))] + [fmt(*mean_ci(r[c] for r in vals)[:2], dg) for c, _, dg in COLUMNS]
            for k in kinds:
                v = [r["alive_share"] for r in rows if r["population"] == pop and r["kind"] == k
                     and r["policy"] == ALL and r["role"] == ALL]
                line.append(fmt(*mean_ci(v)[:2], 2))
            body.append(line)
        out += [f"### {cell[0]} · shocks `{cell[2]}`", "", md_table(header, body), ""]
        pops = [p for p in d.pops_in(ep) if p != d.reference]
        if d.reference in d.pops_in(ep) and pops:
            header = ["population", "n pairs", "Δ alive at the end", "Δ days alive", "p (days alive)"]
            body = []
            for pop in pops:
                a = paired_diff(d.by_seed(ep, pop, "alive_share"), d.by_seed(ep, d.reference, "alive_share"))
                life = paired_diff(d.by_seed(ep, pop, "lifespan_per_agent"),
                                   d.by_seed(ep, d.reference, "lifespan_per_agent"))
                body.append([md(pop), str(life["n"]), fmt(a["mean"], a["half"], 2), fmt(life["mean"], life["half"], 1),
                             fmt_p(life["p"])])
            out += [f"Each population minus `{md(d.reference)}` on the same seeds:", "", md_table(header, body), ""]
    return "\n".join(out)


__all__ = ["survival_tables"]

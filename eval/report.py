"""The Markdown report and PNG plots of a tournament, built from its output folder alone.

    write_report("out/")     # reads episodes.csv, steps.csv, exploitability.csv, manifest.json;
                             # writes report.md, price_paths.png, profit_by_kind.png, efficiency_by_mechanism.png

Statistics (per cell = scenario x mechanism x shock setting; one value per episode):

- mean ± 95% confidence half-width with Student's t: t_{0.975, n-1} * s / sqrt(n), s the sample std
  (ddof = 1); NaN values (a metric undefined for an episode, e.g. shock response without a
  shock) are left out and n says how many remain;
- paired differences over seeds: populations that ran on the same seeds faced the same weather,
  demand and shocks, so the difference d_s = x_s - ref_s of each shared seed s removes that
  common variation; reported as mean ± t half-width of d, with the paired t-test p-value.

The report is a pure function of the output files (no timestamps, no timings: those are in
timing.json), and the plots carry no varying metadata, so rerunning a tournament reproduces every
file but timing.json byte for byte. Every file is written atomically and listed in the manifest.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..envs import mechanisms
from ..envs.files import atomic_write_text, atomic_writer
from ..envs.state import KIND_NAMES
from . import outputs
from .tournament import ALL, EPISODE_COLUMNS, EXPLOIT_COLUMNS, GROUP_COLUMNS, ID_COLUMNS, STEP_COLUMNS

STRING_COLUMNS = (set(ID_COLUMNS) - {"seed"}) | {"method", "detail", "shock"}
INT_COLUMNS = {"seed", "agents", "t"}

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


# ---- statistics ---------------------------------------------------------------------------------------

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


# ---- reading the output ---------------------------------------------------------------------------------

def read_table(path: "str | Path", columns: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Rows of a tournament CSV with numbers as numbers (ids and labels stay strings); OutputError
    (a ValueError) naming the file, line and column of a missing or unreadable value."""
    return outputs.read_table(path, columns, STRING_COLUMNS, INT_COLUMNS)


def _fmt(m: float, half: float = float("nan"), digits: int = 2) -> str:
    if m is None or not np.isfinite(m):
        return "–"
    if not np.isfinite(half):
        return f"{m:,.{digits}f}"
    return f"{m:,.{digits}f} ± {half:,.{digits}f}"


def _fmt_p(p: float) -> str:
    if not np.isfinite(p):
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _md(s: str) -> str:
    """A value safe inside a Markdown table cell."""
    return str(s).replace("|", "\\|")


class Data:
    """The tournament's tables, indexed for the report."""

    def __init__(self, out: "str | Path") -> None:
        out = Path(out)
        self.out = out
        self.manifest = outputs.read_manifest(out)
        self.rows = read_table(out / "episodes.csv", ID_COLUMNS + GROUP_COLUMNS + EPISODE_COLUMNS)
        self.steps = read_table(out / "steps.csv", STEP_COLUMNS)
        self.exploit = read_table(out / "exploitability.csv", EXPLOIT_COLUMNS)
        self.populations = [p["name"] for p in self.manifest["populations"]]
        self.pop_info = {p["name"]: p for p in self.manifest["populations"]}
        self.reference = self.manifest.get("reference_population") or self.populations[0]
        self.cells = [(c["scenario"], c["mechanism"], c["shocks"]) for c in self.manifest["cells"]]
        self.episode_rows = [r for r in self.rows if r["policy"] == ALL and r["kind"] == ALL and r["role"] == ALL]
        self.kinds = [k for k in KIND_NAMES if any(r["kind"] == k for r in self.rows)]

    def cell_rows(self, cell: tuple[str, str, str], rows: list[dict] | None = None) -> list[dict]:
        rows = self.episode_rows if rows is None else rows
        return [r for r in rows if (r["scenario"], r["mechanism"], r["shocks"]) == cell]

    def by_seed(self, rows: list[dict], population: str, column: str, **match: str) -> dict[int, float]:
        """seed -> value of `column` for one population (rows filtered by `match`)."""
        out = {}
        for r in rows:
            if r["population"] == population and all(r[k] == v for k, v in match.items()):
                out[r["seed"]] = r[column]
        return out

    def pops_in(self, rows: list[dict]) -> list[str]:
        present = {r["population"] for r in rows}
        return [p for p in self.populations if p in present]


# ---- sections -------------------------------------------------------------------------------------------------

def _kind_profit_cells(d: Data, rows: list[dict], pop: str, policy: str = ALL, role: str = ALL) -> list[str]:
    out = []
    for k in d.kinds + [ALL]:
        v = [r["profit_per_agent"] for r in rows
             if r["population"] == pop and r["kind"] == k and r["policy"] == policy and r["role"] == role]
        m, h, _ = mean_ci(v)
        out.append(_fmt(m, h, 1))
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
    """Every population under every mechanism on the first scenario and shock setting, and the
    per-step optimum (efficiency 1 by definition)."""
    if not d.cells:
        return ""
    scen, _, shock = d.cells[0]
    cells = [c for c in d.cells if c[0] == scen and c[2] == shock]
    header = (["population", "mechanism", "n", "efficiency", "welfare EUR", "surplus EUR"]
              + [f"{k} EUR/agent" for k in d.kinds]
              + ["price volatility", "eq. price RMSE", "unserved MWh", "payment failure rate"])
    body = []
    all_rows = [r for r in d.rows if r["scenario"] == scen and r["shocks"] == shock]
    for cell in cells:
        ep = d.cell_rows(cell)
        for pop in d.pops_in(ep):
            vals = [r for r in ep if r["population"] == pop]
            line = [_md(pop), cell[1], str(len(vals))]
            for col, digits in (("efficiency", 3), ("welfare", 0), ("realized_welfare", 0)):
                line.append(_fmt(*mean_ci(r[col] for r in vals)[:2], digits))
            krows = [r for r in all_rows if r["mechanism"] == cell[1]]
            line += _kind_profit_cells(d, krows, pop)[:-1]
            for col, digits in (("price_volatility", 3), ("eq_price_rmse", 1), ("unserved", 1),
                                ("payment_failure_rate", 3)):
                line.append(_fmt(*mean_ci(r[col] for r in vals)[:2], digits))
            body.append(line)
    any_opt = False
    for cell in cells:
        ref_rows = [r for r in d.cell_rows(cell) if r["population"] == d.reference]
        opt = mean_ci(r["optimal_welfare"] for r in ref_rows)
        if np.isfinite(opt[0]):
            any_opt = True
            net = optimum_label(cell[1])
            body.append([f"**optimum** ({net}, states of `{_md(d.reference)}`)", cell[1], str(opt[2]),
                         "1 (by definition)", "–", _fmt(opt[0], opt[1], 0)] + ["–"] * (len(header) - 6))
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
            "", _table(header, body), ""]
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
            body.append([_md(pop), str(len(vals))] + [_fmt(*mean_ci(r[c] for r in vals)[:2], dg)
                                                      for c, _, dg in METRICS])
        out += [_table(header, body), ""]
        # profit by kind and policy
        rows = d.cell_rows(cell, d.rows)
        header = ["population", "policy", "role"] + [f"{k}" for k in d.kinds] + ["all kinds"]
        body = []
        for pop in d.pops_in(rows):
            groups = list(dict.fromkeys((r["policy"], r["role"]) for r in rows if r["population"] == pop))
            for pol, role in groups:
                if pol == ALL and len(groups) == 2:
                    continue  # a single-policy population: its policy row is the total
                body.append([_md(pop), _md(pol), role] + _kind_profit_cells(d, rows, pop, pol, role))
        out += ["Profit by kind and policy, EUR per agent over the episode:", "", _table(header, body), ""]
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
                  + [f"Δ {k} EUR/agent" for k in d.kinds] + ["p (welfare)"])
        body = []
        for pop in pops:
            line = [_md(pop)]
            cells_ = []
            n = 0
            p_w = float("nan")
            for col, _, dg in PAIRED:
                pd = paired_diff(d.by_seed(ep, pop, col), d.by_seed(ep, d.reference, col))
                cells_.append(_fmt(pd["mean"], pd["half"], dg))
                if col == "welfare":
                    n, p_w = pd["n"], pd["p"]
            for k in d.kinds:
                m = dict(kind=k, policy=ALL, role=ALL)
                pd = paired_diff(d.by_seed(rows, pop, "profit_per_agent", **m),
                                 d.by_seed(rows, d.reference, "profit_per_agent", **m))
                cells_.append(_fmt(pd["mean"], pd["half"], 1))
            body.append(line + [str(n)] + cells_ + [_fmt_p(p_w)])
        out += [f"### {cell[0]} · {cell[1]} · shocks `{cell[2]}`", "", _table(header, body), ""]
        any_table = True
    # mechanisms, paired per population
    mechs = list(dict.fromkeys(c[1] for c in d.cells))
    if len(mechs) > 1:
        out += [f"### Mechanisms: each mechanism minus `{mechs[0]}`, same population and seeds", ""]
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
                    body.append([scen, f"`{sh}`", _md(pop), mech, str(pw["n"]), _fmt(pe["mean"], pe["half"], 3),
                                 _fmt(pw["mean"], pw["half"], 0), _fmt_p(pw["p"])])
        if body:
            out += [_table(header, body), ""]
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
                line = [_md(fp)]
                mine = [r for r in rows if r["population"] == pop]
                line.append(str(len({r["seed"] for r in mine})))
                for k in fk + [ALL]:
                    m, h, _ = mean_ci(r["profit_per_agent"] for r in mine
                                      if r["role"] == "focal" and r["policy"] == fp and r["kind"] == k)
                    line.append(_fmt(m, h, 1))
                bg = defaultdict(lambda: [0.0, 0])
                for r in mine:
                    if r["role"] == "background" and r["kind"] == ALL:
                        bg[r["seed"]][0] += r["profit_total"]
                        bg[r["seed"]][1] += r["agents"]
                m, h, _ = mean_ci(s / n for s, n in bg.values() if n)
                line.append(_fmt(m, h, 1))
                cur = d.by_seed(rows, pop, "profit_per_agent", role="focal", policy=fp, kind=ALL)
                base = d.by_seed(rows, ref, "profit_per_agent", role="focal", policy=ref_pol, kind=ALL)
                pd = paired_diff(cur, base)
                line += ([_fmt(pd["mean"], pd["half"], 1), _fmt_p(pd["p"])] if pop != ref else ["(reference)", "–"])
                body.append(line)
            out += [f"{cell[0]} · {cell[1]} · shocks `{cell[2]}`:", "", _table(header, body), ""]
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
        body.append([key[0], key[1], f"`{key[2]}`", _md(key[3]), key[4], key[5], str(g[2]), _fmt(g[0], g[1], 1),
                     _fmt(b[0], b[1], 1), _fmt(v[0], v[1], 1)])
    out += [_table(header, body), ""]
    details = list(dict.fromkeys((r["population"], r["kind"], r["detail"]) for r in d.exploit if r["method"] != "mf_dp"))
    if details:
        out += ["<details><summary>best responses found</summary>", ""]
        out += [f"- {_md(p)} / {k}: {det}" for p, k, det in details]
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
        body.append([_md(name), rec["type"], _md(rec.get("path", "–")), sha])
    out += [_table(["policy", "type", "path", "SHA-256"], body), "", "Populations:", ""]
    body = []
    for p in m["populations"]:
        slots = "; ".join(f"{s['role']}: {s['policy']} on {'+'.join(s['kinds'])}"
                          + (f" (rank ≡ {s['part'][0]} mod {s['part'][1]})" if s["part"][1] > 1 else "")
                          for s in p["slots"])
        body.append([_md(p["name"]), p["substrate"], _md(slots), f"`{p['shocks']}`" if p["shocks"] else "–"])
    out += [_table(["population", "substrate", "slots", "own shocks"], body), ""]
    for label, sc in m["scenarios"].items():
        out += [f"<details><summary>scenario <code>{label}</code> (full parameters; each cell replaces "
                "<code>mechanism</code> and the shock fields, see manifest.json <code>cells</code>)</summary>", "",
                "```json", json.dumps(sc, indent=1), "```", "", "</details>", ""]
    return "\n".join(out)


# ---- plots -------------------------------------------------------------------------------------------------

PNG_METADATA = {"Software": None}
_SHOCK_COLORS = {"DEMAND_SURGE": "#d62728", "DEMAND_DROP": "#9467bd", "SUPPLY_SURPLUS": "#2ca02c",
                 "SUPPLY_SHORTAGE": "#ff7f0e"}


def _figure(w: float, h: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Path) -> Path:
    """Save a figure as PNG, atomically, with no metadata that varies between matplotlib versions
    (the same tables give the same bytes)."""
    with atomic_writer(path, "wb") as f:
        fig.savefig(f, format="png", metadata=PNG_METADATA)
    return Path(path)


def _colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def plot_price_paths(d: Data, path: Path) -> Path | None:
    """Clearing price per step of the first seed, every population, one panel per shock setting
    (first scenario and mechanism), the equilibrium path dashed, shock periods shaded."""
    if not d.steps or not d.cells:
        return None
    scen, mech, _ = d.cells[0]
    shocks = list(dict.fromkeys(c[2] for c in d.cells if c[0] == scen and c[1] == mech))
    seed = d.manifest["seeds"][0]
    fig = _figure(10, 3.2 * len(shocks) + 0.6)
    colors = _colors(len(d.populations))
    for i, sh in enumerate(shocks):
        ax = fig.add_subplot(len(shocks), 1, i + 1)
        rows = [r for r in d.steps if r["scenario"] == scen and r["mechanism"] == mech and r["shocks"] == sh
                and r["seed"] == seed]
        first = None
        for j, pop in enumerate(d.populations):
            pr = [r for r in rows if r["population"] == pop]
            if not pr:
                continue
            first = first or pr
            ax.plot([r["t"] for r in pr], [r["price"] for r in pr], color=colors[j], lw=1.3, label=pop)
        if first:
            eq = [r["eq_price"] for r in first]
            if np.isfinite(eq).any():
                ax.plot([r["t"] for r in first], eq, "k--", lw=1.2, label="equilibrium path")
            shown = set()
            t = np.array([r["t"] for r in first])
            kinds = [r["shock"] for r in first]
            start = None
            for k in range(len(kinds) + 1):
                cur = kinds[k] if k < len(kinds) else "NONE"
                prev = kinds[k - 1] if k > 0 else "NONE"
                if cur != prev:
                    if prev != "NONE" and start is not None:
                        ax.axvspan(t[start] - 0.5, t[k - 1] + 0.5, color=_SHOCK_COLORS.get(prev, "grey"), alpha=0.15,
                                   label=None if prev in shown else f"shock: {prev}")
                        shown.add(prev)
                    start = k
        ax.set_title(f"{scen} · {mech} · shocks {sh} · seed {seed}", fontsize=9)
        ax.set_ylabel("clearing price EUR/MWh")
        ax.grid(alpha=0.3)
        if i == len(shocks) - 1:
            ax.set_xlabel("step")
        ax.legend(fontsize=7, ncol=2, loc="upper left")
    fig.tight_layout()
    return _save(fig, path)


def _bars(ax, groups: list[str], series: list[tuple[str, list[tuple[float, float]]]], ylabel: str) -> None:
    n = max(len(series), 1)
    width = 0.8 / n
    x = np.arange(len(groups))
    colors = _colors(n)
    for i, (label, vals) in enumerate(series):
        m = np.array([v[0] for v in vals], dtype=float)
        h = np.array([v[1] for v in vals], dtype=float)
        ax.bar(x - 0.4 + width * (i + 0.5), m, width, yerr=np.where(np.isfinite(h) & np.isfinite(m), h, 0.0),
               color=colors[i], label=label, capsize=2)
    ax.set_xticks(x)
    ax.set_xticklabels(groups)
    ax.set_ylabel(ylabel)
    ax.axhline(0, color="k", lw=0.6)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)


def plot_profit_by_kind(d: Data, path: Path) -> Path | None:
    """Profit per agent by kind for every population (first cell), and by policy and role inside
    the mixed populations; bars with 95% CI."""
    if not d.cells:
        return None
    rows = d.cell_rows(d.cells[0], d.rows)
    pops = d.pops_in(rows)
    mixed = [p for p in pops if d.pop_info[p]["substrate"] != "homogeneous"]
    fig = _figure(10, 4.2 * (2 if mixed else 1))
    ax = fig.add_subplot(2 if mixed else 1, 1, 1)
    series = []
    for pop in pops:
        vals = [mean_ci(r["profit_per_agent"] for r in rows if r["population"] == pop and r["kind"] == k
                        and r["policy"] == ALL)[:2] for k in d.kinds]
        series.append((pop, vals))
    _bars(ax, d.kinds, series, "profit EUR/agent (episode)")
    ax.set_title(f"profit by kind · {' · '.join(d.cells[0])}", fontsize=9)
    if mixed:
        ax2 = fig.add_subplot(2, 1, 2)
        series = []
        for pop in mixed:
            for pol, role in dict.fromkeys((r["policy"], r["role"]) for r in rows if r["population"] == pop
                                           and r["policy"] != ALL):
                vals = [mean_ci(r["profit_per_agent"] for r in rows if r["population"] == pop and r["kind"] == k
                                and r["policy"] == pol and r["role"] == role)[:2] for k in d.kinds]
                series.append((f"{pop}: {pol} ({role})", vals))
        _bars(ax2, d.kinds, series, "profit EUR/agent (episode)")
        ax2.set_title("profit by kind and policy in focal/background populations", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def plot_efficiency_by_mechanism(d: Data, path: Path) -> Path | None:
    """Efficiency (welfare when the optimum is off) per mechanism and population, first scenario
    and shock setting, with 95% CI."""
    if not d.cells:
        return None
    scen, _, sh = d.cells[0]
    mechs = list(dict.fromkeys(c[1] for c in d.cells if c[0] == scen and c[2] == sh))
    col = "efficiency" if any(np.isfinite(r["efficiency"]) for r in d.episode_rows) else "welfare"
    fig = _figure(9, 4.2)
    ax = fig.add_subplot(1, 1, 1)
    series = []
    for pop in d.populations:
        vals = [mean_ci(r[col] for r in d.cell_rows((scen, m, sh)) if r["population"] == pop)[:2] for m in mechs]
        if any(np.isfinite(v[0]) for v in vals):
            series.append((pop, vals))
    _bars(ax, mechs, series, "efficiency (surplus / optimum)" if col == "efficiency" else "welfare EUR")
    ax.set_title(f"{col} by mechanism · {scen} · shocks {sh}", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


PLOTS = (("price_paths.png", plot_price_paths, "Price paths (first seed), equilibrium dashed, shocks shaded"),
         ("profit_by_kind.png", plot_profit_by_kind, "Profit by kind and policy"),
         ("efficiency_by_mechanism.png", plot_efficiency_by_mechanism, "Efficiency by mechanism"))


# ---- the report -------------------------------------------------------------------------------------------------

def write_report(out: "str | Path", plots: bool = True) -> Path:
    """Write report.md (and the PNG plots when `plots` and matplotlib is installed) into the
    tournament folder `out`, each atomically, and list them in its manifest; returns the report's
    path. OutputError (a ValueError) for a folder that is no readable eval output or not writable."""
    d = Data(out)
    out = Path(out)
    outputs.probe_writable(out)
    m = d.manifest
    if plots:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            plots = False
    planned = [fname for fname, _, _ in PLOTS] if plots else []
    outputs.record_outputs(out, add=["report.md"] + planned)     # listed before written: never a stray file
    parts = ["# Evaluation report", "",
             f"`{m.get('command') or '(API call)'}`", "",
             f"channelmarket {m['channelmarket_version']} · {len(m['seeds'])} seeds · "
             f"{len(d.populations)} populations · mechanisms {', '.join(m['mechanisms'])} · "
             f"shock settings {', '.join(m['shocks'])}. Data: `episodes.csv` (one row per episode and "
             "policy/role/kind group; `all` rows aggregate), `steps.csv` (price paths), `exploitability.csv`, "
             "`manifest.json`.", ""]
    parts.append(headline(d))
    if plots:
        parts += ["## Plots", ""]
        skipped = []
        for fname, fn, title in PLOTS:
            if fn(d, out / fname) is not None:
                parts += [f"![{title}]({fname})", ""]
            else:
                skipped.append(fname)
        if skipped:
            outputs.record_outputs(out, drop=skipped)
    for section in (focal_tables(d), exploit_tables(d), paired_tables(d), cell_tables(d), reproducibility(d)):
        if section:
            parts.append(section)
    path = out / "report.md"
    atomic_write_text(path, "\n".join(parts).rstrip() + "\n")
    return path


__all__ = ["write_report", "mean_ci", "paired_diff", "read_table", "Data", "headline", "plot_price_paths",
           "plot_profit_by_kind", "plot_efficiency_by_mechanism", "METRICS"]

"""The PNG plots of the report: price paths, profit by kind and policy, efficiency by mechanism.

The report layer of the evaluation pipeline (settings -> jobs -> runs -> statistics -> report):
each plot consumes the written tables (`results.Data`) and produces one PNG, written atomically
with no metadata that varies between matplotlib versions (the same tables give the same bytes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..envs.files import atomic_writer
from .results import Data
from .statistics import mean_ci
from .tables import ALL

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


__all__ = ["PLOTS", "plot_price_paths", "plot_profit_by_kind", "plot_efficiency_by_mechanism"]

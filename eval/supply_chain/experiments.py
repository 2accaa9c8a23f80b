"""The paper's five experiments, the risk-factor sweep and the stability study, one function each.

Every experiment runs seeded economies (the same seed gives the same files), writes its plots, a
summary table (`summary.csv` and `summary.md`) and `manifest.json` (experiment, seed, scenarios,
outputs) into its output folder, atomically, and returns the summary rows. `quick=True` shortens
runs (tests); the README's numbers come from the default sizes.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ...envs.files import atomic_write_text
from ...envs.supply_chain import SupplyChainCore
from ...envs.supply_chain.scenario import GOOD_NAMES, KIND_NAMES
from ..outputs import OutputError, probe_writable
from . import plots
from .record import History, simulate

EXPERIMENTS = ("1", "2", "3", "4", "5", "risk-sweep", "stability")
FORMAT = 1
MANIFEST = "manifest.json"
PAPER_PATH = {0.15: 17.17, 0.5: 30.38}     # average path per agent per day, paper Figure 15


# ---- output folder ---------------------------------------------------------------------------------

def prepare(out: "str | Path", overwrite: bool = False) -> Path:
    """A new or empty folder, or (with `overwrite`) one holding an earlier experiment's manifest."""
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"output folder {str(folder)!r} is a file; choose a new or empty folder")
    folder.mkdir(parents=True, exist_ok=True)
    entries = sorted(e.name for e in folder.iterdir())
    if entries:
        if MANIFEST not in entries:
            raise OutputError(f"output folder {str(folder)!r} is not empty and holds no supply-chain experiment; "
                              "choose a new or empty folder")
        if not overwrite:
            raise OutputError(f"output folder {str(folder)!r} holds an earlier experiment; choose a new or empty "
                              "folder, or pass --overwrite")
        try:
            old = json.loads((folder / MANIFEST).read_text())
            names = [n for n in old.get("outputs", []) if isinstance(n, str) and "/" not in n and n != MANIFEST]
        except (OSError, ValueError, AttributeError):
            raise OutputError(f"{str(folder / MANIFEST)!r} is not a supply-chain experiment manifest") from None
        for n in names:
            (folder / n).unlink(missing_ok=True)
    probe_writable(folder)
    return folder


def write_summary(folder: Path, rows: list, title: str, notes: str = "") -> list[str]:
    cols = list(rows[0]) if rows else []
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in r.items()})
    atomic_write_text(folder / "summary.csv", buf.getvalue())
    md = [f"# {title}", ""]
    if notes:
        md += [notes, ""]
    md.append("| " + " | ".join(cols) + " |")
    md.append("|" + "---|" * len(cols))
    for r in rows:
        md.append("| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in r.values()) + " |")
    atomic_write_text(folder / "summary.md", "\n".join(md) + "\n")
    return ["summary.csv", "summary.md"]


def finish(folder: Path, experiment: str, seed: int, scenarios: dict, outputs: list[str], rows: list) -> dict:
    m = {"format": FORMAT, "experiment": experiment, "seed": seed, "scenarios": scenarios,
         "outputs": sorted(set(outputs)) + [MANIFEST]}
    atomic_write_text(folder / MANIFEST, json.dumps(m, indent=1, default=float) + "\n")
    return {"folder": str(folder), "rows": rows, "outputs": m["outputs"]}


# ---- helpers --------------------------------------------------------------------------------------

def _run(scenario: str, seed: int, days: "int | None" = None, **kw) -> History:
    return simulate(SupplyChainCore(scenario, **kw), seed=seed, days=days)


def near_seller_share(h: History, day: int) -> tuple[float, float]:
    """(share of alive non-Sellers within the radius of a Seller, mean distance to the nearest Seller
    divided by the same for uniformly scattered points: < 1 means clustered around Sellers)."""
    xy, alive = h.xy[day], h.alive_agents[day]
    sel = alive & (h.kind == 3)
    oth = alive & (h.kind != 3)
    if not sel.any() or not oth.any():
        return float("nan"), float("nan")
    d = np.linalg.norm(xy[oth][:, None] - xy[sel][None], axis=2).min(axis=1)
    rng = np.random.default_rng(0)
    ref = rng.uniform(0, 1, (2000, 2)) * [h.scenario.width, h.scenario.height]
    dr = np.linalg.norm(ref[:, None] - xy[sel][None], axis=2).min(axis=1)
    return float((d < h.scenario.radius).mean()), float(d.mean() / dr.mean())


# ---- experiment 1: prices ---------------------------------------------------------------------------

def experiment_1(out, seed: int = 0, quick: bool = False, overwrite: bool = False) -> dict:
    folder = prepare(out, overwrite)
    days = 40 if quick else None
    h = _run("maser_exp1", seed, days)
    outs = [plots.prices(h, folder / "prices.png").name,
            plots.snapshots(h, [0, h.days // 2, h.days], folder / "positions.png").name]
    off, tra, trades = h.array("offered"), h.array("transacted"), h.array("trades")
    start = min(20, h.days - 1)
    rows = []
    for g, name in enumerate(GOOD_NAMES):
        first = np.flatnonzero(trades[:, g] > 0)
        rows.append({"good": name, "first_trade_day": int(first[0] + 1) if first.size else -1,
                     "offered_mean": float(np.mean(off[start:, g])), "offered_sd": float(np.std(off[start:, g])),
                     "transaction_mean": float(np.nanmean(tra[start:, g])) if np.isfinite(tra[start:, g]).any() else float("nan"),
                     "trades": int(trades[:, g].sum()),
                     "trades_first_half": int(trades[: h.days // 2, g].sum()),
                     "trades_second_half": int(trades[h.days // 2:, g].sum())})
    outs += write_summary(folder, rows, "Experiment 1: average prices in time (maser_exp1)",
                          f"seed {seed}, {h.days} days; means from day {start + 1}; alive at the end: "
                          f"{int(h.alive_agents[-1].sum())} of {len(h.kind)}")
    return finish(folder, "1", seed, {"maser_exp1": h.scenario.to_dict()}, outs, rows)


# ---- experiment 2: arrangements ---------------------------------------------------------------------

def experiment_2(out, seed: int = 0, quick: bool = False, overwrite: bool = False) -> dict:
    folder = prepare(out, overwrite)
    seeds = [seed] if quick else [seed, seed + 1, seed + 2]
    days = 40 if quick else None
    hs = [_run("maser_exp2", s, days) for s in seeds]
    plt = plots._plt()
    fig, axes = plt.subplots(1, len(hs), figsize=(3.4 * len(hs), 3.4), squeeze=False)
    rows = []
    for ax, s, h in zip(axes.ravel(), seeds, hs):
        plots.draw_positions(ax, h, h.days, f"seed {s}, day {h.days}")
        share, ratio = near_seller_share(h, h.days)
        share0, ratio0 = near_seller_share(h, 0)
        sel = h.alive_agents[-1] & (h.kind == 3)
        xy = h.xy[-1]
        groups = 0
        for i in np.flatnonzero(sel):
            groups += int(((np.linalg.norm(xy - xy[i], axis=1) < h.scenario.radius) & h.alive_agents[-1]).sum() >= 4)
        rows.append({"seed": s, "days": h.days, "alive": int(h.alive_agents[-1].sum()),
                     "near_seller_day0": share0, "near_seller_end": share, "nearest_seller_ratio_day0": ratio0,
                     "nearest_seller_ratio_end": ratio, "seller_groups": groups})
    axes.ravel()[0].legend(fontsize=6, loc="lower left")
    outs = [plots.save(fig, folder / "arrangements.png").name]
    outs += write_summary(folder, rows, "Experiment 2: spatial arrangements (maser_exp2)",
                          "near_seller: share of alive non-Sellers within the radius of a Seller; nearest_seller_ratio: "
                          "mean distance to the nearest Seller / the same for uniform points (< 1: clustered around "
                          "Sellers); seller_groups: Sellers with >= 3 others within the radius")
    return finish(folder, "2", seed, {"maser_exp2": hs[0].scenario.to_dict()}, outs, rows)


# ---- experiment 3: evolution, stable vs decay; path against the risk factor -------------------------

def experiment_3(out, seed: int = 0, quick: bool = False, overwrite: bool = False) -> dict:
    folder = prepare(out, overwrite)
    da, db = (60, 60) if quick else (None, None)
    ha = _run("maser_exp3a", seed, da)
    hb = _run("maser_exp3b", seed, db)
    outs = [plots.snapshots(ha, [20, 100, 200, 1000], folder / "case_a_stable.png", "case A: low risk (maser_exp3a)").name,
            plots.snapshots(hb, [30, 70, 120, 500, 650, 750], folder / "case_b_decay.png",
                            "case B: high risk (maser_exp3b)").name,
            plots.population({"case A (r 0.05-0.25)": ha, "case B (r 0.4-0.6)": hb}, folder / "population.png").name]
    rows = []
    for case, h in (("A", ha), ("B", hb)):
        alive = h.array("alive")
        rows.append({"row": f"case {case}", "r_range": str(h.scenario.r_range), "days_run": h.days,
                     "alive_end": int(alive[-1].sum()), "kinds_alive_end": int((alive[-1] > 0).sum()),
                     "mean_lifespan": float(h.lifespan().mean()), "path_per_day": h.path_per_day(), "paper": ""})
    # Figure 15: path per agent per day at fixed r = 0.15 and r = 0.5
    seeds = [seed] if quick else [seed + i for i in range(5)]
    traced = {}
    for r in (0.15, 0.5):
        paths = []
        for s in seeds:
            h = _run("maser_exp1", s, 40 if quick else 200, r_range=(r, r))
            paths.append(h.path_per_day())
            if s == seed:
                traced[f"r = {r}"] = h
        rows.append({"row": f"path r={r}", "r_range": str((r, r)), "days_run": traced[f"r = {r}"].days,
                     "alive_end": int(traced[f"r = {r}"].alive_agents[-1].sum()), "kinds_alive_end": -1,
                     "mean_lifespan": float(traced[f"r = {r}"].lifespan().mean()),
                     "path_per_day": float(np.mean(paths)), "paper": PAPER_PATH[r]})
    outs.append(plots.traces(traced, folder / "movement_traces.png", days=60).name)
    outs += write_summary(folder, rows, "Experiment 3: evolution of arrangements; path against the risk factor",
                          f"seed {seed}; path rows: mean over seeds {seeds} of the distance travelled per agent per "
                          "day alive (maser_exp1 with every agent's r fixed); paper: Figure 15")
    return finish(folder, "3", seed, {"maser_exp3a": ha.scenario.to_dict(), "maser_exp3b": hb.scenario.to_dict()},
                  outs, rows)


# ---- experiment 4: a key agent moved away -------------------------------------------------------------

def experiment_4(out, seed: int = 0, quick: bool = False, overwrite: bool = False) -> dict:
    folder = prepare(out, overwrite)
    kw = dict(shock_day=15, days=45) if quick else {}
    core = SupplyChainCore("maser_exp4", **kw)
    h = simulate(core, seed=seed)
    sc = core.scenario
    if not h.shocks:
        raise RuntimeError("experiment 4: the shock did not happen (no Seller alive on the shock day)")
    day, key = h.shocks[0]
    others = [int(i) for i in np.flatnonzero(h.kind == 3) if i != key]
    outs = [plots.snapshots(h, [day, day + 1, h.days], folder / "rearrangement.png",
                            f"Seller {key + 1} moved away on day {day}").name]
    rows = []
    for label, d in (("before the move", day), ("just after", day + 1), ("end", h.days)):
        xy, alive = h.xy[d], h.alive_agents[d]
        row = {"when": label, "day": d, "alive": int(alive.sum())}
        for s in [key] + others:
            near = alive & (np.linalg.norm(xy - xy[s], axis=1) < sc.radius)
            near[s] = False
            row[f"near_seller_{s + 1}"] = int(near.sum())
        d_key = np.linalg.norm(xy[alive] - xy[key], axis=1).mean()
        row["mean_distance_to_moved_seller"] = float(d_key)
        rows.append(row)
    outs += write_summary(folder, rows, "Experiment 4: rearrangement after a key agent is moved (maser_exp4)",
                          f"seed {seed}; the key agent is the Seller with the most transactions, Seller {key + 1} "
                          "(1-based, as in the paper), moved to the farthest corner; near_seller_k: agents within "
                          "the radius of Seller k")
    return finish(folder, "4", seed, {"maser_exp4": sc.to_dict()}, outs, rows)


# ---- experiment 5: transactions between kinds in time ---------------------------------------------------

def experiment_5(out, seed: int = 0, quick: bool = False, overwrite: bool = False) -> dict:
    folder = prepare(out, overwrite)
    h = _run("maser_exp5", seed, 50 if quick else None)
    outs = [plots.raster(h, folder / "transactions.png").name]
    tx = h.tx_array()
    repeat = np.ones(len(tx), bool)                # a (seller, buyer) pair that traded before
    if tx.size:
        _, first = np.unique(tx[:, 3] * len(h.kind) + tx[:, 4], return_index=True)
        repeat[first] = False
    rows = []
    edges = [0, 70, 180, h.days] if h.days > 180 else [0, h.days // 3, 2 * h.days // 3, h.days]
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (tx[:, 0] >= lo) & (tx[:, 0] < hi) if tx.size else np.zeros(0, bool)
        row = {"days": f"{lo + 1}-{hi}", "transactions_per_day": float(m.sum() / max(hi - lo, 1)),
               "repeat_pair_share": float(repeat[m].mean()) if m.any() else float("nan")}
        for k, name in enumerate(KIND_NAMES):
            row[f"{name}_sells"] = int((tx[m, 1] == k).sum()) if m.any() else 0
        rows.append(row)
    outs += write_summary(folder, rows, "Experiment 5: transactions between agent kinds in time (maser_exp5)",
                          f"seed {seed}; repeat_pair_share: share of transactions between a seller and a buyer that "
                          "had traded before")
    return finish(folder, "5", seed, {"maser_exp5": h.scenario.to_dict()}, outs, rows)


# ---- future work 1: risk-factor sweep -----------------------------------------------------------------

def risk_sweep(out, seed: int = 0, quick: bool = False, overwrite: bool = False,
               rs: "tuple[float, ...] | None" = None, seeds: "int | None" = None, days: "int | None" = None,
               band: float = 0.05) -> dict:
    """Lifespan and extinction against the risk factor: every agent's r drawn in [r - band, r + band]
    (band 0: all agents at r), `seeds` runs of `days` days per r on maser_exp1."""
    rs = rs or ((0.1, 0.5, 0.9) if quick else tuple(np.round(np.arange(0.05, 1.0, 0.1), 2)))
    n_seeds = seeds if seeds is not None else (2 if quick else 6)
    days = days if days is not None else (50 if quick else 300)
    for name, v, ok in (("band", band, 0.0 <= band <= 0.5), ("seeds", n_seeds, n_seeds >= 1), ("days", days, days >= 1)):
        if not ok:
            raise ValueError(f"risk-sweep: {name} = {v!r}; allowed: band in [0, 0.5], seeds and days >= 1")
    if not all(0.0 <= r <= 1.0 for r in rs):
        raise ValueError(f"risk-sweep: risk factors {rs!r}; allowed: values in [0, 1]")
    folder = prepare(out, overwrite)
    rows = []
    for r in rs:
        life, ext, broken, path, surv, ext_day = [], [], [], [], [], []
        for s in range(seed, seed + n_seeds):
            lo_hi = (max(r - band, 0.0), min(r + band, 1.0))
            h = simulate(SupplyChainCore("maser_exp1", r_range=lo_hi, days=days), seed=s)
            alive = h.array("alive")
            life.append(h.lifespan().mean())
            ext.append(alive[-1].sum() == 0)
            broken.append((alive[-1] == 0).any())
            path.append(h.path_per_day())
            surv.append(alive[-1].sum() / len(h.kind))
            gone = np.flatnonzero(alive.sum(axis=1) == 0)
            ext_day.append(gone[0] + 1 if gone.size else np.nan)
        rows.append({"r": float(r), "runs": n_seeds, "days": days, "lifespan_mean": float(np.mean(life)),
                     "lifespan_sd": float(np.std(life)), "survivors_share": float(np.mean(surv)),
                     "survivors_sd": float(np.std(surv)),
                     "extinct_rate": float(np.mean(ext)), "chain_broken_rate": float(np.mean(broken)),
                     "extinction_day_mean": float(np.nanmean(ext_day)) if np.isfinite(ext_day).any() else float("nan"),
                     "path_per_day": float(np.mean(path))})
    outs = [plots.sweep(rows, folder / "risk_sweep.png").name]
    outs += write_summary(folder, rows, f"Risk-factor sweep: lifespan and extinction (maser_exp1, r in [r-{band}, r+{band}])",
                          f"seeds {seed}..{seed + n_seeds - 1}, {days} days each; lifespan is censored at {days} days")
    return finish(folder, "risk-sweep", seed, {"maser_exp1": SupplyChainCore("maser_exp1").scenario.to_dict()},
                  outs, rows)


# ---- future work 2: a population trained for the stability of the economy ---------------------------

def stability(out, seed: int = 0, quick: bool = False, overwrite: bool = False,
              trainer: "Callable[..., Any] | None" = None, train_steps: "int | None" = None,
              eval_seeds: "int | None" = None) -> dict:
    """Train a shared policy for every agent with the `stability` reward (the share of the population
    alive), and one with the `profit` reward, with `trainer(scenario, reward, seed, steps) -> act`
    (`training.supply_chain.train_population`, passed in by the CLI: eval does not import training),
    and compare both with the risk-factor population on held-out seeds."""
    if trainer is None:
        raise ValueError("stability: trainer = None; pass training.supply_chain.train_population "
                         "(the CLI does: channelmarket supply-chain experiment stability)")
    folder = prepare(out, overwrite)
    scenario = "supply_chain_small" if quick else "maser_exp1"
    days = 40 if quick else 200
    steps = train_steps or (400 if quick else 60_000)
    n_eval = eval_seeds or (2 if quick else 8)
    pops: dict[str, Any] = {"risk-factor rules": None}
    for reward in ("stability", "profit"):
        pops[f"learned ({reward})"] = trainer(scenario, reward=reward, seed=seed, steps=steps, days=days)
    rows, curves = [], {}
    for label, act in pops.items():
        life, surv, ext, trades, broken = [], [], [], [], []
        for s in range(10_000 + seed, 10_000 + seed + n_eval):      # held-out seeds
            core = SupplyChainCore(scenario, days=days)
            mask = np.ones(core.n_agents, bool) if act is not None else None
            h = simulate(core, seed=s, actions=act, mask=mask)
            alive = h.array("alive")
            life.append(h.lifespan().mean())
            surv.append(alive[-1].sum() / len(h.kind))
            ext.append(alive[-1].sum() == 0)
            broken.append((alive[-1] == 0).any())
            trades.append(len(h.tx) / max(h.days, 1))
            if s == 10_000 + seed:
                curves[label] = h
        rows.append({"population": label, "eval_seeds": n_eval, "days": days, "lifespan_mean": float(np.mean(life)),
                     "lifespan_sd": float(np.std(life)), "survivors_share": float(np.mean(surv)),
                     "extinct_rate": float(np.mean(ext)), "chain_broken_rate": float(np.mean(broken)),
                     "trades_per_day": float(np.mean(trades))})
    outs = [plots.population(curves, folder / "population.png", f"{scenario}, held-out seed {10_000 + seed}").name]
    outs += write_summary(folder, rows, f"Stability study ({scenario}): learned populations vs the risk-factor rules",
                          f"every agent learned (one shared policy, PPO via training.supply_chain, {steps} agent-steps "
                          f"of {days}-day episodes); evaluated on {n_eval} held-out seeds")
    return finish(folder, "stability", seed, {scenario: SupplyChainCore(scenario).scenario.to_dict()}, outs, rows)


RUNNERS: dict[str, Callable[..., dict]] = {"1": experiment_1, "2": experiment_2, "3": experiment_3, "4": experiment_4,
                                           "5": experiment_5, "risk-sweep": risk_sweep, "stability": stability}


def run(experiment: str, out, seed: int = 0, quick: bool = False, overwrite: bool = False, **kw) -> dict:
    if experiment not in RUNNERS:
        raise ValueError(f"experiment = {experiment!r}; allowed: {', '.join(EXPERIMENTS)}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed = {seed!r}; allowed: an integer >= 0")
    return RUNNERS[experiment](out, seed=seed, quick=quick, overwrite=overwrite, **kw)


__all__ = ["run", "RUNNERS", "EXPERIMENTS", "prepare", "near_seller_share", "PAPER_PATH"]

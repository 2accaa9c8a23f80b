"""Tournaments: policy populations over scenarios x shock settings x mechanisms x seeds, in parallel.

    from channelmarket.eval.tournament import run_tournament
    from channelmarket.eval.populations import homogeneous, substrate
    res = run_tournament([homogeneous("risk_factor"), homogeneous("truthful"),
                          substrate("sellers_vs_risk_factor", "runs/x/model.zip")],
                         scenarios=["energy_default"], seeds=range(10), shocks=["none", "DEMAND_SURGE@30:8"],
                         mechanisms=["bilateral", "double_auction"], workers=2)
    res.write("out/")    # manifest.json, episodes.csv (+ .parquet), steps.csv, exploitability.csv, timing.json

`out/` must be new or empty (`write(out, overwrite=True)` replaces an earlier eval run's files,
see `eval.outputs`); every file is written atomically, and all but timing.json (the runtime and
worker count) are the same bytes for the same call. `prepare_tournament` checks every argument
and builds the jobs without running them; seeds are capped at `eval.seeds.MAX_SEEDS` per run.

Every (scenario, mechanism, shock setting, seed, population) is one job: a worker builds its own
`MarketCore` and fresh policies from plain-data specs (spawn-safe), runs one episode through
`run_episode` with an `EpisodeRecorder` (`eval.metrics`), and returns plain rows. The same seed
gives the same exogenous weather, demand and shocks to every population, so results pair over
seeds. Jobs run in a `multiprocessing` spawn pool (`workers`), results are put back in job order,
and nothing in the output depends on timing or on the number of workers: the same call writes the
same bytes.

Output tables (tidy, one row per observation):

- episodes: one row per episode x group, where a group is (policy, role, kind) and the rows with
  policy/role/kind = "all" aggregate over the episode's groups (so per-kind and whole-episode
  figures need no re-weighting). Columns: `ID_COLUMNS`, the group's `GROUP_COLUMNS` (agents,
  profit per agent, ...), and every episode metric of `eval.metrics.episode_metrics`
  (`EPISODE_COLUMNS`: efficiency against the per-step optimum, price volatility, deviation
  from the mean-field equilibrium price path, shock response, unserved and curtailed energy,
  payment failure rate, channel utilization, profit Gini, ...), repeated on each row of the
  episode.
- steps: the price path of every episode (clearing price, reference price, equilibrium price,
  active shock), the interval's exogenous generation and load (the same for every population on
  a seed: the env draws weather, load and shocks from a stream of their own), and the traded
  volume, offered supply and demand, unserved and curtailed energy, realized and optimal welfare.
- exploitability: the gain of a best response per agent kind (see `eval.exploitability`); the
  storage best response to the realized price path (method "mf_dp") comes free with every episode.

Shock settings: "scenario" (as the scenario says), "none", "random" or "random:RATE" (random
shocks at RATE per step, default 0.02), "unseen" (`unseen_schedule`), or an explicit schedule
"KIND@STEP:DURATION[+KIND@STEP:DURATION...]", e.g. "DEMAND_SURGE@30:8".
"""

from __future__ import annotations

import csv
import io
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .._version import __version__
from ..envs.files import atomic_write_bytes, atomic_writer
from ..envs.core import MarketCore
from ..envs.breakdown import BREAKDOWN_FIELDS
from ..envs.scenario import Scenario
from ..envs.shocks import SHOCK_NAMES
from ..envs.state import KIND_NAMES, Kind
from .equilibrium import cached_equilibrium
from .jobs import run_jobs
from .outputs import FORMAT, MANIFEST, TIMING, clear_outputs, prepare_folder, write_json
from .populations import (
    EQUILIBRIUM_POLICY, PopulationSpec, build_assignments, check_policy, load_model, policy_kind,
    policy_record,
)
from .settings import (
    DEFAULT_RANDOM_SHOCK_RATE, SHOCK_FORMS, apply_shocks, as_population, check_mechanism,
    resolve_scenario, unseen_schedule, variant,
)
from .seeds import MAX_SEEDS, parse_seeds

ID_COLUMNS = ("scenario", "mechanism", "shocks", "seed", "population", "substrate", "focal_policy", "policy", "kind",
              "role")
GROUP_COLUMNS = ("agents", "profit_total", "profit_per_agent", "group_profit_gini") + tuple(
    f"{f}_per_agent" for f in BREAKDOWN_FIELDS if f != "profit")
EPISODE_COLUMNS = (
    "steps", "welfare", "realized_welfare", "optimal_welfare", "efficiency", "p2p_volume", "price_mean",
    "price_volatility", "eq_price_rmse", "eq_price_mae", "eq_converged", "n_shocks", "shock_peak_deviation",
    "shock_peak_relative", "shock_recovery_steps", "shock_recovered_share", "unserved", "curtailed",
    "unserved_share", "payment_failure_rate", "channel_utilization", "profit_gini",
)
EPISODE_ID_COLUMNS = ("scenario", "mechanism", "shocks", "seed", "population", "substrate", "focal_policy")
STEP_COLUMNS = EPISODE_ID_COLUMNS[:5] + ("t", "hour", "price", "ref_price", "eq_price", "shock", "generation", "load",
                                         "volume", "supply", "demand", "unserved", "curtailed", "realized_welfare",
                                         "optimal_welfare")
EXPLOIT_COLUMNS = ("scenario", "mechanism", "shocks", "seed", "population", "kind", "method", "agents",
                   "base_profit_per_agent", "deviation_profit_per_agent", "gain_per_agent", "detail")
ALL = "all"


# ---- one episode ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EpisodeJob:
    """One episode of one population in one cell (scenario label, mechanism, shock setting, seed)."""

    index: int
    scenario_label: str
    scenario: Scenario          # with mechanism and shocks applied
    mechanism: str
    shocks: str
    seed: int
    population: PopulationSpec
    optimum: bool = True
    equilibrium: bool = True
    soc_levels: int = 21

    def run(self) -> dict[str, list]:
        return run_episode_job(self)


def _float(x: Any) -> float:
    return float(x) if x is not None else float("nan")


def group_rows(ep: Any, slots: list, ids: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of one episode: one per (policy, role, kind) group, per (policy, role) over kinds, per
    kind over policies, and one over everything (see the module docstring)."""
    from .metrics import gini

    totals = ep.totals
    kind = np.asarray(ep.kind, dtype=np.int64)
    gidx = np.asarray(ep.policy_index, dtype=np.int64)
    pol = np.array([slots[g].policy for g in range(len(slots))], dtype=object)[gidx]
    role = np.array([slots[g].role for g in range(len(slots))], dtype=object)[gidx]
    kname = np.array(KIND_NAMES, dtype=object)[kind]
    # groups in a fixed order: slot order for policies, KIND_NAMES order for kinds
    pr_order = list(dict.fromkeys((s.policy, s.role) for s in slots))
    keys: list[tuple[str, str, str, np.ndarray]] = []
    for p, r in pr_order:
        base = (pol == p) & (role == r)
        for k in KIND_NAMES:
            m = base & (kname == k)
            if m.any():
                keys.append((p, r, k, m))
        keys.append((p, r, ALL, base))
    for k in KIND_NAMES:
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
        rows.append(row)
    return rows


def storage_terminal_value(sc: Scenario, efficiency: np.ndarray) -> np.ndarray:
    """EUR per MWh of charge at the episode's end, per store, as the env's rewards count it: the
    env credits (soc_end - soc_0) x efficiency x base_price when its settlement has a
    `storage_value` column, and nothing otherwise."""
    if "storage_value" in BREAKDOWN_FIELDS:
        return np.asarray(efficiency, dtype=np.float64) * float(sc.base_price)
    return np.zeros(np.shape(efficiency))


def storage_dp_gain(price: np.ndarray, capacity: np.ndarray, power: np.ndarray, efficiency: np.ndarray,
                    soc0: np.ndarray, step_hours: float, realized_profit: np.ndarray, levels: int = 21,
                    terminal_value: Any = 0.0) -> dict:
    """Gain of the stores' mean-field best response: the payoff of the dynamic-programming best
    response (`eval.equilibrium.best_response`, charge on a grid of `levels` points) of each store
    to the realized price path, as a price taker with perfect foresight, minus the profit it made.
    `terminal_value` (EUR per MWh left in store, a number or one per store) values the change of
    charge over the episode, as the env's rewards do. Returns per-agent means: {"agents", "base",
    "deviation", "gain"}."""
    from .equilibrium import best_response, storage_grid

    grid = storage_grid(capacity, power, efficiency, soc0, step_hours, levels)
    tv = np.broadcast_to(np.asarray(terminal_value, dtype=np.float64), np.shape(capacity))
    br = best_response(grid, np.asarray(price, dtype=np.float64), tv[:, None])
    payoff = br.value - tv * grid.k0 * grid.h     # the charge held at the start is not a gain
    n = int(capacity.shape[0])
    base = float(np.sum(realized_profit) / n)
    dev = float(np.sum(payoff) / n)
    return {"agents": n, "base": base, "deviation": dev, "gain": dev - base}


def run_episode_job(job: EpisodeJob) -> dict[str, list]:
    """Run one episode job; returns {"rows", "steps", "exploit"} of plain values."""
    from ..policies.rollout import run_episode
    from .metrics import EpisodeRecorder, episode_metrics

    sc, seed, spec = job.scenario, int(job.seed), job.population
    core = MarketCore(sc)
    core.reset(seed=seed)
    ag = core.agents
    soc0 = core.state.soc.copy()
    needs_eq = job.equilibrium or EQUILIBRIUM_POLICY in spec.policies
    eq = cached_equilibrium(sc, seed) if needs_eq else None
    assignments, slots = build_assignments(spec, core, eq)
    rec = EpisodeRecorder(core, optimum=job.optimum)
    exo: dict[str, list] = {"generation": [], "load": []}

    def on_step(c: MarketCore, prev: Any) -> None:
        rec(c, prev)
        exo["generation"].append(float(prev.generation.sum()))   # the interval's weather-driven energy,
        exo["load"].append(float(prev.demand.sum()))             # before shocks: the same for every population

    ep = run_episode(core, assignments, seed=seed, callback=on_step)
    record = rec.result(ep)
    m = episode_metrics(record, equilibrium_price=eq.price if (eq is not None and job.equilibrium) else None)
    m["eq_converged"] = float(eq.converged) if (eq is not None and job.equilibrium) else float("nan")
    ids = {"scenario": job.scenario_label, "mechanism": job.mechanism, "shocks": job.shocks, "seed": seed,
           "population": spec.name, "substrate": spec.substrate, "focal_policy": spec.focal_policy}
    episode = {c: _float(m[c]) for c in EPISODE_COLUMNS}
    rows = [dict(r, **episode) for r in group_rows(ep, slots, ids)]

    s = record.steps
    T = record.n_steps
    eq_price = eq.price[:T] if eq is not None else np.full(T, np.nan)
    hour = (sc.start_hour + np.arange(T) * sc.step_hours) % 24.0
    steps = {c: [ids[c]] * T for c in STEP_COLUMNS[:5]}
    steps.update(t=s["t"].tolist(), hour=hour.tolist(), price=s["price"].tolist(), ref_price=s["ref_price"].tolist(),
                 eq_price=np.asarray(eq_price, dtype=np.float64).tolist(),
                 shock=[SHOCK_NAMES[int(k)] for k in s["shock"]], generation=exo["generation"], load=exo["load"],
                 volume=s["volume"].tolist(),
                 supply=s["supply"].tolist(), demand=s["demand"].tolist(), unserved=s["unserved"].tolist(),
                 curtailed=s["curtailed"].tolist(), realized_welfare=s["realized_welfare"].tolist(),
                 optimal_welfare=s["optimal_welfare"].tolist())

    exploit = []
    st = np.flatnonzero(ag.kind == Kind.STORAGE)   # the DP models a plain battery (no schedule), so storage only
    if st.size:
        g = storage_dp_gain(s["price"], ag.capacity[st], ag.power[st], ag.efficiency[st], soc0[st], sc.step_hours,
                            ep.totals["profit"][st], levels=job.soc_levels,
                            terminal_value=storage_terminal_value(sc, ag.efficiency[st]))
        exploit.append({"scenario": job.scenario_label, "mechanism": job.mechanism, "shocks": job.shocks,
                        "seed": seed, "population": spec.name, "kind": "storage", "method": "mf_dp",
                        "agents": g["agents"], "base_profit_per_agent": g["base"],
                        "deviation_profit_per_agent": g["deviation"], "gain_per_agent": g["gain"],
                        "detail": f"DP best response to the realized clearing prices, {job.soc_levels} charge levels"})
    return {"rows": rows, "steps": [steps], "exploit": exploit}


# ---- the tournament ---------------------------------------------------------------------------------------

@dataclass
class TournamentResult:
    """Rows of the three tables, the manifest (everything needed to reproduce them) and the timing
    (kept apart from the manifest, so that reruns write the same manifest bytes)."""

    rows: list[dict[str, Any]]
    steps: list[dict[str, list]]
    exploit: list[dict[str, Any]]
    manifest: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)
    timing: dict[str, Any] = field(default_factory=dict)

    def write(self, out: "str | Path", parquet: bool = True, overwrite: bool = False) -> dict[str, Path]:
        """Write manifest.json, episodes.csv, steps.csv, exploitability.csv (and .parquet files of
        the tables when pyarrow is installed and `parquet`) and timing.json into `out`, each
        atomically; returns the paths. `out` must be new or empty; with `overwrite` it may hold an
        earlier eval run, whose listed outputs are removed first (`eval.outputs`). The manifest,
        written first, lists exactly the files of this run under "outputs"."""
        folder = Path(out)
        previous = prepare_folder(folder, overwrite)
        if parquet:
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                parquet = False
        tables = (("episodes", ID_COLUMNS + GROUP_COLUMNS + EPISODE_COLUMNS, self.rows),
                  ("steps", STEP_COLUMNS, self.steps),
                  ("exploitability", EXPLOIT_COLUMNS, self.exploit))
        names = [MANIFEST] + [f"{t}.csv" for t, _, _ in tables]
        names += [f"{t}.parquet" for t, _, _ in tables] if parquet else []
        names += [TIMING] if self.timing else []
        clear_outputs(folder, previous)
        files = {"manifest": write_json(folder / MANIFEST, dict(self.manifest, outputs=names))}
        for name, cols, rows in tables:
            rows = list(_step_rows(rows)) if name == "steps" else rows
            files[name] = write_csv(folder / f"{name}.csv", cols, rows)
            if parquet:
                files[f"{name}_parquet"] = write_parquet(folder / f"{name}.parquet", cols, rows)
        if self.timing:
            files["timing"] = write_json(folder / TIMING, self.timing)
        self.files = files
        return files


def _step_rows(blocks: list[dict[str, list]]) -> Iterable[dict[str, Any]]:
    for b in blocks:
        n = len(b["t"])
        for i in range(n):
            yield {c: b[c][i] for c in STEP_COLUMNS}


def _cell(v: Any) -> Any:
    """A CSV cell: floats by repr (exact round trip, 'nan'), bools as 0/1, the rest as str."""
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    if isinstance(v, np.integer):
        return int(v)
    return v


def write_csv(path: Path, columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> Path:
    """A tidy table as CSV (floats by repr, '\\n' line ends), written atomically."""
    with atomic_writer(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(columns)
        for r in rows:
            w.writerow([_cell(r.get(c, "")) for c in columns])
    return Path(path)


def write_parquet(path: Path, columns: Sequence[str], rows: list[dict[str, Any]]) -> Path:
    """A tidy table as Parquet (int64 seed/agents/t, strings for ids, float64 for the rest),
    serialized in memory and written atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = {}
    for c in columns:
        vals = [r.get(c) for r in rows]
        if c in ("seed", "agents", "t"):
            data[c] = pa.array([int(v) for v in vals], type=pa.int64())
        elif c in ID_COLUMNS or any(isinstance(v, str) for v in vals):
            data[c] = pa.array([str(v) for v in vals], type=pa.string())
        else:
            data[c] = pa.array([float(v) for v in vals], type=pa.float64())
    buf = io.BytesIO()
    pq.write_table(pa.table(data), buf)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def build_jobs(populations: Sequence[PopulationSpec], scenarios: Sequence[tuple[str, Scenario]], seeds: Sequence[int],
               mechanisms: Sequence[str] | None, shocks: Sequence[str], optimum: bool, equilibrium: bool
               ) -> tuple[list[EpisodeJob], list[dict[str, Any]]]:
    """Episode jobs in a fixed order (scenario, mechanism, shock setting, population, seed), and the
    resolved scenario of every cell. A population with its own shock setting runs only under it;
    the reference (first) population also runs under every such setting, so it pairs with them."""
    forced = [p.shocks for p in populations if p.shocks]
    all_shocks = list(dict.fromkeys(list(shocks) + forced))
    jobs: list[EpisodeJob] = []
    cells: list[dict[str, Any]] = []
    for label, base in scenarios:
        mechs = list(mechanisms) if mechanisms else [base.mechanism]
        for mech in mechs:
            for sh in all_shocks:
                sc = variant(base, mech, sh)
                n_before = len(jobs)
                for pi, pop in enumerate(populations):
                    if pop.shocks:
                        if sh != pop.shocks:
                            continue
                    elif sh not in shocks and pi != 0:
                        continue
                    for seed in seeds:
                        jobs.append(EpisodeJob(len(jobs), label, sc, mech, sh, int(seed), pop, optimum, equilibrium))
                if len(jobs) > n_before:
                    cells.append({"scenario": label, "mechanism": mech, "shocks": sh, "config": sc.to_dict()})
    return jobs, cells


@dataclass
class TournamentPlan:
    """A checked tournament, ready to run: its episode and best-response jobs and its manifest.
    `prepare_tournament` validates everything (policies, models, scenarios, seeds, mechanisms,
    shock settings) before any job runs, so a caller can also check its output folder in between."""

    populations: list[PopulationSpec]
    jobs: list[EpisodeJob]
    exploit_jobs: list[Any]
    manifest: dict[str, Any]

    def run(self, workers: int = 1, progress: bool = True) -> TournamentResult:
        """Run the jobs (in a spawn pool of `workers`); the result does not depend on `workers`."""
        if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
            raise ValueError(f"workers = {workers!r}; allowed: an integer >= 1")
        t0 = time.perf_counter()
        results = run_jobs(list(self.jobs) + list(self.exploit_jobs), workers=int(workers), progress=progress)
        rows, steps, ex = [], [], []
        for r in results:
            rows += r.get("rows", [])
            steps += r.get("steps", [])
            ex += r.get("exploit", [])
        timing = {"runtime_seconds": round(time.perf_counter() - t0, 1), "workers": int(workers),
                  "jobs": len(self.jobs) + len(self.exploit_jobs)}
        return TournamentResult(rows, steps, ex, dict(self.manifest), timing=timing)


def prepare_tournament(populations: Sequence["PopulationSpec | str"], scenarios: Sequence[Any] = ("energy_default",),
                       seeds: Any = "0-9", mechanisms: Sequence[str] | None = None,
                       shocks: Sequence[str] = ("scenario",), *, optimum: bool = True, equilibrium: bool = True,
                       exploit: Any = None, command: str | None = None, max_seeds: int = MAX_SEEDS
                       ) -> TournamentPlan:
    """Check every argument of `run_tournament` (ValueError/TypeError naming the value and what is
    allowed), load every trained model once, and build the jobs and the manifest."""
    from .exploitability import build_exploit_jobs

    pops = [as_population(p) for p in populations]
    names = [p.name for p in pops]
    if not pops:
        raise ValueError("a tournament needs at least one population")
    if len(set(names)) != len(names):
        raise ValueError(f"population names must be unique; got {names}")
    for p in pops:
        for s in p.slots:
            check_policy(s.policy)
    for spec in dict.fromkeys(s.policy for p in pops for s in p.slots):
        if policy_kind(spec) == "learned":   # load once here: a broken model fails now, with its name
            try:
                load_model(spec)
            except Exception as exc:  # noqa: BLE001 - any loader error, reported with the path
                raise ValueError(f"policy {spec!r}: cannot load the trained model ({type(exc).__name__}: {exc})") \
                    from None
    scs = [resolve_scenario(s) for s in scenarios]
    seed_list = parse_seeds(seeds, max_seeds=max_seeds)
    mechs = [check_mechanism(m) for m in mechanisms] if mechanisms else None
    shock_list = list(dict.fromkeys(s.strip() for s in shocks))
    for label, sc in scs:  # validate every setting up front, with a clear message
        for sh in shock_list + [p.shocks for p in pops if p.shocks]:
            apply_shocks(sc, sh)
    jobs, cells = build_jobs(pops, scs, seed_list, mechs, shock_list, optimum, equilibrium)
    ejobs = build_exploit_jobs(pops, jobs, seed_list, exploit, start=len(jobs)) if exploit else []
    policies = {}
    for p in pops:
        for s in p.policies:
            policies.setdefault(s, policy_record(s))
    import scipy

    manifest = {
        "format": FORMAT,
        "channelmarket_version": __version__,
        "command": command,
        "scenarios": {label: sc.to_dict() for label, sc in scs},
        "cells": cells,
        "seeds": seed_list,
        "mechanisms": mechs or sorted({sc.mechanism for _, sc in scs}),
        "shocks": shock_list,
        "populations": [p.to_dict() for p in pops],
        "reference_population": pops[0].name,
        "policies": policies,
        "optimum": bool(optimum),
        "equilibrium": bool(equilibrium),
        "exploitability": exploit.to_dict() if exploit else None,
        "jobs": len(jobs) + len(ejobs),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
    }
    return TournamentPlan(pops, jobs, ejobs, manifest)


def run_tournament(populations: Sequence["PopulationSpec | str"], scenarios: Sequence[Any] = ("energy_default",),
                   seeds: Any = "0-9", mechanisms: Sequence[str] | None = None, shocks: Sequence[str] = ("scenario",),
                   *, workers: int = 1, optimum: bool = True, equilibrium: bool = True, progress: bool = True,
                   exploit: Any = None, command: str | None = None) -> TournamentResult:
    """Run every population over scenarios x mechanisms x shock settings x seeds (see the module
    docstring); `exploit` (an `eval.exploitability.ExploitConfig`) adds best-response searches for
    every population on the first cell. Returns the tables and the manifest; `write(out)` saves them.
    `seeds` is text like "0-9,20", an integer or integers, at most `eval.seeds.MAX_SEEDS`."""
    plan = prepare_tournament(populations, scenarios, seeds, mechanisms, shocks, optimum=optimum,
                              equilibrium=equilibrium, exploit=exploit, command=command)
    return plan.run(workers=workers, progress=progress)


__all__ = [
    "run_tournament", "prepare_tournament", "TournamentPlan", "TournamentResult", "EpisodeJob", "run_episode_job",
    "run_jobs", "build_jobs", "parse_seeds", "resolve_scenario", "apply_shocks", "variant", "unseen_schedule",
    "check_mechanism", "cached_equilibrium", "group_rows", "storage_dp_gain", "write_csv", "write_parquet",
    "ID_COLUMNS", "GROUP_COLUMNS", "EPISODE_COLUMNS", "STEP_COLUMNS", "EXPLOIT_COLUMNS", "SHOCK_FORMS", "as_population",
]

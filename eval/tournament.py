"""Tournaments: policy populations over scenarios x shock settings x mechanisms x seeds, in parallel.

    from channelmarket.eval.tournament import run_tournament
    from channelmarket.eval.populations import homogeneous, substrate
    res = run_tournament([homogeneous("risk_factor"), homogeneous("truthful"),
                          substrate("sellers_vs_risk_factor", "runs/x/model.zip")],
                         scenarios=["energy_default"], seeds=range(10), shocks=["none", "DEMAND_SURGE@30:8"],
                         mechanisms=["bilateral", "double_auction"], workers=2)
    res.write("out/")    # manifest.json, episodes.csv (+ .parquet), steps.csv, exploitability.csv, timing.json

The orchestration of the evaluation pipeline (settings -> jobs -> runs -> statistics -> report), and
nothing else:

    settings (eval.settings, eval.seeds, eval.populations: checked before anything runs)
      -> jobs (`build_jobs`: one `eval.runs.EpisodeJob` per scenario x mechanism x shock setting x
         population x seed, plus `eval.exploitability`'s best-response jobs; `eval.jobs.run_jobs`
         runs them in a spawn pool)
      -> runs (`eval.runs`: one recorded episode per job)
      -> statistics (`eval.statistics.episode_tables`: the rows of the tables of `eval.tables`)
      -> write (`TournamentResult.write`: the tables and the manifest, into a checked folder)
      -> report (`eval.report.write_report`, from the written folder alone).

`out/` must be new or empty (`write(out, overwrite=True)` replaces an earlier eval run's files,
see `eval.outputs`); every file is written atomically, and all but timing.json (the runtime and
worker count) are the same bytes for the same call. `prepare_tournament` checks every argument
and builds the jobs without running them; seeds are capped at `eval.seeds.MAX_SEEDS` per run.
Results are put back in job order, so nothing in the output depends on timing or on the number
of workers. The same seed gives the same exogenous weather, demand and shocks to every
population, so results pair over seeds.

Shock settings: "scenario" (as the scenario says), "none", "random" or "random:RATE" (random
shocks at RATE per step, default 0.02), "unseen" (`unseen_schedule`), or an explicit schedule
"KIND@STEP:DURATION[+KIND@STEP:DURATION...]", e.g. "DEMAND_SURGE@30:8".

Both economies: a scenario may be a supply-chain preset (`supply_chain_v0`: maser_exp1 ...
supply_chain_small), whose cells run `eval.supply_chain.runs.SupplyChainJob`s into the same tables
(mechanism "maser", its own; shock settings "scenario", "none", "move_key@DAY"; populations over its
kinds farmer, miller, baker, seller, or homogeneous; the `maser` policy = the market's own agents):

    run_tournament(["maser", "risk_factor", "eps_auction"], scenarios=["maser_exp1", "supply_chain_small"],
                   seeds="0-4", shocks=["none"], optimum=False, equilibrium=False)

A population runs on the cells of the market it fits (`eval.markets.runs_on`): `maser` and populations over the
supply chain's kinds on supply-chain cells, populations over energy kinds or with their own shock
setting on energy cells, homogeneous ones on both; best-response searches (`exploit`) run on energy
cells only.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .._version import __version__
from ..envs.scenario import Scenario
from .jobs import run_jobs
from .outputs import FORMAT, MANIFEST, RECORDINGS, TIMING, clear_outputs, prepare_folder, write_json
from .markets import MECHANISM as SUPPLY_CHAIN_MECHANISM
from .markets import is_supply_chain, market_population, runs_on
from .populations import PopulationSpec, check_policy, load_model, policy_kind, policy_record
from .runs import EpisodeJob, EpisodeRun, recording_name
from .seeds import MAX_SEEDS, parse_seeds
from .settings import apply_shocks, as_population, check_mechanism, resolve_scenario, variant
from .statistics import episode_tables
from .supply_chain.runs import SupplyChainJob, SupplyChainRun
from .tables import TABLE_COLUMNS, step_rows, write_csv, write_parquet


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
    recordings: dict[str, bytes] = field(default_factory=dict)   # file name -> gzip JSON lines (`record`)

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
        data = {"episodes": self.rows, "steps": self.steps, "exploitability": self.exploit}
        tables = [(name, cols, data[name]) for name, cols in TABLE_COLUMNS]
        names = [MANIFEST] + [f"{t}.csv" for t, _, _ in tables]
        names += [f"{t}.parquet" for t, _, _ in tables] if parquet else []
        names += [TIMING] if self.timing else []
        names += [RECORDINGS] if self.recordings else []
        clear_outputs(folder, previous)
        files = {"manifest": write_json(folder / MANIFEST, dict(self.manifest, outputs=names))}
        for name, cols, rows in tables:
            rows = list(step_rows(rows)) if name == "steps" else rows
            files[name] = write_csv(folder / f"{name}.csv", cols, rows)
            if parquet:
                files[f"{name}_parquet"] = write_parquet(folder / f"{name}.parquet", cols, rows)
        if self.timing:
            files["timing"] = write_json(folder / TIMING, self.timing)
        if self.recordings:   # replay with `channelmarket dashboard --replay` or envs.recording.replay
            from ..envs.files import atomic_write_bytes

            (folder / RECORDINGS).mkdir(exist_ok=True)
            for name, data in self.recordings.items():
                atomic_write_bytes(folder / RECORDINGS / name, data)
            files[RECORDINGS] = folder / RECORDINGS
        self.files = files
        return files


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
        supply_chain = is_supply_chain(base)   # one mechanism there: its own offers and answers
        mechs = [SUPPLY_CHAIN_MECHANISM] if supply_chain else list(mechanisms) if mechanisms else [base.mechanism]
        job_type = SupplyChainJob if supply_chain else EpisodeJob
        for mech in mechs:
            for sh in all_shocks:
                if supply_chain and sh not in shocks:
                    continue                    # a population's own (energy) shock setting
                sc = variant(base, mech, sh)
                n_before = len(jobs)
                for pi, pop in enumerate(populations):
                    if not runs_on(pop, base):
                        continue
                    if pop.shocks:
                        if sh != pop.shocks:
                            continue
                    elif sh not in shocks and pi != 0:
                        continue
                    for seed in seeds:
                        jobs.append(job_type(len(jobs), label, sc, mech, sh, int(seed), pop, optimum, equilibrium))
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

    def record(self, n: int) -> "TournamentPlan":
        """Also record the first `n` episode jobs (`envs.recording`, written to `recordings/` by
        `TournamentResult.write`); `n` = 0 records none. Recording does not change any result."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"record = {n!r}; allowed: an integer >= 0 (episodes to record)")
        from dataclasses import replace

        self.jobs = [replace(j, record=i < n) for i, j in enumerate(self.jobs)]
        return self

    def run(self, workers: int = 1, progress: bool = True) -> TournamentResult:
        """Run the jobs (in a spawn pool of `workers`); the result does not depend on `workers`."""
        if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
            raise ValueError(f"workers = {workers!r}; allowed: an integer >= 1")
        t0 = time.perf_counter()
        results = run_jobs(list(self.jobs) + list(self.exploit_jobs), workers=int(workers), progress=progress)
        rows, steps, ex, recordings = [], [], [], {}
        for r in results:   # job order: episode jobs, then the best-response jobs
            if isinstance(r, (EpisodeRun, SupplyChainRun)):
                if r.recording is not None:
                    recordings[recording_name(r.job)] = r.recording
                r = episode_tables(r)
            rows += r.get("rows", [])
            steps += r.get("steps", [])
            ex += r.get("exploit", [])
        timing = {"runtime_seconds": round(time.perf_counter() - t0, 1), "workers": int(workers),
                  "jobs": len(self.jobs) + len(self.exploit_jobs)}
        return TournamentResult(rows, steps, ex, dict(self.manifest), timing=timing, recordings=recordings)


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
    for p in pops:         # a population runs on the scenarios of its market; it must run somewhere
        if not any(runs_on(p, sc) for _, sc in scs):
            market_population(p, "supply_chain" if all(is_supply_chain(sc) for _, sc in scs) else "energy")
            raise ValueError(f"population {p.name!r} runs on none of the scenarios "
                             f"({', '.join(label for label, _ in scs)})")
    for label, sc in scs:  # validate every setting up front, with a clear message
        supply_chain = is_supply_chain(sc)
        for sh in shock_list + ([] if supply_chain else [p.shocks for p in pops if p.shocks]):
            apply_shocks(sc, sh)
    jobs, cells = build_jobs(pops, scs, seed_list, mechs, shock_list, optimum, equilibrium)
    energy_jobs = [j for j in jobs if isinstance(j, EpisodeJob)]
    ejobs = build_exploit_jobs(pops, energy_jobs, seed_list, exploit, start=len(jobs)) if exploit else []
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
        "mechanisms": (mechs + [SUPPLY_CHAIN_MECHANISM] * any(is_supply_chain(sc) for _, sc in scs) if mechs
                       else sorted({getattr(sc, "mechanism", SUPPLY_CHAIN_MECHANISM) for _, sc in scs})),
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


__all__ = ["run_tournament", "prepare_tournament", "TournamentPlan", "TournamentResult", "build_jobs"]

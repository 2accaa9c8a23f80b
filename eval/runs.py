"""Runs: one episode of one population on one cell, recorded as plain arrays.

The run layer of the evaluation pipeline (settings -> jobs -> runs -> statistics -> report). It
consumes an `EpisodeJob` (a cell = scenario label, mechanism, shock setting and seed, plus the
population; built by `eval.tournament` from checked settings) and produces an `EpisodeRun`: the
raw record of the episode (per-step market arrays and per-agent totals, `eval.recorder`), the
agents' groups (policy slot and kind), the interval's exogenous generation and load, the
equilibrium price path, and the stores' dynamic-programming best response to the realized
prices. No table is built here: `eval.statistics` turns an `EpisodeRun` into rows.

A job is plain data (spawn-safe): a worker of `eval.jobs.run_jobs` builds its own `MarketCore`
and fresh policies from the population's specs. The same seed gives the same exogenous weather,
demand and shocks to every population, so results pair over seeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..envs.breakdown import BREAKDOWN_FIELDS
from ..envs.core import MarketCore
from ..envs.kinds import KIND_NAMES, KINDS
from ..envs.scenario import Scenario
from .equilibrium import cached_equilibrium
from .populations import EQUILIBRIUM_POLICY, PopulationSpec, build_assignments
from .recorder import EpisodeRecord, EpisodeRecorder


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
    record: bool = False        # also record the episode (`envs.recording`): EpisodeRun.recording

    def run(self) -> "EpisodeRun":
        return run_episode_job(self)


@dataclass
class EpisodeRun:
    """What one episode job produced, as plain data (it crosses the worker pool)."""

    job: EpisodeJob
    record: EpisodeRecord            # per-step arrays [T] and per-agent totals [N]
    slots: list                      # the population's slots; record.policy_index points into them
    hour: np.ndarray                 # hour of day of every step [T]
    generation: list[float]          # the interval's weather-driven generation, before shocks [T]
    load: list[float]                # the interval's demand, before shocks [T]
    eq_price: np.ndarray | None      # the equilibrium price path (None when not computed)
    eq_converged: bool | None
    best_responses: list[dict[str, Any]]   # mf_dp gains per plain-store kind (`plain_store_kinds`)
    recording: bytes | None = None   # gzip JSON-lines recording of the episode (job.record), else None


def plain_store_kinds() -> tuple[str, ...]:
    """Registered kinds the storage DP models: kinds that hold a charge moved only by their
    trades (`stores` and no booking hook of their own, so no trips or schedules)."""
    return tuple(s.name for s in KINDS if s.stores and s.book is None)


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


def run_episode_job(job: EpisodeJob) -> EpisodeRun:
    """Run one episode job and record it (see the module docstring)."""
    from ..policies.rollout import run_episode

    sc, seed, spec = job.scenario, int(job.seed), job.population
    core = MarketCore(sc)
    core.reset(seed=seed)
    ag = core.agents
    soc0 = core.state.soc.copy()
    needs_eq = job.equilibrium or EQUILIBRIUM_POLICY in spec.policies
    eq = cached_equilibrium(sc, seed) if needs_eq else None
    assignments, slots = build_assignments(spec, core, eq)
    rec = EpisodeRecorder(core, optimum=job.optimum)
    frames = None
    if job.record:   # the frame of the reset state now; run_episode resets to the same state
        from ..envs.recording import Recorder

        frames = Recorder(f"episode-{job.index}.jsonl.gz", seed=seed)
        frames.add(core)
    generation: list[float] = []
    load: list[float] = []

    def on_step(c: MarketCore, prev: Any) -> None:
        rec(c, prev)
        if frames is not None:
            frames.add(c)
        generation.append(float(prev.generation.sum()))   # the interval's weather-driven energy,
        load.append(float(prev.demand.sum()))             # before shocks: the same for every population

    ep = run_episode(core, assignments, seed=seed, callback=on_step)
    record = rec.result(ep)
    T = record.n_steps
    hour = (sc.start_hour + np.arange(T) * sc.step_hours) % 24.0

    best = []
    for kind in plain_store_kinds():
        st = np.flatnonzero(ag.kind == KIND_NAMES.index(kind))
        if st.size:
            g = storage_dp_gain(record.steps["price"], ag.capacity[st], ag.power[st], ag.efficiency[st], soc0[st],
                                sc.step_hours, record.totals["profit"][st], levels=job.soc_levels,
                                terminal_value=storage_terminal_value(sc, ag.efficiency[st]))
            best.append(dict(g, kind=kind, levels=job.soc_levels))
    return EpisodeRun(job, record, list(slots), hour, generation, load,
                      None if eq is None else np.asarray(eq.price, dtype=np.float64),
                      None if eq is None else bool(eq.converged), best,
                      None if frames is None else frames.data(compress=True))


def recording_name(job: EpisodeJob) -> str:
    """File name of a job's recording: index, population, cell and seed, safe on any file system."""
    import re

    parts = (f"{job.index:05d}", job.population.name, job.scenario_label, job.mechanism, job.shocks, f"seed{job.seed}")
    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", "_".join(parts)) + ".jsonl.gz"


__all__ = ["EpisodeJob", "EpisodeRun", "run_episode_job", "storage_dp_gain", "storage_terminal_value",
           "plain_store_kinds"]

"""Learned vs baseline in the same market, on held-out seeds, with paired 95% confidence intervals.

    from channelmarket.training.evaluate import compare_to_baseline
    table = compare_to_baseline("runs/ppo/model.zip", "energy_default", seeds=range(10_000, 10_020))
    print(table)

Design: in every episode the learner kinds are split, within each kind, into two halves A and B
(every other agent, the same split training uses). Run 1: the learned policy drives A, the
baseline drives B and every other agent. Run 2, same seed: the roles swap (learned drives B).
Learned and baseline agents therefore meet in the same market, and each seed's difference
is the mean of the two runs' (learned - baseline) differences, which cancels the agents' sizes
(a half with larger generators earns more whoever drives it). The seeds are the pairs: the
table reports the mean difference over seeds with a Student-t 95% interval.

Metrics per group of agents (over the episode, summed over the group's agents):
    sellers  profit per agent (EUR/episode); revenue per MWh sold (EUR/MWh)
    buyers   cost per MWh bought, peer-to-peer and grid together (EUR/MWh; lower is better);
             peer-to-peer price per MWh; profit per agent
Training seeds are hashed from (seed, market, episode) (`vec_env.episode_seed`); evaluation
uses plain seeds from 10_000 on, which training never draws in practice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..envs.core import MarketCore
from ..envs.scenario import get_scenario
from ..envs.state import KIND_ALIASES, Kind
from ..policies.base import Policy
from ..policies.rollout import run_episode
from ..eval.report import mean_ci
from .markets import make_policy, parse_kinds, scenario_kinds, select_agents

SELLERS = KIND_ALIASES["sellers"]
BUYERS = tuple(k for k in KIND_ALIASES["buyers"] if k not in SELLERS)   # pure buyers


@dataclass
class Row:
    """One metric of one agent group: learned and baseline means, the paired difference and its CI."""

    group: str
    metric: str
    unit: str
    better: str                      # "higher" or "lower"
    learned: float
    baseline: float
    diff: float
    ci_low: float
    ci_high: float
    n: int
    per_seed: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))

    @property
    def significant(self) -> bool:
        """The learned policy is better and the 95% interval excludes 0."""
        return self.ci_low > 0 if self.better == "higher" else self.ci_high < 0


@dataclass
class ComparisonTable:
    """The rows of `compare_to_baseline`; `str()` prints them aligned."""

    rows: list[Row]
    model: str
    scenario: str
    baseline: str
    seeds: list[int]

    def row(self, group: str, metric: str) -> Row:
        for r in self.rows:
            if r.group == group and r.metric == metric:
                return r
        raise KeyError(f"no row for group {group!r}, metric {metric!r}")

    def __str__(self) -> str:
        head = (f"learned ({self.model}) vs {self.baseline} in the same market, scenario {self.scenario}, "
                f"{len(self.seeds)} held-out seeds {self.seeds[0]}..{self.seeds[-1]} (paired, swap design)")
        cols = ("group", "metric", "learned", "baseline", "diff", "95% CI", "better")
        lines = []
        for r in self.rows:
            ok = "yes" if r.significant else "no"
            lines.append((r.group, f"{r.metric} ({r.unit})", f"{r.learned:.2f}", f"{r.baseline:.2f}",
                          f"{r.diff:+.2f}", f"[{r.ci_low:+.2f}, {r.ci_high:+.2f}]", f"{ok} ({r.better})"))
        w = [max(len(c), *(len(l[i]) for l in lines)) for i, c in enumerate(cols)]
        fmt = "  ".join(f"{{:<{x}}}" if i < 2 else f"{{:>{x}}}" for i, x in enumerate(w))
        out = [head, fmt.format(*cols), fmt.format(*("-" * x for x in w))]
        out += [fmt.format(*l) for l in lines]
        return "\n".join(out)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "scenario": self.scenario, "baseline": self.baseline, "seeds": self.seeds,
                "rows": [{k: (float(v) if isinstance(v, (np.floating, float)) else v)
                          for k, v in r.__dict__.items() if k != "per_seed"} for r in self.rows]}


def _group_stats(totals: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, float]:
    """Sums over the group's agents turned into the table's metrics."""
    s = {k: float(v[idx].sum()) for k, v in totals.items()}
    n = max(idx.shape[0], 1)
    sold = s["sold"] + s["grid_sold"]
    got = s["bought"] + s["grid_bought"]
    return {
        "profit": s["profit"] / n,
        "revenue_per_mwh": s["revenue"] / sold if sold > 0 else np.nan,
        "cost_per_mwh": s["cost"] / got if got > 0 else np.nan,
        "p2p_price": s["p2p_paid"] / s["bought"] if s["bought"] > 0 else np.nan,
        "p2p_share": s["bought"] / got if got > 0 else np.nan,
    }


def _nanmean(x: list[float]) -> float:
    a = np.asarray(x, dtype=np.float64)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else float("nan")


# (metric key, label, unit, better) per group type
SELLER_METRICS = (("profit", "profit per agent", "EUR/episode", "higher"),
                  ("revenue_per_mwh", "revenue per MWh sold", "EUR/MWh", "higher"))
BUYER_METRICS = (("cost_per_mwh", "cost per MWh bought", "EUR/MWh", "lower"),
                 ("p2p_price", "peer-to-peer price", "EUR/MWh", "lower"),
                 ("profit", "profit per agent", "EUR/episode", "higher"))


def compare_to_baseline(model_path: "str | Path | Policy", scenario: Any = "energy_default",
                        seeds: Iterable[int] = range(10_000, 10_020), baseline: str = "risk_factor",
                        learners: Any = None, learner_share: float | None = None,
                        record: "str | Path | None" = None, **scenario_overrides: Any) -> ComparisonTable:
    """Paired learned-vs-baseline table over `seeds` (see the module docstring).

    `learners` / `learner_share` default to what the model was trained with (its model.json),
    else all kinds and 0.5. `model_path` may also be a `Policy` already loaded. `record` (a path,
    .jsonl or .jsonl.gz) records the first seed's first episode (`envs.recording`) for replay."""
    from ..policies.learned import load

    if isinstance(model_path, Policy):
        learned, label = model_path, model_path.name
    else:
        learned, label = load(model_path), str(model_path)
    meta = getattr(learned, "meta", {}) or {}
    kinds = parse_kinds(learners if learners is not None else meta.get("learners", "all"))
    share = float(learner_share if learner_share is not None else meta.get("learner_share", 0.5))
    if share >= 1.0:
        share = 0.5   # learners and baseline agents of a kind must share the market
    sc = get_scenario(scenario, **scenario_overrides)
    kind = scenario_kinds(sc)
    half_a = select_agents(kind, kinds, share)
    in_kinds = np.isin(kind, [Kind[k.upper()] for k in kinds])
    mask_a = np.zeros(kind.shape[0], dtype=bool)
    mask_a[half_a] = True
    half_b = np.flatnonzero(in_kinds & ~mask_a)
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("compare_to_baseline needs at least one seed")
    core = MarketCore(sc)

    groups: dict[str, np.ndarray] = {}
    sellers_in = [k for k in kinds if k in SELLERS]
    if len(sellers_in) > 1:
        groups["sellers"] = np.isin(kind, [Kind[k.upper()] for k in sellers_in])
    for k in kinds:
        groups[k] = kind == Kind[k.upper()]

    # per seed: learned and baseline metric per group, averaged over the two swapped runs
    acc: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for seed in seeds:
        runs = []
        for learned_idx, base_idx in ((half_a, half_b), (half_b, half_a)):
            rest = np.setdiff1d(np.arange(kind.shape[0]), learned_idx)
            frames = callback = None
            if record is not None and not runs and seed == seeds[0]:
                from ..envs.recording import Recorder

                frames = Recorder(record, seed=seed)
                core.reset(seed=seed)     # the reset state's frame; run_episode resets to the same state
                frames.add(core)

                def callback(c, _prev, frames=frames):
                    frames.add(c)
            res = run_episode(core, [(make_policy(learned), learned_idx), (make_policy(baseline), rest)], seed=seed,
                              callback=callback)
            if frames is not None:
                frames.close()
            runs.append((res.totals, learned_idx, base_idx))
        for g, gmask in groups.items():
            metrics = SELLER_METRICS if g in SELLERS or g == "sellers" else BUYER_METRICS
            vals_l, vals_b = [], []
            for totals, l_idx, b_idx in runs:
                vals_l.append(_group_stats(totals, l_idx[gmask[l_idx]]))
                vals_b.append(_group_stats(totals, b_idx[gmask[b_idx]]))
            for key, *_ in metrics:
                lv = _nanmean([v[key] for v in vals_l])
                bv = _nanmean([v[key] for v in vals_b])
                acc.setdefault((g, key), []).append((lv, bv))

    rows = []
    for g in groups:
        metrics = SELLER_METRICS if g in SELLERS or g == "sellers" else BUYER_METRICS
        for key, label_m, unit, better in metrics:
            pairs = np.array(acc[(g, key)], dtype=np.float64)
            ok = np.isfinite(pairs).all(axis=1)
            if not ok.any():
                continue
            pairs = pairs[ok]
            d = pairs[:, 0] - pairs[:, 1]
            m, half, _ = mean_ci(d)      # the one t interval (`eval.report`); one seed: no interval
            lo, hi = (m, m) if not np.isfinite(half) else (m - half, m + half)
            rows.append(Row(g, label_m, unit, better, float(pairs[:, 0].mean()), float(pairs[:, 1].mean()), m, lo, hi,
                            int(ok.sum()), d))
    return ComparisonTable(rows, label, sc.name, baseline, seeds)


__all__ = ["compare_to_baseline", "ComparisonTable", "Row"]

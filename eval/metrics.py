"""Per-episode metrics from recorded arrays: what a tournament reports for every episode.

Every metric is a plain function of arrays (testable on synthetic data, no env needed);
`EpisodeRecorder` records those arrays from a `MarketCore` while an episode runs, and
`episode_metrics` computes them all:

    rec = EpisodeRecorder(core, optimum=True)            # after core.reset(seed)
    while not core.done:
        rec.step(actions)                                  # core.step + record
    m = episode_metrics(rec.result(), equilibrium_price=eq.price)

or `run_episode(core, policies, seed, callback=rec)` (the recorder starts over when it sees
interval 0). Step-indexed arrays are per market interval t: the price is the interval's clearing
price (VWAP, carried over from the previous interval when nothing traded), the shock the one
active during the interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..envs.settlement import BREAKDOWN_FIELDS
from ..envs.state import KIND_NAMES
from .optimum import optimal_welfare, realized_from_breakdown

_COL = {name: i for i, name in enumerate(BREAKDOWN_FIELDS)}


# ---- the metrics -------------------------------------------------------------------------------

def profit_by_group(profit: np.ndarray, group: np.ndarray, names: Any = None) -> dict[str, dict[str, float]]:
    """Profit per group of agents (EUR over the episode): {name: {"sum", "mean", "agents"}} where
    `group[i]` is agent i's group index and `names[g]` the name of group g (default: str(g));
    groups without agents are left out. Used per agent kind and per policy."""
    profit = np.asarray(profit, dtype=np.float64)
    group = np.asarray(group, dtype=np.int64)
    n_groups = int(group.max(initial=-1)) + 1 if names is None else len(names)
    sums = np.bincount(group, weights=profit, minlength=n_groups)
    counts = np.bincount(group, minlength=n_groups)
    out = {}
    for g in range(n_groups):
        if counts[g]:
            name = str(g) if names is None else str(names[g])
            out[name] = {"sum": float(sums[g]), "mean": float(sums[g] / counts[g]), "agents": int(counts[g])}
    return out


def profit_by_kind(profit: np.ndarray, kind: np.ndarray) -> dict[str, dict[str, float]]:
    """`profit_by_group` over agent kinds (solar, wind, storage, consumer)."""
    return profit_by_group(profit, kind, KIND_NAMES)


def allocative_efficiency(realized: np.ndarray, optimal: np.ndarray) -> float:
    """sum_t realized_t / sum_t optimal_t (welfare per step, `eval.optimum` units): the share of
    the attainable surplus the market realized over the episode. NaN if the optimum sums to <= 0
    or was not computed (NaN)."""
    o = np.asarray(optimal, dtype=np.float64)
    r = np.asarray(realized, dtype=np.float64)
    if o.size == 0 or np.isnan(o).any():
        return float("nan")
    total = float(o.sum())
    return float(r.sum() / total) if total > 0 else float("nan")


def price_volatility(price: np.ndarray) -> float:
    """Standard deviation (population, ddof=0) of the log returns log(p_t / p_{t-1}) of the
    clearing price over consecutive steps where both prices are positive. NaN with no return."""
    p = np.asarray(price, dtype=np.float64)
    if p.size < 2:
        return float("nan")
    a, b = p[:-1], p[1:]
    ok = (a > 0) & (b > 0) & np.isfinite(a) & np.isfinite(b)
    if not ok.any():
        return float("nan")
    return float(np.std(np.log(b[ok] / a[ok])))


def price_deviation(price: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Deviation of the price path from a reference path (the equilibrium): {"rmse":
    sqrt(mean (p_t - ref_t)^2), "mae": mean |p_t - ref_t|} over the steps where both are finite."""
    p = np.asarray(price, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    if p.shape != r.shape:
        raise ValueError(f"price has shape {p.shape}, reference {r.shape}; they must match (one value per step)")
    ok = np.isfinite(p) & np.isfinite(r)
    if not ok.any():
        return {"rmse": float("nan"), "mae": float("nan")}
    d = p[ok] - r[ok]
    return {"rmse": float(np.sqrt(np.mean(d * d))), "mae": float(np.mean(np.abs(d)))}


@dataclass
class ShockResponse:
    """Price response to the shocks of an episode (see `shock_response`); NaN when there is none."""

    n_shocks: int
    peak_deviation: float     # EUR/MWh, mean over shocks with a baseline
    peak_relative: float      # peak deviation / pre-shock mean
    recovery_steps: float     # mean over the shocks that recovered
    recovered_share: float    # share of shocks (with a baseline) whose price recovered within the episode
    shocks: list[dict[str, float]] = field(default_factory=list)


def shock_spans(shock: np.ndarray) -> list[tuple[int, int, int]]:
    """(start, end exclusive, kind) of every maximal run of steps with the same nonzero shock."""
    s = np.asarray(shock, dtype=np.int64)
    if s.size == 0:
        return []
    change = np.flatnonzero(np.diff(s) != 0) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [s.size]])
    return [(int(a), int(b), int(s[a])) for a, b in zip(starts, ends) if s[a] != 0]


def shock_response(price: np.ndarray, shock: np.ndarray, *, pre_window: int = 8, rel_band: float = 0.05,
                   std_band: float | None = None) -> ShockResponse:
    """Peak deviation and recovery time of the price around each shock.

    For a shock active over steps [s, e): the baseline is the mean price mu (and std sigma) over
    the `pre_window` steps before s (a shock at s = 0 has none and is skipped); the peak deviation
    is max over [s, e) of |p_t - mu| (EUR/MWh; relative: / mu); the band is rel_band * mu, or
    max(rel_band * mu, std_band * sigma) when `std_band` is given; the recovery time is the
    number of steps after the shock ends until the price first lies within the band of mu:
    min{j >= 0 : |p_{e+j} - mu| <= band} (0 if it is back by the shock's end), NaN and not
    recovered if it never is before the episode ends. The result averages over the shocks."""
    p = np.asarray(price, dtype=np.float64)
    if pre_window < 1:
        raise ValueError(f"pre_window = {pre_window!r}; allowed: an integer >= 1")
    per = []
    for s, e, kind in shock_spans(shock):
        if s == 0:
            continue
        base = p[max(0, s - pre_window):s]
        mu, sigma = float(base.mean()), float(base.std())
        dev = np.abs(p[s:e] - mu)
        band = rel_band * abs(mu) if std_band is None else max(rel_band * abs(mu), std_band * sigma)
        after = np.flatnonzero(np.abs(p[e:] - mu) <= band)
        rec = float(after[0]) if after.size else float("nan")
        per.append({"start": s, "end": e, "kind": kind, "baseline": mu, "peak_deviation": float(dev.max()),
                    "peak_relative": float(dev.max() / abs(mu)) if mu != 0 else float("nan"),
                    "recovery_steps": rec, "recovered": bool(after.size)})
    n_all = len(shock_spans(shock))
    if not per:
        return ShockResponse(n_all, float("nan"), float("nan"), float("nan"), float("nan"), per)
    rec = np.array([x["recovery_steps"] for x in per])
    return ShockResponse(
        n_all, float(np.mean([x["peak_deviation"] for x in per])), float(np.mean([x["peak_relative"] for x in per])),
        float(np.nanmean(rec)) if np.isfinite(rec).any() else float("nan"),
        float(np.mean([x["recovered"] for x in per])), per)


def payment_failure_rate(failed: np.ndarray, attempted: np.ndarray) -> float:
    """sum(failed payments) / sum(attempted trades): the share of agreed trades whose payment
    could not move anything through the channel (partial payments are not failures). NaN if none
    was attempted."""
    a = float(np.sum(attempted))
    return float(np.sum(failed) / a) if a > 0 else float("nan")


def open_channel_utilization(utilization: np.ndarray, is_open: np.ndarray) -> float:
    """Mean of the env's channel utilization (EMA of |flow| / capacity) over the open channels
    at one step; NaN with no open channel."""
    m = np.asarray(is_open, dtype=bool)
    return float(np.asarray(utilization)[m].mean()) if m.any() else float("nan")


def channel_utilization(per_step: np.ndarray) -> float:
    """Mean over steps of `open_channel_utilization` (NaN steps ignored)."""
    x = np.asarray(per_step, dtype=np.float64)
    return float(np.nanmean(x)) if np.isfinite(x).any() else float("nan")


def gini(x: np.ndarray) -> float:
    """Gini coefficient of profits over agents: sum_ij |x_i - x_j| / (2 n^2 mean|x|).

    The usual Gini when every x >= 0; normalizing by the mean absolute value keeps it in [0, 1]
    when some profits are negative (a loss-making store). 0 when all are equal (or all zero)."""
    v = np.sort(np.asarray(x, dtype=np.float64).ravel())
    n = v.size
    if n == 0:
        return float("nan")
    denom = 2.0 * n * np.abs(v).sum()  # 2 n^2 mean|x|
    if denom == 0:
        return 0.0
    i = np.arange(n)
    return float(2.0 * ((2 * i - n + 1) * v).sum() / denom)


# ---- recording an episode ------------------------------------------------------------------------

STEP_ARRAYS = ("t", "price", "ref_price", "shock", "volume", "supply", "demand", "attempted", "failed", "partial",
               "unserved", "curtailed", "grid_bought", "grid_sold", "needed", "utilization", "reward_welfare",
               "realized_welfare", "optimal_welfare")


@dataclass
class EpisodeRecord:
    """What `episode_metrics` needs, as arrays: steps[name] [T] and per-agent totals [N]."""

    steps: dict[str, np.ndarray]
    totals: dict[str, np.ndarray]      # every BREAKDOWN_FIELDS column summed over the episode [N]
    kind: np.ndarray                   # [N]
    policy_index: np.ndarray           # [N]
    policy_names: list[str]
    storage_value: Any = "reserve_limit"
    goods: tuple[str, ...] = ()        # further goods (certificates): steps[f"{good}_price"|"_volume"|"_ref_price"]

    @property
    def n_steps(self) -> int:
        return int(self.steps["t"].shape[0])


class EpisodeRecorder:
    """Records, after every step of a `MarketCore`, the per-step market numbers and per-agent
    totals the metrics need (O(N + E) a step), and the step's optimal welfare if `optimum`.

    Use `rec.step(actions)` in place of `core.step(actions)`, or pass the recorder as
    `run_episode(..., callback=rec)` (called as rec(core, previous_state)), or call
    `rec.record(previous_state)` after each `core.step`. The previous state (the one the step
    started from) gives the interval's shock, reference price and open channels."""

    def __init__(self, core: Any, *, optimum: bool = False, storage_value: Any = "reserve_limit",
                 optimum_kwargs: dict | None = None, policy_index: np.ndarray | None = None,
                 policy_names: list[str] | None = None) -> None:
        self.core = core
        self.optimum = bool(optimum)
        self.storage_value = storage_value
        self.optimum_kwargs = dict(optimum_kwargs or {})
        self.policy_index = policy_index
        self.policy_names = policy_names
        self._prev = None
        self._steps: dict[str, list] = {}
        self._totals: np.ndarray | None = None
        if core.state is not None:
            self.reset()

    def reset(self) -> None:
        """Start a new episode record (the core must have been reset)."""
        self._steps = {k: [] for k in STEP_ARRAYS}
        self._goods = tuple(self.core.scenario.goods[1:])   # per further good: price, reference price, volume
        for g in self._goods:
            self._steps.update({f"{g}_price": [], f"{g}_ref_price": [], f"{g}_volume": []})
        self._totals = np.zeros((self.core.n_agents, len(BREAKDOWN_FIELDS)))
        self._prev = self.core.state

    def step(self, actions: np.ndarray):
        """`core.step(actions)`, recorded; returns what `core.step` returns."""
        prev = self.core.state
        out = self.core.step(actions)
        self.record(prev)
        return out

    def __call__(self, core: Any, prev: Any) -> None:
        self.record(prev)

    def record(self, prev: Any = None) -> None:
        """Record the step just taken; `prev` is the state it started from (default: the state
        after the previous record, which misses a shock injected in between)."""
        core = self.core
        if prev is None:
            prev = self._prev
        if prev is not None and prev.t == 0 and core.state.t == 1:
            self.reset()  # a new episode (run_episode resets the core itself)
        if self._totals is None:
            self.reset()
        res, state = core.last_result, core.state
        st = res.settlement
        bd = st.breakdown
        active = prev.active if prev is not None else np.ones(core.n_agents, dtype=bool)
        s = self._steps
        s["t"].append(state.t - 1)
        s["price"].append(float(state.clearing_price[0]))
        s["ref_price"].append(float(prev.ref_price[0]) if prev is not None else float("nan"))
        s["shock"].append(int(prev.shock_kind) if prev is not None else 0)
        s["volume"].append(float(state.volume[0]))
        for g, name in enumerate(self._goods, start=1):
            s[f"{name}_price"].append(float(state.clearing_price[g]))
            s[f"{name}_ref_price"].append(float(prev.ref_price[g]) if prev is not None else float("nan"))
            s[f"{name}_volume"].append(float(state.volume[g]))
        s["supply"].append(float(state.supply[0]))
        s["demand"].append(float(state.demand_total[0]))
        s["attempted"].append(int(res.trades.qty.shape[0]))
        s["failed"].append(int(st.failed.sum()))
        s["partial"].append(int(st.partial.sum()))
        tot = bd.sum(axis=0)
        for k in ("unserved", "curtailed", "grid_bought", "grid_sold"):
            s[k].append(float(tot[_COL[k]]))
        s["needed"].append(float(res.needed[core.agents.is_consumer].sum()))
        s["utilization"].append(open_channel_utilization(state.utilization, state.open))
        s["reward_welfare"].append(float(np.where(active, bd[:, 0], 0.0).sum()))
        s["realized_welfare"].append(realized_from_breakdown(bd, core.agents, self.storage_value))
        if self.optimum:
            opt = optimal_welfare(core, prev, storage_value=self.storage_value, **self.optimum_kwargs)
            s["optimal_welfare"].append(opt.welfare)
        else:
            s["optimal_welfare"].append(float("nan"))
        self._totals += bd
        self._prev = state

    def result(self, episode: Any = None) -> EpisodeRecord:
        """The record; `episode` (a `run_episode` result) supplies the policy groups if the
        recorder was not given them."""
        n = self.core.n_agents
        if episode is not None and self.policy_index is None:
            self.policy_index, self.policy_names = episode.policy_index, list(episode.policy_names)
        steps = {k: np.asarray(v, dtype=np.int64 if k in ("t", "shock", "attempted", "failed", "partial")
                               else np.float64) for k, v in self._steps.items()}
        totals = {k: self._totals[:, i].copy() for i, k in enumerate(BREAKDOWN_FIELDS)} if self._totals is not None \
            else {k: np.zeros(n) for k in BREAKDOWN_FIELDS}
        pidx = np.zeros(n, dtype=np.int64) if self.policy_index is None else np.asarray(self.policy_index, dtype=np.int64)
        names = list(self.policy_names) if self.policy_names is not None else [str(g) for g in range(int(pidx.max()) + 1)]
        return EpisodeRecord(steps, totals, self.core.agents.kind.astype(np.int64).copy(), pidx, names,
                             self.storage_value, tuple(getattr(self, "_goods", ())))


def episode_metrics(rec: EpisodeRecord, equilibrium_price: np.ndarray | None = None, **shock_kwargs: Any) -> dict[str, Any]:
    """Every metric of one episode as a flat dict (numbers, plus the per-kind/per-policy dicts).

    equilibrium_price: the equilibrium path [T] of the same episode (e.g. `EquilibriumResult.price`),
    for the deviation metrics; NaN without it. `shock_kwargs` go to `shock_response`."""
    s = rec.steps
    profit = rec.totals["profit"]
    out: dict[str, Any] = {
        "steps": rec.n_steps,
        "welfare": float(s["reward_welfare"].sum()),
        "realized_welfare": float(s["realized_welfare"].sum()),
        "optimal_welfare": float(s["optimal_welfare"].sum()) if not np.isnan(s["optimal_welfare"]).any()
        else float("nan"),
        "efficiency": allocative_efficiency(s["realized_welfare"], s["optimal_welfare"]),
        "p2p_volume": float(s["volume"].sum()),
        "price_mean": float(s["price"].mean()) if rec.n_steps else float("nan"),
        "price_volatility": price_volatility(s["price"]),
        "unserved": float(s["unserved"].sum()),
        "curtailed": float(s["curtailed"].sum()),
        "unserved_share": float(s["unserved"].sum() / s["needed"].sum()) if s["needed"].sum() > 0 else float("nan"),
        "payment_failure_rate": payment_failure_rate(s["failed"], s["attempted"]),
        "channel_utilization": channel_utilization(s["utilization"]),
        "profit_gini": gini(profit),
    }
    if equilibrium_price is not None:
        eq = np.asarray(equilibrium_price, dtype=np.float64)[: rec.n_steps]
        dev = price_deviation(s["price"][: eq.shape[0]], eq)
    else:
        dev = {"rmse": float("nan"), "mae": float("nan")}
    out["eq_price_rmse"], out["eq_price_mae"] = dev["rmse"], dev["mae"]
    sr = shock_response(s["price"], s["shock"], **shock_kwargs)
    out.update(n_shocks=sr.n_shocks, shock_peak_deviation=sr.peak_deviation, shock_peak_relative=sr.peak_relative,
               shock_recovery_steps=sr.recovery_steps, shock_recovered_share=sr.recovered_share)
    for g in rec.goods:   # per further good: volume traded and its volume-weighted price
        vol = s[f"{g}_volume"]
        out[f"{g}_volume"] = float(vol.sum())
        out[f"{g}_price_mean"] = float((vol * s[f"{g}_price"]).sum() / vol.sum()) if vol.sum() > 0 else float("nan")
    out["profit_by_kind"] = profit_by_kind(profit, rec.kind)
    out["profit_by_policy"] = profit_by_group(profit, rec.policy_index, rec.policy_names)
    return out


__all__ = [
    "profit_by_group", "profit_by_kind", "allocative_efficiency", "price_volatility", "price_deviation",
    "ShockResponse", "shock_spans", "shock_response", "payment_failure_rate", "open_channel_utilization",
    "channel_utilization", "gini", "EpisodeRecord", "EpisodeRecorder", "episode_metrics", "STEP_ARRAYS",
]

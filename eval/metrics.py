"""Per-episode metrics from recorded arrays: what a tournament reports for every episode.

The metric definitions of the evaluation pipeline (settings -> jobs -> runs -> statistics ->
report): a leaf under it, used by the recorder of the run layer (`eval.recorder`) and by
`eval.statistics`, which computes `episode_metrics` from each run's `EpisodeRecord`. Every metric
is a plain function of arrays (testable on synthetic data, no env needed):

    m = episode_metrics(rec.result(), equilibrium_price=eq.price)   # rec: an eval.recorder.EpisodeRecorder

Step-indexed arrays are per market interval t: the price is the interval's clearing price (VWAP,
carried over from the previous interval when nothing traded), the shock the one active during
the interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..envs.state import KIND_NAMES

if TYPE_CHECKING:
    from .recorder import EpisodeRecord


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
    """`profit_by_group` over the registered agent kinds (`KIND_NAMES`, from `envs.kinds`)."""
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
    "channel_utilization", "gini", "episode_metrics",
]

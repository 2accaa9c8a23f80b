"""Price dynamics (mean field): the reference price every agent observes, per good.

    ref' = ref + kappa (level(hour) - ref) + gamma (vwap - ref) [if anything traded]
               + beta ref (D - S) / (D + S) + sigma ref clip(z, -b, b),   z ~ N(0, 1)

clipped to [feed-in tariff, retail tariff]. `level` is the time-of-day price shape (night
trough, morning shoulder, evening peak, midday solar dip) around the base price. Agents see
these aggregates, never each other, so observation and clearing stay O(N + E).
"""

from __future__ import annotations

import numpy as np

from .scenario import Scenario

try:   # np.clip's own ufunc, without np.clip's Python wrappers (a step calls it on [M, G] arrays)
    from numpy._core.umath import clip as _clip
except ImportError:   # pragma: no cover - numpy < 2
    from numpy.core.umath import clip as _clip

PRICE_HISTORY = 24  # steps kept in MarketState.price_history


def time_of_day_level(sc: Scenario, hour: float) -> float:
    """EUR/MWh the price reverts to at this hour."""
    shape = (
        0.85
        + 0.20 * np.exp(-0.5 * ((hour - 8.0) / 1.5) ** 2)
        + 0.45 * np.exp(-0.5 * ((hour - 19.0) / 2.0) ** 2)
        - 0.20 * np.exp(-0.5 * ((hour - 13.0) / 2.0) ** 2)
    )
    x = float(sc.base_price * shape)   # clipped as np.clip clips (max, then min), without its wrappers
    lo, hi = float(sc.feed_in_tariff), float(sc.retail_tariff)
    x = x if x > lo else lo
    return x if x < hi else hi


def time_of_day_levels(sc: Scenario, hours: np.ndarray) -> np.ndarray:
    """`time_of_day_level` of an array of hours (one per market of a batch), elementwise the same."""
    hour = np.asarray(hours, dtype=np.float64)
    shape = (
        0.85
        + 0.20 * np.exp(-0.5 * ((hour - 8.0) / 1.5) ** 2)
        + 0.45 * np.exp(-0.5 * ((hour - 19.0) / 2.0) ** 2)
        - 0.20 * np.exp(-0.5 * ((hour - 13.0) / 2.0) ** 2)
    )
    return np.clip(sc.base_price * shape, sc.feed_in_tariff, sc.retail_tariff)


def imbalance(supply: np.ndarray, demand: np.ndarray) -> np.ndarray:
    """(D - S) / (D + S) per good, 0 where nothing is offered or wanted."""
    tot = supply + demand
    return np.divide(demand - supply, tot, out=np.zeros_like(tot), where=tot > 0)   # no 0/0 computed


def vwap(trade_good: np.ndarray, qty: np.ndarray, price: np.ndarray, n_goods: int,
         previous: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(volume-weighted clearing price, volume) per good; the previous price where nothing traded."""
    # float64 even with no trades (NumPy's bincount of an empty array is int64 whatever the weights)
    volume = np.bincount(trade_good, weights=qty, minlength=n_goods).astype(np.float64, copy=False)
    value = np.bincount(trade_good, weights=qty * price, minlength=n_goods).astype(np.float64, copy=False)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(volume > 0, value / volume, previous)
    return p, volume


def good_levels(sc: Scenario, goods, energy_level: float, t: int) -> tuple[np.ndarray, tuple]:
    """(level [G], (low [G], high [G])) of a market with several goods (goods.GoodSpec)."""
    from .clock import hour_of_day

    hour = hour_of_day(sc, t)
    level = np.array([energy_level] + [g.level(sc, hour) for g in goods[1:]], dtype=np.float64)
    lo, hi = zip(*(g.price_bounds(sc) for g in goods))
    return level, (np.array(lo, dtype=np.float64), np.array(hi, dtype=np.float64))


def next_ref_price(sc: Scenario, ref: np.ndarray, level: "float | np.ndarray", clearing: np.ndarray,
                   volume: np.ndarray, imb: np.ndarray, rng: np.random.Generator,
                   bounds: "tuple | None" = None) -> np.ndarray:
    """One mean-field step of the reference price; draws G standard normals. `level` and `bounds`
    ((low [G], high [G])) are per good in a market with several goods; energy's bounds are the tariffs."""
    return ref_price_update(sc, ref, level, clearing, volume, imb, rng.standard_normal(ref.shape[0]), bounds)


def ref_price_update(sc: Scenario, ref: np.ndarray, level: "float | np.ndarray", clearing: np.ndarray,
                     volume: np.ndarray, imb: np.ndarray, z: np.ndarray, bounds: "tuple | None" = None) -> np.ndarray:
    """The reference-price rule given the standard normals `z` (any shape broadcasting with `ref`,
    e.g. [G] for one market or [M, G] for a batch, each market drawing its own)."""
    z = _clip(z, -sc.volatility_bound, sc.volatility_bound)
    new = (
        ref
        + sc.price_reversion * (level - ref)
        + np.where(volume > 0, sc.price_vwap_weight * (clearing - ref), 0.0)
        + sc.price_imbalance_gain * ref * imb
        + sc.price_volatility * ref * z
    )
    if bounds is not None:
        return _clip(new, bounds[0], bounds[1])
    return _clip(new, sc.feed_in_tariff, sc.retail_tariff)

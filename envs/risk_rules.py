"""The MASER risk-factor rules as pure vectorized functions, shared by every economy.

Krolikowski, Kopys and Jedruch (2016): offer price from a cost floor plus a risk-dependent
margin with regular-customer rates, repeated offers after an accept / reject, stock pressure,
the purchase IF-chain, regular-customer points and the advertising factor. The energy market's
negotiator (`policies.risk_factor.RiskFactor`, which documents the rules paper section by
section) and the supply-chain economy's own agents (`envs.supply_chain.protocol`) both call
these; they live under `envs` because a market uses them (`policies` re-exports them).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

# purchase decision codes, in the order of the paper's IF chain
NOT_INTERESTING, CANNOT_AFFORD, FIRST, BARGAIN, WAIT, ACCEPT = range(6)
DECISION_NAMES = ("not_interesting", "cannot_afford", "first", "bargain", "wait", "accept")
# outcome of the last offer sent to a partner
REJECTED, NO_OFFER, ACCEPTED = -1, 0, 1


@dataclass(frozen=True)
class RiskParams:
    """Parameters of the risk-factor negotiator (shares are of the reserve-to-retail room)."""

    r_range: tuple[float, float] = (0.1, 0.9)
    margin_base: float = 0.3        # margin share at r = 0
    margin_risk: float = 0.4        # extra margin share per unit of r
    regular_discount: float = 0.5   # largest relative margin cut for a fully regular customer (r = 0)
    regular_r_max: float = 0.5      # agents with r >= this give no preferential rates
    points_half: float = 50.0       # EUR of points at which a customer counts as half regular
    points_decay: float = 0.1       # share of the average transaction value lost per idle step
    price_step: float = 0.05        # share of the room moved after an accept / reject
    reversion: float = 0.2          # pull of a repeated price toward the current first-contact price
    pressure_weight: float = 0.5    # margin cut at full stock pressure
    accept_r: float = 0.5           # r up to which a buyer accepts a dearer offer (no pressure)
    accept_pressure: float = 0.4    # how far full stock pressure raises that threshold
    min_affordable: float = 0.05    # share of its need a buyer must be able to pay to consider buying
    advertising: float = 0.8        # probability of re-sending an offer to a partner already offered to

    def __post_init__(self) -> None:
        lo, hi = self.r_range
        if not (0.0 <= lo <= hi <= 1.0):
            raise ValueError(f"RiskParams.r_range = {self.r_range!r}; allowed: 0 <= low <= high <= 1")
        for f in fields(self):
            if f.name == "r_range":
                continue
            v = getattr(self, f.name)
            if not (isinstance(v, (int, float)) and np.isfinite(v) and v >= 0):
                raise ValueError(f"RiskParams.{f.name} = {v!r}; allowed: a finite number >= 0")
        for name in ("advertising", "min_affordable", "regular_discount", "pressure_weight", "reversion"):
            if getattr(self, name) > 1.0:
                raise ValueError(f"RiskParams.{name} = {getattr(self, name)!r}; allowed: [0, 1]")
        if self.regular_r_max <= 0 or self.points_half <= 0:
            raise ValueError("RiskParams.regular_r_max and points_half must be > 0")


# ---- the rules, as pure vectorized functions --------------------------------------------------

def regular_share(points: np.ndarray, p: RiskParams) -> np.ndarray:
    """How regular a customer is, in [0, 1): points / (points + points_half)."""
    return regular_rule(points, p.points_half, np.maximum)


def preferential_discount(r: np.ndarray, p: RiskParams) -> np.ndarray:
    """Relative margin cut a fully regular customer gets: regular_discount at r = 0, falling
    linearly to 0 at r = regular_r_max and above (high-r agents give no preferential rates)."""
    return discount_rule(np.asarray(r), p.regular_discount, p.regular_r_max, np.clip)


def margin_share(r: np.ndarray, regular: np.ndarray, p: RiskParams) -> np.ndarray:
    """Retail margin as a share of the reserve-to-retail room: grows with r, shrinks for
    regular customers of low-r agents."""
    return margin_rule(r, regular, preferential_discount(r, p), p.margin_base, p.margin_risk, np.clip)


def first_contact_price(floor: np.ndarray, ceiling: float, r: np.ndarray, regular: np.ndarray,
                        p: RiskParams) -> np.ndarray:
    """Cost-covering floor plus the retail margin."""
    return first_contact_rule(floor, ceiling, margin_share(r, regular, p), np.maximum)


def repeat_price(last: np.ndarray, first_now: np.ndarray, outcome: np.ndarray, r: np.ndarray,
                 pressure: np.ndarray, floor: np.ndarray, ceiling: float, p: RiskParams) -> np.ndarray:
    """List price on a repeated contact: from the last price offered to that partner, toward
    the current first-contact price, up after an accepted offer (more for risk-takers, not
    under stock pressure), down after a rejected one (more for restrained or pressured agents)."""
    return repeat_rule(last, first_now, outcome, r, pressure, floor, ceiling, p.reversion, p.price_step, np.where,
                       np.maximum, np.clip)


def pressured_price(list_price: np.ndarray, floor: np.ndarray, pressure: np.ndarray, p: RiskParams) -> np.ndarray:
    """Price actually sent: the margin over the floor cut by stock pressure."""
    return pressured_rule(list_price, floor, pressure, p.pressure_weight, np.clip)


def is_restrained(r: np.ndarray, pressure: np.ndarray, p: RiskParams) -> np.ndarray:
    """A buyer accepts a dearer-than-last offer when r <= accept_r + accept_pressure * pressure."""
    return restrained_rule(np.asarray(r), pressure, p.accept_r, p.accept_pressure, np.clip)


def purchase_decision(interesting: np.ndarray, can_afford: np.ndarray, first: np.ndarray, price: np.ndarray,
                      last_paid: np.ndarray, r: np.ndarray, pressure: np.ndarray, p: RiskParams) -> np.ndarray:
    """The paper's IF chain for an offer at `price`, vectorized; returns decision codes
    (NOT_INTERESTING, CANNOT_AFFORD, FIRST, BARGAIN, WAIT, ACCEPT). Buy iff code in
    (FIRST, BARGAIN, ACCEPT)."""
    last_paid = np.asarray(last_paid, dtype=np.float64)
    code = decision_rule(np.asarray(interesting), np.asarray(can_afford), np.asarray(first), np.asarray(price),
                         last_paid, is_restrained(r, pressure, p), np.where, np.isnan, np.logical_not)
    return np.asarray(code).astype(np.int64)


# ---- the rules written once: array ops (np.where, np.clip, ...) or their scalar forms -----------
# Each `*_rule` takes its operations as arguments (and the values of the rules it builds on), so the
# NumPy functions above and the compiled per-offer loops of the supply chain (`scalar_where`,
# `scalar_clip`, ...) run the same expression and give the same numbers bit for bit.

def regular_rule(points, points_half, maximum):
    """points / (points + points_half), points at least 0."""
    points = maximum(points, 0.0)
    return points / (points + points_half)


def discount_rule(r, regular_discount, regular_r_max, clip):
    """`preferential_discount`."""
    return regular_discount * clip(1.0 - r / regular_r_max, 0.0, 1.0)


def margin_rule(r, regular, discount, margin_base, margin_risk, clip):
    """`margin_share`, given the preferential `discount` (`discount_rule`)."""
    return clip((margin_base + margin_risk * r) * (1.0 - discount * regular), 0.0, 1.0)


def first_contact_rule(floor, ceiling, margin, maximum):
    """`first_contact_price`, given the `margin` share (`margin_rule`)."""
    return floor + margin * maximum(ceiling - floor, 0.0)


def repeat_rule(last, first_now, outcome, r, pressure, floor, ceiling, reversion, price_step, where, maximum, clip):
    """`repeat_price`."""
    room = maximum(ceiling - floor, 0.0)
    price = last + reversion * (first_now - last)
    up = price_step * r * (1.0 - pressure) * room
    down = price_step * (1.0 - r) * (1.0 + pressure) * room
    price = price + where(outcome == ACCEPTED, up, 0.0) - where(outcome == REJECTED, down, 0.0)
    return clip(price, floor, maximum(floor, ceiling))


def pressured_rule(list_price, floor, pressure, pressure_weight, clip):
    """`pressured_price`."""
    return floor + (list_price - floor) * (1.0 - pressure_weight * clip(pressure, 0.0, 1.0))


def restrained_rule(r, pressure, accept_r, accept_pressure, clip):
    """`is_restrained`."""
    return r <= accept_r + accept_pressure * clip(pressure, 0.0, 1.0)


def decision_rule(interesting, can_afford, first, price, last_paid, restrained, where, isnan, not_):
    """`purchase_decision`, given whether the buyer is restrained (`restrained_rule`): the first
    condition of the chain that holds gives the code."""
    no_price = isnan(last_paid)
    first = first | no_price              # no price known yet counts as a first transaction
    bargain = price <= where(no_price, -np.inf, last_paid)
    return where(not_(interesting), NOT_INTERESTING, where(not_(can_afford), CANNOT_AFFORD, where(
        first, FIRST, where(bargain, BARGAIN, where(not_(restrained), WAIT, ACCEPT)))))


def buys(decision: np.ndarray) -> np.ndarray:
    return (decision == FIRST) | (decision == BARGAIN) | (decision == ACCEPT)


def acceptance_threshold(first: np.ndarray, last_paid: np.ndarray, r: np.ndarray, pressure: np.ndarray,
                         limit: np.ndarray, p: RiskParams) -> np.ndarray:
    """Highest price an interested, solvent buyer accepts: its limit on a first transaction or
    when restrained, else the last price it paid (it waits for a bargain). For every price q,
    `purchase_decision(..., q, ...)` buys iff q <= this threshold."""
    accept_all = np.asarray(first) | is_restrained(r, pressure, p) | np.isnan(last_paid)
    return np.where(accept_all, limit, np.minimum(np.nan_to_num(last_paid, nan=0.0), limit))


def decay_rule(points, n_trades, value_sum, t_first, t_last, r, idle, rate, where, maximum):
    """The points-decay rule, written once for arrays and for scalars: `where`/`maximum` are
    np.where/np.maximum (`decay_points`) or their scalar forms (`scalar_where`, `scalar_maximum`:
    the compiled slot loop of the supply chain), so both give the same numbers bit for bit."""
    avg_value = where(n_trades > 0, value_sum / maximum(n_trades, 1), 0.0)
    avg_gap = where(n_trades > 1, (t_last - t_first) / maximum(n_trades - 1, 1), 1.0)
    dec = rate * avg_value * (0.5 + r) / maximum(avg_gap, 1.0)
    return where(idle, maximum(points - dec, 0.0), points)


def scalar_where(cond, x, y):
    """np.where for one element (numba's subset)."""
    return x if cond else y


def scalar_maximum(a, b):
    """np.maximum for one element, NaN propagating like it, the second of two equal (signed) zeros (numba's subset)."""
    return a if (a > b or a != a) else b


def scalar_minimum(a, b):
    """np.minimum for one element, NaN propagating like it (numba's subset)."""
    return a if (a < b or a != a) else b


def scalar_clip(x, lo, hi):
    """np.clip(x, lo, hi) for one element and number bounds, signed zeros as NumPy's (numba's subset)."""
    m = x if (x >= lo or x != x) else lo
    return m if (m <= hi or m != m) else hi


def scalar_clip_to(x, lo, hi):
    """np.clip(x, lo, hi) for one element of array bounds (NumPy's other loop: signed zeros differ)."""
    m = x if (x > lo or x != x) else lo
    return m if (m < hi or m != m) else hi


def scalar_isnan(x):
    return x != x


def scalar_not(x):
    return not x


def decay_points(points: np.ndarray, n_trades: np.ndarray, value_sum: np.ndarray, t_first: np.ndarray,
                 t_last: np.ndarray, r: np.ndarray, idle: np.ndarray, p: RiskParams) -> np.ndarray:
    """Points after one step: unchanged where a transaction happened (`idle` False), else
    minus decay * average value * (0.5 + r) / average steps between transactions (`decay_rule`)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return decay_rule(points, n_trades, value_sum, t_first, t_last, r, idle, p.points_decay, np.where,
                          np.maximum)


def advertise(offered: np.ndarray, eligible: np.ndarray, draws: np.ndarray, factor: float) -> np.ndarray:
    """Which eligible partners get an offer: every one not offered to yet, and an already
    offered one with probability `factor` (`draws` uniform in [0, 1))."""
    return eligible & (~offered | (draws < factor))


__all__ = [
    "RiskParams", "purchase_decision", "acceptance_threshold", "first_contact_price", "repeat_price",
    "pressured_price", "margin_share", "preferential_discount", "regular_share", "decay_points", "decay_rule",
    "scalar_where", "scalar_maximum", "scalar_minimum", "scalar_clip", "scalar_clip_to", "scalar_isnan", "scalar_not",
    "advertise",
    "regular_rule", "discount_rule", "margin_rule", "first_contact_rule", "repeat_rule", "pressured_rule",
    "restrained_rule", "decision_rule",
    "is_restrained", "buys", "NOT_INTERESTING", "CANNOT_AFFORD", "FIRST", "BARGAIN", "WAIT", "ACCEPT",
    "DECISION_NAMES", "ACCEPTED", "REJECTED", "NO_OFFER",
]

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
    points = np.maximum(points, 0.0)
    return points / (points + p.points_half)


def preferential_discount(r: np.ndarray, p: RiskParams) -> np.ndarray:
    """Relative margin cut a fully regular customer gets: regular_discount at r = 0, falling
    linearly to 0 at r = regular_r_max and above (high-r agents give no preferential rates)."""
    return p.regular_discount * np.clip(1.0 - np.asarray(r) / p.regular_r_max, 0.0, 1.0)


def margin_share(r: np.ndarray, regular: np.ndarray, p: RiskParams) -> np.ndarray:
    """Retail margin as a share of the reserve-to-retail room: grows with r, shrinks for
    regular customers of low-r agents."""
    return np.clip((p.margin_base + p.margin_risk * r) * (1.0 - preferential_discount(r, p) * regular), 0.0, 1.0)


def first_contact_price(floor: np.ndarray, ceiling: float, r: np.ndarray, regular: np.ndarray,
                        p: RiskParams) -> np.ndarray:
    """Cost-covering floor plus the retail margin."""
    return floor + margin_share(r, regular, p) * np.maximum(ceiling - floor, 0.0)


def repeat_price(last: np.ndarray, first_now: np.ndarray, outcome: np.ndarray, r: np.ndarray,
                 pressure: np.ndarray, floor: np.ndarray, ceiling: float, p: RiskParams) -> np.ndarray:
    """List price on a repeated contact: from the last price offered to that partner, toward
    the current first-contact price, up after an accepted offer (more for risk-takers, not
    under stock pressure), down after a rejected one (more for restrained or pressured agents)."""
    room = np.maximum(ceiling - floor, 0.0)
    price = last + p.reversion * (first_now - last)
    up = p.price_step * r * (1.0 - pressure) * room
    down = p.price_step * (1.0 - r) * (1.0 + pressure) * room
    price = price + np.where(outcome == ACCEPTED, up, 0.0) - np.where(outcome == REJECTED, down, 0.0)
    return np.clip(price, floor, np.maximum(floor, ceiling))


def pressured_price(list_price: np.ndarray, floor: np.ndarray, pressure: np.ndarray, p: RiskParams) -> np.ndarray:
    """Price actually sent: the margin over the floor cut by stock pressure."""
    return floor + (list_price - floor) * (1.0 - p.pressure_weight * np.clip(pressure, 0.0, 1.0))


def is_restrained(r: np.ndarray, pressure: np.ndarray, p: RiskParams) -> np.ndarray:
    """A buyer accepts a dearer-than-last offer when r <= accept_r + accept_pressure * pressure."""
    return np.asarray(r) <= p.accept_r + p.accept_pressure * np.clip(pressure, 0.0, 1.0)


def purchase_decision(interesting: np.ndarray, can_afford: np.ndarray, first: np.ndarray, price: np.ndarray,
                      last_paid: np.ndarray, r: np.ndarray, pressure: np.ndarray, p: RiskParams) -> np.ndarray:
    """The paper's IF chain for an offer at `price`, vectorized; returns decision codes
    (NOT_INTERESTING, CANNOT_AFFORD, FIRST, BARGAIN, WAIT, ACCEPT). Buy iff code in
    (FIRST, BARGAIN, ACCEPT)."""
    last_paid = np.asarray(last_paid, dtype=np.float64)
    # no price known yet counts as a first transaction ("no knowledge about prices")
    first = np.asarray(first) | np.isnan(last_paid)
    bargain = np.asarray(price) <= np.where(np.isnan(last_paid), -np.inf, last_paid)
    restrained = is_restrained(r, pressure, p)
    return np.select(
        [~np.asarray(interesting), ~np.asarray(can_afford), first, bargain, ~restrained],
        [NOT_INTERESTING, CANNOT_AFFORD, FIRST, BARGAIN, WAIT],
        default=ACCEPT,
    ).astype(np.int64)


def buys(decision: np.ndarray) -> np.ndarray:
    return (decision == FIRST) | (decision == BARGAIN) | (decision == ACCEPT)


def acceptance_threshold(first: np.ndarray, last_paid: np.ndarray, r: np.ndarray, pressure: np.ndarray,
                         limit: np.ndarray, p: RiskParams) -> np.ndarray:
    """Highest price an interested, solvent buyer accepts: its limit on a first transaction or
    when restrained, else the last price it paid (it waits for a bargain). For every price q,
    `purchase_decision(..., q, ...)` buys iff q <= this threshold."""
    accept_all = np.asarray(first) | is_restrained(r, pressure, p) | np.isnan(last_paid)
    return np.where(accept_all, limit, np.minimum(np.nan_to_num(last_paid, nan=0.0), limit))


def decay_points(points: np.ndarray, n_trades: np.ndarray, value_sum: np.ndarray, t_first: np.ndarray,
                 t_last: np.ndarray, r: np.ndarray, idle: np.ndarray, p: RiskParams) -> np.ndarray:
    """Points after one step: unchanged where a transaction happened (`idle` False), else
    minus decay * average value * (0.5 + r) / average steps between transactions."""
    with np.errstate(divide="ignore", invalid="ignore"):
        avg_value = np.where(n_trades > 0, value_sum / np.maximum(n_trades, 1), 0.0)
        avg_gap = np.where(n_trades > 1, (t_last - t_first) / np.maximum(n_trades - 1, 1), 1.0)
    dec = p.points_decay * avg_value * (0.5 + r) / np.maximum(avg_gap, 1.0)
    return np.where(idle, np.maximum(points - dec, 0.0), points)


def advertise(offered: np.ndarray, eligible: np.ndarray, draws: np.ndarray, factor: float) -> np.ndarray:
    """Which eligible partners get an offer: every one not offered to yet, and an already
    offered one with probability `factor` (`draws` uniform in [0, 1))."""
    return eligible & (~offered | (draws < factor))


__all__ = [
    "RiskParams", "purchase_decision", "acceptance_threshold", "first_contact_price", "repeat_price",
    "pressured_price", "margin_share", "preferential_discount", "regular_share", "decay_points", "advertise",
    "is_restrained", "buys", "NOT_INTERESTING", "CANNOT_AFFORD", "FIRST", "BARGAIN", "WAIT", "ACCEPT",
    "DECISION_NAMES", "ACCEPTED", "REJECTED", "NO_OFFER",
]

"""Electric vehicles (a depot fleet per agent): a battery that leaves and returns on a daily schedule.

Each agent draws a departure and a return hour (`ev_departure`, `ev_return`), a battery size,
a round-trip efficiency, the energy one trip uses (`ev_trip_share` of the battery) and the
charge it must hold when it leaves (`ev_target_share` of the battery; a trip never uses more
than the target). Interval t is *away* when its start hour lies in [departure, return)
(wrapping midnight); otherwise the fleet is *parked*.

- Parked, it trades like a store: it buys up to its headroom, and sells back (vehicle-to-grid)
  only what lies above its target charge. Away, it can neither sell nor buy.
- Departure (booked after the trades of the last parked interval): a charge below the target is
  topped up from the grid at the retail tariff (`grid_bought`, the hard need of a buyer that has
  to leave; energy enters at the one-way efficiency, no power limit: a depot fast charger), then
  the trip's energy leaves the battery. Missing the target therefore costs retail instead of
  the peer-to-peer price; nothing else is penalised and a trip has no booked value.
- Like a store, its charge gained or lost since reset is valued at the episode's end.

Energy per step: soc' = soc + eff (bought + grid_bought) - sold / eff - trip (at departure).
"""

from __future__ import annotations

import numpy as np

from ..clock import hour_of_day
from .base import Count, Draw, KindSpec, Param, Role
from .storage import store_tradable

DEPART, RETURN, TRIP, TARGET = "ev_departure_hour", "ev_return_hour", "ev_trip_energy", "ev_target_charge"


def derive(sc, sl, cols) -> None:
    ex, cap = cols["extra"], cols["capacity"][sl]
    from . import EXTRA_INDEX as X

    round_trip = cols["efficiency"][sl].copy()
    cols["efficiency"][sl] = np.sqrt(round_trip)
    cols["power"][sl] = cap * sc.ev_c_rate
    cols["reserve"][sl] = sc.feed_in_tariff
    cols["limit"][sl] = sc.retail_tariff * round_trip
    cols["initial_soc"][sl] = 0.5 * cap
    ex[sl, X[TARGET]] = ex[sl, X[TARGET]] * cap                       # drawn as shares of the battery
    ex[sl, X[TRIP]] = np.minimum(ex[sl, X[TRIP]] * cap, ex[sl, X[TARGET]])


def away(sc, agents, sl, t) -> np.ndarray:
    """[block] bool: the fleet is on the road during interval t."""
    h = hour_of_day(sc, t)
    dep = agents.extra_column(DEPART)[sl]
    ret = agents.extra_column(RETURN)[sl]
    return (h - dep) % 24.0 < (ret - dep) % 24.0


def tradable(sc, sl, agents, state, t, fs, fd, sellable, needed) -> None:
    target = agents.extra_column(TARGET)[sl]
    store_tradable(sc, sl, agents, state.soc, sellable, needed, np.minimum(target, state.soc[sl]))
    gone = away(sc, agents, sl, t)
    sellable[sl] = np.where(gone, 0.0, sellable[sl])
    needed[sl] = np.where(gone, 0.0, needed[sl])


def book(sc, sl, agents, t, active, soc, wallet, breakdown) -> float:
    """Departures after interval t: top up to the target from the grid at retail, then drive."""
    from ..breakdown import BREAKDOWN_FIELDS as F

    leaving = active[sl] & ~away(sc, agents, sl, t) & away(sc, agents, sl, t + 1)
    if not leaving.any():
        return 0.0
    idx = np.flatnonzero(leaving) + sl.start
    eff = agents.efficiency[idx]
    target = agents.extra_column(TARGET)[idx]
    short = np.maximum(target - soc[idx], 0.0)
    grid_q = short / eff
    cost = grid_q * sc.retail_tariff
    soc[idx] = np.maximum(soc[idx] + short - agents.extra_column(TRIP)[idx], 0.0)
    wallet[idx] -= cost
    bd = breakdown
    bd[idx, F.index("grid_bought")] += grid_q
    bd[idx, F.index("cost")] += cost
    bd[idx, F.index("profit")] -= cost
    return float(cost.sum())


def advise(core, idx, direction) -> np.ndarray:
    """Baselines' side for a parked fleet: buy while under its target charge, else the generic
    store rule; nothing while away."""
    ag, st = core.agents, core.state
    target = ag.extra_column(TARGET)[idx]
    gone = away(core.scenario, ag, slice(0, ag.n), st.t)[idx]
    return np.where(gone, 0, np.where(st.soc[idx] < target, -1, direction)).astype(np.int64)


SPEC = KindSpec(
    name="ev", order=4, role=Role.BOTH, sells=("energy",), buys=("energy",), stores=True, optional=True,
    counts=(Count("n_ev", 0),),
    params=(
        Param("ev_battery", (1.0, 4.0), 1e-9, 1e9, doc="MWh per fleet"),
        Param("ev_c_rate", 0.5, 1e-6, 100.0, "num", "MW per MWh, depot chargers"),
        Param("ev_efficiency", (0.88, 0.95), 1e-6, 1.0, doc="round trip"),
        Param("ev_departure", (6.0, 9.0), 0.0, 24.0, doc="h, the fleet leaves"),
        Param("ev_return", (16.0, 20.0), 0.0, 24.0, doc="h, the fleet is back"),
        Param("ev_trip_share", (0.2, 0.5), 0.0, 1.0, doc="share of the battery one trip uses"),
        Param("ev_target_share", (0.7, 0.9), 0.0, 1.0, doc="share of the battery to hold at departure"),
    ),
    draws=(Draw(0, "ev_battery", "capacity"), Draw(1, "ev_efficiency", "efficiency"),
           Draw(3, "ev_departure", DEPART), Draw(3, "ev_return", RETURN), Draw(3, "ev_trip_share", TRIP),
           Draw(3, "ev_target_share", TARGET)),
    extra=(DEPART, RETURN, TRIP, TARGET),
    presets={"energy_ev": dict(base="energy_default", n_ev=20, n_storage=5)},
    derive=derive, tradable=tradable, book=book, advise=advise,
)

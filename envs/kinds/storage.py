"""Batteries: charge and discharge limited by power, state of charge and one-way efficiency.

A store asks at least the feed-in tariff and bids at most retail x round-trip efficiency; it
starts the day half full, and its charge gained or lost since reset is valued at the episode's
end (settlement.add_storage_value)."""

from __future__ import annotations

import numpy as np

from .. import kernels
from .base import Count, Draw, KindSpec, Param, Role, grid


def derive(sc, sl, cols) -> None:
    round_trip = cols["efficiency"][sl].copy()   # drawn round trip, turned into one-way here
    cols["efficiency"][sl] = np.sqrt(round_trip)
    cols["power"][sl] = cols["capacity"][sl] * sc.storage_c_rate
    cols["reserve"][sl] = sc.feed_in_tariff
    cols["limit"][sl] = sc.retail_tariff * round_trip
    cols["initial_soc"][sl] = 0.5 * cols["capacity"][sl]


def store_tradable(sc, sl, agents, soc, sellable, needed, floor=0.0) -> None:
    """A store delivers min(power dt, (soc - floor) eff) and absorbs min(power dt, (capacity - soc) / eff)."""
    dt = sc.step_hours
    eff, pw = agents.efficiency[sl], agents.power[sl] * dt
    s = soc[sl] if floor is None else soc[sl] - floor
    sellable[sl] = np.minimum(pw, s * eff)
    needed[sl] = np.maximum(np.minimum(pw, (agents.capacity[sl] - soc[sl]) / eff), 0.0)


def tradable(sc, sl, agents, state, t, fs, fd, sellable, needed) -> None:
    """`store_tradable` without a floor, compiled (`kernels.store_limits`)."""
    kernels.store_limits(sellable=grid(sellable), needed=grid(needed), start=sl.start, stop=sl.stop,
                         efficiency=grid(agents.efficiency), power=grid(agents.power), capacity=grid(agents.capacity),
                         soc=grid(state.soc), dt=float(sc.step_hours))


SPEC = KindSpec(
    name="storage", order=2, role=Role.BOTH, sells=("energy",), buys=("energy",), stores=True,
    counts=(Count("n_storage", 10),),
    params=(
        Param("storage_energy", (2.0, 8.0), 1e-9, 1e9, doc="MWh"),
        Param("storage_c_rate", 0.5, 1e-6, 100.0, "num", "MW per MWh"),
        Param("storage_efficiency", (0.85, 0.95), 1e-6, 1.0, doc="round trip"),
    ),
    draws=(Draw(0, "storage_energy", "capacity"), Draw(1, "storage_efficiency", "efficiency")),
    derive=derive, tradable=tradable,
)

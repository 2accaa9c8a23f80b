"""Consumers: residential double peak (morning, evening) and industrial daytime plateau, with
multiplicative noise; what they do not buy peer-to-peer comes from the grid at retail."""

from __future__ import annotations

import numpy as np

from ..clock import hour_of_day
from .. import kernels
from .base import Count, Draw, KindSpec, Param, Profile, Role, grid, per_market


def residential_shape(hour: float) -> float:
    """Residential load as a multiple of base: night floor, morning and evening peaks."""
    return 0.45 + 0.45 * np.exp(-0.5 * ((hour - 7.5) / 1.3) ** 2) + 0.75 * np.exp(-0.5 * ((hour - 19.0) / 2.0) ** 2)


def industrial_shape(hour: float) -> float:
    """Industrial load as a multiple of base: a daytime plateau between 7h and 18h."""
    rise = 1.0 / (1.0 + np.exp(-(hour - 7.0) * 2.0))
    fall = 1.0 / (1.0 + np.exp((hour - 18.0) * 2.0))
    return 0.3 + 0.8 * rise * fall


def derive(sc, sl, cols) -> None:
    cols["limit"][sl] = sc.retail_tariff
    cols["grid_limit"][sl] = sc.grid_import_share * cols["capacity"][sl] * sc.step_hours


def energy(sc, sl, t, arrays, agents, rng) -> None:
    """Demand of interval t; one normal (load noise) per consumer."""
    hour = hour_of_day(sc, t + 0.5)
    noise = np.exp(sc.load_noise * rng.standard_normal(sl.stop - sl.start) - 0.5 * sc.load_noise**2)
    demand = grid(arrays["demand"])   # capacity x (residential or industrial shape) x noise x step hours
    m = demand.shape[0]
    kernels.load_output(out=demand, start=sl.start, stop=sl.stop, capacity=grid(agents.capacity),
                        residential=grid(agents.is_residential), res_share=per_market(residential_shape(hour), m),
                        ind_share=per_market(industrial_shape(hour), m), noise=grid(noise), dt=float(sc.step_hours))


SPEC = KindSpec(
    name="consumer", order=3, role=Role.BUYER, buys=("energy", "rec"), grid_import=True,
    counts=(Count("n_residential", 35, Profile.RESIDENTIAL), Count("n_industrial", 15, Profile.INDUSTRIAL)),
    params=(
        Param("residential_load", (0.5, 2.0), 1e-9, 1e9, doc="MW base"),
        Param("industrial_load", (2.0, 6.0), 1e-9, 1e9, doc="MW base"),
        Param("load_noise", 0.05, 0.0, 1.0, "num", "relative std of demand noise"),
    ),
    draws=(Draw(0, "residential_load", "capacity", Profile.RESIDENTIAL),
           Draw(0, "industrial_load", "capacity", Profile.INDUSTRIAL)),
    derive=derive, energy=energy,
)

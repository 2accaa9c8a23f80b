"""Wind turbines: speed an AR(1) per site through a turbine power curve."""

from __future__ import annotations

import numpy as np

from .base import Count, Draw, KindSpec, Param, Role
from .solar import _clip, derive  # same static parameters as a solar farm: reserve = marginal cost, grid export

# Wind turbine power curve (m/s).
CUT_IN = 3.0
RATED_SPEED = 12.0
CUT_OUT = 25.0


def wind_power_curve(speed: np.ndarray) -> np.ndarray:
    """Fraction of rated power: cubic between cut-in and rated speed, flat to cut-out, then off."""
    frac = _clip((speed**3 - CUT_IN**3) / (RATED_SPEED**3 - CUT_IN**3), 0.0, 1.0)
    return np.where(speed >= CUT_OUT, 0.0, frac)


def init_state(sc, n, arrays, rng) -> None:
    arrays["wind_speed"] = np.maximum(0.0, sc.wind_mean + sc.wind_noise * 2.0 * rng.standard_normal(n))


def weather(sc, sl, arrays, rng) -> None:
    z = rng.standard_normal(sl.stop - sl.start)
    w, phi = arrays["wind_speed"], sc.wind_persistence
    w[sl] = np.maximum(0.0, phi * w[sl] + (1.0 - phi) * sc.wind_mean + sc.wind_noise * z)


def energy(sc, sl, t, arrays, agents, rng) -> None:
    arrays["generation"][sl] = agents.capacity[sl] * wind_power_curve(arrays["wind_speed"][sl]) * sc.step_hours


SPEC = KindSpec(
    name="wind", order=1, role=Role.SELLER, sells=("energy", "rec"), generator=True, grid_export=True,
    counts=(Count("n_wind", 15),),
    params=(
        Param("wind_capacity", (3.0, 8.0), 1e-9, 1e9, doc="MW rated"),
        Param("wind_cost", (2.0, 8.0), 0.0, 1e6, doc="EUR/MWh marginal"),
        Param("wind_persistence", 0.9, 0.0, 1.0, "num", "AR(1) coefficient of wind speed"),
        Param("wind_mean", 8.0, 0.0, 100.0, "num", "m/s"),
        Param("wind_noise", 1.0, 0.0, 100.0, "num", "m/s"),
    ),
    draws=(Draw(0, "wind_capacity", "capacity"), Draw(2, "wind_cost", "marginal_cost")),
    derive=derive, init_state=init_state, weather=weather, energy=energy,
)

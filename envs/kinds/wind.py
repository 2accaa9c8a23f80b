"""Wind turbines: speed an AR(1) per site through a turbine power curve."""

from __future__ import annotations

import numpy as np

from .. import kernels
from .base import Count, Draw, KindSpec, Param, Role, grid
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
    """Wind speed's AR(1) step: max(0, phi w + (1 - phi) mean + noise z), one normal per site."""
    z = rng.standard_normal(sl.stop - sl.start)
    phi = float(sc.wind_persistence)
    kernels.ar1_clip(x=grid(arrays["wind_speed"]), start=sl.start, stop=sl.stop, phi=phi,
                     drift=(1.0 - phi) * sc.wind_mean, noise=float(sc.wind_noise), z=grid(z), lo=0.0, hi=np.inf)


def energy(sc, sl, t, arrays, agents, rng) -> None:
    """capacity x `wind_power_curve` of the speed x step hours (the cube by NumPy, the rest compiled)."""
    speed = grid(arrays["wind_speed"])[:, sl.start:sl.stop]
    kernels.wind_output(out=grid(arrays["generation"]), start=sl.start, stop=sl.stop, capacity=grid(agents.capacity),
                        speed=speed, cubed=speed**3, cut_in3=CUT_IN**3, span3=RATED_SPEED**3 - CUT_IN**3,
                        cut_out=CUT_OUT, dt=float(sc.step_hours))


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

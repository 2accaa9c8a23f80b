"""Solar farms: a bell curve over the day times (1 - cloud cover), cloud cover an AR(1) per site."""

from __future__ import annotations

import numpy as np

from ..clock import hour_of_day
from .. import kernels
from .base import Count, Draw, KindSpec, Param, Role, grid, per_market

try:   # np.clip's own ufunc, without np.clip's Python wrappers (called every step)
    from numpy._core.umath import clip as _clip
except ImportError:   # pragma: no cover - numpy < 2
    from numpy.core.umath import clip as _clip

SOLAR_NOON = 12.0   # h
SOLAR_WIDTH = 2.8   # h, std of the bell
SUNRISE, SUNSET = 5.0, 19.0


def solar_shape(hour: float) -> float:
    """Clear-sky output as a fraction of peak: a bell around noon, zero at night (elementwise for an
    array of hours: markets of a batch on different clocks)."""
    if not isinstance(hour, (float, int)) and np.ndim(hour):   # a float (the usual case) skips np.ndim
        h = np.asarray(hour, dtype=np.float64)
        return np.where((h <= SUNRISE) | (h >= SUNSET), 0.0, np.exp(-0.5 * ((h - SOLAR_NOON) / SOLAR_WIDTH) ** 2))
    if hour <= SUNRISE or hour >= SUNSET:
        return 0.0
    return float(np.exp(-0.5 * ((hour - SOLAR_NOON) / SOLAR_WIDTH) ** 2))


def derive(sc, sl, cols) -> None:
    cols["reserve"][sl] = cols["marginal_cost"][sl]
    cols["grid_limit"][sl] = sc.grid_export_share * cols["capacity"][sl] * sc.step_hours


def init_state(sc, n, arrays, rng) -> None:
    # one draw per agent of the market (not only the solar sites), as recorded trajectories have it
    arrays["cloud"] = np.clip(sc.cloud_mean + sc.cloud_noise * rng.standard_normal(n), 0.0, 1.0)


def weather(sc, sl, arrays, rng) -> None:
    """Cloud cover's AR(1) step: clip(phi c + (1 - phi) mean + noise z, 0, 1), one normal per site."""
    z = rng.standard_normal(sl.stop - sl.start)
    phi = float(sc.cloud_persistence)
    kernels.ar1_clip(x=grid(arrays["cloud"]), start=sl.start, stop=sl.stop, phi=phi,
                     drift=(1.0 - phi) * sc.cloud_mean, noise=float(sc.cloud_noise), z=grid(z), lo=0.0, hi=1.0)


def energy(sc, sl, t, arrays, agents, rng) -> None:
    """capacity x clear-sky shape of the mid-interval hour x (1 - cloud cover) x step hours."""
    hour = hour_of_day(sc, t + 0.5)  # mid-interval
    gen = grid(arrays["generation"])
    kernels.solar_output(out=gen, start=sl.start, stop=sl.stop, capacity=grid(agents.capacity),
                         share=per_market(solar_shape(hour), gen.shape[0]),
                         cloud=grid(arrays["cloud"])[:, sl.start:sl.stop], dt=float(sc.step_hours))


SPEC = KindSpec(
    name="solar", order=0, role=Role.SELLER, sells=("energy", "rec"), generator=True, grid_export=True,
    counts=(Count("n_solar", 25),),
    params=(
        Param("solar_capacity", (3.0, 10.0), 1e-9, 1e9, doc="MW peak"),
        Param("solar_cost", (0.0, 5.0), 0.0, 1e6, doc="EUR/MWh marginal"),
        Param("cloud_persistence", 0.9, 0.0, 1.0, "num", "AR(1) coefficient of cloud cover"),
        Param("cloud_mean", 0.3, 0.0, 1.0, "num"),
        Param("cloud_noise", 0.08, 0.0, 10.0, "num"),
    ),
    draws=(Draw(0, "solar_capacity", "capacity"), Draw(2, "solar_cost", "marginal_cost")),
    derive=derive, init_state=init_state, weather=weather, energy=energy,
)

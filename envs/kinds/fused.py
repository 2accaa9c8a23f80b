"""The built-in kinds' weather and energy hooks as two compiled passes over every block.

A step runs each kind's `weather` hook (solar cloud cover, wind speed), then each `energy` hook (solar
and wind generation, consumers' demand), a Python call and a small kernel each. When every block of a
market's agents uses exactly the hooks of `solar`, `wind` and `consumer` (or none, as storage), the
same arithmetic runs as `kernels.kind_weather` and `kernels.kind_energy`: the same normals in the same
columns (the weather hooks' draws first, in block order, then the energy hooks'), NumPy's own cube of
the wind speed and exponential of the load noise (its SIMD builds round them unlike libm), and each
kind kernel's operations in its order, so generation, demand and the weather are bit for bit the
hooks'. A custom kind, or a built-in kind given other hooks, makes the step run the hooks (`plan` is
None): the hook design stays the declaration.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import kernels
from ..clock import hour_of_day
from . import consumer, solar, wind
from .base import per_market

# (weather hook, energy hook) of each built-in kind the passes stand for, and its code in the block tables
_CODES = {(solar.weather, solar.energy): kernels.KIND_SOLAR, (wind.weather, wind.energy): kernels.KIND_WIND,
          (None, consumer.energy): kernels.KIND_CONSUMER}
_DRAWS_IN_WEATHER = (kernels.KIND_SOLAR, kernels.KIND_WIND)


class Plan(NamedTuple):
    weather: np.ndarray   # [B, 4] int64: code, start, stop, first column in the step's normals
    energy: np.ndarray    # [B, 4] int64: code, start, stop, 0
    normals: int          # normals the hooks draw in a step (the columns after the price noise)
    wind: "tuple[int, int] | None"       # the wind block (start, stop), whose speed NumPy cubes
    consumer: "tuple[int, int, int] | None"   # the consumer block (start, stop, first normal column)


def plan(blocks) -> "Plan | None":
    """The block tables of `blocks` ((spec, slice) in registry order, `AgentParams.blocks`), or None
    when some block has hooks the passes do not stand for (a custom kind) or a built-in kind's hooks
    appear in two blocks."""
    rows = []
    for spec, sl in blocks:
        hooks = (spec.weather, spec.energy)
        if hooks == (None, None):
            continue
        code = _CODES.get(hooks)
        if code is None or any(r[0] == code for r in rows):
            return None
        rows.append([code, sl.start, sl.stop, 0])
    col = 0
    weather = []
    for r in rows:   # the weather hooks draw first, in block order
        if r[0] in _DRAWS_IN_WEATHER:
            weather.append([r[0], r[1], r[2], col])
            col += r[2] - r[1]
    wind_block = consumer_block = None
    for r in rows:   # then the energy hooks: the consumers' load noise
        if r[0] == kernels.KIND_CONSUMER:
            consumer_block = (r[1], r[2], col)
            col += r[2] - r[1]
        elif r[0] == kernels.KIND_WIND:
            wind_block = (r[1], r[2])
    table = lambda x: np.array(x, dtype=np.int64).reshape(-1, 4)
    return Plan(table(weather), table(rows), col, wind_block, consumer_block)


_SHAPES: dict = {}


def _shapes(sc, t) -> tuple:
    """(solar, residential, industrial) clear-sky and load shapes of step t's mid-interval hour, as the
    hooks compute them (cached per scenario and hour of day when t is one step)."""
    if isinstance(t, int):
        hour = hour_of_day(sc, t + 0.5)
        key = (id(sc), hour)
        hit = _SHAPES.get(key)
        if hit is None or hit[0] is not sc:
            if len(_SHAPES) > 4096:
                _SHAPES.clear()
            hit = _SHAPES[key] = (sc, (solar.solar_shape(hour), consumer.residential_shape(hour),
                                       consumer.industrial_shape(hour)))
        return hit[1]
    hour = hour_of_day(sc, t + 0.5)
    return solar.solar_shape(hour), consumer.residential_shape(hour), consumer.industrial_shape(hour)


def interval(sc, p: Plan, agents, cloud: np.ndarray, wind_speed: np.ndarray, t, z: np.ndarray, first: int):
    """(cloud, wind speed, generation, demand) [M, N] of step t (an int, or [M, 1] per market's clock): the
    weather one step on from `cloud` and `wind_speed` [M, N] (not modified) and the energy of the built-in
    kinds (`agents` the [M, N] grid parameters), from the normals `z` [M, K] from column `first` on."""
    c_phi, w_phi = float(sc.cloud_persistence), float(sc.wind_persistence)
    cloud, wind_speed = kernels.kind_weather(
        cloud=cloud, wind=wind_speed, blocks=p.weather, z=z, first=first, cloud_phi=c_phi,
        cloud_drift=(1.0 - c_phi) * sc.cloud_mean, cloud_noise=float(sc.cloud_noise), wind_phi=w_phi,
        wind_drift=(1.0 - w_phi) * sc.wind_mean, wind_noise=float(sc.wind_noise))
    m = cloud.shape[0]
    cubed = load_noise = _NONE
    if p.wind is not None:   # NumPy's power, on the view the wind hook cubes
        cubed = wind_speed[:, p.wind[0]:p.wind[1]] ** 3
    if p.consumer is not None:   # NumPy's exponential, of the expression the consumer hook computes
        c0 = first + p.consumer[2]
        zz = z[:, c0:c0 + p.consumer[1] - p.consumer[0]]
        load_noise = np.exp(sc.load_noise * zz - 0.5 * sc.load_noise**2)
    s_share, r_share, i_share = _shapes(sc, t)
    generation, demand = kernels.kind_energy(
        blocks=p.energy, capacity=agents.capacity, residential=agents.is_residential, cloud=cloud, speed=wind_speed,
        cubed=cubed, load_noise=load_noise, solar_share=per_market(s_share, m), res_share=per_market(r_share, m),
        ind_share=per_market(i_share, m), cut_in3=wind.CUT_IN**3, span3=wind.RATED_SPEED**3 - wind.CUT_IN**3,
        cut_out=wind.CUT_OUT, dt=float(sc.step_hours))
    return cloud, wind_speed, generation, demand


_NONE = np.zeros((1, 0))


__all__ = ["Plan", "plan", "interval"]

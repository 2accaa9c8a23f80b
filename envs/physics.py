"""Physics: who can generate, consume and store how much in each interval.

Solar: a bell curve over the day times (1 - cloud cover), cloud cover an AR(1) per site.
Wind: speed an AR(1) per site through a turbine power curve. Demand: residential double peak
(morning, evening), industrial daytime plateau, with multiplicative noise. Storage: charge and
discharge limited by power, state of charge and one-way efficiency. Shocks multiply the result.
"""

from __future__ import annotations

import numpy as np

from .scenario import Scenario
from .shocks import DEMAND_FACTOR, SUPPLY_FACTOR
from .state import AgentParams, Kind, NO_GOOD, Profile

ENERGY = 0  # index of the energy good

# Wind turbine power curve (m/s).
CUT_IN = 3.0
RATED_SPEED = 12.0
CUT_OUT = 25.0

SOLAR_NOON = 12.0   # h
SOLAR_WIDTH = 2.8   # h, std of the bell
SUNRISE, SUNSET = 5.0, 19.0


def hour_of_day(sc: Scenario, t: int) -> float:
    return (sc.start_hour + t * sc.step_hours) % 24.0


def solar_shape(hour: float) -> float:
    """Clear-sky output as a fraction of peak: a bell around noon, zero at night."""
    if hour <= SUNRISE or hour >= SUNSET:
        return 0.0
    return float(np.exp(-0.5 * ((hour - SOLAR_NOON) / SOLAR_WIDTH) ** 2))


def wind_power_curve(speed: np.ndarray) -> np.ndarray:
    """Fraction of rated power: cubic between cut-in and rated speed, flat to cut-out, then off."""
    frac = np.clip((speed**3 - CUT_IN**3) / (RATED_SPEED**3 - CUT_IN**3), 0.0, 1.0)
    return np.where(speed >= CUT_OUT, 0.0, frac)


def residential_shape(hour: float) -> float:
    """Residential load as a multiple of base: night floor, morning and evening peaks."""
    return 0.45 + 0.45 * np.exp(-0.5 * ((hour - 7.5) / 1.3) ** 2) + 0.75 * np.exp(-0.5 * ((hour - 19.0) / 2.0) ** 2)


def industrial_shape(hour: float) -> float:
    """Industrial load as a multiple of base: a daytime plateau between 7h and 18h."""
    rise = 1.0 / (1.0 + np.exp(-(hour - 7.0) * 2.0))
    fall = 1.0 / (1.0 + np.exp((hour - 18.0) * 2.0))
    return 0.3 + 0.8 * rise * fall


def sample_agents(sc: Scenario, rng: np.random.Generator) -> AgentParams:
    """Draw the per-agent parameters of a scenario; kinds are laid out in blocks
    solar, wind, storage, consumers (residential then industrial)."""
    n = sc.n_agents
    counts = [sc.n_solar, sc.n_wind, sc.n_storage, sc.n_consumers]
    kind = np.repeat(np.arange(4, dtype=np.int8), counts)
    profile = np.zeros(n, dtype=np.int8)
    c0 = sc.n_solar + sc.n_wind + sc.n_storage
    profile[c0 : c0 + sc.n_residential] = Profile.RESIDENTIAL
    profile[c0 + sc.n_residential :] = Profile.INDUSTRIAL

    def draw(rng_pair: tuple[float, float], mask: np.ndarray) -> np.ndarray:
        out = np.zeros(n)
        out[mask] = rng.uniform(rng_pair[0], rng_pair[1], size=int(mask.sum()))
        return out

    solar = kind == Kind.SOLAR
    wind = kind == Kind.WIND
    storage = kind == Kind.STORAGE
    consumer = kind == Kind.CONSUMER
    res = profile == Profile.RESIDENTIAL
    ind = profile == Profile.INDUSTRIAL

    capacity = draw(sc.solar_capacity, solar) + draw(sc.wind_capacity, wind) + draw(sc.storage_energy, storage)
    capacity += draw(sc.residential_load, res) + draw(sc.industrial_load, ind)
    round_trip = draw(sc.storage_efficiency, storage)
    efficiency = np.where(storage, np.sqrt(np.where(storage, round_trip, 1.0)), 1.0)
    power = np.where(storage, capacity * sc.storage_c_rate, 0.0)
    marginal_cost = draw(sc.solar_cost, solar) + draw(sc.wind_cost, wind)

    reserve = np.where(storage, sc.feed_in_tariff, marginal_cost)
    reserve = np.where(consumer, 0.0, reserve)
    limit = np.where(consumer, sc.retail_tariff, 0.0)
    limit = np.where(storage, sc.retail_tariff * round_trip, limit)

    dt = sc.step_hours
    grid_limit = np.where(solar | wind, sc.grid_export_share * capacity * dt, 0.0)
    grid_limit = np.where(consumer, sc.grid_import_share * capacity * dt, grid_limit)

    sells_good = np.where(consumer, NO_GOOD, ENERGY).astype(np.int8)
    buys_good = np.where(storage | consumer, ENERGY, NO_GOOD).astype(np.int8)
    xy = rng.random((n, 2))  # positions, for economies with space; the draw keeps the channel stream as it is
    return AgentParams(
        kind=kind, profile=profile, capacity=capacity, power=power, efficiency=efficiency,
        marginal_cost=marginal_cost, reserve=reserve, limit=limit, grid_limit=grid_limit,
        sells_good=sells_good, buys_good=buys_good, xy=xy,
        initial_soc=np.where(storage, 0.5 * capacity, 0.0),
    )


def initial_weather(sc: Scenario, agents: AgentParams, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Cloud cover and wind speed at reset, drawn around their means."""
    n = agents.n
    cloud = np.clip(sc.cloud_mean + sc.cloud_noise * rng.standard_normal(n), 0.0, 1.0)
    wind_speed = np.maximum(0.0, sc.wind_mean + sc.wind_noise * 2.0 * rng.standard_normal(n))
    return cloud, wind_speed


def advance_weather(sc: Scenario, agents: AgentParams, cloud: np.ndarray, wind_speed: np.ndarray,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One AR(1) step of cloud cover (clipped to [0, 1]) at the solar sites and wind speed
    (non-negative) at the wind sites; draws one normal per solar site, then one per wind site."""
    sol, wnd = agents.solar_idx, agents.wind_idx
    z_cloud = rng.standard_normal(sol.shape[0])
    z_wind = rng.standard_normal(wnd.shape[0])
    phi_c, phi_w = sc.cloud_persistence, sc.wind_persistence
    cloud = cloud.copy()
    wind_speed = wind_speed.copy()
    cloud[sol] = np.clip(phi_c * cloud[sol] + (1.0 - phi_c) * sc.cloud_mean + sc.cloud_noise * z_cloud, 0.0, 1.0)
    wind_speed[wnd] = np.maximum(0.0, phi_w * wind_speed[wnd] + (1.0 - phi_w) * sc.wind_mean + sc.wind_noise * z_wind)
    return cloud, wind_speed


def interval_energy(sc: Scenario, agents: AgentParams, t: int, cloud: np.ndarray, wind_speed: np.ndarray,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Generation and demand (MWh, before shocks) of every agent in interval `t`; draws one
    normal (load noise) per consumer."""
    hour = hour_of_day(sc, t + 0.5)  # mid-interval
    dt = sc.step_hours
    gen = np.where(agents.is_solar, agents.capacity * solar_shape(hour) * (1.0 - cloud), 0.0)
    gen = np.where(agents.is_wind, agents.capacity * wind_power_curve(wind_speed), gen) * dt
    cons = agents.consumer_idx
    shape = np.where(agents.is_residential[cons], residential_shape(hour), industrial_shape(hour))
    noise = np.exp(sc.load_noise * rng.standard_normal(cons.shape[0]) - 0.5 * sc.load_noise**2)
    dem = np.zeros(agents.n)
    dem[cons] = agents.capacity[cons] * shape * noise * dt
    return gen, dem


def shock_factors(shock_kind: int) -> tuple[float, float]:
    """(supply multiplier, demand multiplier) of a shock."""
    return float(SUPPLY_FACTOR[shock_kind]), float(DEMAND_FACTOR[shock_kind])


def tradable(sc: Scenario, agents: AgentParams, generation: np.ndarray, demand: np.ndarray,
             soc: np.ndarray, shock_kind: int) -> tuple[np.ndarray, np.ndarray]:
    """Energy each agent could sell and needs (or could absorb) this interval, MWh.

    Generators sell their (shocked) generation; consumers need their (shocked) demand; storage
    could sell its deliverable charge and absorb up to its headroom, both within its power limit.
    """
    fs, fd = shock_factors(shock_kind)
    dt = sc.step_hours
    eff = agents.efficiency
    storage = agents.is_storage
    can_discharge = np.minimum(agents.power * dt, soc * eff)
    can_charge = np.minimum(agents.power * dt, (agents.capacity - soc) / eff)
    sellable = np.where(storage, can_discharge, generation * fs)
    needed = np.where(storage, np.maximum(can_charge, 0.0), demand * fd)
    return sellable, needed

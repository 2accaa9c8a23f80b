"""The step pipeline: pure functions over (scenario, agent parameters, state, actions).

offers -> clearing -> settlement -> price dynamics -> channel lifecycle -> next interval's
weather, demand and shock -> observations. `market_step` returns a new `MarketState`; the old
one is not modified (its generators advance). Every random draw comes from the state's two
generators, both spawned from the episode seed: `rng` (channels) and `rng_exo` (weather, load,
price noise, shocks).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from . import channels, kernels, physics, prices
from .breakdown import BREAKDOWN_FIELDS
from .clearing import clear
from .observations import agent_scale, observe, static_columns
from .offers import Offers, decode
from .scenario import Scenario
from .settlement import Settlement, add_storage_value, settle
from .shocks import Shock, advance_shock
from .goods import scenario_goods
from .state import AgentParams, MarketState
from .trades import Trades

UTILIZATION_DECAY = 0.9  # EMA weight of past channel utilization


class StepResult(NamedTuple):
    offers: Offers
    trades: Trades
    settlement: Settlement
    sellable: np.ndarray      # [N] MWh this interval
    needed: np.ndarray        # [N]
    n_opened: int
    n_closed: int
    liquidity: tuple          # (degree, outbound, inbound) [N] of the new state, for its observation
    goods: Any = None         # goods_trading.GoodsResult in markets with more than one good, else None


def initial_state(sc: Scenario, seed: Any) -> tuple[AgentParams, MarketState]:
    """Agents and the state of interval 0, all drawn from one generator seeded with `seed`."""
    rng, rng_exo = spawn_generators(seed)
    agents = physics.sample_agents(sc, rng)
    n, e = sc.n_agents, sc.n_channels
    u, v = channels.build_graph(n, e, rng)
    capacity = channels.draw_capacity(sc, e, rng)
    balance_u, _ = channels.funding(capacity, sc.initial_split)
    cloud, wind_speed = physics.initial_weather(sc, agents, rng_exo)
    generation, demand = physics.interval_energy(sc, agents, 0, cloud, wind_speed, rng_exo)
    shock_kind, shock_remaining = advance_shock(0, 0, 0, sc.shock_schedule, sc.shock_rate, sc.shock_duration, rng_exo)
    level = prices.time_of_day_level(sc, physics.hour_of_day(sc, 0))
    goods = scenario_goods(sc)
    g = len(goods)
    ref = np.array([level] + [spec.level(sc, physics.hour_of_day(sc, 0)) for spec in goods[1:]], dtype=np.float64)
    soc = agents.initial_soc.copy()
    zeros = np.zeros(n)
    state = MarketState(
        active=np.ones(n, dtype=bool), soc=soc, wallet=np.full(n, float(sc.initial_wallet)),
        cloud=cloud, wind_speed=wind_speed, generation=generation, demand=demand,
        last_sold=zeros, last_bought=zeros, last_profit=zeros,
        u=u, v=v, capacity=capacity, balance_u=balance_u, open=np.ones(e, dtype=bool),
        flow=np.zeros(e), utilization=np.zeros(e), topology_version=0,
        ref_price=ref, clearing_price=ref.copy(), price_history=np.repeat(ref[None, :], 2, axis=0),
        supply=np.zeros(g), demand_total=np.zeros(g), volume=np.zeros(g),
        holdings=np.zeros((n, g)), owed=np.zeros((n, g)), issued=np.zeros(g), retired=np.zeros(g),
        shock_kind=shock_kind, shock_remaining=shock_remaining, t=0, fee_sink=0.0, grid_account=0.0,
        rng=rng, rng_exo=rng_exo,
    )
    return agents, state


def spawn_generators(seed: Any) -> tuple[np.random.Generator, np.random.Generator]:
    """(channel generator, exogenous generator), independent streams of one seed."""
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    a, b = ss.spawn(2)
    return np.random.Generator(np.random.PCG64(a)), np.random.Generator(np.random.PCG64(b))


def current_tradable(sc: Scenario, agents: AgentParams, state: MarketState) -> tuple[np.ndarray, np.ndarray]:
    s, d = physics.tradable(sc, agents, state)
    return np.where(state.active, s, 0.0), np.where(state.active, d, 0.0)


def market_step(sc: Scenario, agents: AgentParams, state: MarketState, actions: np.ndarray,
                tradable: "tuple[np.ndarray, np.ndarray] | None" = None) -> tuple[MarketState, StepResult]:
    """Advance one interval. `actions` must already be validated: float64 [N, 4] in [-1, 1].
    `tradable` may pass `current_tradable(sc, agents, state)` when the caller already has it.

    One market is the M = 1 case of the batched pipeline (`envs.batch.batch_step`): the same code
    steps one market or hundreds."""
    from .batch import step_one

    new, res = step_one(sc, agents, state, actions, tradable)
    goods = res.goods[0] if res.goods is not None else None
    return new, StepResult(res.offers, res.trades, res.settlement, res.sellable, res.needed, int(res.n_opened[0]),
                           int(res.n_closed[0]), res.liquidity, goods)


def observation(sc: Scenario, agents: AgentParams, state: MarketState, static: np.ndarray,
                scale: np.ndarray, tradable: "tuple[np.ndarray, np.ndarray] | None" = None,
                liquidity: "tuple | None" = None) -> np.ndarray:
    """obs [N, O] of `state`; `tradable` and `liquidity` may pass what the caller already computed
    for this very state (`current_tradable`, `StepResult.liquidity`)."""
    sellable, needed = tradable if tradable is not None else current_tradable(sc, agents, state)
    if liquidity is None:
        liquidity = channels.liquidity(agents.n, state.u, state.v, state.capacity, state.balance_u, state.open)
    degree, outbound, inbound = liquidity
    hour = physics.hour_of_day(sc, state.t)
    level = prices.time_of_day_level(sc, hour)
    return observe(sc, agents, static, scale, state, sellable, needed, degree, outbound, inbound, level, hour)


def summary(sc: Scenario, state: MarketState, result: StepResult | None) -> dict[str, Any]:
    """The market at a glance (plain Python numbers): what a dashboard or a log line shows."""
    out: dict[str, Any] = {
        "t": state.t,
        "hour": physics.hour_of_day(sc, state.t),
        "ref_price": float(state.ref_price[0]),
        "clearing_price": float(state.clearing_price[0]),
        "volume": float(state.volume[0]),
        "supply": float(state.supply[0]),
        "demand": float(state.demand_total[0]),
        "active_channels": int(state.open.sum()),
        "shock": Shock(state.shock_kind).name,
        "shock_remaining": int(state.shock_remaining),
    }
    for g, name in enumerate(sc.goods[1:], start=1):   # further goods (certificates), per good
        out.update({f"{name}_ref_price": float(state.ref_price[g]), f"{name}_clearing_price": float(state.clearing_price[g]),
                    f"{name}_volume": float(state.volume[g]), f"{name}_supply": float(state.supply[g]),
                    f"{name}_demand": float(state.demand_total[g]), f"{name}_held": float(state.holdings[:, g].sum()),
                    f"{name}_owed": float(state.owed[:, g].sum()), f"{name}_issued": float(state.issued[g]),
                    f"{name}_retired": float(state.retired[g])})
    if result is None:
        out.update(trades=0, negotiations=0, failed_payments=0, partial_payments=0, channels_opened=0,
                   channels_closed=0, grid_bought=0.0, grid_sold=0.0, unserved=0.0, curtailed=0.0, welfare=0.0)
        return out
    st = result.settlement
    col = {name: i for i, name in enumerate(BREAKDOWN_FIELDS)}
    bd = np.ones(st.breakdown.shape[0]) @ st.breakdown  # column sums (a matrix-vector product is ~7x faster)
    out.update(
        trades=int((st.paid_qty > 0).sum()),
        negotiations=int(result.trades.negotiations),
        failed_payments=int(st.failed.sum()),
        partial_payments=int(st.partial.sum()),
        channels_opened=int(result.n_opened),
        channels_closed=int(result.n_closed),
        grid_bought=float(bd[col["grid_bought"]]),
        grid_sold=float(bd[col["grid_sold"]]),
        unserved=float(bd[col["unserved"]]),
        curtailed=float(bd[col["curtailed"]]),
        welfare=float(bd[col["profit"]]),
    )
    return out


__all__ = ["initial_state", "market_step", "observation", "summary", "StepResult", "static_columns", "agent_scale"]

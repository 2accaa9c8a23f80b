"""The step pipeline: pure functions over (scenario, agent parameters, state, actions).

offers -> clearing -> settlement -> price dynamics -> channel lifecycle -> next interval's
weather, demand and shock -> observations. `market_step` returns a new `MarketState`; the old
one is not modified (its generators advance). Every random draw comes from the state's two
generators, both spawned from the episode seed: `rng` (channels) and `rng_exo` (weather, load,
price noise, shocks).

With the payment layer on (`Scenario.payments_on`, envs/payments) the step is offers -> clearing
(direct and routed pairs) -> faults -> payments (direct, then routed HTLC-style) -> grid booking
-> background payments -> force-closes of the faults -> rebalancing -> splicing -> lifecycle.
Its draws, in order: `rng_exo` N uniforms for agent faults (agent_fault_rate > 0), E uniforms for
channel faults (channel_fault_rate > 0), 3N for background payments (send, receive, amount),
before the step's weather draws; `rng` two uniform arrays (fee base, fee rate) for the channels
reopened by the lifecycle, after its draws (routing fees on). Routes, rebalancing and splicing
draw nothing.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from . import batch, channels, physics, prices, topology
from .breakdown import BREAKDOWN_FIELDS
from .observations import agent_scale, static_columns
from .offers import Offers
from .scenario import Scenario
from .settlement import Settlement
from .shocks import Shock, advance_shock
from .goods import scenario_goods
from .payments.fees import draw_fees
from .payments.layer import summary_fields
from .payments.reasons import FAILURE_NAMES
from .state import AgentParams, MarketState, flow_columns_zero
from .sums import column_sums
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
    graph = topology.build(sc, agents, rng)   # `random`: the legacy draws, unchanged
    u, v = graph.u, graph.v
    capacity = channels.draw_capacity(sc, e, rng)
    if graph.capacity is not None:   # a file's relative capacities, around the range's mean
        capacity = graph.capacity * 0.5 * (sc.channel_capacity[0] + sc.channel_capacity[1])
    capacity = channels.size_capacity(sc, agents, u, v, capacity)
    balance_u, _ = channels.funding(capacity, sc.initial_split)
    fee_base, fee_rate = draw_fees(sc, e, rng)
    if graph.fee_base is not None and sc.routing_fees_on:   # a describegraph file's own fee policies
        fee_base = graph.fee_base.mean(axis=1) * capacity / graph.capacity
        fee_rate = graph.fee_rate_ppm.mean(axis=1) * 1e-6
    cloud, wind_speed = physics.initial_weather(sc, agents, rng_exo)
    generation, demand = physics.interval_energy(sc, agents, 0, cloud, wind_speed, rng_exo)
    shock_kind, shock_remaining = advance_shock(0, 0, 0, sc.shock_schedule, sc.shock_rate, sc.shock_duration, rng_exo)
    level = prices.time_of_day_level(sc, physics.hour_of_day(sc, 0))
    goods = scenario_goods(sc)
    g = len(goods)
    ref = np.array([level] + [spec.level(sc, physics.hour_of_day(sc, 0)) for spec in goods[1:]], dtype=np.float64)
    soc = agents.initial_soc.copy()
    zeros = np.zeros(n)
    flow_cols, flow_reopened = flow_columns_zero(e)
    state = MarketState(
        active=np.ones(n, dtype=bool), soc=soc, wallet=np.full(n, float(sc.initial_wallet)),
        cloud=cloud, wind_speed=wind_speed, generation=generation, demand=demand,
        last_sold=zeros, last_bought=zeros, last_profit=zeros,
        u=u, v=v, capacity=capacity, balance_u=balance_u, open=graph.open,
        flow=np.zeros(e), utilization=np.zeros(e), topology_version=0,
        fee_base=fee_base, fee_rate=fee_rate,
        ref_price=ref, clearing_price=ref.copy(), price_history=np.repeat(ref[None, :], 2, axis=0),
        supply=np.zeros(g), demand_total=np.zeros(g), volume=np.zeros(g),
        holdings=np.zeros((n, g)), owed=np.zeros((n, g)), issued=np.zeros(g), retired=np.zeros(g),
        shock_kind=shock_kind, shock_remaining=shock_remaining, t=0, fee_sink=0.0, grid_account=0.0,
        energy_account=np.zeros(n), partner=np.full(n, -1, dtype=np.int32), partner_value=np.zeros(n),
        flow_columns=flow_cols, flow_reopened=flow_reopened,
        rng=rng, rng_exo=rng_exo,
    )
    return agents, state


def spawn_generators(seed: Any) -> tuple[np.random.Generator, np.random.Generator]:
    """(channel generator, exogenous generator), independent streams of one seed."""
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    a, b = ss.spawn(2)
    return np.random.Generator(np.random.PCG64(a)), np.random.Generator(np.random.PCG64(b))


def current_tradable(sc: Scenario, agents: AgentParams, state: MarketState) -> tuple[np.ndarray, np.ndarray]:
    s, d = physics.tradable(sc, agents, state)   # fresh arrays: returned as they are when nobody left
    if state.active.all():
        return s, d
    return np.where(state.active, s, 0.0), np.where(state.active, d, 0.0)


def market_step(sc: Scenario, agents: AgentParams, state: MarketState, actions: np.ndarray,
                tradable: "tuple[np.ndarray, np.ndarray] | None" = None,
                reuse_channels: bool = False) -> tuple[MarketState, StepResult]:
    """Advance one interval. `actions` must already be validated: float64 [N, 4] in [-1, 1].
    `tradable` may pass `current_tradable(sc, agents, state)` when the caller already has it.
    `reuse_channels=True` is the caller's promise that nothing else can see `state` or its u, v,
    capacity, fee_base and fee_rate: the new state may then hold those very arrays, rewritten
    (`MarketCore.step` checks it; by default the old state is left exactly as it was).

    One market is the M = 1 case of the batched pipeline (`envs.batch.batch_step`): the same code
    steps one market or hundreds."""
    new, res = batch.step_one(sc, agents, state, actions, tradable, reuse_channels)
    goods = res.goods[0] if res.goods is not None else None
    return new, StepResult(res.offers, res.trades, res.settlement, res.sellable, res.needed, int(res.n_opened[0]),
                           int(res.n_closed[0]), res.liquidity, goods)


def observation(sc: Scenario, agents: AgentParams, state: MarketState, static: np.ndarray,
                scale: np.ndarray, tradable: "tuple[np.ndarray, np.ndarray] | None" = None,
                liquidity: "tuple | None" = None) -> np.ndarray:
    """obs [N, O] of `state` (`batch.observe` of the market as a batch of one); `tradable` and
    `liquidity` may pass what the caller already computed for this very state (`current_tradable`,
    `StepResult.liquidity`)."""
    sellable, needed = tradable if tradable is not None else current_tradable(sc, agents, state)
    if liquidity is None:
        liquidity = channels.liquidity(agents.n, state.u, state.v, state.capacity, state.balance_u, state.open)
    ba, bs, layout, _ = batch.one_market(sc, agents, state)
    return batch.observe(sc, ba, bs, static, scale, sellable, needed, liquidity, layout)


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
    out.update(channel_stats(state, None if result is None else result.liquidity[0]))
    if result is None:
        out.update(network_charges=0.0, lost_load=0.0)
        out.update(trades=0, negotiations=0, failed_payments=0, partial_payments=0, channels_opened=0,
                   channels_closed=0, grid_bought=0.0, grid_sold=0.0, unserved=0.0, curtailed=0.0, welfare=0.0)
        out.update({f"failed_{name}": 0 for name in FAILURE_NAMES})
        out.update(routed_payments=0, mean_hops=0.0, routing_fees=0.0, fees_paid=0.0, background_payments=0,
                   rebalances=0, splices=0, agent_faults=0, channel_faults=0)
        return out
    st = result.settlement
    col = {name: i for i, name in enumerate(BREAKDOWN_FIELDS)}
    bd = column_sums(x=st.breakdown)  # in row order: the same bits with any BLAS thread count (envs/sums.py)
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
        network_charges=float(bd[col["network_charges"]]),
        lost_load=float(bd[col["lost_load"]]),
    )
    out.update(summary_fields(st, sc.max_hops))
    return out


QUANTILES = (0.1, 0.5, 0.9)
STATS_SAMPLE = 4096   # channel slots (evenly strided) the per-channel statistics read; exact below that


def channel_stats(state: MarketState, degree: "np.ndarray | None" = None) -> dict[str, float]:
    """Channel statistics of the market summary: utilization (mean EMA of |flow| / capacity over open
    channels), capacity (EUR, nearest-rank) and degree quantiles (10/50/90 %), the largest degree, and on-chain fees paid
    since reset. Per-channel figures read an evenly strided sample of `STATS_SAMPLE` slots (exact
    up to that many; the step stays O(N) cheap at 10,000 agents); degrees are exact. `degree` may
    pass the per-agent open-channel count the step already computed."""
    e = state.u.shape[0]
    stride = max(1, e // STATS_SAMPLE)
    o = state.open[::stride]
    if degree is None:
        deg_src = state.open
        n = state.active.shape[0]
        degree = np.bincount(state.u[deg_src], minlength=n) + np.bincount(state.v[deg_src], minlength=n)
    out: dict[str, float] = {}
    if o.any():
        cap = np.sort(state.capacity[::stride][o])
        cq = cap[(np.array(QUANTILES) * (cap.shape[0] - 1)).round().astype(np.int64)]
        out["channel_utilization"] = float(state.utilization[::stride][o].mean())
    else:
        cq = np.zeros(len(QUANTILES))
        out["channel_utilization"] = 0.0
    # degree quantiles from the degree counts (small integers): O(N), no sort
    d = np.asarray(degree).astype(np.int64)
    cum = np.cumsum(np.bincount(d))
    dq = np.searchsorted(cum, np.array(QUANTILES) * d.shape[0], side="left") if d.size else np.zeros(3)
    for q, c, dd in zip(QUANTILES, cq, dq):
        out[f"capacity_p{int(q * 100)}"] = float(c)
        out[f"degree_p{int(q * 100)}"] = float(dd)
    out["degree_max"] = int(d.max(initial=0))
    out["onchain_fees"] = float(state.fee_sink)
    return out


__all__ = ["initial_state", "market_step", "observation", "summary", "StepResult", "static_columns", "agent_scale"]

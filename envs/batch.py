"""Many markets in one struct of arrays: the batched state and the batched step pipeline.

M independent markets of one scenario (N agents, E channel slots each) live in one set of arrays,
market-major: agents m*N .. (m+1)*N - 1 and channel slots m*E .. (m+1)*E - 1 belong to market m,
and every channel's endpoints are global agent indices inside its market's block (the channel
graph is block-diagonal). Per-market quantities (clock, shock, prices, fee sink, grid account)
are [M] or [M, G] arrays; reductions over agents or trades are per-market bincounts.

Every market keeps its own two generators, spawned from its own seed exactly as a market run
alone, and draws the same numbers in the same order: the step draws, per market, one block of
standard normals for the price noise and every kind's weather and load noise (the block a market
alone draws in several consecutive calls), its shock uniform, its E channel uniforms and its
reopening draws. So market m of a batch is bit-identical to the same market run alone with its
seed (tested for every mechanism, several goods and kinds). The kinds' hooks run once over the
whole batch through an [M, N] "grid" view of the agents (`BlockIndex` selects a kind's block in
every market); mechanisms that declare `batched` clear the block-diagonal graph in one call,
the others (central auctions, the eps-auction) clear market by market.

The Lightning market's step features (issue 10) follow the same rule, per market: each market's
own generators draw its negotiation chances (`rng`, E uniforms first), its faults and background
payments (`rng_exo`, before the price noise), its topology's reopening endpoints, partner
channel choices and reopened channels' fee policies (`rng`, after its lifecycle block). Routes,
HTLC payments and rebalancing follow channels, so they stay inside a market's block of the
block-diagonal graph: the bilateral clearing finds routed pairs over the whole batch in one
search. With the payment layer on, settlement (direct and routed payments) and the aftermath
(background payments, force-closes, rebalancing, splicing) are one pass over the whole batch too
(`payments.markets`): only the background payments' draws go market by market (each market's
exogenous generator); each market's report, fee sink and fault counts come from the batch's outputs
with a market key. Grid accounts (network charges included) and the flow-history columns (shared
between states, one new column per step) span the batch; partners are global agent indices.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, NamedTuple

import numpy as np

from . import channels, kernels, mechanisms, physics, prices, streams
from .kinds import fused
from .breakdown import BREAKDOWN_FIELDS
from .compiled import USE_NUMBA
from .observations import OBS_HIGH, OBS_INDEX, OBS_LOW, _AGENT_ROWS, good_rows, observed_good
from .offers import OPEN_PARTNER, Offers, decode_totals
from .scenario import Scenario
from .settlement import Settlement, settle
from .shocks import DEMAND_FACTOR, N_SHOCKS, SUPPLY_FACTOR, Shock
from .payments.faults import draw_faults
from .payments.fees import draw_fees
from .payments.layer import after_payments
from .payments.markets import MarketReports, after_payments_markets, split_report
from .state import AgentParams, MarketState
from .trades import Trades

UTILIZATION_DECAY = 0.9  # as envs.step
_COL = {name: i for i, name in enumerate(BREAKDOWN_FIELDS)}
_LAST_COLS = np.array([_COL["sold"], _COL["bought"], _COL["profit"]])   # the state's last_sold, _bought, _profit
# fields of MarketState that are one value (or one [G] / [H, G] array) per market
PER_MARKET = ("ref_price", "clearing_price", "price_history", "supply", "demand_total", "volume", "issued",
              "retired", "shock_kind", "shock_remaining", "t", "fee_sink", "grid_account", "topology_version")
AGENT_FIELDS = ("active", "soc", "wallet", "cloud", "wind_speed", "generation", "demand", "last_sold",
                "last_bought", "last_profit", "holdings", "owed", "energy_account", "partner", "partner_value")
CHANNEL_FIELDS = ("u", "v", "capacity", "balance_u", "open", "flow", "utilization", "fee_base", "fee_rate")
FLOW_FIELDS = ("flow_columns", "flow_reopened")   # per-step columns of every slot, and the slots each step reopened


class BlockIndex(tuple):
    """Index of one kind's block in every market of an [M, N] grid view: `(:, start:stop)`, with
    the `start` / `stop` a kind hook reads off its slice."""

    def __new__(cls, sl: slice) -> "BlockIndex":
        obj = super().__new__(cls, (slice(None), sl))
        obj.start, obj.stop = sl.start, sl.stop
        return obj


class NormalBlock:
    """The standard normals of one step of every market, [M, K], handed out column block by column
    block to the kind hooks (each asks `standard_normal(k)` and gets [M, k]), like a generator."""

    def __init__(self, z: np.ndarray, start: int = 0) -> None:
        self.z, self.pos = z, start

    def standard_normal(self, size: int) -> np.ndarray:
        k = int(size)
        if self.pos + k > self.z.shape[1]:
            raise RuntimeError(f"a kind hook drew {self.pos + k} normals this step; the batch drew {self.z.shape[1]}")
        out = self.z[:, self.pos:self.pos + k]
        self.pos += k
        return out


class _Counter:
    """Counts the normals the kind hooks draw in a step (their sizes depend on the blocks only)."""

    def __init__(self) -> None:
        self.n = 0


@dataclass(frozen=True)
class Layout:
    """Where each market's agents and channels sit in the batch arrays."""

    n_markets: int
    n_agents: int       # per market
    n_slots: int        # channel slots per market
    market: np.ndarray  # [M*N] int64 market of each agent
    edge_market: np.ndarray  # [M*E] int64 market of each channel slot
    edge_offset: np.ndarray  # [M*E] int64 first agent index of each slot's market

    @classmethod
    def of(cls, m: int, n: int, e: int) -> "Layout":
        em = np.repeat(np.arange(m, dtype=np.int64), e)
        return cls(m, n, e, np.repeat(np.arange(m, dtype=np.int64), n), em, em * n)

    def agents_of(self, m: int) -> slice:
        return slice(m * self.n_agents, (m + 1) * self.n_agents)

    def slots_of(self, m: int) -> slice:
        return slice(m * self.n_slots, (m + 1) * self.n_slots)


@dataclass(frozen=True)
class BatchAgents:
    """The agent parameters of a batch: `flat` [M*N] (the pipeline), `grid` [M, N] views of the same
    memory (the kind hooks) and `per_market` views (mechanisms and hooks run market by market)."""

    flat: AgentParams
    grid: AgentParams
    per_market: tuple

    def good_key(self, n_goods: int) -> np.ndarray:
        """[M*N] market * G + the good whose prices each agent observes (`observations.observed_good`),
        computed once per episode's agents."""
        cache = self.__dict__.setdefault("_good_key", {})
        if n_goods not in cache:
            m, n = self.grid.kind.shape
            cache[n_goods] = np.repeat(np.arange(m, dtype=np.int64) * n_goods, n) + observed_good(self.flat)
        return cache[n_goods]

    @classmethod
    def stack(cls, agents: "list[AgentParams]") -> "BatchAgents":
        m, n = len(agents), agents[0].n
        cols = {f.name: np.concatenate([getattr(a, f.name) for a in agents]) for f in fields(AgentParams)}
        flat = AgentParams(**cols)
        grid = AgentParams(**{k: v.reshape(m, n, *v.shape[1:]) for k, v in cols.items()})
        per = tuple(AgentParams(**{k: v[i * n:(i + 1) * n] for k, v in cols.items()}) for i in range(m))
        return cls(flat, grid, per)


@dataclass(slots=True)
class BatchState:
    """The `MarketState` of M markets: agent and channel fields concatenated market-major (channel
    endpoints global), the per-market fields (`PER_MARKET`) with a leading [M] axis, and a tuple
    of M channel generators and M exogenous generators. Replaced, never mutated, by the step (a plain
    dataclass with slots: building one is cheap, which the one-market step relies on)."""

    active: np.ndarray
    soc: np.ndarray
    wallet: np.ndarray
    cloud: np.ndarray
    wind_speed: np.ndarray
    generation: np.ndarray
    demand: np.ndarray
    last_sold: np.ndarray
    last_bought: np.ndarray
    last_profit: np.ndarray
    u: np.ndarray
    v: np.ndarray
    capacity: np.ndarray
    balance_u: np.ndarray
    open: np.ndarray
    flow: np.ndarray
    utilization: np.ndarray
    fee_base: np.ndarray           # [M*E] routing fee policies
    fee_rate: np.ndarray
    flow_columns: tuple            # FLOW_HISTORY [M*E] float32 columns, oldest first (`state.flow_matrix`)
    flow_reopened: tuple           # FLOW_HISTORY int64 arrays of global slots each column's step reopened
    energy_account: np.ndarray     # [M*N]
    partner: np.ndarray            # [M*N] int32 regular partner, a global agent index (-1 none)
    partner_value: np.ndarray      # [M*N]
    topology_version: np.ndarray   # [M]
    ref_price: np.ndarray          # [M, G]
    clearing_price: np.ndarray     # [M, G]
    price_history: np.ndarray      # [M, PRICE_HISTORY, G], left-padded while a market's history is shorter
    supply: np.ndarray             # [M, G]
    demand_total: np.ndarray       # [M, G]
    volume: np.ndarray             # [M, G]
    holdings: np.ndarray           # [M*N, G]
    owed: np.ndarray               # [M*N, G]
    issued: np.ndarray             # [M, G]
    retired: np.ndarray            # [M, G]
    shock_kind: np.ndarray         # [M] int64
    shock_remaining: np.ndarray    # [M] int64
    t: np.ndarray                  # [M] int64
    fee_sink: np.ndarray           # [M] float64
    grid_account: np.ndarray       # [M] float64
    history_len: np.ndarray        # [M] int64 rows of price_history that are real (the rest: left padding)
    rng: tuple
    rng_exo: tuple

    def replace(self, **changes) -> "BatchState":
        """A new batch state with `changes` (field=value); the other fields shared (no copies).
        `dataclasses.replace` without its per-call field walk (a step replaces 37 fields)."""
        new = object.__new__(BatchState)
        for name in _STATE_FIELDS:
            setattr(new, name, getattr(self, name))
        for name, value in changes.items():
            if name not in _STATE_FIELD_SET:
                raise TypeError(f"BatchState has no field {name!r}")
            setattr(new, name, value)
        return new

    @property
    def balance_v(self) -> np.ndarray:
        return self.capacity - self.balance_u

    @classmethod
    def stack(cls, states: "list[MarketState]", layout: Layout) -> "BatchState":
        n = layout.n_agents
        d: dict[str, Any] = {}
        for k in AGENT_FIELDS:
            d[k] = np.concatenate([getattr(s, k) for s in states])
        for k in CHANNEL_FIELDS:
            d[k] = np.concatenate([getattr(s, k) for s in states])
        d["u"] = np.concatenate([s.u.astype(np.int64) + i * n for i, s in enumerate(states)]).astype(np.int32)
        d["v"] = np.concatenate([s.v.astype(np.int64) + i * n for i, s in enumerate(states)]).astype(np.int32)
        d["partner"] = np.concatenate([_shift(s.partner, i * n) for i, s in enumerate(states)])
        e = layout.n_slots
        d["flow_columns"] = tuple(np.concatenate(c) for c in zip(*(s.flow_columns for s in states)))
        d["flow_reopened"] = tuple(np.concatenate([r + i * e for i, r in enumerate(rs)])
                                   for rs in zip(*(s.flow_reopened for s in states)))
        for k in PER_MARKET:
            vals = [getattr(s, k) for s in states]
            if k == "price_history":
                vals = [_pad_history(h) for h in vals]
            if isinstance(vals[0], np.ndarray):
                d[k] = np.stack(vals)
            else:
                d[k] = np.array(vals, dtype=np.float64 if k in ("fee_sink", "grid_account") else np.int64)
        d["history_len"] = np.array([s.price_history.shape[0] for s in states], dtype=np.int64)
        d["rng"] = tuple(s.rng for s in states)
        d["rng_exo"] = tuple(s.rng_exo for s in states)
        return cls(**d)

    def market(self, m: int, layout: Layout) -> MarketState:
        """Market m as the `MarketState` it would have run alone: agent and channel fields are views
        (endpoints made local, a copy), per-market fields its own values."""
        if layout.n_markets == 1:   # the whole arrays are the market's (each step: few Python operations)
            d: dict[str, Any] = {k: getattr(self, k) for k in _LOCAL_FIELDS}
            for k in _MARKET_ARRAYS:
                d[k] = getattr(self, k)[0]
            for k in _MARKET_INTS:
                d[k] = int(getattr(self, k).item(0))
            d["fee_sink"], d["grid_account"] = float(self.fee_sink.item(0)), float(self.grid_account.item(0))
            x = self.price_history[0]
            d["price_history"] = x[x.shape[0] - self.history_len.item(0):]
            d["rng"], d["rng_exo"] = self.rng[0], self.rng_exo[0]
            return MarketState.from_fields(d)
        else:
            a, e = layout.agents_of(m), layout.slots_of(m)
            d = {k: getattr(self, k)[a] for k in AGENT_FIELDS}
            d.update({k: getattr(self, k)[e] for k in CHANNEL_FIELDS})
            d["flow_columns"] = tuple(c[e] for c in self.flow_columns)
            d["flow_reopened"] = tuple(r[(r >= e.start) & (r < e.stop)] - e.start for r in self.flow_reopened)
        off = m * layout.n_agents
        if off:
            d["u"] = (self.u[e] - off).astype(np.int32)
            d["v"] = (self.v[e] - off).astype(np.int32)
            d["partner"] = _shift(self.partner[a], -off)
        for k in PER_MARKET:
            x = getattr(self, k)[m]
            if k == "price_history":
                x = x[x.shape[0] - int(self.history_len[m]):]
            d[k] = x if isinstance(x, np.ndarray) else (float(x) if k in ("fee_sink", "grid_account") else int(x))
        d["rng"], d["rng_exo"] = self.rng[m], self.rng_exo[m]
        return MarketState.from_fields(d)

    def put(self, m: int, s: MarketState, layout: Layout) -> "BatchState":
        """A new batch with market m replaced by `s` (a fresh episode of that market)."""
        a, e = layout.agents_of(m), layout.slots_of(m)
        d: dict[str, Any] = {}
        for k in AGENT_FIELDS:
            x = getattr(self, k).copy(); x[a] = getattr(s, k); d[k] = x
        for k in CHANNEL_FIELDS:
            x = getattr(self, k).copy(); x[e] = getattr(s, k); d[k] = x
        cols = []
        for c, sc_ in zip(self.flow_columns, s.flow_columns):
            c = c.copy(); c[e] = sc_; cols.append(c)
        d["flow_columns"] = tuple(cols)
        d["flow_reopened"] = tuple(np.concatenate([r[(r < e.start) | (r >= e.stop)], q + e.start])
                                   for r, q in zip(self.flow_reopened, s.flow_reopened))
        d["u"][e] = s.u.astype(np.int64) + m * layout.n_agents
        d["v"][e] = s.v.astype(np.int64) + m * layout.n_agents
        d["partner"][a] = _shift(s.partner, m * layout.n_agents)
        for k in PER_MARKET:
            x = getattr(self, k).copy(); x[m] = getattr(s, k) if k != "price_history" else _pad_history(s.price_history)
            d[k] = x
        hl = self.history_len.copy(); hl[m] = s.price_history.shape[0]; d["history_len"] = hl
        rng, rng_exo = list(self.rng), list(self.rng_exo)
        rng[m], rng_exo[m] = s.rng, s.rng_exo
        return replace(self, **d, rng=tuple(rng), rng_exo=tuple(rng_exo))

    def money_total(self, layout: Layout) -> np.ndarray:
        """[M] wallets + open channel capacities + fee sink + grid account, per market."""
        m = layout.n_markets
        w = np.bincount(layout.market, weights=self.wallet + self.energy_account, minlength=m)
        c = np.bincount(layout.edge_market, weights=np.where(self.open, self.capacity, 0.0), minlength=m)
        return w + c + self.fee_sink + self.grid_account


_STATE_FIELDS = tuple(f.name for f in fields(BatchState))
_LOCAL_FIELDS = AGENT_FIELDS + CHANNEL_FIELDS + FLOW_FIELDS
# per-market fields a market's own state holds as arrays ([G]) and as Python numbers (`BatchState.market`)
_MARKET_ARRAYS = ("ref_price", "clearing_price", "supply", "demand_total", "volume", "issued", "retired")
_MARKET_INTS = ("shock_kind", "shock_remaining", "t", "topology_version")
assert set(_MARKET_ARRAYS + _MARKET_INTS + ("fee_sink", "grid_account", "price_history")) == set(PER_MARKET)
_STATE_FIELD_SET = frozenset(_STATE_FIELDS)


def _shift(partner: np.ndarray, off: int) -> np.ndarray:
    """Partner indices moved by `off` agents (a market's block in the batch), -1 (none) kept."""
    return np.where(partner >= 0, partner + off, -1).astype(partner.dtype) if off else partner


def _pad_history(h: np.ndarray) -> np.ndarray:
    """[PRICE_HISTORY, G]: a market's price history left-padded with its oldest row."""
    pad = prices.PRICE_HISTORY - h.shape[0]
    return np.concatenate([np.repeat(h[:1], pad, axis=0), h]) if pad > 0 else h[-prices.PRICE_HISTORY:]


class BatchResult(NamedTuple):
    offers: Offers
    trades: Trades
    settlement: Settlement
    sellable: np.ndarray
    needed: np.ndarray
    n_opened: np.ndarray      # [M]
    n_closed: np.ndarray      # [M]
    liquidity: tuple
    goods: Any = None         # per market: tuple of goods_trading.GoodsResult, or None
    trade_market: "np.ndarray | None" = None  # [T] market of each trade (None in a batch of one market: all 0)
    payments: "tuple | None" = None  # per market: its payment layer's PaymentReport (layer on), else None


def clock(t: np.ndarray) -> "int | np.ndarray":
    """The step index the kind hooks see: one int when every market is at the same step (the usual
    case: the hooks run exactly as for one market), else [M, 1]."""
    if t.shape[0] == 1:
        return int(t[0])
    return int(t[0]) if (t == t[0]).all() else t[:, None]


def hours(sc: Scenario, t: "np.ndarray") -> np.ndarray:
    return (sc.start_hour + t * sc.step_hours) % 24.0


def levels(sc: Scenario, t: np.ndarray) -> np.ndarray:
    """[M] time-of-day price level of every market's step `t`: one scalar evaluation when the
    clocks agree (the usual case), else elementwise."""
    if t.shape[0] == 1:
        return np.array([_level(sc, int(t[0]))])
    if (t == t[0]).all():
        return np.full(t.shape[0], _level(sc, int(t[0])))
    return prices.time_of_day_levels(sc, hours(sc, t))


_LEVELS: dict = {}


def _level(sc: Scenario, t: int) -> float:
    """`prices.time_of_day_level` at step t's hour, cached per scenario and hour of day."""
    hour = physics.hour_of_day(sc, t)
    key = (id(sc), hour)
    hit = _LEVELS.get(key)
    if hit is None or hit[0] is not sc:
        if len(_LEVELS) > 4096:
            _LEVELS.clear()
        hit = _LEVELS[key] = (sc, prices.time_of_day_level(sc, hour))
    return hit[1]


_BOUNDS: dict = {}


def _tariff_bounds(sc: Scenario, n_goods: int) -> tuple[np.ndarray, np.ndarray]:
    """([G] feed-in tariff, [G] retail tariff): energy's price bounds as arrays, cached per scenario."""
    key = (id(sc), n_goods)
    hit = _BOUNDS.get(key)
    if hit is None or hit[0] is not sc:
        if len(_BOUNDS) > 256:
            _BOUNDS.clear()
        hit = _BOUNDS[key] = (sc, (np.full(n_goods, float(sc.feed_in_tariff)), np.full(n_goods, float(sc.retail_tariff))))
    return hit[1]


def normals_per_step(sc: Scenario, ba: BatchAgents, bs: BatchState) -> int:
    """Standard normals one market draws from its exogenous generator in a step: the price noise
    (one per good) and whatever the kinds' weather and energy hooks draw."""
    count = _Counter()
    m, n = ba.grid.kind.shape
    arrays = {"cloud": bs.cloud.reshape(m, n).copy(), "wind_speed": bs.wind_speed.reshape(m, n).copy()}
    for spec, sl in _blocks(ba):
        if spec.weather is not None:
            spec.weather(sc, BlockIndex(sl), arrays, _CountingGrid(count, m))
    _energy(sc, ba, clock(bs.t), arrays["cloud"], arrays["wind_speed"], _CountingGrid(count, m))
    return bs.ref_price.shape[1] + count.n


class _CountingGrid:
    def __init__(self, counter: _Counter, m: int) -> None:
        self.c, self.m = counter, m

    def standard_normal(self, size: int) -> np.ndarray:
        self.c.n += int(size)
        return np.zeros((self.m, int(size)))


def _blocks(ba: BatchAgents):
    return ba.per_market[0].blocks


def _fused_plan(sc, ba: BatchAgents) -> "fused.Plan | None":
    """`kinds.fused.plan` of the agents' blocks (cached per scenario): None when some kind runs hooks of its own."""
    hit = ba.__dict__.get("_fused")
    if hit is None or hit[0] is not sc:
        hit = ba.__dict__["_fused"] = (sc, fused.plan(_blocks(ba)) if USE_NUMBA else None)
    return hit[1]


def _next_interval(sc, ba: BatchAgents, bs: BatchState, t_next: np.ndarray, noise: NormalBlock):
    """(cloud, wind speed, generation, demand) [M, N] of the next interval: the kinds' weather hooks, then
    their energy hooks, drawing their normals from `noise`; as two compiled passes when every kind is a
    built-in one with its own hooks (`kinds.fused`, the same numbers)."""
    mm, nn = ba.grid.kind.shape
    p = _fused_plan(sc, ba)
    if p is not None and noise.pos + p.normals <= noise.z.shape[1]:
        out = fused.interval(sc, p, ba.grid, bs.cloud.reshape(mm, nn), bs.wind_speed.reshape(mm, nn),
                             clock(t_next), noise.z, noise.pos)
        noise.pos += p.normals
        return out
    arrays = {"cloud": bs.cloud.reshape(mm, nn).copy(), "wind_speed": bs.wind_speed.reshape(mm, nn).copy()}
    for spec, sl in _blocks(ba):
        if spec.weather is not None:
            spec.weather(sc, BlockIndex(sl), arrays, noise)
    generation, demand = _energy(sc, ba, clock(t_next), arrays["cloud"], arrays["wind_speed"], noise)
    return arrays["cloud"], arrays["wind_speed"], generation, demand


def _energy(sc, ba: BatchAgents, t, cloud, wind_speed, noise) -> tuple[np.ndarray, np.ndarray]:
    shape = ba.grid.kind.shape
    arrays = {"cloud": cloud, "wind_speed": wind_speed, "generation": np.zeros(shape), "demand": np.zeros(shape)}
    for spec, sl in _blocks(ba):
        if spec.energy is not None:
            spec.energy(sc, BlockIndex(sl), t, arrays, ba.grid, noise)
    return arrays["generation"], arrays["demand"]


class _GridState(NamedTuple):
    soc: np.ndarray


def tradable(sc: Scenario, ba: BatchAgents, bs: BatchState) -> tuple[np.ndarray, np.ndarray]:
    """`step.current_tradable` of every market: [M*N] sellable and needed (zero for inactive agents)."""
    m, n = ba.grid.kind.shape
    fs = SUPPLY_FACTOR[bs.shock_kind][:, None]
    fd = DEMAND_FACTOR[bs.shock_kind][:, None]
    sellable = bs.generation.reshape(m, n) * fs
    needed = bs.demand.reshape(m, n) * fd
    hooked = [(spec, sl) for spec, sl in _blocks(ba) if spec.tradable is not None]
    if hooked:
        grid_state = _GridState(bs.soc.reshape(m, n))
        t = clock(bs.t)
        for spec, sl in hooked:
            spec.tradable(sc, BlockIndex(sl), ba.grid, grid_state, t, fs, fd, sellable, needed)
    s, d = sellable.reshape(-1), needed.reshape(-1)   # fresh arrays: returned as they are when nobody left
    if bs.active.all():
        return s, d
    return np.where(bs.active, s, 0.0), np.where(bs.active, d, 0.0)


def _draw_normals(bs: BatchState, k: int) -> np.ndarray:
    """[M, k] each market's next k standard normals of its exogenous generator (NumPy's own numbers,
    computed in compiled code from the generators' live states: `streams.standard_normals`)."""
    return streams.standard_normals(bs.rng_exo, k)


def _clear(sc: Scenario, ba: BatchAgents, bs: BatchState, offers: Offers, layout: Layout,
           faults: "tuple | None" = None) -> Trades:
    """The mechanism's trades; with `faults` (the payment layer on: the step's failed agents and
    channels) a mechanism that pays as it clears (`Mechanism.clear_and_pay`) pays them too."""
    mech = mechanisms.get(sc.mechanism)
    if faults is not None and mech.clear_and_pay is not None and (mech.batched or layout.n_markets == 1):
        return mech.clear_and_pay(sc, ba.flat, bs if mech.batched else bs.market(0, layout), offers, *faults)
    if mech.batched:
        return mech.clear(sc, ba.flat, bs, offers)
    if layout.n_markets == 1:
        return mech.clear(sc, ba.flat, bs.market(0, layout), offers)
    parts, routes, unrouted = [], [], []
    neg = 0
    for m in range(layout.n_markets):
        a = layout.agents_of(m)
        tr = mech.clear(sc, ba.per_market[m], bs.market(m, layout), Offers(*(x[a] for x in offers)))
        neg += int(tr.negotiations)
        off = m * layout.n_agents
        ch = np.where(tr.channel >= 0, tr.channel + m * layout.n_slots, tr.channel)
        cut = tr.cut if tr.cut is not None else np.zeros(tr.channel.shape[0], dtype=np.int8)
        parts.append((ch, tr.seller + off, tr.buyer + off, tr.good, tr.qty, tr.price, cut))
        # routed trades (a mechanism clearing over routes): their channel slots move with the market's block
        routes.append(None if tr.route is None else np.where(tr.route >= 0, tr.route + m * layout.n_slots, tr.route))
        unrouted.append(tr.unrouted)
    cols = [np.concatenate(x) for x in zip(*parts)]
    route = None
    if any(r is not None for r in routes):
        width = next(r.shape[1] for r in routes if r is not None)
        route = np.concatenate([r if r is not None else np.full((p[0].shape[0], width), -1, dtype=np.int64)
                                for r, p in zip(routes, parts)]).astype(np.int64)
    why = None
    if any(u is not None for u in unrouted):
        why = np.concatenate([u if u is not None else np.zeros(layout.n_agents, dtype=np.int8) for u in unrouted])
    return Trades(cols[0].astype(np.int64), cols[1].astype(np.int64), cols[2].astype(np.int64),
                  cols[3].astype(np.int64), cols[4].astype(np.float64), cols[5].astype(np.float64), neg,
                  cols[6].astype(np.int8), route, why)


def _advance_shocks(sc: Scenario, kind, remaining, t, rngs) -> tuple[np.ndarray, np.ndarray]:
    """`shocks.advance_shock` of every market (each its own draws, in the same order)."""
    if not sc.shock_schedule and sc.shock_rate <= 0.0 and not remaining.any():   # nothing happens: no copies
        return kind, remaining
    on = remaining > 0
    kind, remaining = kind.copy(), remaining.copy()
    remaining[on] -= 1
    kind[on & (remaining == 0)] = 0
    for e in sc.shock_schedule:
        hit = t == e.step
        kind[hit], remaining[hit] = int(Shock[e.kind]), e.duration
    if sc.shock_rate > 0.0:
        lo, hi = sc.shock_duration
        for i, g in enumerate(rngs):
            if g.random() < sc.shock_rate and kind[i] == 0:
                kind[i] = int(g.integers(1, N_SHOCKS))
                remaining[i] = int(g.integers(lo, hi + 1))
    return kind, remaining


def _lifecycle(sc: Scenario, ba: BatchAgents, bs: BatchState, capacity, is_open, active, wallet, fee_sink,
               balance_u, partner, layout: Layout, asks: "np.ndarray | None" = None):
    """`channels.lifecycle` of every market: each market's own block of draws (row 0 drawn, the
    reopening rows reserved: `channels.lifecycle_draws`), then one compiled pass; fee sinks and
    counts per market (draws a topology's own reopening rule or partner channels make follow,
    market by market). `asks` [M*N] bool (the `open_partner`
    action) then opens partner channels (`channels.partner_openings`, no draws): they count as
    opened and are the tail of the opened slots, also returned alone last."""
    draw, candidates = channels.lifecycle_draws(bs.rng, layout.n_slots)   # rows 1-2 reserved, not drawn
    out = channels.apply_lifecycle(sc, bs.u, bs.v, capacity, balance_u, is_open, active, wallet, fee_sink, draw,
                                   candidates, layout.n_agents, layout.edge_offset, bs.rng, ba.flat, ba.per_market,
                                   partner)
    if asks is None:
        return out + (out[-1][:0],)
    u, v, cap, bal, now_open, wallet, fee_sink, n_closed, n_opened, opened = out
    asked, wallet, fee_sink, n_asked = channels.partner_openings(sc, asks, partner, active, u, v, cap, bal, now_open,
                                                                 is_open, wallet, fee_sink, layout.n_agents, ba.flat)
    return (u, v, cap, bal, now_open, wallet, fee_sink, n_closed, n_opened + n_asked, np.concatenate([opened, asked]),
            asked)


def _one_channel_pass(sc: Scenario, n_goods: int, n_slots: int) -> bool:
    """Whether everything the channels do after the payments runs as one compiled pass
    (`kernels.channels_after_payments`): numba on, one good, no payment aftermath (background
    payments, rebalancing, splicing), reopenings paired uniformly with no partner channels, and a
    serial build for this size (the multi-threaded lifecycle and aftermath passes run apart)."""
    return bool(USE_NUMBA and n_goods == 1 and not (sc.payments_on and sc.payments_aftermath)
                and sc.topology in channels.UNIFORM_REOPEN and sc.partner_channel_share <= 0 and not sc.partner_action
                and kernels.parts_for(kernels.lifecycle_uniform, n_slots) == 1)


def _channel_pass(sc: Scenario, ba: BatchAgents, bs: BatchState, st: Settlement, active, wallet, fee_sink, states,
                  layout: Layout, in_place: bool = False):
    """`kernels.channels_after_payments` on the batch: the balances after the payments, the
    lifecycle (each market's block from its live generator state), the reopened channels' fee
    policies and the aftermath. Returns (settlement with its balances and flows, u, v, capacity,
    balance_u, open, wallet, fee_sink, n_closed, n_opened, opened, fee_base, fee_rate, utilization,
    flow column, liquidity). `in_place`: the new channel arrays are written into `bs`'s own
    (the caller's promise that nothing else can see them: `batch_step`'s `reuse_channels`)."""
    states, views = states
    (paid, flow, u, v, capacity, balance_u, is_open, wallet, n_closed, n_opened, opened, fee_base, fee_rate, util,
     column, *liquidity) = kernels.channels_after_payments(
        balance_u=bs.balance_u, flow_in_u=st.flow_in_u, u=bs.u, v=bs.v, capacity=bs.capacity, is_open=bs.open,
        active=active, wallet=wallet, states=states, fee_base=bs.fee_base, fee_rate=bs.fee_rate, util=bs.utilization,
        in_place=in_place, **_pass_constants(sc, ba, layout))
    streams.put_states(states, views)
    fee_sink = fee_sink + sc.onchain_fee * n_closed
    if opened.shape[0]:
        fee_sink = fee_sink + sc.onchain_fee * n_opened
    st = st._replace(balance_u=paid, flow=flow, flow_in_u=None)
    return (st, u, v, capacity, balance_u, is_open, wallet, fee_sink, n_closed, n_opened, opened, fee_base, fee_rate,
            util, column, tuple(liquidity))


_NO_SPEND = np.zeros(0)


def _pass_constants(sc: Scenario, ba: BatchAgents, layout: Layout) -> dict:
    """The arguments of `kernels.channels_after_payments` that the scenario, the agents and the layout fix,
    cached on the agents' batch view per (scenario, layout)."""
    hit = ba.__dict__.get("_pass")
    if hit is None or hit[0] is not sc or hit[1] is not layout:
        lo, hi = sc.channel_capacity
        spend = channels.expected_spend(sc, ba.flat) if sc.channel_sizing == "spend" else _NO_SPEND
        const = dict(
            close_rate=float(sc.channel_close_rate), open_rate=float(sc.channel_open_rate), fee=float(sc.onchain_fee),
            n=layout.n_agents, offset=layout.edge_offset, slot_market=layout.edge_market, m=layout.n_markets,
            lo=float(lo), hi=float(hi), split=float(sc.initial_split), spend=spend,
            sizing_steps=float(sc.channel_sizing_steps), mean_cap=0.5 * (lo + hi), fees_on=bool(sc.routing_fees_on),
            base_lo=float(sc.routing_fee_base[0]), base_hi=float(sc.routing_fee_base[1]),
            rate_lo=float(sc.routing_fee_rate[0]), rate_hi=float(sc.routing_fee_rate[1]), decay=UTILIZATION_DECAY)
        hit = ba.__dict__["_pass"] = (sc, layout, const)
    return hit[2]


def _draw_faults(sc: Scenario, bs: BatchState, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """`faults.draw_faults` of every market, each from its own exogenous generator."""
    if layout.n_markets == 1:
        return draw_faults(sc, bs.active, bs.open, bs.rng_exo[0])
    fa, fc = np.zeros(bs.active.shape[0], dtype=bool), np.zeros(bs.open.shape[0], dtype=bool)
    for i, g in enumerate(bs.rng_exo):
        a, es = layout.agents_of(i), layout.slots_of(i)
        fa[a], fc[es] = draw_faults(sc, bs.active[a], bs.open[es], g)
    return fa, fc


def _settle(sc: Scenario, ba: BatchAgents, bs: BatchState, trades: Trades, trade_market, sellable, needed,
            failed_agent, failed_channel, layout: Layout,
            defer_balances: bool = False) -> "tuple[Settlement, MarketReports | tuple | None]":
    """`settlement.settle` of every market in one call over the whole batch (grid account: the
    batch's flow, split per market by the caller). With the payment layer on, its report is split
    into the markets' (`payments.markets.split_report`; one market: its own report)."""
    st = settle(sc, ba.flat, trades, sellable, needed, bs.u, bs.v, bs.capacity, bs.balance_u, bs.wallet,
                bs.soc, 0.0, bs.fee_base, bs.fee_rate, failed_agent, failed_channel, bs.energy_account,
                defer_balances)
    if st.payments is None:
        return st, None
    if layout.n_markets == 1:
        return st, (st.payments,)
    reports = split_report(st.payments, trades, st.paid_qty, st.failed, failed_agent, failed_channel, trade_market,
                           layout.market, layout.n_markets, sc.max_hops)
    return st._replace(payments=None), reports


def _after_payments(sc: Scenario, ba: BatchAgents, bs: BatchState, st: Settlement, reports, failed_agent,
                    failed_channel, layout: Layout):
    """`payments.layer.after_payments` of every market (one market: itself; more: one pass over the
    batch, `payments.markets.after_payments_markets`, background payments drawn from each market's
    exogenous generator). Returns (settlement, capacity, open, fee sink [M], active, channels the
    faults closed [M], reports)."""
    if layout.n_markets == 1:
        st, cap, is_open, fee_sink, active, k = after_payments(sc, ba.flat, bs.market(0, layout), st, failed_agent,
                                                               failed_channel)
        return st, cap, is_open, np.array([fee_sink]), active, np.array([k]), (st.payments,)
    return after_payments_markets(sc, bs, st, reports, failed_agent, failed_channel, bs.rng_exo, layout.market,
                                  layout.edge_market, layout.n_agents)


def batch_step(sc: Scenario, ba: BatchAgents, bs: BatchState, actions: np.ndarray, layout: Layout,
               n_normals: int, tradable_now: "tuple | None" = None,
               reuse_channels: bool = False) -> tuple[BatchState, BatchResult]:
    """`step.market_step` of every market at once. `actions` validated float64 [M*N, 4] (a fifth column
    `open_partner` with `scenario.partner_action`). `reuse_channels`: the caller promises that nothing
    else can see `bs`'s u, v, capacity, balance_u, open, fee_base, fee_rate and utilization (nor a
    state holding them), and the one-pass channel step writes the new channels into them, unless a kind
    runs hooks of its own after it (a hook that raises would leave a half-written state)."""
    agents = ba.flat
    m_count, n = layout.n_markets, layout.n_agents
    n_goods = bs.ref_price.shape[1]
    market = layout.market
    sellable, needed = tradable_now if tradable_now is not None else tradable(sc, ba, bs)
    offers, supply, demand = decode_totals(sc, agents, actions, bs.ref_price, sellable, needed, bs.active, market)
    failed_agent = failed_channel = None
    if sc.payments_on:   # this step's faults, each market from its exogenous generator (the clearing draws none
        failed_agent, failed_channel = _draw_faults(sc, bs, layout)   # of its numbers), before the payments
    faults = (failed_agent, failed_channel) if sc.payments_on else None
    if sc.negotiation_probability < 1.0:   # each channel negotiates with this chance: first draws of `rng`
        r = np.empty(bs.u.shape[0])
        for i, g in enumerate(bs.rng):
            g.random(out=r[layout.slots_of(i)])
        trades = _clear(sc, ba, bs.replace(open=bs.open & (r < sc.negotiation_probability)), offers, layout, faults)
    else:
        trades = _clear(sc, ba, bs, offers, layout, faults)
    one = m_count == 1   # one market: the per-market keys are the goods themselves
    trade_market = None if one else market[trades.seller]   # one market: every trade is market 0's
    one_pass = _one_channel_pass(sc, n_goods, bs.u.shape[0])   # balances, lifecycle, fees, aftermath: one pass
    st, reports = _settle(sc, ba, bs, trades, trade_market, sellable, needed, failed_agent, failed_channel, layout,
                          one_pass)
    bd = st.breakdown
    if one:
        grid_account = bs.grid_account + st.grid_account
    else:  # the kernel's one sum, per market (same order), then the network charges
        grid_in = np.bincount(market, weights=bd[:, _COL["grid_bought"]] * sc.retail_tariff, minlength=m_count)
        grid_out = np.bincount(market, weights=bd[:, _COL["grid_sold"]] * sc.feed_in_tariff, minlength=m_count)
        flow_in = grid_in - grid_out
        if sc.network_charge > 0:
            flow_in = flow_in + bd[:, _COL["network_charges"]].reshape(m_count, n).sum(axis=1)
        grid_account = bs.grid_account + flow_in
    soc = st.soc
    bills = st.energy_account if sc.grid_billing == "energy_account" else st.wallet   # fresh arrays
    if agents.has_book_hooks:  # market by market (few kinds book; their hooks are written for one market)
        grid_account = grid_account.copy()
        for m in range(m_count):
            a = layout.agents_of(m)
            grid_account[m] += physics.book_kinds(sc, ba.per_market[m], int(bs.t[m]), bs.active[a], soc[a],
                                                  bills[a], bd[a])
    goods = None
    if n_goods > 1:
        st, goods, grid_account = _trade_goods(sc, ba, bs, actions, st, grid_account, layout)
    capacity_now, open_now, fee_sink_now, active = bs.capacity, bs.open, bs.fee_sink, bs.active
    n_fault_closed = 0
    # nothing wrote into the booking kernel's breakdown after it (`kernels.last_rows`)
    booked_only = not (agents.has_book_hooks or goods is not None or sc.network_charge > 0
                       or sc.value_of_lost_load > 0 or (sc.payments_on and sc.payments_aftermath))
    if sc.payments_on and sc.payments_aftermath:   # background payments, faults, rebalancing, splicing
        st, capacity_now, open_now, fee_sink_now, active, n_fault_closed, reports = _after_payments(
            sc, ba, bs, st, reports, failed_agent, failed_channel, layout)
        bd = st.breakdown
    wallet = st.wallet
    # the step's sales, purchases and profit as contiguous rows of the new state (the next observation reads
    # them in vectorized loops; strided columns of the breakdown cost it a cache line per agent and field):
    # the rows the booking kernel wrote beside the breakdown while nothing has written into it since, else
    # gathered while the breakdown is still in cache
    last = None
    if booked_only:
        last = kernels.last_rows(bd)
    if last is None:
        last = bd.T[_LAST_COLS]
    last_sold, last_bought, last_profit = last
    # mean-field aggregates (supply and demand: `decode_totals`) and the reference price, per (market, good)
    tkey = trades.good if one else trade_market * n_goods + trades.good
    volume, clearing_price = kernels.trade_totals(key=tkey, qty=st.paid_qty, price=trades.price,
                                                  previous=bs.clearing_price)
    t_next = bs.t + 1
    level_next = levels(sc, t_next)[:, None]
    bounds = None
    if goods is not None:
        supply[:, 1:] = np.stack([g.supply[1:] for g in goods])
        demand[:, 1:] = np.stack([g.demand[1:] for g in goods])
        gvol = np.stack([g.volume for g in goods])
        gval = np.stack([g.value for g in goods])
        volume[:, 1:] = gvol[:, 1:]
        with np.errstate(divide="ignore", invalid="ignore"):
            clearing_price[:, 1:] = np.where(gvol[:, 1:] > 0, gval[:, 1:] / gvol[:, 1:], bs.clearing_price[:, 1:])
        from .goods import scenario_goods

        rows = [prices.good_levels(sc, scenario_goods(sc), float(level_next[i, 0]), int(t_next[i]))
                for i in range(m_count)]
        level_next = np.stack([r[0] for r in rows])
        bounds = rows[0][1]
    z = _draw_normals(bs, n_normals)
    noise = NormalBlock(z, n_goods)
    low, high = bounds if bounds is not None else _tariff_bounds(sc, n_goods)
    # `prices.ref_price_update` of `prices.imbalance(supply, demand)`, and the history, in one compiled pass
    ref, history, history_len = kernels.price_step(
        ref=bs.ref_price, level=level_next, clearing=clearing_price, volume=volume, supply=supply, demand=demand,
        z=z[:, :n_goods], low=low, high=high, history=bs.price_history, history_len=bs.history_len,
        reversion=sc.price_reversion, vwap_weight=sc.price_vwap_weight, imbalance_gain=sc.price_imbalance_gain,
        volatility=sc.price_volatility, bound=sc.volatility_bound)

    # channels
    partner, partner_value = bs.partner, bs.partner_value
    if sc.partner_channel_share > 0 or sc.partner_action:   # regular partners, from this step's payments
        partner, partner_value = channels.update_partners(agents.n, trades.seller, trades.buyer, st.paid,
                                                          partner, partner_value)
    asks = actions[:, OPEN_PARTNER] > 0 if sc.partner_action else None   # the optional open_partner column
    live = streams.live_states(bs.rng) if one_pass else None
    if one_pass and live is None:   # a generator the pass cannot draw from: the balances now, then apart
        balance_u_now, flow_now = kernels.balances_after(balance_u=bs.balance_u, flow_in_u=st.flow_in_u,
                                                         capacity=bs.capacity)
        st = st._replace(balance_u=balance_u_now, flow=flow_now, flow_in_u=None)
    if live is not None:
        (st, u, v, capacity, balance_u, is_open, wallet, fee_sink, n_closed, n_opened, opened, fee_base, fee_rate,
         util, flow_column, liquidity) = _channel_pass(sc, ba, bs, st, active, wallet, fee_sink_now, live, layout,
                                                       reuse_channels and _fused_plan(sc, ba) is not None)
    else:
        util, flow_column, liquidity, fee_base, fee_rate, *lc = _channels_apart(
            sc, ba, bs, st, capacity_now, open_now, active, wallet, fee_sink_now, partner, layout, asks, one)
        u, v, capacity, balance_u, is_open, wallet, fee_sink, n_closed, n_opened, opened = lc
    if sc.payments_on and sc.payments_aftermath:
        n_closed = n_closed + n_fault_closed
    flow_columns = bs.flow_columns[1:] + (flow_column,)   # the older columns shared, not copied
    flow_reopened = bs.flow_reopened[1:] + (opened,)
    topology_version = bs.topology_version + ((n_opened + n_closed) > 0)

    # next interval
    cloud, wind_speed, generation, demand_next = _next_interval(sc, ba, bs, t_next, noise)
    if noise.pos != n_normals:
        raise RuntimeError(f"the kind hooks drew {noise.pos} normals this step; the batch drew {n_normals}")
    shock_kind, shock_remaining = _advance_shocks(sc, bs.shock_kind, bs.shock_remaining, t_next, bs.rng_exo)

    ending = t_next >= sc.episode_steps
    if ending.any():  # stored energy is worth something at the end of an episode
        rows = ending[market]
        value_sv = np.where(agents.is_storage & bs.active & rows,
                            (st.soc - agents.initial_soc) * agents.efficiency * sc.base_price, 0.0)
        bd[rows, _COL["storage_value"]] = value_sv[rows]
        bd[rows, 0] += value_sv[rows]
        last_profit = bd[:, _COL["profit"]].copy()
    if goods is not None:
        holdings, owed = np.concatenate([g.holdings for g in goods]), np.concatenate([g.owed for g in goods])
        issued, retired = np.stack([g.issued for g in goods]), np.stack([g.retired for g in goods])
    else:
        holdings, owed, issued, retired = bs.holdings, bs.owed, bs.issued, bs.retired
    new = BatchState(   # every field, built once (the old state is not modified)
        active=active, soc=st.soc, wallet=wallet, cloud=cloud.reshape(-1),
        wind_speed=wind_speed.reshape(-1), generation=generation.reshape(-1),
        demand=demand_next.reshape(-1), last_sold=last_sold, last_bought=last_bought,
        last_profit=last_profit, u=u, v=v, capacity=capacity, balance_u=balance_u, open=is_open,
        flow=st.flow, utilization=util, fee_base=fee_base, fee_rate=fee_rate, flow_columns=flow_columns, flow_reopened=flow_reopened,
        energy_account=st.energy_account, partner=partner, partner_value=partner_value,
        topology_version=topology_version, ref_price=ref, clearing_price=clearing_price, price_history=history,
        supply=supply, demand_total=demand, volume=volume, holdings=holdings, owed=owed, issued=issued,
        retired=retired, shock_kind=shock_kind, shock_remaining=shock_remaining, t=t_next, fee_sink=fee_sink,
        grid_account=grid_account, history_len=history_len, rng=bs.rng, rng_exo=bs.rng_exo)
    if isinstance(reports, MarketReports):
        reports = reports.reports(n)
    result = BatchResult(offers, trades, st, sellable, needed, n_opened, n_closed, liquidity, goods,
                         trade_market, reports)
    return new, result


def _channels_apart(sc: Scenario, ba: BatchAgents, bs: BatchState, st: Settlement, capacity_now, open_now, active,
                    wallet, fee_sink_now, partner, layout: Layout, asks, one: bool):
    """The lifecycle (`_lifecycle`), the reopened channels' fee policies and `kernels.channel_aftermath`
    as separate passes (partner channels, own reopening rules, several goods, the payment aftermath,
    multi-threaded builds, numba off). Returns (utilization, flow column, liquidity, fee_base,
    fee_rate, u, v, capacity, balance_u, open, wallet, fee_sink, n_closed, n_opened, opened)."""
    agents = ba.flat
    (u, v, capacity, balance_u, is_open, wallet, fee_sink, n_closed, n_opened, opened, asked) = _lifecycle(
        sc, ba, bs, capacity_now, open_now, active, wallet, fee_sink_now, st.balance_u, partner, layout, asks)
    fee_base, fee_rate = bs.fee_base, bs.fee_rate
    if opened.shape[0] and sc.routing_fees_on:   # reopened channels' fee policies, after the lifecycle's draws
        fee_base, fee_rate = fee_base.copy(), fee_rate.copy()
        drawn = opened[:opened.shape[0] - asked.shape[0]]   # partner channels (the tail) take the mean policy: no draws
        if one:
            if drawn.shape[0]:
                fee_base[drawn], fee_rate[drawn] = draw_fees(sc, drawn.shape[0], bs.rng[0])
        else:
            om = layout.edge_market[drawn]
            for i in np.unique(om):
                s_i = drawn[om == i]
                fee_base[s_i], fee_rate[s_i] = draw_fees(sc, s_i.shape[0], bs.rng[i])
        fee_base[asked] = 0.5 * (sc.routing_fee_base[0] + sc.routing_fee_base[1])
        fee_rate[asked] = 0.5 * (sc.routing_fee_rate[0] + sc.routing_fee_rate[1])
    util, flow_column, *liquidity = kernels.channel_aftermath(
        util=bs.utilization, flow=st.flow, old_capacity=capacity_now, opened=opened, decay=UTILIZATION_DECAY,
        n=agents.n, u=u, v=v, capacity=capacity, balance_u=balance_u, is_open=is_open,
        parts=kernels.parts_for(kernels.channel_aftermath, u.shape[0]))
    return (util, flow_column, tuple(liquidity), fee_base, fee_rate, u, v, capacity, balance_u, is_open, wallet,
            fee_sink, n_closed, n_opened, opened)



def _trade_goods(sc, ba: BatchAgents, bs: BatchState, actions, st: Settlement, grid_account, layout: Layout):
    """Further goods (certificates), market by market: `goods_trading.trade_goods` on each market's view."""
    from .goods_trading import trade_goods

    balance_u, wallet, flow = st.balance_u.copy(), st.wallet.copy(), st.flow.copy()
    grid_account = grid_account.copy()
    results = []
    for m in range(layout.n_markets):
        a, e = layout.agents_of(m), layout.slots_of(m)
        state_m = bs.market(m, layout)
        st_m = st._replace(balance_u=balance_u[e], flow=flow[e], wallet=wallet[a], soc=st.soc[a],
                           breakdown=st.breakdown[a], grid_account=0.0)
        st_m, g = trade_goods(sc, ba.per_market[m], state_m, actions[a], st_m, int(bs.t[m]) + 1 >= sc.episode_steps)
        balance_u[e], flow[e], wallet[a] = st_m.balance_u, st_m.flow, st_m.wallet
        grid_account[m] += st_m.grid_account
        results.append(g)
    return st._replace(balance_u=balance_u, flow=flow, wallet=wallet), tuple(results), grid_account


def observe(sc: Scenario, ba: BatchAgents, bs: BatchState, static: np.ndarray, scale: np.ndarray,
            sellable: np.ndarray, needed: np.ndarray, liquidity: tuple, layout: Layout) -> np.ndarray:
    """obs [M*N, O] float32 of every market (one market: M = 1); rows of inactive agents are zero.

    One compiled pass (`kernels.observation_rows`) computes the per-market fields (prices,
    imbalance, time, shock) once per market and writes them with the per-agent fields, clipped to
    the space, into a copy of the episode's static rows [O, M*N]; the observation is its transpose,
    an [M*N, O] array in column-major memory order (index it as any array;
    `np.ascontiguousarray(obs)` where a library needs row-major)."""
    agents = ba.flat
    market = layout.market
    degree, outbound, inbound = liquidity
    liq = sc.mean_degree * 0.5 * (sc.channel_capacity[0] + sc.channel_capacity[1])
    if sc.channel_sizing == "spend":   # channels sized by spend: each market's typical channel
        from .channels import expected_spend

        per = sc.mean_degree * sc.channel_sizing_steps * expected_spend(sc, agents).reshape(layout.n_markets, -1).mean(
            axis=1)
        outbound, inbound, liq = outbound / per[market], inbound / per[market], 1.0
    buf = np.empty_like(static)
    several_goods = len(sc.goods) > 1
    kernels.observation_rows(
        buf=buf, static=static, static_rows=_static_rows(static.shape[0]), rows=_AGENT_ROWS, sellable=sellable, needed=needed, soc=bs.soc, capacity=agents.capacity,
        storage=agents.is_storage, last_sold=bs.last_sold, last_bought=bs.last_bought, last_profit=bs.last_profit,
        inv_scale=_inv_scale(ba, scale), degree=degree, outbound=outbound, inbound=inbound,
        retail=float(sc.retail_tariff), liq=float(liq),
        mean_degree=float(sc.mean_degree), low=OBS_LOW, high=OBS_HIGH, market=market,
        good_key=ba.good_key(bs.ref_price.shape[1]), good_rows=_GOOD_ROWS, scalar_rows=_SCALAR_ROWS,
        ref_price=bs.ref_price, clearing_price=bs.clearing_price, price_history=bs.price_history,
        history_len=bs.history_len, supply=bs.supply, demand=bs.demand_total, volume=bs.volume,
        time_vals=time_fields(sc, bs.t), t=bs.t, shock_remaining=bs.shock_remaining, shock_kind=bs.shock_kind,
        shock_row0=_SHOCK_ROW0, n_shock_rows=N_SHOCKS - 1, episode_steps=int(sc.episode_steps), active=bs.active,
        zero_inactive=not several_goods)
    if several_goods:
        for m in range(layout.n_markets):
            a = layout.agents_of(m)
            good_rows(sc, ba.per_market[m], bs.market(m, layout), scale[a], buf[:, a])
        if not bs.active.all():
            buf[:, ~bs.active] = 0.0
    return buf.T


def _inv_scale(ba: BatchAgents, scale: np.ndarray) -> np.ndarray:
    """1 / max(scale, 1e-12) [M*N]: what the observation multiplies the agents' energies by, computed once
    per episode's scale (cached on the agents' batch view)."""
    hit = ba.__dict__.get("_inv_scale")
    if hit is None or hit[0] is not scale:
        hit = ba.__dict__["_inv_scale"] = (scale, 1.0 / np.maximum(scale, 1e-12))
    return hit[1]


_GOOD_ROWS = np.array([OBS_INDEX[k] for k in ("ref_price", "clearing_price", "price_change", "imbalance",
                                              "traded_share")], dtype=np.int64)
_SCALAR_ROWS = np.array([OBS_INDEX[k] for k in ("price_level", "hour_sin", "hour_cos", "episode_progress",
                                                "shock_remaining")], dtype=np.int64)
_SHOCK_ROW0 = OBS_INDEX["shock_demand_surge"]
_DYNAMIC_ROWS = frozenset(_AGENT_ROWS.tolist() + _GOOD_ROWS.tolist() + _SCALAR_ROWS.tolist()
                          + list(range(_SHOCK_ROW0, _SHOCK_ROW0 + N_SHOCKS - 1)))
_STATIC_ROWS: dict = {}


def _static_rows(width: int) -> np.ndarray:
    """Rows of an observation of `width` columns that `observations.static_columns` fixes for the
    episode (every row the observation kernel does not compute)."""
    rows = _STATIC_ROWS.get(width)
    if rows is None:
        rows = _STATIC_ROWS[width] = np.array([j for j in range(width) if j not in _DYNAMIC_ROWS], dtype=np.int64)
    return rows


_TIME: dict = {}


def time_fields(sc: Scenario, t: np.ndarray) -> np.ndarray:
    """[3, M] of every market's step `t`: the time-of-day level / retail tariff, sine and cosine of
    the hour; [3, 1] when the clocks agree (the usual case), cached per scenario and hour."""
    if t.shape[0] == 1 or (t == t[0]).all():
        key = (id(sc), physics.hour_of_day(sc, int(t[0])))
        hit = _TIME.get(key)
        if hit is None or hit[0] is not sc:
            if len(_TIME) > 4096:
                _TIME.clear()
            hit = _TIME[key] = (sc, _time_rows(sc, t[:1], hours(sc, t[:1])))
        return hit[1]
    return _time_rows(sc, t, hours(sc, t))


def _time_rows(sc: Scenario, t: np.ndarray, hour: np.ndarray) -> np.ndarray:
    angle = 2 * np.pi * hour / 24.0
    return np.stack([levels(sc, t) / sc.retail_tariff, np.sin(angle), np.cos(angle)])


# ---- one market: the ordinary step is the M = 1 case ------------------------------------------

_LAST: list = [None]   # the last (MarketState, BatchState) pair `step_one` returned (one store: thread-safe)


def one_market(sc: Scenario, agents: AgentParams, state: MarketState) -> tuple[BatchAgents, BatchState, Layout, int]:
    """A market as a batch of one, without copying its arrays (per-market fields get an [1] axis);
    the agents' batch view, the layout and the normals per step are cached on the agent parameters
    (each core's own: several cores of one scenario do not evict each other)."""
    n, e = agents.n, state.u.shape[0]
    hit = agents.__dict__.get("_as_batch")
    if hit is None or hit[0] is not sc or hit[2].n_slots != e:
        ba = BatchAgents(agents, AgentParams(**{f.name: getattr(agents, f.name)[None] for f in fields(AgentParams)}),
                         (agents,))
        hit = agents.__dict__["_as_batch"] = [sc, ba, Layout.of(1, n, e), None]
    _, ba, layout, normals = hit
    last = _LAST[0]
    if last is not None and last[0] is state:   # the state the last step returned: its own batch state
        bs = last[1]
    else:
        d: dict[str, Any] = {k: getattr(state, k) for k in AGENT_FIELDS + CHANNEL_FIELDS + FLOW_FIELDS}
        for k in PER_MARKET:
            x = getattr(state, k)
            if isinstance(x, np.ndarray):
                d[k] = _pad_history(x)[None] if k == "price_history" else x[None]
            else:
                d[k] = np.array([x], dtype=np.float64 if k in ("fee_sink", "grid_account") else np.int64)
        bs = BatchState(**d, history_len=np.array([state.price_history.shape[0]]), rng=(state.rng,),
                        rng_exo=(state.rng_exo,))
    if normals is None:
        normals = hit[3] = normals_per_step(sc, ba, bs)
    return ba, bs, layout, normals


def step_one(sc: Scenario, agents: AgentParams, state: MarketState, actions: np.ndarray,
             tradable_now: "tuple | None" = None, reuse_channels: bool = False):
    """`batch_step` of one market, in and out as `MarketState` (`step.market_step`)."""
    ba, bs, layout, k = one_market(sc, agents, state)
    new, res = batch_step(sc, ba, bs, actions, layout, k, tradable_now, reuse_channels)
    out = new.market(0, layout)
    _LAST[0] = (out, new)
    return out, res


__all__ = ["one_market", "step_one", "BatchAgents", "BatchState", "BatchResult", "Layout", "BlockIndex", "NormalBlock", "batch_step",
           "observe", "tradable", "normals_per_step", "clock"]

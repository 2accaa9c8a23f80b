"""`SupplyChainCore`: the array API of the MASER supply-chain economy (the fast path).

    core = SupplyChainCore("maser_exp1")            # or a SupplyChainScenario, plus field overrides
    obs = core.reset(seed=0)                        # [N, O] float32
    obs, rewards, terminations, truncations, info = core.step(actions)   # actions [N, 5], [N, 4] or None

One step is one virtual day, a pipeline of functions that write `SupplyState` in place (paper Figure 7;
a Ctrl-C during the day waits until it is whole, `envs/interrupts.py`):
neighbourhood query (`space`), customer slots (`protocol.refresh_slots`), movement (`movement`),
production (`production.produce`), offers / answers / sales (`protocol.negotiate`), food intake
and death (`production.live_kernel`), rewards and observations. `actions=None` (or rows outside
`mask`) follow the built-in MASER agents (the risk-factor rules); rows inside `mask` are learned
agents' actions in channel_market_v0's convention (ask, bid, quantity, concession; `envs/offers.py`,
each good's price cap as the span) plus `move`, in [-1, 1]: finite values outside are clipped, NaN
or inf is a ValueError naming the agent, and the state stays untouched. Actions [N, 4] (the energy
market's policies), or a NaN move, leave the agent's movement to the built-in rule.

Rewards: `reward="profit"`: the money an agent gained that day; `"stability"`: every agent gets
the share of the population alive at the day's end (the economy's survival, not its own profit);
both minus `death_penalty` the day it dies. An agent is terminated the day it dies (and stays
terminated); all are truncated after `days`. Money is conserved (it only moves between agents)
and goods balance: held = initial + produced - consumed - eaten (tests).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..obs_schema import ObsSchema
from ..compiled import Kernel, jit
from ..risk_rules import RiskParams, scalar_clip, scalar_clip_to, scalar_maximum
from ..streams import state_view
from ..interrupts import held_interrupt
from ..memory import retain_heap
from .parallel import kernel, prange
from .movement import neighbourhood, prospect, speeds, speeds_live, steer_and_move
from .production import _live_numpy, live_kernel, produce
from .protocol import DayOffers, DayTrades, negotiate, refresh_slots
from .scenario import GOOD_NAMES, KIND_NAMES, KINDS, SupplyChainScenario, make_scenario
from .state import LOTS, SupplyState

ACTION_NAMES = ("ask", "bid", "quantity", "concession", "move")
ASK, BID, QUANTITY, CONCESSION, MOVE = range(5)
N_ACTIONS = len(ACTION_NAMES)
OBS_COLUMNS = tuple(f"kind_{k}" for k in KIND_NAMES) + (
    "vital", "money", "input_stock", "product_stock", "food_stock", "producing", "risk",
    "suppliers_near", "customers_near", "food_sellers_near", "prospect", "own_price", "input_price", "food_price",
    "last_sales", "last_purchases", "last_profit", "customers", "x", "y", "progress")
# fixed bounds of every column (the observation space)
OBS_LOW = np.array([0.0] * 4 + [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -1, 0, 0, 0, 0], np.float32)
OBS_HIGH = np.array([1.0] * 4 + [1, 1, 2, 2, 2, 1, 1, 1, 1, 1, 1, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1], np.float32)


def _observe_numpy(kind, vital, money, hold, in_good, out_good, busy, r, counts, prospect, price, sales, purchases,
                   profit, customers, k_slots, xy, alive, batch, cap, in_price, budget, food_target, input_batches, width,
                   height, progress, food, n_kinds):
    """[N, O] float32 observation (`customers`: each agent's open customer slots, of `k_slots`) (`OBS_COLUMNS`, bounds `OBS_LOW`/`OBS_HIGH`; zeros for the dead). NumPy twin."""
    n = kind.shape[0]
    rows = np.arange(n)
    cols = []
    cols += [(kind == k).astype(np.float64) for k in range(n_kinds)]
    f_target = food_target * (1.5 - r)
    in_target = np.maximum(input_batches * batch[kind], 1.0)
    inp = np.where(in_good >= 0, hold[rows, np.maximum(in_good, 0)] / in_target, 0.0)
    cols += [vital, money / (money + budget), np.clip(inp, 0, 2),
             np.clip(hold[rows, out_good] / np.maximum(2 * batch[kind], 1.0), 0, 2),
             np.clip(hold[:, food] / np.maximum(f_target, 1.0), 0, 2), (busy > 0).astype(float),
             r, np.clip(counts[:, 0] / 5, 0, 1), np.clip(counts[:, 1] / 5, 0, 1),
             np.clip(counts[:, 2] / 5, 0, 1), prospect,
             np.clip(price / cap[out_good], 0, 2),
             np.where(in_good >= 0, np.clip(in_price[np.maximum(in_good, 0)] / cap[np.maximum(in_good, 0)], 0, 2), 0.0),
             np.full(n, np.clip(in_price[food] / cap[food], 0, 2)),
             np.clip(sales / budget, 0, 1), np.clip(purchases / budget, 0, 1),
             np.clip(profit / budget, -1, 1), customers / k_slots,
             xy[:, 0] / width, xy[:, 1] / height, np.full(n, progress)]
    obs = np.stack(cols, axis=1).astype(np.float32)
    obs[~alive] = 0.0
    return np.clip(obs, OBS_LOW, OBS_HIGH)


def _observe_loop(kind, vital, money, hold, in_good, out_good, busy, r, counts, prospect, price, sales, purchases,
                  profit, customers, k_slots, xy, alive, batch, cap, in_price, budget, food_target, input_batches, width,
                  height, progress, food, n_kinds):
    """`_observe_numpy` one agent at a time (compiled; threaded by chunks of agents): the same float64 values,
    rounded to float32, clipped."""
    n = kind.shape[0]
    w = OBS_LOW.shape[0]
    o = np.empty((n, w), np.float32)
    c_food = _sclip(in_price[food] / cap[food], 0.0, 2.0)
    chunks = min(n, 64)                          # one row buffer a chunk (no allocation per agent)
    for ch in prange(chunks):
        v = np.empty(w)
        for a in range(ch * n // chunks, (ch + 1) * n // chunks):
            v[:] = 0.0
            if alive[a]:
                for k in range(n_kinds):
                    v[k] = 1.0 if kind[a] == k else 0.0
                ig = in_good[a]
                og = out_good[a]
                b = batch[kind[a]]
                f_target = food_target * (1.5 - r[a])
                in_target = _smax(input_batches * b, 1.0)
                inp = hold[a, ig] / in_target if ig >= 0 else 0.0
                v[4] = vital[a]
                v[5] = money[a] / (money[a] + budget)
                v[6] = _sclip(inp, 0.0, 2.0)
                v[7] = _sclip(hold[a, og] / _smax(2 * b, 1.0), 0.0, 2.0)
                v[8] = _sclip(hold[a, food] / _smax(f_target, 1.0), 0.0, 2.0)
                v[9] = 1.0 if busy[a] > 0 else 0.0
                v[10] = r[a]
                v[11] = _sclip(counts[a, 0] / 5, 0.0, 1.0)
                v[12] = _sclip(counts[a, 1] / 5, 0.0, 1.0)
                v[13] = _sclip(counts[a, 2] / 5, 0.0, 1.0)
                v[14] = prospect[a]
                v[15] = _sclip(price[a] / cap[og], 0.0, 2.0)
                v[16] = _sclip(in_price[ig] / cap[ig], 0.0, 2.0) if ig >= 0 else 0.0
                v[17] = c_food
                v[18] = _sclip(sales[a] / budget, 0.0, 1.0)
                v[19] = _sclip(purchases[a] / budget, 0.0, 1.0)
                v[20] = _sclip(profit[a] / budget, -1.0, 1.0)
                v[21] = customers[a] / k_slots
                v[22] = xy[a, 0] / width
                v[23] = xy[a, 1] / height
                v[24] = progress
            for c in range(w):
                o[a, c] = _sclip_to(np.float32(v[c]), OBS_LOW[c], OBS_HIGH[c])
    return o


_sclip = jit(scalar_clip) or scalar_clip
_sclip_to = jit(scalar_clip_to) or scalar_clip_to
_smax = jit(scalar_maximum) or scalar_maximum
_NO_ANGLE = np.zeros(0)             # the angles are drawn inside `direction` (live generator state)
observe_kernel = kernel("supply_chain_observe", _observe_numpy, _observe_loop, split="kind")


def _mean_price_numpy(out_good, price, alive, start):
    """[G] mean price of the alive producers of each good, `start` where none is alive. NumPy twin."""
    cnt = np.bincount(out_good[alive], minlength=start.shape[0])
    tot = np.bincount(out_good[alive], weights=price[alive], minlength=start.shape[0])
    return np.where(cnt > 0, tot / np.maximum(cnt, 1), start)


def _mean_price_loop(out_good, price, alive, start):
    """`_mean_price_numpy` in one pass (compiled; sums in agent order, like bincount)."""
    g = start.shape[0]
    cnt = np.zeros(g, np.int64)
    tot = np.zeros(g)
    for a in range(out_good.shape[0]):
        if alive[a]:
            cnt[out_good[a]] += 1
            tot[out_good[a]] += price[a]
    out = start.copy()
    for k in range(g):
        if cnt[k] > 0:
            out[k] = tot[k] / max(cnt[k], 1)
    return out


mean_price_kernel = Kernel("supply_chain_mean_price", _mean_price_numpy, jit(_mean_price_loop))


def _books_numpy(seller, buyer, value, money, money_before, alive_before, dead, stability, alive_share, penalty):
    """The day's books [N]: (sales, purchases, profit, rewards): the value sold and bought, the money gained,
    the reward (`stability`: the share of the population alive, else the profit; 0 for agents dead before
    the day; minus `penalty` the day an agent dies). NumPy twin of `_books_loop`."""
    n = money.shape[0]
    sales = np.bincount(seller, weights=value, minlength=n).astype(np.float64)      # float64 on a day without
    purchases = np.bincount(buyer, weights=value, minlength=n).astype(np.float64)   # trades too (bincount: int64)
    profit = money - money_before
    rewards = np.full(n, alive_share) if stability else profit.copy()
    return sales, purchases, profit, np.where(alive_before, rewards, 0.0) - penalty * dead


def _books_loop(seller, buyer, value, money, money_before, alive_before, dead, stability, alive_share, penalty):
    """`_books_numpy` in two passes (compiled): the trades summed in their order (as bincount), then per
    agent."""
    n = money.shape[0]
    sales = np.zeros(n)
    purchases = np.zeros(n)
    for x in range(seller.shape[0]):
        sales[seller[x]] += value[x]
    for x in range(buyer.shape[0]):
        purchases[buyer[x]] += value[x]
    profit = np.empty(n)
    rewards = np.empty(n)
    for a in range(n):
        profit[a] = money[a] - money_before[a]
        r = alive_share if stability else profit[a]
        r = r if alive_before[a] else 0.0
        rewards[a] = r - penalty * (1.0 if dead[a] else 0.0)
    return sales, purchases, profit, rewards


books_kernel = Kernel("supply_chain_books", _books_numpy, jit(_books_loop))


def _day_end_numpy(alive, vital, died, hold, producing, food, decay, work, restore, t, seller, buyer, value, money,
                   money_before, stability, penalty):
    """Food intake, vital energy and death (`production.live_kernel`), then the day's books (`books_kernel`;
    `alive` is the population before the day, the stability share the one after): (vital, alive, died, dead,
    portions eaten, sales, purchases, profit, rewards, alive after, died today). Twin of `_day_end_loop`."""
    vital, new_alive, died, dead, eaten = _live_numpy(alive, vital, died, hold, producing, food, decay, work,
                                                      restore, t)
    n_alive, n_dead = int(np.count_nonzero(new_alive)), int(np.count_nonzero(dead))
    share = n_alive / alive.shape[0] if stability else 0.0     # = alive.mean(): a whole count over N
    books = _books_numpy(seller, buyer, value, money, money_before, alive, dead, stability, share, penalty)
    return (vital, new_alive, died, dead, eaten) + books + (n_alive, n_dead)


def _day_end_loop(alive, vital, died, hold, producing, food, decay, work, restore, t, seller, buyer, value, money,
                  money_before, stability, penalty):
    """`_day_end_numpy` in one compiled call (the serial live pass, the counts, the books loops)."""
    vital, new_alive, died, dead, eaten = _live_nb(alive, vital, died, hold, producing, food, decay, work, restore, t)
    n_alive = 0
    n_dead = 0
    for a in range(alive.shape[0]):
        n_alive += new_alive[a]
        n_dead += dead[a]
    share = n_alive / alive.shape[0] if stability else 0.0
    sales, purchases, profit, rewards = _books_nb(seller, buyer, value, money, money_before, alive, dead, stability,
                                                  share, penalty)
    return vital, new_alive, died, dead, eaten, sales, purchases, profit, rewards, n_alive, n_dead


_live_nb, _books_nb = live_kernel.compiled, books_kernel.compiled
day_end_kernel = Kernel("supply_chain_day_end", _day_end_numpy, jit(_day_end_loop) if _books_nb is not None else None)


def _exact_cast(name: str, a: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """`a` as the state field's `dtype` (a copy), when every value keeps its value there (NaN stays NaN; a
    checkpoint of int64 partners or float64 slot days loads into the narrower arrays); ValueError naming
    the field, the first value that does not fit and the dtype otherwise (the state stays untouched)."""
    if a.dtype.kind not in "biuf":
        raise ValueError(f"supply-chain state dict: {name} has dtype {a.dtype}; allowed: numbers ({dtype})")
    with np.errstate(invalid="ignore", over="ignore"):
        c = a.astype(dtype)
    same = c == a
    if a.dtype.kind == "f" and c.dtype.kind == "f":
        same |= np.isnan(a) & np.isnan(c)
    if not same.all():
        i = tuple(int(x) for x in np.argwhere(~same)[0])
        raise ValueError(f"supply-chain state dict: {name}{list(i)} = {a[i]!r} does not fit the state's {dtype}; "
                         f"allowed: values {dtype} holds exactly")
    return c


class SupplyChainCore:
    """Struct-of-arrays MASER economy with reset(seed) / step(actions)."""

    action_fields = ACTION_NAMES   # the columns of an action row, as on the energy cores
    n_actions = N_ACTIONS

    def __init__(self, scenario: "str | SupplyChainScenario | None" = None, risk: RiskParams | None = None,
                 **overrides: Any) -> None:
        self.scenario = make_scenario(scenario, **overrides)
        retain_heap()                          # the day's temporaries reuse freed pages (envs/memory.py)
        sc = self.scenario
        self.risk = risk if risk is not None else RiskParams(r_range=sc.r_range)
        self.n_agents = sc.n_agents
        self.obs_schema = ObsSchema(OBS_COLUMNS)
        self.kind_names = KIND_NAMES
        self.good_names = GOOD_NAMES
        good_of = {g: i for i, g in enumerate(GOOD_NAMES)}
        self._out = np.array([good_of[k.traits["produces"]] for k in KINDS], np.int64)
        self._in = np.array([good_of[k.traits["input"]] if k.traits["input"] else -1 for k in KINDS], np.int64)
        self.food = good_of["food"]
        self._days = np.array(sc.kind_param("production_days"), np.int64)
        self._batch = np.array(sc.kind_param("batch"), np.float64)
        self._labour = np.array(sc.kind_param("labour_cost"), np.float64)
        self._cap = np.array(sc.good_param("price_cap"), np.float64)
        self._pkg = np.array(sc.good_param("package"), np.float64)
        self._start = np.array(sc.good_param("start_price"), np.float64)
        self.kind = np.repeat(np.arange(len(KINDS)), sc.counts()).astype(np.int64)
        self.agent_names = tuple(f"{KIND_NAMES[k]}_{i}" for k, c in enumerate(sc.counts()) for i in range(c))
        self.state: SupplyState | None = None
        self.topology_version = 0          # bumps on a day a customer slot opens or lapses (view)
        self.last_trades: DayTrades | None = None
        self.last_offers: DayOffers | None = None
        self.shocks: list[tuple[int, int]] = []

    # ---- reset ------------------------------------------------------------------------------
    def reset(self, seed: "int | None" = None) -> np.ndarray:
        sc, n = self.scenario, self.n_agents
        rng = np.random.default_rng(seed)
        kind = self.kind
        xy = rng.uniform(0.0, 1.0, (n, 2)) * np.array([sc.width, sc.height])
        r = rng.uniform(*sc.r_range, size=n)
        g = len(GOOD_NAMES)
        hold = np.zeros((n, g))
        out_good, in_good = self._out[kind], self._in[kind]
        hold[:, self.food] = float(sc.initial_food) + np.where(out_good == self.food, float(sc.seller_stock), 0.0)
        out_cost = self._start[out_good].copy()
        k = sc.contacts
        self.state = SupplyState(
            kind=kind.copy(), out_good=out_good, in_good=in_good, r=r, alive=np.ones(n, bool),
            died=np.full(n, -1, np.int64), xy=xy, heading=np.zeros((n, 2)), speed=np.zeros(n), path=np.zeros(n),
            vital=np.ones(n), money=np.full(n, float(sc.initial_budget)), hold=hold,
            lot_qty=np.zeros((n, LOTS)), lot_cost=np.zeros((n, LOTS)), out_cost=out_cost,
            busy=np.zeros(n, np.int64), wip=np.zeros(n), wip_cost=np.zeros(n), price=self._start[out_good].copy(),
            last_paid=np.full((n, 2), np.nan), partner=np.full((n, k), -1, np.int32), points=np.zeros((n, k)),
            n_tr=np.zeros((n, k), np.float32), value_sum=np.zeros((n, k)), t_first=np.zeros((n, k), np.float32),
            t_last=np.zeros((n, k), np.float32), list_price=np.full((n, k), np.nan), outcome=np.zeros((n, k), np.int8),
            offered=np.zeros((n, k), bool), away=np.zeros((n, k), np.int16), produced=np.zeros(g), consumed=np.zeros(g), eaten=np.zeros(g),
            initial_goods=hold.sum(axis=0), money0=float(n * sc.initial_budget), t=0, rng=rng)
        self.shocks = []
        self.topology_version = 0
        self._zero_day()
        return self.observe()

    def view(self, agents: Any = None):
        """The `MarketView`-shaped window of a policy controlling `agents` (`view.SupplyChainView`)."""
        from .view import SupplyChainView

        return SupplyChainView(self, agents)

    def _zero_day(self) -> None:
        n = self.n_agents
        z = np.zeros(0, np.int64)
        self.last_trades = DayTrades(z, z, z, np.zeros(0), np.zeros(0), z)
        self.last_offers = DayOffers(z, np.zeros(0), np.zeros(0, bool))
        self._sales = np.zeros(n)
        self._purchases = np.zeros(n)
        self._profit = np.zeros(n)
        self._counts = np.zeros((n, 3))
        self._prospect = np.zeros(n)
        self._dead_today = np.zeros(n, bool)

    # ---- input ------------------------------------------------------------------------------
    def check_actions(self, actions: Any, mask: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """(actions [N, 5] float64 clipped (move NaN for [N, 4]: the rule moves), learned mask [N] bool);
        ValueError/TypeError naming the agent. Fresh arrays: the caller may write them."""
        if actions is None and mask is None:
            return np.zeros((self.n_agents, N_ACTIONS)), np.zeros(self.n_agents, bool)
        return self._checked_actions(actions, mask)

    def _checked_actions(self, actions: Any, mask: Any) -> tuple[np.ndarray, np.ndarray]:
        """`check_actions` for the step: on a built-in day (no actions, no mask) the same two zero arrays
        each day, which the step only reads (no 400 kB zeroed a day at 10,000 agents)."""
        n = self.n_agents
        if actions is None and mask is None:
            idle = self.__dict__.get("_idle")
            if idle is None or idle[0].shape[0] != n:
                idle = self._idle = (np.zeros((n, N_ACTIONS)), np.zeros(n, bool))
            return idle
        if mask is None:
            learned = np.ones(n, bool) if actions is not None else np.zeros(n, bool)
        else:
            learned = np.asarray(mask)
            if learned.dtype != bool or learned.shape != (n,):
                raise ValueError(f"mask: shape {learned.shape}, dtype {learned.dtype}; allowed: bool [{n}]")
        if actions is None:
            if learned.any():
                raise ValueError("actions = None with a mask of learned agents; pass their actions")
            return np.zeros((n, N_ACTIONS)), learned
        try:
            a = np.asarray(actions, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"actions: {type(actions).__name__} is not numeric; allowed: a float array [{n}, 5] or [{n}, 4]") from None
        if a.shape not in ((n, N_ACTIONS), (n, N_ACTIONS - 1)):
            raise ValueError(f"actions: shape {a.shape}; allowed: [{n}, 5] ({', '.join(ACTION_NAMES)}) or [{n}, 4] "
                             "(without move)")
        if a.shape[1] < N_ACTIONS:
            a = np.concatenate([a, np.full((n, 1), np.nan)], axis=1)
        rule_moves = np.isnan(a[:, MOVE])                 # move NaN: the built-in rule moves the agent
        bad = ~np.isfinite(a) & learned[:, None]
        bad[:, MOVE] &= ~rule_moves
        if bad.any():
            i, c = np.argwhere(bad)[0]
            raise ValueError(f"actions: agent {self.agent_names[i]!r} {ACTION_NAMES[c]} = {a[i, c]!r}; "
                             "allowed: finite numbers in [-1, 1] (move may be NaN: the rule moves)")
        move = np.where(rule_moves, np.nan, np.clip(np.nan_to_num(a[:, MOVE]), -1.0, 1.0))
        a = np.clip(np.nan_to_num(a), -1.0, 1.0)
        a[:, MOVE] = move
        return a, learned

    # ---- the day ------------------------------------------------------------------------------
    def step(self, actions: Any = None, mask: Any = None):
        """One day (module docstring: the phases). `actions` [N, A] of the learned agents (`mask` [N] says
        which; None: every agent on the built-in rules). Returns obs, rewards, terminations, truncations,
        info; bad actions are a ValueError before anything changes."""
        if self.state is None:
            raise RuntimeError("SupplyChainCore.step before reset(seed)")
        if self.done:
            raise RuntimeError(f"SupplyChainCore.step after the last day ({self.scenario.days}); call reset")
        act, learned = self._checked_actions(actions, mask)
        with held_interrupt():   # the day writes the state in place: a Ctrl-C waits until the day is whole
            return self._day(actions, mask, act, learned)

    def _day(self, actions: Any, mask: Any, act: np.ndarray, learned: np.ndarray):
        """The day's phases on checked actions, writing the state in place."""
        sc = self.scenario
        st = self.state
        n = self.n_agents
        money_before = st.money.copy()
        alive_before = st.alive                # not written in place: the day's end makes a new one
        if sc.shock_day == st.t:
            self.move_key_agent()
        # 1. neighbourhood and customer slots
        counts, start, cand = neighbourhood(st, sc.radius, sc.width, sc.height, self.food)
        changed, reach, customers, pull = refresh_slots(st, start, cand, sc.radius, sc.lapse_days)
        self.topology_version += int(changed > 0)
        # 2. movement: prospect, stay or move, direction and speed
        s, counts = prospect(st, counts, self.food, self._batch)
        live = state_view(st.rng)            # a PCG64: the kernels draw from its live state (the same numbers)
        if live is not None:
            speed, turn = speeds_live(s, st.r, live, sc.restless, sc.max_speed)
            angle = _NO_ANGLE
        else:
            draws = st.rng.random(n)
            angle = st.rng.uniform(0.0, 2.0 * np.pi, n)
            speed, turn = speeds(s, st.r, draws, sc.restless, sc.max_speed), None    # 0 where satisfied (stays)
        if (actions is not None or mask is not None) and learned.any():   # learned agents with a move of their own
            speed = np.where(learned & ~np.isnan(act[:, MOVE]), np.maximum(act[:, MOVE], 0.0) * sc.max_speed, speed)
        steer_and_move(st, counts, angle, st.rng, sc.radius, reach, pull, turn, speed, sc.inertia, sc.width, sc.height)
        # 3. production
        producing = produce(st, self._days, self._batch, self._labour)
        # 4. offers, answers, sales (distances after the move); learned prices around the day's ref price
        ref = self.mean_price()
        trades, offers = negotiate(st, sc.radius, self.risk, cap=self._cap, pkg=self._pkg, food=self.food,
                                   food_scale=sc.food_target, input_batches=sc.input_batches, batch=self._batch,
                                   advertising=sc.advertising, learned=learned, ask=act[:, ASK], bid=act[:, BID],
                                   qty=act[:, QUANTITY], concession=act[:, CONCESSION], ref=ref, reach=reach)
        # 5. food intake, vital energy, death (`production.live_kernel`); 6. bookkeeping, rewards: one call
        value = trades.qty * trades.price
        (st.vital, st.alive, st.died, dead, eaten, self._sales, self._purchases, self._profit, rewards, n_alive,
         n_dead) = day_end_kernel(
            alive=alive_before, vital=st.vital, died=st.died, hold=st.hold, producing=producing, food=int(self.food),
            decay=float(sc.vital_decay), work=float(sc.work_energy), restore=float(sc.food_energy), t=int(st.t),
            seller=trades.seller, buyer=trades.buyer, value=value, money=st.money, money_before=money_before,
            stability=sc.reward == "stability", penalty=float(sc.death_penalty))
        st.eaten[self.food] += eaten
        st.t += 1
        self._counts, self._prospect, self._dead_today = counts, s, dead
        self.last_trades, self.last_offers = trades, offers
        terminations = ~st.alive
        truncations = st.alive.copy() if st.t >= sc.days or n_alive == 0 else np.zeros(n, bool)   # self.done
        info = {"day": st.t, "alive": int(n_alive), "trades": int(trades.seller.size), "volume": float(value.sum()),
                "died": int(n_dead)}
        return self._observe(customers), rewards, terminations, truncations, info

    @property
    def done(self) -> bool:
        return self.state is not None and (self.state.t >= self.scenario.days or not self.state.alive.any())

    # ---- shocks -----------------------------------------------------------------------------
    def key_agent(self) -> int:
        """The alive Seller with the most transactions with its customers (the paper's key agent)."""
        st = self.state
        sellers = np.flatnonzero(st.alive & (st.out_good == self.food))
        if sellers.size == 0:
            raise ValueError("move_key_agent: no alive Seller to move")
        return int(sellers[np.argmax(st.n_tr[sellers].sum(axis=1, dtype=np.float64))])

    def move_key_agent(self, agent: "int | None" = None, to: "tuple[float, float] | None" = None) -> int:
        """Shock (experiment 4): move `agent` (default: the key Seller) to `to` (default: the corner of
        the space farthest from it). Its customer slots lapse as they go out of range."""
        if self.state is None:
            raise RuntimeError("move_key_agent before reset(seed)")
        st, sc = self.state, self.scenario
        a = self.key_agent() if agent is None else int(agent)
        if not 0 <= a < self.n_agents or not st.alive[a]:
            raise ValueError(f"move_key_agent: agent = {agent!r}; allowed: an alive agent index in [0, {self.n_agents})")
        if to is None:
            corners = np.array([[0, 0], [sc.width, 0], [0, sc.height], [sc.width, sc.height]], float)
            to = corners[np.argmax(np.linalg.norm(corners - st.xy[a], axis=1))] * 0.95 + 0.025 * np.array(
                [sc.width, sc.height])
        to = np.asarray(to, float)
        if to.shape != (2,) or not np.isfinite(to).all() or not (0 <= to[0] <= sc.width and 0 <= to[1] <= sc.height):
            raise ValueError(f"move_key_agent: to = {to!r}; allowed: a point inside [0, {sc.width}] x [0, {sc.height}]")
        st.xy[a] = to
        self.shocks.append((st.t, a))
        return a

    # ---- observation --------------------------------------------------------------------------
    def observe(self) -> np.ndarray:
        """[N, O] float32 observation of the current state (`OBS_COLUMNS`)."""
        return self._observe(np.count_nonzero(self.state.partner >= 0, axis=1))

    def _observe(self, customers: np.ndarray) -> np.ndarray:
        """The observation, given each agent's open customer slots (the step has them from the slots'
        refresh, the last change of the slots in a day)."""
        st, sc = self.state, self.scenario
        return observe_kernel(
            kind=st.kind, vital=st.vital, money=st.money, hold=st.hold, in_good=st.in_good, out_good=st.out_good,
            busy=st.busy, r=st.r, counts=self._counts, prospect=self._prospect, price=st.price, sales=self._sales,
            purchases=self._purchases, profit=self._profit, customers=customers, k_slots=int(st.partner.shape[1]),
            xy=st.xy, alive=st.alive,
            batch=self._batch, cap=self._cap, in_price=self.mean_price(), budget=max(sc.initial_budget, 1e-9),
            food_target=float(sc.food_target), input_batches=float(sc.input_batches), width=float(sc.width),
            height=float(sc.height), progress=st.t / sc.days, food=int(self.food), n_kinds=len(KINDS))

    # ---- summaries ----------------------------------------------------------------------------
    def mean_price(self) -> np.ndarray:
        """[G] mean current price of the alive producers of each good (paper Figure 11A); the start
        price where none is alive."""
        st = self.state
        return mean_price_kernel(out_good=st.out_good, price=st.price, alive=st.alive, start=self._start)

    def summary(self) -> dict:
        """The day's public numbers: alive per kind, prices, trades per good, volumes."""
        st = self.state
        tr = self.last_trades
        g = len(GOOD_NAMES)
        q = np.bincount(tr.good, weights=tr.qty, minlength=g)
        m = np.bincount(tr.good, weights=tr.qty * tr.price, minlength=g)
        vwap = np.where(q > 0, m / np.maximum(q, 1e-12), np.nan)
        return {
            "day": st.t,
            "alive": {k: int((st.alive & (st.kind == i)).sum()) for i, k in enumerate(KIND_NAMES)},
            "offered_price": dict(zip(GOOD_NAMES, map(float, self.mean_price()))),
            "transaction_price": dict(zip(GOOD_NAMES, map(float, vwap))),
            "trades": dict(zip(GOOD_NAMES, map(int, np.bincount(tr.good, minlength=g)))),
            "units": dict(zip(GOOD_NAMES, map(float, q))),
            "money_total": float(st.money.sum()),
        }

    def money_total(self) -> float:
        return float(self.state.money.sum())

    def goods_balance(self) -> np.ndarray:
        """[G] held - (initial + produced - consumed - eaten): zero to round-off."""
        st = self.state
        return st.hold.sum(axis=0) - (st.initial_goods + st.produced - st.consumed - st.eaten)

    # ---- state round trip -----------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Every array of the state, the day, the generator's state and the scenario (plain data)."""
        st = self.state
        if st is None:
            raise RuntimeError("state_dict before reset(seed)")
        out = {"scenario": self.scenario.to_dict(), "t": st.t, "money0": st.money0,
               "rng": st.rng.bit_generator.state, "arrays": st.array_dict(), "shocks": list(self.shocks)}
        return out

    def load_state_dict(self, d: dict) -> None:
        """Restore a `state_dict` of the same scenario; ValueError naming the field that does not fit (the
        core is then as it was)."""
        if not isinstance(d, dict) or set(d) != {"scenario", "t", "money0", "rng", "arrays", "shocks"}:
            raise ValueError("supply-chain state dict: allowed keys scenario, t, money0, rng, arrays, shocks")
        if d["scenario"] != self.scenario.to_dict():
            raise ValueError("supply-chain state dict: its scenario differs from this core's")
        saved = dict(self.__dict__)            # reset replaces (never mutates) what it sets
        try:
            self._load(d)
        except Exception:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise

    def _load(self, d: dict) -> None:
        self.reset(seed=0)
        ref = self.state.array_dict()
        arrays = d["arrays"]
        if set(arrays) != set(ref):
            raise ValueError(f"supply-chain state dict: arrays {sorted(set(arrays) ^ set(ref))} missing or unknown")
        cast = {}
        for k, v in ref.items():
            a = np.asarray(arrays[k])
            if a.shape != v.shape:
                raise ValueError(f"supply-chain state dict: {k} has shape {a.shape}; allowed: {v.shape}")
            cast[k] = _exact_cast(k, a, v.dtype)
        st = self.state
        for k, v in cast.items():
            setattr(st, k, v)
        st.t = int(d["t"])
        st.money0 = float(d["money0"])
        st.rng.bit_generator.state = d["rng"]
        self.shocks = [tuple(x) for x in d["shocks"]]


__all__ = ["SupplyChainCore", "ACTION_NAMES", "N_ACTIONS", "OBS_COLUMNS", "OBS_LOW", "OBS_HIGH", "ASK", "BID", "QUANTITY",
           "CONCESSION", "MOVE"]

"""Every registered compiled kernel against its twin (the registry `envs.compiled.KERNELS` is
iterated: a kernel added without inputs here fails), on real market states; and the whole step
with numba switched off in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from channelmarket.envs import compiled, kernels, streams, sums  # noqa: F401  (sums: registers its kernels)
from channelmarket.envs.breakdown import BREAKDOWN_FIELDS
from channelmarket.envs.core import MarketCore
from channelmarket.envs.mechanisms import bilateral
from channelmarket.envs.observations import _AGENT_ROWS, OBS_HIGH, OBS_LOW, agent_scale
from channelmarket.envs.offers import decode
from channelmarket.envs.step import current_tradable
from channelmarket.envs.payments import rebalance, splice  # noqa: F401  (registers their kernels: the market_cases below use them)

needs_numba = pytest.mark.skipif(not compiled.USE_NUMBA, reason="numba off or not installed: only the twins run")


def states(scenario: str, seed: int, steps: int):
    core = MarketCore(scenario, episode_steps=max(steps + 1, 2))
    core.reset(seed)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        acts = rng.uniform(-1, 1, (core.n_agents, 4))
        acts[rng.random(acts.shape) < 0.15] = rng.choice([-1.0, 0.0, 1.0])
        yield core, acts
        core.step(acts)


def close(a, b):
    for x, y in zip(a, b):
        np.testing.assert_allclose(np.asarray(x, dtype=float), np.asarray(y, dtype=float), rtol=1e-12, atol=1e-9)


def same(a, b):
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def market_cases(core, acts, i):
    """{kernel name: (keyword arguments, comparison)} on the market state of `core`."""
    sc, ag, st = core.scenario, core.agents, core.state
    sellable, needed = current_tradable(sc, ag, st)
    off = decode(sc, ag, core.check_actions(acts), st.ref_price, sellable, needed, st.active)
    agree = dict(u=st.u, v=st.v, is_open=st.open, sell_qty=off.sell_qty, buy_qty=off.buy_qty,
                 sells_good=ag.sells_good, buys_good=ag.buys_good, ask=off.ask, bid=off.bid, reserve=ag.reserve,
                 limit=ag.limit, concession=off.concession, rounds=sc.negotiation_rounds)
    channel, seller, buyer, price, _ = bilateral.agreements_numpy(**agree)
    tr = bilateral.clear_bilateral(sc, ag, st, off)
    cut = tr.cut if tr.cut is not None else np.zeros(tr.qty.shape[0], dtype=np.int8)
    pay = dict(channel=tr.channel, seller=tr.seller, buyer=tr.buyer, qty=tr.qty, price=tr.price, cut=cut, u=st.u,
               capacity=st.capacity, balance_u=st.balance_u, n=ag.n, round_off=1e-9)
    paid = kernels.pay_trades_numpy(**pay)
    draw = np.random.default_rng(i).random(st.u.shape[0])
    active = st.active.copy()
    if i % 3 == 2:
        active[::7] = False
    scale = np.maximum(agent_scale(sc, ag), 1e-12)
    degree, outbound, inbound = kernels.liquidity_numpy(ag.n, st.u, st.v, st.capacity, st.balance_u, st.open)
    m = 1 + i % 3   # the agents as m markets' worth of columns (per-market and per-good tables of m markets)
    market = np.arange(ag.n) * m // ag.n
    r = np.random.default_rng(i)
    g = 2
    width = len(OBS_LOW)
    dynamic = set(_AGENT_ROWS.tolist()) | {7, 9, 11, 13, 15, 20, 21, 22, 23, 24, 25, 26, 27, 28}
    rows = dict(static=r.uniform(0, 1, (width, ag.n)).astype(np.float32),
                static_rows=np.array([j for j in range(width) if j not in dynamic]), rows=_AGENT_ROWS, sellable=sellable, needed=needed, soc=st.soc, capacity=ag.capacity,
                storage=ag.is_storage, last_sold=st.last_sold, last_bought=st.last_bought, last_profit=st.last_profit,
                inv_scale=1.0 / np.maximum(scale * (np.arange(ag.n) % 5 > 0), 1e-12), degree=degree,
                outbound=outbound, inbound=inbound,
                retail=sc.retail_tariff, liq=sc.mean_degree * 50.0, mean_degree=float(sc.mean_degree), low=OBS_LOW,
                high=OBS_HIGH, market=market, good_key=market * g + np.arange(ag.n) % g,
                good_rows=np.array([7, 9, 11, 13, 15]), scalar_rows=np.array([20, 21, 22, 23, 24]),
                ref_price=r.uniform(0, 300, (m, g)), clearing_price=r.uniform(0, 300, (m, g)),
                price_history=r.uniform(0, 300, (m, 24, g)), history_len=r.integers(1, 25, m),
                supply=r.uniform(0, 5, (m, g)) * (r.random((m, g)) < 0.7),
                demand=r.uniform(0, 5, (m, g)) * (r.random((m, g)) < 0.7), volume=r.uniform(0, 3, (m, g)),
                time_vals=r.uniform(-1.5, 1.5, (3, 1 if i % 2 else m)), t=r.integers(0, 120, m),
                shock_remaining=r.integers(0, 9, m), shock_kind=r.integers(0, 5, m), shock_row0=25, n_shock_rows=4,
                episode_steps=96, active=active, zero_inactive=i % 2 == 0)
    return {
        "bilateral_agreements": (agree, lambda a, b: (same(a[:4], b[:4]), a[4] == b[4])),
        "ration_pairs": (dict(channel=channel, seller=seller, buyer=buyer, price=price, u=st.u, balance_u=st.balance_u,
                              capacity=st.capacity, sell_qty=off.sell_qty, buy_qty=off.buy_qty, n=ag.n),
                         lambda a, b: (close([a[0], a[2]], [b[0], b[2]]), same([a[1]], [b[1]]))),
        "pay_trades": (pay, close),
        "balances_after": (dict(balance_u=st.balance_u, capacity=st.capacity,   # clipped at 0 and at the capacity
                                flow_in_u=np.select([np.arange(st.u.shape[0]) % 5 == 0, np.arange(st.u.shape[0]) % 5 == 1],
                                                    [-2 * st.balance_u - 1, 2 * st.capacity + 1], paid[4])), same),
        "book_agents": (dict(storage=ag.is_storage, generator=ag.is_generator, consumer=ag.is_consumer,
                             eff=ag.efficiency, capacity=ag.capacity, grid_limit=ag.grid_limit,
                             marginal_cost=ag.marginal_cost, limit=ag.limit, sellable=sellable, needed=needed,
                             soc=st.soc, wallet=st.wallet, sold=paid[5], bought=paid[6], revenue=paid[7],
                             cost=paid[8], n_failed=paid[11], n_partial=paid[12], feed_in=sc.feed_in_tariff,
                             retail=sc.retail_tariff,
                             earned=np.random.default_rng(i).uniform(0, 2, ag.n) if i % 2 else np.zeros(0)),
                        lambda a, b: (close(a[:2], b[:2]), close([a[2]], [b[2]]), close([a[3]], [b[3]]))),
        "close_channels": (dict(u=st.u, v=st.v, capacity=st.capacity, balance_u=st.balance_u, is_open=st.open,
                                active=active, wallet=st.wallet, draw=draw, close_rate=0.3, open_rate=0.4, fee=0.05),
                           lambda a, b: (same([a[0], a[3]], [b[0], b[3]]), close([a[1]], [b[1]]), a[2] == b[2])),
        "liquidity": (dict(n=ag.n, u=st.u, v=st.v, capacity=st.capacity, balance_u=st.balance_u, is_open=st.open),
                      close),
        "channel_aftermath": (dict(util=st.utilization, flow=st.flow, old_capacity=st.capacity,
                                   opened=np.flatnonzero(draw < 0.05), decay=0.9, n=ag.n, u=st.u, v=st.v,
                                   capacity=st.capacity, balance_u=st.balance_u, is_open=st.open, parts=1 + i % 3),
                              lambda a, b: (same(a[:2], b[:2]), close(a[2:], b[2:]))),
        "open_channels": (open_case(sc, st, ag, draw, active), same),
        "lifecycle_uniform": (lifecycle_case(sc, st, ag, draw, active, i),
                              lambda a, b: (same(a[:5] + a[6:], b[:5] + b[6:]), close([a[5]], [b[5]]))),
        "channels_after_payments": (channel_pass_case(sc, st, ag, draw, active, paid[4], i),
                                    lambda a, b: (same(a[:7] + a[8:15], b[:7] + b[8:15]), close(a[7:8] + a[15:], b[7:8] + b[15:]))),
        "trade_totals": (dict(key=tr.good * 0 + (tr.seller % 3) * 2 + tr.good, qty=paid[1] * (np.arange(paid[1].shape[0]) % 4 > 0),
                              price=tr.price, previous=np.random.default_rng(i).uniform(10, 90, (3, 2))), same),
        "decode_offers": (decode_case(sc, ag, core.check_actions(acts), sellable, needed, active, i), same),
        "price_step": (price_case(i), same),
        **{name: (kw, None) for name, kw in kind_cases(i).items()},
        **{name: (kw, same_bytes) for name, kw in fused_kind_cases(i).items()},
        "clip_actions": (dict(actions=np.where(np.arange(acts.size).reshape(acts.shape) % 97 == 5, np.nan,
                                               acts * 3.0) if i % 2 else acts * 1.5, share=i % 2 == 0), same),
        "observation_rows": (rows, None),  # writes into buf: compared below
        "credit_fees": (dict(breakdown=np.random.default_rng(i).uniform(-50, 50, (ag.n, len(BREAKDOWN_FIELDS))),
                             earned=np.random.default_rng(i + 1).uniform(0, 3, ag.n) * (np.arange(ag.n) % 3 > 0)),
                        same),
        **payment_cases(st, off, ag, i),
        # row-order sums: bit for bit (the float32 observations too, and one column every third state)
        "column_sums": (dict(x=paid[7][:, None] if i % 3 == 2 else
                             np.random.default_rng(i).uniform(-50, 50, (ag.n, len(BREAKDOWN_FIELDS)))), same),
        "group_sums": (dict(x=np.random.default_rng(i).uniform(-5, 5, (ag.n, 7)).astype(np.float32 if i % 2 else np.float64),
                            group=np.random.default_rng(i).integers(-1, 4, ag.n), n_groups=4), same),
        "ration_routed": (routed_ration_case(sc, st, off, ag, i, agree, channel, seller, buyer, price),
                          lambda a, b: (same([a[0], a[1], a[2], a[5], a[6], a[7]], [b[0], b[1], b[2], b[5], b[6], b[7]]),
                                        close([a[3], a[4]], [b[3], b[4]]))),
        "bilateral_routed_clear": (routed_clear_case(sc, st, off, ag, i),
                                   lambda a, b: (same([a[0], a[1], a[2], a[5], a[6], a[7], a[9]],
                                                      [b[0], b[1], b[2], b[5], b[6], b[7], b[9]]),
                                                 close([a[3], a[4]], [b[3], b[4]]), a[8] == b[8])),
        "bilateral_routed_clear_pay": (routed_clear_pay_case(sc, st, off, ag, i), _same_clear_pay),
    }


def routed_clear_pay_case(sc, st, off, ag, i):
    """`routed_clear_case`, its trades also paid: every other state some agents and channels failed."""
    rng = np.random.default_rng(400 + i)
    faults = bool(i % 2)
    return dict(routed_clear_case(sc, st, off, ag, i), blocked_agent=rng.random(ag.n) < (0.05 if faults else 0.0),
                blocked_channel=rng.random(st.u.shape[0]) < (0.05 if faults else 0.0), faults=faults, round_off=1e-9)


def _same_clear_pay(a, b):
    """The clearing's ten outputs as `bilateral_routed_clear`'s, then trade_payments' twenty (integer
    and boolean outputs equal, floats to round-off)."""
    exact = (0, 1, 2, 5, 6, 7, 9) + tuple(10 + k for k in (2, 3, 14, 15, 16, 19))
    return (same([a[k] for k in exact], [b[k] for k in exact]), a[8] == b[8],
            close([x for k, x in enumerate(a) if k not in exact and k != 8],
                  [x for k, x in enumerate(b) if k not in exact and k != 8]))


def lifecycle_case(sc, st, ag, draw, active, i):
    """The market's channels as two markets' slots (agents split in halves), high close and open
    rates, spend-sized capacities every other state, wallets drawn so that some openings are refused."""
    rng = np.random.default_rng(400 + i)
    e, n = st.u.shape[0], ag.n
    # odd states: the candidate rows reserved from two generators (computed in the compiled build,
    # drawn with NumPy by the twin); even states: drawn
    rows = streams.claim_rows((np.random.default_rng(500 + i), np.random.default_rng(600 + i)), 2, e // 2,
                              reserve_min=0)
    cand, cand_stream = (rows.values, rows.handles) if i % 2 else (rng.random((2, e)), np.zeros((0, 4), np.uint64))
    slot_market = (np.arange(e) >= e // 2).astype(np.int64)
    half = n // 2
    u, v = st.u % half + slot_market * half, st.v % half + slot_market * half
    v = np.where(u == v, (v + 1 - slot_market * half) % half + slot_market * half, v).astype(np.int32)
    return dict(u=u.astype(np.int32), v=v, capacity=st.capacity, balance_u=st.balance_u, is_open=st.open & (draw > 0.2),
                active=active, wallet=rng.uniform(0, 300, n), draw=rng.random(e), cand=cand, cand_stream=cand_stream,
                close_rate=0.2, open_rate=0.5, fee=0.3, n=half, offset=slot_market * half, slot_market=slot_market,
                m=2, lo=50.0, hi=200.0, split=0.5, spend=rng.uniform(1, 30, n) if i % 2 else np.zeros(0),
                sizing_steps=3.0, mean_cap=125.0, parts=1 + i % 3)


def channel_pass_case(sc, st, ag, draw, active, flow_in_u, i):
    """`lifecycle_case`'s two markets after this state's payments (some flows past either bound),
    their draws from two generators' live states, fee policies drawn every other state."""
    kw = lifecycle_case(sc, st, ag, draw, active, i)
    for k in ("cand", "cand_stream", "parts", "draw"):
        del kw[k]
    e = st.u.shape[0]
    gens = (np.random.default_rng(800 + i), np.random.default_rng(np.random.SeedSequence(900 + i).spawn(2)[1]))
    states, _ = streams.live_states(gens)
    flow_in_u = np.select([np.arange(e) % 7 == 0, np.arange(e) % 7 == 1], [-2 * st.balance_u - 1, 2 * st.capacity + 1],
                          flow_in_u)
    return dict(kw, balance_u=st.balance_u, flow_in_u=flow_in_u, states=states.copy(), fees_on=i % 2 == 0,
                fee_base=st.fee_base + 0.5, fee_rate=st.fee_rate + 0.01, base_lo=0.1, base_hi=2.0, rate_lo=0.0,
                rate_hi=0.004, util=st.utilization, decay=0.9, in_place=i % 3 == 1)


KIND_OUTPUTS = {"ar1_clip": ("x",), "solar_output": ("out",), "load_output": ("out",), "wind_output": ("out",),
                "store_limits": ("sellable", "needed")}   # the kinds' kernels write these in place


def kind_cases(i):
    """The kinds' per-step kernels on m markets' [m, 50] grids, block 10:35: normals and weather as
    strided views (a batch's column blocks), NaN and values beyond the bounds, speeds past cut-out,
    stores over full and empty, shares per market."""
    r = np.random.default_rng(700 + i)
    m, n, a, b = 1 + i % 3, 50, 10, 35
    k = b - a
    def grid(lo, hi):
        x = r.uniform(lo, hi, (m, n))
        x[0, a + 1] = np.nan
        x[-1, a + 2] = -0.0
        return x
    z = r.normal(0, 4, (m, k + 7))[:, 3:3 + k]
    speed = grid(-1, 30)[:, a:b]
    cap = r.uniform(0.5, 8, (m, n))
    soc = cap * r.uniform(-0.1, 1.2, (m, n))
    soc[0, a + 3] = 0.0
    return {
        "ar1_clip": dict(x=grid(-0.5, 1.5), start=a, stop=b, phi=0.9, drift=0.03, noise=0.2 * (i % 2), z=z, lo=0.0,
                         hi=1.0 if i % 2 else np.inf),
        "solar_output": dict(out=np.zeros((m, n)), start=a, stop=b, capacity=cap, share=r.uniform(0, 1, (m, 1)),
                             cloud=grid(0, 1)[:, a:b], dt=0.25),
        "load_output": dict(out=np.zeros((m, n)), start=a, stop=b, capacity=cap, residential=r.random((m, n)) < 0.6,
                            res_share=r.uniform(0.4, 1.7, (m, 1)), ind_share=r.uniform(0.3, 1.1, (m, 1)),
                            noise=np.exp(0.05 * z), dt=0.25),
        "wind_output": dict(out=np.zeros((m, n)), start=a, stop=b, capacity=cap, speed=speed, cubed=speed**3,
                            cut_in3=27.0, span3=1701.0, cut_out=25.0, dt=0.25),
        "store_limits": dict(sellable=np.zeros((m, n)), needed=np.zeros((m, n)), start=a, stop=b,
                             efficiency=r.uniform(0.9, 0.98, (m, n)), power=cap * 0.5, capacity=cap, soc=soc, dt=0.25),
    }


def fused_kind_cases(i):
    """The built-in kinds' two passes (`kinds.fused`) on m markets' [m, 50] grids: blocks in any order,
    normals with NaN and beyond the bounds, weather with NaN and -0.0, speeds past cut-out."""
    r = np.random.default_rng(900 + i)
    m, n = 1 + i % 3, 50
    rows = [[kernels.KIND_SOLAR, 5, 15], [kernels.KIND_WIND, 15, 25], [kernels.KIND_CONSUMER, 30, 45]]
    if i % 2:
        rows = rows[::-1]
    col, weather = 2, []
    for code, a, b in rows:
        if code != kernels.KIND_CONSUMER:
            weather.append([code, a, b, col])
            col += b - a
    z = r.normal(0, 4, (m, col + 3))
    z[0, 3] = np.nan
    def grid(lo, hi):
        x = r.uniform(lo, hi, (m, n))
        x[0, 6], x[-1, 16], x[-1, 7] = np.nan, -0.0, -0.0
        return x
    speed = grid(-1, 30)
    cons = [row for row in rows if row[0] == kernels.KIND_CONSUMER][0]
    wind_row = [row for row in rows if row[0] == kernels.KIND_WIND][0]
    table = lambda x: np.array([list(t) + [0] for t in x] if len(x[0]) == 3 else x, dtype=np.int64)
    return {
        "kind_weather": dict(cloud=grid(-0.5, 1.5), wind=grid(-1, 30), blocks=table(weather), z=z, first=i % 3,
                             cloud_phi=0.9,
                             cloud_drift=0.03, cloud_noise=0.2 * (i % 2), wind_phi=0.8, wind_drift=1.6, wind_noise=1.0),
        "kind_energy": dict(blocks=table(rows), capacity=r.uniform(0.5, 8, (m, n)), residential=r.random((m, n)) < 0.6,
                            cloud=grid(0, 1), speed=speed, cubed=speed[:, wind_row[1]:wind_row[2]] ** 3,
                            load_noise=np.exp(0.05 * r.normal(0, 2, (m, cons[2] - cons[1]))),
                            solar_share=r.uniform(0, 1, (m, 1)), res_share=r.uniform(0.4, 1.7, (m, 1)),
                            ind_share=r.uniform(0.3, 1.1, (m, 1)), cut_in3=27.0, span3=1701.0, cut_out=25.0, dt=0.25),
    }


def same_bytes(a, b):
    """Outputs equal byte for byte (signed zeros and NaN too)."""
    for x, y in zip(a, b):
        assert np.asarray(x).tobytes() == np.asarray(y).tobytes()


def price_case(i):
    """m markets of g goods: prices at and beyond the bounds, nothing offered or traded in some, normals
    beyond the volatility bound, histories of every length; one level per market or per good."""
    r = np.random.default_rng(500 + i)
    m, g, h = 1 + i % 3, 1 + i % 2, 24
    ref = r.uniform(20, 260, (m, g))
    ref[0, 0] = 250.0
    supply = r.uniform(0, 5, (m, g)) * (r.random((m, g)) < 0.7)
    demand = r.uniform(0, 5, (m, g)) * (r.random((m, g)) < 0.7)
    return dict(ref=ref, level=r.uniform(30, 200, (m, 1 if i % 2 else g)), clearing=r.uniform(0, 300, (m, g)),
                volume=r.uniform(0, 3, (m, g)) * (r.random((m, g)) < 0.6), supply=supply, demand=demand,
                z=r.normal(0, 3, (m, g + 3))[:, :g], low=np.full(g, 40.0), high=np.full(g, 250.0),
                history=r.uniform(40, 250, (m, h, g)), history_len=r.integers(1, h + 1, m), reversion=0.2,
                vwap_weight=0.3, imbalance_gain=0.1 * (i % 3), volatility=0.05, bound=2.5)


def decode_case(sc, ag, acts, sellable, needed, active, i):
    """The agents as two markets' worth (reference prices of two goods each; some agents sell or buy
    nothing), actions with exact zeros, bounds and negative zeros."""
    rng = np.random.default_rng(300 + i)
    acts = acts.copy()
    acts[rng.random(acts.shape) < 0.1] = -0.0
    market = (np.arange(ag.n) >= ag.n // 2).astype(np.int64)
    sells = np.where(rng.random(ag.n) < 0.2, -1, ag.sells_good).astype(np.int8)
    return dict(actions=acts, ref_price=rng.uniform(20, 150, (2, 2)), market=market, sells_good=sells,
                buys_good=np.where(rng.random(ag.n) < 0.1, 1, ag.buys_good).astype(np.int8), reserve=ag.reserve,
                limit=ag.limit, storage=ag.is_storage, sellable=sellable, needed=needed, active=active,
                span=sc.retail_tariff - sc.feed_in_tariff, retail=sc.retail_tariff, min_quantity=1e-9)


def open_case(sc, st, ag, draw, active):
    """Reopening candidates of the closed slots under the draw (two markets' slot labels), some
    funders short of money: wallets drawn around what the channels need."""
    rng = np.random.default_rng(int(draw[0] * 1e6))
    is_open = st.open & (draw > 0.3)   # some slots closed whatever the market's state
    slots = np.flatnonzero(~is_open & (draw < 0.6))
    k = slots.shape[0]
    nu, nv = rng.integers(0, ag.n, k), rng.integers(0, ag.n, k)
    nv = np.where(nv == nu, (nu + 1) % ag.n, nv)
    cap = rng.uniform(*sc.channel_capacity, k)
    return dict(slots=slots, nu=nu, nv=nv, cap=cap, fund_u=cap * 0.5, fund_v=cap - cap * 0.5, fee=0.2, u=st.u, v=st.v,
                capacity=st.capacity, balance_u=st.balance_u, is_open=is_open, active=active,
                wallet=rng.uniform(0, 400, ag.n), slot_market=np.arange(st.u.shape[0]) % 2, m=2)


def routed_ration_case(sc, st, off, ag, i, agree, channel, seller, buyer, price):
    """Direct agreements and every buyer's widest routed candidate (2..4 hops), fee policies drawn
    so that some routes break the fee limit."""
    from channelmarket.envs.payments.routes import routed_candidates

    rng = np.random.default_rng(200 + i)
    rc = routed_candidates(st.u, st.v, st.open, st.capacity, st.balance_u, off.sell_qty, off.buy_qty,
                           ag.sells_good, ag.buys_good, 2 + i % 3)
    return dict(channel=channel, seller=seller, buyer=buyer, price=price, r_seller=rc.seller, r_buyer=rc.buyer,
                r_route=rc.route, r_width=rc.width, ask=off.ask, bid=off.bid, reserve=ag.reserve, limit=ag.limit,
                concession=off.concession, rounds=sc.negotiation_rounds, sell_qty=off.sell_qty, buy_qty=off.buy_qty,
                sells_good=ag.sells_good, u=st.u, balance_u=st.balance_u, capacity=st.capacity,
                fee_base=rng.uniform(0, 1.0, st.u.shape[0]) * (rng.random(st.u.shape[0]) < 0.5),
                fee_rate=rng.uniform(0, 0.05, st.u.shape[0]), max_fee_share=0.02 + 0.03 * (i % 2), n=ag.n)


def routed_clear_case(sc, st, off, ag, i):
    """The routed clearing in one call (2..4 hops): some channels not usable for routes (agents
    inactive), fee policies drawn so that some routes break the fee limit; every third state two
    goods, every third the first good wanted offered by no one."""
    rng = np.random.default_rng(300 + i)
    e_n = st.u.shape[0]
    sells, buys = ag.sells_good, ag.buys_good
    if i % 3 == 1:
        two = (np.arange(ag.n) % 2).astype(np.int8)
        sells, buys = np.where(sells >= 0, two, sells).astype(np.int8), np.where(buys >= 0, two[::-1], buys).astype(np.int8)
    elif i % 3 == 2:
        sells, buys = np.where(sells >= 0, 1, sells).astype(np.int8), np.where(buys >= 0, np.arange(ag.n) % 2, buys).astype(np.int8)
    return dict(u=st.u, v=st.v, is_open=st.open, usable=st.open & (rng.random(e_n) < (0.9 if i % 2 else 1.0)),
                sell_qty=off.sell_qty, buy_qty=off.buy_qty, sells_good=sells, buys_good=buys, ask=off.ask, bid=off.bid,
                reserve=ag.reserve, limit=ag.limit, concession=off.concession, rounds=sc.negotiation_rounds,
                balance_u=st.balance_u, capacity=st.capacity,
                fee_base=rng.uniform(0, 1.0, e_n) * (rng.random(e_n) < 0.5), fee_rate=rng.uniform(0, 0.05, e_n),
                max_fee_share=0.02 + 0.03 * (i % 2), max_hops=2 + i % 3, n=ag.n)


def payment_cases(st, off, ag, i):
    """The payment layer's kernels: one widest-route pass and HTLC payments over routes it found
    (some agents and channels blocked, fees drawn)."""
    from channelmarket.envs.payments import routes

    rng = np.random.default_rng(100 + i)
    usable = st.open & (rng.random(st.u.shape[0]) < 0.9)
    src, dst, side, ok = routes.directed_edges(st.u, st.v, st.capacity, st.balance_u, usable)
    payee = (off.sell_qty > 0) & (rng.random(ag.n) < 0.5)
    prev = np.where(payee, np.inf, rng.uniform(0, 50, ag.n) * (rng.random(ag.n) < 0.3))
    level = dict(src=src, dst=dst, side=side, usable=ok, prev_width=prev,
                 start_width=prev if i % 2 else np.zeros(ag.n),
                 prev_via=np.where(prev > 0, 0, -1).astype(np.int64), blocked_dst=payee & (rng.random(ag.n) < 0.5))
    w = routes.widest_routes(src, dst, side, ok, payee, 3)
    payers = np.flatnonzero(~payee)
    route, _, _ = routes.extract_routes(w, dst, payers, 3, use_last=False)
    pay = dict(route=route, payer=payers, amount=rng.uniform(0, 80, payers.shape[0]),
               max_fee=rng.uniform(0, 2, payers.shape[0]), u=st.u, v=st.v, capacity=st.capacity,
               balance_u=st.balance_u, fee_base=rng.uniform(0, 0.5, st.u.shape[0]),
               fee_rate=rng.uniform(0, 0.01, st.u.shape[0]), blocked_agent=rng.random(ag.n) < 0.05,
               blocked_channel=rng.random(st.u.shape[0]) < 0.05, n=ag.n)
    search = dict(u=st.u, v=st.v, capacity=st.capacity, balance_u=st.balance_u, usable=usable, payee=payee,
                  buyers=np.flatnonzero((off.buy_qty > 0) & ~payee), max_hops=1 + i % 4)
    from channelmarket.envs.payments.rebalance import depleted_sides

    owner, chan, other = depleted_sides(st.u, st.v, st.capacity, st.balance_u, usable, 0.3)
    tri = dict(u=st.u, v=st.v, capacity=st.capacity, balance_u=st.balance_u, usable=usable, owner=owner, chan=chan,
               other=other, n=ag.n)
    r = route.shape[0]
    # direct trades over random channels (either end buying, some cut or empty), then routed ones
    d = min(200, st.u.shape[0])
    dch = rng.choice(st.u.shape[0], d, replace=False)
    dbuy = np.where(rng.random(d) < 0.5, st.u[dch], st.v[dch]).astype(np.int64)
    dsell = np.where(dbuy == st.u[dch], st.v[dch], st.u[dch]).astype(np.int64)
    r = route.shape[0]
    chan = np.concatenate([dch, np.full(r, -2)]).astype(np.int64)
    if i % 3 == 0:
        chan[:10] = -1   # exchange trades
    tp = dict(channel=chan, seller=np.concatenate([dsell, rng.integers(0, ag.n, r)]),
              buyer=np.concatenate([dbuy, payers]), qty=rng.uniform(0, 2, d + r), price=rng.uniform(10, 60, d + r),
              cut=rng.choice(np.array([0, 1, 2], np.int8), d + r, p=[0.8, 0.1, 0.1]),
              route=np.concatenate([np.column_stack([dch, np.full((d, 2), -1)]), route]).astype(np.int64),
              unrouted=(rng.choice(np.array([0, 1, 2], np.int8), ag.n, p=[0.8, 0.1, 0.1]) if i % 2
                        else np.zeros(0, np.int8)),
              u=st.u, v=st.v, capacity=st.capacity, balance_u=st.balance_u, fee_base=pay["fee_base"],
              fee_rate=pay["fee_rate"], blocked_agent=pay["blocked_agent"], blocked_channel=pay["blocked_channel"],
              faults=bool(i % 2), n=ag.n, round_off=1e-9, max_fee_share=0.01 + 0.02 * (i % 3), max_hops=3)
    ints = (2, 3, 14, 15, 16)
    splicing = dict(u=st.u, v=st.v, capacity=st.capacity, balance_u=st.balance_u, usable=usable,
                    wallet=rng.uniform(-5, 300, ag.n), fee_sink=1.5, target=0.5, fee=0.5 * (i % 3),
                    below=(0.0, 0.05, 0.3, 0.6)[i % 4], above=(1.0, 0.9, 0.6, 0.4)[(i // 2) % 4])
    rebal = dict(u=st.u, v=st.v, capacity=st.capacity, balance_u=st.balance_u, usable=usable,
                 fee_base=pay["fee_base"], fee_rate=pay["fee_rate"], n=ag.n, below=(0.1, 0.3, 0.45)[i % 3],
                 target=0.5, max_fee_share=0.01 + 0.02 * (i % 3), fee_cap=(np.inf, 0.05)[i % 2])
    return {"rebalancing": (rebal, lambda a, b: (same([a[4]], [b[4]]), close(a[:4], b[:4]))),
            "splices": (splicing, lambda a, b: (same([a[5], a[6]], [b[5], b[6]]), close([a[0], a[1], a[2], a[4]],
                                                                                      [b[0], b[1], b[2], b[4]]),
                                              close([a[3]], [b[3]]))),
            "trade_payments": (tp, lambda a, b: (same([a[k] for k in ints], [b[k] for k in ints]),
                                                  close([x for k, x in enumerate(a) if k not in ints],
                                                        [x for k, x in enumerate(b) if k not in ints]))),
            "rebalance_triangles": (tri, lambda a, b: (same(a[:3], b[:3]), close([a[3]], [b[3]]))),
            "route_level": (level, lambda a, b: (same([a[1]], [b[1]]), close([a[0]], [b[0]]))),
            "route_search": (search, lambda a, b: (same([a[0], a[1], a[3]], [b[0], b[1], b[3]]), close([a[2]], [b[2]]))),
            "routed_candidates": (dict(u=st.u, v=st.v, usable=usable, capacity=st.capacity, balance_u=st.balance_u,
                                       sell_qty=off.sell_qty, buy_qty=off.buy_qty, sells_good=ag.sells_good,
                                       buys_good=np.where(rng.random(ag.n) < 0.2, 1 - ag.buys_good, ag.buys_good).astype(
                                           ag.buys_good.dtype) if i % 2 else ag.buys_good, max_hops=1 + i % 4),
                                  lambda a, b: (same([a[0], a[1], a[2], a[4]], [b[0], b[1], b[2], b[4]]),
                                                close([a[3]], [b[3]]))),
            "pay_routes": (pay, lambda a, b: (same([a[0]], [b[0]]), close(a[1:], b[1:])))}


def auction_cases(seed):
    """{kernel name: (keyword arguments, None)} of the eps-auction solver's phases on one CSR and one
    dense instance, from a fresh (all bidding) state."""
    from channelmarket.envs import eps_auction as ea

    rng = np.random.default_rng(seed)
    n, m = 30, 25
    a = np.where(rng.random((n, m)) < 0.4, rng.integers(1, 20, (n, m)).astype(float), -np.inf)
    out = []
    for mat in (ea._Dense(a.copy()), ea._CSR(*ea._csr_from_sorted(*np.nonzero(np.isfinite(a)), a[np.isfinite(a)], n),
                                            (n, m))):
        for method in ea.METHODS:
            fwd = dict(zip(("indptr", "indices", "data"), mat.kernel_arrays()), prices=np.zeros(m), eps=0.5,
                       assigned=np.full(n, -1, np.int64), owner=np.full(m, -1, np.int64), held=np.zeros(n))
            rev = dict(zip(("cindptr", "crows", "cdata"), mat.transpose().kernel_arrays()),
                       prices=rng.uniform(0, 3, m), eps=0.5, assigned=np.full(n, -1, np.int64),
                       owner=np.full(m, -1, np.int64), held=np.zeros(n), profit=np.zeros(n))
            out.append((f"auction_{method}_forward", fwd))
            out.append((f"auction_{method}_reverse", rev))
    return out


def copy_kw(kw):
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in kw.items()}


def builds(k):
    """The compiled builds of a kernel to check against its twin: the serial one, and the
    multi-threaded one where there is one (more than one thread)."""
    return ["compiled"] + (["parallel"] if k.parallel is not None else [])


@needs_numba
@pytest.mark.parametrize("scenario, seed", [("energy_small", 0), ("energy_default", 1), ("energy_default", 2)])
def test_every_registered_kernel_equals_its_twin(scenario, seed):
    covered = set()
    for i, (core, acts) in enumerate(states(scenario, seed, 30)):
        for name, (kw, check) in market_cases(core, acts, i).items():
            k = compiled.KERNELS[name]
            for build in builds(k):
                if name == "observation_rows":
                    n = core.n_agents
                    bufs = [np.full((len(OBS_LOW), n), np.nan, np.float32) for _ in range(2)]   # every row written
                    k.run(build, buf=bufs[0], **kw)
                    k.run("twin", buf=bufs[1], **kw)
                    np.testing.assert_array_equal(bufs[0], bufs[1])
                    assert not np.isnan(bufs[0]).any()
                elif name in KIND_OUTPUTS:   # writes its outputs in place: each on its own copy of them
                    outs = KIND_OUTPUTS[name]
                    a = dict(kw, **{o: kw[o].copy() for o in outs})
                    b = dict(kw, **{o: kw[o].copy() for o in outs})
                    with np.errstate(invalid="ignore"):
                        k.run(build, **a)
                        k.run("twin", **b)
                    for o in outs:   # bit for bit (signed zeros, NaN)
                        assert a[o].tobytes() == b[o].tobytes(), (name, o)
                elif name == "channels_after_payments":   # advances the generator states in place
                    a, b = copy_kw(kw), copy_kw(kw)
                    out_a, out_b = k.run(build, **a), k.run("twin", **b)
                    check(out_a, out_b)
                    same([a["states"]], [b["states"]])
                    assert (a["states"] != kw["states"]).any()
                    keys = ("u", "v", "capacity", "balance_u", "is_open", "fee_base", "fee_rate", "util")
                    for key, out in zip(keys, (2, 3, 4, 5, 6, 11, 12, 13)):
                        for args, res in ((a, out_a), (b, out_b)):
                            if kw["in_place"]:   # written into the arguments, returned as themselves
                                assert res[out] is args[key], key
                            else:   # the arguments untouched
                                assert args[key].tobytes() == kw[key].tobytes(), key
                elif name == "open_channels":   # sets is_open in place: each on its own copy
                    a, b = copy_kw(kw), copy_kw(kw)
                    check(k.run(build, **a), k.run("twin", **b))
                    same([a["is_open"]], [b["is_open"]])
                    assert (a["is_open"] != kw["is_open"]).any()
                else:
                    check(k.run(build, **copy_kw(kw)), k.run("twin", **copy_kw(kw)))
            covered.add(name)
    for name, kw in auction_cases(seed):
        k = compiled.KERNELS[name]
        a, b = copy_kw(kw), copy_kw(kw)
        k.run("compiled", **a)
        k.run("twin", **b)
        same([a[x] for x in ("prices", "assigned", "owner", "held")], [b[x] for x in ("prices", "assigned", "owner", "held")])
        covered.add(name)
    assert covered == set(compiled.KERNELS), f"kernels without a twin check: {set(compiled.KERNELS) - covered}"


def test_kernels_take_keywords_and_name_what_is_wrong():
    k = compiled.KERNELS["liquidity"]
    u = np.array([0, 1]); v = np.array([1, 2])
    got = k(n=3, u=u, v=v, capacity=np.ones(2), balance_u=np.full(2, 0.25), is_open=np.ones(2, bool))
    close(got, kernels.liquidity_numpy(3, u, v, np.ones(2), np.full(2, 0.25), np.ones(2, bool)))
    with pytest.raises(TypeError, match="missing \\['is_open'\\].*unknown \\['open'\\]"):
        k(n=3, u=u, v=v, capacity=np.ones(2), balance_u=np.ones(2), open=np.ones(2, bool))
    with pytest.raises(ValueError, match="already registered"):
        compiled.register("liquidity", kernels.liquidity_numpy)


def test_every_compiled_kernel_has_the_twins_arguments():
    for name, k in compiled.KERNELS.items():
        assert k.params, name
        assert k.impl is (k.compiled if compiled.USE_NUMBA else k.twin), name


_TRAJECTORY = """
import json, sys
import numpy as np
from channelmarket.envs.core import MarketCore
core = MarketCore(sys.argv[1]); core.reset(int(sys.argv[2]))
rng = np.random.default_rng(5)
out = []
for _ in range(int(sys.argv[3])):
    obs, rew, *_ = core.step(rng.uniform(-1, 1, (core.n_agents, 4)))
    out.append([float(obs.astype(float).sum()), float(rew.sum()), float(core.state.wallet.sum()),
                float(core.state.balance_u.sum()), float(core.state.ref_price[0]), int(core.state.open.sum())])
print(json.dumps(out))
"""


def test_whole_episode_is_the_same_without_numba():
    def run(numba: str):
        env = dict(os.environ, CHANNELMARKET_NUMBA=numba)
        out = subprocess.run([sys.executable, "-c", _TRAJECTORY, "energy_default", "3", "40"], env=env,
                             capture_output=True, text=True, timeout=300, check=True)
        return np.array(json.loads(out.stdout))

    with_numba, without = run("1"), run("0")
    np.testing.assert_allclose(with_numba, without, rtol=1e-9, atol=1e-6)


_SWITCH = """
import json
from channelmarket.envs import compiled
print(json.dumps({n: k.impl is k.twin for n, k in compiled.KERNELS.items()}))
"""


def test_channelmarket_numba_0_selects_every_twin_the_auction_solver_included():
    env = dict(os.environ, CHANNELMARKET_NUMBA="0")
    out = subprocess.run([sys.executable, "-c", _SWITCH], env=env, capture_output=True, text=True, timeout=300,
                         check=True)
    twins = json.loads(out.stdout)
    assert any(n.startswith("auction_") for n in twins)
    assert all(twins.values()), twins


_FINGERPRINT = """
import hashlib, sys
import numpy as np
from channelmarket.envs import compiled
from channelmarket.envs.core import MarketCore
core = MarketCore("energy_10k", episode_steps=6); obs = core.reset(3)
rng = np.random.default_rng(3)
h = hashlib.sha256(np.ascontiguousarray(obs).tobytes())
while not core.done:
    obs, rew, *_ = core.step(rng.uniform(-1, 1, (core.n_agents, 4)))
    st = core.state
    for x in (obs, rew, st.wallet, st.balance_u, st.capacity, st.u, st.utilization, st.flow_history):
        h.update(np.ascontiguousarray(x).tobytes())
print(compiled.THREADS, h.hexdigest())
"""


@needs_numba
def test_a_10k_market_is_bit_for_bit_the_same_with_one_and_two_threads():
    # whatever multi-threaded builds run at this size (each thread writes only its own items), the
    # trajectory is the one-thread trajectory, bit for bit (the lifecycle and aftermath passes thread
    # from PARALLEL_SLOTS slots: tested directly below)
    def run(threads: str):
        env = dict(os.environ, CHANNELMARKET_THREADS=threads)
        out = subprocess.run([sys.executable, "-c", _FINGERPRINT], env=env, capture_output=True, text=True,
                             timeout=300, check=True)
        return out.stdout.split()

    one, two = run("1"), run("2")
    assert one[0] == "1"
    assert one[1] == two[1]


@needs_numba
@pytest.mark.skipif(compiled.THREADS < 2, reason="one thread: no multi-threaded builds")
@pytest.mark.parametrize("seed", [0, 1])
def test_multi_threaded_passes_equal_the_one_part_pass_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    n, e = 3_000, 25_000
    u = rng.integers(0, n, e).astype(np.int32)
    v = ((u + 1 + rng.integers(0, n - 1, e)) % n).astype(np.int32)
    cap = rng.uniform(50, 200, e)
    kw = dict(util=rng.random(e), flow=rng.normal(0, 5, e), old_capacity=cap, decay=0.9, n=n, u=u, v=v,
              opened=np.flatnonzero(rng.random(e) < 0.03), capacity=cap, balance_u=cap * rng.random(e),
              is_open=rng.random(e) < 0.6)
    k = kernels.channel_aftermath
    one = k.run("compiled", **kw, parts=1)
    for parts in (2, 3):
        same(k.run("parallel", **kw, parts=parts), one)
    # the lifecycle: two markets, some agents gone (seed 1), spend-sized every other seed
    slot_market = (np.arange(e) >= e // 2).astype(np.int64)
    half = n // 2
    lu = (u % half + slot_market * half).astype(np.int32)
    lv = np.where(lu == v % half + slot_market * half, (lu + 1 - slot_market * half) % half + slot_market * half,
                  v % half + slot_market * half).astype(np.int32)
    active = rng.random(n) > (0.01 if seed else -1.0)   # seed 0: everyone active (the short listing)
    # seed 1: the candidate rows reserved from the two markets' generators (`streams.claim_rows`)
    rows = streams.claim_rows((np.random.default_rng(7), np.random.default_rng(8)), 2, e // 2, reserve_min=0)
    cand, cand_stream = (rows.values, rows.handles) if seed else (rng.random((2, e)), np.zeros((0, 4), np.uint64))
    lc = dict(u=lu, v=lv, capacity=cap, balance_u=kw["balance_u"], is_open=kw["is_open"], active=active,
              wallet=rng.uniform(0, 300, n), draw=rng.random(e), cand=cand, cand_stream=cand_stream, close_rate=0.1,
              open_rate=0.2, fee=0.3, n=half, offset=slot_market * half, slot_market=slot_market, m=2, lo=50.0,
              hi=200.0, split=0.5, spend=rng.uniform(1, 30, n) if seed else np.zeros(0), sizing_steps=3.0,
              mean_cap=125.0)
    k = kernels.lifecycle_uniform
    one = k.run("compiled", **lc, parts=1)
    assert one[8].shape[0] > 100 and one[6].sum() > 100
    for parts in (2, 3, 7):
        same(k.run("parallel", **lc, parts=parts), one)
        same(k.run("compiled", **lc, parts=parts), one)

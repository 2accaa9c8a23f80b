"""A slow, plain-Python reference of ONE `market_step` (channelmarket.envs.step).

Written from the documented rules (module docstrings of offers, clearing, settlement, prices,
channels, physics and shocks), with explicit loops over agents, channels and negotiation
rounds and plain floats / lists. numpy is used only to read the input arrays and for the
random draws, which are made with exactly the same generator calls, in the same order, as the
core:

    price noise   standard_normal(G)
    lifecycle     random((3, E)): row 0 decides each slot's close / reopen, row 1 picks a
                  reopening slot's ordered pair of distinct agents (index of N (N - 1)), row 2
                  its capacity lo + (hi - lo) r (one fixed block per step)
    weather       standard_normal((2, N))
    demand noise  standard_normal(N)
    shock         random() when shock_rate > 0; integers(1, 5), integers(lo, hi + 1) when one starts

so it can be run on a deep copy of a state (`state.copy()`) and compared with the core.
It deliberately imports nothing from offers / clearing / settlement / prices / channels; the
physics shape functions (pure scalar formulas) are reused.

Float expression order: where a rule contains a threshold (bid_k >= ask_k in the negotiation,
the reserve / limit / tariff bounds of an offer) the reference evaluates the same float
expression as the documented formula in the core's evaluation order, so that an exact tie in
real arithmetic (which extreme actions do produce) resolves the same way in both.
Everything else is continuous and compared with a tolerance.

Usage: `reference_step(scenario, agents, state_copy, actions)` -> dict (see the end of
`reference_step`). The generator of `state_copy` advances; nothing else of it is modified.
"""

from __future__ import annotations

import math

import numpy as np

from channelmarket.envs.kinds import EXTRA_COLUMNS
from channelmarket.envs.physics import industrial_shape, residential_shape, solar_shape, wind_power_curve

# Agent kinds and demand profiles (state.py), goods
SOLAR, WIND, STORAGE, CONSUMER, EV = 0, 1, 2, 3, 4
STORES = (STORAGE, EV)   # kinds that hold a charge
RESIDENTIAL, INDUSTRIAL = 1, 2
NO_GOOD = -1

# Shocks (shocks.py docstring / DESIGN.md): NONE, DEMAND_SURGE x2 demand, DEMAND_DROP x0.3 demand,
# SUPPLY_SURPLUS x2 generation, SUPPLY_SHORTAGE x0.3 generation
SHOCK_IDS = {"NONE": 0, "DEMAND_SURGE": 1, "DEMAND_DROP": 2, "SUPPLY_SURPLUS": 3, "SUPPLY_SHORTAGE": 4}
N_SHOCKS = 5
SUPPLY_MULT = {0: 1.0, 1: 1.0, 2: 1.0, 3: 2.0, 4: 0.3}
DEMAND_MULT = {0: 1.0, 1: 2.0, 2: 0.3, 3: 1.0, 4: 1.0}

PRICE_HISTORY = 24        # prices.py: reference prices kept in the history window
UTILIZATION_DECAY = 0.9   # step.py: EMA weight of past channel utilization
FLOW_HISTORY = 8          # state.py: steps of per-channel flow kept
ON_CHAIN = -1             # clearing.py: channel of an exchange-settled trade

BREAKDOWN = ("profit", "revenue", "cost", "sold", "bought", "grid_sold", "grid_bought",
             "curtailed", "unserved", "charged", "discharged", "failed_payments", "partial_payments",
             "storage_value", "routing_fees", "network_charges", "lost_load")  # routing_fees: 0 without the payment layer
MIN_QUANTITY = 1e-9  # MWh: smaller offers are float dust
ROUND_OFF = 1e-9     # relative payment shortfall that is round-off, not a partial payment


def _clip(x: float, lo: float, hi: float) -> float:
    return min(max(x, lo), hi)


def hour_of_day(sc, t: float) -> float:
    return (sc.start_hour + t * sc.step_hours) % 24.0


def time_of_day_level(sc, hour: float) -> float:
    """prices.py: base price x (night trough, morning shoulder, evening peak, midday dip), within tariffs."""
    shape = (
        0.85
        + 0.20 * math.exp(-0.5 * ((hour - 8.0) / 1.5) ** 2)
        + 0.45 * math.exp(-0.5 * ((hour - 19.0) / 2.0) ** 2)
        - 0.20 * math.exp(-0.5 * ((hour - 13.0) / 2.0) ** 2)
    )
    return _clip(sc.base_price * shape, sc.feed_in_tariff, sc.retail_tariff)


# ------------------------------------------------------------------------------------------
# physics: tradable energy of the current interval
# ------------------------------------------------------------------------------------------
def ev_away(sc, A, i, t) -> bool:
    """An electric-vehicle fleet is on the road when the interval's start hour lies in
    [departure, return), wrapping midnight."""
    h = hour_of_day(sc, t)
    dep, ret = A["ev_departure_hour"][i], A["ev_return_hour"][i]
    return (h - dep) % 24.0 < (ret - dep) % 24.0


def tradable(sc, A, S):
    """Per agent (sellable, needed) MWh: generators sell their shocked generation, consumers
    need their shocked demand, storage can deliver min(power dt, soc eff) and absorb
    min(power dt, (capacity - soc) / eff); zero for agents that left."""
    fs, fd = SUPPLY_MULT[S["shock_kind"]], DEMAND_MULT[S["shock_kind"]]
    dt = sc.step_hours
    sellable, needed = [], []
    for i in range(A["n"]):
        if A["kind"][i] == STORAGE:
            eff = A["efficiency"][i]
            s = min(A["power"][i] * dt, S["soc"][i] * eff)
            d = max(min(A["power"][i] * dt, (A["capacity"][i] - S["soc"][i]) / eff), 0.0)
        elif A["kind"][i] == EV:
            # parked: sells only what lies above its target charge, absorbs its headroom; away: nothing
            eff = A["efficiency"][i]
            above = S["soc"][i] - min(A["ev_target_charge"][i], S["soc"][i])
            s = min(A["power"][i] * dt, above * eff)
            d = max(min(A["power"][i] * dt, (A["capacity"][i] - S["soc"][i]) / eff), 0.0)
            if ev_away(sc, A, i, S["t"]):
                s = d = 0.0
        else:
            s = S["generation"][i] * fs
            d = S["demand"][i] * fd
        if not S["active"][i]:
            s = d = 0.0
        sellable.append(s)
        needed.append(d)
    return sellable, needed


# ------------------------------------------------------------------------------------------
# offers
# ------------------------------------------------------------------------------------------
def decode_offers(sc, A, ref_price, actions, sellable, needed, active):
    span = sc.retail_tariff - sc.feed_in_tariff
    out = {"ask": [], "bid": [], "sell_qty": [], "buy_qty": [], "concession": []}
    for i in range(A["n"]):
        a_ask, a_bid, a_q, a_c = (_clip(float(x), -1.0, 1.0) for x in actions[i])
        sg, bg = A["sells_good"][i], A["buys_good"][i]
        reserve, limit = A["reserve"][i], A["limit"][i]
        sell_ref = ref_price[sg if sg >= 0 else 0]
        buy_ref = ref_price[bg if bg >= 0 else 0]
        # ask: never under the reserve; within the retail tariff unless the reserve is above it
        ask = max(sell_ref + a_ask * span, reserve)
        ask = max(min(ask, sc.retail_tariff), reserve)
        # bid: never over the limit, not negative
        bid = min(max(buy_ref + a_bid * span, 0.0), limit)
        if A["kind"][i] in STORES:
            sell_share, buy_share = max(a_q, 0.0), max(-a_q, 0.0)
        else:
            sell_share = buy_share = 0.5 * (a_q + 1.0)
        sell_qty = sell_share * sellable[i] if (active[i] and sg != NO_GOOD) else 0.0
        buy_qty = buy_share * needed[i] if (active[i] and bg != NO_GOOD) else 0.0
        sell_qty = sell_qty if sell_qty >= MIN_QUANTITY else 0.0
        buy_qty = buy_qty if buy_qty >= MIN_QUANTITY else 0.0
        out["ask"].append(ask)
        out["bid"].append(bid)
        out["sell_qty"].append(sell_qty)
        out["buy_qty"].append(buy_qty)
        out["concession"].append(0.5 * (a_c + 1.0))
    return out


# ------------------------------------------------------------------------------------------
# clearing
# ------------------------------------------------------------------------------------------
def negotiate_pair(ask0, bid0, reserve, limit, c_sell, c_buy, rounds):
    """Rounds k = 0..K: ask_k = ask0 - c_sell (ask0 - reserve) k/K, bid_k = bid0 + c_buy (limit - bid0) k/K;
    agreement at the first k with bid_k >= ask_k, at the midpoint. Returns (agreed, price, round)."""
    ask_step = c_sell * (ask0 - reserve) / rounds
    bid_step = c_buy * (limit - bid0) / rounds
    for k in range(rounds + 1):
        a = ask0 - ask_step * k
        b = bid0 + bid_step * k
        if b >= a:
            return True, 0.5 * (a + b), k
    return False, 0.0, None


def clear_bilateral(sc, A, S, offers):
    n = A["n"]
    sq, bq = offers["sell_qty"], offers["buy_qty"]
    sg, bg = A["sells_good"], A["buys_good"]
    # candidate pairs: every open channel, both directions (forward u->v first, then v->u)
    cands = []
    for e in range(len(S["u"])):
        u, v = S["u"][e], S["v"][e]
        if S["open"][e] and sq[u] > 0.0 and bq[v] > 0.0 and sg[u] == bg[v]:
            cands.append((e, u, v))
    for e in range(len(S["u"])):
        u, v = S["u"][e], S["v"][e]
        if S["open"][e] and sq[v] > 0.0 and bq[u] > 0.0 and sg[v] == bg[u]:
            cands.append((e, v, u))
    negotiations = len(cands)
    agreed = []
    for e, s, b in cands:
        ok, price, _ = negotiate_pair(offers["ask"][s], offers["bid"][b], A["reserve"][s], A["limit"][b],
                                      offers["concession"][s], offers["concession"][b], sc.negotiation_rounds)
        if ok:
            agreed.append((e, s, b, price))
    # proportional rationing: buyers spread their quantity over agreed channels in proportion
    # to what each can deliver (the seller's offer, capped by what the buyer's side of the channel
    # pays at the agreed price), never asking more than that side pays; oversubscribed sellers
    # scale all requests down
    deliverable = []
    for e, s, b, p in agreed:
        side = S["balance_u"][e] if S["u"][e] == b else S["capacity"][e] - S["balance_u"][e]
        payable = side / p if p > 0 else float("inf")
        deliverable.append((min(sq[s], payable), payable))
    w_sum = [0.0] * n
    for (e, s, b, p), (w, _) in zip(agreed, deliverable):
        w_sum[b] += w
    requests, capped = [], []
    for (e, s, b, p), (w, payable) in zip(agreed, deliverable):
        r = bq[b] * w / w_sum[b] if w > 0 else 0.0
        capped.append(r > payable)
        requests.append(payable if r > payable else r)
    req_sum = [0.0] * n
    for (e, s, b, p), r in zip(agreed, requests):
        req_sum[s] += r
    trades = []
    for (e, s, b, p), r, cap_hit in zip(agreed, requests, capped):
        scale = sq[s] / req_sum[s] if req_sum[s] > sq[s] else 1.0
        q = r * scale
        side = S["balance_u"][e] if S["u"][e] == b else S["capacity"][e] - S["balance_u"][e]
        # liquidity: 2 = the buyer's side was empty (kept with qty 0), 1 = capped by that side
        cut = 2 if side <= 0.0 else (1 if cap_hit else 0)
        if q > 0.0 or cut == 2:
            trades.append({"channel": e, "seller": s, "buyer": b, "good": sg[s], "qty": q, "price": p,
                           "cut": cut})
    return trades, negotiations


def clear_double_auction(sc, A, S, offers):
    """Uniform-price double auction per good, the centralized benchmark.

    The supply curve is the sellers' lots in ascending ask order, the demand curve the buyers'
    lots in descending bid order (ties by agent index), each a step function of the cumulative
    quantity. Walking both curves from 0, every stretch where the ask step is <= the bid step
    trades between the seller and buyer of that stretch; the walk stops at the first stretch
    that does not cross or when either curve ends. One price per good: the midpoint of the ask
    and bid of the last crossing stretch (where the curves cross). Exchange-settled (channel -1).

    The curves are the cumulative sums as floats: a lot too small to move its curve (below the
    round-off of the quantity before it, ~1e-16 relative) is not on the curve and never trades.
    """
    # a sealed-bid auction has no rounds: each agent enters the price it concedes to by round K
    offers = dict(offers)
    offers["ask"] = [a - c * (a - r) for a, c, r in zip(offers["ask"], offers["concession"], A["reserve"])]
    offers["bid"] = [b + c * (lim - b) for b, c, lim in zip(offers["bid"], offers["concession"], A["limit"])]
    trades = []
    n_goods = len(S["ref_price"])
    for g in range(n_goods):
        sellers = [i for i in range(A["n"]) if offers["sell_qty"][i] > 0 and A["sells_good"][i] == g]
        buyers = [i for i in range(A["n"]) if offers["buy_qty"][i] > 0 and A["buys_good"][i] == g]
        if not sellers or not buyers:
            continue
        sellers.sort(key=lambda i: (offers["ask"][i], i))
        buyers.sort(key=lambda i: (-offers["bid"][i], i))
        cum_s, cum_d = [], []
        x = 0.0
        for i in sellers:
            x += offers["sell_qty"][i]
            cum_s.append(x)
        x = 0.0
        for i in buyers:
            x += offers["buy_qty"][i]
            cum_d.append(x)
        top = min(cum_s[-1], cum_d[-1])
        x = 0.0
        i = j = 0
        matched = []
        while x < top:
            while cum_s[i] <= x:      # lots that end here (or never moved the curve)
                i += 1
            while cum_d[j] <= x:
                j += 1
            s, b = sellers[i], buyers[j]
            if offers["ask"][s] > offers["bid"][b]:
                break
            nxt = min(cum_s[i], cum_d[j], top)
            matched.append((s, b, nxt - x))
            x = nxt
        if not matched:
            continue
        price = 0.5 * (offers["ask"][matched[-1][0]] + offers["bid"][matched[-1][1]])
        for s, b, q in matched:
            trades.append({"channel": ON_CHAIN, "seller": s, "buyer": b, "good": g, "qty": q, "price": price})
    return trades, 0


# ------------------------------------------------------------------------------------------
# settlement
# ------------------------------------------------------------------------------------------
def settle(sc, A, S, trades, sellable, needed):
    n = A["n"]
    balance_u = list(S["balance_u"])
    cap = S["capacity"]
    flow = [0.0] * len(balance_u)
    wallet = list(S["wallet"])
    separate = getattr(sc, "grid_billing", "wallet") == "energy_account"
    account = list(S.get("energy_account", [0.0] * n))
    bills = account if separate else wallet   # grid bills and network charges settle here
    bd = {k: [0.0] * n for k in BREAKDOWN}
    for tr in trades:
        amount = tr["qty"] * tr["price"]
        e, s, b = tr["channel"], tr["seller"], tr["buyer"]
        if e == ON_CHAIN:
            paid = amount                    # wallet to wallet through the exchange
        else:
            buyer_is_u = S["u"][e] == b
            side = balance_u[e] if buyer_is_u else cap[e] - balance_u[e]
            paid = min(amount, side)         # cut to what the buyer's side can pay
        short = paid < amount
        if short:
            paid_qty = paid / tr["price"] if tr["price"] > 0 else 0.0
        else:
            paid_qty = tr["qty"]
        cut = tr.get("cut", 0)
        failed = cut == 2 or (short and paid <= 0.0)
        partial = not failed and (cut == 1 or (short and paid < amount * (1.0 - ROUND_OFF)))
        if e == ON_CHAIN:
            wallet[s] += paid
            wallet[b] -= paid
        else:
            if buyer_is_u:
                balance_u[e] -= paid
                flow[e] += paid
            else:
                balance_u[e] += paid
                flow[e] -= paid
        tr.update(paid=paid, paid_qty=paid_qty, failed=failed, partial=partial)
        bd["sold"][s] += paid_qty
        bd["bought"][b] += paid_qty
        bd["revenue"][s] += paid
        bd["cost"][b] += paid
        bd["failed_payments"][b] += float(failed)
        bd["partial_payments"][b] += float(partial)
    balance_u = [_clip(x, 0.0, c) for x, c in zip(balance_u, cap)]

    soc = list(S["soc"])
    grid_in = grid_out = 0.0
    for i in range(n):
        k = A["kind"][i]
        if k in STORES:
            eff = A["efficiency"][i]
            bd["charged"][i] = bd["bought"][i]
            bd["discharged"][i] = bd["sold"][i]
            soc[i] = _clip(soc[i] + bd["charged"][i] * eff - bd["discharged"][i] / eff, 0.0, A["capacity"][i])
        grid_rev = grid_cost = 0.0
        if k in (SOLAR, WIND):
            residual = max(sellable[i] - bd["sold"][i], 0.0)
            bd["grid_sold"][i] = min(residual, A["grid_limit"][i])
            bd["curtailed"][i] = residual - bd["grid_sold"][i]
            grid_rev = bd["grid_sold"][i] * sc.feed_in_tariff
        if k == CONSUMER:
            residual = max(needed[i] - bd["bought"][i], 0.0)
            bd["grid_bought"][i] = min(residual, A["grid_limit"][i])
            bd["unserved"][i] = residual - bd["grid_bought"][i]
            grid_cost = bd["grid_bought"][i] * sc.retail_tariff
        bills[i] += grid_rev - grid_cost
        grid_in += grid_cost
        grid_out += grid_rev
        bd["revenue"][i] += grid_rev
        bd["cost"][i] += grid_cost
        value = A["limit"][i] * (bd["bought"][i] + bd["grid_bought"][i]) if k == CONSUMER else 0.0
        bd["profit"][i] = (bd["revenue"][i] - bd["cost"][i]
                           - A["marginal_cost"][i] * (bd["sold"][i] + bd["grid_sold"][i]) + value)
        if k == EV and S["active"][i] and not ev_away(sc, A, i, S["t"]) and ev_away(sc, A, i, S["t"] + 1):
            # departure: top up to the target from the grid at retail, then the trip uses its energy
            eff = A["efficiency"][i]
            short = max(A["ev_target_charge"][i] - soc[i], 0.0)
            grid_q = short / eff
            c = grid_q * sc.retail_tariff
            soc[i] = max(soc[i] + short - A["ev_trip_energy"][i], 0.0)
            bills[i] -= c
            grid_in += c
            bd["grid_bought"][i] += grid_q
            bd["cost"][i] += c
            bd["profit"][i] -= c
    grid_account = S["grid_account"] + (grid_in - grid_out)
    charge_rate, voll = getattr(sc, "network_charge", 0.0), getattr(sc, "value_of_lost_load", 0.0)
    if charge_rate > 0 or voll > 0:
        total = 0.0
        for i in range(n):
            charge = charge_rate * bd["bought"][i]
            lost = voll * bd["unserved"][i] if A["kind"][i] == CONSUMER else 0.0
            bd["network_charges"][i], bd["lost_load"][i] = charge, lost
            bd["cost"][i] += charge
            bd["profit"][i] -= charge + lost
            bills[i] -= charge
            total += charge
        grid_account += total
    return {"balance_u": balance_u, "flow": flow, "wallet": wallet, "soc": soc,
            "grid_account": grid_account, "breakdown": bd, "energy_account": account}


# ------------------------------------------------------------------------------------------
# renewable-energy certificates (good g >= 1): issue, quota, trading, retirement
# ------------------------------------------------------------------------------------------
def rec_roles(sc, A, i):
    """(sells, buys, reserve, limit) of agent i: renewable generators sell what they hold,
    industrial consumers with a quota buy, at most at the penalty they avoid."""
    issuer = A["kind"][i] in (SOLAR, WIND)
    obliged = A["kind"][i] == CONSUMER and A["profile"][i] == INDUSTRIAL and sc.rec_quota > 0
    return issuer and not obliged, obliged, 0.0, (sc.rec_penalty if obliged else 0.0)


def trade_certificates(sc, A, S, acts, st, g, holdings):
    """Offers from the shared action row against good g's price and span, clearing by the same
    rules as energy over the balances energy's payments left, payment, stocks moved."""
    n = A["n"]
    span = hi = sc.rec_penalty
    A2 = dict(A)
    A2["sells_good"], A2["buys_good"], A2["reserve"], A2["limit"] = [], [], [], []
    offers = {"ask": [], "bid": [], "sell_qty": [], "buy_qty": [], "concession": []}
    for i in range(n):
        sells, buys, reserve, limit = rec_roles(sc, A, i)
        held, owe = holdings[i][g], S["owed"][i][g]
        s = held if sells else 0.0
        d = max(owe - held, 0.0) if buys else 0.0
        a_ask, a_bid, a_q, a_c = (_clip(float(x), -1.0, 1.0) for x in acts[i])
        ask = max(S["ref_price"][g] + a_ask * span, reserve)
        ask = max(min(ask, hi), reserve)
        bid = min(max(S["ref_price"][g] + a_bid * span, 0.0), limit)
        share = 0.5 * (a_q + 1.0)
        sq = share * s if (S["active"][i] and sells) else 0.0
        bq = share * d if (S["active"][i] and buys) else 0.0
        offers["ask"].append(ask)
        offers["bid"].append(bid)
        offers["sell_qty"].append(sq if sq >= MIN_QUANTITY else 0.0)
        offers["buy_qty"].append(bq if bq >= MIN_QUANTITY else 0.0)
        offers["concession"].append(0.5 * (a_c + 1.0))
        A2["sells_good"].append(g if sells else NO_GOOD)
        A2["buys_good"].append(g if buys else NO_GOOD)
        A2["reserve"].append(reserve)
        A2["limit"].append(limit)
    S2 = dict(S)
    S2["balance_u"] = st["balance_u"]
    if sc.mechanism == "bilateral":
        trades, _ = clear_bilateral(sc, A2, S2, offers)
    else:
        trades, _ = clear_double_auction(sc, A2, S2, offers)
    bd = st["breakdown"]
    balance_u, wallet, flow = st["balance_u"], st["wallet"], st["flow"]
    volume = value = 0.0
    for tr in trades:   # paid from what the buyer's channel side holds now (or wallet to wallet)
        amount = tr["qty"] * tr["price"]
        e, s, b = tr["channel"], tr["seller"], tr["buyer"]
        if e == ON_CHAIN:
            paid = amount
        else:
            buyer_is_u = S["u"][e] == b
            side = balance_u[e] if buyer_is_u else S["capacity"][e] - balance_u[e]
            paid = min(amount, side)
        short = paid < amount
        paid_qty = (paid / tr["price"] if tr["price"] > 0 else 0.0) if short else tr["qty"]
        cut = tr.get("cut", 0)
        failed = cut == 2 or (short and paid <= 0.0)
        partial = not failed and (cut == 1 or (short and paid < amount * (1.0 - ROUND_OFF)))
        if e == ON_CHAIN:
            wallet[s] += paid
            wallet[b] -= paid
        elif buyer_is_u:
            balance_u[e] -= paid
            flow[e] += paid
        else:
            balance_u[e] += paid
            flow[e] -= paid
        holdings[s][g] -= paid_qty
        holdings[b][g] += paid_qty
        bd["revenue"][s] += paid
        bd["cost"][b] += paid
        bd["profit"][s] += paid
        bd["profit"][b] -= paid
        bd["failed_payments"][b] += float(failed)
        bd["partial_payments"][b] += float(partial)
        volume += paid_qty
        value += paid
    st["balance_u"] = [_clip(x, 0.0, c) for x, c in zip(balance_u, S["capacity"])]
    return {"supply": sum(offers["sell_qty"]), "demand": sum(offers["buy_qty"]), "volume": volume, "value": value,
            "trades": trades}


def book_certificates(sc, A, S, bd, g, holdings, owed, issued):
    """One certificate per MWh a renewable generator delivered (sold or to the grid); the quota
    of an obliged consumer grows with the energy it consumed (bought or from the grid)."""
    for i in range(A["n"]):
        if not S["active"][i]:
            continue
        if A["kind"][i] in (SOLAR, WIND):
            new = bd["sold"][i] + bd["grid_sold"][i]
            holdings[i][g] += new
            issued[g] += new
        if rec_roles(sc, A, i)[1]:
            owed[i][g] += sc.rec_quota * (bd["bought"][i] + bd["grid_bought"][i])


def end_certificates(sc, A, g, holdings, owed, retired, wallet, bd):
    """Episode end: obliged consumers retire what they hold against what they owe; every missing
    certificate costs the penalty, paid to the grid account."""
    total = 0.0
    for i in range(A["n"]):
        if not rec_roles(sc, A, i)[1]:
            continue
        r = min(holdings[i][g], owed[i][g])
        holdings[i][g] -= r
        owed[i][g] -= r
        retired[g] += r
        pen = owed[i][g] * sc.rec_penalty
        wallet[i] -= pen
        bd["cost"][i] += pen
        bd["profit"][i] -= pen
        total += pen
    return total


# ------------------------------------------------------------------------------------------
# channel lifecycle
# ------------------------------------------------------------------------------------------
def lifecycle(sc, A, S, balance_u, wallet, fee_sink, rng):
    n, e_slots = A["n"], len(S["u"])
    fee = sc.onchain_fee
    block = rng.random((3, e_slots))
    close_draw = open_draw = block[0].tolist()   # one draw per slot decides its one event
    u, v, cap = list(S["u"]), list(S["v"]), list(S["capacity"])
    balance_u = list(balance_u)
    wallet = list(wallet)
    is_open = list(S["open"])
    active = S["active"]
    closing = [False] * e_slots
    for e in range(e_slots):
        if is_open[e] and (close_draw[e] < sc.channel_close_rate or not active[u[e]] or not active[v[e]]):
            closing[e] = True
            # both balances go to the on-chain wallets, each side pays half the fee
            wallet[u[e]] += balance_u[e] - fee / 2
            wallet[v[e]] += cap[e] - balance_u[e] - fee / 2
            fee_sink += fee
            is_open[e] = False
    n_closed = sum(closing)
    slots = [e for e in range(e_slots) if not is_open[e] and not closing[e] and open_draw[e] < sc.channel_open_rate]
    n_opened = 0
    if slots:
        k = len(slots)
        pairs = n * (n - 1)
        idx = [min(int(block[1, e] * pairs), pairs - 1) for e in slots]
        nu = [i // (n - 1) for i in idx]
        nv = [(a + 1 + i % (n - 1)) % n for a, i in zip(nu, idx)]
        lo, hi = sc.channel_capacity
        new_cap = [lo + (hi - lo) * block[2, e] for e in slots]
        fu = [c * sc.initial_split for c in new_cap]
        fv = [c - x for c, x in zip(new_cap, fu)]
        # each funder must cover ALL channels it would fund this step (its share + half fee each)
        need = [0.0] * n
        for j in range(k):
            need[nu[j]] += fu[j] + fee / 2
            need[nv[j]] += fv[j] + fee / 2
        solvent = [wallet[i] >= need[i] for i in range(n)]
        for j, e in enumerate(slots):
            a, b = nu[j], nv[j]
            if solvent[a] and solvent[b] and active[a] and active[b]:
                u[e], v[e], cap[e], balance_u[e] = a, b, new_cap[j], fu[j]
                wallet[a] -= fu[j] + fee / 2
                wallet[b] -= fv[j] + fee / 2
                fee_sink += fee
                is_open[e] = True
                n_opened += 1
    return u, v, cap, balance_u, is_open, wallet, fee_sink, n_closed, n_opened, len(slots)


# ------------------------------------------------------------------------------------------
# next interval: weather, energy, shock
# ------------------------------------------------------------------------------------------
def advance_weather(sc, A, cloud, wind, rng):
    """AR(1) cloud cover at solar sites, wind speed at wind sites: one normal per solar site, then
    one per wind site, in agent order; other agents' entries stay as they were."""
    solar = [i for i in range(A["n"]) if A["kind"][i] == SOLAR]
    windy = [i for i in range(A["n"]) if A["kind"][i] == WIND]
    z_c = rng.standard_normal(len(solar)).tolist()
    z_w = rng.standard_normal(len(windy)).tolist()
    pc, pw = sc.cloud_persistence, sc.wind_persistence
    new_cloud, new_wind = list(cloud), list(wind)
    for j, i in enumerate(solar):
        new_cloud[i] = _clip(pc * cloud[i] + (1.0 - pc) * sc.cloud_mean + sc.cloud_noise * z_c[j], 0.0, 1.0)
    for j, i in enumerate(windy):
        new_wind[i] = max(0.0, pw * wind[i] + (1.0 - pw) * sc.wind_mean + sc.wind_noise * z_w[j])
    return new_cloud, new_wind


def interval_energy(sc, A, t, cloud, wind, rng):
    n = A["n"]
    hour = hour_of_day(sc, t + 0.5)  # mid-interval
    dt = sc.step_hours
    n_cons = sum(1 for k in A["kind"] if k == CONSUMER)
    z = rng.standard_normal(n_cons).tolist()   # load noise, one per consumer in agent order
    j = 0
    gen, dem = [], []
    for i in range(n):
        k = A["kind"][i]
        if k == SOLAR:
            g = A["capacity"][i] * solar_shape(hour) * (1.0 - cloud[i]) * dt
        elif k == WIND:
            g = A["capacity"][i] * float(wind_power_curve(wind[i])) * dt
        else:
            g = 0.0
        if k == CONSUMER:
            shape = residential_shape(hour) if A["profile"][i] == RESIDENTIAL else industrial_shape(hour)
            noise = math.exp(sc.load_noise * z[j] - 0.5 * sc.load_noise ** 2)
            j += 1
            d = A["capacity"][i] * float(shape) * noise * dt
        else:
            d = 0.0
        gen.append(g)
        dem.append(d)
    return gen, dem


def advance_shock(sc, kind, remaining, step, rng):
    if remaining > 0:
        remaining -= 1
        if remaining == 0:
            kind = 0
    for ev in sc.shock_schedule:
        if ev.step == step:
            kind, remaining = SHOCK_IDS[ev.kind], ev.duration
    if sc.shock_rate > 0.0:
        draw = rng.random()
        if kind == 0 and draw < sc.shock_rate:
            kind = int(rng.integers(1, N_SHOCKS))
            remaining = int(rng.integers(sc.shock_duration[0], sc.shock_duration[1] + 1))
    return kind, remaining


# ------------------------------------------------------------------------------------------
# one step
# ------------------------------------------------------------------------------------------
def _agents(agents):
    A = {k: getattr(agents, k).tolist() for k in (
        "kind", "profile", "capacity", "power", "efficiency", "marginal_cost", "reserve", "limit",
        "grid_limit", "sells_good", "buys_good", "initial_soc")}
    A["n"] = len(A["kind"])
    extra = np.asarray(agents.extra)
    for j, name in enumerate(EXTRA_COLUMNS):   # kind-specific parameters (electric vehicles)
        A[name] = extra[:, j].tolist()
    return A


def _state(state):
    S = {}
    for k in ("active", "soc", "wallet", "cloud", "wind_speed", "generation", "demand", "u", "v", "capacity",
              "balance_u", "open", "utilization", "ref_price", "clearing_price", "price_history", "fee_base",
              "fee_rate", "energy_account", "partner", "partner_value", "flow_history"):
        S[k] = np.asarray(getattr(state, k)).tolist()
    for k in ("topology_version", "shock_kind", "shock_remaining", "t"):
        S[k] = int(getattr(state, k))
    S["fee_sink"] = float(state.fee_sink)
    S["grid_account"] = float(state.grid_account)
    for k in ("holdings", "owed", "issued", "retired"):
        S[k] = np.asarray(getattr(state, k)).tolist()
    return S


def reference_step(sc, agents, state, actions) -> dict:
    """One market step from the documented rules. `state` must be a copy: its generator advances.
    `actions` [N, 4] finite (clipped to [-1, 1] here)."""
    A = _agents(agents)
    S = _state(state)
    rng = state.rng          # channel lifecycle
    rng_exo = state.rng_exo  # weather, load noise, price noise, random shocks
    n = A["n"]
    acts = np.asarray(actions, dtype=np.float64).tolist()
    assert len(acts) == n and all(len(r) == 4 for r in acts)
    n_goods = len(S["ref_price"])

    sellable, needed = tradable(sc, A, S)
    offers = decode_offers(sc, A, S["ref_price"], acts, sellable, needed, S["active"])
    if sc.mechanism == "bilateral":
        trades, negotiations = clear_bilateral(sc, A, S, offers)
    elif sc.mechanism == "double_auction":
        trades, negotiations = clear_double_auction(sc, A, S, offers)
    else:
        raise NotImplementedError(f"no reference for mechanism {sc.mechanism!r}")
    st = settle(sc, A, S, trades, sellable, needed)
    bd = st["breakdown"]
    holdings = [list(r) for r in S["holdings"]]
    owed = [list(r) for r in S["owed"]]
    issued, retired = list(S["issued"]), list(S["retired"])
    goods = {}
    for g in range(1, n_goods):   # further goods (certificates), after energy, over the same channels
        goods[g] = trade_certificates(sc, A, S, acts, st, g, holdings)
    last = S["t"] + 1 >= sc.episode_steps
    for g in range(1, n_goods):
        book_certificates(sc, A, S, bd, g, holdings, owed, issued)
        if last:
            st["grid_account"] += end_certificates(sc, A, g, holdings, owed, retired, st["wallet"], bd)

    # mean field: supply offered (generators: all they could sell; storage: what it offers),
    # demand wanted (consumers: all they need; storage: what it bids for), after shocks
    supply = [0.0] * n_goods
    demand = [0.0] * n_goods
    for i in range(n):
        if A["sells_good"][i] >= 0:
            supply[A["sells_good"][i]] += offers["sell_qty"][i] if A["kind"][i] in STORES else sellable[i]
        if A["buys_good"][i] >= 0:
            demand[A["buys_good"][i]] += offers["buy_qty"][i] if A["kind"][i] in STORES else needed[i]
    # VWAP over what was actually paid for
    volume = [0.0] * n_goods
    value = [0.0] * n_goods
    for tr in trades:
        volume[tr["good"]] += tr["paid_qty"]
        value[tr["good"]] += tr["paid_qty"] * tr["price"]
    for g, res in goods.items():
        supply[g], demand[g], volume[g], value[g] = res["supply"], res["demand"], res["volume"], res["value"]
    clearing = [value[g] / volume[g] if volume[g] > 0 else S["clearing_price"][g] for g in range(n_goods)]
    # reference price: energy reverts to the time-of-day level within the tariffs, certificates
    # to their base price within [0, penalty]
    energy_level = time_of_day_level(sc, hour_of_day(sc, S["t"] + 1))
    z = rng_exo.standard_normal(n_goods).tolist()
    ref = []
    for g in range(n_goods):
        level = energy_level if g == 0 else sc.rec_base_price
        lo, hi = (sc.feed_in_tariff, sc.retail_tariff) if g == 0 else (0.0, sc.rec_penalty)
        r = S["ref_price"][g]
        tot = supply[g] + demand[g]
        imb = (demand[g] - supply[g]) / tot if tot > 0 else 0.0
        zz = _clip(z[g], -sc.volatility_bound, sc.volatility_bound)
        new = (r + sc.price_reversion * (level - r)
               + (sc.price_vwap_weight * (clearing[g] - r) if volume[g] > 0 else 0.0)
               + sc.price_imbalance_gain * r * imb
               + sc.price_volatility * r * zz)
        ref.append(_clip(new, lo, hi))
    history = (S["price_history"] + [ref])[-PRICE_HISTORY:]

    # channels
    util = [UTILIZATION_DECAY * S["utilization"][e] + (1 - UTILIZATION_DECAY) * abs(st["flow"][e]) / S["capacity"][e]
            for e in range(len(S["u"]))]
    u, v, cap, balance_u, is_open, wallet, fee_sink, n_closed, n_opened, n_proposed = lifecycle(
        sc, A, S, st["balance_u"], st["wallet"], S["fee_sink"], rng)
    flow_hist = [list(row) for row in S["flow_history"]]   # ring buffer of flows, column t % FLOW_HISTORY
    for e in range(len(u)):
        flow_hist[e][S["t"] % FLOW_HISTORY] = float(np.float32(st["flow"][e]))   # stored as float32
        if is_open[e] and not S["open"][e]:
            util[e] = 0.0   # a freshly opened channel has no history
            flow_hist[e] = [0.0] * FLOW_HISTORY
    topology_version = S["topology_version"] + (1 if n_opened + n_closed > 0 else 0)

    # next interval
    t = S["t"] + 1
    if t >= sc.episode_steps:  # last step: stores book the value of what they hold beyond their initial charge
        for i in range(n):
            if A["kind"][i] in STORES and S["active"][i]:
                value = (st["soc"][i] - A["initial_soc"][i]) * A["efficiency"][i] * sc.base_price
                bd["storage_value"][i] = value
                bd["profit"][i] += value
    cloud, wind = advance_weather(sc, A, S["cloud"], S["wind_speed"], rng_exo)
    generation, demand_next = interval_energy(sc, A, t, cloud, wind, rng_exo)
    shock_kind, shock_remaining = advance_shock(sc, S["shock_kind"], S["shock_remaining"], t, rng_exo)

    next_state = {
        "active": S["active"], "soc": st["soc"], "wallet": wallet, "cloud": cloud, "wind_speed": wind,
        "generation": generation, "demand": demand_next,
        "last_sold": bd["sold"], "last_bought": bd["bought"], "last_profit": bd["profit"],
        "u": u, "v": v, "capacity": cap, "balance_u": balance_u, "open": is_open, "flow": st["flow"],
        "utilization": util, "topology_version": topology_version,
        "fee_base": S["fee_base"], "fee_rate": S["fee_rate"],   # routing fee policies: none without the payment layer
        "ref_price": ref, "clearing_price": clearing, "price_history": history,
        "supply": supply, "demand_total": demand, "volume": volume,
        "shock_kind": shock_kind, "shock_remaining": shock_remaining, "t": t,
        "fee_sink": fee_sink, "grid_account": st["grid_account"], "energy_account": st["energy_account"],
        "partner": S["partner"], "partner_value": S["partner_value"], "flow_history": flow_hist,
        "holdings": holdings, "owed": owed, "issued": issued, "retired": retired,
    }
    rewards = [bd["profit"][i] if S["active"][i] else 0.0 for i in range(n)]
    return {
        "sellable": sellable, "needed": needed, "offers": offers, "trades": trades,
        "negotiations": negotiations, "breakdown": bd, "rewards": rewards,
        "n_opened": n_opened, "n_closed": n_closed, "n_refused": n_proposed - n_opened,
        "state": next_state, "rng": rng, "rng_exo": rng_exo,
    }

"""HTLC-style payments over routes: every hop moves or none does.

Payments are made one after another in the order given (the order of the step's trades), the
way a node's HTLCs settle: a payment first places a hold of the amount each hop carries on that
hop's paying side (the last hop carries what the payee receives, each earlier one that plus the
forwarding fee of the next hop's node); if a hop cannot hold it, every hold placed is released
and the payment fails as a whole. Only when all holds stand do they settle: each paying side
gives, each receiving side gets, and every intermediary keeps its fee (what it received minus
what it forwarded). A payment whose fees exceed the payer's limit is not attempted, and one whose
route touches a failed agent or channel (`blocked_*`) is released. Channel capacities never
change here, so money is conserved by construction; holds exist only inside a payment.

One plain loop (`pay_routes_into`, in place), compiled with numba when available; the same function is its
reference twin (O(T * H) in Python when the compiled kernels are off).
"""

from __future__ import annotations

import numpy as np

from ..compiled import jit, register
from .reasons import FEE_LIMIT, INSUFFICIENT_BALANCE, NO_ROUTE, OK, PEER_FAULT


def pay_routes_into(route, payer, amount, max_fee, u, v, capacity, bal, flow_in_u, earned, fee_base, fee_rate,
                    blocked_agent, blocked_channel, check_faults, reason, fee):
    """`pay_routes_loop` in place: pays into `bal` [E] (the balances, moved), `flow_in_u` [E] and
    `earned` [N] (added to) and writes `reason` [T] and `fee` [T]. Without `check_faults` the
    blocked agents and channels are not read (callers without faults: all False)."""
    t_n, h_n = route.shape
    nodes = np.empty(h_n + 1, dtype=np.int64)
    carried = np.empty(h_n)
    pays_u = np.zeros(h_n, dtype=np.bool_)
    for t in range(t_n):
        hops = 0
        for j in range(h_n):
            if route[t, j] >= 0:
                hops += 1
        if hops == 0:
            reason[t] = NO_ROUTE
            continue
        nodes[0] = payer[t]
        fault = check_faults and blocked_agent[payer[t]]
        for j in range(hops):
            c = np.uint64(route[t, j])   # unsigned: compiled, no negative-index checks
            pays_u[j] = u[c] == nodes[j]
            nodes[j + 1] = v[c] if pays_u[j] else u[c]
            if check_faults and (blocked_channel[c] or blocked_agent[nodes[j + 1]]):
                fault = True
        if fault:
            reason[t] = PEER_FAULT
            continue
        carried[hops - 1] = amount[t]
        for j in range(hops - 2, -1, -1):
            c = np.uint64(route[t, j + 1])
            carried[j] = carried[j + 1] + (fee_base[c] + fee_rate[c] * carried[j + 1])
        f = carried[0] - amount[t]
        if f > max_fee[t]:
            reason[t] = FEE_LIMIT
            continue
        # holds, hop by hop, on the paying sides (a held amount is not yet the receiver's; an
        # earlier hop of this payment over the same channel side holds part of it already);
        # released as a whole at the first hop that cannot hold
        placed = 0
        for j in range(hops):
            c = np.uint64(route[t, j])
            held = 0.0
            for i in range(j):
                if route[t, i] == route[t, j] and pays_u[i] == pays_u[j]:
                    held += carried[i]
            side = bal[c] if pays_u[j] else capacity[c] - bal[c]
            if side - held < carried[j]:
                break
            placed += 1
        if placed < hops:
            reason[t] = INSUFFICIENT_BALANCE
            continue
        # settle: the holds become the payments; intermediaries keep their fees
        for j in range(hops):
            c = np.uint64(route[t, j])
            flow_in_u[c] += -carried[j] if pays_u[j] else carried[j]
            bal[c] += -carried[j] if pays_u[j] else carried[j]
        for j in range(1, hops):
            earned[np.uint64(nodes[j])] += carried[j - 1] - carried[j]
        fee[t] = f
        reason[t] = OK


_pay_routes_into_nb = jit(pay_routes_into)


def pay_routes_loop(route, payer, amount, max_fee, u, v, capacity, balance_u, fee_base, fee_rate,
                    blocked_agent, blocked_channel, n):
    """(reason [T] int8, fee [T] EUR paid in fees, balance_u [E] after, flow into u's sides [E],
    fees earned [N]) of paying `amount[t]` from `payer[t]` over `route[t]` (channel slots, -1
    padded), in order, all or nothing (see the module docstring)."""
    bal = balance_u.copy()
    flow_in_u = np.zeros(u.shape[0])
    earned = np.zeros(n)
    reason = np.zeros(route.shape[0], dtype=np.int8)
    fee = np.zeros(route.shape[0])
    pay_routes_into(route, payer, amount, max_fee, u, v, capacity, bal, flow_in_u, earned, fee_base, fee_rate,
                    blocked_agent, blocked_channel, True, reason, fee)
    return reason, fee, bal, flow_in_u, earned


@jit
def _pay_routes_nb(route, payer, amount, max_fee, u, v, capacity, balance_u, fee_base, fee_rate,
                   blocked_agent, blocked_channel, n):  # pragma: no cover - compiled
    bal = balance_u.copy()
    flow_in_u = np.zeros(u.shape[0])
    earned = np.zeros(n)
    reason = np.zeros(route.shape[0], dtype=np.int8)
    fee = np.zeros(route.shape[0])
    _pay_routes_into_nb(route, payer, amount, max_fee, u, v, capacity, bal, flow_in_u, earned, fee_base, fee_rate,
                        blocked_agent, blocked_channel, True, reason, fee)
    return reason, fee, bal, flow_in_u, earned


pay_routes = register("pay_routes", pay_routes_loop, _pay_routes_nb)

__all__ = ["pay_routes", "pay_routes_loop", "pay_routes_into"]

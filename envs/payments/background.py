"""Background payments: money that routes through the network without energy (the seed's flows).

Each step with `background_payment_rate` > 0 the exogenous generator draws, for every agent, a
uniform (does it send?), a uniform (is it among the payees?) and an amount in
`background_payment_size` (3N draws, a fixed count). Every sending agent pays its amount to the
payee its widest route of at most `max_hops` hops reaches (`routes`, one multi-source search for
all of them), HTLC-style (`htlc`), paying routing fees up to `max_fee_share` of the amount. The
amounts are transfers outside the energy market (not in anyone's profit); the fees intermediaries
earn are theirs (`routing_fees`).
"""

from __future__ import annotations

import numpy as np

from .htlc import pay_routes
from .reasons import OK
from .routes import directed_edges, extract_routes, widest_routes


def background_payments(sc, active, u, v, capacity, balance_u, is_open, fee_base, fee_rate,
                        rng_exo: np.random.Generator):
    """(balance_u after, flow into u's sides [E], fees earned [N], completed, failed)."""
    send, recv, size = background_draws(sc, active.shape[0], rng_exo)
    bal, flow_in_u, earned, payer, reason = pay_background(sc, send, recv, size, active, u, v, capacity, balance_u,
                                                           is_open, fee_base, fee_rate)
    done = int((reason == OK).sum())
    return bal, flow_in_u, earned, done, int(payer.shape[0]) - done


def background_draws(sc, n: int, rng_exo: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sends? [N] bool, among the payees? [N] bool, amount [N]): the step's 3N exogenous draws."""
    send = rng_exo.random(n) < sc.background_payment_rate
    recv = rng_exo.random(n) < sc.background_payment_rate
    lo, hi = sc.background_payment_size
    return send, recv, rng_exo.uniform(lo, hi, size=n)


def pay_background(sc, send, recv, size, active, u, v, capacity, balance_u, is_open, fee_base, fee_rate):
    """The drawn background payments routed and paid: (balance_u after, flow into u's sides [E],
    fees earned [N], payers [P], reason [P] of each payer's payment)."""
    n, e = active.shape[0], u.shape[0]
    payer = np.flatnonzero(send & active)
    payee = recv & active & ~send
    if payer.shape[0] == 0:
        return balance_u, np.zeros(e), np.zeros(n), payer, np.zeros(0, dtype=np.int8)
    usable = is_open & active[u] & active[v]
    src, dst, side, ok = directed_edges(u, v, capacity, balance_u, usable)
    w = widest_routes(src, dst, side, ok, payee, sc.max_hops)
    route, _, _ = extract_routes(w, dst, payer, sc.max_hops, use_last=False)
    amount = size[payer]
    none = np.zeros(n, dtype=bool)
    reason, _, bal, flow_in_u, earned = pay_routes(
        route=route, payer=payer, amount=amount, max_fee=amount * sc.max_fee_share, u=u, v=v, capacity=capacity,
        balance_u=balance_u, fee_base=fee_base, fee_rate=fee_rate, blocked_agent=none,
        blocked_channel=np.zeros(e, dtype=bool), n=n)
    return bal, flow_in_u, earned, payer, reason


__all__ = ["background_payments", "background_draws", "pay_background"]

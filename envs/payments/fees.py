"""Routing fees: each channel's policy (base + proportional), drawn per channel, and what a route costs.

A node forwarding a payment over one of its channels charges that channel's policy on the amount
it forwards: fee = base + rate x amount (Lightning's fee_base_msat and fee_rate_milli_msat, in
EUR and as a share). The payer's own first hop charges nothing. Policies are drawn from the
channel generator when a channel opens (at reset, after every other reset draw; at a reopening,
after the lifecycle's draws), and only when the scenario has fees (`Scenario.routing_fees_on`),
so a fee-free market draws nothing.
"""

from __future__ import annotations

import numpy as np


def draw_fees(sc, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(fee_base, fee_rate) [size] of new channels: two uniform arrays, base then rate, or zeros
    without drawing when the scenario has no fees."""
    if not sc.routing_fees_on:
        return np.zeros(size), np.zeros(size)
    lo, hi = sc.routing_fee_base
    base = rng.uniform(lo, hi, size=size)
    lo, hi = sc.routing_fee_rate
    return base, rng.uniform(lo, hi, size=size)


def route_amounts(amount: np.ndarray, route: np.ndarray, fee_base: np.ndarray, fee_rate: np.ndarray) -> np.ndarray:
    """[T, H] EUR each hop of each route carries so that the payee receives `amount`: the last hop
    carries the amount, every earlier hop that plus the fee of the node forwarding over the next
    hop (padding hops, -1, carry 0). Hop 0 is the payer's own channel."""
    t, h = route.shape
    out = np.zeros((t, h))
    hops = (route >= 0).sum(axis=1)
    rows = np.arange(t)
    carried = amount.astype(np.float64).copy()
    for k in range(h - 1, -1, -1):     # H is a handful of hops; payments are vectorized
        live = hops > k
        last = hops == k + 1
        nxt = route[:, k + 1] if k + 1 < h else np.full(t, -1)
        ch = np.where(nxt >= 0, nxt, 0)
        fee = np.where(live & ~last & (nxt >= 0), fee_base[ch] + fee_rate[ch] * carried, 0.0)
        carried = np.where(live, carried + fee, carried)
        out[rows, k] = np.where(live, carried, 0.0)
    return out


__all__ = ["draw_fees", "route_amounts"]

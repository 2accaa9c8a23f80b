"""The `eps_auction` clearing mechanism: Bertsekas' ε-auction over the channel graph.

Each buyer's wanted quantity and each seller's offered quantity are split into lots; every
buyer lot (a bidder) may take one seller lot (an object) reachable over an open channel
joining the two. A pair is feasible when the buyer's opening bid is at least the seller's
opening ask (the offers' prices; concessions play no part in this mechanism) and the buyer's
side of the channel can pay for the lot at the trade price. Its benefit is the reported gain
from trade, (bid - ask + δ) x lot quantity, with δ = `scenario.auction_eps` so that pairs
with bid == ask are still worth trading. The assignment maximizes total benefit within
k·ε (ε = auction_eps x the median lot quantity, k the bidders), solved by the shared solver
`channelmarket.envs.eps_auction.auction` on a CSR benefit matrix built with numpy.

Lots: every agent's quantity is cut into lots of one common size q0 for both sides (the
median quantity over `LOTS_PER_AGENT`, so a typical agent has that many lots), the last lot
holding the remainder; an agent that would need more than `MAX_LOTS` gets `MAX_LOTS` equal
lots. A matched pair of lots trades the smaller of the two, so with a common size almost
every match is a full lot and little quantity is stranded. Parallel channels between the same two
agents: all their lots go over the one whose payer side holds the most.

Price (`scenario.auction_pricing`): "auction" settles every lot at the auction's price: the
seller's ask plus the price the auction reached for that seller lot (its premium per MWh;
~0 when supply is plentiful, up to the buyer's bid when the lot is contested), clipped to
[ask, bid], and a trade's price is the volume-weighted mean of its lots. "midpoint" (the legacy
default) trades at the midpoint of the seller's ask and the buyer's bid, as the bilateral
mechanism does, and uses the auction only for who trades with whom. Matched
lots on a channel are added up into one trade; the channel's payer balance caps the sum
(highest-benefit lots first), so the trades settle through the channel like bilateral ones
without failed payments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ..eps_auction import auction
from ..trades import Trades
from .base import Mechanism, candidate_pairs, register

if TYPE_CHECKING:
    from ..offers import Offers
    from ..scenario import Scenario
    from ..state import AgentParams, MarketState

LOTS_PER_AGENT = 4   # lots of a median participant
MAX_LOTS = 64        # lots of the largest participant


class LotMatch(NamedTuple):
    """Matched lot pairs: pair index into the candidate pairs, quantity, and the auction's
    price of the seller lot per MWh (its premium over the seller's value)."""

    pair: np.ndarray     # [K] int64
    qty: np.ndarray      # [K] float64 MWh
    premium: np.ndarray  # [K] float64 EUR/MWh


def lot_size(sell_qty: np.ndarray, buy_qty: np.ndarray, lots_per_agent: int = LOTS_PER_AGENT) -> float:
    """The common lot size q0: the median positive quantity of both sides over `lots_per_agent`."""
    q = np.concatenate([sell_qty[sell_qty > 0], buy_qty[buy_qty > 0]])
    return float(np.median(q)) / lots_per_agent if q.size else 1.0


def lot_split(qty: np.ndarray, q0: float, max_lots: int = MAX_LOTS):
    """Cut each agent's quantity into lots of size q0, the last one holding the remainder
    (agents that would need more than `max_lots` get `max_lots` equal lots).
    Returns (start [N], count [N], size [L]): agent i owns lots start[i] .. start[i]+count[i]-1."""
    qty = np.asarray(qty, dtype=np.float64)
    active = qty > 0
    need = np.ceil(qty / q0 - 1e-9).astype(np.int64)
    count = np.where(active, np.clip(need, 1, max_lots), 0)
    start = np.zeros_like(count)
    np.cumsum(count[:-1], out=start[1:])
    total = int(count.sum())
    owner = np.repeat(np.arange(qty.shape[0]), count)
    j = np.arange(total, dtype=np.int64) - start[owner]          # lot number within its agent
    capped = need[owner] > max_lots
    last = j == count[owner] - 1
    size = np.where(capped, qty[owner] / np.maximum(count[owner], 1),
                    np.where(last, qty[owner] - (count[owner] - 1) * q0, q0))
    return start, count, size


def match_lots(seller: np.ndarray, buyer: np.ndarray, surplus: np.ndarray, sell_qty: np.ndarray,
               buy_qty: np.ndarray, eps_per_mwh: float, priority: np.ndarray | None = None,
               lots_per_agent: int = LOTS_PER_AGENT, max_lots: int = MAX_LOTS) -> LotMatch:
    """Assign buyer lots to seller lots over candidate pairs (seller[P], buyer[P]) with
    `surplus[P]` EUR/MWh (pairs with surplus <= 0 are infeasible). Parallel pairs (same seller
    and buyer) keep the one of highest `priority`. Solved with the shared ε-auction."""
    from scipy.sparse import coo_matrix

    n = sell_qty.shape[0]
    empty = LotMatch(np.zeros(0, np.int64), np.zeros(0), np.zeros(0))
    ok = surplus > 0
    if not ok.any():
        return empty
    pidx = np.flatnonzero(ok)
    # parallel channels: one pair per (seller, buyer), highest priority first
    prio = np.zeros(pidx.shape[0]) if priority is None else priority[pidx]
    key = seller[pidx] * n + buyer[pidx]
    order = np.lexsort((-prio, key))
    first = np.ones(order.shape[0], dtype=bool)
    first[1:] = key[order][1:] != key[order][:-1]
    pidx = pidx[order[first]]

    sq = np.where(np.isin(np.arange(n), seller[pidx]), sell_qty, 0.0)
    bq = np.where(np.isin(np.arange(n), buyer[pidx]), buy_qty, 0.0)
    q0 = lot_size(sq, bq, lots_per_agent)
    s_start, s_count, s_size = lot_split(sq, q0, max_lots)
    b_start, b_count, b_size = lot_split(bq, q0, max_lots)
    s, b = seller[pidx], buyer[pidx]
    ls, ub = s_count[s], b_count[b]
    per = ls * ub
    keep = per > 0
    pidx, s, b, ls, ub, per = pidx[keep], s[keep], b[keep], ls[keep], ub[keep], per[keep]
    total = int(per.sum())
    if total == 0:
        return empty
    edge_pair = np.repeat(np.arange(pidx.shape[0]), per)
    offs = np.zeros(per.shape[0], dtype=np.int64)
    np.cumsum(per[:-1], out=offs[1:])
    within = np.arange(total, dtype=np.int64) - offs[edge_pair]
    ub_e = ub[edge_pair]
    lot = s_start[s][edge_pair] + within // ub_e
    unit = b_start[b][edge_pair] + within % ub_e
    q = np.minimum(s_size[lot], b_size[unit])
    benefit = surplus[pidx][edge_pair] * q
    n_units = int(b_count.sum())
    n_lots = int(s_count.sum())
    # rows are buyer units, columns seller lots; each (unit, lot) appears once (one pair per
    # seller and buyer), so scipy's O(nnz) COO -> CSR conversion has nothing to sum
    mat = coo_matrix((benefit, (unit, lot)), shape=(n_units, n_lots)).tocsr()
    eps = max(float(eps_per_mwh) * float(np.median(q)), 1e-9 * float(benefit.max()))
    assignment, prices = auction(mat, eps=eps)
    won = np.flatnonzero(assignment >= 0)
    if won.size == 0:
        return empty
    obj = assignment[won]
    # back to the candidate pair: owners of the two lots; pidx is sorted by seller * n + buyer
    lot_owner = np.repeat(np.arange(n), s_count)
    unit_owner = np.repeat(np.arange(n), b_count)
    pkey = seller[pidx] * n + buyer[pidx]
    where = np.searchsorted(pkey, lot_owner[obj] * n + unit_owner[won])
    qty = np.minimum(s_size[obj], b_size[won])
    return LotMatch(pidx[where], qty, prices[obj] / np.maximum(qty, 1e-300))


def cap_by_balance(channel: np.ndarray, qty: np.ndarray, price: np.ndarray, benefit: np.ndarray,
                   payer_balance: np.ndarray) -> np.ndarray:
    """Cut lot quantities so the payments over each channel fit its payer balance,
    highest-benefit lots first. `payer_balance` is per lot (its channel's payer side)."""
    if channel.shape[0] == 0:
        return qty
    order = np.lexsort((-benefit, channel))
    ch, pay = channel[order], (qty * price)[order]
    cum = np.cumsum(pay)
    start = np.ones(ch.shape[0], dtype=bool)
    start[1:] = ch[1:] != ch[:-1]
    group_first = np.maximum.accumulate(np.where(start, np.arange(ch.shape[0]), 0))
    before = cum - pay - (cum[group_first] - pay[group_first])
    allowed = np.clip(payer_balance[order] - before, 0.0, pay)
    out = np.empty_like(qty)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(price[order] > 0, allowed / price[order], qty[order])
    # a cut lot keeps a relative 1e-12 below the balance, so qty x price never rounds above it
    out[order] = np.where(allowed < pay, q * (1.0 - 1e-12), q)
    return out


def clear_eps_auction(sc: "Scenario", agents: "AgentParams", state: "MarketState", offers: "Offers") -> Trades:
    """Trades of the ε-auction over open channels (see module docstring)."""
    channel, seller, buyer = candidate_pairs(agents, state, offers)
    n_neg = int(channel.shape[0])
    if n_neg == 0:
        return Trades.empty()
    ask, bid = offers.ask[seller], offers.bid[buyer]
    price = 0.5 * (ask + bid)
    buyer_is_u = state.u[channel] == buyer
    payer = np.where(buyer_is_u, state.balance_u[channel], state.capacity[channel] - state.balance_u[channel])
    surplus = np.where((bid >= ask) & (payer > 0), bid - ask + sc.auction_eps, 0.0)
    m = match_lots(seller, buyer, surplus, offers.sell_qty, offers.buy_qty, sc.auction_eps, priority=payer)
    if m.pair.shape[0] == 0:
        return Trades.empty(n_neg)
    k = m.pair
    if sc.auction_pricing == "auction":   # each lot at the auction's price of its seller lot
        lot_price = np.clip(ask[k] + m.premium, ask[k], bid[k])
    else:
        lot_price = price[k]
    qty = cap_by_balance(channel[k], m.qty, lot_price, surplus[k] * m.qty, payer[k])
    keep = qty > 0
    k, qty, lot_price = k[keep], qty[keep], lot_price[keep]
    if k.shape[0] == 0:
        return Trades.empty(n_neg)
    # one trade per candidate pair (channel and direction)
    pairs, inv = np.unique(k, return_inverse=True)
    total = np.bincount(inv, weights=qty)
    if sc.auction_pricing == "auction":   # the lots' volume-weighted price, within [ask, bid]
        pair_price = np.clip(np.bincount(inv, weights=qty * lot_price) / total, ask[pairs], bid[pairs])
    else:
        pair_price = price[pairs]
    good = agents.sells_good[seller[pairs]].astype(np.int64)
    return Trades(channel[pairs].astype(np.int64), seller[pairs].astype(np.int64), buyer[pairs].astype(np.int64),
                  good, total, pair_price, n_neg)


EPS_AUCTION = register(Mechanism(
    name="eps_auction", clear=clear_eps_auction, settles="channels", optimum_network="channels",
    parameters=("auction_eps", "auction_pricing"),
    description="Bertsekas' ε-auction of buyers' demand lots for sellers' supply lots over open channels"))

__all__ = ["EPS_AUCTION", "clear_eps_auction", "match_lots", "lot_split", "lot_size", "cap_by_balance", "LotMatch", "LOTS_PER_AGENT", "MAX_LOTS"]

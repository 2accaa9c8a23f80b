"""Clearing: turn offers into trades. Three mechanisms share one signature.

- `bilateral` (default): over every open channel joining a seller and a buyer of the same good,
  K alternating concession rounds run at once for all channels (asks concede down toward the
  reserve, bids concede up toward the limit, linearly in the round); a channel agrees at the
  first round where bid >= ask, at the midpoint. A buyer knows its own side of each of its
  channels (as a Lightning node does), so it spreads its wanted quantity over its agreed channels
  in proportion to what each can deliver, min(the seller's offered quantity, what its side pays at
  the agreed price), never asking a channel for more than its side pays; an oversubscribed seller
  scales all its requests down by the same factor (proportional rationing). O(E * K).
- `double_auction`: the centralized benchmark; one uniform price per good where the sorted
  curves of the agents' fully conceded asks and bids cross; trades settle on-chain through the
  exchange (channel = -1).
- `eps_auction`: Bertsekas' auction over the channel graph; buyers' demand lots bid for
  sellers' supply lots reachable over an open channel, benefit = buyer limit - seller ask.

Every mechanism returns `Trades`; none draws random numbers.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import kernels
from .offers import Offers
from .scenario import Scenario
from .state import AgentParams, MarketState

ON_CHAIN = -1
# Trades.cut: agreed and placed in full / cut to what the buyer's channel side pays /
# agreed but the buyer's side of the channel was empty (kept in Trades with qty 0).
LIQUIDITY_OK, LIQUIDITY_CUT, LIQUIDITY_EMPTY = 0, 1, 2


class Trades(NamedTuple):
    """Agreed trades before payment, struct of arrays over T trades."""

    channel: np.ndarray  # [T] int64 channel slot, or ON_CHAIN for exchange-settled trades
    seller: np.ndarray   # [T] int64
    buyer: np.ndarray    # [T] int64
    good: np.ndarray     # [T] int64
    qty: np.ndarray      # [T] float64 MWh agreed
    price: np.ndarray    # [T] float64 EUR/MWh
    negotiations: int    # channels that negotiated this step (agreed or not)
    cut: "np.ndarray | None" = None  # [T] int8 LIQUIDITY_*: how the buyer's channel balance limited it


    @classmethod
    def empty(cls, negotiations: int = 0) -> "Trades":
        i = np.zeros(0, dtype=np.int64)
        f = np.zeros(0)
        return cls(i, i, i, i, f, f, negotiations)


def candidate_pairs(agents: AgentParams, state: MarketState, offers: Offers):
    """(channel, seller, buyer) of every open channel whose one end sells what the other buys,
    both with a positive quantity; both directions of a channel are considered."""
    u, v, is_open = state.u, state.v, state.open
    sell_ok = offers.sell_qty > 0.0
    buy_ok = offers.buy_qty > 0.0
    sg, bg = agents.sells_good, agents.buys_good
    fwd = is_open & sell_ok[u] & buy_ok[v] & (sg[u] == bg[v])
    rev = is_open & sell_ok[v] & buy_ok[u] & (sg[v] == bg[u])
    ef = np.flatnonzero(fwd)
    er = np.flatnonzero(rev)
    channel = np.concatenate([ef, er])
    seller = np.concatenate([u[ef], v[er]])
    buyer = np.concatenate([v[ef], u[er]])
    return channel, seller, buyer


def negotiate(ask0, bid0, reserve, limit, c_sell, c_buy, rounds: int):
    """K concession rounds for all pairs at once. Returns (agreed [P] bool, price [P]).

    Round k = 0..K: ask_k = ask0 - c_sell (ask0 - reserve) k/K, bid_k = bid0 + c_buy (limit - bid0) k/K;
    agreement at the first k with bid_k >= ask_k, at (ask_k + bid_k) / 2. The gap closes linearly,
    so the first agreeing round is found in closed form and then checked against the round rule
    itself (the same float expressions a round-by-round loop evaluates).
    """
    ask_step = c_sell * (ask0 - reserve) / rounds
    bid_step = c_buy * (limit - bid0) / rounds
    gap = ask0 - bid0
    rate = ask_step + bid_step
    with np.errstate(divide="ignore", invalid="ignore"):
        k_est = np.where(gap <= 0, 0.0, np.where(rate > 0, np.ceil(gap / rate), rounds + 1.0))
    k = np.clip(k_est, 0, rounds + 1).astype(np.int64)

    def agrees(kk):
        return (bid0 + bid_step * kk) >= (ask0 - ask_step * kk)

    for _ in range(2):  # float round-off: step back while the previous round already agrees
        back = (k > 0) & agrees(np.maximum(k - 1, 0))
        k = k - back
    for _ in range(2):  # ... or forward while this round does not
        fwd = (k <= rounds) & ~agrees(k)
        k = k + fwd
    agreed = (k <= rounds) & agrees(np.minimum(k, rounds))
    kf = k.astype(np.float64)
    price = np.where(agreed, 0.5 * ((ask0 - ask_step * kf) + (bid0 + bid_step * kf)), 0.0)
    return agreed, price


def ration(seller, buyer, sell_qty, buy_qty, n: int, payable=None):
    """(quantity, capped) per agreed pair: buyers spread what they want in proportion to what each
    pair can deliver, w = min(seller's offered quantity, `payable` MWh the buyer's channel side
    pays), never requesting more than `payable` (`capped` marks those); oversubscribed sellers
    scale their fills down proportionally."""
    w = sell_qty[seller] if payable is None else np.minimum(sell_qty[seller], payable)
    w_sum = np.bincount(buyer, weights=w, minlength=n)
    with np.errstate(divide="ignore", invalid="ignore"):
        request = np.where(w > 0, buy_qty[buyer] * w / w_sum[buyer], 0.0)
    capped = np.zeros(request.shape[0], dtype=bool)
    if payable is not None:
        capped = request > payable
        request = np.where(capped, payable, request)
    req_sum = np.bincount(seller, weights=request, minlength=n)
    # over: the discarded branch (req_sum <= sell_qty) may overflow for denormal requests
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        scale = np.where(req_sum > sell_qty, sell_qty / req_sum, 1.0)
    return request * scale[seller], capped


def bilateral_agreements(sc: Scenario, agents: AgentParams, state: MarketState, offers: Offers):
    """(channel, seller, buyer, price) of the pairs that agree, and the number that negotiated.
    A compiled single pass over the channels when numba is present, else NumPy; same result."""
    if kernels.bilateral_agreements is not None:
        return kernels.bilateral_agreements(
            state.u, state.v, state.open, offers.sell_qty, offers.buy_qty, agents.sells_good, agents.buys_good,
            offers.ask, offers.bid, agents.reserve, agents.limit, offers.concession, sc.negotiation_rounds)
    return bilateral_agreements_numpy(sc, agents, state, offers)


def bilateral_agreements_numpy(sc: Scenario, agents: AgentParams, state: MarketState, offers: Offers):
    channel, seller, buyer = candidate_pairs(agents, state, offers)
    agreed, price = negotiate(
        offers.ask[seller], offers.bid[buyer], agents.reserve[seller], agents.limit[buyer],
        offers.concession[seller], offers.concession[buyer], sc.negotiation_rounds,
    )
    return channel[agreed], seller[agreed], buyer[agreed], price[agreed], int(channel.shape[0])


def clear_bilateral(sc: Scenario, agents: AgentParams, state: MarketState, offers: Offers) -> Trades:
    channel, seller, buyer, price, n_neg = bilateral_agreements(sc, agents, state, offers)
    if channel.shape[0] == 0:
        return Trades.empty(n_neg)
    if kernels.ration_pairs is not None:
        qty, capped, side = kernels.ration_pairs(channel, seller, buyer, price, state.u, state.balance_u,
                                                 state.capacity, offers.sell_qty, offers.buy_qty, agents.n)
    else:
        side = np.where(state.u[channel] == buyer, state.balance_u[channel],
                        state.capacity[channel] - state.balance_u[channel])
        with np.errstate(divide="ignore", invalid="ignore"):
            payable = np.where(price > 0, side / price, np.inf)
        qty, capped = ration(seller, buyer, offers.sell_qty, offers.buy_qty, agents.n, payable)
    empty = side <= 0.0
    cut = np.where(empty, LIQUIDITY_EMPTY, np.where(capped, LIQUIDITY_CUT, LIQUIDITY_OK)).astype(np.int8)
    keep = (qty > 0.0) | empty
    good = agents.sells_good[seller[keep]].astype(np.int64)
    return Trades(channel[keep], seller[keep], buyer[keep], good, qty[keep], price[keep], n_neg, cut[keep])


def clear_double_auction(sc: Scenario, agents: AgentParams, state: MarketState, offers: Offers) -> Trades:
    """Uniform-price double auction per good: the centralized 'traditional market' benchmark.

    A sealed-bid auction has no rounds, so each agent enters the price it would concede to by
    round K of a negotiation: ask - c (ask - reserve) for sellers, bid + c (limit - bid) for buyers."""
    ask_all = offers.ask - offers.concession * (offers.ask - agents.reserve)
    bid_all = offers.bid + offers.concession * (agents.limit - offers.bid)
    parts = []
    n_goods = state.ref_price.shape[0]
    for g in range(n_goods):  # goods are few; agents are vectorized
        s_idx = np.flatnonzero((offers.sell_qty > 0) & (agents.sells_good == g))
        b_idx = np.flatnonzero((offers.buy_qty > 0) & (agents.buys_good == g))
        if s_idx.size == 0 or b_idx.size == 0:
            continue
        s_idx = s_idx[np.lexsort((s_idx, ask_all[s_idx]))]          # asks ascending
        b_idx = b_idx[np.lexsort((b_idx, -bid_all[b_idx]))]         # bids descending
        cum_s = np.cumsum(offers.sell_qty[s_idx])
        cum_d = np.cumsum(offers.buy_qty[b_idx])
        top = min(cum_s[-1], cum_d[-1])
        edges = np.unique(np.concatenate([cum_s[cum_s < top], cum_d[cum_d < top], [top]]))
        starts = np.concatenate([[0.0], edges[:-1]])
        mid = 0.5 * (starts + edges)
        si = np.minimum(np.searchsorted(cum_s, mid), s_idx.size - 1)
        bi = np.minimum(np.searchsorted(cum_d, mid), b_idx.size - 1)
        crossing = ask_all[s_idx[si]] <= bid_all[b_idx[bi]]
        m = int(np.argmin(crossing)) if not crossing.all() else crossing.size  # trading segments are a prefix
        if m == 0:
            continue
        si, bi = si[:m], bi[:m]
        q = (edges - starts)[:m]
        price = 0.5 * (ask_all[s_idx[si[-1]]] + bid_all[b_idx[bi[-1]]])
        seller, buyer = s_idx[si], b_idx[bi]
        keep = q > 0
        t = int(keep.sum())
        parts.append((seller[keep], buyer[keep], np.full(t, g), q[keep], np.full(t, price)))
    if not parts:
        return Trades.empty()
    seller, buyer, good, qty, price = (np.concatenate(x) for x in zip(*parts))
    return Trades(np.full(seller.shape[0], ON_CHAIN, dtype=np.int64), seller.astype(np.int64),
                  buyer.astype(np.int64), good.astype(np.int64), qty, price, 0)


def clear(sc: Scenario, agents: AgentParams, state: MarketState, offers: Offers) -> Trades:
    if sc.mechanism == "bilateral":
        return clear_bilateral(sc, agents, state, offers)
    if sc.mechanism == "double_auction":
        return clear_double_auction(sc, agents, state, offers)
    if sc.mechanism == "eps_auction":
        from .auction_clearing import clear_eps_auction

        return clear_eps_auction(sc, agents, state, offers)
    raise ValueError(f"scenario.mechanism = {sc.mechanism!r} has no clearing function")

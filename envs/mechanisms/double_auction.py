"""The `double_auction` mechanism: the centralized uniform-price exchange.

The 'traditional market' a peer-to-peer design is compared with: one uniform price per good
where the sorted curves of the agents' fully conceded asks and bids cross; trades settle
on-chain through the exchange (channel = ON_CHAIN, wallet to wallet), so every seller reaches
every buyer and its welfare optimum is the complete network's. No random draws.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..trades import ON_CHAIN, Trades
from .base import Mechanism, register

if TYPE_CHECKING:
    from ..offers import Offers
    from ..scenario import Scenario
    from ..state import AgentParams, MarketState


def clear_double_auction(sc: "Scenario", agents: "AgentParams", state: "MarketState", offers: "Offers") -> Trades:
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



DOUBLE_AUCTION = register(Mechanism(
    name="double_auction", clear=clear_double_auction, settles="exchange", optimum_network="complete",
    description="central uniform-price double auction per good, settled on-chain through the exchange"))

__all__ = ["DOUBLE_AUCTION", "clear_double_auction"]

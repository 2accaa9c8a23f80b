"""Offers: decode each agent's action row into an ask, a bid, quantities and a concession.

Action columns (each in [-1, 1]; finite values outside are clipped, NaN/inf is an error):

| col | name       | meaning                                                                          |
|-----|------------|----------------------------------------------------------------------------------|
| 0   | ask        | opening ask = ref price + a * tariff spread, never under the reserve             |
| 1   | bid        | opening bid = ref price + a * tariff spread, never over the limit                |
| 2   | quantity   | generators/consumers: share (a+1)/2 of sellable/needed energy offered peer-to-peer;|
|     |            | storage: a > 0 sells a * deliverable charge, a < 0 buys -a * headroom             |
| 3   | concession | share (a+1)/2 of the gap to reserve (sellers) or limit (buyers) conceded over K rounds |
| 4   | open_partner | only with `scenario.partner_action`: a > 0 asks for a channel to the agent's regular |
|     |            | partner this step (`channels.partner_openings` opens it in a free slot when both can fund it) |

A seller never asks under its reserve and a buyer never bids over its limit, whatever the
action says; the bounds are the per-agent `reserve` and `limit` in `AgentParams`. The tariff
spread (retail - feed-in) as the price scale lets every agent open anywhere between its reserve
or limit and the tariffs, whatever the reference price. Quantities under `MIN_QUANTITY` are
float dust (a store emptied to 1e-16 MWh), not offers.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .scenario import Scenario
from .state import AgentParams, NO_GOOD

ACTION_FIELDS = ("ask", "bid", "quantity", "concession")
ASK, BID, QUANTITY, CONCESSION = range(4)
N_ACTIONS = len(ACTION_FIELDS)   # the base width; optional columns follow (`action_fields`)
OPEN_PARTNER = N_ACTIONS         # column of `open_partner` when the scenario has `partner_action`


def action_fields(sc: Scenario) -> tuple[str, ...]:
    """The scenario's action columns: the four base fields, then `open_partner` with `partner_action`."""
    return ACTION_FIELDS + (("open_partner",) if sc.partner_action else ())


MIN_QUANTITY = 1e-9  # MWh (1 Wh)


def price_span(sc: Scenario) -> float:
    """EUR/MWh an ask or bid action of +-1 moves the opening price from the reference price."""
    return sc.retail_tariff - sc.feed_in_tariff


class Offers(NamedTuple):
    ask: np.ndarray         # [N] EUR/MWh opening ask (sellers)
    bid: np.ndarray         # [N] EUR/MWh opening bid (buyers)
    sell_qty: np.ndarray    # [N] MWh offered for sale peer-to-peer
    buy_qty: np.ndarray     # [N] MWh wanted peer-to-peer
    concession: np.ndarray  # [N] in [0, 1], share of the gap to reserve/limit conceded by round K


def decode(sc: Scenario, agents: AgentParams, actions: np.ndarray, ref_price: np.ndarray,
           sellable: np.ndarray, needed: np.ndarray, active: np.ndarray, market: "np.ndarray | None" = None) -> Offers:
    """Offers from already validated, clipped actions [N, 4]. In a batch of markets `ref_price` is
    [M, G] and `market` [N] each agent's market (`envs.batch`)."""
    span = price_span(sc)
    if market is not None and agents.single_good:
        sell_ref = buy_ref = ref_price[:, 0].take(market)
    elif market is not None:
        sell_ref = ref_price[market, np.maximum(agents.sells_good, 0)]
        buy_ref = ref_price[market, np.maximum(agents.buys_good, 0)]
    elif agents.single_good:
        sell_ref = buy_ref = ref_price[0]
    else:
        sell_ref = ref_price[np.maximum(agents.sells_good, 0)]
        buy_ref = ref_price[np.maximum(agents.buys_good, 0)]
    ask = np.clip(sell_ref + actions[:, ASK] * span, agents.reserve, None)
    ask = np.maximum(np.minimum(ask, sc.retail_tariff), agents.reserve)
    bid = np.clip(buy_ref + actions[:, BID] * span, 0.0, agents.limit)
    q = actions[:, QUANTITY]
    storage = agents.is_storage
    share = 0.5 * (q + 1.0)
    sell_share = np.where(storage, np.maximum(q, 0.0), share)
    buy_share = np.where(storage, np.maximum(-q, 0.0), share)
    can_sell = active & (agents.sells_good != NO_GOOD)
    can_buy = active & (agents.buys_good != NO_GOOD)
    sell_qty = sell_share * sellable
    buy_qty = buy_share * needed
    sell_qty = np.where(can_sell & (sell_qty >= MIN_QUANTITY), sell_qty, 0.0)
    buy_qty = np.where(can_buy & (buy_qty >= MIN_QUANTITY), buy_qty, 0.0)
    concession = 0.5 * (actions[:, CONCESSION] + 1.0)
    return Offers(ask, bid, sell_qty, buy_qty, concession)

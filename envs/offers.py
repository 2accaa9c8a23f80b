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

from . import kernels
from .scenario import Scenario
from .state import AgentParams

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
    if market is None:
        ref_price, market = np.asarray(ref_price)[None], np.zeros(actions.shape[0], dtype=np.int64)
    return decode_totals(sc, agents, actions, ref_price, sellable, needed, active, market)[0]


def decode_totals(sc: Scenario, agents: AgentParams, actions: np.ndarray, ref_price: np.ndarray,
                  sellable: np.ndarray, needed: np.ndarray, active: np.ndarray,
                  market: np.ndarray) -> tuple[Offers, np.ndarray, np.ndarray]:
    """(offers, supply [M, G], demand [M, G]) of M markets (`ref_price` [M, G], `market` [N]) in one
    compiled pass (`kernels.decode_offers`): each agent's offer, and per market and good the
    energy offered for sale (sellable, or a store's offered quantity) and wanted (needed, or a
    store's bid quantity), the mean-field aggregates of the step."""
    out = kernels.decode_offers(actions=actions, ref_price=ref_price, market=market, sells_good=agents.sells_good,
                                buys_good=agents.buys_good, reserve=agents.reserve, limit=agents.limit,
                                storage=agents.is_storage, sellable=sellable, needed=needed, active=active,
                                span=price_span(sc), retail=sc.retail_tariff, min_quantity=MIN_QUANTITY)
    shape = ref_price.shape
    return Offers(*out[:5]), out[5].reshape(shape), out[6].reshape(shape)

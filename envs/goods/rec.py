"""Renewable-energy certificates (`rec`): one certificate per MWh a renewable generator delivers.

- Issue: after each step's energy settlement, every agent of a kind that declares it sells
  `rec` (solar, wind) receives one certificate per MWh it delivered (sold peer-to-peer or to
  the grid; curtailed energy earns none). Certificates are a stock (`MarketState.holdings`),
  tradable from the next step on.
- Quota: industrial consumers must hold `rec_quota` certificates per MWh they consume (bought
  peer-to-peer or from the grid); the obligation grows with their consumption
  (`MarketState.owed`). Residential consumers have none and do not trade certificates.
- Trading: holders that owe nothing sell what they hold (reserve 0: a certificate costs nothing
  to keep); obligated consumers need what they owe beyond what they hold, and bid at most the
  penalty they avoid (`rec_penalty`). The reference price reverts to `rec_base_price` and stays
  within [0, rec_penalty].
- Episode end: obligated consumers retire min(held, owed) certificates; each missing one costs
  `rec_penalty` EUR, paid to the grid account (the regulator). Certificates are conserved:
  issued = held + retired.

Defaults: quota 0.3 certificates per MWh consumed, penalty 60 EUR per missing certificate,
base price 20 EUR per certificate.
"""

from __future__ import annotations

import numpy as np

from ..kinds import KINDS, Param, Profile
from .base import GoodSpec

_SELLER_KIND = np.array(["rec" in s.sells for s in KINDS])
_BUYER_KIND = np.array(["rec" in s.buys for s in KINDS])


def price_bounds(sc):
    return 0.0, sc.rec_penalty


def level(sc, hour):
    return sc.rec_base_price


def span(sc):
    return sc.rec_penalty


def obligated(sc, agents) -> np.ndarray:
    """[N] bool: agents that must hold certificates (industrial consumers of a kind buying them)."""
    return _BUYER_KIND[agents.kind] & (agents.profile == Profile.INDUSTRIAL) & (sc.rec_quota > 0)


def roles(sc, agents):
    issuer = _SELLER_KIND[agents.kind]
    buys = obligated(sc, agents)
    sells = issuer & ~buys
    reserve = np.zeros(agents.n)
    limit = np.where(buys, float(sc.rec_penalty), 0.0)
    return sells, buys, reserve, limit


def tradable(sc, agents, state, g):
    sells, buys, _, _ = roles(sc, agents)
    held, owed = state.holdings[:, g], state.owed[:, g]
    return np.where(sells, held, 0.0), np.where(buys, np.maximum(owed - held, 0.0), 0.0)


def book(sc, agents, state, g, bd, col, holdings, owed, issued):
    """Issue certificates for the energy delivered, grow the obligations with the energy consumed."""
    delivered = bd[:, col["sold"]] + bd[:, col["grid_sold"]]
    new = np.where(_SELLER_KIND[agents.kind] & state.active, delivered, 0.0)
    holdings[:, g] += new
    issued[g] += new.sum()
    consumed = bd[:, col["bought"]] + bd[:, col["grid_bought"]]
    owed[:, g] += np.where(obligated(sc, agents) & state.active, sc.rec_quota * consumed, 0.0)


def end(sc, agents, state, g, holdings, owed, retired, wallet, bd, col) -> float:
    """Retire what the obligated hold against what they owe; penalise the rest."""
    ob = obligated(sc, agents)
    ret = np.where(ob, np.minimum(holdings[:, g], owed[:, g]), 0.0)
    holdings[:, g] -= ret
    owed[:, g] -= ret
    retired[g] += ret.sum()
    penalty = np.where(ob, owed[:, g] * sc.rec_penalty, 0.0)
    wallet -= penalty
    bd[:, col["cost"]] += penalty
    bd[:, col["profit"]] -= penalty
    return float(penalty.sum())


SPEC = GoodSpec(
    name="rec", order=1, unit="certificate",
    params=(
        Param("rec_quota", 0.3, 0.0, 10.0, "num", "certificates industrial consumers must hold per MWh consumed"),
        Param("rec_penalty", 60.0, 1e-6, 1e6, "num", "EUR per missing certificate at the episode's end"),
        Param("rec_base_price", 20.0, 0.0, 1e6, "num", "EUR per certificate, the price level"),
    ),
    presets={"energy_rec": dict(base="energy_default", goods=("energy", "rec"))},
    price_bounds=price_bounds, level=level, span=span, roles=roles, tradable=tradable, book=book, end=end,
)

"""Why a payment failed: the reason codes every payment module counts by (a leaf module).

OK: paid. NO_ROUTE: no seller reachable over channels with liquidity, within any length the search
looked at. HOP_LIMIT: a route exists, but only longer than `max_hops`. INSUFFICIENT_BALANCE: a hop's
paying side could not carry the payment (an empty buyer side, or liquidity taken by earlier
payments of the step). FEE_LIMIT: the route's fees exceed what the payer accepts. PEER_FAULT: an
agent or channel on the route failed while the payment was in flight; its holds were released.
"""

from __future__ import annotations

OK, NO_ROUTE, HOP_LIMIT, INSUFFICIENT_BALANCE, FEE_LIMIT, PEER_FAULT = range(6)
REASON_NAMES = ("ok", "no_route", "hop_limit", "insufficient_balance", "fee_limit", "peer_fault")
FAILURE_NAMES = REASON_NAMES[1:]

__all__ = ["OK", "NO_ROUTE", "HOP_LIMIT", "INSUFFICIENT_BALANCE", "FEE_LIMIT", "PEER_FAULT", "REASON_NAMES",
           "FAILURE_NAMES"]

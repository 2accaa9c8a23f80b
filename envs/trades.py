"""Trades: what a clearing mechanism agrees, before payment.

The one type every mechanism returns and settlement pays, with its status codes. A leaf module
(numpy only): mechanisms, kernels and settlement share it without importing each other.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

ON_CHAIN = -1  # Trades.channel of a trade settled through the exchange, wallet to wallet
ROUTED = -2    # Trades.channel of a trade paid over a multi-hop route (Trades.route names its channels)
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
    route: "np.ndarray | None" = None  # [T, H] int64 channel slots buyer -> seller of ROUTED trades, -1 padded
    unrouted: "np.ndarray | None" = None  # [N] int8 why a buyer reached no seller (payments.reasons), routing on
    payments: "tuple | None" = None  # the payment layer's outputs (`payments.layer.pay_trades`') when the clearing
    #   also paid these trades (`Mechanism.clear_and_pay`): settlement then does not pay them again

    @classmethod
    def empty(cls, negotiations: int = 0) -> "Trades":
        i = np.zeros(0, dtype=np.int64)
        f = np.zeros(0)
        return cls(i, i, i, i, f, f, negotiations)


__all__ = ["Trades", "ON_CHAIN", "ROUTED", "LIQUIDITY_OK", "LIQUIDITY_CUT", "LIQUIDITY_EMPTY"]

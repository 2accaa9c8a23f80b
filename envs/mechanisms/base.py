"""What a clearing mechanism is, the registry of them, and what they share.

A mechanism is one declaration: its name, the scenario fields it reads, how its trades settle,
the welfare optimum it is measured against, and `clear(sc, agents, state, offers) -> Trades`.
The step, scenario validation and evaluation ask the registered `Mechanism` for these
attributes; no code outside a mechanism's module compares its name. Register one with
`register(Mechanism(...))` in its own module (modules of this package register on import;
a mechanism defined elsewhere registers when its module is imported).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from ..trades import Trades

if TYPE_CHECKING:  # types only: mechanisms sit below the scenario, which validates against them
    from ..offers import Offers
    from ..scenario import Scenario
    from ..state import AgentParams, MarketState

SETTLES = ("channels", "exchange")          # how a mechanism's trades are paid
OPTIMUM_NETWORKS = ("channels", "complete")  # which sellers can reach which buyers in its optimum


@dataclass(frozen=True)
class Mechanism:
    """A clearing mechanism.

    name:            the scenario's `mechanism` value
    clear:           (sc, agents, state, offers) -> Trades, pure (no random draws)
    settles:         "channels": every trade names the open channel it pays over;
                     "exchange": trades carry channel = ON_CHAIN and pay wallet to wallet
    optimum_network: the welfare optimum evaluation compares it with: "channels" (sellers reach
                     buyers over the open channels) or "complete" (every seller reaches every buyer)
    parameters:      the Scenario fields it reads (documentation and a test that they exist)
    description:     one line for reports and help texts
    validate:        optional (sc) -> None raising ValueError on parameters it cannot run with
    batched:         True when `clear` reads nothing per market (only per-agent and per-channel arrays),
                     so it clears a batch of markets' block-diagonal graph in one call (`envs.batch`);
                     False: the batch clears market by market
    clear_and_pay:   optional (sc, agents, state, offers, failed_agent, failed_channel) -> Trades, `clear`
                     whose Trades may also carry their payments (`Trades.payments`, the payment layer's
                     outputs over `state`, the step's failed agents and channels released): the batch
                     calls it instead of `clear` when the payment layer is on, and settlement then does
                     not pay them again
    """

    name: str
    clear: Callable[["Scenario", "AgentParams", "MarketState", "Offers"], Trades]
    settles: str = "channels"
    optimum_network: str = "channels"
    parameters: tuple[str, ...] = ()
    description: str = ""
    validate: "Callable[[Scenario], None] | None" = None
    batched: bool = False
    clear_and_pay: "Callable[..., Trades] | None" = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"Mechanism.name = {self.name!r}; allowed: a Python identifier")
        if not callable(self.clear):
            raise TypeError(f"Mechanism {self.name!r}: clear = {self.clear!r}; allowed: a callable")
        if self.settles not in SETTLES:
            raise ValueError(f"Mechanism {self.name!r}: settles = {self.settles!r}; allowed: {', '.join(SETTLES)}")
        if self.optimum_network not in OPTIMUM_NETWORKS:
            raise ValueError(f"Mechanism {self.name!r}: optimum_network = {self.optimum_network!r}; "
                             f"allowed: {', '.join(OPTIMUM_NETWORKS)}")
        object.__setattr__(self, "parameters", tuple(self.parameters))


_REGISTRY: dict[str, Mechanism] = {}


def register(mechanism: Mechanism, *, replace: bool = False) -> Mechanism:
    """Add `mechanism` to the registry (ValueError if its name is taken, unless `replace`)."""
    if not isinstance(mechanism, Mechanism):
        raise TypeError(f"register: got {type(mechanism).__name__}; allowed: a Mechanism")
    if mechanism.name in _REGISTRY and not replace and _REGISTRY[mechanism.name] is not mechanism:
        raise ValueError(f"mechanism {mechanism.name!r} is already registered")
    _REGISTRY[mechanism.name] = mechanism
    return mechanism


def unregister(name: str) -> None:
    """Remove a mechanism (tests registering their own)."""
    _REGISTRY.pop(name, None)


def get(name: str) -> Mechanism:
    """The registered mechanism `name`; ValueError naming the value and the registered ones."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"mechanism = {name!r}; allowed: {', '.join(names())}") from None


def names() -> tuple[str, ...]:
    """Names of the registered mechanisms, in registration order."""
    return tuple(_REGISTRY)


def channel_pairs(u, v, is_open, sell_qty, buy_qty, sells_good, buys_good):
    """(channel, seller, buyer) of every open channel whose one end sells what the other buys,
    both with a positive quantity; both directions of a channel are considered (forward first)."""
    sell_ok = sell_qty > 0.0
    buy_ok = buy_qty > 0.0
    fwd = is_open & sell_ok[u] & buy_ok[v] & (sells_good[u] == buys_good[v])
    rev = is_open & sell_ok[v] & buy_ok[u] & (sells_good[v] == buys_good[u])
    ef = np.flatnonzero(fwd)
    er = np.flatnonzero(rev)
    channel = np.concatenate([ef, er])
    seller = np.concatenate([u[ef], v[er]])
    buyer = np.concatenate([v[ef], u[er]])
    return channel, seller, buyer


def candidate_pairs(agents: "AgentParams", state: "MarketState", offers: "Offers"):
    """`channel_pairs` of the state's channels and the step's offers."""
    return channel_pairs(state.u, state.v, state.open, offers.sell_qty, offers.buy_qty, agents.sells_good,
                         agents.buys_good)


def usable_channels(state: "MarketState") -> np.ndarray:
    """[E] bool: the open channels between active agents, which routes may cross (every agent active,
    the usual step: the open channels themselves, no E-sized gathers)."""
    return state.open if state.active.all() else state.open & state.active[state.u] & state.active[state.v]


def routed_pairs(sc: "Scenario", agents: "AgentParams", state: "MarketState", offers: "Offers"):
    """Candidate pairs beyond the channels: every buyer's widest route of 2..`sc.max_hops` hops to a
    seller of the good it wants, over open channels between active agents (`payments.routes`;
    O(E * H), vectorized or compiled). A `RoutedCandidates`; empty when `max_hops` is 1."""
    from ..payments.routes import routed_candidates

    return routed_candidates(state.u, state.v, usable_channels(state), state.capacity, state.balance_u, offers.sell_qty,
                             offers.buy_qty, agents.sells_good, agents.buys_good, sc.max_hops)


__all__ = ["routed_pairs", "usable_channels", "Mechanism", "register", "unregister", "get", "names", "channel_pairs", "candidate_pairs", "SETTLES",
           "OPTIMUM_NETWORKS"]

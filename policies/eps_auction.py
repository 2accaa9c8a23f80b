"""The ε-auction solver for baselines: a re-export of ``channelmarket.envs.eps_auction``.

Baseline policies (centralized matching of buyers to sellers, or the distributed agreement of
Zavlanos et al. over the channel graph) import from here so that they share one solver with
the market core.
"""

from channelmarket.envs.eps_auction import (
    METHODS,
    DistributedAuctionResult,
    assignment_benefit,
    auction,
    default_eps,
    distributed_auction,
    numba_available,
)

__all__ = [
    "auction",
    "distributed_auction",
    "DistributedAuctionResult",
    "assignment_benefit",
    "default_eps",
    "numba_available",
    "METHODS",
]

"""The ε-auction solver for baselines: a re-export of ``channelmarket.envs.eps_auction``.

Baseline policies (centralized matching of buyers to sellers, or the distributed agreement of
Zavlanos et al. over the channel graph) import from here so that they share one solver with
the market core.
"""

from ..envs.eps_auction import (  # noqa: F401  (re-exported)
    METHODS,
    DistributedAuctionResult,
    __all__,
    assignment_benefit,
    auction,
    default_eps,
    distributed_auction,
    numba_available,
)

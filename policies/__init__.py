"""Rule-based baselines and the one vectorized policy protocol.

    from channelmarket.policies import make, run_episode
    result = run_episode("energy_default", make("risk_factor"), seed=0)

The ε-auction solver itself is `channelmarket.policies.eps_auction.auction` (it lives in
`channelmarket.envs.eps_auction`, where the core's `eps_auction` clearing uses it).
"""

from .auction_baseline import EpsAuctionBaseline
from .base import Policy
from .learned import LearnedPolicy, load
from .mean_field import MeanFieldPolicy
from .registry import BASELINES, REGISTRY, make, register
from .risk_factor import RiskFactor, RiskParams
from .rollout import EpisodeResult, resolve_assignments, run_episode, run_episode_dict
from .simple import FixedMarkup, RandomPolicy, Truthful, ZeroIntelligence, encode_actions, storage_direction

__all__ = [
    "Policy", "make", "register", "REGISTRY", "BASELINES", "run_episode", "run_episode_dict", "EpisodeResult",
    "resolve_assignments", "Truthful", "FixedMarkup", "ZeroIntelligence", "RandomPolicy", "RiskFactor", "RiskParams",
    "EpsAuctionBaseline", "encode_actions", "storage_direction", "LearnedPolicy", "load", "MeanFieldPolicy",
]

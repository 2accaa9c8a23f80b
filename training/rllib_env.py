"""The market as RLlib sees it: `channel_market_v0` through RLlib's own `ParallelPettingZooEnv`,
and the policy mapping read from the env's `agent_kinds` (never parsed from agent names).

    from channelmarket.training.rllib_env import ENV_NAME, register, policy_map
    register()                                    # tune.register_env(ENV_NAME, ...)
    mapping = policy_map({"scenario": "energy_small"}, "role")   # {"solar_0": "pricing", ...}

Policy mappings (`POLICY_MODES`):
- "shared": one module for every agent (the kind is observed);
- "kind": one module per agent kind present (solar, wind, storage, consumer, ...);
- "role": "pricing" for kinds that sell (solar, wind, storage), "bidding" for kinds that only buy.

Imports Ray only inside `register` and `make_env`, so the mapping is usable without the extra.
"""

from __future__ import annotations

from typing import Any

from ..envs.kinds import BY_NAME

ENV_NAME = "channelmarket_parallel_v0"
POLICY_MODES = ("shared", "kind", "role")


def env_kwargs(env_config: Any) -> dict[str, Any]:
    """`parallel_env` keywords from an RLlib env_config (a dict or EnvContext): every key but RLlib's own."""
    cfg = dict(env_config or {})
    return {k: v for k, v in cfg.items() if not k.startswith("_")}


def make_env(env_config: Any = None):
    """A `ParallelPettingZooEnv` over `channel_market_v0.parallel_env(**env_config)`."""
    from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv

    from ..envs import channel_market_v0

    return ParallelPettingZooEnv(channel_market_v0.parallel_env(**env_kwargs(env_config)))


def register() -> str:
    """Register the env with Ray Tune under `ENV_NAME` (idempotent) and return the name."""
    from ray.tune.registry import register_env

    register_env(ENV_NAME, make_env)
    return ENV_NAME


def role_of(kind: str) -> str:
    """'pricing' for a kind that sells anything, 'bidding' for one that only buys."""
    return "pricing" if BY_NAME[kind].sells_any else "bidding"


def policy_map(env_config: Any, mode: str = "shared") -> dict[str, str]:
    """Agent name -> module id for `mode`, from the env's own `agent_kinds` attribute."""
    if mode not in POLICY_MODES:
        raise ValueError(f"policies = {mode!r}; allowed: {', '.join(POLICY_MODES)}")
    from ..envs import channel_market_v0

    kinds = channel_market_v0.parallel_env(**env_kwargs(env_config)).agent_kinds
    if mode == "shared":
        return {a: "shared" for a in kinds}
    if mode == "kind":
        return dict(kinds)
    return {a: role_of(k) for a, k in kinds.items()}


class PolicyMapping:
    """RLlib's `policy_mapping_fn`: a picklable lookup of agent name -> module id."""

    def __init__(self, mapping: dict[str, str]) -> None:
        self.mapping = dict(mapping)

    def __call__(self, agent_id: str, *args: Any, **kwargs: Any) -> str:
        try:
            return self.mapping[agent_id]
        except KeyError:
            raise ValueError(f"agent {agent_id!r} is not in this market's policy mapping "
                             f"({len(self.mapping)} agents)") from None

    @property
    def modules(self) -> tuple[str, ...]:
        """Module ids in first-mention order."""
        return tuple(dict.fromkeys(self.mapping.values()))


__all__ = ["ENV_NAME", "POLICY_MODES", "env_kwargs", "make_env", "register", "role_of", "policy_map",
           "PolicyMapping"]

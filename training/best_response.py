"""The IPPO best-response trainer that `eval.exploitability` uses, registered into
`eval.best_response` under "ippo" when `channelmarket.training` is imported (eval never imports
training; training registers into eval)."""

from __future__ import annotations

import tempfile
from typing import Any

from ..eval import best_response


def ippo_best_response(sc: Any, kind: str, background: str, steps: int, seed: int) -> Any:
    """Train IPPO learners of `kind` against `background` for `steps` market steps; the trained
    actor as a Policy."""
    from .ippo import IPPOConfig, load_ippo, train

    with tempfile.TemporaryDirectory(prefix="exploit_ippo_") as tmp:
        train(IPPOConfig(scenario=sc, learners=(kind,), background=background, total_steps=steps, seed=seed,
                         shocks=sc.shock_rate > 0, shock_rate=sc.shock_rate, progress=False, checkpoint_every=0,
                         torch_threads=1, rollout_steps=sc.episode_steps),
              tmp)
        return load_ippo(tmp)


best_response.register("ippo", ippo_best_response)

__all__ = ["ippo_best_response"]

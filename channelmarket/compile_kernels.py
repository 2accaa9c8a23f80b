"""`channelmarket compile`: build every numba kernel into numba's on-disk cache, once, ahead of use.

numba compiles a kernel the first time a process calls it and caches the machine code on disk; a
later process loads it in milliseconds. On a fresh install the first market of each sort therefore
spends seconds compiling (measured on the project's 2-core VM: ~16 s for the first energy step,
~24 s more for a Lightning market, ~14 s for the first supply-chain day). This command pays all of
it at once, by stepping a small market of every preset, mechanism and economy the package ships,
batched and alone, with every baseline policy, and the supply chain with built-in and learned
agents: the kernels compile for exactly the argument types the package uses. `make venv` runs it
after installing. Running it again only loads the cache (a few seconds).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Callable

import numpy as np


def _energy_markets() -> list[tuple[str, Callable[[], Any]]]:
    from .envs.core import MarketCore
    from .envs.scenario import PRESETS

    out: list[tuple[str, Callable[[], Any]]] = []
    for name, sc in PRESETS.items():
        if sc.n_agents > 1_000:
            sc = sc.with_agents(1_000)
        out.append((name, lambda sc=sc: MarketCore(sc)))
    for mech in ("double_auction", "eps_auction"):
        out.append((f"energy_default, {mech}", lambda mech=mech: MarketCore("energy_default", mechanism=mech)))
    for name in ("energy_default", "energy_lightning"):
        out.append((f"2 x {name}", lambda name=name: MarketCore(name, n_markets=2)))
    return out


def _step_energy(core: Any, steps: int, rng: np.random.Generator) -> None:
    core.reset(0)
    for _ in range(steps):
        core.step(rng.uniform(-1, 1, (core.n_agents, core.n_actions)))
    if getattr(core, "n_markets", 1) == 1:
        core.summary()


def _baselines() -> None:
    from .policies.registry import REGISTRY, make
    from .policies.rollout import run_episode

    for name in REGISTRY:
        run_episode("energy_default", make(name), seed=0, max_steps=3)


def _supply_chain(steps: int, rng: np.random.Generator) -> None:
    from .envs.supply_chain import SupplyChainCore

    core = SupplyChainCore("supply_chain_small")
    core.reset(0)
    for _ in range(steps):
        core.step()
    mask = np.arange(core.n_agents) % 2 == 0
    for _ in range(steps):
        core.step(rng.uniform(-1, 1, (core.n_agents, 5)), mask)


def compile_all(steps: int = 3, log: Callable[[str], None] = print) -> float:
    """Step every market sort `steps` times (kernels compile or load on the way); the seconds it took."""
    from .envs.compiled import USE_NUMBA

    if not USE_NUMBA:
        log("numba is off (CHANNELMARKET_NUMBA=0, or numba does not import): nothing to compile")
        return 0.0
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for name, make_core in _energy_markets():
        t = time.perf_counter()
        _step_energy(make_core(), steps, rng)
        log(f"  {name:<38} {time.perf_counter() - t:6.1f} s")
    t = time.perf_counter()
    _baselines()
    log(f"  {'baseline policies':<38} {time.perf_counter() - t:6.1f} s")
    t = time.perf_counter()
    _supply_chain(steps, rng)
    log(f"  {'supply chain (built-in and learned)':<38} {time.perf_counter() - t:6.1f} s")
    return time.perf_counter() - start


def main(argv: "list[str] | None" = None) -> int:
    p = argparse.ArgumentParser(prog="channelmarket compile", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quiet", action="store_true", help="print only the total")
    args = p.parse_args(argv)
    log = (lambda s: None) if args.quiet else (lambda s: print(s, flush=True))
    log("compiling the numba kernels into numba's cache (each market sort: compile or load) ...")
    total = compile_all(log=log)
    print(f"channelmarket compile: {total:.1f} s; later processes load the kernels from the cache", file=sys.stdout)
    return 0


__all__ = ["compile_all", "main"]

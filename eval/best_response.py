"""Best-response trainers for exploitability, registered by the layer that owns them.

`eval` never imports `training` (imports run envs <- policies <- eval <- training), yet the
exploitability search can train a learned deviation. A trainer registers itself here under a
method name — `channelmarket.training` registers "ippo" when it is imported (the `channelmarket
eval` command imports it; a script calling `exploitability(..., method="ippo")` imports
`channelmarket.training` first) — and exploitability looks it up by the method's name.

A trainer is `trainer(sc, kind, background, steps, seed) -> Policy`: train the agents of `kind`
for `steps` market steps of scenario `sc` against `background` (one policy spec every other agent
runs), then return the trained deviation. It is stored in the exploitability job, so spawn
workers import its module (and with it the registration) when they unpickle the job.
"""

from __future__ import annotations

from typing import Any, Callable

_TRAINERS: dict[str, Callable[..., Any]] = {}


def register(name: str, trainer: Callable[..., Any]) -> Callable[..., Any]:
    """Register `trainer` for exploitability method `name` (a later registration replaces it)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"best-response method name {name!r}; allowed: a non-empty string")
    if not callable(trainer):
        raise TypeError(f"best-response trainer for {name!r} is {type(trainer).__name__}; allowed: a callable")
    _TRAINERS[name] = trainer
    return trainer


def get(name: str) -> Callable[..., Any]:
    """The trainer registered for `name`; ValueError saying how to register one."""
    try:
        return _TRAINERS[name]
    except KeyError:
        raise ValueError(
            f"exploitability method {name!r} has no registered best-response trainer (registered: "
            f"{', '.join(_TRAINERS) or 'none'}); import channelmarket.training to register 'ippo', or register one "
            "with channelmarket.eval.best_response.register") from None


def names() -> tuple[str, ...]:
    return tuple(_TRAINERS)


__all__ = ["register", "get", "names"]

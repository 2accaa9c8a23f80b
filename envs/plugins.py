"""Plug-in discovery: every module of a registry package (kinds, goods, mechanisms) is imported,
so adding a kind, a good or a mechanism is adding one module to its folder."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType
from typing import Iterable


def import_modules(package: str, path: Iterable[str]) -> list[ModuleType]:
    """Import every module of `package` (its `__path__`) except `base` and private ones, in name order."""
    infos = sorted(pkgutil.iter_modules(path), key=lambda m: m.name)
    return [importlib.import_module(f"{package}.{m.name}") for m in infos
            if m.name != "base" and not m.name.startswith("_")]


def declared_specs(package: str, path: Iterable[str], spec_type: type) -> list:
    """The `SPEC` of every module of `package` that declares one of `spec_type`, sorted by `.order`."""
    specs = [getattr(m, "SPEC", None) for m in import_modules(package, path)]
    return sorted((s for s in specs if isinstance(s, spec_type)), key=lambda s: s.order)


__all__ = ["import_modules", "declared_specs"]

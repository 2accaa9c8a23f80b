"""Clearing mechanisms as plug-ins: one module each, one registry (`base`).

Every module of this package registers its mechanism when imported, and this package imports
them all (in name order), so adding a mechanism is adding one module here (and its test). A
mechanism defined anywhere else registers itself with `register(Mechanism(...))` when its module
is imported. Scenario validation, the step and evaluation ask the registry, never a name.
"""

from __future__ import annotations

from ..plugins import import_modules
from .base import Mechanism, candidate_pairs, get, names, register, unregister

import_modules(__name__, __path__)

__all__ = ["Mechanism", "register", "unregister", "get", "names", "candidate_pairs"]

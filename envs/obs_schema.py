"""The observation schema: the ordered column names of a market's observation, so code reads
columns by name (`obs[:, schema["reserve"]]`) and a saved model knows what it was trained on.

    schema = observation_schema("energy_ev")       # or core.obs_schema
    schema["reserve"]                               # column index
    schema.take(obs, "reserve", "limit")            # obs[:, [i_reserve, i_limit]]
    schema.check(model_schema, "model 'learned:ppo'")   # ValueError on any difference

The schema is derived from the observation code (`observations.obs_fields`), never written out
by hand: a scenario with optional kinds (electric vehicles) or more goods has more columns, and
its schema says which. `to_dict()` / `from_dict()` are what model files store (a version and
the list of names); `legacy_schema(obs_dim)` is what a model saved without one is assumed to
have been trained on (the standard four-kind layout, optional kinds' one-hot columns after it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ObsSchema:
    """Ordered observation column names (unique, non-empty) and the schema format version."""

    columns: tuple[str, ...]
    version: int = SCHEMA_VERSION
    _index: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        cols = tuple(self.columns)
        for i, c in enumerate(cols):
            if not isinstance(c, str) or not c:
                raise ValueError(f"observation schema column {i} = {c!r}; allowed: a non-empty string")
        if len(set(cols)) != len(cols):
            dup = next(c for c in cols if cols.count(c) > 1)
            raise ValueError(f"observation schema column {dup!r} appears twice; names must be unique")
        object.__setattr__(self, "columns", cols)
        object.__setattr__(self, "_index", {c: i for i, c in enumerate(cols)})

    # ---- reading columns by name -------------------------------------------------------------
    def __getitem__(self, name: str) -> int:
        try:
            return self._index[name]
        except (KeyError, TypeError):
            raise KeyError(f"no observation column {name!r}; this schema has {len(self)}: "
                           f"{', '.join(self.columns)}") from None

    def __len__(self) -> int:
        return len(self.columns)

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self.columns)

    def index(self, *names: str) -> np.ndarray:
        """int64 column indices of `names`, in the order given."""
        return np.array([self[n] for n in names], dtype=np.int64)

    def take(self, obs: np.ndarray, *names: str) -> np.ndarray:
        """obs[:, column of name] for one name ([M]), or obs[:, those columns] ([M, k]) for several."""
        if len(names) == 1:
            return obs[:, self[names[0]]]
        return obs[:, self.index(*names)]

    def prefixed(self, prefix: str) -> np.ndarray:
        """Indices of the columns whose names start with `prefix` (e.g. "kind_" for the one-hot)."""
        return np.array([i for i, c in enumerate(self.columns) if c.startswith(prefix)], dtype=np.int64)

    # ---- comparing and storing -------------------------------------------------------------
    def check(self, other: "ObsSchema", what: str = "model", against: str = "market") -> None:
        """ValueError unless `other` (what `what` was built for) equals this schema (`against`'s),
        naming the first differing column and both sizes."""
        if other.columns == self.columns:
            return
        mine, theirs = self.columns, other.columns
        i = next((k for k in range(min(len(mine), len(theirs))) if mine[k] != theirs[k]), min(len(mine), len(theirs)))
        a = repr(theirs[i]) if i < len(theirs) else "nothing (it ends there)"
        b = repr(mine[i]) if i < len(mine) else "nothing (it ends there)"
        raise ValueError(
            f"{what} was built for an observation of {len(theirs)} columns, the {against} observes {len(mine)}; "
            f"first difference at column {i}: built for {a}, the {against} has {b}. Use a {against} with the "
            f"schema it was built for (its columns: {', '.join(theirs)})")

    def to_dict(self) -> dict[str, Any]:
        return {"version": int(self.version), "columns": list(self.columns)}

    @classmethod
    def from_dict(cls, d: Any, where: str = "observation schema") -> "ObsSchema":
        """A schema from `to_dict()`'s output, validated (a newer version than this code reads is refused)."""
        if not isinstance(d, dict) or not isinstance(d.get("columns"), (list, tuple)):
            raise ValueError(f"{where}: expected a mapping with 'version' and a 'columns' list, got {d!r:.200}")
        v = d.get("version")
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= SCHEMA_VERSION:
            raise ValueError(f"{where}: schema version {v!r}; this code reads versions 1..{SCHEMA_VERSION}")
        return cls(tuple(d["columns"]), int(v))


def observation_schema(sc: Any) -> ObsSchema:
    """The observation schema of scenario `sc` (a `Scenario`, a preset name or anything `get_scenario` takes)."""
    from .observations import obs_fields
    from .scenario import Scenario, get_scenario

    if not isinstance(sc, Scenario):
        sc = get_scenario(sc)
    return ObsSchema(tuple(f[0] for f in obs_fields(sc)))


def legacy_schema(obs_dim: int) -> ObsSchema:
    """The schema a model saved without one is assumed to have: the standard four-kind layout
    (`observations.OBS_NAMES`), then the optional kinds' one-hot columns in registry order, then
    `column_<i>` placeholders if it is wider still (such a model matches no market)."""
    from .kinds import KINDS
    from .observations import OBS_NAMES

    if isinstance(obs_dim, bool) or not isinstance(obs_dim, (int, np.integer)) or obs_dim < 1:
        raise ValueError(f"observation size {obs_dim!r}; allowed: an integer >= 1")
    names = list(OBS_NAMES[:obs_dim])
    names += [f"kind_{s.name}" for s in KINDS if s.optional][:max(obs_dim - len(names), 0)]
    names += [f"column_{i}" for i in range(len(names), obs_dim)]
    return ObsSchema(tuple(names))


__all__ = ["ObsSchema", "observation_schema", "legacy_schema", "SCHEMA_VERSION"]

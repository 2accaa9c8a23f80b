"""The kind registry: everything kind-specific derives from the registered KindSpecs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from channelmarket.envs import MarketCore, Scenario
from channelmarket.envs.kinds import COUNT_FIELDS, KIND_ALIASES, KIND_NAMES, KINDS, PARAMS, Role, observed_kinds
from channelmarket.envs.observations import OBS_NAMES, kind_columns, obs_fields
from channelmarket.envs.state import Kind, kind_has


def test_registry_order_names_and_codes():
    assert KIND_NAMES[:4] == ("solar", "wind", "storage", "consumer") and "ev" in KIND_NAMES
    assert [k.name.lower() for k in Kind] == list(KIND_NAMES)
    assert [s.order for s in KINDS] == sorted(s.order for s in KINDS)


def test_aliases_derive_from_roles():
    assert KIND_ALIASES["sellers"] == tuple(s.name for s in KINDS if s.role & Role.SELLER)
    assert KIND_ALIASES["buyers"] == tuple(s.name for s in KINDS if s.role & Role.BUYER)
    assert set(KIND_ALIASES["sellers"]) & set(KIND_ALIASES["buyers"]) == {"storage", "ev"}
    assert KIND_ALIASES["generators"] == ("solar", "wind") and KIND_ALIASES["consumers"] == ("consumer",)


def test_scenario_fields_and_validation_come_from_the_specs():
    names = {f.name for f in dataclasses.fields(Scenario)}
    assert set(COUNT_FIELDS) <= names and {p.field for p in PARAMS} <= names
    for p in PARAMS:
        bad = (p.hi + 1.0, p.hi + 2.0) if p.shape == "pair" else p.hi + 1.0
        with pytest.raises(ValueError, match=p.field):
            Scenario(**{p.field: bad})
    with pytest.raises(ValueError, match="n_ev"):
        Scenario(n_ev=-1)


def test_optional_kinds_keep_the_standard_observation_layout():
    sc = Scenario()
    assert observed_kinds(sc) == ("solar", "wind", "storage", "consumer")
    assert tuple(f[0] for f in obs_fields(sc)) == OBS_NAMES and len(OBS_NAMES) == 30
    ev = Scenario(n_ev=3)
    assert tuple(f[0] for f in obs_fields(ev)) == OBS_NAMES + ("kind_ev",)
    core = MarketCore(ev)
    obs = core.reset(seed=0)
    assert obs.shape == (ev.n_agents, 31) and core.obs_dim == 31
    cols = kind_columns(ev)[core.agents.kind]          # every agent's one-hot column
    assert (obs[np.arange(ev.n_agents), cols] == 1).all()
    assert (obs[:, sorted(set(cols.tolist()))].sum(axis=1) == 1).all()


def test_behaviour_masks_follow_the_declarations():
    core = MarketCore(Scenario(n_ev=2))
    core.reset(seed=1)
    ag = core.agents
    assert np.array_equal(ag.is_store, np.isin(ag.kind, [Kind.STORAGE, Kind.EV]))
    assert np.array_equal(ag.is_generator, kind_has(ag.kind, "grid_export"))
    assert np.array_equal(ag.is_consumer, ag.kind == Kind.CONSUMER)
    blocks = [(spec.name, sl.start, sl.stop) for spec, sl in ag.blocks]
    assert [b[0] for b in blocks] == list(KIND_NAMES) and blocks[-1][2] == ag.n
    for name, a, b in blocks:
        assert (ag.kind[a:b] == Kind[name.upper()]).all()


def test_with_agents_keeps_absent_kinds_absent():
    sc = Scenario(n_ev=0).with_agents(1003)
    assert sc.n_ev == 0 and sc.n_agents == 1003
    sc = Scenario(n_ev=10).with_agents(1000)
    assert sc.n_ev >= 1 and sc.n_agents == 1000

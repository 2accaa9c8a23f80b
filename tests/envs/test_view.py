"""The declared market view and the observation schema: what a policy may read, read-only, and
observation columns by name derived from the observation code."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from channelmarket import MarketCore
from channelmarket.envs.obs_schema import ObsSchema, legacy_schema, observation_schema
from channelmarket.envs.observations import OBS_NAMES, obs_fields
from channelmarket.envs.view import OWN_PARAMS


@pytest.fixture(scope="module")
def stepped():
    core = MarketCore("energy_small")
    core.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(3):
        core.step(rng.uniform(-1, 1, (core.n_agents, 4)))
    return core


def test_schema_is_derived_from_the_observation_code_per_scenario():
    for name in ("energy_small", "energy_ev"):
        core = MarketCore(name)
        assert core.obs_schema.columns == tuple(f[0] for f in obs_fields(core.scenario))
        assert len(core.obs_schema) == core.obs_dim == observation_schema(name).__len__()
    assert MarketCore("energy_small").obs_schema.columns == OBS_NAMES
    assert MarketCore("energy_ev").obs_schema.columns[-1] == "kind_ev"


def test_columns_by_name_read_the_observation(stepped):
    core = stepped
    obs = core.observe()
    s = core.obs_schema
    view = core.view()
    np.testing.assert_allclose(s.take(obs, "reserve"), np.clip(view.reserve / core.scenario.retail_tariff, 0, 1),
                               rtol=1e-6)
    kinds = s.take(obs, *[c for c in s if c.startswith("kind_")])
    assert (np.argmax(kinds, axis=1) == view.kind).all()
    with pytest.raises(KeyError, match="no observation column 'nope'"):
        s["nope"]


def test_view_hides_other_agents_private_data(stepped):
    core = stepped
    mine = np.array([0, 3, 11])
    view = core.view(mine)
    others = np.setdiff1d(np.arange(core.n_agents), mine)
    for name in OWN_PARAMS + ("soc",):
        a = getattr(view, name)
        assert a.shape == (core.n_agents,)
        np.testing.assert_array_equal(a[mine], getattr(core.agents if name != "soc" else core.state, name)[mine])
        assert np.isnan(a[others]).all(), name
    sellable, needed = view.tradable()
    assert np.isnan(sellable[others]).all() and np.isfinite(sellable[mine]).all()
    bal = view.balance_u
    st_ = core.state
    own_ch = np.isin(st_.u, mine) | np.isin(st_.v, mine)
    np.testing.assert_array_equal(bal[own_ch], st_.balance_u[own_ch])
    assert np.isnan(bal[~own_ch]).all()
    tr = view.my_trades()
    assert (np.isin(tr.seller, mine) | np.isin(tr.buyer, mine)).all()
    res = core.last_result
    assert tr.seller.shape[0] == int((np.isin(res.trades.seller, mine) | np.isin(res.trades.buyer, mine)).sum())
    assert np.isnan(view.breakdown()["profit"][others]).all()


def test_view_is_read_only_and_declares_its_fields(stepped):
    view = stepped.view([0, 1])
    for name in ("kind", "sells_good", "buys_good", "is_store", "active", "u", "v", "open", "channel_capacity",
                 "ref_price", "balance_u", "soc", "reserve", "limit"):
        a = getattr(view, name)
        assert not a.flags.writeable, name
        with pytest.raises(ValueError):
            a[..., 0] = 0
    for name in ("state", "agents_params", "last_result", "wallet", "rng"):
        with pytest.raises(AttributeError, match="declared view"):
            getattr(view, name)
    s = view.summary()
    s["t"] = -1          # a copy: the market's summary is untouched
    assert stepped.summary()["t"] != -1


def test_advice_only_for_own_agents(stepped):
    view = stepped.view([0, 1])
    with pytest.raises(ValueError, match="agent 5 is not controlled"):
        view.advised(np.array([0, 5]), np.array([1, 1]))


def test_oracle_copy_leaves_the_market_alone(stepped):
    copy = stepped.view().oracle_copy()
    t = stepped.state.t
    copy.step(np.zeros((copy.n_agents, 4)))
    assert stepped.state.t == t and copy.state.t == t + 1


@settings(max_examples=25, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=6), min_size=1, max_size=12, unique=True))
def test_schema_round_trip_and_check(cols):
    s = ObsSchema(tuple(cols))
    assert ObsSchema.from_dict(s.to_dict()) == s
    s.check(ObsSchema(tuple(cols)))
    other = ObsSchema(tuple(cols) + ("extra_col_",)) if "extra_col_" not in cols else ObsSchema(tuple(cols[:-1]))
    with pytest.raises(ValueError, match="first difference at column"):
        s.check(other)


def test_schema_errors_name_column_and_sizes():
    a, b = observation_schema("energy_small"), observation_schema("energy_ev")
    with pytest.raises(ValueError, match=r"observation of 31 columns, the market observes 30; first difference at "
                                         r"column 30: built for 'kind_ev'"):
        a.check(b)
    with pytest.raises(ValueError, match="schema version 9"):
        ObsSchema.from_dict({"version": 9, "columns": ["a"]})
    with pytest.raises(ValueError, match="appears twice"):
        ObsSchema(("a", "a"))
    assert legacy_schema(30) == a and legacy_schema(31) == b
    assert legacy_schema(33).columns[-1] == "column_32"

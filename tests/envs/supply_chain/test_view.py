"""`SupplyChainView` shares `MarketView`'s machinery instead of copying it (review item): binding,
clock-free fields, NaN masking, own-parameter dispatch and the own-trades filter."""

from __future__ import annotations

import numpy as np
import pytest

from channelmarket.envs.supply_chain import SupplyChainCore
from channelmarket.envs.supply_chain.view import SupplyChainView
from channelmarket.envs.view import MarketView, own_trades


def test_shared_members_are_inherited_not_copied():
    for name in ("agents", "controlled", "n_agents", "schema", "done", "summary", "_own", "__getattr__"):
        assert name not in SupplyChainView.__dict__, name
        assert getattr(SupplyChainView, name) is getattr(MarketView, name)


def test_own_fields_masked_and_trades_filtered_like_the_energy_view():
    core = SupplyChainCore("supply_chain_small")
    core.reset(seed=2)
    mine = np.array([1, 4, 13])
    for _ in range(8):
        core.step()
    view = core.view(mine)
    assert np.isnan(np.delete(view.reserve, mine)).all() and np.isfinite(view.reserve[mine]).all()
    assert view.limit[mine].tolist() == [1.0, 1.0, 1.0]
    tr = view.my_trades()
    keep = np.isin(tr.seller, mine) | np.isin(tr.buyer, mine)
    assert keep.all() and not tr.price.flags.writeable
    every = own_trades(np.ones(core.n_agents, bool), tuple(tr))
    assert all(np.array_equal(a, b) for a, b in zip(every, tr))
    with pytest.raises(AttributeError, match="SupplyChainView has no 'money'.*declared view"):
        view.money


def test_needed_counts_food_a_producer_lacks_with_its_input_stock_full():
    """Regression: `needed` was the input target's lack only, so a Miller with corn enough asked its
    one quantity column for nothing and bought no food either (the energy policies starved it)."""
    core = SupplyChainCore("supply_chain_small")
    core.reset(seed=0)
    st = core.state
    miller = int(np.flatnonzero(core.kind == 1)[0])
    st.hold[miller, st.in_good[miller]] = 1000.0             # input stock full
    st.hold[miller, core.food] = 0.0                          # no food
    _, needed = core.view(np.array([miller])).tradable()
    assert needed[miller] > 0

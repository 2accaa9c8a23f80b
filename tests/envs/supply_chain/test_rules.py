"""Production and trading rules on tiny hand-made states."""

from __future__ import annotations

import numpy as np

from channelmarket.envs.supply_chain import SupplyChainCore
from channelmarket.envs.supply_chain.production import add_lots, take_cheapest


def test_production_takes_the_cheapest_lots_first():
    q = np.array([[2.0, 3.0, 1.0, 0.0]])
    c = np.array([[5.0, 1.0, 3.0, 0.0]])
    left, cost = take_cheapest(q, c, np.array([4.0]))
    np.testing.assert_allclose(left, [[2.0, 0.0, 0.0, 0.0]])     # 3 at 1, then 1 at 3
    assert cost == 3 * 1.0 + 1 * 3.0


def test_lots_merge_into_the_dearest_when_full():
    q = np.array([[1.0, 1.0]])
    c = np.array([[2.0, 4.0]])
    add_lots(q, c, np.array([0]), np.array([1.0]), np.array([6.0]))
    np.testing.assert_allclose(q, [[1.0, 2.0]])
    np.testing.assert_allclose(c, [[2.0, 5.0]])


def _two_buyers_one_package():
    """One Seller with one package of food, two hungry Millers next to it in its customer list."""
    core = SupplyChainCore("supply_chain_small", n_farmer=0, n_miller=2, n_baker=0, n_seller=1, advertising=1.0,
                           width=50.0, height=50.0, r_range=(0.1, 0.1), initial_food=0, seller_stock=0)
    core.reset(seed=0)
    st = core.state
    st.xy[:] = [[10.0, 10.0], [12.0, 10.0], [11.0, 11.0]]
    keep = core.scenario.food_target * (1.5 - 0.1)   # the food a Seller keeps to eat
    st.hold[2, core.food] = keep + 2.0               # and exactly one package to sell (food_package = 2)
    st.partner[2, :2] = [0, 1]
    st.t_last[2, :2] = 0.0
    return core


def test_the_seller_sells_to_the_highest_accepted_price():
    core = _two_buyers_one_package()
    core.state.points[2, 1] = 1e4                     # miller 1 is a regular customer: a lower price
    acts = np.zeros((3, 4))
    acts[:, 2] = 1.0                                  # learned: offer every package, buy the whole need
    acts[:, 1] = 1.0                                  # both accept anything up to the cap
    acts[2, 0] = 0.4                                  # the seller's margin
    core.step(acts, mask=np.ones(3, bool))
    tr = core.last_trades
    food = tr.good == core.food
    assert food.sum() == 1                            # one package, one sale
    assert tr.buyer[food][0] == 0                     # to the customer that accepted the higher price
    offers = core.last_offers
    assert offers.accepted[offers.good == core.food].sum() == 2


def test_the_purchase_chain_refuses_what_it_cannot_afford():
    core = _two_buyers_one_package()
    core.state.money[:2] = 0.0
    core.step()
    assert (core.last_trades.good == core.food).sum() == 0
    assert core.state.hold[2, core.food] <= core.scenario.food_target * 1.4 + 2.0

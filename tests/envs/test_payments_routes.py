"""Routes (envs/payments/routes.py) and HTLC payments (htlc.py) on hand-made graphs."""

from __future__ import annotations

import numpy as np
import pytest

from channelmarket.envs.payments import reasons as R
from channelmarket.envs.payments import routes
from channelmarket.envs.payments.fees import route_amounts
from channelmarket.envs.payments.htlc import pay_routes, pay_routes_loop


def line(n=4, cap=100.0, split=0.5):
    """0 - 1 - 2 - ... - (n-1), channel k joins k and k+1 (u = k)."""
    u = np.arange(n - 1, dtype=np.int32)
    v = u + 1
    capacity = np.full(n - 1, cap)
    return u, v, capacity, capacity * split


def candidates(u, v, capacity, balance_u, sell, buy, hops):
    n = sell.shape[0]
    good = np.zeros(n, dtype=np.int8)
    return routes.routed_candidates(u, v, np.ones(u.shape[0], bool), capacity, balance_u, sell, buy, good, good, hops)


def test_a_buyer_reaches_a_seller_three_hops_away():
    u, v, cap, bal = line(4)
    sell = np.array([0, 0, 0, 1.0])
    buy = np.array([1.0, 0, 0, 0])
    rc = candidates(u, v, cap, bal, sell, buy, 3)
    assert rc.seller.tolist() == [3] and rc.buyer.tolist() == [0]
    assert rc.route.tolist() == [[0, 1, 2]]
    assert rc.width.tolist() == [50.0]
    assert rc.unrouted.tolist() == [0, 0, 0, 0]


def test_hop_limit_and_no_route_are_told_apart():
    u, v, cap, bal = line(4)
    sell = np.array([0, 0, 0, 1.0])
    buy = np.array([1.0, 0, 0, 0])
    rc = candidates(u, v, cap, bal, sell, buy, 2)
    assert rc.seller.shape[0] == 0 and rc.unrouted[0] == R.HOP_LIMIT
    # the buyer's own side empty: no route at any length
    rc = candidates(u, v, cap, np.array([0.0, 50.0, 50.0]), sell, buy, 3)
    assert rc.unrouted[0] == R.NO_ROUTE


def test_the_widest_route_wins_and_direct_neighbours_still_get_a_routed_alternative():
    # 0 -> 3 direct (channel 0), 0 -> 1 -> 3 (channels 1, 2, narrow), 0 -> 2 -> 3 (channels 3, 4, wide)
    u = np.array([0, 0, 1, 0, 2], dtype=np.int32)
    v = np.array([3, 1, 3, 2, 3], dtype=np.int32)
    cap = np.array([100.0, 100, 100, 100, 100])
    bal = np.array([90.0, 10, 10, 60, 70])
    sell = np.array([0, 0, 0, 1.0])
    buy = np.array([1.0, 0, 0, 0])
    rc = candidates(u, v, cap, bal, sell, buy, 3)
    assert rc.route.tolist() == [[3, 4, -1]] and rc.width.tolist() == [60.0]


def test_route_amounts_add_each_forwarders_fee():
    route = np.array([[0, 1, 2]])
    base = np.array([9.0, 1.0, 2.0])
    rate = np.array([9.0, 0.1, 0.01])
    got = route_amounts(np.array([100.0]), route, base, rate)
    hop2 = 100.0
    hop1 = hop2 + 2.0 + 0.01 * hop2
    hop0 = hop1 + 1.0 + 0.1 * hop1
    np.testing.assert_allclose(got, [[hop0, hop1, hop2]])


def pay(route, payer, amount, u, v, cap, bal, base=None, rate=None, max_fee=None, blocked_agent=None,
        blocked_channel=None, which=pay_routes):
    e = u.shape[0]
    n = int(max(u.max(), v.max())) + 1
    kw = dict(route=np.asarray(route, dtype=np.int64), payer=np.asarray(payer, dtype=np.int64),
              amount=np.asarray(amount, dtype=float),
              max_fee=np.full(len(payer), np.inf) if max_fee is None else np.asarray(max_fee, dtype=float),
              u=u, v=v, capacity=cap, balance_u=bal, fee_base=np.zeros(e) if base is None else base,
              fee_rate=np.zeros(e) if rate is None else rate,
              blocked_agent=np.zeros(n, bool) if blocked_agent is None else blocked_agent,
              blocked_channel=np.zeros(e, bool) if blocked_channel is None else blocked_channel, n=n)
    return which(**kw) if which is pay_routes else which(*kw.values())


@pytest.mark.parametrize("which", [pay_routes, pay_routes_loop])
def test_a_routed_payment_moves_every_hop_and_pays_the_intermediaries(which):
    u, v, cap, bal = line(4)
    base, rate = np.array([0.5, 0.2, 0.1]), np.array([0.0, 0.01, 0.02])
    reason, fee, new_bal, flow_in_u, earned = pay([[0, 1, 2]], [0], [20.0], u, v, cap, bal, base, rate, which=which)
    hop2 = 20.0
    hop1 = hop2 + 0.1 + 0.02 * hop2
    hop0 = hop1 + 0.2 + 0.01 * hop1
    assert reason.tolist() == [R.OK]
    np.testing.assert_allclose(new_bal, [50 - hop0, 50 - hop1, 50 - hop2])
    np.testing.assert_allclose(earned, [0.0, hop0 - hop1, hop1 - hop2, 0.0])
    np.testing.assert_allclose(fee, [hop0 - 20.0])
    np.testing.assert_allclose(flow_in_u, -np.array([hop0, hop1, hop2]))


def test_a_payment_is_all_or_nothing_and_releases_its_holds():
    u, v, cap, _ = line(4)
    bal = np.array([50.0, 50.0, 5.0])          # the last hop cannot carry 20
    reason, fee, new_bal, flow, earned = pay([[0, 1, 2]], [0], [20.0], u, v, cap, bal)
    assert reason.tolist() == [R.INSUFFICIENT_BALANCE]
    assert new_bal.tolist() == bal.tolist() and not flow.any() and not earned.any() and fee[0] == 0.0


def test_earlier_payments_take_the_liquidity_later_ones_need():
    u, v, cap, bal = line(4)
    reason, _, new_bal, _, _ = pay([[0, 1, 2], [1, 2, -1], [2, -1, -1]], [0, 1, 2], [30.0, 15.0, 10.0], u, v, cap, bal)
    assert reason.tolist() == [R.OK, R.OK, R.INSUFFICIENT_BALANCE]
    np.testing.assert_allclose(new_bal, [20.0, 5.0, 5.0])


def test_fee_limit_and_faults_stop_a_payment_before_any_hold():
    u, v, cap, bal = line(4)
    base = np.array([0.0, 1.0, 1.0])
    reason, *_ = pay([[0, 1, 2]], [0], [10.0], u, v, cap, bal, base=base, max_fee=[1.5])
    assert reason.tolist() == [R.FEE_LIMIT]
    blocked = np.zeros(4, bool)
    blocked[2] = True
    reason, _, new_bal, _, _ = pay([[0, 1, 2], [2, -1, -1]], [0, 0], [10.0, 1.0], u, v, cap, bal, blocked_agent=blocked)
    assert reason[0] == R.PEER_FAULT and (new_bal == bal).all()
    reason, *_ = pay([[0, 1, 2]], [0], [10.0], u, v, cap, bal, blocked_channel=np.array([False, True, False]))
    assert reason.tolist() == [R.PEER_FAULT]
    reason, *_ = pay([[-1, -1, -1]], [0], [10.0], u, v, cap, bal)
    assert reason.tolist() == [R.NO_ROUTE]


def test_a_route_through_a_channel_both_ways_holds_each_side_separately():
    # 0 -> 1 -> 0 -> ... a cycle back over the same channel: the held amount is not the receiver's yet
    u = np.array([0, 1], dtype=np.int32)
    v = np.array([1, 0], dtype=np.int32)
    cap = np.array([10.0, 10.0])
    bal = np.array([10.0, 0.0])    # 0 holds channel 0 fully; 1 has nothing on channel 1
    reason, _, new_bal, _, _ = pay([[0, 1]], [0], [5.0], u, v, cap, bal)
    assert reason.tolist() == [R.INSUFFICIENT_BALANCE] and new_bal.tolist() == [10.0, 0.0]


# ---- the compiled search against the NumPy levels on random sparse graphs -------------------------

from hypothesis import given, settings, strategies as st  # noqa: E402

from channelmarket.envs import compiled  # noqa: E402


@pytest.mark.skipif(not compiled.USE_NUMBA, reason="numba off: only the twin runs")
@settings(max_examples=80, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 4))
def test_the_compiled_search_finds_the_numpy_routes_widths_and_reasons(seed, hops):
    """Sparse random graphs (buyers stuck behind empty sides, hop limits, parallel channels, tied
    widths, payee buyers' neighbours): routes, ends, widths and reasons equal the level-by-level
    NumPy search bit for bit, for the single search and the candidates of two goods."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 25))
    e = int(rng.integers(1, 3 * n))
    u = rng.integers(0, n, e)
    v = (u + rng.integers(1, n, e)) % n
    u, v = (u.astype(np.int32), v.astype(np.int32)) if seed % 2 else (u, v)
    capacity = rng.choice([10.0, 50.0, 100.0], e)
    balance_u = capacity * rng.choice([0.0, 0.3, 0.5, 1.0], e)
    usable = rng.random(e) < 0.85
    payee = rng.random(n) < rng.uniform(0.05, 0.5)
    buyers = np.flatnonzero(~payee & (rng.random(n) < 0.7))
    kw = dict(u=u, v=v, capacity=capacity, balance_u=balance_u, usable=usable, payee=payee, buyers=buyers,
              max_hops=hops)
    got, want = routes.search.run("compiled", **kw), routes.search.run("twin", **kw)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
    if routes._search_multi_nb is not None and hops >= 2:   # channels in chunks side by side: the same routes
        for chunks in (2, 3):
            for a, b in zip(routes._search_multi_nb(u, v, capacity, balance_u, usable, payee,
                                                    buyers.astype(np.int64), hops, chunks), want):
                np.testing.assert_array_equal(a, b)
    if routes.search.parallel is not None:
        for a, b in zip(routes.search.run("parallel", **kw), want):
            np.testing.assert_array_equal(a, b)
    good = rng.integers(0, 2, n).astype(np.int8)
    ckw = dict(u=u, v=v, usable=usable, capacity=capacity, balance_u=balance_u,
               sell_qty=np.where(payee, 1.0, 0.0), buy_qty=np.where(rng.random(n) < 0.7, 1.0, 0.0),
               sells_good=good, buys_good=np.where(rng.random(n) < 0.8, good, -1).astype(np.int8), max_hops=hops)
    for a, b in zip(routes.candidates.run("compiled", **ckw), routes.candidates.run("twin", **ckw)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(not compiled.USE_NUMBA, reason="numba off: only the twin runs")
@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 4))
def test_the_one_call_routed_clearing_equals_its_composed_twin(seed, hops):
    """`bilateral.clear_routed` (agreements, route search and rationing in one compiled call) on sparse
    random graphs of one or two goods, some channels closed or not usable, stuck buyers and fee
    limits: the twin's trades, bit for bit."""
    from channelmarket.envs.mechanisms import bilateral

    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 30))
    e = int(rng.integers(1, 3 * n))
    u = rng.integers(0, n, e)
    v = (u + rng.integers(1, n, e)) % n
    capacity = rng.choice([10.0, 50.0, 100.0], e)
    balance_u = capacity * rng.choice([0.0, 0.3, 0.5, 1.0], e)
    is_open = rng.random(e) < 0.9
    usable = is_open & (rng.random(e) < (0.85 if seed % 2 else 1.0))
    goods = int(rng.integers(1, 3))
    sells = rng.random(n) < 0.4
    kw = dict(u=u, v=v, is_open=is_open, usable=usable, sell_qty=np.where(sells, rng.uniform(0, 3, n), 0.0),
              buy_qty=np.where(~sells & (rng.random(n) < 0.8), rng.uniform(0, 3, n), 0.0),
              sells_good=np.where(sells, rng.integers(0, goods, n), -1).astype(np.int8),
              buys_good=np.where(~sells, rng.integers(0, goods, n), -1).astype(np.int8),
              ask=rng.uniform(40, 90, n), bid=rng.uniform(30, 80, n), reserve=rng.uniform(20, 50, n),
              limit=rng.uniform(60, 120, n), concession=rng.uniform(0, 1, n), rounds=int(rng.integers(1, 6)),
              balance_u=balance_u, capacity=capacity, fee_base=rng.uniform(0, 1, e) * (rng.random(e) < 0.5),
              fee_rate=rng.uniform(0, 0.05, e), max_fee_share=0.05, max_hops=hops, n=n)
    got, want = bilateral.clear_routed.run("compiled", **kw), bilateral.clear_routed.run("twin", **kw)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(not compiled.USE_NUMBA, reason="numba off: only the twin runs")
def test_the_packing_leaves_out_channels_no_pass_can_use():
    """Channels between two payees, or whose non-payee ends have empty sides, never raise a width after
    level 1: packed for one set of payees they are left out (and kept with drop=False); level 1 is
    the same either way."""
    u = np.array([0, 0, 1, 2, 3])
    v = np.array([1, 2, 3, 3, 4])
    capacity = np.full(5, 10.0)
    balance_u = np.array([5.0, 0.0, 10.0, 5.0, 5.0])   # channel 1: 0 -> 2 empty; channel 2: 3 -> 1 empty
    payee = np.array([True, True, False, False, False])
    out = []
    for drop in (True, False):
        pu, pv, pch = (np.empty(5, np.int32) for _ in range(3))
        pbu, pbv, best = np.empty(5), np.empty(5), np.empty(5)
        via, nxt = np.empty(5, np.int64), np.empty(5, np.int32)
        m = routes._pack_range_nb(u, v, capacity, balance_u, np.ones(5, bool), payee, 0, 5, pu, pv, pbu, pbv, pch,
                                  best, via, nxt, drop)
        out.append((pch[:m].tolist(), best.tolist(), via.tolist()))
    assert out[0][0] == [1, 3, 4]   # 0-1: two payees; 1-3: payee 1 and 3's side empty
    assert out[1][0] == [0, 1, 2, 3, 4]
    assert out[0][1:] == out[1][1:]

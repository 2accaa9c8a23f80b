"""The clearing and payment kernels split into chunks (their multi-threaded builds): the same
agreements, payments and routes, bit for bit, at any number of chunks or threads."""

from __future__ import annotations

import numpy as np
import pytest

from channelmarket.envs import compiled
from channelmarket.envs.core import MarketCore
from channelmarket.envs.mechanisms import bilateral
from channelmarket.envs.mechanisms.base import routed_pairs
from channelmarket.envs.offers import decode
from channelmarket.envs.payments import layer, routes
from channelmarket.envs.scenario import PAYMENTS_SOUND_MARKET, PRESETS
from channelmarket.envs.step import current_tradable

pytestmark = pytest.mark.skipif(not compiled.USE_NUMBA, reason="numba off: only the twins run")
ROUTING = {k: PAYMENTS_SOUND_MARKET[k] for k in ("max_hops", "routing_fee_base", "routing_fee_rate", "max_fee_share")}


def same(a, b):
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


@pytest.fixture(scope="module")
def market():
    """A routed 1,500-agent market after a few steps (balances uneven), and the step's offers."""
    sc = PRESETS["energy_10k"].with_agents(1500).replace(episode_steps=20, start_hour=9.0, **ROUTING)
    core = MarketCore(sc)
    core.reset(5)
    rng = np.random.default_rng(5)
    for _ in range(4):
        core.step(rng.uniform(-1, 1, (core.n_agents, 4)))
    sc, ag, st = core.scenario, core.agents, core.state
    sellable, needed = current_tradable(sc, ag, st)
    off = decode(sc, ag, rng.uniform(-1, 1, (core.n_agents, 4)), st.ref_price, sellable, needed, st.active)
    return sc, ag, st, off


def test_agreements_rationing_and_payments_in_chunks_are_the_serial_ones(market):
    sc, ag, st, off = market
    agree = (st.u, st.v, st.open, off.sell_qty, off.buy_qty, ag.sells_good, ag.buys_good, off.ask, off.bid, ag.reserve,
             ag.limit, off.concession, sc.negotiation_rounds)
    want = bilateral._agreements_nb(*agree, 1)   # (then the ask and bid tables)
    assert want[0].shape[0] > 1000
    for chunks in (2, 3, 8):
        same(bilateral._agreements_nb(*agree, chunks), want)
    channel, seller, buyer, price, _, _, _ = want
    rc = routed_pairs(sc, ag, st, off)
    assert rc.seller.shape[0] > 100
    ration = (channel, seller, buyer, price, rc.seller, rc.buyer, rc.route, rc.width, off.ask, off.bid, ag.reserve,
              ag.limit, off.concession, sc.negotiation_rounds, off.sell_qty, off.buy_qty, ag.sells_good, st.u,
              st.balance_u, st.capacity, st.fee_base, st.fee_rate, sc.max_fee_share, ag.n)
    rationed = bilateral._ration_routed_nb(*ration)
    ch, s, b, p, q, cut, route, good = rationed
    np.testing.assert_array_equal(good, ag.sells_good[s])
    assert (ch == -2).sum() > 50
    rng = np.random.default_rng(0)
    for faults in (False, True):
        pay = (ch, s, b, q, p, cut, route, rng.choice(np.array([0, 1, 2], np.int8), ag.n), st.u, st.v, st.capacity, st.balance_u, st.fee_base, st.fee_rate,
               rng.random(ag.n) < 0.02 * faults, rng.random(st.u.shape[0]) < 0.02 * faults, faults, ag.n, 1e-9,
               sc.max_fee_share, sc.max_hops)
        paid = layer._trade_payments_nb(*pay, 1)
        for chunks in (2, 3, 8):
            same(layer._trade_payments_nb(*pay, chunks), paid)
        if layer._trade_payments_par is not None:
            same(layer._trade_payments_par(*pay, compiled.THREADS), paid)
    if bilateral._agreements_par is not None:
        same(bilateral._agreements_par(*agree, compiled.THREADS), want)


def test_routed_candidates_in_chunks_are_the_serial_ones(market):
    sc, ag, st, off = market
    args = (st.u, st.v, st.open, st.capacity, st.balance_u, off.sell_qty, off.buy_qty, ag.sells_good, ag.buys_good)
    for hops in (2, 3):
        want = routes._candidates_nb(*args, hops, 1)
        if hops == 3:
            same(want, routes.candidates.run("twin", u=st.u, v=st.v, usable=st.open, capacity=st.capacity,
                                             balance_u=st.balance_u, sell_qty=off.sell_qty, buy_qty=off.buy_qty,
                                             sells_good=ag.sells_good, buys_good=ag.buys_good, max_hops=hops))
        if routes._candidates_par is not None:
            same(routes._candidates_par(*args, hops, compiled.THREADS), want)


_NESTED = r"""
import numpy as np
from channelmarket.envs import compiled
from channelmarket.envs.mechanisms import bilateral
from channelmarket.envs.payments import layer, routes
from channelmarket.envs.core import MarketCore
from channelmarket.envs.scenario import PAYMENTS_SOUND_MARKET
from channelmarket.envs.step import current_tradable
from channelmarket.envs.offers import decode
assert compiled.THREADS == 2
core = MarketCore("energy_default", episode_steps=8, start_hour=9.0, **PAYMENTS_SOUND_MARKET)
core.reset(1)
sc, ag, st = core.scenario, core.agents, core.state
sellable, needed = current_tradable(sc, ag, st)
off = decode(sc, ag, np.random.default_rng(1).uniform(-1, 1, (core.n_agents, 4)), st.ref_price, sellable, needed,
             st.active)
kw = dict(u=st.u, v=st.v, is_open=st.open, usable=st.open, sell_qty=off.sell_qty, buy_qty=off.buy_qty,
          sells_good=ag.sells_good, buys_good=ag.buys_good, ask=off.ask, bid=off.bid, reserve=ag.reserve,
          limit=ag.limit, concession=off.concession, rounds=sc.negotiation_rounds, balance_u=st.balance_u,
          capacity=st.capacity, fee_base=st.fee_base, fee_rate=st.fee_rate, max_fee_share=sc.max_fee_share,
          max_hops=int(sc.max_hops), n=ag.n)
pay = dict(kw, blocked_agent=np.zeros(ag.n, bool), blocked_channel=np.zeros(st.u.shape[0], bool), faults=False,
           round_off=1e-9)
want = bilateral.clear_routed.run("compiled", **kw), bilateral.clear_pay_routed.run("compiled", **pay)
for k in (bilateral.agreements, routes.candidates, layer.trade_payments, bilateral.clear_routed,
          bilateral.clear_pay_routed):
    k.min_items = 1   # every build multi-threaded, the outer ones calling the inner ones
got = bilateral.clear_routed(**kw), bilateral.clear_pay_routed(**pay)
for w, g in zip(want, got):
    assert len(w) == len(g)
    for x, y in zip(w, g):
        assert np.array_equal(x, y)
print("ok")
"""


def test_multi_threaded_routed_clearing_calls_its_inner_multi_threaded_kernels_without_waiting_for_itself():
    """Regression: `bilateral_routed_clear`'s multi-threaded build (run holding the lock of the
    multi-threaded builds) called its inner kernels through their locking entry, so from 100,000
    channel slots with two threads it waited for itself forever. Every build multi-threaded here, in a
    subprocess with two threads and a time limit: the same results as the serial builds."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, CHANNELMARKET_THREADS="2")
    try:
        res = subprocess.run([sys.executable, "-c", _NESTED], env=env, capture_output=True, text=True, timeout=240)
    except subprocess.TimeoutExpired:
        pytest.fail("the multi-threaded routed clearing waited for its own lock")
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stderr[-2000:]

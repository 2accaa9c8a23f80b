"""The MASER risk-factor negotiator: each rule in isolation on hand-made states, the mapping
onto the env's action, per-channel state across reopened channels, and population behaviour."""

from __future__ import annotations

import numpy as np
import pytest

from channelmarket.envs import MarketCore
from channelmarket.envs.offers import ASK, BID, CONCESSION, QUANTITY
from channelmarket.policies import RiskFactor, RiskParams, run_episode
from channelmarket.policies.risk_factor import (ACCEPT, ACCEPTED, BARGAIN, CANNOT_AFFORD, FIRST, NOT_INTERESTING,
                                                REJECTED, WAIT, acceptance_threshold, advertise, buys, decay_points,
                                                first_contact_price, margin_share, pressured_price,
                                                preferential_discount, purchase_decision, regular_share,
                                                repeat_price)
from channelmarket.policies.simple import opening_ask, opening_bid

P = RiskParams()


# ---- offer price ------------------------------------------------------------------------------

def test_first_contact_price_covers_cost_and_margin_grows_with_r():
    r = np.linspace(0, 1, 11)
    floor = np.full(11, 5.0)
    price = first_contact_price(floor, 150.0, r, np.zeros(11), P)
    assert (price > floor).all() and (price <= 150.0).all()
    assert (np.diff(price) > 0).all()
    np.testing.assert_allclose(price, 5.0 + (P.margin_base + P.margin_risk * r) * 145.0)
    # a storage floor above the reserve (the cost of its stored energy) lifts the price one for one in the room
    assert first_contact_price(np.array([60.0]), 150.0, np.array([0.3]), np.zeros(1), P)[0] > 60.0


def test_regular_customers_get_preferential_rates_from_low_r_agents_only():
    reg = regular_share(np.array([0.0, P.points_half, 1e9]), P)
    np.testing.assert_allclose(reg, [0.0, 0.5, 1.0], atol=1e-6)
    r = np.array([0.0, 0.2, 0.49, 0.5, 0.8])
    new = margin_share(r, np.zeros(5), P)
    regular = margin_share(r, np.full(5, 0.9), P)
    assert (regular[:3] < new[:3]).all()                # low r: a discount
    np.testing.assert_array_equal(regular[3:], new[3:])  # high r: none
    d = preferential_discount(r, P)
    assert d[0] == P.regular_discount and (np.diff(d[:4]) < 0).all() and (d[3:] == 0).all()


def test_repeated_contact_moves_with_outcome_risk_and_pressure():
    last = np.full(3, 80.0)
    floor, first = np.full(3, 5.0), np.full(3, 80.0)   # no pull toward the first-contact price
    outcome = np.array([ACCEPTED, 0, REJECTED])
    r = np.full(3, 0.5)
    p = repeat_price(last, first, outcome, r, np.zeros(3), floor, 150.0, P)
    assert p[0] > p[1] == 80.0 > p[2]
    # after an accept, a risk-taker raises more than a restrained agent; under full pressure nobody raises
    acc = np.array([ACCEPTED, ACCEPTED])
    up = repeat_price(last[:2], first[:2], acc, np.array([0.9, 0.1]), np.zeros(2), floor[:2], 150.0, P)
    assert up[0] > up[1] > 80.0
    assert repeat_price(last[:1], first[:1], acc[:1], np.array([0.9]), np.ones(1), floor[:1], 150.0, P)[0] == 80.0
    # after a reject, a restrained agent cuts more, and pressure cuts more still
    rej = np.array([REJECTED, REJECTED])
    down = repeat_price(last[:2], first[:2], rej, np.array([0.9, 0.1]), np.zeros(2), floor[:2], 150.0, P)
    assert down[1] < down[0] < 80.0
    pressed = repeat_price(last[:1], first[:1], rej[:1], np.array([0.9]), np.ones(1), floor[:1], 150.0, P)
    assert pressed[0] < down[0]
    # the current first-contact price pulls the repeated price ("greater or lower than before")
    pulled = repeat_price(np.array([80.0, 80.0]), np.array([100.0, 60.0]), np.zeros(2), np.full(2, 0.5),
                          np.zeros(2), floor[:2], 150.0, P)
    np.testing.assert_allclose(pulled, [80 + P.reversion * 20, 80 - P.reversion * 20])
    # never under the floor, never over the ceiling
    lowest = repeat_price(np.array([6.0]), np.array([6.0]), np.array([REJECTED]), np.zeros(1), np.ones(1),
                          np.array([5.0]), 150.0, P)
    assert lowest[0] == 5.0


def test_stock_pressure_cuts_the_margin_not_below_cost():
    floor = np.full(3, 10.0)
    p = pressured_price(np.full(3, 90.0), floor, np.array([0.0, 0.5, 1.0]), P)
    assert p[0] == 90.0 and p[0] > p[1] > p[2] >= 10.0
    np.testing.assert_allclose(p[2], 10.0 + 80.0 * (1 - P.pressure_weight))


# ---- purchase decision --------------------------------------------------------------------------

def decide(interesting=True, afford=True, first=False, price=80.0, last=70.0, r=0.2, pressure=0.0):
    a = lambda x: np.atleast_1d(np.asarray(x))  # noqa: E731
    return purchase_decision(a(interesting), a(afford), a(first), a(price), a(float(last)), a(r), a(pressure), P)[0]


def test_purchase_decision_follows_the_if_chain_in_order():
    assert decide(interesting=False, afford=False, first=True, price=1.0) == NOT_INTERESTING
    assert decide(afford=False, first=True, price=1.0) == CANNOT_AFFORD
    assert decide(first=True, price=149.0, r=0.99) == FIRST
    assert decide(price=70.0, last=70.0, r=0.99) == BARGAIN           # not higher than last paid
    assert decide(price=60.0, last=70.0, r=0.99) == BARGAIN
    assert decide(price=80.0, last=70.0, r=0.99) == WAIT              # risk-taker refuses and waits
    assert decide(price=80.0, last=70.0, r=0.1) == ACCEPT             # restrained accepts
    assert buys(np.array([NOT_INTERESTING, CANNOT_AFFORD, FIRST, BARGAIN, WAIT, ACCEPT])).tolist() == \
        [False, False, True, True, False, True]


def test_stock_pressure_moves_the_risk_threshold():
    r = P.accept_r + 0.5 * P.accept_pressure   # a moderate risk-taker
    assert decide(price=80.0, last=70.0, r=r, pressure=0.0) == WAIT
    assert decide(price=80.0, last=70.0, r=r, pressure=1.0) == ACCEPT


def test_acceptance_threshold_is_the_decision_chain_for_every_price():
    rng = np.random.default_rng(0)
    k = 2000
    first = rng.random(k) < 0.2
    last = np.where(rng.random(k) < 0.1, np.nan, rng.uniform(30, 140, k))
    r, pressure = rng.random(k), rng.random(k)
    limit = np.full(k, 150.0)
    thr = acceptance_threshold(first, last, r, pressure, limit, P)
    price = rng.uniform(0, 150, k)
    code = purchase_decision(np.ones(k, bool), np.ones(k, bool), first, price, last, r, pressure, P)
    np.testing.assert_array_equal(buys(code), price <= thr)


# ---- regular-customer points and advertising ----------------------------------------------------

def test_points_decay_on_idle_steps_by_value_gap_and_risk():
    pts = np.full(5, 100.0)
    n = np.array([4, 4, 4, 4, 4])
    value = np.full(5, 200.0)                       # average transaction 50 EUR
    t_first = np.array([0, 0, 0, 0, 0])
    t_last = np.array([3, 3, 12, 3, 3])             # average gap 1, 1, 4, 1, 1 steps
    r = np.array([0.1, 0.9, 0.1, 0.1, 0.1])
    idle = np.array([True, True, True, False, True])
    out = decay_points(pts, n, value, t_first, t_last, r, idle, P)
    assert out[3] == 100.0                          # traded this step: no decay
    assert out[1] < out[0] < 100.0                  # risk-takers forget faster
    assert out[0] < out[2] < 100.0                  # rare partners are forgotten more slowly
    np.testing.assert_allclose(100 - out[0], P.points_decay * 50 * 0.6)
    assert decay_points(np.array([1.0]), np.array([1]), np.array([1e6]), np.zeros(1), np.zeros(1), np.ones(1),
                        np.ones(1, bool), P)[0] == 0.0


def test_advertising_resends_to_known_partners_with_the_factor():
    rng = np.random.default_rng(0)
    k = 20000
    offered = rng.random(k) < 0.5
    eligible = rng.random(k) < 0.9
    draws = rng.random(k)
    sent = advertise(offered, eligible, draws, 0.3)
    assert not sent[~eligible].any()
    assert sent[eligible & ~offered].all()                        # new partners always get an offer
    assert abs(sent[eligible & offered].mean() - 0.3) < 0.02      # known ones with probability 0.3
    assert not advertise(offered, eligible, draws, 0.0)[offered].any()
    assert advertise(offered, eligible, draws, 1.0)[eligible].all()


# ---- the policy on a market ----------------------------------------------------------------------

def bound(r=None, scenario="energy_small", seed=0, **kw):
    core = MarketCore(scenario)
    obs = core.reset(seed)
    pol = RiskFactor(r=r, **kw)
    pol.bind(core, np.arange(core.n_agents), seed=seed)
    return core, pol, obs


def test_ask_ladder_runs_from_the_dearest_to_the_cheapest_offer_sent():
    core, pol, obs = bound(scenario="energy_default", advertising=1.0)
    # make two agents' partners differ: a regular customer on some of their channels
    pol.r_all[:] = 0.1
    pol.r[:] = 0.1
    pol.points[:] = np.where(np.arange(pol.points.shape[0])[:, None] % 2 == 0, 1e4, 0.0)
    act = pol.act(obs)
    ag = core.agents
    sent = pol.sent
    actor = np.stack([core.state.u, core.state.v], axis=1)
    idx = np.arange(core.n_agents)
    a_open = opening_ask(core, idx, act[:, ASK])
    c = 0.5 * (act[:, CONCESSION] + 1)
    ask_k = a_open - c * (a_open - ag.reserve)
    checked = 0
    for i in np.flatnonzero(ag.is_generator):
        mine = sent & (actor == i)
        prices = pol.offer_price[mine]
        regular = (pol.points[mine] > 0) if pol.points.shape == mine.shape else None
        if prices.size < 2 or (regular is not None and (regular.all() or not regular.any())):
            continue                                              # needs both a regular and a new customer
        hi, lo = prices.max(), prices.min()
        assert hi > lo                                            # regular customers are offered less
        if hi <= a_open[i] + 1e-9:                                # the window reaches the dearest offer
            assert a_open[i] == pytest.approx(hi)
        assert ask_k[i] == pytest.approx(min(lo, a_open[i]))       # round K reaches the cheapest offer
        checked += 1
    assert checked >= 5


def test_advertising_share_becomes_the_offered_quantity():
    core, pol, obs = bound(scenario="energy_default", advertising=0.0)
    pol.act(obs)                                  # first step: every partner is new
    st = core.state
    buys = core.agents.buys_good >= 0
    u, v = st.u[st.open], st.v[st.open]
    has_partner = np.bincount(np.concatenate([u[buys[v]], v[buys[u]]]), minlength=core.n_agents) > 0
    gen = np.flatnonzero(core.agents.is_generator & (st.generation > 0) & has_partner)
    assert gen.size > 5                           # wind blows at midnight
    act = pol.act(obs)                            # second step: nobody new, factor 0 -> no offers
    np.testing.assert_array_equal(act[gen, QUANTITY], -1.0)
    pol.offered[:] = False                        # partners forgotten -> everyone offered again
    act = pol.act(obs)
    np.testing.assert_array_equal(act[gen, QUANTITY], 1.0)


def test_buyer_bid_climbs_to_its_acceptance_threshold():
    core, pol, obs = bound(scenario="energy_default")
    ag = core.agents
    cons = np.flatnonzero(ag.is_consumer)
    pol.has_bought[cons] = True
    pol.last_paid[cons] = 55.0
    pol.r[cons] = np.where(np.arange(cons.size) % 2 == 0, 0.05, 0.95)   # restrained / risk-taker
    pol.r_all[cons] = pol.r[cons]
    act = pol.act(obs)
    b_open = opening_bid(core, cons, act[cons, BID])
    c = 0.5 * (act[cons, CONCESSION] + 1)
    bid_k = b_open + c * (ag.limit[cons] - b_open)
    thr = np.where(pol.r[cons] < 0.5, ag.limit[cons], 55.0)
    solvent = act[cons, QUANTITY] > -1
    assert solvent.sum() > 10
    np.testing.assert_allclose(bid_k[solvent], thr[solvent], rtol=1e-9)
    assert (b_open <= thr + 1e-9).all()


def test_trades_update_points_outcomes_and_last_paid():
    core, pol, obs = bound(scenario="energy_default", seed=1)
    for _ in range(40):
        obs, *_ = core.step(pol.act(obs))
        pol.update(core)
    res = core.last_result
    assert pol.points.max() > 0 and pol.has_bought.any()
    assert np.isfinite(pol.last_paid[pol.has_bought]).all()
    # every sent offer was marked accepted or rejected
    assert set(np.unique(pol.outcome[pol.sent])) <= {ACCEPTED, REJECTED}
    paid = res.settlement.paid_qty > 0
    ch, s = res.trades.channel[paid], res.trades.seller[paid]
    side = np.where(core.state.u[ch] == s, 0, 1)
    same = (core.state.u[ch] == pol._u[ch])        # slots unchanged by this step's lifecycle
    assert (pol.outcome[ch[same], side[same]] == ACCEPTED).all()


def test_reopened_channels_reset_their_rows():
    core, pol, obs = bound(scenario="energy_default")
    pol.points[:] = 7.0
    pol.list_price[:] = 60.0
    pol.offered[:] = True
    st = core.state
    u = st.u.copy()
    u[3] = (u[3] + 1) % core.n_agents if (u[3] + 1) % core.n_agents != st.v[3] else (u[3] + 2) % core.n_agents
    core.state = st.replace(u=u, topology_version=st.topology_version + 1)
    pol._sync_topology()
    assert (pol.points[3] == 0).all() and np.isnan(pol.list_price[3]).all() and not pol.offered[3].any()
    keep = np.arange(pol.points.shape[0]) != 3
    assert (pol.points[keep] == 7.0).all() and (pol.list_price[keep] == 60.0).all()
    # an unchanged version means no work and no reset
    pol.points[3] = 1.0
    pol._sync_topology()
    assert (pol.points[3] == 1.0).all()


def test_risk_factors_are_drawn_from_the_range_and_reproducible():
    core, pol, _ = bound(r_range=(0.2, 0.4))
    assert ((pol.r >= 0.2) & (pol.r <= 0.4)).all() and pol.r.std() > 0
    _, pol2, _ = bound(r_range=(0.2, 0.4))
    np.testing.assert_array_equal(pol.r, pol2.r)
    with pytest.raises(ValueError, match="r_range"):
        RiskParams(r_range=(0.5, 0.2))
    with pytest.raises(ValueError, match="advertising"):
        RiskParams(advertising=1.5)


# ---- population behaviour ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def population():
    """One default-scenario episode of an all risk-factor market, with per-step records."""
    core = MarketCore("energy_default")
    pol = RiskFactor()
    n = core.n_agents
    rec = {"margin_sum": np.zeros(n), "margin_n": np.zeros(n), "buy_steps": np.zeros(n)}

    def on_step(c, prev):
        off = c.last_result.offers
        selling = off.sell_qty > 0
        m = (off.ask - c.agents.reserve) / (c.scenario.retail_tariff - c.agents.reserve)
        rec["margin_sum"][selling] += m[selling]
        rec["margin_n"][selling] += 1
        rec["buy_steps"] += c.last_result.settlement.breakdown[:, 4] > 0

    res = run_episode(core, pol, seed=0, callback=on_step)
    return core, pol, res, rec


def test_mean_margin_rises_with_r(population):
    core, pol, res, rec = population
    sel = rec["margin_n"] > 0
    r = pol.r_all
    margin = rec["margin_sum"][sel] / rec["margin_n"][sel]
    assert np.corrcoef(r[sel], margin)[0, 1] > 0.5
    # the realized sale prices follow: risk-takers sell dearer
    gen = core.agents.is_generator & (res.totals["sold"] > 0.2)
    vwap = res.totals["p2p_received"][gen] / res.totals["sold"][gen]
    assert np.corrcoef(r[gen], vwap)[0, 1] > 0.5


def test_restrained_buyers_trade_more_often(population):
    core, pol, res, rec = population
    cons = core.agents.is_consumer
    r = pol.r_all[cons]
    steps = rec["buy_steps"][cons]
    assert steps[r < np.median(r)].mean() > 1.2 * steps[r >= np.median(r)].mean()


def test_regular_customer_discounts_appear_only_for_low_r(population):
    core, pol, res, rec = population
    actor = np.stack([core.state.u, core.state.v], axis=1)
    r = pol.r_all[actor]
    regular = pol.points > 0
    low, high = regular & (r < P.regular_r_max), regular & (r >= P.regular_r_max)
    assert low.sum() >= 10 and high.sum() >= 10          # both kinds of sellers have regular customers
    disc = margin_share(r, 0.0, P) - margin_share(r, regular_share(pol.points, P), P)
    assert (disc[low] > 0).all() and (disc[high] == 0).all()

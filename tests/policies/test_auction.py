"""The ε-auction in the market: the core's `eps_auction` clearing and the auction baseline policy."""

from __future__ import annotations

import numpy as np

from channelmarket.envs.offers import MIN_QUANTITY, price_span
import pytest
from scipy.optimize import linear_sum_assignment

from channelmarket.envs import MarketCore
from channelmarket.envs.mechanisms.eps_auction import cap_by_balance, lot_size, lot_split, match_lots
from channelmarket.envs.step import market_step
from channelmarket.policies import EpsAuctionBaseline, Truthful, ZeroIntelligence, run_episode


# ---- building blocks -------------------------------------------------------------------------

def test_lots_have_one_common_size_and_the_last_lot_holds_the_remainder():
    qty = np.array([0.0, 1.0, 2.0, 0.1, 40.0, 0.5])
    q0 = lot_size(qty, np.array([0.3, 0.0]), lots_per_agent=2)
    assert q0 == pytest.approx(np.median([1.0, 2.0, 0.1, 40.0, 0.5, 0.3]) / 2)
    start, count, size = lot_split(qty, q0=0.25, max_lots=32)
    owner = np.repeat(np.arange(qty.size), count)
    np.testing.assert_allclose(np.bincount(owner, size, qty.size), qty)
    np.testing.assert_array_equal(count, [0, 4, 8, 1, 32, 2])
    np.testing.assert_allclose(size[owner == 1], 0.25)
    np.testing.assert_allclose(size[owner == 3], 0.1)          # smaller than a lot: one partial lot
    np.testing.assert_allclose(size[owner == 4], 40.0 / 32)    # capped: equal bigger lots
    np.testing.assert_array_equal(start, np.concatenate([[0], np.cumsum(count)[:-1]]))


def test_match_lots_finds_the_best_assignment_of_lots():
    # 3 sellers, 3 buyers, one lot each (equal quantities): the classic assignment problem
    rng = np.random.default_rng(1)
    for _ in range(20):
        seller = np.repeat([0, 1, 2], 3)
        buyer = np.tile([3, 4, 5], 3)
        surplus = rng.integers(1, 50, 9).astype(float)
        surplus[rng.random(9) < 0.3] = 0.0              # infeasible pairs
        qty = np.ones(6)
        m = match_lots(seller, buyer, surplus, qty, qty, 1e-4, lots_per_agent=1)
        got = (surplus[m.pair] * m.qty).sum()
        mat = np.zeros((3, 3))
        mat[seller, buyer - 3] = surplus
        r, c = linear_sum_assignment(-mat)
        assert got == pytest.approx(mat[r, c].sum(), abs=1e-3)
        assert len(set(seller[m.pair])) == m.pair.size == len(set(buyer[m.pair]))


def test_cap_by_balance_pays_the_best_lots_first():
    channel = np.array([0, 0, 0, 1])
    qty = np.ones(4)
    price = np.array([10.0, 10.0, 10.0, 5.0])
    benefit = np.array([1.0, 3.0, 2.0, 1.0])
    balance = np.array([25.0, 25.0, 25.0, 100.0])
    out = cap_by_balance(channel, qty, price, benefit, balance)
    np.testing.assert_allclose(out, [0.5, 1.0, 1.0, 1.0])   # 25 EUR: the two best lots, half the third


# ---- the core's eps_auction clearing ----------------------------------------------------------

def test_eps_auction_clearing_runs_in_the_core_and_conserves_money():
    core = MarketCore("energy_default", mechanism="eps_auction")
    obs = core.reset(0)
    pol = ZeroIntelligence()
    pol.bind(core, np.arange(core.n_agents), seed=0)
    m0 = core.money_total()
    traded = 0
    for _ in range(48):
        prev = core.state
        obs, *_ = core.step(pol.act(obs))
        res = core.last_result
        tr, off, st = res.trades, res.offers, res.settlement
        assert core.money_total() == pytest.approx(m0, abs=1e-6)
        if tr.qty.size == 0:
            continue
        traded += tr.qty.size
        # over open channels joining the two, at bid >= ask, price between them
        assert prev.open[tr.channel].all()
        ends = np.sort(np.stack([prev.u[tr.channel], prev.v[tr.channel]], 1), 1)
        np.testing.assert_array_equal(ends, np.sort(np.stack([tr.seller, tr.buyer], 1), 1))
        assert (off.bid[tr.buyer] >= off.ask[tr.seller]).all()
        np.testing.assert_allclose(tr.price, 0.5 * (off.ask[tr.seller] + off.bid[tr.buyer]))
        # nobody trades more than it offered; every payment fits the channel
        n = core.n_agents
        assert (np.bincount(tr.seller, tr.qty, n) <= off.sell_qty + 1e-9).all()
        assert (np.bincount(tr.buyer, tr.qty, n) <= off.buy_qty + 1e-9).all()
        assert not st.failed.any() and not st.partial.any()
    assert traded > 50


def test_eps_auction_welfare_is_close_to_the_bilateral_one_on_average():
    """Same states, same offers, both mechanisms: the auction's step welfare is within 2% of the
    bilateral one on average. (It once led clearly, when bilateral buyers spread their quantities
    over drained channels; now both place quantities within the buyers' channel balances, and the
    auction's lot granularity costs it a little.) Three days: with two, the mean gap of one sample of
    days lies at 2.1% (the channel stream's layout changed with batched markets)."""
    gaps, base = [], []
    for seed in (0, 1, 2):
        core = MarketCore("energy_default")
        obs = core.reset(seed)
        pol = Truthful()
        pol.bind(core, np.arange(core.n_agents))
        for t in range(96):
            acts = core.check_actions(pol.act(obs))
            if t % 6 == 0:
                welfare = {}
                for mech in ("bilateral", "eps_auction"):
                    sc = core.scenario.replace(mechanism=mech)
                    _, res = market_step(sc, core.agents, core.state.copy(), acts)
                    welfare[mech] = res.settlement.breakdown[:, 0].sum()
                gaps.append(welfare["eps_auction"] - welfare["bilateral"])
                base.append(abs(welfare["bilateral"]))
            obs, *_ = core.step(acts)
    gaps = np.array(gaps)
    assert abs(gaps.mean()) <= 0.02 * np.mean(base)
    assert (np.abs(gaps) > 1e-6).any()  # the mechanisms do differ


# ---- the auction baseline policy --------------------------------------------------------------

def test_auction_baseline_acts_out_its_assignment():
    core = MarketCore("energy_default")
    pol = EpsAuctionBaseline()
    rows = []

    def on_step(c, prev):
        res = c.last_result
        off, st = res.offers, res.settlement
        rows.append((pol.matched_buy.sum(), st.paid_qty.sum(),
                     np.abs(off.sell_qty - pol.matched_sell).max(), np.abs(off.buy_qty - pol.matched_buy).max()))

    run_episode(core, pol, seed=2, callback=on_step)
    matched, paid, d_sell, d_buy = np.array(rows).T
    # the offered quantities are exactly the matched ones, for every agent, every step
    assert d_sell.max() < 1e-9 and d_buy.max() < 1e-9
    # the bilateral negotiation realizes the bulk of the matched volume (never more)
    assert (paid <= matched + 1e-9).all()
    assert paid.sum() >= 0.75 * matched.sum() > 0


def test_auction_baseline_matched_pairs_agree_and_unmatched_buyers_stay_out():
    core = MarketCore("energy_default")
    obs = core.reset(3)
    pol = EpsAuctionBaseline()
    pol.bind(core, np.arange(core.n_agents), seed=0)
    for _ in range(40):                     # into the morning: sun, demand and drained channels
        obs, *_ = core.step(pol.act(obs))
    sold, bought, ask, bid, _ = pol.assign()
    acts = pol.act(obs)
    span = price_span(core.scenario)
    lo, hi = core.state.ref_price[0] - span, core.state.ref_price[0] + span   # the opening window
    core.step(acts)
    off = core.last_result.offers
    buyers = bought > 0
    sellers = sold > 0
    assert buyers.sum() > 3 and sellers.sum() > 3
    # opening prices: on every matched pair the buyer's bid covers the seller's ask (round-0 agreement)
    _, s, b, qty, price = pol.pairs
    assert s.size > 3
    assert (off.bid[b] >= off.ask[s]).all()
    in_window = np.clip(price, lo, hi)
    assert (off.ask[s] <= in_window + 1e-9).all() and (off.bid[b] >= in_window - 1e-9).all()
    np.testing.assert_array_equal(off.concession, 0.0)
    cons = core.agents.is_consumer
    assert (off.buy_qty[cons & ~buyers] == 0).all()          # unmatched consumers go to the grid
    # what was matched is offered (dust under MIN_QUANTITY is dropped at decoding)
    want = np.where(bought >= MIN_QUANTITY, bought, 0.0)
    np.testing.assert_allclose(off.buy_qty[cons & buyers], want[cons & buyers], atol=1e-12)
    # the auction prices a lot between the seller's value and the buyer's limit
    assert (bid[buyers] <= core.agents.limit[buyers] + 1e-9).all()
    assert (ask[sellers] >= core.agents.reserve[sellers] + pol.margin - 1e-9).all()

"""Edge inputs of the branch-free kernels (clip_actions, trade_totals, book_agents, pay_trades):
the compiled build is bit for bit its NumPy twin where the branch-free forms could differ
(non-finite actions, interleaved or missing trade keys, non-storage agents with eff 0)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from channelmarket.envs.payments.accounts import credit_numpy
from channelmarket.envs import compiled, kernels
from channelmarket.envs.breakdown import BREAKDOWN_FIELDS
from channelmarket.envs.core import MarketCore

needs_numba = pytest.mark.skipif(not compiled.USE_NUMBA, reason="numba off")


def same(a, b):
    for x, y in zip(a, b):
        x, y = np.asarray(x), np.asarray(y)
        assert x.shape == y.shape
        np.testing.assert_array_equal(x, y)
        assert (np.signbit(x) == np.signbit(y)).all()


def both(name, **kw):
    k = compiled.KERNELS[name]
    with np.errstate(all="ignore"):   # the twins compute both sides of their np.where
        return k.run("compiled", **kw), k.run("twin", **kw)


SPECIAL = [np.inf, -np.inf, np.nan, 1.7976931348623157e308, -1.7976931348623157e308, -0.0, 0.0, 1.0, -1.0, 5e-324]


@needs_numba
@settings(max_examples=40, deadline=None)
@given(hs.integers(1, 40), hs.integers(1, 5), hs.lists(hs.sampled_from(SPECIAL) | hs.floats(-3, 3), min_size=1,
                                                        max_size=200), hs.booleans(), hs.booleans())
def test_clip_actions_equals_its_twin_on_non_finite_and_strided_actions(n, k, vals, strided, share):
    acts = np.resize(np.array(vals, dtype=np.float64), (n, 2 * k if strided else k))
    if strided:
        acts = acts[:, ::2]   # not C-contiguous
    (c_out, c_ok), (t_out, t_ok) = both("clip_actions", actions=acts, share=share)
    assert c_ok == t_ok == bool(np.isfinite(acts).all())
    same([c_out], [t_out])
    same([c_out], [np.clip(acts, -1.0, 1.0)])
    # shared only when asked, C-contiguous and already in range (then clipping changes nothing)
    shared = share and acts.flags.c_contiguous and bool(((acts >= -1.0) & (acts <= 1.0)).all())
    assert (c_out is acts) == (t_out is acts) == shared


def test_the_step_reads_in_range_actions_without_copying_them_and_leaves_them_alone():
    from channelmarket.envs.actions import check_actions

    acts = np.random.default_rng(0).uniform(-1, 1, (6, 4))
    assert check_actions(acts, 6, copy=False) is acts
    assert check_actions(acts, 6) is not acts                  # the public check: a fresh array
    wide = acts * 2.0
    out = check_actions(wide, 6, copy=False)                    # out of range: a clipped copy
    assert out is not wide and np.array_equal(out, np.clip(wide, -1, 1)) and wide.max() > 1.0
    core = MarketCore("energy_default")
    core.reset(seed=0)
    acts = np.random.default_rng(1).uniform(-1, 1, (core.n_agents, 4))
    before = acts.copy()
    core.step(acts)
    assert np.array_equal(acts, before)


@needs_numba
@settings(max_examples=40, deadline=None)
@given(hs.integers(1, 6), hs.lists(hs.tuples(hs.integers(0, 5), hs.floats(0, 10), hs.floats(0, 3)), max_size=60))
def test_trade_totals_equals_its_twin_for_interleaved_keys(mg, trades):
    key = np.array([t[0] % mg for t in trades], dtype=np.int64)
    qty = np.array([t[1] for t in trades], dtype=np.float64)
    price = np.array([t[2] for t in trades], dtype=np.float64)
    previous = np.arange(mg, dtype=np.float64).reshape(1, mg) + 0.5
    c, t = both("trade_totals", key=key, qty=qty, price=price, previous=previous)
    same(c, t)


def _book_kw(rng, n, eff_zero):
    storage = rng.random(n) < 0.4
    eff = np.where(storage, rng.uniform(0.8, 1.0, n), 0.0 if eff_zero else 1.0)
    f = lambda: rng.uniform(0, 5, n)  # noqa: E731
    return dict(storage=storage, generator=rng.random(n) < 0.5, consumer=rng.random(n) < 0.5, eff=eff,
                capacity=f(), grid_limit=f(), marginal_cost=f(), limit=f(), sellable=f(), needed=f(), soc=f(),
                wallet=f(), sold=f(), bought=f(), revenue=f(), cost=f(), n_failed=f().round(),
                n_partial=f().round(), feed_in=0.05, retail=0.3, earned=np.zeros(0))


@needs_numba
@pytest.mark.parametrize("eff_zero", [True, False])
def test_book_agents_equals_its_twin_with_eff_zero_off_storage(eff_zero):
    kw = _book_kw(np.random.default_rng(3), 257, eff_zero)
    c, t = both("book_agents", **kw)
    same([c[0], c[1], c[3]], [t[0], t[1], t[3]])
    assert c[2] == pytest.approx(t[2], rel=1e-12)   # the grid total: NumPy sums pairwise
    assert c[3].shape == (257, len(BREAKDOWN_FIELDS))
    assert not c[3][:, 13:].any()   # the fields book_agents does not fill are zeros


@needs_numba
def test_book_agents_credits_the_fees_earned_as_credit_fees_does():
    rng = np.random.default_rng(4)
    kw = _book_kw(rng, 301, False)
    earned = rng.uniform(0, 2, 301) * (np.arange(301) % 3 > 0)
    earned[5], earned[7] = -0.0, 1e-300   # a signed zero and a denormal: 0.0 + e, profit + e
    for build in ("compiled", "twin"):
        got = kernels.book_agents.run(build, **dict(kw, earned=earned))
        want = kernels.book_agents.run(build, **kw)
        credit_numpy(want[3], earned)
        assert got[3].tobytes() == want[3].tobytes()
        same(got[:2], want[:2])


@needs_numba
@pytest.mark.parametrize("seed", [0, 1])
def test_pay_trades_equals_its_twin_with_exchange_and_short_trades(seed):
    rng = np.random.default_rng(seed)
    n, e, t_n = 30, 40, 300
    u = rng.integers(0, n, e).astype(np.int32)
    v = ((u + 1 + rng.integers(0, n - 1, e)) % n).astype(np.int32)
    capacity = rng.uniform(0, 4, e)
    balance_u = capacity * rng.random(e)
    channel = np.where(rng.random(t_n) < 0.3, -1, rng.integers(0, e, t_n))
    seller = np.where(rng.random(t_n) < 0.5, u[np.maximum(channel, 0)], v[np.maximum(channel, 0)]).astype(np.int64)
    buyer = np.where(seller == u[np.maximum(channel, 0)], v[np.maximum(channel, 0)], u[np.maximum(channel, 0)])
    buyer = buyer.astype(np.int64)
    kw = dict(channel=channel, seller=seller, buyer=buyer, qty=rng.uniform(0, 2, t_n),
              price=np.where(rng.random(t_n) < 0.1, 0.0, rng.uniform(0, 1, t_n)), cut=rng.integers(0, 3, t_n),
              u=u, capacity=capacity, balance_u=balance_u, n=n, round_off=1e-9)
    c, t = both("pay_trades", **kw)
    same(c, t)


@needs_numba
@pytest.mark.parametrize("m, g, kind", [(1, 1, 0), (1, 1, 3), (1, 2, 2), (2, 1, 1), (3, 1, 0)])
def test_observation_rows_fills_one_market_and_one_good_as_its_twin(m, g, kind):
    """One market (one good): the per-market and per-good rows are fills, the shock row too; the
    same rows as the twin's gathers, with strided and contiguous last-step columns alike."""
    from channelmarket.envs.observations import OBS_HIGH, OBS_LOW, _AGENT_ROWS

    n, width = 37 * m, len(OBS_LOW)
    r = np.random.default_rng(m * 10 + g + kind)
    market = np.repeat(np.arange(m), n // m)
    dynamic = set(_AGENT_ROWS.tolist()) | {7, 9, 11, 13, 15, 20, 21, 22, 23, 24, 25, 26, 27, 28}
    bd = r.normal(0, 3, (n, 17))
    kw = dict(static=r.uniform(0, 1, (width, n)).astype(np.float32),
              static_rows=np.array([j for j in range(width) if j not in dynamic]), rows=_AGENT_ROWS,
              sellable=r.uniform(0, 5, n), needed=r.uniform(0, 5, n), soc=r.uniform(0, 4, n), capacity=r.uniform(0, 8, n),
              storage=r.random(n) < 0.3, last_sold=bd[:, 3], last_bought=np.ascontiguousarray(bd[:, 4]),
              last_profit=bd[:, 0], inv_scale=1.0 / np.maximum(r.uniform(0, 3, n), 1e-12),
              degree=r.integers(0, 9, n).astype(np.float64),
              outbound=r.uniform(0, 900, n), inbound=r.uniform(0, 900, n), retail=250.0, liq=1000.0, mean_degree=8.0,
              low=OBS_LOW, high=OBS_HIGH, market=market, good_key=market * g + np.arange(n) % g,
              good_rows=np.array([7, 9, 11, 13, 15]), scalar_rows=np.array([20, 21, 22, 23, 24]),
              ref_price=r.uniform(0, 300, (m, g)), clearing_price=r.uniform(0, 300, (m, g)),
              price_history=r.uniform(0, 300, (m, 24, g)), history_len=r.integers(1, 25, m),
              supply=r.uniform(0, 5, (m, g)), demand=r.uniform(0, 5, (m, g)), volume=r.uniform(0, 3, (m, g)),
              time_vals=r.uniform(-1.5, 1.5, (3, 1)), t=r.integers(0, 120, m), shock_remaining=r.integers(0, 9, m),
              shock_kind=np.full(m, kind), shock_row0=25, n_shock_rows=4, episode_steps=96, active=r.random(n) < 0.9,
              zero_inactive=True)
    k = compiled.KERNELS["observation_rows"]
    bufs = [np.full((width, n), np.nan, np.float32) for _ in range(2)]
    k.run("compiled", buf=bufs[0], **kw)
    k.run("twin", buf=bufs[1], **kw)
    same([bufs[0]], [bufs[1]])
    assert not np.isnan(bufs[0]).any()


@pytest.mark.parametrize("name,overrides", [("energy_small", {}), ("energy_small", {"network_charge": 7.0}),
                                            ("energy_small", {"value_of_lost_load": 900.0}), ("energy_ev", {}),
                                            ("energy_rec", {}), ("seed000", {})])
def test_the_last_step_rows_are_the_breakdown_columns_whoever_wrote_into_it(name, overrides):
    # the booking kernel's own rows (`kernels.last_rows`) stand for the columns only while nothing wrote into
    # the breakdown after it: charges, lost load, the kinds' book hooks, further goods, the payment aftermath
    core = MarketCore(name, episode_steps=6, **overrides)
    core.reset(seed=3)
    rng = np.random.default_rng(4)
    for _ in range(6):
        core.step(rng.uniform(-1, 1, (core.n_agents, core.n_actions)))
        bd, st = core.last_result.settlement.breakdown, core.state
        for field in ("sold", "bought", "profit"):
            same([getattr(st, f"last_{field}")], [bd[:, BREAKDOWN_FIELDS.index(field)]])
            assert getattr(st, f"last_{field}").flags.c_contiguous

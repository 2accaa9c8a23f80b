"""The risk-factor rules are written once (`risk_rules.*_rule`, operations passed in): the array form
(NumPy's ops, what the energy negotiator calls) and the scalar form (the compiled supply-chain loop)
give the same numbers bit for bit, signed zeros and NaN included."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channelmarket.envs import risk_rules as R
from channelmarket.envs.compiled import USE_NUMBA

SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, 2.0, np.nan, np.inf, -np.inf, 1e-300, -1e-300]
floats = st.one_of(st.sampled_from(SPECIAL), st.floats(-3, 3, allow_nan=False))


def same(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return bool(np.all((np.isnan(a) & np.isnan(b)) | ((a == b) & (np.signbit(a) == np.signbit(b)))))


def scalar(fn):
    """The scalar form as the compiled loops run it (numba, uncached: called with functions as arguments)."""
    if not USE_NUMBA:
        return fn
    import numba

    return numba.njit(fn)


S_MAX, S_MIN, S_CLIP, S_CLIP_TO, S_WHERE = map(scalar, (R.scalar_maximum, R.scalar_minimum, R.scalar_clip,
                                                        R.scalar_clip_to, R.scalar_where))


RULES = {name: scalar(getattr(R, name)) for name in ("regular_rule", "discount_rule", "margin_rule", "first_contact_rule",
                                                      "repeat_rule", "pressured_rule", "restrained_rule",
                                                      "decision_rule")}
S_ISNAN, S_NOT = scalar(R.scalar_isnan), scalar(R.scalar_not)


@settings(max_examples=300, deadline=None)
@given(floats, floats, floats, st.integers(1, 20))
def test_scalar_ops_are_numpys_ops(x, lo, hi, n):
    """Regression: scalar_maximum returned the first of two equal zeros (np.maximum: the second)."""
    X = np.full(n, x)
    assert same(np.maximum(X, lo)[0], S_MAX(x, lo))
    assert same(np.minimum(X, lo)[0], S_MIN(x, lo))
    if not (np.isnan(lo) or np.isnan(hi)):
        assert same(np.clip(X, lo, hi)[0], S_CLIP(x, lo, hi))                      # number bounds
        assert same(np.clip(X, np.full(n, lo), np.full(n, hi))[0], S_CLIP_TO(x, lo, hi))   # array bounds
        assert same(np.clip(X, lo, np.full(n, hi))[0], S_CLIP_TO(x, lo, hi))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(floats, floats, floats, floats, floats, st.sampled_from([-1, 0, 1]), st.booleans(),
                          st.booleans()), min_size=1, max_size=12))
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")   # the NaN and inf inputs, on purpose
def test_rules_array_form_equals_scalar_form(rows):
    p = R.RiskParams()
    last, first_now, r, pressure, floor, outcome, interesting, afford = map(np.array, zip(*rows))
    ceiling = np.abs(first_now) + 1.0
    regular = R.regular_share(np.abs(last), p)
    disc = R.preferential_discount(r, p)
    margin = R.margin_share(r, regular, p)
    first = R.first_contact_price(floor, ceiling, r, regular, p)
    rep = R.repeat_price(last, first_now, outcome, r, pressure, floor, ceiling, p)
    pres = R.pressured_price(last, floor, pressure, p)
    code = R.purchase_decision(interesting, afford, np.zeros(len(rows), bool), first_now, last, r, pressure, p)
    f, s_isnan, s_not = RULES, S_ISNAN, S_NOT
    for k in range(len(rows)):
        reg = f["regular_rule"](abs(last[k]), p.points_half, S_MAX)
        assert same(regular[k], reg)
        d = f["discount_rule"](r[k], p.regular_discount, p.regular_r_max, S_CLIP)
        assert same(disc[k], d)
        m = f["margin_rule"](r[k], reg, d, p.margin_base, p.margin_risk, S_CLIP)
        assert same(margin[k], m)
        assert same(first[k], f["first_contact_rule"](floor[k], ceiling[k], m, S_MAX))
        assert same(rep[k], f["repeat_rule"](last[k], first_now[k], outcome[k], r[k], pressure[k], floor[k],
                                              ceiling[k], p.reversion, p.price_step, S_WHERE, S_MAX, S_CLIP_TO))
        assert same(pres[k], f["pressured_rule"](last[k], floor[k], pressure[k], p.pressure_weight, S_CLIP))
        restrained = f["restrained_rule"](r[k], pressure[k], p.accept_r, p.accept_pressure, S_CLIP)
        assert code[k] == f["decision_rule"](bool(interesting[k]), bool(afford[k]), False, first_now[k], last[k],
                                             restrained, S_WHERE, s_isnan, s_not)


def test_purchase_decision_codes_unchanged():
    """The chain as nested wheres gives np.select's codes (the IF chain in order)."""
    p = R.RiskParams()
    one = np.ones(1, bool)
    assert R.purchase_decision(~one, one, one, [1.0], [0.5], [0.1], [0.0], p)[0] == R.NOT_INTERESTING
    assert R.purchase_decision(one, ~one, one, [1.0], [0.5], [0.1], [0.0], p)[0] == R.CANNOT_AFFORD
    assert R.purchase_decision(one, one, one, [1.0], [0.5], [0.1], [0.0], p)[0] == R.FIRST
    assert R.purchase_decision(one, one, ~one, [1.0], [np.nan], [0.1], [0.0], p)[0] == R.FIRST
    assert R.purchase_decision(one, one, ~one, [0.4], [0.5], [0.9], [0.0], p)[0] == R.BARGAIN
    assert R.purchase_decision(one, one, ~one, [1.0], [0.5], [0.9], [0.0], p)[0] == R.WAIT
    assert R.purchase_decision(one, one, ~one, [1.0], [0.5], [0.1], [0.0], p)[0] == R.ACCEPT
    assert R.purchase_decision(one, one, ~one, [1.0], [0.5], [0.1], [0.0], p).dtype == np.int64


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])

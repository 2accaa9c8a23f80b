"""The channels' one compiled pass after the payments (`kernels.channels_after_payments`, used by
`batch.batch_step` when `batch._one_channel_pass` allows it): trajectories bit for bit the same as
the separate passes (balances, lifecycle, fee draws, aftermath), for one market and a batch, with
fees on and off, spend-sized channels, agents that left, and the generators left where the
separate passes leave them."""

from __future__ import annotations

import dataclasses
import os
import signal

import numpy as np
import pytest

from channelmarket.envs import batch, compiled
from channelmarket.envs.core import MarketCore
from channelmarket.envs.kinds import solar
from channelmarket.envs.state import AgentParams
from channelmarket.envs.scenario import PAYMENTS_SOUND_MARKET

needs_numba = pytest.mark.skipif(not compiled.USE_NUMBA, reason="numba off: the separate passes run")
ROUTING = {k: PAYMENTS_SOUND_MARKET[k] for k in ("max_hops", "routing_fee_base", "routing_fee_rate", "max_fee_share")}


_ONE_PASS = batch._one_channel_pass   # the real rule (the runs patch it)


def _run(make, steps, one_pass, monkeypatch, leave=None):
    orig = _ONE_PASS
    used = []
    def flag(*a):
        used.append(orig(*a) and one_pass)
        return used[-1]
    monkeypatch.setattr(batch, "_one_channel_pass", flag)
    core = make()
    core.reset(5)
    rng = np.random.default_rng(5)
    out = []
    for t in range(steps):
        if leave is not None and t == 3:
            core.remove_agents(leave)
        obs, rew, *_ = core.step(rng.uniform(-1, 1, (core.n_agents, 4)))
        res = core.last_result
        st = res.settlement
        out.append((np.ascontiguousarray(obs).tobytes(), rew.tobytes(), st.balance_u.tobytes(), st.flow.tobytes(),
                    st.wallet.tobytes(), *(x.tobytes() for x in res.liquidity)))
    state = core.batch if hasattr(core, "batch") else core.state
    gens = state.rng if isinstance(state.rng, tuple) else (state.rng,)
    fields = [np.asarray(getattr(state, k)).tobytes() for k in ("u", "v", "capacity", "balance_u", "open", "utilization", "fee_base",
                                                    "fee_rate", "wallet", "flow", "fee_sink")]
    return out, fields, [g.bit_generator.state for g in gens], [g.random() for g in gens], used


CASES = {
    "one market, routing fees": lambda: MarketCore("energy_default", episode_steps=40, **ROUTING),
    "one market, no fees, spend-sized": lambda: MarketCore("energy_default", episode_steps=40, channel_sizing="spend",
                                                           channel_close_rate=0.2, channel_open_rate=0.3),
    "three markets, routing fees": lambda: MarketCore("energy_small", n_markets=3, episode_steps=40, **ROUTING,
                                                      channel_close_rate=0.15, channel_open_rate=0.4),
}


@needs_numba
@pytest.mark.parametrize("case", list(CASES))
def test_one_channel_pass_is_the_separate_passes_bit_for_bit(case, monkeypatch):
    leave = [1, 4, 7] if "three" in case else None
    a = _run(CASES[case], 12, True, monkeypatch, leave)
    b = _run(CASES[case], 12, False, monkeypatch, leave)
    assert all(a[4]) and not any(b[4])   # the one pass ran every step in a, never in b
    for x, y in zip(a[0], b[0]):
        assert x == y
    assert a[1] == b[1] and a[2] == b[2] and a[3] == b[3]


@needs_numba
def test_agents_that_left_close_their_channels_in_the_one_pass(monkeypatch):
    a = _run(CASES["one market, routing fees"], 8, True, monkeypatch, leave=[0, 2, 3, 9])
    b = _run(CASES["one market, routing fees"], 8, False, monkeypatch, leave=[0, 2, 3, 9])
    assert a[0] == b[0] and a[1] == b[1] and a[2] == b[2]


def test_the_one_pass_is_off_where_it_does_not_apply():
    base = MarketCore("energy_default", episode_steps=4, **ROUTING).scenario
    assert batch._one_channel_pass(base, 1, 600) == compiled.USE_NUMBA
    assert not batch._one_channel_pass(base, 2, 600)   # several goods: their trades move balances first
    for over in (dict(partner_action=True), dict(partner_channel_share=0.3), dict(topology="scale_free"),
                 dict(rebalance_below=0.2)):
        sc = MarketCore("energy_default", episode_steps=4, **{**ROUTING, **over}).scenario
        assert not batch._one_channel_pass(sc, 1, 600), over


@needs_numba
def test_no_live_generator_state_falls_back_to_the_separate_passes(monkeypatch):
    # generators the pass cannot draw from (`streams.live_states` None): the balances after the payments
    # computed at once, then the separate passes
    b = _run(CASES["one market, routing fees"], 6, False, monkeypatch)
    monkeypatch.setattr(batch.streams, "live_states", lambda rngs: None)
    a = _run(CASES["one market, routing fees"], 6, True, monkeypatch)
    assert all(a[4])
    assert a[0] == b[0] and a[1] == b[1] and a[2] == b[2]


# ---- the step rewriting the channel arrays of a state nothing else can see ------------------------------------

_REUSED = ("u", "v", "capacity", "balance_u", "open", "fee_base", "fee_rate", "utilization")


def _spy_reuse(monkeypatch):
    """The `reuse_channels` flag of every one-pass channel step, in order."""
    flags = []
    orig = batch._channel_pass

    def spy(*a):
        flags.append(a[-1])
        return orig(*a)
    monkeypatch.setattr(batch, "_channel_pass", spy)
    return flags


def _fields(core):
    st = core.state
    return [np.asarray(getattr(st, k)).tobytes() for k in ("u", "v", "capacity", "balance_u", "open", "utilization",
                                                           "fee_base", "fee_rate", "wallet", "flow")]


@needs_numba
@pytest.mark.parametrize("case", ["one market, routing fees", "one market, no fees, spend-sized"])
def test_a_step_rewriting_unshared_channel_arrays_is_bit_for_bit_the_copying_step(case, monkeypatch):
    flags = _spy_reuse(monkeypatch)
    a, b = CASES[case](), CASES[case]()
    b._channels_private = lambda state: False   # this core always copies
    a.reset(5)
    b.reset(5)
    rng = np.random.default_rng(5)
    for t in range(14):
        if t == 6:   # agents leave: every slot is listed from now on (their channels close)
            a.remove_agents([0, 2, 3, 9])
            b.remove_agents([0, 2, 3, 9])
        x = rng.uniform(-1, 1, (a.n_agents, 4))
        oa = a.step(x)[0]   # the rest of the step's output dropped: nothing but the core sees the state
        ob = b.step(x)[0]
        assert oa.tobytes() == ob.tobytes()
        assert _fields(a) == _fields(b)
        assert a.summary() == b.summary()
    # (the step after `remove_agents` copies: the replaced state still shares the arrays with the last one)
    assert flags[0::2] == [True] * 6 + [False] + [True] * 7 and flags[1::2] == [False] * 14
    ga, gb = a.state.rng.bit_generator.state, b.state.rng.bit_generator.state
    assert ga == gb


@needs_numba
def test_a_state_or_channel_array_someone_holds_never_changes(monkeypatch):
    flags = _spy_reuse(monkeypatch)
    core = CASES["one market, routing fees"]()
    core.reset(3)
    rng = np.random.default_rng(3)
    act = lambda: rng.uniform(-1, 1, (core.n_agents, 4))   # noqa: E731
    core.step(act())
    assert flags == [True]
    # (what is held, its arrays as seen then, whether the next step may still rewrite the channels)
    holders = {
        "the state": (lambda c: c.state, lambda h: [getattr(h, k) for k in _REUSED], False),
        "a channel array": (lambda c: c.state.fee_rate, lambda h: [h], False),
        "a view of one": (lambda c: c.state.capacity[1::2], lambda h: [h], False),
        "a shallow replace": (lambda c: c.state.replace(t=0), lambda h: [getattr(h, k) for k in _REUSED], False),
        "a state dict (copies)": (lambda c: c.state_dict(), lambda h: [h["state"][k] for k in _REUSED], True),
        "the step's info": (lambda c: c.step(act())[4], lambda h: [], False),
    }
    for name, (hold, arrays, rewrites) in holders.items():
        held = hold(core)
        seen = [x.copy() for x in arrays(held)]
        summary = core.summary()
        del flags[:]
        for _ in range(3):
            core.step(act())
        assert flags[0] is rewrites, name
        assert [x.tobytes() for x in arrays(held)] == [x.tobytes() for x in seen], name
        if name == "the step's info":
            assert held["summary"] == summary   # the summary of the state it was the info of
        del held
        del flags[:]
        core.step(act())
        assert flags == [True], name   # let go: the next step rewrites again


@needs_numba
def test_a_kind_hook_raising_after_the_channel_pass_leaves_the_state_as_it_was(monkeypatch):
    # a kind with hooks of its own runs them after the channel pass: the step then copies the channels,
    # so a hook that raises leaves the state the core holds exactly as it was
    flags = _spy_reuse(monkeypatch)
    failing = []

    def energy(*a):
        if failing:
            raise RuntimeError("solar feed offline")
        return solar.energy(*a)

    own = AgentParams.blocks.func   # (a cached_property)
    monkeypatch.setattr(AgentParams, "blocks", property(lambda self: tuple(
        (dataclasses.replace(spec, energy=energy) if spec is solar.SPEC else spec, sl) for spec, sl in own(self))))
    core = CASES["one market, routing fees"]()
    core.reset(3)
    rng = np.random.default_rng(3)
    for _ in range(2):
        core.step(rng.uniform(-1, 1, (core.n_agents, 4)))
    before = _fields(core)
    failing.append(True)
    with pytest.raises(RuntimeError, match="solar feed offline"):
        core.step(rng.uniform(-1, 1, (core.n_agents, 4)))
    assert _fields(core) == before
    assert flags == [False] * 3


@needs_numba
def test_a_ctrl_c_after_the_channel_pass_comes_when_the_step_is_whole(monkeypatch):
    # the step rewriting the channels in place has a window in which the state is half old, half new: a
    # KeyboardInterrupt there (Ctrl-C in a notebook) waits until the step is whole, then comes
    flags = _spy_reuse(monkeypatch)
    interrupt = []
    orig = batch._next_interval

    def next_interval(*a):   # runs after the channel pass
        if interrupt:
            os.kill(os.getpid(), signal.SIGINT)
        return orig(*a)
    monkeypatch.setattr(batch, "_next_interval", next_interval)
    a, b = CASES["one market, routing fees"](), CASES["one market, routing fees"]()
    b._channels_private = lambda state: False   # the reference copies
    a.reset(4)
    b.reset(4)
    rng = np.random.default_rng(4)
    for _ in range(3):
        x = rng.uniform(-1, 1, (a.n_agents, 4))
        a.step(x)
        b.step(x)
    x = rng.uniform(-1, 1, (a.n_agents, 4))
    interrupt.append(True)
    with pytest.raises(KeyboardInterrupt):
        a.step(x)
    interrupt.clear()
    b.step(x)
    assert flags[-2] is True   # the interrupted step did rewrite in place
    assert a.state.t == b.state.t == 4
    assert _fields(a) == _fields(b)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    x = rng.uniform(-1, 1, (a.n_agents, 4))
    assert a.step(x)[0].tobytes() == b.step(x)[0].tobytes()   # and the episode goes on as if nothing happened

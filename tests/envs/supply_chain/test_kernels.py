"""The supply chain's compiled loops give the same economy as their plain twins (same code, run
by Python), and the step runs with numba switched off."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channelmarket.envs.compiled import ParallelKernel
from channelmarket.envs.supply_chain import SupplyChainCore, movement, production, protocol, pulls, space
from channelmarket.envs.supply_chain import core as core_module

from .pairs_reference import neighbour_pairs, neighbour_roles

KERNELS = (protocol.refresh_kernel, protocol.setup_kernel, movement.direction_kernel, space.grid_kernel,
           movement.near_kernel, protocol.sent_kernel, protocol.offers_kernel,
           movement.lacks_kernel, movement.prospect_kernel, movement.move_kernel, core_module.observe_kernel,
           production.produce_kernel, production.live_kernel,
           core_module.mean_price_kernel, movement.goal_kernel, movement.speed_kernel, core_module.books_kernel,
           pulls.pulls_kernel, movement.goals_kernel, movement.speed_live_kernel, movement.steer_kernel,
           core_module.day_end_kernel)
# kernels whose compiled form gives its twin's numbers bit for bit (same float operations in the same order)
EXACT = (space.grid_kernel, movement.near_kernel, protocol.sent_kernel, protocol.offers_kernel, movement.lacks_kernel,
         movement.prospect_kernel, movement.move_kernel,
         core_module.observe_kernel, production.produce_kernel, production.live_kernel,
         core_module.mean_price_kernel, movement.goal_kernel, movement.speed_kernel, core_module.books_kernel,
         movement.goals_kernel, movement.speed_live_kernel, movement.steer_kernel, core_module.day_end_kernel)


def trajectory(days=15, learned=False, name="supply_chain_small", seed=5):
    """Every state array after `days` (built-in agents; `learned`: every 3rd agent on random actions,
    some moving by the rule)."""
    core = SupplyChainCore(name, days=days)
    core.reset(seed=seed)
    rng = np.random.default_rng(seed)
    mask = np.zeros(core.n_agents, bool)
    mask[::3] = True
    obs = []
    while not core.done:
        obs.append(core.observe())
        if learned:
            a = rng.uniform(-1.2, 1.2, (core.n_agents, 5))
            a[rng.random(core.n_agents) < 0.3, 4] = np.nan
            core.step(a, mask)
        else:
            core.step()
    out = core.state_dict()["arrays"]
    out["trades"] = np.concatenate([np.asarray(x, float) for x in core.last_trades])
    out["offers"] = np.concatenate([np.asarray(x, float) for x in core.last_offers])
    out["observations"] = np.stack(obs)
    return out


def to_twins(monkeypatch, kernels):
    """Every kernel of `kernels` runs its twin (threaded builds off)."""
    for k in kernels:
        monkeypatch.setattr(k, "impl", k.twin)
        monkeypatch.setattr(k, "parallel", None)


def test_compiled_equals_twin(monkeypatch):
    """Every compiled kernel switched to its twin at once: the same economy to the last bit (regression:
    the heading's `x ** 2` ran C pow in the twin, x * x compiled, and the trajectories drifted apart;
    CHANNELMARKET_NUMBA=0 now gives the compiled trajectory)."""
    if any(k.compiled is None for k in KERNELS):
        pytest.skip("numba is off")
    compiled = trajectory(days=60, name="maser_exp1", seed=1)
    to_twins(monkeypatch, KERNELS)
    twin = trajectory(days=60, name="maser_exp1", seed=1)
    for name, v in compiled.items():
        np.testing.assert_array_equal(twin[name], v, err_msg=name)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 60), st.sampled_from([5, 60]))
def test_sale_kernel_equals_its_numpy_twin_bit_for_bit(seed, m, stock):
    """The compiled sale (loops, what the compiled offers call) gives exactly the NumPy sale of the offers'
    twin: same offers, same packages; with stock short (the sellers' runs sorted by price) and plenty (runs
    whose stock covers every want are left in slot order: the result must not change)."""
    if protocol._sale_jit is protocol._sale_loop:
        pytest.skip("numba is off")
    rng = np.random.default_rng(seed)
    n = 12
    si = np.sort(rng.integers(0, n, m))
    kw = dict(accepted=rng.random(m) < 0.7, si=si, sj=rng.integers(0, n, m),
              price=rng.choice([1.0, 1.5, 2.25, 3.0], m) * rng.uniform(0.9, 1.1, m).round(2),
              need=rng.integers(0, 12, m).astype(float), unit_pkg=rng.choice([2.0, 4.0], m),
              packages=rng.integers(0, stock, n).astype(float), money=rng.uniform(0.0, 40.0, n))
    a1, g1 = protocol._sale_numpy(**kw)
    a2, g2 = protocol._sale_jit(*kw.values())
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(g1, g2)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 3), st.integers(0, 300), st.integers(0, 300))
def test_keep_draws_leaves_the_generator_as_if_it_drew_only_those_used(seed, ints, total, used):
    """The day's advertising doubles are drawn for a bound on the slots in range, then the generator is
    set back to where drawing only those used leaves it, its buffered 32-bit value (odd `ints`) kept."""
    used = min(used, total)
    a, b = np.random.default_rng(seed), np.random.default_rng(seed)
    a.integers(0, 9, ints)
    b.integers(0, 9, ints)
    want = a.random(used)
    bg = b.bit_generator
    before = bg.state
    got = b.random(total)
    protocol._keep_draws(bg, before, used)
    np.testing.assert_array_equal(got[:used], want)
    assert bg.state == a.bit_generator.state
    np.testing.assert_array_equal(b.integers(0, 1000, 7), a.integers(0, 1000, 7))
    np.testing.assert_array_equal(b.random(5), a.random(5))


def test_generators_that_cannot_give_back_draws_count_the_slots_in_range_first(monkeypatch):
    """A generator other than PCG64 draws exactly one advertising double a slot in range, counted with
    NumPy first: forced on PCG64, the economy is the one of the draws given back."""
    given_back = trajectory(days=30, name="maser_exp4", seed=4)
    monkeypatch.setattr(protocol, "_gives_back", lambda bg: False)
    counted = trajectory(days=30, name="maser_exp4", seed=4)
    for name, v in given_back.items():
        np.testing.assert_array_equal(counted[name], v, err_msg=name)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 3), st.lists(st.sampled_from([0, 1, 2, 3, 7, 1000, 100_003]),
                                                               min_size=1, max_size=5), st.integers(1, 8))
def test_goals_kernel_draws_numpys_bounded_integers(seed, ints, producers, sample):
    """The fused goal points draw inside the compiled pass what `rng.integers(0, producers, (agents,
    sample))` draws per good (Lemire's method on PCG64's buffered 32-bit halves; one producer draws
    nothing; none: not lacking), and leave the generator where those calls leave it."""
    k = movement.goals_kernel
    if k.compiled is None:
        pytest.skip("numba is off")
    rng, data = np.random.default_rng(seed), np.random.default_rng(seed + 1)
    rng.integers(0, 9, ints)                            # an odd count leaves a 32-bit half buffered
    words = movement._words_of(rng.bit_generator.state)
    xy = data.uniform(0, 10, (15, 2)).round(1)
    g = len(producers)
    p_len = producers
    prod = np.concatenate([data.integers(0, 15, p) for p in p_len]).astype(np.int64)
    p_start = np.r_[0, np.cumsum(p_len)].astype(np.int64)
    w_len = data.integers(0, 6, g)
    who = data.integers(0, 15, w_len.sum()).astype(np.int64)
    role = data.integers(0, 3, w_len.sum()).astype(np.int64)
    w_start = np.r_[0, np.cumsum(w_len)].astype(np.int64)
    out = {}
    for which in ("twin", "compiled"):
        kw = dict(xy=xy, who=who, role=role, w_start=w_start, prod=prod, p_start=p_start, words=words.copy(),
                  radius=3.0, goal=np.zeros((15, 3, 2)), lacks=np.ones((15, 3), bool), sample=sample)
        k.run(which, **kw)
        out[which] = kw
    for name in ("words", "goal", "lacks"):
        np.testing.assert_array_equal(out["compiled"][name], out["twin"][name], err_msg=name)
    ref = np.random.default_rng(seed)
    ref.integers(0, 9, ints)
    for i, p in enumerate(p_len):
        if w_len[i] and p:
            ref.integers(0, p, (w_len[i], sample))
    assert movement._state_of(out["compiled"]["words"], rng.bit_generator.state) == ref.bit_generator.state


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 20))
def test_goal_points_kernel_equals_its_numpy_twin(seed, w):
    """The fused draw / nearest / goal write gives the twin's goal points (ties, all in range, repeats)."""
    k = movement.goal_kernel
    if k.compiled is None:
        pytest.skip("numba is off")
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 10, (15, 2)).round(1)
    producers = rng.permutation(15)[:rng.integers(1, 15)]
    kw = dict(xy=xy, who=rng.integers(0, 15, w), role=rng.integers(0, 3, w), producers=producers,
              draws=rng.integers(0, producers.size, (w, 6)), radius=3.0, goal=rng.uniform(0, 10, (15, 3, 2)))
    twin = {key: (v.copy() if isinstance(v, np.ndarray) else v) for key, v in kw.items()}
    k.run("twin", **twin)
    k.run("compiled", **kw)
    np.testing.assert_array_equal(twin["goal"], kw["goal"])


@pytest.mark.parametrize("learned", [False, True])
def test_exact_kernels_give_their_twins_trajectory_bit_for_bit(monkeypatch, learned):
    """Offers / answers / sale, the neighbourhood query and the grid: the compiled pass and its NumPy twin
    give the same economy to the last bit, built-in and learned agents (regression: the fused kernels
    must not drift from the rules' array form)."""
    if any(k.compiled is None for k in EXACT):
        pytest.skip("numba is off")
    compiled = trajectory(days=40, learned=learned, name="maser_exp4", seed=2)
    to_twins(monkeypatch, EXACT)
    twin = trajectory(days=40, learned=learned, name="maser_exp4", seed=2)
    for name, v in compiled.items():
        np.testing.assert_array_equal(twin[name], v, err_msg=name)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 80), st.floats(0.5, 30.0))
def test_grid_and_neighbourhood_kernels_equal_their_twins(seed, n, radius):
    """The cell list (counting sort) and the one-pass neighbourhood (role counts, customer candidates grouped
    by seller in neighbour order; serial and threaded builds) equal their NumPy twins, and the candidates are
    the reference's ordered pairs filtered, grouped by seller (a stable sort)."""
    if space.grid_kernel.compiled is None:
        pytest.skip("numba is off")
    rng = np.random.default_rng(seed)
    w, h = 60.0, 40.0
    xy = rng.uniform(0, 1, (n, 2)) * [w, h]
    xy[: n // 4] = xy[: n // 4].round()              # agents on cell borders and on top of each other
    alive = rng.random(n) < 0.8
    nx, ny, side = space.grid_shape(w, h, radius)
    kw = dict(xy=xy, alive=alive, nx=nx, ny=ny, side=float(side))
    for a, b in zip(space.grid_kernel.run("twin", **kw), space.grid_kernel.run("compiled", **kw)):
        np.testing.assert_array_equal(a, b)
    agents, sx, sy, scx, scy, starts, counts, nx, ny = space.grid(xy, alive, radius, w, h)
    in_good = np.array([-1, 0, 1, 2])[np.arange(n) % 4]
    out_good = np.arange(n) % 4
    kw = dict(agents=agents, sx=sx, sy=sy, scx=scx, scy=scy, starts=starts, counts=counts, nx=nx, ny=ny,
              radius=float(radius), in_good=in_good, out_good=out_good, food=3, n=n)
    twin = movement.near_kernel.run("twin", **kw)
    for a, b in zip(twin, movement.near_kernel.run("compiled", **kw)):
        np.testing.assert_array_equal(a, b)
    if movement.near_kernel.parallel is not None:    # its own loop: strips of columns, counts apart at the seams
        for a, b in zip(twin, movement.near_kernel.run("parallel", **kw)):
            np.testing.assert_array_equal(a, b)
    i, j, _ = neighbour_pairs(xy, alive, radius, w, h)
    counts_old, customer = neighbour_roles(i, j, in_good, out_good, food=3, n=n)
    np.testing.assert_array_equal(twin[0], counts_old)
    ci, cj = i[customer], j[customer]
    np.testing.assert_array_equal(twin[1], np.r_[0, np.cumsum(np.bincount(ci, minlength=n))])
    np.testing.assert_array_equal(twin[2], cj[np.argsort(ci, kind="stable")])
    np.testing.assert_array_equal(twin[0][:, 1], np.diff(twin[1]))     # a seller's group: its customers near
    # the serial pass sizes its pair buffers by a per-cell count: exactly the pairs of every agent's cell ranges
    per_agent = sum(hi - lo for part in range(5) for p in range(agents.size)
                    for lo, hi in [movement._cell_range_py(p, part, scx, scy, starts, counts, nx, ny)])
    assert movement._pair_bound(counts, nx, ny) == movement._pair_bound_py(counts, nx, ny) == per_agent


THREADED = tuple(k for k in vars(movement).values() if isinstance(k, ParallelKernel)) + tuple(
    k for mod in (protocol, production, core_module) for k in vars(mod).values() if isinstance(k, ParallelKernel))


@pytest.mark.parametrize("learned", [False, True])
def test_threaded_builds_give_the_serial_trajectory_bit_for_bit(monkeypatch, learned):
    """Every threaded build forced on (min_items 0) gives the serial builds' economy to the last bit: each
    prange iteration writes only its own agent's or seller's items (regression: a shared ledger sum or
    slot scatter inside a threaded loop would race or reorder float sums)."""
    if not THREADED or any(k.parallel is None for k in THREADED):
        pytest.skip("numba off or one thread")
    for k in THREADED:
        monkeypatch.setattr(k, "min_items", 10**12)
    serial = trajectory(days=30, learned=learned, name="maser_exp4", seed=3)
    for k in THREADED:
        monkeypatch.setattr(k, "min_items", 0)
    threaded = trajectory(days=30, learned=learned, name="maser_exp4", seed=3)
    for name, v in serial.items():
        np.testing.assert_array_equal(threaded[name], v, err_msg=name)


_FINGERPRINT = """
import hashlib
import numpy as np
from channelmarket.envs import compiled
from channelmarket.envs.compiled import ParallelKernel
from channelmarket.envs.supply_chain import SupplyChainCore
core = SupplyChainCore("supply_chain_10k")
h = hashlib.sha256(core.reset(seed=7).tobytes())
for _ in range(4):
    obs, rewards, *_ = core.step()
    h.update(obs.tobytes())
    h.update(rewards.tobytes())
for name, v in sorted(core.state.array_dict().items()):
    h.update(np.ascontiguousarray(v).tobytes())
print(compiled.THREADS, h.hexdigest())
"""


def test_10k_market_is_the_same_with_one_and_two_threads():
    """supply_chain_10k (the threaded builds run at this size), four days in two processes,
    CHANNELMARKET_THREADS=1 and 2: the same fingerprint of observations, rewards and every state array."""
    if protocol.offers_kernel.compiled is None:
        pytest.skip("numba is off")
    got = {}
    for threads in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", _FINGERPRINT], env=dict(os.environ, CHANNELMARKET_THREADS=threads),
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        used, digest = out.stdout.split()
        got[used] = digest
    if "2" not in got:
        pytest.skip("one core: numba runs one thread")
    assert got["1"] == got["2"]


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 9))
def test_slot_reach_bounds_every_open_slot_and_refresh_returns_it(seed, k):
    """`slot_reach`: one past each seller's last open slot (holes anywhere in a row); the refresh (compiled
    and twin) returns the reach of the slots it leaves: the day's set-up, offers and heading loop up to
    it, and a reach short of an open slot would skip its offer, decay and pull; each seller's open slots
    (the day's observation reads them instead of the rows); and the history pulls of
    the slots it leaves, added row by row as each row is final: those `movement.history_pulls` gives after."""
    rng = np.random.default_rng(seed)
    n = 12
    partner = np.where(rng.random((n, k)) < 0.4, rng.integers(0, n, (n, k)), -1).astype(np.int32)   # the state's dtypes
    want = np.array([max([s + 1 for s in range(k) if partner[a, s] >= 0], default=0) for a in range(n)])
    np.testing.assert_array_equal(protocol.slot_reach(partner), want)
    kinds = ["twin"] + (["compiled"] if protocol.refresh_kernel.compiled is not None else [])
    for which in kinds:
        slots = dict(partner=partner.copy(), away=rng.integers(0, 3, (n, k)).astype(np.int16),
                     t_last=rng.integers(0, 6, (n, k)).astype(np.float32), points=np.zeros((n, k)),
                     n_tr=np.zeros((n, k), np.float32), value_sum=np.zeros((n, k)), t_first=np.zeros((n, k), np.float32),
                     list_price=np.full((n, k), np.nan), outcome=np.zeros((n, k), np.int8),
                     offered=np.zeros((n, k), bool))
        rs = np.random.default_rng(seed)
        slots["n_tr"] = rs.integers(0, 4, (n, k)).astype(np.float32)
        xy = rs.uniform(0, 8, (n, 2))
        changed, reach, customers, pull = protocol.refresh_kernel.run(
            which, start=np.r_[0, np.cumsum(rs.integers(0, 4, n))], cand=rs.integers(0, n, 3 * n), radius=3.0,
            lapse_days=1, per_day=6, t=5, xy=xy, alive=rs.random(n) > 0.2, **slots)
        np.testing.assert_array_equal(reach, protocol.slot_reach(slots["partner"]), err_msg=which)
        np.testing.assert_array_equal(customers, (slots["partner"] >= 0).sum(axis=1), err_msg=which)
        after = pulls.pulls_kernel.run(which, xy=xy, partner=slots["partner"], reach=reach, n_tr=slots["n_tr"])
        np.testing.assert_array_equal(pull, after, err_msg=which)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 40), st.booleans(), st.sampled_from([0.0, 1.5]))
def test_books_kernel_equals_its_numpy_twin_bit_for_bit(seed, t, stability, penalty):
    """The day's sales, purchases, profit and rewards (both reward kinds, agents dead before the day and
    dying today, a death penalty): the compiled pass gives the twin's bincounts and array arithmetic."""
    k = core_module.books_kernel
    if k.compiled is None:
        pytest.skip("numba is off")
    rng = np.random.default_rng(seed)
    n = 9
    money_before = rng.uniform(0, 50, n).round(1)
    kw = dict(seller=rng.integers(0, n, t), buyer=rng.integers(0, n, t), value=rng.uniform(0, 10, t),
              money=money_before + rng.uniform(-5, 5, n), money_before=money_before, alive_before=rng.random(n) < 0.8,
              dead=rng.random(n) < 0.2, stability=stability, alive_share=float(rng.random()), penalty=penalty)
    for a, b in zip(k.run("twin", **kw), k.run("compiled", **kw)):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype == np.float64


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 3), st.integers(0, 40), st.floats(0.0, 1.0))
def test_live_draws_are_numpys_and_leave_the_generator_where_numpy_does(seed, ints, n, restless):
    """The movement's draws from the PCG64's live state: the speeds use `rng.random(n)`, the angles are
    `rng.uniform(0, 2 pi, n)` (computed one at a time from `turn`), the generator ends where those two calls
    leave it (its buffered 32-bit half kept), compiled and twin; regression: an off-by-one jump or a step
    too many changes the angles and every later draw."""
    from channelmarket.envs.streams import state_view
    k = movement.speed_live_kernel
    if k.compiled is None:
        pytest.skip("numba is off")
    ref, data = np.random.default_rng(seed), np.random.default_rng(seed + 1)
    ref.integers(0, 9, ints)
    s, r = data.random(n), data.random(n)
    want = movement.speeds(s, r, ref.random(n), restless, 2.0)
    angles = ref.uniform(0.0, 2.0 * np.pi, n)
    for which in ("twin", "compiled"):
        rng = np.random.default_rng(seed)
        rng.integers(0, 9, ints)
        got, turn = k.run(which, s=s, r=r, state=state_view(rng), restless=restless, max_speed=2.0)
        np.testing.assert_array_equal(got, want)
        assert rng.bit_generator.state == ref.bit_generator.state
        np.testing.assert_array_equal([movement._angle(turn, a) for a in range(n)], angles)
    assert ref.integers(0, 1000, 5).tolist() == rng.integers(0, 1000, 5).tolist()


def test_the_sent_pass_draws_from_the_live_state_as_from_a_block(monkeypatch):
    """The advertising doubles taken from the live generator state give the economy of the old way (a
    block of doubles drawn for a bound, the generator set back to those used): forced off, the same
    trajectory and the same generator at the end."""
    live = trajectory(days=30, name="maser_exp4", seed=4)
    monkeypatch.setattr(protocol, "state_view", lambda rng: None)
    block = trajectory(days=30, name="maser_exp4", seed=4)
    for name, v in live.items():
        np.testing.assert_array_equal(block[name], v, err_msg=name)


def test_goal_draws_from_the_live_state_and_buffer_as_through_bit_generator_state(monkeypatch):
    """The goal points' bounded integers drawn on the live PCG64 state and its buffered 32-bit half (views of
    NumPy's struct) give the economy, and the generator, of the `bit_generator.state` round trip."""
    def run():
        core = SupplyChainCore("maser_exp4", days=30)
        core.reset(seed=7)
        while not core.done:
            core.step()
        return core.state_dict()
    live = run()
    assert movement._buffer_view(np.random.default_rng(1).bit_generator) is not None
    monkeypatch.setattr(movement, "_buffer_view", lambda bg: None)
    old = run()
    assert live["rng"] == old["rng"]
    for name, v in live["arrays"].items():
        np.testing.assert_array_equal(old["arrays"][name], v, err_msg=name)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 40), st.booleans(), st.sampled_from([0.0, 1.5]))
def test_day_end_kernel_is_eating_then_the_books(seed, t, stability, penalty):
    """The day's end in one call (compiled and twin) gives `live_kernel` then `books_kernel` with the
    stability share `alive.mean()` after the deaths, and the counts alive and dead (regression: a share
    taken before the deaths, or from the wrong population, changes the stability rewards)."""
    k = core_module.day_end_kernel
    if k.compiled is None:
        pytest.skip("numba is off")
    rng = np.random.default_rng(seed)
    n = 9
    alive = rng.random(n) < 0.8
    hold = rng.integers(0, 3, (n, 4)).astype(float)
    money_before = rng.uniform(0, 50, n).round(1)
    live = dict(alive=alive, vital=rng.uniform(0.0, 0.3, n), died=np.full(n, -1, np.int64), hold=hold,
                producing=rng.random(n) < 0.5, food=3, decay=0.1, work=0.05, restore=0.4, t=t)
    trades = dict(seller=rng.integers(0, n, t), buyer=rng.integers(0, n, t), value=rng.uniform(0, 10, t),
                  money=money_before + rng.uniform(-5, 5, n), money_before=money_before)
    ref_live = dict(live, hold=hold.copy())
    vital, new_alive, died, dead, eaten = production.live_kernel.run("twin", **ref_live)
    want = (vital, new_alive, died, dead, eaten) + core_module.books_kernel.run(
        "twin", **trades, alive_before=alive, dead=dead, stability=stability,
        alive_share=float(new_alive.mean()) if stability else 0.0, penalty=penalty) + (
        int(new_alive.sum()), int(dead.sum()))
    for which in ("twin", "compiled"):
        kw = dict(live, hold=hold.copy(), **trades, stability=stability, penalty=penalty)
        got = k.run(which, **kw)
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(kw["hold"], ref_live["hold"])


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 60), st.sampled_from([3, 4, 5]))
def test_mean_price_kernel_equals_its_numpy_twin_bit_for_bit(seed, n, g):
    """The goods' mean prices (the loop's four goods summed in registers, other counts in memory): the
    twin's bincount sums to the last bit, goods with no alive producer at their start price."""
    k = core_module.mean_price_kernel
    if k.compiled is None:
        pytest.skip("numba is off")
    rng = np.random.default_rng(seed)
    kw = dict(out_good=rng.integers(0, g, n), price=rng.uniform(0.1, 30.0, n), alive=rng.random(n) < 0.7,
              start=rng.uniform(1.0, 5.0, g))
    np.testing.assert_array_equal(k.run("compiled", **kw), k.run("twin", **kw))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_produce_kernel_takes_the_cheapest_lots_as_its_twin(seed):
    """The compiled production sorts each starter's lots by ranks (no branches): the twin's stable argsort
    order (NaN last, ties in lot order), so the same lots are taken, bit for bit (costs drawn from a few
    values with ties, NaN and both zeros)."""
    if production.produce_kernel.compiled is None:
        pytest.skip("numba is off")
    rng = np.random.default_rng(seed)
    core = SupplyChainCore("supply_chain_small")
    core.reset(seed=seed % 1000)
    s = core.state
    n, lots = s.lot_qty.shape
    kw = dict(alive=rng.random(n) < 0.9, busy=rng.integers(0, 2, n), kind=s.kind, out_good=s.out_good,
              in_good=s.in_good, hold=rng.integers(0, 8, s.hold.shape).astype(float), out_cost=rng.uniform(0, 3, n),
              wip=rng.integers(0, 5, n).astype(float), wip_cost=rng.uniform(0, 9, n),
              lot_qty=rng.integers(0, 4, (n, lots)).astype(float),
              lot_cost=rng.choice(np.array([0.0, -0.0, 1.0, 2.0, 2.0, np.nan]), (n, lots)),
              produced=np.zeros(s.hold.shape[1]), consumed=np.zeros(s.hold.shape[1]), days=core._days,
              batch=core._batch, labour=core._labour)
    twin = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    comp = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    out_t = production.produce_kernel.run("twin", **twin)
    out_c = production.produce_kernel.run("compiled", **comp)
    for x, y in zip(out_t, out_c):
        np.testing.assert_array_equal(x, y)
    for k in kw:
        if isinstance(kw[k], np.ndarray):
            np.testing.assert_array_equal(twin[k], comp[k], err_msg=k)

"""Shocks: each multiplies aggregate supply or demand by exactly its factor, starts by API, schedule
or at random, counts down and ends, one at a time, and shows in observations, infos and summary."""

from __future__ import annotations

import numpy as np
import pytest

from channelmarket import channel_market_v0
from channelmarket.envs import OBS_NAMES, PRESETS, SHOCK_NAMES, MarketCore, Shock, ShockEvent
from channelmarket.envs.shocks import DEMAND_FACTOR, SUPPLY_FACTOR, advance_shock, check_duration, parse_shock
from channelmarket.envs.state import Kind

SMALL = PRESETS["energy_small"]
# (kind, supply factor, demand factor) as documented
FACTORS = [("DEMAND_SURGE", 1.0, 2.0), ("DEMAND_DROP", 1.0, 0.3), ("SUPPLY_SURPLUS", 2.0, 1.0),
           ("SUPPLY_SHORTAGE", 0.3, 1.0)]
SHOCK_COLS = {s: OBS_NAMES.index(f"shock_{s.lower()}") for s in SHOCK_NAMES[1:]}
REMAINING_COL = OBS_NAMES.index("shock_remaining")


def actions_for(n: int, steps: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1, 1, (n, 4)) for _ in range(steps)]


def masks(core: MarketCore):
    k = core.agents.kind
    return (k == Kind.SOLAR) | (k == Kind.WIND), k == Kind.CONSUMER, k == Kind.STORAGE


def shock_of(core: MarketCore) -> tuple[str, int]:
    return Shock(core.state.shock_kind).name, core.state.shock_remaining


# ---- the factors ----------------------------------------------------------------------------------

def test_factor_tables_match_the_design():
    for kind, fs, fd in FACTORS:
        assert SUPPLY_FACTOR[Shock[kind]] == fs and DEMAND_FACTOR[Shock[kind]] == fd
    assert SUPPLY_FACTOR[Shock.NONE] == 1.0 and DEMAND_FACTOR[Shock.NONE] == 1.0
    assert SHOCK_NAMES == ("NONE", "DEMAND_SURGE", "DEMAND_DROP", "SUPPLY_SURPLUS", "SUPPLY_SHORTAGE")


@pytest.mark.parametrize("kind,fs,fd", FACTORS)
@pytest.mark.parametrize("start_hour", [0.0, 10.0])  # night (wind only) and day (solar too)
def test_shock_moves_supply_or_demand_by_exactly_its_factor(kind, fs, fd, start_hour):
    duration = 4
    plain, shocked = MarketCore("energy_small", start_hour=start_hour), MarketCore("energy_small", start_hour=start_hour)
    plain.reset(seed=3)
    shocked.reset(seed=3)
    shocked.inject_shock(kind, duration)
    gen, con, sto = masks(plain)
    for t, act in enumerate(actions_for(plain.n_agents, duration + 2)):
        plain.step(act)
        shocked.step(act)
        a, b = plain.last_result, shocked.last_result
        s0, s1 = a.sellable[gen].sum(), b.sellable[gen].sum()
        d0, d1 = a.needed[con].sum(), b.needed[con].sum()
        assert s0 > 0 and d0 > 0
        on = t < duration
        assert s1 == pytest.approx(s0 * (fs if on else 1.0), rel=1e-12), (t, s1 / s0)
        assert d1 == pytest.approx(d0 * (fd if on else 1.0), rel=1e-12), (t, d1 / d0)
        # per agent, too: a shock multiplies every generator and consumer alike
        np.testing.assert_allclose(b.sellable[gen], a.sellable[gen] * (fs if on else 1.0), rtol=1e-12)
        np.testing.assert_allclose(b.needed[con], a.needed[con] * (fd if on else 1.0), rtol=1e-12)
        if t == 0:
            # storage is not shocked (same state of charge on the first step)
            np.testing.assert_array_equal(b.sellable[sto], a.sellable[sto])
            np.testing.assert_array_equal(b.needed[sto], a.needed[sto])
        # the shock changes supply or demand, not the weather: the pre-shock energy stays aligned
        np.testing.assert_array_equal(shocked.state.generation, plain.state.generation)
        np.testing.assert_array_equal(shocked.state.demand, plain.state.demand)


@pytest.mark.parametrize("kind,fs,fd", FACTORS)
def test_summary_supply_demand_follow_the_shock(kind, fs, fd):
    plain, shocked = MarketCore("energy_small", start_hour=10.0), MarketCore("energy_small", start_hour=10.0)
    plain.reset(seed=1)
    shocked.reset(seed=1)
    shocked.inject_shock(kind, 3)
    act = np.zeros((plain.n_agents, 4))
    act[:, 2] = 1.0  # offer everything
    plain.step(act)
    shocked.step(act)
    gen, con, sto = masks(plain)
    # aggregate supply = generators' sellable + storage offers; demand = consumers' needs + storage bids
    ps, ss = plain.summary(), shocked.summary()
    st_sup = plain.last_result.offers.sell_qty[sto].sum()
    st_dem = plain.last_result.offers.buy_qty[sto].sum()
    assert ps["supply"] == pytest.approx(plain.last_result.sellable[gen].sum() + st_sup, rel=1e-12)
    assert ss["supply"] == pytest.approx(fs * plain.last_result.sellable[gen].sum() + st_sup, rel=1e-12)
    assert ss["demand"] == pytest.approx(fd * plain.last_result.needed[con].sum() + st_dem, rel=1e-12)


# ---- injection paths -------------------------------------------------------------------------------

def test_inject_through_core_counts_down_and_ends():
    core = MarketCore("energy_small")
    core.reset(seed=0)
    assert shock_of(core) == ("NONE", 0)
    core.inject_shock("DEMAND_DROP", 3)
    assert shock_of(core) == ("DEMAND_DROP", 3)
    assert core.summary()["shock"] == "DEMAND_DROP" and core.summary()["shock_remaining"] == 3
    seen = []
    for act in actions_for(core.n_agents, 5):
        seen.append(shock_of(core))
        core.step(act)
    # the shock covers exactly 3 intervals, then the market is back to normal
    assert seen == [("DEMAND_DROP", 3), ("DEMAND_DROP", 2), ("DEMAND_DROP", 1), ("NONE", 0), ("NONE", 0)]
    assert shock_of(core) == ("NONE", 0)


@pytest.mark.parametrize("kind", [Shock.SUPPLY_SURPLUS, 3, "supply_surplus", "Supply_Surplus", np.int64(3)])
def test_inject_accepts_enum_int_and_name(kind):
    core = MarketCore("energy_small")
    core.reset(seed=0)
    core.inject_shock(kind, np.int64(2))
    assert shock_of(core) == ("SUPPLY_SURPLUS", 2)
    assert isinstance(core.state.shock_kind, int) and isinstance(core.state.shock_remaining, int)


def test_inject_through_env_counts_down_in_infos_and_summary():
    env = channel_market_v0.parallel_env(scenario="energy_small")
    env.reset(seed=0)
    env.inject_shock("SUPPLY_SHORTAGE", 2)
    assert env.market_summary()["shock"] == "SUPPLY_SHORTAGE"
    assert env.history[-1]["shock"] == "SUPPLY_SHORTAGE"
    rng = np.random.default_rng(0)
    shocks, lefts = [], []
    for _ in range(4):
        _, _, _, _, infos = env.step({a: rng.uniform(-1, 1, 4) for a in env.agents})
        shocks.append({Shock(i["shock"]).name for i in infos.values()})
        lefts.append(env.market_summary()["shock_remaining"])
    # infos report the shock of the interval that follows the step (what the agents observe next)
    assert shocks == [{"SUPPLY_SHORTAGE"}, {"NONE"}, {"NONE"}, {"NONE"}]
    assert lefts == [1, 0, 0, 0]


def test_inject_before_reset_raises():
    core = MarketCore("energy_small")
    with pytest.raises(RuntimeError, match="reset"):
        core.inject_shock("DEMAND_SURGE", 2)


@pytest.mark.parametrize("kind,duration,exc,word", [
    ("HEATWAVE", 2, ValueError, "HEATWAVE"), ("NONE", 2, ValueError, "NONE"), (0, 2, ValueError, "0"),
    (5, 2, ValueError, "5"), (-1, 2, ValueError, "-1"), (True, 2, TypeError, "bool"), (None, 2, TypeError, "NoneType"),
    (2.0, 2, TypeError, "float"), ("DEMAND_SURGE", 0, ValueError, "duration 0"),
    ("DEMAND_SURGE", -1, ValueError, "duration -1"), ("DEMAND_SURGE", 1.0, ValueError, "duration 1.0"),
    ("DEMAND_SURGE", "3", ValueError, "duration '3'"), ("DEMAND_SURGE", False, ValueError, "duration False"),
    # regression (found by test_fuzz with more examples): accepted, then the next step raised OverflowError
    ("DEMAND_SURGE", 2**63, ValueError, "duration 9223372036854775808"),
])
def test_inject_bad_shock_raises_and_changes_nothing(kind, duration, exc, word):
    core = MarketCore("energy_small")
    core.reset(seed=0)
    core.inject_shock("DEMAND_DROP", 4)
    core.step(actions_for(core.n_agents, 1)[0])
    state, rng_state = core.state, (core.state.rng.bit_generator.state, core.state.rng_exo.bit_generator.state)
    with pytest.raises(exc) as ei:
        core.inject_shock(kind, duration)
    msg = str(ei.value)
    assert "shock" in msg and word in msg, msg
    assert core.state is state and (core.state.rng.bit_generator.state, core.state.rng_exo.bit_generator.state) == rng_state
    assert shock_of(core) == ("DEMAND_DROP", 3)


def test_parse_shock_and_check_duration():
    assert parse_shock("demand_surge") is Shock.DEMAND_SURGE
    assert parse_shock(4) is Shock.SUPPLY_SHORTAGE
    assert check_duration(np.int32(7)) == 7 and type(check_duration(np.int32(7))) is int
    assert check_duration(2**63 - 1) == 2**63 - 1 and check_duration(np.uint64(2**63 - 1)) == 2**63 - 1
    with pytest.raises(ValueError, match="<= 9223372036854775807"):
        check_duration(np.uint64(2**63))


def test_the_longest_shock_duration_steps():
    core = MarketCore("energy_small")
    core.reset(seed=0)
    core.inject_shock("DEMAND_SURGE", 2**63 - 1)
    core.step(actions_for(core.n_agents, 1)[0])
    assert shock_of(core) == ("DEMAND_SURGE", 2**63 - 2)


def test_schedule_starts_counts_down_and_ends():
    sc = SMALL.replace(shock_schedule=[(0, "SUPPLY_SURPLUS", 2), (5, "DEMAND_SURGE", 3)])
    core = MarketCore(sc)
    core.reset(seed=0)
    seen = [shock_of(core)]
    for act in actions_for(core.n_agents, 10):
        core.step(act)
        seen.append(shock_of(core))
    assert seen == [("SUPPLY_SURPLUS", 2), ("SUPPLY_SURPLUS", 1), ("NONE", 0), ("NONE", 0), ("NONE", 0),
                    ("DEMAND_SURGE", 3), ("DEMAND_SURGE", 2), ("DEMAND_SURGE", 1), ("NONE", 0), ("NONE", 0),
                    ("NONE", 0)]
    # and again after reset
    core.reset(seed=1)
    assert shock_of(core) == ("SUPPLY_SURPLUS", 2)


def test_scheduled_shock_replaces_active_one():
    sc = SMALL.replace(shock_schedule=[ShockEvent(1, "DEMAND_DROP", 10), ShockEvent(3, "SUPPLY_SHORTAGE", 2)])
    core = MarketCore(sc)
    core.reset(seed=0)
    seen = []
    for act in actions_for(core.n_agents, 6):
        core.step(act)
        seen.append(shock_of(core))
    assert seen == [("DEMAND_DROP", 10), ("DEMAND_DROP", 9), ("SUPPLY_SHORTAGE", 2), ("SUPPLY_SHORTAGE", 1),
                    ("NONE", 0), ("NONE", 0)]


def test_scheduled_shock_multiplies_by_its_factor():
    sc = SMALL.replace(start_hour=10.0)
    plain, shocked = MarketCore(sc), MarketCore(sc.replace(shock_schedule=[(2, "DEMAND_SURGE", 2)]))
    plain.reset(seed=4)
    shocked.reset(seed=4)
    _, con, _ = masks(plain)
    ratios = []
    for act in actions_for(plain.n_agents, 5, seed=4):
        plain.step(act)
        shocked.step(act)
        ratios.append(shocked.last_result.needed[con].sum() / plain.last_result.needed[con].sum())
    np.testing.assert_allclose(ratios, [1, 1, 2, 2, 1], rtol=1e-12)


def test_injected_shock_replaces_active_one():
    core = MarketCore("energy_small")
    core.reset(seed=0)
    core.inject_shock("DEMAND_SURGE", 10)
    core.step(actions_for(core.n_agents, 1)[0])
    assert shock_of(core) == ("DEMAND_SURGE", 9)
    core.inject_shock("SUPPLY_SURPLUS", 2)
    assert shock_of(core) == ("SUPPLY_SURPLUS", 2)
    core.step(actions_for(core.n_agents, 1)[0])
    core.step(actions_for(core.n_agents, 1)[0])
    assert shock_of(core) == ("NONE", 0)  # the surge does not come back


def test_random_shocks_with_rate():
    sc = SMALL.replace(episode_steps=60, shock_rate=0.5, shock_duration=(2, 3))
    core = MarketCore(sc)
    core.reset(seed=0)
    kinds, seen = set(), [shock_of(core)]
    for act in actions_for(core.n_agents, 59):
        core.step(act)
        seen.append(shock_of(core))
    for (k0, r0), (k1, r1) in zip(seen, seen[1:]):
        if r0 > 1:  # an active shock counts down by one and keeps its kind
            assert (k1, r1) == (k0, r0 - 1)
        elif k1 != "NONE":  # a new one starts only when none is active (or the old one just ended)
            assert 2 <= r1 <= 3
        else:
            assert r1 == 0
        kinds.add(k1)
    assert kinds - {"NONE"}, "no random shock in 60 steps at rate 0.5"
    assert len(kinds - {"NONE"}) >= 2
    # same seed, same shocks
    core2 = MarketCore(sc)
    core2.reset(seed=0)
    seen2 = [shock_of(core2)]
    for act in actions_for(core2.n_agents, 59):
        core2.step(act)
        seen2.append(shock_of(core2))
    assert seen2 == seen


def test_zero_rate_means_no_random_shocks_and_rate_one_means_always():
    never = MarketCore(SMALL.replace(shock_rate=0.0))
    always = MarketCore(SMALL.replace(shock_rate=1.0, shock_duration=(1, 1)))
    never.reset(seed=0)
    always.reset(seed=0)
    for act in actions_for(never.n_agents, 10):
        assert shock_of(never) == ("NONE", 0)
        assert shock_of(always)[0] != "NONE" and shock_of(always)[1] == 1
        never.step(act)
        always.step(act)


def test_advance_shock_unit():
    rng = np.random.default_rng(0)
    sched = (ShockEvent(4, "DEMAND_DROP", 2),)
    assert advance_shock(1, 3, 1, (), 0.0, (1, 1), rng) == (1, 2)
    assert advance_shock(1, 1, 1, (), 0.0, (1, 1), rng) == (0, 0)
    assert advance_shock(0, 0, 4, sched, 0.0, (1, 1), rng) == (2, 2)
    assert advance_shock(1, 5, 4, sched, 0.0, (1, 1), rng) == (2, 2)
    s = rng.bit_generator.state
    advance_shock(0, 0, 0, (), 0.0, (1, 1), rng)
    assert rng.bit_generator.state == s  # no draw without a rate


# ---- visibility ------------------------------------------------------------------------------------

def test_shock_columns_in_observations():
    assert set(SHOCK_COLS) == {"DEMAND_SURGE", "DEMAND_DROP", "SUPPLY_SURPLUS", "SUPPLY_SHORTAGE"}
    core = MarketCore("energy_small")
    obs = core.reset(seed=0)
    cols = list(SHOCK_COLS.values())
    assert np.all(obs[:, cols] == 0) and np.all(obs[:, REMAINING_COL] == 0)
    for kind, col in SHOCK_COLS.items():
        core.inject_shock(kind, 6)
        obs = core.observe()
        assert np.all(obs[:, col] == 1.0)
        assert np.all(obs[:, [c for c in cols if c != col]] == 0.0)
        assert np.allclose(obs[:, REMAINING_COL], 6 / SMALL.episode_steps)
        obs, *_ = core.step(actions_for(core.n_agents, 1)[0])
        assert np.all(obs[:, col] == 1.0)
        assert np.allclose(obs[:, REMAINING_COL], 5 / SMALL.episode_steps)
    core.inject_shock("DEMAND_SURGE", 1)
    obs, *_ = core.step(actions_for(core.n_agents, 1)[0])
    assert np.all(obs[:, cols] == 0) and np.all(obs[:, REMAINING_COL] == 0)


def test_shock_visible_in_env_observations_infos_and_summary():
    sc = SMALL.replace(shock_schedule=[(2, "DEMAND_DROP", 2)])
    env = channel_market_v0.parallel_env(scenario=sc)
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    col = SHOCK_COLS["DEMAND_DROP"]
    flags = [all(o[col] == 1.0 for o in obs.values())]
    infos_shock, summ = [], []
    for _ in range(5):
        obs, _, _, _, infos = env.step({a: rng.uniform(-1, 1, 4) for a in env.agents})
        flags.append(all(o[col] == 1.0 for o in obs.values()))
        infos_shock.append({Shock(i["shock"]).name for i in infos.values()})
        summ.append(env.market_summary()["shock"])
    assert flags == [False, False, True, True, False, False]
    assert infos_shock == [{"NONE"}, {"DEMAND_DROP"}, {"DEMAND_DROP"}, {"NONE"}, {"NONE"}]
    assert summ == ["NONE", "DEMAND_DROP", "DEMAND_DROP", "NONE", "NONE"]


# ---- prices react ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind,sign", [("DEMAND_SURGE", +1), ("SUPPLY_SHORTAGE", +1), ("DEMAND_DROP", -1),
                                       ("SUPPLY_SURPLUS", -1)])
def test_reference_price_reacts_in_expected_direction(kind, sign):
    steps, diffs = 6, []
    for seed in range(6):
        plain, shocked = MarketCore("energy_small"), MarketCore("energy_small")
        plain.reset(seed=seed)
        shocked.reset(seed=seed)
        shocked.inject_shock(kind, steps)
        for act in actions_for(plain.n_agents, steps, seed=100 + seed):
            plain.step(act)
            shocked.step(act)
        diffs.append(shocked.state.ref_price[0] - plain.state.ref_price[0])
    diffs = np.array(diffs)
    assert sign * diffs.mean() > 1.0, diffs  # EUR/MWh, on average over seeds
    assert (sign * diffs > 0).sum() >= 5, diffs

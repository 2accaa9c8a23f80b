"""Validation edges of the env faces (issue 8, item 7): odd action containers, bools, NumPy
numbers, scenario files, seeding without a seed, aliasing of the breakdown, bounded history."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from channelmarket.envs.channel_market import HISTORY_LEN, ChannelMarketEnv
from channelmarket.envs.core import MarketCore
from channelmarket.envs.scenario import PRESETS, Scenario, get_scenario
from channelmarket.envs.seeding import SEEDLESS_STREAM

from .state_checks import assert_untouched, snapshot


@pytest.fixture
def core() -> MarketCore:
    c = MarketCore("energy_small")
    c.reset(seed=0)
    c.step(np.zeros((c.n_agents, 4)))
    return c


@pytest.fixture
def env() -> ChannelMarketEnv:
    e = ChannelMarketEnv("energy_small")
    e.reset(seed=0)
    return e


# ---- actions ---------------------------------------------------------------------------------

def test_masked_array_actions_are_rejected_even_when_the_nan_is_masked(core):
    a = np.ma.masked_array(np.zeros((core.n_agents, 4)), mask=False)
    a[0, 0] = np.nan
    a[0, 0] = np.ma.masked
    snap = snapshot(core)
    with pytest.raises(TypeError, match="masked array"):
        core.step(a)
    with pytest.raises(TypeError, match="masked array"):
        core.step(np.ma.masked_array(np.zeros((core.n_agents, 4))))  # nothing masked: still explicit
    assert_untouched(core, snap)


@pytest.mark.filterwarnings("ignore:the matrix subclass is not the recommended way:PendingDeprecationWarning")
def test_matrix_actions_step_like_the_plain_array(core):
    twin = MarketCore("energy_small")
    twin.load_state_dict(core.state_dict())
    acts = np.random.default_rng(0).uniform(-1, 1, (core.n_agents, 4))
    o1, r1, *_ = core.step(np.matrix(acts))
    o2, r2, *_ = twin.step(acts)
    assert type(o1) is np.ndarray and o1.tobytes() == o2.tobytes() and r1.tobytes() == r2.tobytes()


def test_ragged_list_actions_are_a_type_error(core):
    with pytest.raises(TypeError, match="actions"):
        core.step([[0.0] * 4] * (core.n_agents - 1) + [[0.0] * 3])


@pytest.mark.parametrize("bad", [
    np.array([True, False, True, False]),       # one bool array among float arrays
    [True, 0.5, 0.0, 0.0],                      # a bool inside a list
    (np.bool_(True), 0.0, 0.0, 0.0),
    True,
    np.ma.masked_array(np.zeros(4), mask=[True, False, False, False]),
    np.ma.masked_array(np.full(4, np.nan), mask=True),
])
def test_one_bad_dict_action_is_rejected_like_all_of_them(env, bad):
    acts = {a: np.zeros(4, dtype=np.float32) for a in env.agents}
    acts[env.agents[3]] = bad
    before = snapshot(env.core)
    with pytest.raises(TypeError) as ei:
        env.step(acts)
    assert repr(env.agents[3]) in str(ei.value)
    assert_untouched(env.core, before)
    all_bad = {a: bad for a in env.agents}
    with pytest.raises(TypeError):
        env.step(all_bad)


@pytest.mark.filterwarnings("ignore:the matrix subclass is not the recommended way:PendingDeprecationWarning")
def test_dict_actions_of_mixed_numeric_containers_are_accepted(env):
    acts = {a: np.zeros(4, dtype=np.float32) for a in env.agents}
    acts[env.agents[0]] = [0.1, 0.2, 0.3, 0.4]
    acts[env.agents[1]] = np.zeros(4, dtype=np.int64)
    acts[env.agents[2]] = np.matrix(np.zeros(4)).A1
    env.step(acts)


@pytest.mark.skipif(np.finfo(np.longdouble).max <= np.finfo(np.float64).max, reason="long double is float64 here")
def test_long_double_actions_beyond_float64_are_refused_without_a_warning(core, env):
    """Regression: the cast to float64 overflowed with a RuntimeWarning (then the inf was refused); now only
    the ValueError, on both faces, state untouched."""
    acts = np.zeros((core.n_agents, 4), dtype=np.longdouble)
    acts[2, 0] = np.longdouble("1e400")
    rows = {a: np.zeros(4, dtype=np.longdouble) for a in env.agents}
    rows[env.agents[2]][0] = np.longdouble("1e400")
    snaps = snapshot(core), snapshot(env.core)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"actions\[2, 0\] \(ask of agent 2\) = inf"):
            core.step(acts)
        with pytest.raises(ValueError, match=f"action of {env.agents[2]!r}: ask = inf"):
            env.step(rows)
    assert_untouched(core, snaps[0])
    assert_untouched(env.core, snaps[1])


# ---- NumPy numbers and seeds -------------------------------------------------------------------

def test_numpy_integers_work_for_scenario_fields_and_round_trip():
    sc = Scenario(n_solar=np.int64(4), episode_steps=np.int32(12), base_price=np.float32(70.0),
                  shock_duration=(np.int64(2), np.int64(5)),
                  shock_schedule=[(np.int64(1), "DEMAND_SURGE", np.int64(2))])
    assert sc.n_solar == 4 and type(sc.n_solar) is int and type(sc.episode_steps) is int
    assert type(sc.base_price) is float and sc.shock_duration == (2, 5) and type(sc.shock_schedule[0].step) is int
    assert Scenario.from_yaml(sc.to_yaml()) == sc  # yaml.safe_dump needs Python numbers
    assert get_scenario("energy_small", n_agents=np.int64(40)).n_agents == 40


@pytest.mark.parametrize("kw", [{"n_solar": np.bool_(True)}, {"episode_steps": np.bool_(True)},
                                {"base_price": np.bool_(True)}])
def test_numpy_bools_are_not_numbers(kw):
    with pytest.raises(TypeError, match=list(kw)[0]):
        Scenario(**kw)


@pytest.mark.parametrize("seed", [np.int64(5), np.uint8(5), 5, [5], np.array([5])])
def test_numpy_integer_seeds_are_seeds(seed):
    c = MarketCore("energy_small")
    ref = MarketCore("energy_small").reset(seed=5 if not isinstance(seed, (list, np.ndarray)) else [5])
    assert c.reset(seed=seed).tobytes() == ref.tobytes()


@pytest.mark.parametrize("seed,exc", [(True, TypeError), (np.bool_(False), TypeError), (-1, ValueError),
                                      (1.5, TypeError), ("0", TypeError), ([1, -2], ValueError), ([True], TypeError)])
def test_bad_seeds_are_rejected_naming_the_seed(seed, exc, core):
    snap = snapshot(core)
    with pytest.raises(exc, match="seed"):
        core.reset(seed=seed)
    assert_untouched(core, snap)


# ---- scenario values and files --------------------------------------------------------------------

@pytest.mark.parametrize("value", [5, [5], (1, 2, 3), "4-16", None, (1, None)])
def test_bad_shock_duration_shapes_name_the_field(value):
    with pytest.raises(ValueError, match="shock_duration") as ei:
        Scenario(shock_duration=value)
    assert "(5, 5) for a fixed duration" in str(ei.value)


@pytest.mark.parametrize("text,line", [("n_solar: 3\nn_wind: [1, 2\nfoo: : bar\n", 3), ("n_solar: 3\n\tn_wind: 2\n", 2),
                                       ("n_solar: [\n", 2)])
def test_malformed_yaml_names_the_file_and_line(tmp_path: Path, text, line):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ValueError) as ei:
        Scenario.load(p)
    msg = str(ei.value)
    assert str(p) in msg and f"line {line}" in msg and "unicode string" not in msg, msg
    assert ei.value.__cause__ is None and ei.value.__suppress_context__


def test_malformed_json_and_bad_content_name_the_file(tmp_path: Path):
    p = tmp_path / "bad.json"
    p.write_text('{"n_solar": 3,,}')
    with pytest.raises(ValueError, match=rf"{p.name}.*line 1, column 15"):
        get_scenario(p)
    q = tmp_path / "list.yaml"
    q.write_text("- 1\n- 2\n")
    with pytest.raises(TypeError, match=rf"{q.name}.*mapping"):
        Scenario.load(q)
    r = tmp_path / "field.yml"
    r.write_text("episode_steps: 0\n")
    with pytest.raises(ValueError, match=rf"{r.name}.*episode_steps"):
        Scenario.load(r)
    s = tmp_path / "keys.yaml"
    s.write_text("1: 2\nn_solar: 3\n")
    with pytest.raises(TypeError, match=rf"{s.name}.*strings"):
        Scenario.load(s)
    b = tmp_path / "binary.yaml"
    b.write_bytes(b"\xff\xfe\x00n_solar")
    with pytest.raises(ValueError, match=rf"{b.name}.*UTF-8"):
        Scenario.load(b)


def test_yaml_tags_never_run_code(tmp_path: Path):
    p = tmp_path / "evil.yaml"
    p.write_text("name: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ValueError, match="evil.yaml"):
        Scenario.load(p)


# ---- seeding: reset() without a seed continues the seeded stream ---------------------------------

def test_seedless_reset_continues_the_seeded_stream_on_both_faces():
    def episodes(make_reset):
        return [make_reset(i).tobytes() for i in range(3)]

    a, b = MarketCore("energy_small"), MarketCore("energy_small")
    ea = episodes(lambda i: a.reset(seed=0) if i == 0 else a.reset())
    eb = episodes(lambda i: b.reset(seed=0) if i == 0 else b.reset())
    assert ea == eb                                   # reproducible
    assert len(set(ea)) == 3                          # and new episodes, not the seeded one again
    c = MarketCore("energy_small")                    # the documented rule
    assert c.reset(np.random.SeedSequence(0, spawn_key=(SEEDLESS_STREAM, 2))).tobytes() == ea[2]
    env = ChannelMarketEnv("energy_small")
    env.reset(seed=0)
    obs, _ = env.reset()
    assert np.stack(list(obs.values())).tobytes() == ea[1]
    # a new seed restarts the stream
    a.reset(seed=1)
    b.reset(seed=1)
    assert a.reset().tobytes() == b.reset().tobytes()


def test_seed_stream_survives_state_dict():
    a = MarketCore("energy_small")
    a.reset(seed=4)
    a.reset()
    b = MarketCore("energy_small")
    b.load_state_dict(a.state_dict())
    assert a.reset().tobytes() == b.reset().tobytes()


def test_first_seedless_reset_draws_a_root_it_then_continues():
    a = MarketCore("energy_small")
    a.reset()
    b = MarketCore("energy_small")
    b.load_state_dict(a.state_dict())
    assert a.reset().tobytes() == b.reset().tobytes()


# ---- breakdown does not alias the state; history is bounded --------------------------------------------

def test_breakdown_and_info_breakdown_cannot_write_into_the_state(core):
    _, _, _, _, info = core.step(np.zeros((core.n_agents, 4)))
    snap = snapshot(core)
    with pytest.raises(ValueError, match="read-only"):
        info["breakdown"][:, 1] = 1e9
    for col in core.breakdown().values():
        with pytest.raises(ValueError, match="read-only"):
            col[:] = 1e9
    assert_untouched(core, snap)


def test_env_breakdown_is_read_only_too(env):
    env.step({a: np.zeros(4) for a in env.agents})
    with pytest.raises(ValueError, match="read-only"):
        env.breakdown()["sold"][0] = 5.0


def test_history_is_bounded_and_can_be_off():
    env = ChannelMarketEnv("energy_small", episode_steps=50, history_len=5, render_mode="ansi")
    env.reset(seed=0)
    for _ in range(20):
        env.step({a: np.zeros(4) for a in env.agents})
    assert len(env.history) == 5 and env.history[-1]["t"] == 20 and env.history[0]["t"] == 16
    off = ChannelMarketEnv("energy_small", history_len=0, render_mode="ansi")
    off.reset(seed=0)
    off.step({a: np.zeros(4) for a in off.agents})
    off.inject_shock("DEMAND_SURGE", 3)
    assert len(off.history) == 0 and "DEMAND_SURGE" in off.render()
    assert ChannelMarketEnv("energy_small").history.maxlen == HISTORY_LEN
    assert ChannelMarketEnv("energy_small", history_len=None).history.maxlen is None


@pytest.mark.parametrize("bad", [-1, 1.5, True, "10"])
def test_bad_history_len_is_rejected(bad):
    with pytest.raises(ValueError, match="history_len"):
        ChannelMarketEnv("energy_small", history_len=bad)


def test_presets_unchanged_by_number_normalisation():
    for sc in PRESETS.values():
        assert Scenario.from_dict(sc.to_dict()) == sc

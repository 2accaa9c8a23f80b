"""Scenarios: presets, validation with errors naming field, value and allowed range, dict/JSON/YAML
round trips (hypothesis over random valid scenarios), files, `get_scenario`, `with_agents`."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channelmarket.envs import DEFAULT_SCENARIO, MECHANISMS, PRESETS, Scenario, ShockEvent, get_scenario
from channelmarket.envs.kinds import COUNT_FIELDS
from channelmarket.envs.scenario import _KIND_SHARES

KINDS = ("n_solar", "n_wind", "n_storage", "n_residential", "n_industrial")
SCHEDULE = (ShockEvent(2, "DEMAND_SURGE", 3), ShockEvent(10, "supply_shortage", 1))


# ---- presets ---------------------------------------------------------------------------------

EXPECTED_SIZES = {"energy_small": 12, "energy_default": 100, "energy_1k": 1_000, "energy_10k": 10_000,
                  "energy_100k": 100_000}


def test_preset_names():
    assert set(EXPECTED_SIZES) <= set(PRESETS)
    assert DEFAULT_SCENARIO in PRESETS


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_validates_and_round_trips(name):
    sc = PRESETS[name]
    assert isinstance(sc, Scenario) and sc.name == name
    assert dataclasses.replace(sc) == sc  # re-validates
    assert Scenario.from_dict(sc.to_dict()) == sc
    assert Scenario.from_json(sc.to_json()) == sc
    assert Scenario.from_yaml(sc.to_yaml()) == sc
    assert get_scenario(name) is sc
    assert sc.n_agents == sum(getattr(sc, k) for k in COUNT_FIELDS)
    assert sc.n_sellers >= 1 and sc.n_buyers >= 1
    assert sc.n_channels >= sc.n_agents - 1


@pytest.mark.parametrize("name,n", sorted(EXPECTED_SIZES.items()))
def test_preset_sizes(name, n):
    sc = PRESETS[name]
    assert sc.n_agents == n
    assert sc.n_channels == max(n - 1, round(n * sc.mean_degree / 2))


def test_energy_10k_has_about_50k_channel_slots():
    sc = PRESETS["energy_10k"]
    assert sc.n_agents == 10_000
    assert 45_000 <= sc.n_channels <= 55_000
    assert sc.channel_capacity == (50.0, 200.0)


def test_energy_small_is_small_and_short():
    sc = PRESETS["energy_small"]
    assert sc.n_agents <= 20 and sc.episode_steps <= 48
    assert all(getattr(sc, k) >= 1 for k in KINDS)


def test_scenario_is_frozen_and_hashable():
    sc = PRESETS["energy_small"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        sc.n_solar = 4  # type: ignore[misc]
    assert hash(sc) == hash(Scenario.from_dict(sc.to_dict()))
    assert isinstance(Scenario.from_dict(sc.to_dict()).channel_capacity, tuple)


# ---- round trips ---------------------------------------------------------------------------------

def test_round_trip_with_shock_schedule():
    sc = PRESETS["energy_small"].replace(shock_schedule=SCHEDULE, shock_rate=0.1, shock_duration=(2, 5))
    assert sc.shock_schedule[1].kind == "SUPPLY_SHORTAGE"  # names normalised
    d = sc.to_dict()
    assert d["shock_schedule"] == [{"step": 2, "kind": "DEMAND_SURGE", "duration": 3},
                                   {"step": 10, "kind": "SUPPLY_SHORTAGE", "duration": 1}]
    json.dumps(d)  # plain data
    for back in (Scenario.from_dict(d), Scenario.from_json(sc.to_json()), Scenario.from_yaml(sc.to_yaml())):
        assert back == sc
        assert back.shock_schedule == sc.shock_schedule
        assert all(isinstance(e, ShockEvent) for e in back.shock_schedule)


def test_schedule_entries_as_tuples_and_dicts():
    a = Scenario(episode_steps=20, shock_schedule=[(2, "DEMAND_SURGE", 3)])
    b = Scenario(episode_steps=20, shock_schedule=[{"step": 2, "kind": "demand_surge", "duration": 3}])
    c = Scenario(episode_steps=20, shock_schedule=(ShockEvent(2, "DEMAND_SURGE", 3),))
    assert a == b == c


@pytest.mark.parametrize("suffix", [".json", ".yaml", ".yml"])
def test_save_load_files(tmp_path: Path, suffix):
    sc = PRESETS["energy_default"].replace(name="saved", shock_schedule=SCHEDULE, mechanism="double_auction")
    p = tmp_path / f"market{suffix}"
    sc.save(p)
    text = p.read_text()
    parsed = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
    assert parsed["name"] == "saved" and parsed["mechanism"] == "double_auction"
    assert Scenario.load(p) == sc
    assert Scenario.load(str(p)) == sc
    assert get_scenario(p) == sc and get_scenario(str(p)) == sc
    assert get_scenario(str(p), episode_steps=12) == sc.replace(episode_steps=12)


def test_save_and_load_reject_unknown_suffix(tmp_path: Path):
    sc = PRESETS["energy_small"]
    with pytest.raises(ValueError, match=r"\.txt"):
        sc.save(tmp_path / "market.txt")
    assert not (tmp_path / "market.txt").exists()
    (tmp_path / "market.txt").write_text(sc.to_yaml())
    with pytest.raises(ValueError, match=r"\.txt"):
        Scenario.load(tmp_path / "market.txt")


def test_yaml_written_by_hand():
    text = """
name: hand
n_solar: 2
n_wind: 1
n_storage: 1
n_residential: 2
n_industrial: 1
channel_capacity: [60, 120]
mechanism: eps_auction
shock_schedule:
  - {step: 3, kind: demand_drop, duration: 2}
"""
    sc = Scenario.from_yaml(text)
    assert sc.channel_capacity == (60, 120) and sc.n_agents == 7 and sc.mechanism == "eps_auction"
    assert sc.shock_schedule == (ShockEvent(3, "DEMAND_DROP", 2),)
    assert Scenario.from_yaml(sc.to_yaml()) == sc


@st.composite
def valid_scenarios(draw):
    def pair(lo, hi):
        a = draw(st.floats(lo, hi, allow_nan=False, allow_infinity=False))
        b = draw(st.floats(a, hi, allow_nan=False, allow_infinity=False))
        return (a, b)

    counts = {k: draw(st.integers(0, 50)) for k in KINDS}
    counts["n_solar"] = max(counts["n_solar"], 1)
    counts["n_residential"] = max(counts["n_residential"], 1)
    feed_in = draw(st.floats(0.0, 1e4, allow_nan=False))
    retail = draw(st.floats(feed_in, 1e6, allow_nan=False).filter(lambda r: r > feed_in))
    base = draw(st.floats(feed_in, retail, allow_nan=False))
    episode_steps = draw(st.integers(1, 500))
    lo = draw(st.integers(1, 20))
    schedule = draw(st.lists(
        st.tuples(st.integers(0, episode_steps - 1), st.sampled_from(
            ["DEMAND_SURGE", "DEMAND_DROP", "SUPPLY_SURPLUS", "SUPPLY_SHORTAGE", "demand_surge"]),
            st.integers(1, 1000)),
        max_size=4))
    return Scenario(
        name=draw(st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12)),
        **counts,
        mean_degree=draw(st.floats(2.0, 1000.0)),
        channel_capacity=pair(1e-9, 1e12),
        initial_split=draw(st.floats(0.0, 1.0)),
        channel_open_rate=draw(st.floats(0.0, 1.0)),
        onchain_fee=draw(st.one_of(st.integers(0, 10), st.floats(0.0, 1e9))),
        step_minutes=draw(st.floats(1e-6, 1440.0)),
        episode_steps=episode_steps,
        start_hour=draw(st.floats(0.0, 24.0, exclude_max=True)),
        feed_in_tariff=feed_in, retail_tariff=retail, base_price=base,
        price_volatility=draw(st.floats(0.0, 1.0)),
        mechanism=draw(st.sampled_from(MECHANISMS)),
        negotiation_rounds=draw(st.integers(1, 1000)),
        auction_eps=draw(st.floats(1e-9, 1e6)),
        solar_capacity=pair(1e-9, 1e9),
        storage_efficiency=pair(1e-6, 1.0),
        wind_cost=pair(0.0, 1e6),
        cloud_mean=draw(st.floats(0.0, 1.0)),
        shock_schedule=schedule,
        shock_rate=draw(st.floats(0.0, 1.0)),
        shock_duration=(lo, draw(st.integers(lo, 100))),
    )


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(valid_scenarios())
def test_round_trip_random_valid_scenarios(sc):
    assert Scenario.from_dict(sc.to_dict()) == sc
    assert Scenario.from_json(sc.to_json()) == sc
    assert Scenario.from_yaml(sc.to_yaml()) == sc
    assert get_scenario(sc.to_dict()) == sc
    assert Scenario.from_dict(json.loads(json.dumps(sc.to_dict()))).to_dict() == sc.to_dict()


# ---- get_scenario ------------------------------------------------------------------------------

def test_get_scenario_resolution():
    assert get_scenario() is PRESETS[DEFAULT_SCENARIO]
    assert get_scenario(None) is PRESETS[DEFAULT_SCENARIO]
    small = PRESETS["energy_small"]
    assert get_scenario("energy_small") is small
    assert get_scenario(small) is small
    assert get_scenario(small.to_dict()) == small
    assert get_scenario("energy_small", episode_steps=7) == small.replace(episode_steps=7)
    assert get_scenario(small, mechanism="eps_auction").mechanism == "eps_auction"
    sc40 = get_scenario("energy_small", n_agents=40)
    assert sc40.n_agents == 40 and sc40 == small.with_agents(40)
    both = get_scenario("energy_small", n_agents=40, episode_steps=5)
    assert both.n_agents == 40 and both.episode_steps == 5
    assert get_scenario(n_agents=200).n_agents == 200


@pytest.mark.parametrize("spec,exc,words", [
    ("energy_huge", ValueError, ["energy_huge", "energy_small"]),
    ("market.txt", ValueError, ["market.txt"]),
    (42, TypeError, ["int"]),
    (["energy_small"], TypeError, ["list"]),
])
def test_get_scenario_bad_spec(spec, exc, words):
    with pytest.raises(exc) as ei:
        get_scenario(spec)
    for w in words:
        assert w in str(ei.value)


def test_get_scenario_missing_file(tmp_path: Path):
    with pytest.raises(FileNotFoundError):
        get_scenario(tmp_path / "nothere.yaml")


@pytest.mark.parametrize("kw,exc,words", [
    ({"episode_stepz": 3}, TypeError, ["episode_stepz"]),
    ({"n_agents": 3}, ValueError, ["n_agents", "3", ">= 5"]),
    ({"n_agents": True}, ValueError, ["n_agents", "True"]),
    ({"n_agents": 40.0}, ValueError, ["n_agents", "40.0"]),
    ({"episode_steps": 0}, ValueError, ["episode_steps", "0", "[1, "]),
])
def test_get_scenario_bad_overrides(kw, exc, words):
    with pytest.raises(exc) as ei:
        get_scenario("energy_small", **kw)
    for w in words:
        assert w in str(ei.value), (w, str(ei.value))


def test_from_dict_rejects_unknown_keys_and_non_mappings():
    d = PRESETS["energy_small"].to_dict()
    d["n_dragons"] = 3
    with pytest.raises(TypeError, match="n_dragons"):
        Scenario.from_dict(d)
    with pytest.raises(TypeError, match="n_dragons"):
        get_scenario(d)
    with pytest.raises(TypeError, match="n_dragons"):
        PRESETS["energy_small"].replace(n_dragons=3)
    with pytest.raises(TypeError, match="list"):
        Scenario.from_dict([("n_solar", 3)])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="n_dragons"):
        Scenario.from_yaml("n_dragons: 3\n")
    with pytest.raises(TypeError):
        Scenario.from_yaml("- just\n- a list\n")


# ---- validation -----------------------------------------------------------------------------------

NAN, INF = float("nan"), float("inf")

# (field overrides, exception, words that must appear in the message: field, value, allowed range)
INVALID = [
    ({"n_solar": -1}, ValueError, ["n_solar", "-1", "[0, "]),
    ({"n_wind": -5}, ValueError, ["n_wind", "-5", "[0, "]),
    ({"n_storage": -1}, ValueError, ["n_storage", "-1"]),
    ({"n_residential": -2}, ValueError, ["n_residential", "-2"]),
    ({"n_industrial": -3}, ValueError, ["n_industrial", "-3"]),
    ({"n_solar": True}, TypeError, ["n_solar", "True", "integer"]),
    ({"n_consumers": 4}, TypeError, ["n_consumers"]),
    ({"n_wind": 2.0}, TypeError, ["n_wind", "2.0", "integer"]),
    ({"n_wind": "2"}, TypeError, ["n_wind", "'2'", "integer"]),
    ({"episode_steps": True}, TypeError, ["episode_steps", "True", "integer"]),
    ({"episode_steps": 0}, ValueError, ["episode_steps", "0", "[1, "]),
    ({"episode_steps": -4}, ValueError, ["episode_steps", "-4"]),
    ({"negotiation_rounds": False}, TypeError, ["negotiation_rounds", "False"]),
    ({"negotiation_rounds": 0}, ValueError, ["negotiation_rounds", "0", "[1, 1000]"]),
    ({"name": 5}, TypeError, ["name", "5", "string"]),
    ({"mean_degree": 1.0}, ValueError, ["mean_degree", "1.0", "[2.0, "]),
    ({"mean_degree": NAN}, ValueError, ["mean_degree", "nan", "[2.0, "]),
    ({"mean_degree": True}, TypeError, ["mean_degree", "True"]),
    ({"initial_split": 1.5}, ValueError, ["initial_split", "1.5", "[0.0, 1.0]"]),
    ({"initial_split": -0.1}, ValueError, ["initial_split", "-0.1"]),
    ({"channel_open_rate": NAN}, ValueError, ["channel_open_rate", "nan", "[0.0, 1.0]"]),
    ({"channel_close_rate": 2}, ValueError, ["channel_close_rate", "2", "[0.0, 1.0]"]),
    ({"onchain_fee": -0.01}, ValueError, ["onchain_fee", "-0.01"]),
    ({"initial_wallet": INF}, ValueError, ["initial_wallet", "inf"]),
    ({"initial_wallet": "5000"}, TypeError, ["initial_wallet", "'5000'", "number"]),
    ({"step_minutes": 0.0}, ValueError, ["step_minutes", "0.0"]),
    ({"step_minutes": INF}, ValueError, ["step_minutes", "inf"]),
    ({"start_hour": 24.0}, ValueError, ["start_hour", "24.0", "24.0)"]),
    ({"start_hour": -1.0}, ValueError, ["start_hour", "-1.0"]),
    ({"feed_in_tariff": -1.0}, ValueError, ["feed_in_tariff", "-1.0"]),
    ({"feed_in_tariff": NAN}, ValueError, ["feed_in_tariff", "nan"]),
    ({"retail_tariff": INF}, ValueError, ["retail_tariff", "inf"]),
    ({"retail_tariff": 30.0, "base_price": 30.0}, ValueError, ["retail_tariff", "30.0", "feed_in_tariff", "greater"]),
    ({"retail_tariff": 20.0, "base_price": 25.0}, ValueError, ["retail_tariff", "20.0", "feed_in_tariff", "30.0"]),
    ({"base_price": 200.0}, ValueError, ["base_price", "200.0", "[30.0, 150.0]"]),
    ({"base_price": 10.0}, ValueError, ["base_price", "10.0", "[30.0, 150.0]"]),
    ({"price_reversion": 1.5}, ValueError, ["price_reversion", "1.5"]),
    ({"price_imbalance_gain": -1.0}, ValueError, ["price_imbalance_gain", "-1.0"]),
    ({"price_vwap_weight": NAN}, ValueError, ["price_vwap_weight", "nan"]),
    ({"price_volatility": INF}, ValueError, ["price_volatility", "inf"]),
    ({"volatility_bound": -INF}, ValueError, ["volatility_bound", "-inf"]),
    ({"mechanism": "lottery"}, ValueError, ["mechanism", "'lottery'", "bilateral", "double_auction", "eps_auction"]),
    ({"mechanism": None}, ValueError, ["mechanism", "None", "bilateral"]),
    ({"auction_eps": 0.0}, ValueError, ["auction_eps", "0.0"]),
    ({"grid_export_share": -0.5}, ValueError, ["grid_export_share", "-0.5"]),
    ({"grid_import_share": NAN}, ValueError, ["grid_import_share", "nan"]),
    ({"channel_capacity": (200.0, 50.0)}, ValueError, ["channel_capacity", "(200.0, 50.0)", "low <= high"]),
    ({"channel_capacity": (0.0, 50.0)}, ValueError, ["channel_capacity", "(0.0, 50.0)"]),
    ({"channel_capacity": (NAN, 50.0)}, ValueError, ["channel_capacity", "nan"]),
    ({"channel_capacity": (50.0, INF)}, ValueError, ["channel_capacity", "inf"]),
    ({"channel_capacity": (50.0, 100.0, 150.0)}, ValueError, ["channel_capacity", "(50.0, 100.0, 150.0)"]),
    ({"channel_capacity": 100.0}, ValueError, ["channel_capacity", "100.0", "pair"]),
    ({"channel_capacity": (True, 100.0)}, ValueError, ["channel_capacity", "True"]),
    ({"solar_capacity": (10.0, 3.0)}, ValueError, ["solar_capacity", "(10.0, 3.0)"]),
    ({"wind_capacity": (-1.0, 3.0)}, ValueError, ["wind_capacity", "-1.0"]),
    ({"storage_energy": (8.0, 2.0)}, ValueError, ["storage_energy", "(8.0, 2.0)"]),
    ({"storage_efficiency": (0.9, 1.2)}, ValueError, ["storage_efficiency", "1.2", "1.0"]),
    ({"residential_load": (2.0, 0.5)}, ValueError, ["residential_load", "(2.0, 0.5)"]),
    ({"industrial_load": (NAN, NAN)}, ValueError, ["industrial_load", "nan"]),
    ({"solar_cost": (5.0, 0.0)}, ValueError, ["solar_cost", "(5.0, 0.0)"]),
    ({"wind_cost": (-2.0, 8.0)}, ValueError, ["wind_cost", "-2.0"]),
    ({"storage_c_rate": 0.0}, ValueError, ["storage_c_rate", "0.0"]),
    ({"cloud_persistence": 1.1}, ValueError, ["cloud_persistence", "1.1"]),
    ({"cloud_mean": -0.2}, ValueError, ["cloud_mean", "-0.2"]),
    ({"cloud_noise": INF}, ValueError, ["cloud_noise", "inf"]),
    ({"wind_persistence": NAN}, ValueError, ["wind_persistence", "nan"]),
    ({"wind_mean": -3.0}, ValueError, ["wind_mean", "-3.0"]),
    ({"wind_noise": 1e9}, ValueError, ["wind_noise", "1000000000.0"]),
    ({"load_noise": 2.0}, ValueError, ["load_noise", "2.0"]),
    ({"shock_rate": 1.5}, ValueError, ["shock_rate", "1.5", "[0.0, 1.0]"]),
    ({"shock_rate": NAN}, ValueError, ["shock_rate", "nan"]),
    ({"shock_duration": (0, 3)}, ValueError, ["shock_duration", "(0, 3)", "1 <= low <= high"]),
    ({"shock_duration": (5, 2)}, ValueError, ["shock_duration", "(5, 2)"]),
    ({"shock_duration": (True, 3)}, ValueError, ["shock_duration", "True"]),
    ({"shock_duration": (1.5, 3)}, ValueError, ["shock_duration", "1.5"]),
    ({"episode_steps": 10, "shock_schedule": [(10, "DEMAND_SURGE", 2)]}, ValueError,
     ["shock_schedule", "10", "episode_steps = 10"]),
    ({"episode_steps": 10, "shock_schedule": [(2, "DEMAND_SURGE", 2), (99, "DEMAND_DROP", 1)]}, ValueError,
     ["shock_schedule", "99", "episode_steps = 10"]),
    ({"shock_schedule": [(2, "EARTHQUAKE", 2)]}, ValueError, ["shock_schedule", "EARTHQUAKE", "DEMAND_SURGE"]),
    ({"shock_schedule": [(2, "NONE", 2)]}, ValueError, ["shock_schedule", "NONE"]),
    ({"shock_schedule": [(2, "DEMAND_SURGE", 0)]}, ValueError, ["shock_schedule", "duration", "0", ">= 1"]),
    ({"shock_schedule": [(-1, "DEMAND_SURGE", 2)]}, ValueError, ["shock_schedule", "-1", ">= 0"]),
    ({"shock_schedule": [(1.0, "DEMAND_SURGE", 2)]}, ValueError, ["shock_schedule", "1.0"]),
    ({"shock_schedule": [(True, "DEMAND_SURGE", 2)]}, ValueError, ["shock_schedule", "True"]),
    ({"shock_schedule": [{"step": 1, "kind": "DEMAND_SURGE", "duration": 2, "when": 3}]}, ValueError,
     ["shock_schedule", "when"]),
    ({"shock_schedule": [(1, "DEMAND_SURGE")]}, ValueError, ["shock_schedule", "(1, 'DEMAND_SURGE')"]),
    ({"shock_schedule": 5}, TypeError, ["shock_schedule", "5"]),
    ({"shock_schedule": "DEMAND_SURGE"}, TypeError, ["shock_schedule", "'DEMAND_SURGE'"]),
    ({"n_solar": 0, "n_wind": 0, "n_storage": 0}, ValueError, ["sellers"]),
    ({"n_residential": 0, "n_industrial": 0, "n_storage": 0}, ValueError, ["buyers"]),
    ({"n_solar": 1, "n_wind": 0, "n_storage": 0, "n_residential": 0, "n_industrial": 0}, ValueError,
     ["n_agents", "1", "at least 2"]),
]


@pytest.mark.parametrize("kw,exc,words", INVALID, ids=[",".join(map(str, k)) + f"-{i}" for i, (k, _, _) in
                                                      enumerate(INVALID)])
def test_invalid_values_raise_naming_field_value_and_range(kw, exc, words):
    base = PRESETS["energy_small"]
    for build in (lambda: Scenario(**dict(base.to_dict(), **kw)),
                  lambda: base.replace(**kw),
                  lambda: get_scenario("energy_small", **kw)):
        with pytest.raises(exc) as ei:
            build()
        msg = str(ei.value)
        for w in words:
            assert w in msg, f"{w!r} not in {msg!r}"


def test_invalid_values_also_rejected_from_yaml_and_json():
    d = PRESETS["energy_small"].to_dict()
    d["retail_tariff"] = 10.0
    with pytest.raises(ValueError, match="retail_tariff"):
        Scenario.from_json(json.dumps(d))
    with pytest.raises(ValueError, match="retail_tariff"):
        Scenario.from_yaml(yaml.safe_dump(d))
    d = PRESETS["energy_small"].to_dict()
    d["shock_schedule"] = [{"step": 30, "kind": "DEMAND_SURGE", "duration": 1}]  # episode has 24 steps
    with pytest.raises(ValueError, match="past the episode"):
        Scenario.from_yaml(yaml.safe_dump(d))


def test_boundary_values_are_valid():
    base = PRESETS["energy_small"]
    ok = [
        {"n_storage": 0}, {"initial_split": 0.0}, {"initial_split": 1.0}, {"channel_close_rate": 1.0},
        {"start_hour": 23.99}, {"base_price": 30.0}, {"base_price": 150.0}, {"shock_rate": 1.0},
        {"shock_duration": (1, 1)}, {"channel_capacity": (50.0, 50.0)}, {"feed_in_tariff": 0.0, "base_price": 1.0},
        {"shock_schedule": [(23, "DEMAND_DROP", 100)]}, {"mean_degree": 2}, {"episode_steps": 1},
        {"n_solar": 1, "n_wind": 0, "n_storage": 0, "n_residential": 1, "n_industrial": 0},
    ]
    for kw in ok:
        sc = base.replace(**kw)
        for k, v in kw.items():
            got = getattr(sc, k)
            if k == "shock_schedule":
                assert got == tuple(ShockEvent(*e) for e in v)
            else:
                assert got == v


# ---- with_agents ----------------------------------------------------------------------------------

@pytest.mark.parametrize("base", ["energy_small", "energy_default"])
@pytest.mark.parametrize("n", [5, 6, 12, 13, 40, 99, 200, 1001, 12_345])
def test_with_agents_keeps_proportions_and_sums_to_n(base, n):
    sc0 = PRESETS[base]
    sc = sc0.with_agents(n)
    assert sc.n_agents == n
    total = sc0.n_agents
    for k in KINDS:
        want = n * getattr(sc0, k) / total
        got = getattr(sc, k)
        assert got >= 1
        assert abs(got - want) <= 2, (k, got, want)
    # every other field is kept
    assert sc.replace(**{k: getattr(sc0, k) for k in KINDS}) == sc0


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(st.lists(st.integers(0, 300), min_size=5, max_size=5).filter(lambda c: c[0] + c[1] + c[2] > 0 and
                                                                      c[2] + c[3] + c[4] > 0 and sum(c) >= 2),
       st.integers(5, 50_000))
def test_with_agents_property(counts, n):
    sc0 = Scenario(**dict(zip(KINDS, counts)))
    if n < sum(1 for c in counts if c > 0):
        return
    sc = sc0.with_agents(n)
    assert sc.n_agents == n
    for k, c in zip(KINDS, counts):
        got = getattr(sc, k)
        if c == 0:
            assert got == 0
        else:
            assert got >= 1
            assert abs(got - n * c / sum(counts)) <= 2, (k, got)
    assert sc.n_sellers >= 1 and sc.n_buyers >= 1


def test_with_agents_default_shares():
    sc = Scenario().with_agents(1000)
    for k, share in _KIND_SHARES.items():
        assert getattr(sc, k) == round(1000 * share)


@pytest.mark.parametrize("n", [4, 0, -10, True, 5.0, "100", None])
def test_with_agents_rejects_bad_counts(n):
    with pytest.raises(ValueError, match="n_agents") as ei:
        PRESETS["energy_small"].with_agents(n)  # type: ignore[arg-type]
    assert repr(n) in str(ei.value)


def test_n_channels_and_step_hours():
    sc = PRESETS["energy_small"]
    assert sc.n_channels == max(sc.n_agents - 1, round(sc.n_agents * sc.mean_degree / 2)) == 24
    assert sc.replace(mean_degree=2.0).n_channels == sc.n_agents  # 12 * 2 / 2
    assert math.isclose(sc.step_hours, sc.step_minutes / 60)

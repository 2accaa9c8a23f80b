"""Tournament harness: tiny tournaments on energy_small (schema, aggregates, pairing, byte-for-byte
reproducibility across worker counts), settings parsing, and focal/background populations."""

from __future__ import annotations

import csv
import hashlib
from collections import defaultdict

import numpy as np
import pytest

from channelmarket.envs.core import MarketCore
from channelmarket.envs.scenario import get_scenario
from channelmarket.envs.state import KIND_NAMES
from channelmarket.eval.populations import (
    SUBSTRATES, PopulationSpec, Slot, assign, check_policy, focal_background, homogeneous, policy_record,
    resolve_kinds, substrate,
)
from channelmarket.eval.runs import storage_dp_gain
from channelmarket.eval.seeds import parse_seeds
from channelmarket.eval.settings import apply_shocks, unseen_schedule
from channelmarket.eval.tables import EPISODE_COLUMNS, GROUP_COLUMNS, ID_COLUMNS, STEP_COLUMNS, SURVIVAL_COLUMNS
from channelmarket.eval.tournament import run_tournament

SEEDS = "0-1"
TINY = dict(scenarios=["energy_small"], seeds=SEEDS, mechanisms=["bilateral"], shocks=["none", "DEMAND_SURGE@10:4"],
            optimum=True, progress=False)


def tiny_populations():
    return ["truthful", "risk_factor", substrate("sellers_vs_risk_factor", "truthful")]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("tour1")
    res = run_tournament(tiny_populations(), workers=1, **TINY)
    res.write(out)
    return res, out


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_csv_schema_and_rows(tiny):
    res, out = tiny
    with open(out / "episodes.csv") as f:
        header = f.readline().strip().split(",")
    assert header == list(ID_COLUMNS + GROUP_COLUMNS + EPISODE_COLUMNS + SURVIVAL_COLUMNS)
    rows = read(out / "episodes.csv")
    # 3 populations x 2 shock settings x 2 seeds episodes, each with one "all" row
    totals = [r for r in rows if r["policy"] == r["kind"] == r["role"] == "all"]
    assert len(totals) == 12
    assert {r["shocks"] for r in rows} == {"none", "DEMAND_SURGE@10:4"}
    assert {r["seed"] for r in rows} == {"0", "1"}
    assert {r["role"] for r in rows} == {"focal", "background", "all"}
    assert {r["kind"] for r in rows} == set(KIND_NAMES[:4]) | {"all"}   # the kinds the market has (no ev)
    for r in totals:
        eff = float(r["efficiency"])
        assert 0.0 < eff <= 1.0 + 1e-9
        assert float(r["optimal_welfare"]) >= float(r["realized_welfare"]) - 1e-6
        assert r["agents"] == str(get_scenario("energy_small").n_agents)
    # per-kind totals add up to the episode's total; group rows of each kind add up to the kind's
    by_ep = defaultdict(list)
    for r in rows:
        by_ep[(r["shocks"], r["seed"], r["population"])].append(r)
    for ep in by_ep.values():
        tot = next(r for r in ep if r["policy"] == r["kind"] == "all")
        kinds = [r for r in ep if r["policy"] == "all" and r["kind"] != "all"]
        assert sum(float(r["profit_total"]) for r in kinds) == pytest.approx(float(tot["profit_total"]))
        for k in kinds:
            groups = [r for r in ep if r["policy"] != "all" and r["kind"] == k["kind"]]
            assert sum(int(g["agents"]) for g in groups) == int(k["agents"])
            assert sum(float(g["profit_total"]) for g in groups) == pytest.approx(float(k["profit_total"]))
        for r in ep:
            assert float(r["profit_per_agent"]) * int(r["agents"]) == pytest.approx(float(r["profit_total"]))
        assert len({r["welfare"] for r in ep}) == 1  # episode metrics repeat on every row
    # shocks were applied, and the shock response measured
    surge = [r for r in totals if r["shocks"] == "DEMAND_SURGE@10:4"]
    assert all(r["n_shocks"] == "1.0" for r in surge)
    assert all(np.isfinite(float(r["shock_peak_deviation"])) for r in surge)


def test_parquet_matches_csv(tiny):
    pq = pytest.importorskip("pyarrow.parquet")
    _, out = tiny
    for name in ("episodes", "steps", "exploitability"):
        table = pq.read_table(out / f"{name}.parquet")
        rows = read(out / f"{name}.csv")
        assert table.num_rows == len(rows) and table.column_names == list(rows[0])
    ep = pq.read_table(out / "episodes.parquet").to_pylist()
    assert ep[0]["profit_total"] == float(read(out / "episodes.csv")[0]["profit_total"])


def test_focal_background_rows(tiny):
    _, out = tiny
    rows = [r for r in read(out / "episodes.csv") if r["population"] == "truthful in sellers_vs_risk_factor"]
    focal = {r["kind"] for r in rows if r["role"] == "focal" and r["kind"] != "all"}
    bg = {r["kind"] for r in rows if r["role"] == "background" and r["kind"] != "all"}
    assert focal == {"solar", "wind", "storage"} and bg == {"consumer"}
    assert {r["policy"] for r in rows if r["role"] == "background"} == {"risk_factor"}
    assert {r["substrate"] for r in rows} == {"sellers_vs_risk_factor"}


def test_same_seed_same_exogenous_world(tiny):
    """Pairing over seeds relies on it: every population sees the same weather, load and shocks."""
    _, out = tiny
    seen = defaultdict(set)
    for r in read(out / "steps.csv"):
        seen[(r["shocks"], r["seed"], r["t"])].add((r["generation"], r["load"], r["shock"]))
    assert seen and all(len(v) == 1 for v in seen.values())
    assert set(read(out / "steps.csv")[0]) == set(STEP_COLUMNS)


def test_storage_dp_rows(tiny):
    res, _ = tiny
    mf = [r for r in res.exploit if r["method"] == "mf_dp"]
    assert len(mf) == 12 and all(r["kind"] == "storage" for r in mf)
    for r in mf:
        assert r["gain_per_agent"] == pytest.approx(r["deviation_profit_per_agent"] - r["base_profit_per_agent"])


def test_manifest_records_everything(tiny):
    res, _ = tiny
    m = res.manifest
    import channelmarket

    assert m["channelmarket_version"] == channelmarket.__version__
    assert m["seeds"] == [0, 1]
    assert m["mechanisms"] == ["bilateral"] and m["shocks"] == ["none", "DEMAND_SURGE@10:4"]
    assert m["scenarios"]["energy_small"] == get_scenario("energy_small").to_dict()
    assert [c["config"]["shock_schedule"] for c in m["cells"]] == [[], [{"step": 10, "kind": "DEMAND_SURGE",
                                                                          "duration": 4}]]
    assert set(m["policies"]) == {"truthful", "risk_factor"}
    assert m["reference_population"] == "truthful"


def test_reproducible_byte_for_byte_across_workers(tiny, tmp_path):
    _, out1 = tiny
    res = run_tournament(tiny_populations(), workers=2, **TINY)
    res.write(tmp_path)
    for name in ("episodes.csv", "steps.csv", "exploitability.csv"):
        assert (tmp_path / name).read_bytes() == (out1 / name).read_bytes(), name
    # every file but timing.json, the manifest and the Parquet tables included
    names = sorted(p.name for p in out1.iterdir())
    assert names == sorted(p.name for p in tmp_path.iterdir())
    assert "manifest.json" in names and "timing.json" in names
    for name in names:
        if name != "timing.json":
            assert (tmp_path / name).read_bytes() == (out1 / name).read_bytes(), name


def test_storage_dp_gain_constant_price():
    """At a constant price the best response sells the whole initial charge (less efficiency)."""
    price = np.full(24, 50.0)
    cap, soc0, eff = np.array([4.0]), np.array([2.0]), np.array([0.9])
    g = storage_dp_gain(price, cap, np.array([2.0]), eff, soc0, 1.0, realized_profit=np.array([10.0]))
    assert g["deviation"] == pytest.approx(50.0 * 2.0 * 0.9)
    assert g["gain"] == pytest.approx(50.0 * 2.0 * 0.9 - 10.0)
    # when the env credits the change of charge at eff x 50 EUR/MWh, selling the charge at 50 gains
    # nothing over holding it (the env's profit counts what the initial charge was worth)
    g = storage_dp_gain(price, cap, np.array([2.0]), eff, soc0, 1.0, np.array([0.0]), terminal_value=0.9 * 50.0)
    assert g["deviation"] == pytest.approx(0.0, abs=1e-9)
    # a price spike is worth trading for: buy at 20, sell at 100
    price = np.r_[np.full(12, 20.0), np.full(12, 100.0)]
    g = storage_dp_gain(price, cap, np.array([2.0]), eff, soc0, 1.0, np.array([0.0]), terminal_value=0.9 * 50.0)
    assert g["deviation"] > 0


# ---- settings ---------------------------------------------------------------------------------------------

def test_parse_seeds():
    assert parse_seeds("0-9") == list(range(10))
    assert parse_seeds("0,3,5-7") == [0, 3, 5, 6, 7]
    assert parse_seeds(range(3)) == [0, 1, 2]
    assert parse_seeds(4) == [4]
    for bad in ("", "a", "3-1", "1,1", "-2"):
        with pytest.raises(ValueError, match="seeds"):
            parse_seeds(bad)


def test_shock_settings():
    sc = get_scenario("energy_default")
    assert apply_shocks(sc, "none").shock_rate == 0 and apply_shocks(sc, "none").shock_schedule == ()
    assert apply_shocks(sc, "random").shock_rate == 0.02
    assert apply_shocks(sc, "random:0.1").shock_rate == 0.1
    ev = apply_shocks(sc, "DEMAND_SURGE@30:8+supply_shortage@50:4").shock_schedule
    assert [(e.step, e.kind, e.duration) for e in ev] == [(30, "DEMAND_SURGE", 8), (50, "SUPPLY_SHORTAGE", 4)]
    un = unseen_schedule(sc)   # 15-minute steps: 10:00 and 17:00, 5 h each
    assert [(e.step, e.kind, e.duration) for e in un] == [(40, "SUPPLY_SHORTAGE", 20), (68, "DEMAND_SURGE", 20)]
    small = unseen_schedule(get_scenario("energy_small"))
    assert [(e.step, e.duration) for e in small] == [(10, 5), (17, 5)]
    for bad, word in (("FOO@3:2", "FOO"), ("DEMAND_SURGE@500:2", "past the episode"), ("sometimes", "allowed")):
        with pytest.raises(ValueError, match=word):
            apply_shocks(sc, bad)


def test_tournament_rejects_bad_input():
    with pytest.raises(ValueError, match="unknown policy 'nope'.*truthful"):
        run_tournament(["nope"], scenarios=["energy_small"], seeds="0", progress=False)
    with pytest.raises(ValueError, match="unknown scenario 'nope'.*energy_small"):
        run_tournament(["truthful"], scenarios=["nope"], seeds="0", progress=False)
    with pytest.raises(ValueError, match="unknown mechanism 'barter'.*double_auction"):
        run_tournament(["truthful"], scenarios=["energy_small"], seeds="0", mechanisms=["barter"], progress=False)


# ---- populations -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("scenario", ["energy_small", "energy_default"])
def test_every_agent_assigned_exactly_once(scenario):
    core = MarketCore(scenario)
    core.reset(seed=0)
    kind = core.agents.kind
    specs = [homogeneous("truthful"), focal_background("truthful", "solar,wind", ["risk_factor", "zero_intelligence"])]
    specs += [substrate(s, "truthful") for s in SUBSTRATES]
    for spec in specs:
        pairs = assign(spec, kind)
        count = np.zeros(kind.shape[0], dtype=int)
        for slot, idx in pairs:
            count[idx] += 1
            assert set(kind[idx].tolist()) <= {KIND_NAMES.index(k) for k in slot.kinds}
        assert (count == 1).all(), spec.name
        focal = np.concatenate([idx for s, idx in pairs if s.role == "focal"])
        present = {KIND_NAMES[k] for k in kind.tolist()}
        assert set(KIND_NAMES[k] for k in kind[focal]) == set(spec.focal_kinds) & present


def test_mixed_background_round_robin():
    core = MarketCore("energy_default")
    core.reset(seed=0)
    kind = core.agents.kind
    pairs = assign(substrate("mixed_background", "truthful"), kind)
    consumers = np.flatnonzero(kind == KIND_NAMES.index("consumer"))
    bg = {s.policy: idx for s, idx in pairs if s.role == "background"}
    assert list(bg) == ["risk_factor", "truthful", "zero_intelligence", "fixed_markup"]
    for i, idx in enumerate(bg.values()):
        assert idx.tolist() == consumers[i::4].tolist()


def test_assignment_errors_name_the_agents():
    kind = np.array([0, 0, 1, 2, 3, 3])
    spec = PopulationSpec("gappy", (Slot("truthful", ("solar", "wind"), "focal"),))
    with pytest.raises(ValueError, match=r"covered by no slot: 3 \(storage\), 4 \(consumer\)"):
        assign(spec, kind)
    spec = PopulationSpec("double", (Slot("truthful", ("all",), "focal"), Slot("random", ("consumer",))))
    with pytest.raises(ValueError, match=r"covered by several slots: 4 \(consumer\), 5 \(consumer\)"):
        assign(spec, kind)
    with pytest.raises(ValueError, match="unknown agent kind 'nuclear'"):
        resolve_kinds("solar,nuclear")
    assert resolve_kinds("sellers") == ("solar", "wind", "storage", "ev")   # derived from the kinds' roles
    assert resolve_kinds("buyers") == ("storage", "consumer", "ev")
    with pytest.raises(ValueError, match="unknown substrate 'x'.*sellers_vs_risk_factor"):
        substrate("x", "truthful")


def test_policy_specs_and_model_hashes(tmp_path):
    assert check_policy("mean_field") == "mean_field"
    with pytest.raises(ValueError, match="unknown policy 'foo'; allowed: .*risk_factor.*mean_field"):
        check_policy("foo")
    with pytest.raises(ValueError, match="no trained model"):
        check_policy(str(tmp_path / "missing.zip"))
    f = tmp_path / "model.zip"
    f.write_bytes(b"not really a model")
    rec = policy_record(str(f))
    assert rec["type"] == "learned" and rec["path"] == str(f.resolve())
    assert rec["sha256"] == {"model.zip": hashlib.sha256(b"not really a model").hexdigest()}
    assert policy_record("truthful") == {"type": "baseline"}

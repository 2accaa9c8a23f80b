"""The tournament on the supply chain: supply_chain_v0 presets are scenarios of `eval.tournament`
and `channelmarket eval`, with the same tables, seeds, manifests and report as the energy market."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from channelmarket.envs.scenario import get_scenario
from channelmarket.envs.supply_chain.scenario import make_scenario
from channelmarket.eval.cli import main
from channelmarket.eval.markets import SUPPLY_CHAIN_KINDS, market_population, runs_on
from channelmarket.eval.populations import assign, focal_background, homogeneous, resolve_kinds, substrate
from channelmarket.eval.tables import EPISODE_TABLE
from channelmarket.eval.tournament import prepare_tournament, run_tournament

SHORT = make_scenario("supply_chain_small", days=15)      # a short episode: tests stay fast
KW = dict(seeds="0-1", optimum=False, equilibrium=False, progress=False)


@pytest.fixture(scope="module")
def tour(tmp_path_factory):
    out = tmp_path_factory.mktemp("sc_tour")
    pops = ["maser", "risk_factor", focal_background("truthful", "miller", "maser")]
    res = run_tournament(pops, scenarios=[SHORT], shocks=["none", "move_key@5"], **KW)
    res.write(out)
    return res, out


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_same_tables_with_the_supply_chain_kinds_and_survival(tour):
    res, out = tour
    with open(out / "episodes.csv") as f:
        assert f.readline().strip().split(",") == list(EPISODE_TABLE)
    rows = read(out / "episodes.csv")
    totals = [r for r in rows if r["policy"] == r["kind"] == r["role"] == "all"]
    assert len(totals) == 3 * 2 * 2                       # populations x shock settings x seeds
    assert {r["mechanism"] for r in rows} == {"maser"}
    assert {r["kind"] for r in rows} == set(SUPPLY_CHAIN_KINDS) | {"all"}
    for r in totals:
        assert 0.0 <= float(r["alive_share"]) <= 1.0 and 0.0 < float(r["lifespan_per_agent"]) <= 15.0
        assert float(r["steps"]) == 15 and float(r["trades_per_step"]) > 0
        assert abs(float(r["welfare"])) < 1e-6             # money only moves between agents
    focal = [r for r in rows if r["population"].startswith("truthful") and r["role"] == "focal" and r["kind"] == "miller"]
    assert focal and all(r["policy"] == "truthful" for r in focal)
    shocked = [r for r in read(out / "steps.csv") if r["shocks"] == "move_key@5"]
    assert [r["shock"] for r in shocked if r["seed"] == "0" and r["population"] == "maser"].count("MOVE_KEY_AGENT") == 1
    m = json.loads((out / "manifest.json").read_text())
    assert m["scenarios"]["supply_chain_small"]["days"] == 15 and m["mechanisms"] == ["maser"]
    again = run_tournament(["maser", "risk_factor", focal_background("truthful", "miller", "maser")], scenarios=[SHORT],
                           shocks=["none", "move_key@5"], **KW)
    again.write(out / "again")
    for name in ("episodes.csv", "steps.csv", "manifest.json"):   # the same seed writes the same bytes
        assert (out / "again" / name).read_bytes() == (out / name).read_bytes()


def test_report_has_the_survival_section(tour):
    from channelmarket.eval.report import write_report

    _, out = tour
    text = write_report(out, plots=False).read_text()
    assert "## The supply chain: survival" in text and "miller alive" in text
    assert "## Headline" not in text                      # the energy headline needs an energy cell


def test_one_run_over_both_economies_places_each_population_on_its_market():
    pops = ["maser", "truthful", substrate("sellers_vs_risk_factor", "truthful")]
    plan = prepare_tournament(pops, ["energy_small", SHORT], seeds="0", shocks=["none"], optimum=False,
                              equilibrium=False)
    cells = {(j.scenario_label, j.population.name) for j in plan.jobs}
    assert ("supply_chain_small", "maser") in cells and ("energy_small", "maser") not in cells
    assert ("energy_small", "truthful") in cells and ("supply_chain_small", "truthful") in cells
    assert ("energy_small", "truthful in sellers_vs_risk_factor") in cells
    assert ("supply_chain_small", "truthful in sellers_vs_risk_factor") not in cells
    plan = prepare_tournament(["truthful"], ["energy_small", SHORT], seeds="0", mechanisms=["double_auction"],
                              shocks=["none"], optimum=False, equilibrium=False)
    assert plan.manifest["mechanisms"] == ["double_auction", "maser"]
    assert {j.mechanism for j in plan.jobs} == {"double_auction", "maser"}


@pytest.mark.parametrize("kw, match", [
    (dict(populations=["maser"], scenarios=["energy_small"]), "supply-chain scenarios only"),
    (dict(populations=["mean_field"], scenarios=[SHORT]), "energy scenarios only"),
    (dict(populations=["truthful"], scenarios=[SHORT], shocks=["random"]), "move_key@DAY"),
    (dict(populations=["truthful"], scenarios=[SHORT], shocks=["move_key@99"]), "0 <= DAY < 15"),
    (dict(populations=[substrate("buyers_vs_truthful", "risk_factor")], scenarios=[SHORT]), "not kinds of the"),
])
def test_bad_settings_are_refused_before_anything_runs(kw, match):
    kw = dict(dict(seeds="0", shocks=["none"], optimum=False, equilibrium=False), **kw)
    with pytest.raises(ValueError, match=match):
        prepare_tournament(**kw)


def test_maser_is_a_policy_name_but_not_an_energy_baseline():
    from channelmarket.eval.populations import baseline_names, check_policy

    assert "maser" not in baseline_names()            # the energy faces (dashboard) list these
    assert "maser" in baseline_names(builtin=True) and check_policy("maser") == "maser"


def test_kinds_resolve_against_either_market():
    assert resolve_kinds("millers,baker") == ("miller", "baker")
    assert resolve_kinds("sellers") == ("solar", "wind", "storage", "ev")     # the energy alias wins
    assert resolve_kinds("seller") == ("seller",)
    with pytest.raises(ValueError, match="supply chain's kinds"):
        resolve_kinds("mill")
    spec = market_population(homogeneous("truthful"), "supply_chain")
    kind = np.array([0, 0, 1, 2, 3, 3])
    (slot, idx), = assign(spec, kind, kind_names=SUPPLY_CHAIN_KINDS)
    assert idx.tolist() == list(range(6))
    energy = get_scenario("energy_small")
    assert runs_on(homogeneous("truthful"), SHORT) and runs_on(homogeneous("truthful"), energy)
    assert runs_on(homogeneous("maser"), SHORT) and not runs_on(homogeneous("maser"), energy)


def test_the_eval_command_on_the_supply_chain(tmp_path, capsys):
    out = tmp_path / "o"
    rc = main(["--scenario", "supply_chain_small", "--seeds", "0", "--policies", "maser,eps_auction", "--shocks", "none",
               "--optimum", "off", "--equilibrium", "off", "--no-plots", "--no-progress", "--workers", "1",
               "--out", str(out)])
    assert rc == 0
    rows = read(out / "episodes.csv")
    assert {r["population"] for r in rows} == {"maser", "eps_auction"}
    assert "## The supply chain: survival" in (out / "report.md").read_text()

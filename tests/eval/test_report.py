"""Report statistics (t intervals and paired differences against scipy), the Markdown report's
sections and numbers, the PNG plots, and the record of a learned model's file hash."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
from scipy import stats

from channelmarket.eval.exploitability import ExploitConfig
from channelmarket.eval.populations import substrate
from channelmarket.eval.report import write_report
from channelmarket.eval.statistics import mean_ci, paired_diff
from channelmarket.eval.tables import read_table
from channelmarket.eval.tournament import run_tournament

pytest.importorskip("matplotlib")


# ---- statistics -------------------------------------------------------------------------------------------

def test_mean_ci_matches_scipy_t_interval():
    x = np.array([1.0, 2.0, 4.0, 7.0, 11.0])
    lo, hi = stats.t.interval(0.95, df=x.size - 1, loc=x.mean(), scale=stats.sem(x))
    m, half, n = mean_ci(x)
    assert n == 5 and m == pytest.approx(5.0)
    assert half == pytest.approx((hi - lo) / 2)
    lo, hi = stats.t.interval(0.9, df=4, loc=x.mean(), scale=stats.sem(x))
    assert mean_ci(x, 0.9)[1] == pytest.approx((hi - lo) / 2)
    # undefined values are left out and counted out
    m, half, n = mean_ci([1.0, float("nan"), 3.0])
    assert (m, n) == (2.0, 2) and half == pytest.approx(stats.t.ppf(0.975, 1) * math.sqrt(2) / math.sqrt(2))
    assert mean_ci([4.0])[2] == 1 and math.isnan(mean_ci([4.0])[1])
    assert math.isnan(mean_ci([])[0])


def test_paired_difference_matches_scipy():
    x = {0: 10.0, 1: 12.0, 2: 15.0, 3: 9.0, 9: 1.0}           # seed 9 has no partner
    ref = {0: 8.0, 1: 11.0, 2: 11.0, 3: 9.0, 4: 100.0}        # seed 4 neither
    d = np.array([2.0, 1.0, 4.0, 0.0])
    out = paired_diff(x, ref)
    lo, hi = stats.t.interval(0.95, df=3, loc=d.mean(), scale=stats.sem(d))
    assert out["n"] == 4 and out["mean"] == pytest.approx(1.75)
    assert out["half"] == pytest.approx((hi - lo) / 2)
    assert out["p"] == pytest.approx(stats.ttest_rel([10, 12, 15, 9], [8, 11, 11, 9]).pvalue)
    # pairing removes the common per-seed variation: the paired interval is far tighter
    common = np.array([100.0, -50.0, 30.0, 500.0, -200.0])
    a = {i: c + 1.0 + 0.1 * i for i, c in enumerate(common)}
    b = {i: c for i, c in enumerate(common)}
    assert paired_diff(a, b)["half"] < 0.2 < mean_ci(list(a.values()))[1]
    assert math.isnan(paired_diff({0: 1.0}, {0: 0.0})["p"])
    assert paired_diff({0: float("nan"), 1: 2.0}, {0: 1.0, 1: 1.0})["n"] == 1


# ---- the report ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    res = run_tournament(["truthful", "mean_field", substrate("sellers_vs_risk_factor", "truthful")],
                         scenarios=["energy_small"], seeds="0-1", mechanisms=["bilateral", "double_auction"],
                         shocks=["DEMAND_SURGE@10:4"], progress=False, command="channelmarket eval --test",
                         exploit=ExploitConfig(kinds=("consumer",), iterations=1, popsize=2, elite=1,
                                               train_seeds=(100,)))
    res.write(out)
    write_report(out)
    return out


def test_report_sections_and_plots(folder):
    text = (folder / "report.md").read_text()
    for heading in ("# Evaluation report", "## Headline: energy_small", "## Plots", "## Focal versus background",
                    "### Substrate `sellers_vs_risk_factor`", "## Exploitability", "## Paired differences over seeds",
                    "### Mechanisms: each mechanism minus `bilateral`", "## Results by cell", "## Reproducibility"):
        assert heading in text, heading
    import channelmarket

    assert f"channelmarket version: `{channelmarket.__version__}`" in text
    assert "command: `channelmarket eval --test`" in text
    assert "seeds: 0, 1" in text and "mechanisms: bilateral, double_auction" in text
    assert '"n_solar": 3' in text                    # the full scenario
    assert "**optimum**" in text and "1 (by definition)" in text
    assert "`cem`: cross-entropy search" in text and "`mf_dp`" in text
    from matplotlib.image import imread

    for png in ("price_paths.png", "profit_by_kind.png", "efficiency_by_mechanism.png"):
        assert f"]({png})" in text
        img = imread(folder / png)
        assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 200


def test_report_numbers_come_from_the_csv(folder):
    rows = [r for r in read_table(folder / "episodes.csv")
            if r["population"] == "mean_field" and r["mechanism"] == "bilateral" and r["kind"] == "all"
            and r["policy"] == "all"]
    m, half, n = mean_ci(r["efficiency"] for r in rows)
    assert n == 2
    line = next(ln for ln in (folder / "report.md").read_text().splitlines()
                if ln.startswith("| mean_field | bilateral |"))
    assert f"{m:,.3f} ± {half:,.3f}" in line
    # paired welfare difference of mean_field vs the reference (truthful), same seeds
    w = {r["seed"]: r["welfare"] for r in rows}
    ref = {r["seed"]: r["welfare"] for r in read_table(folder / "episodes.csv")
           if r["population"] == "truthful" and r["mechanism"] == "bilateral" and r["kind"] == "all"
           and r["policy"] == "all"}
    pd = paired_diff(w, ref)
    paired = (folder / "report.md").read_text().split("## Paired differences")[1]
    row = next(ln for ln in paired.splitlines() if ln.startswith("| mean_field |"))
    assert f"{pd['mean']:,.0f} ± {pd['half']:,.0f}" in row


def test_report_is_a_pure_function_of_the_files(folder):
    before = (folder / "report.md").read_bytes()
    write_report(folder)
    assert (folder / "report.md").read_bytes() == before


def test_learned_model_in_a_tournament(tmp_path):
    """A learned policy by path: it runs as focal in a substrate and its file hash is recorded."""
    torch = pytest.importorskip("torch")
    from channelmarket.envs.obs_schema import observation_schema
    from channelmarket.envs.observations import N_OBS
    from channelmarket.policies.ippo_policy import MODEL_FORMAT
    from channelmarket.policies.nets import GaussianActor, RunningMeanStd

    torch.manual_seed(0)
    actor = GaussianActor(N_OBS, 4, [8], "tanh")
    model = {"format": MODEL_FORMAT, "version": 1, "obs_dim": N_OBS, "act_dim": 4, "hidden_sizes": [8],
             "activation": "tanh", "actor": {k: v.detach() for k, v in actor.state_dict().items()},
             "norm_obs": True, "clip_obs": 10.0, "obs_rms": RunningMeanStd((N_OBS,)).state_dict(),
             "learners": ["solar", "wind", "storage"], "algorithm": "ippo",
             "obs_schema": observation_schema("energy_small").to_dict()}   # as the IPPO trainer saves it
    path = tmp_path / "ippo_model.pt"
    torch.save(model, path)
    res = run_tournament([substrate("sellers_vs_risk_factor", str(path))], scenarios=["energy_small"], seeds="0",
                         optimum=False, equilibrium=False, progress=False)
    out = tmp_path / "out"
    res.write(out)
    write_report(out, plots=False)
    focal = [r for r in res.rows if r["role"] == "focal" and r["kind"] == "all"]
    assert [r["policy"] for r in focal] == [str(path)]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert res.manifest["policies"][str(path)]["sha256"] == {"ippo_model.pt": digest}
    assert digest in (out / "report.md").read_text()

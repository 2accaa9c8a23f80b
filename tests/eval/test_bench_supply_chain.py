"""`eval.bench_supply_chain`: the days are timed back to back, the query alone after them."""

from __future__ import annotations

from channelmarket.eval import bench_supply_chain


def test_days_back_to_back_and_the_query_after(monkeypatch):
    calls: list = []
    real_query = bench_supply_chain.neighbourhood
    monkeypatch.setattr(bench_supply_chain, "neighbourhood", lambda *a: (calls.append("query"), real_query(*a))[1])
    real_core = bench_supply_chain.core_for

    def recording_core(n):
        core = real_core(n)
        step = core.step
        core.step = lambda: (calls.append("day"), step())[1]
        return core

    monkeypatch.setattr(bench_supply_chain, "core_for", recording_core)
    r = bench_supply_chain.time_steps(300, 3, warmup=2)
    assert calls == ["day"] * 5 + ["query"] * 3
    assert 0.0 < r["best_ms"] <= r["wall_ms"] and r["query_ms"] > 0.0
    assert 0 < r["alive"] <= 300 and r["n"] == 300

"""The dashboard server without a browser (Starlette's TestClient over the WebSocket): the page and
the bundled D3 are served, EXECUTE streams frames, one shock at a time, PAUSE resets, several pages
watch one simulation, bad messages get an error back and never stop the server, other sites' pages
are refused, replays and recordings, 10,000 agents get a sampled topology, the command line."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from channelmarket.cli import main as cli_main
from channelmarket.eval.dashboard.server import STATIC, create_app

FAST = 0.02


def until(ws, pred, limit: int = 2000):
    """Messages from `ws` up to and including the first one `pred` accepts."""
    seen = []
    for _ in range(limit):
        m = ws.receive_json()
        seen.append(m)
        if pred(m):
            return seen
    raise AssertionError(f"no matching message in {limit}: last {seen[-3:]}")


def snapshot(ws):
    return until(ws, lambda m: m["type"] == "history")


def is_frame_at(t):
    return lambda m: m["type"] == "frame" and m["frame"]["summary"]["t"] >= t


@pytest.fixture()
def client(make_session):
    with TestClient(create_app(make_session("--scenario", "energy_small"))) as c:
        yield c


def test_page_and_bundled_d3_are_served_without_a_cdn(client):
    page = client.get("/")
    assert page.status_code == 200 and "EXECUTE" in page.text and "PAUSE" in page.text
    for path in ("/static/dashboard.js", "/static/dashboard.css", "/static/vendor/d3.min.js"):
        assert client.get(path).status_code == 200, path
    # nothing is loaded from another host at run time
    for f in ("index.html", "dashboard.js", "dashboard.css"):
        src = (STATIC / f).read_text()
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", src) and not re.search(r"https?://", src), f


def test_d3_bundle_matches_the_lockfile_and_recorded_hash():
    vendor = STATIC / "vendor"
    recorded = dict(reversed(line.split()) for line in (vendor / "SHA256SUMS").read_text().splitlines())
    data = (vendor / "d3.min.js").read_bytes()
    assert hashlib.sha256(data).hexdigest() == recorded["d3.min.js"]
    lock = json.loads((STATIC.parent / "web" / "package-lock.json").read_text())
    pinned = lock["packages"]["node_modules/d3"]["version"]
    assert data.startswith(f"// https://d3js.org v{pinned} ".encode())
    assert json.loads((STATIC.parent / "web" / "package.json").read_text())["dependencies"]["d3"] == pinned


def test_execute_shock_pause(client):
    with client.websocket_connect("/ws") as ws:
        first = snapshot(ws)
        assert [m["type"] for m in first] == ["options", "status", "history"]
        assert first[0]["steps"] == 100 and first[0]["interval"] == 1.0        # the seed's pace
        assert set(first[0]["shocks"]) == {"DEMAND_SURGE", "DEMAND_DROP", "SUPPLY_SURPLUS", "SUPPLY_SHORTAGE"}
        ws.send_json({"type": "shock", "kind": "DEMAND_SURGE"})
        assert "EXECUTE" in until(ws, lambda m: m["type"] == "error")[-1]["message"]   # nothing runs yet
        ws.send_json({"type": "execute", "scenario": "energy_small", "steps": 30, "interval": FAST})
        msgs = until(ws, is_frame_at(3))
        f = msgs[-1]["frame"]
        assert f["n_agents"] == 12 and f["agents"] is not None and len(f["nodes"]["id"]) == 12
        assert msgs[-1]["trades_total"] >= 0
        ws.send_json({"type": "shock", "kind": "SUPPLY_SHORTAGE", "duration": 5})
        shock = until(ws, lambda m: m["type"] == "shock")[-1]
        assert shock["kind"] == "SUPPLY_SHORTAGE" and shock["duration"] == 5
        ws.send_json({"type": "shock", "kind": "DEMAND_DROP"})
        err = until(ws, lambda m: m["type"] == "error")[-1]["message"]
        assert "one shock at a time" in err and "SUPPLY_SHORTAGE" in err
        shocked = until(ws, lambda m: m["type"] == "frame" and m["frame"]["summary"]["shock"] == "SUPPLY_SHORTAGE")
        assert shocked[-1]["frame"]["summary"]["shock_remaining"] >= 1
        ws.send_json({"type": "speed", "interval": 0.05})
        assert until(ws, lambda m: m["type"] == "status")[-1]["interval"] == 0.05
        ws.send_json({"type": "pause"})
        until(ws, lambda m: m["type"] == "reset")
        status = until(ws, lambda m: m["type"] == "status")[-1]
        assert status["status"] == "idle"
        assert client.get("/health").json()["status"] == "idle"


def test_episode_finishes_and_total_trades_add_up(client):
    with client.websocket_connect("/ws") as ws:
        snapshot(ws)
        ws.send_json({"type": "execute", "steps": 6, "interval": FAST, "scenario": "energy_small", "seed": 3})
        msgs = until(ws, lambda m: m["type"] == "status" and m["status"] == "finished")
        frames = [m for m in msgs if m["type"] == "frame"]
        assert [m["frame"]["summary"]["t"] for m in frames] == list(range(7))
        assert frames[-1]["trades_total"] == sum(m["frame"]["summary"]["trades"] for m in frames)


def test_several_pages_watch_one_simulation(client):
    with client.websocket_connect("/ws") as a, client.websocket_connect("/ws") as b:
        snapshot(a), snapshot(b)
        a.send_json({"type": "execute", "steps": 8, "interval": FAST, "scenario": "energy_small"})
        fa = [m["frame"]["summary"] for m in until(a, lambda m: m["type"] == "status" and m["status"] == "finished")
              if m["type"] == "frame"]
        fb = [m["frame"]["summary"] for m in until(b, lambda m: m["type"] == "status" and m["status"] == "finished")
              if m["type"] == "frame"]
        assert fa == fb and len(fa) == 9
        with client.websocket_connect("/ws") as c:           # a page that joins late gets the history
            late = snapshot(c)
            assert [s["t"] for s in late[-1]["summaries"]] == list(range(9))
            assert c.receive_json()["type"] == "frame"


def test_commands_from_two_pages_at_once_run_one_simulation(client):
    with client.websocket_connect("/ws") as a, client.websocket_connect("/ws") as b:
        snapshot(a), snapshot(b)
        for _ in range(3):
            a.send_json({"type": "execute", "steps": 4, "interval": FAST, "scenario": "energy_small", "seed": 1})
            b.send_json({"type": "execute", "steps": 4, "interval": FAST, "scenario": "energy_default", "seed": 2})
        msgs = until(a, lambda m: m["type"] == "status" and m["status"] == "finished")
        last = max(i for i, m in enumerate(msgs) if m["type"] == "reset")
        frames = [m["frame"] for m in msgs[last:] if m["type"] == "frame"]
        assert [f["summary"]["t"] for f in frames] == [0, 1, 2, 3, 4]      # one loop, no step twice
        assert {f["n_agents"] for f in frames} == {100}                     # the last EXECUTE won


BAD = [
    ("{not json", "not JSON"),
    ("[1, 2]", "JSON object"),
    ('{"type": "launch"}', "allowed: execute"),
    ('{"type": "execute", "steps": -4}', "steps"),
    ('{"type": "execute", "steps": 2.5}', "integer"),
    ('{"type": "execute", "interval": NaN}', "non-finite"),
    ('{"type": "execute", "scenario": "../../etc/passwd"}', "scenario"),
    ('{"type": "execute", "population": "/tmp/evil.zip"}', "population"),
    ('{"type": "execute", "rm": 1}', "unknown field"),
    ('{"type": "shock", "kind": "METEOR"}', "METEOR"),
    ('{"type": "shock"}', "missing"),
    ('{"type": "speed", "interval": 0}', "interval"),
    ('{"type": "speed", "interval": true}', "interval"),
    ('{"type": "replay", "recording": "nope.jsonl"}', "recording"),
    ("x" * 5000, "at most"),
    ("[" * 100_00 + "]" * 100_00, ""),
]


@pytest.mark.parametrize("text, match", BAD, ids=range(len(BAD)))
def test_bad_messages_get_an_error_and_the_server_goes_on(client, text, match):
    with client.websocket_connect("/ws") as ws:
        snapshot(ws)
        ws.send_text(text)
        err = until(ws, lambda m: m["type"] == "error")[-1]["message"]
        assert match in err
        ws.send_bytes(b"\x00\x01")
        assert "not binary" in until(ws, lambda m: m["type"] == "error")[-1]["message"]
        ws.send_json({"type": "execute", "steps": 2, "interval": FAST, "scenario": "energy_small"})  # still works
        until(ws, lambda m: m["type"] == "status" and m["status"] == "finished")


def test_other_sites_pages_are_refused(client):
    with pytest.raises(WebSocketDisconnect):
        with client.websocket_connect("/ws", headers={"origin": "http://evil.example"}) as ws:
            ws.receive_json()
    with client.websocket_connect("/ws", headers={"origin": "http://testserver"}) as ws:
        assert ws.receive_json()["type"] == "options"


def test_record_and_replay(tmp_path, make_session):
    session = make_session("--scenario", "energy_small", "--record", str(tmp_path))
    with TestClient(create_app(session)) as c, c.websocket_connect("/ws") as ws:
        snapshot(ws)
        ws.send_json({"type": "execute", "steps": 5, "interval": FAST, "scenario": "energy_small"})
        live = [m["frame"]["summary"] for m in until(ws, lambda m: m["type"] == "options" and m["recordings"])
                if m["type"] == "frame"]
        name = session.options.recordings[0]
        assert (tmp_path / name).is_file() and name.endswith(".jsonl.gz")
        ws.send_json({"type": "replay", "recording": name, "interval": FAST})
        msgs = until(ws, lambda m: m["type"] == "status" and m["status"] == "finished")
        replayed = [m["frame"]["summary"] for m in msgs if m["type"] == "frame"]
        assert replayed == live and all(m["source"] == "replay" for m in msgs if m["type"] == "frame")
        ws.send_json({"type": "shock", "kind": "DEMAND_SURGE"})         # a replay takes no shocks
        assert "no live simulation" in until(ws, lambda m: m["type"] == "error")[-1]["message"]


def test_10k_agents_get_a_sampled_topology(make_session):
    with TestClient(create_app(make_session("--scenario", "energy_10k"))) as c, c.websocket_connect("/ws") as ws:
        snapshot(ws)
        ws.send_json({"type": "execute", "scenario": "energy_10k", "steps": 1, "interval": FAST})
        msgs = until(ws, lambda m: m["type"] == "status" and m["status"] == "finished")
        f = [m for m in msgs if m["type"] == "frame"][-1]["frame"]
        assert f["n_agents"] == 10_000 and f["agents"] is None
        assert len(f["nodes"]["id"]) == 300 and f["channels"]["sampled"]
        assert 0 < len(f["channels"]["u"]) <= 1500 and f["channels"]["total"] > 10_000
        assert len(json.dumps(f)) < 200_000          # a page-sized message


def test_cli_refuses_bad_arguments(tmp_path, capsys):
    assert cli_main(["dashboard", "--scenario", "no_such_market", "--no-browser"]) == 2
    assert "neither a preset" in capsys.readouterr().err
    assert cli_main(["dashboard", "--model", str(tmp_path / "missing.zip"), "--no-browser"]) == 2
    assert "no trained model" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"format": "something else"}\n')
    assert cli_main(["dashboard", "--replay", str(bad), "--no-browser"]) == 2
    assert "header" in capsys.readouterr().err
    assert cli_main(["dashboard", "--population", "oracle", "--no-browser"]) == 2


def test_scenario_file_and_model_population_are_offered(tmp_path, make_session):
    from channelmarket.envs.scenario import get_scenario

    sc = tmp_path / "tiny.yaml"
    get_scenario("energy_small").save(sc)
    model = tmp_path / "run"
    model.mkdir()
    session = make_session("--scenario", str(sc), "--model", str(model), "--population", "truthful")
    assert session.options.default_scenario == "file:tiny.yaml" and "file:tiny.yaml" in session.options.scenarios
    assert "model:run" in session.options.populations and session.models["model:run"] == str(model)


@pytest.mark.slow
def test_trained_model_population_runs_and_a_broken_one_is_refused(tmp_path, make_session):
    """A trained model the server was started with drives the market (loaded without unpickling);
    a model folder that holds no model gets an error back and leaves the server idle."""
    torch = pytest.importorskip("torch")
    from channelmarket.training.ippo import IPPOConfig, IPPOTrainer

    cfg = IPPOConfig(scenario="energy_small", total_steps=24, n_markets=1, rollout_steps=24, learners="sellers",
                     background="zero_intelligence", progress=False, minibatch_size=64, hidden_sizes=(8,))
    torch.save(IPPOTrainer(cfg, tmp_path / "train").model_state(), tmp_path / "ippo_model.pt")
    empty = tmp_path / "empty_run"
    empty.mkdir()
    session = make_session("--scenario", "energy_small", "--model", str(tmp_path / "ippo_model.pt"),
                           "--model", str(empty))
    with TestClient(create_app(session)) as c, c.websocket_connect("/ws") as ws:
        snapshot(ws)
        ws.send_json({"type": "execute", "population": "model:ippo_model.pt", "steps": 3, "interval": FAST})
        msgs = until(ws, lambda m: m["type"] == "status" and m["status"] == "finished")
        assert [m["frame"]["summary"]["t"] for m in msgs if m["type"] == "frame"] == [0, 1, 2, 3]
        ws.send_json({"type": "execute", "population": "model:empty_run", "steps": 3, "interval": FAST})
        err = until(ws, lambda m: m["type"] == "error")[-1]["message"]
        assert "could not start" in err and "model:empty_run" in err
        assert c.get("/health").json()["status"] == "idle"


def test_a_slow_page_is_resynchronised_not_flooded(make_session):
    import asyncio

    from channelmarket.eval.dashboard.session import QUEUE_SIZE

    async def run():
        session = make_session("--scenario", "energy_small")
        q = session.subscribe()
        for i in range(5 * QUEUE_SIZE):               # a page that never reads
            session.broadcast({"type": "status", "i": i})
        assert q.qsize() < QUEUE_SIZE
        msgs = [json.loads(q.get_nowait()) for _ in range(q.qsize())]
        assert msgs[0]["type"] == "options"          # it restarts from a fresh snapshot
        session.unsubscribe(q)
        session.broadcast({"type": "status"})
        assert q.empty()

    asyncio.run(run())


def test_the_server_reads_the_market_through_the_public_api_only():
    """No module of the dashboard (nor the frame observer) touches the core's state or parameters."""
    root = Path(__file__).resolve().parents[3]
    files = sorted((root / "eval" / "dashboard").glob("*.py")) + [root / "envs" / "frames.py"]
    for f in files:
        src = f.read_text()
        assert not re.search(r"core\.(state|agents|_\w+)\b|\.view\(\)", src), f.name

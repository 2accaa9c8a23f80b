"""One dashboard simulation that every open page watches: the market loop in a background task.

    session = Session(options, models={"model:ppo": "runs/x/model.zip"}, recordings={"ep": path})
    queue = session.subscribe()          # a page connects: it gets the options, status, history, frame
    await session.handle(command)        # a checked `protocol.Command` from any page
    text = await queue.get()             # JSON messages to send to that page

EXECUTE builds a `MarketCore` of the chosen scenario (`episode_steps` = the chosen steps; the seed
runs 100), binds the chosen population (a baseline of the eval population registry, or a trained
model the server was started with, loaded by the project's safe loader: nothing is unpickled) and
steps it every `interval` seconds in a worker thread, so a 10,000-agent step never blocks the
pages. After each step the frame (`envs.frames.Observer`: the public summary and channel states,
topology sampled to `max_nodes` agents) is encoded once and queued for every page. PAUSE stops
the loop and resets (the run is written to the recording folder first, when there is one). One
shock at a time: a shock while one is active is refused. A page that reads too slowly gets a fresh
snapshot instead of a backlog.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from ...envs.core import MarketCore
from ...envs.frames import Observer
from ...envs.recording import Recorder, read_recording
from ...policies.widths import put_actions
from ..populations import assign, homogeneous, make_policy
from .protocol import DEFAULT_INTERVAL, Command, Options, ProtocolError

log = logging.getLogger("channelmarket.dashboard")
QUEUE_SIZE = 64          # messages a page may fall behind before it is resynchronised


class Session:
    """The shared simulation; all state changes happen on the event loop (steps in a worker thread
    under `self._lock`, so a command never lands in the middle of a step)."""

    def __init__(self, options: Options, models: "dict[str, str] | None" = None,
                 scenarios: "dict[str, Any] | None" = None, recordings: "dict[str, Path] | None" = None, record_dir: "Path | None" = None,
                 max_nodes: int = 300, max_channels: int = 1500) -> None:
        self.models = dict(models or {})           # population name -> trained model path
        self.scenarios = dict(scenarios or {})     # scenario name -> a loaded Scenario (files); presets by name
        self.recordings = {k: Path(v) for k, v in (recordings or {}).items()}
        self.record_dir = Path(record_dir) if record_dir is not None else None
        self._base_options = options
        self.max_nodes, self.max_channels = max_nodes, max_channels
        self.clients: set[asyncio.Queue] = set()
        self._lock = asyncio.Lock()        # held by a step (and a shock): a command never lands mid-step
        self._commands = asyncio.Lock()    # one command at a time, whichever page sent it
        self._stop = asyncio.Event()
        self._task: "asyncio.Task | None" = None
        self._reset_run()

    # ---- state ------------------------------------------------------------------------------------------
    def _reset_run(self) -> None:
        self.status, self.source = "idle", None
        self.settings: dict[str, Any] = {"interval": DEFAULT_INTERVAL}
        self.core: "MarketCore | None" = None
        self.groups: list[tuple[Any, np.ndarray]] = []
        self.obs: "np.ndarray | None" = None
        self.observer: "Observer | None" = None
        self.recorder: "Recorder | None" = None
        self.history: list[dict[str, Any]] = []
        self.frame: "dict[str, Any] | None" = None
        self.trades_total = 0

    @property
    def options(self) -> Options:
        return Options(self._base_options.scenarios, self._base_options.populations, tuple(self.recordings),
                       self._base_options.default_scenario, self._base_options.default_population)

    def status_message(self) -> dict[str, Any]:
        return {"type": "status", "status": self.status, "source": self.source, **self.settings,
                "t": self.history[-1]["t"] if self.history else None,
                "n_agents": self.frame["n_agents"] if self.frame else None}

    def snapshot(self) -> list[str]:
        """What a page needs to show the simulation now: options, status, this episode's history, last frame."""
        msgs = [self.options.as_message(), self.status_message(), {"type": "history", "summaries": self.history}]
        if self.frame is not None:
            msgs.append(self._frame_message())
        return [json.dumps(m, separators=(",", ":"), allow_nan=False) for m in msgs]

    def _frame_message(self) -> dict[str, Any]:
        return {"type": "frame", "frame": self.frame, "trades_total": self.trades_total, "source": self.source}

    # ---- pages ------------------------------------------------------------------------------------------
    def subscribe(self) -> asyncio.Queue:
        q: asyncio.Queue = asyncio.Queue(maxsize=QUEUE_SIZE)
        for m in self.snapshot():
            q.put_nowait(m)
        self.clients.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue) -> None:
        self.clients.discard(q)

    def broadcast(self, msg: dict[str, Any]) -> None:
        text = json.dumps(msg, separators=(",", ":"), allow_nan=False)
        for q in list(self.clients):
            if q.qsize() + 1 >= QUEUE_SIZE:     # a slow page: drop its backlog, send the state as it is now
                while not q.empty():
                    q.get_nowait()
                for m in self.snapshot():
                    q.put_nowait(m)
            else:
                q.put_nowait(text)

    # ---- commands ---------------------------------------------------------------------------------------
    async def handle(self, cmd: Command) -> None:
        """Carry out a checked command; ProtocolError when it cannot apply now."""
        async with self._commands:
            await self._handle(cmd)

    async def _handle(self, cmd: Command) -> None:
        if cmd.type == "execute":
            await self._halt()
            await self._start_live(**cmd.args)
        elif cmd.type == "pause":
            await self._halt()
            self._reset_run()
            self.broadcast({"type": "reset"})
            self.broadcast(self.status_message())
        elif cmd.type == "shock":
            await self._shock(cmd.args["kind"], cmd.args["duration"])
        elif cmd.type == "speed":
            self.settings["interval"] = cmd.args["interval"]
            self.broadcast(self.status_message())
        elif cmd.type == "replay":
            await self._halt()
            await self._start_replay(cmd.args["recording"], cmd.args["interval"])
        else:  # pragma: no cover - protocol.parse knows every type
            raise ProtocolError(f"unknown command {cmd.type!r}")

    async def _shock(self, kind: str, duration: int) -> None:
        async with self._lock:
            if self.status != "running" or self.source != "live" or self.core is None:
                raise ProtocolError(f"shock {kind}: no live simulation is running; press EXECUTE first")
            active = self.core.summary()
            if active["shock"] != "NONE" and active["shock_remaining"] > 0:
                raise ProtocolError(f"shock {kind}: {active['shock']} is active for {active['shock_remaining']} more "
                                    "step(s); one shock at a time")
            self.core.inject_shock(kind, duration)
            t = self.core.summary()["t"]
        self.broadcast({"type": "shock", "kind": kind, "duration": duration, "t": t})

    async def _halt(self) -> None:
        """Stop the running loop (after its current step) and write its recording, if any."""
        task = self._task
        if task is not None:
            self._stop.set()
            try:
                await task
            except Exception:  # pragma: no cover - the loop reports its own errors
                pass
            self._task = None
        self._stop = asyncio.Event()
        await self._close_recording()

    async def shutdown(self) -> None:
        await self._halt()

    # ---- live market ------------------------------------------------------------------------------------
    def _build(self, scenario: str, population: str, steps: int, seed: int) -> None:
        core = MarketCore(self.scenarios.get(scenario, scenario), episode_steps=steps)
        obs = core.reset(seed=seed)
        kind = core.agent_states()["kind"]
        spec = self.models.get(population, population)
        groups = []
        for g, (slot, idx) in enumerate(assign(homogeneous(spec, name=population), kind)):
            pol = _load_model(spec) if population in self.models else make_policy(slot.policy)
            pol.bind(core, idx, seed=[seed, g])
            groups.append((pol, idx))
        self.core, self.groups, self.obs = core, groups, obs
        self.observer = Observer(max_nodes=self.max_nodes, max_channels=self.max_channels, seed=seed, refresh=True)
        if self.record_dir is not None:
            name = f"{scenario}-{_safe(population)}-seed{seed}-{time.strftime('%Y%m%d-%H%M%S')}.jsonl.gz"
            self.recorder = Recorder(self.record_dir / name, max_nodes=self.max_nodes, max_channels=self.max_channels,
                                     seed=seed)
        self._observe()

    def _observe(self) -> None:
        self.frame = self.observer.frame(self.core)
        self.history.append(self.frame["summary"])
        self.trades_total += int(self.frame["summary"].get("trades", 0))
        if self.recorder is not None:
            self.recorder.add(self.core)

    def _advance(self) -> None:
        core, obs = self.core, self.obs
        actions = np.zeros((core.n_agents, core.n_actions))
        for pol, idx in self.groups:
            put_actions(actions, idx, pol.act(obs[idx]))   # base-width policies: optional columns 0
        self.obs = core.step(actions)[0]
        for pol, _ in self.groups:
            pol.update(core)
        self._observe()

    async def _start_live(self, scenario: str, population: str, steps: int, interval: float, seed: int) -> None:
        self._reset_run()
        self.settings = {"scenario": scenario, "population": population, "steps": steps, "interval": interval,
                         "seed": seed}
        self.status, self.source = "starting", "live"
        self.broadcast({"type": "reset"})
        self.broadcast(self.status_message())
        try:
            async with self._lock:
                await asyncio.to_thread(self._build, scenario, population, steps, seed)
        except Exception as err:   # a bad scenario or model: the pages hear why, the server goes on
            log.warning("dashboard could not start %s with %s: %s", scenario, population, err)
            self._reset_run()
            self.broadcast(self.status_message())
            raise ProtocolError(f"execute: could not start {scenario} with {population}: {err}") from None
        self.status = "running"
        self.broadcast(self.status_message())
        self.broadcast(self._frame_message())
        self._task = asyncio.create_task(self._loop(self._live_step))

    async def _live_step(self) -> bool:
        """One market step; False when the episode is over."""
        async with self._lock:
            await asyncio.to_thread(self._advance)
        self.broadcast(self._frame_message())
        return not self.core.done

    # ---- replay -----------------------------------------------------------------------------------------
    async def _start_replay(self, name: str, interval: float) -> None:
        try:
            _, frames = await asyncio.to_thread(read_recording, self.recordings[name])
        except (ValueError, OSError) as err:
            raise ProtocolError(f"replay {name}: {err}") from None
        self._reset_run()
        self.settings = {"recording": name, "interval": interval, "steps": len(frames)}
        self.status, self.source = "running", "replay"
        self.broadcast({"type": "reset"})
        self.broadcast(self.status_message())
        it = iter(frames)

        async def step() -> bool:
            f = next(it, None)
            if f is None:
                return False
            if self.frame is not None and f.get("episode") != self.frame.get("episode"):
                self.history, self.trades_total = [], 0
                self.broadcast({"type": "reset"})
            self.frame = f
            self.history.append(f["summary"])
            self.trades_total += int(f["summary"].get("trades", 0))
            self.broadcast(self._frame_message())
            return True

        await step()
        self._task = asyncio.create_task(self._loop(step))

    # ---- the loop ---------------------------------------------------------------------------------------
    async def _loop(self, step: Any) -> None:
        stop = self._stop
        try:
            while not stop.is_set():
                try:
                    await asyncio.wait_for(stop.wait(), timeout=self.settings["interval"])
                    break
                except asyncio.TimeoutError:
                    pass
                if not await step():
                    self.status = "finished"
                    self.broadcast(self.status_message())
                    await self._close_recording()
                    break
        except Exception as err:   # a failing policy or recording: tell the pages, keep serving
            log.exception("dashboard simulation stopped")
            self.status = "error"
            self.broadcast({"type": "error", "message": f"the simulation stopped: {type(err).__name__}: {err}"})
            self.broadcast(self.status_message())

    async def _close_recording(self) -> None:
        rec, self.recorder = self.recorder, None
        if rec is not None and rec.n_frames > 1:
            path = await asyncio.to_thread(rec.close)
            self.recordings[path.name] = path
            self.broadcast(self.options.as_message())


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:40]


def _load_model(path: str) -> Any:
    """A trained policy through the project's safe loader: nothing is unpickled (trust=False)."""
    from ...policies.learned import load

    return load(path, trust=False)


__all__ = ["Session", "QUEUE_SIZE"]

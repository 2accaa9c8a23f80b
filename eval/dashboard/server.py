"""`channelmarket dashboard`: the seed's live dashboard as a local web server (Starlette under uvicorn).

    channelmarket dashboard [--host 127.0.0.1] [--port 8050] [--no-browser] [--scenario energy_default]
                            [--population risk_factor] [--model PATH]... [--replay FILE]... [--record DIR]

Serves one page (`static/index.html` with D3 from `static/vendor`, bundled from the npm registry by
`make web`; nothing is fetched from a CDN) and a WebSocket `/ws` over which every open page watches
the one shared `session.Session`. Messages from a page are checked by `protocol.parse`; a bad one
gets `{"type": "error", "message": ...}` back, and no message can stop the server. WebSocket
connections from another site's page (an Origin that is not this server) are refused. The server
reads the market through the core's public read API only (`envs.frames.Observer`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import webbrowser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .protocol import MAX_MESSAGE, Options, ProtocolError, parse
from .session import Session

STATIC = Path(__file__).resolve().parent / "static"
log = logging.getLogger("channelmarket.dashboard")


def create_app(session: Session, on_startup: Any = None) -> Any:
    """The ASGI app serving `session`: `/` (the page), `/static/...`, `/ws`, `/health`."""
    from starlette.applications import Starlette
    from starlette.responses import FileResponse, JSONResponse
    from starlette.routing import Mount, Route, WebSocketRoute
    from starlette.staticfiles import StaticFiles
    from starlette.websockets import WebSocket, WebSocketDisconnect

    async def index(request: Any) -> Any:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def health(request: Any) -> Any:
        return JSONResponse({"ok": True, "status": session.status, "pages": len(session.clients)})

    async def pump(ws: WebSocket, q: asyncio.Queue) -> None:
        with contextlib.suppress(Exception):   # the page went away: the receive loop ends the connection
            while True:
                await ws.send_text(await q.get())

    def tell(q: asyncio.Queue, message: str) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            q.put_nowait(json.dumps({"type": "error", "message": message}))

    async def socket(ws: WebSocket) -> None:
        origin = ws.headers.get("origin")
        if origin is not None and urlsplit(origin).netloc != ws.headers.get("host"):
            await ws.close(code=1008)      # another site's page may not drive this market
            return
        await ws.accept()
        q = session.subscribe()
        sender = asyncio.create_task(pump(ws, q))
        try:
            while True:
                msg = await ws.receive()
                if msg["type"] == "websocket.disconnect":
                    break
                try:
                    await session.handle(parse(msg.get("text") if msg.get("text") is not None
                                               else msg.get("bytes"), session.options))
                except ProtocolError as err:
                    tell(q, str(err))
                except Exception as err:   # never let one message take the server down
                    log.exception("dashboard message failed")
                    tell(q, f"internal error: {type(err).__name__}: {err}")
        except WebSocketDisconnect:
            pass
        finally:
            session.unsubscribe(q)
            sender.cancel()

    @contextlib.asynccontextmanager
    async def lifespan(app: Any):
        if on_startup is not None:
            on_startup()
        yield
        await session.shutdown()

    return Starlette(routes=[Route("/", index), Route("/health", health), WebSocketRoute("/ws", socket),
                             Mount("/static", StaticFiles(directory=STATIC), name="static")], lifespan=lifespan)


# ---- command line ---------------------------------------------------------------------------------------
def build_session(args: argparse.Namespace) -> Session:
    """The session the command line asks for; ValueError (one line) for a bad scenario, model or recording."""
    from ...envs.recording import read_recording
    from ...envs.scenario import PRESETS, Scenario
    from ..populations import baseline_names, check_policy

    scenarios: dict[str, Any] = {}
    default = args.scenario
    if default not in PRESETS:
        path = Path(default)
        if not path.is_file():
            raise ValueError(f"--scenario {default!r}: neither a preset ({', '.join(PRESETS)}) nor a scenario file")
        sc = Scenario.load(path)
        default = f"file:{path.name}"
        scenarios[default] = sc
    models = {}
    for m in args.model:
        check_policy(m)
        models[f"model:{Path(m).name}"] = m
    populations = tuple(baseline_names()) + tuple(models)
    if args.population not in populations:
        raise ValueError(f"--population {args.population!r}; allowed: {', '.join(populations)}")
    recordings = {}
    for r in args.replay:
        read_recording(r)                       # validated now, so the page only offers good files
        recordings[Path(r).name] = Path(r)
    if args.record is not None:
        Path(args.record).mkdir(parents=True, exist_ok=True)
        for r in sorted(Path(args.record).glob("*.jsonl*")):
            recordings.setdefault(r.name, r)
    options = Options(tuple(PRESETS) + tuple(scenarios), populations, tuple(recordings), default, args.population)
    return Session(options, models=models, scenarios=scenarios, recordings=recordings, record_dir=args.record,
                   max_nodes=args.max_nodes)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="channelmarket dashboard",
                                 description="The live market dashboard in your browser (a local web server).")
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    ap.add_argument("--port", type=int, default=8050, help="port (default 8050)")
    ap.add_argument("--no-browser", action="store_true", help="do not open a browser tab")
    ap.add_argument("--scenario", default="energy_default", help="preset name or scenario file chosen at first")
    ap.add_argument("--population", default="risk_factor", help="population chosen at first (a baseline name)")
    ap.add_argument("--model", action="append", default=[], metavar="PATH",
                    help="a trained model (model.zip, IPPO .pt or run folder) offered as a population; loaded "
                         "safely (never unpickled)")
    ap.add_argument("--replay", action="append", default=[], metavar="FILE", help="a recording offered for replay")
    ap.add_argument("--record", default=None, metavar="DIR",
                    help="write each live run to DIR as a recording (and offer DIR's recordings for replay)")
    ap.add_argument("--max-nodes", type=int, default=300, help="agents shown in the topology (a sample above)")
    return ap


def main(argv: "list[str] | None" = None) -> int:
    args = parser().parse_args(argv)
    try:
        import uvicorn
        import starlette  # noqa: F401
    except ImportError as err:
        print(f"channelmarket dashboard needs the dashboard extra (pip install 'channelmarket[dashboard]'): {err}",
              file=sys.stderr)
        return 2
    if not 0 <= args.port <= 65535 or args.max_nodes < 10:
        print("channelmarket dashboard: --port must be in 0..65535 and --max-nodes at least 10", file=sys.stderr)
        return 2
    try:
        session = build_session(args)
    except (ValueError, TypeError, OSError) as err:
        print(f"channelmarket dashboard: {err}", file=sys.stderr)
        return 2
    url = f"http://{'127.0.0.1' if args.host in ('0.0.0.0', '::') else args.host}:{args.port}/"
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: listening on {args.host}: anyone who reaches this address can drive the dashboard",
              file=sys.stderr)

    def started() -> None:
        print(f"channelmarket dashboard on {url} (Ctrl-C to stop)", flush=True)
        if not args.no_browser:
            asyncio.get_running_loop().call_later(0.5, webbrowser.open, url)

    logging.basicConfig(level=logging.WARNING)
    uvicorn.run(create_app(session, on_startup=started), host=args.host, port=args.port, log_level="warning",
                ws_max_size=4 * MAX_MESSAGE)
    return 0


__all__ = ["create_app", "build_session", "parser", "main", "STATIC"]

"""The live web dashboard (`channelmarket dashboard`): the seed's market view in a browser.

`protocol` checks what a page sends, `session` runs the one simulation every page watches (a
background task), `server` is the Starlette app and the command line; `static/` holds the page and
D3 (from the npm registry, bundled by `make web`, see `web/`). Needs the `dashboard` extra
(starlette, uvicorn); importing this package alone needs neither.
"""

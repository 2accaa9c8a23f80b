"""`channelmarket` command line: demo, train, eval, bench."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: channelmarket {demo,bench} [options]\n"
              "  demo   run the default market with random actions and a shock, printing per-step stats\n"
              "  bench  time the array and dict APIs (python -m channelmarket.eval.bench_env)")
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd == "demo":
        from .demo import main as demo

        return demo(rest)
    if cmd == "bench":
        from .eval.bench_env import main as bench

        return bench(rest)
    print(f"channelmarket: unknown command {cmd!r}; run 'channelmarket --help'", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())

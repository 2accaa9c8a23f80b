"""`python -m channelmarket.eval ...`: the same as `channelmarket eval ...` (see `eval.cli`)."""

from .cli import main

if __name__ == "__main__":  # guard: spawn-started workers import this module too
    raise SystemExit(main())

"""`python -m channelmarket.training ...`: the same as `channelmarket train ...`."""

from .cli import main

raise SystemExit(main())

"""The test run builds and checks the multi-threaded kernel builds: two threads unless the caller
chose (the package's default is one thread, which leaves them unbuilt). Set before anything imports
`channelmarket.envs.compiled`, which reads it once."""

import os

os.environ.setdefault("CHANNELMARKET_THREADS", "2")
